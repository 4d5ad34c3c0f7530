/**
 * The one route table. The CDK stack creates one Lambda function and one HTTP API route per
 * entry; the local runtime matches requests against the same entries and calls the same module.
 */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'ANY';

export interface RouteDefinition {
  /** Stable name: the Lambda function's logical id and the handler file under functions/api/. */
  readonly name: string;
  readonly method: HttpMethod;
  /** API Gateway route path, with `{param}` placeholders; `$default` catches every unmatched request. */
  readonly path: string;
  /** Handler module, relative to the project root; it exports `handler`. */
  readonly entry: string;
  /** True when the function embeds text (ships the model and onnxruntime). */
  readonly embeds: boolean;
  /** True when the function writes to the table (needs write permissions). */
  readonly writes: boolean;
  /** True for the console's pages and scripts: no data, so no authorizer (a browser cannot sign requests). */
  readonly public: boolean;
  /** True when the function serves the built browser assets (web/build.ts), copied into its Lambda asset. */
  readonly webAssets: boolean;
}

const route = (
  name: string,
  method: HttpMethod,
  path: string,
  options: { embeds?: boolean; writes?: boolean; public?: boolean; webAssets?: boolean } = {},
): RouteDefinition => ({
  name,
  method,
  path,
  entry: `functions/api/${name}.ts`,
  embeds: options.embeds ?? false,
  writes: options.writes ?? false,
  public: options.public ?? false,
  webAssets: options.webAssets ?? false,
});

export const routes: readonly RouteDefinition[] = [
  route('createPersona', 'POST', '/personas', { writes: true }),
  route('listPersonas', 'GET', '/personas'),
  route('batchCreatePersonas', 'POST', '/personas/batch', { writes: true }),
  route('getPersona', 'GET', '/personas/{id}'),
  route('replacePersona', 'PUT', '/personas/{id}', { writes: true }),
  route('patchPersona', 'PATCH', '/personas/{id}', { writes: true }),
  route('deletePersona', 'DELETE', '/personas/{id}', { writes: true }),
  // Three literal segments beat the two of /personas/{id} (see routeMatching.ts).
  route('searchPersonas', 'POST', '/personas/search', { embeds: true }),
  route('similarPersonas', 'GET', '/personas/{id}/similar', { embeds: true }),
  route('openApiDocument', 'GET', '/openapi.json'),
  route('apiDocsPage', 'GET', '/docs', { public: true }),
  route('consolePage', 'GET', '/console', { public: true }),
  route('webAsset', 'GET', '/assets/{file}', { public: true, webAssets: true }),
  // Answers unmatched requests with problem+json 404/405 instead of API Gateway's plain 404.
  route('routeNotFound', 'ANY', '$default'),
];

/**
 * The methods a route answers: a GET route answers HEAD too (same function, body dropped). In an
 * HTTP API each method is a route of its own, so the stack declares both.
 */
export const routeMethods = (route: RouteDefinition): HttpMethod[] => (route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]);

/** The stream consumer: not an HTTP route, listed here so infra and local share its entry. */
export const indexerEntry = 'functions/indexer/handler.ts';

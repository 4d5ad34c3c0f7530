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
  /** True when the function queries Qdrant (gets the Qdrant secret); every embedding route does. */
  readonly readsIndex: boolean;
  /** True when the function writes to the table (derived from `tableActions`). */
  readonly writes: boolean;
  /**
   * The DynamoDB actions the function's code calls, per table: the stack grants exactly these and
   * nothing else (a TransactWriteItems needs the actions of its items, e.g. PutItem on both tables).
   * test/routePermissions.test.ts records the calls each route makes and compares.
   */
  readonly tableActions: TableActions;
  /** True when the function signs or checks list cursors (gets the cursor signing key secret). */
  readonly signsCursors: boolean;
  /** True for the console's pages and scripts: no data, so no authorizer (a browser cannot sign requests). */
  readonly public: boolean;
  /** True when the function serves the built browser assets (web/build.ts), copied into its Lambda asset. */
  readonly webAssets: boolean;
}

export type TableAction = 'GetItem' | 'BatchGetItem' | 'Scan' | 'Query' | 'PutItem' | 'DeleteItem' | 'UpdateItem' | 'BatchWriteItem' | 'ConditionCheckItem';
export interface TableActions {
  readonly personas?: readonly TableAction[];
  readonly idempotency?: readonly TableAction[];
}
const WRITE_ACTIONS: readonly TableAction[] = ['PutItem', 'DeleteItem', 'UpdateItem', 'BatchWriteItem'];

const route = (
  name: string,
  method: HttpMethod,
  path: string,
  options: { embeds?: boolean; readsIndex?: boolean; tableActions?: TableActions; signsCursors?: boolean; public?: boolean; webAssets?: boolean } = {},
): RouteDefinition => {
  const tableActions = options.tableActions ?? {};
  return {
    name,
    method,
    path,
    entry: `functions/api/${name}.ts`,
    embeds: options.embeds ?? false,
    readsIndex: (options.readsIndex ?? false) || (options.embeds ?? false),
    writes: Object.values(tableActions).some((actions: readonly TableAction[]) => actions.some((action) => WRITE_ACTIONS.includes(action))),
    tableActions,
    signsCursors: options.signsCursors ?? false,
    public: options.public ?? false,
    webAssets: options.webAssets ?? false,
  };
};

/** An Idempotency-Key route: claims its key (conditional put), then completes or releases it (conditional update); see shared/persona/idempotency.ts. */
const idempotency: readonly TableAction[] = ['PutItem', 'UpdateItem'];

export const routes: readonly RouteDefinition[] = [
  // A replay checks the persona still exists (GetItem).
  route('createPersona', 'POST', '/personas', { tableActions: { personas: ['PutItem', 'GetItem'], idempotency } }),
  // A single-tenant stage scans; a tenant (tenancy=claim) queries its partition of the tenant index.
  route('listPersonas', 'GET', '/personas', { tableActions: { personas: ['Scan', 'Query'] }, signsCursors: true }),
  // Each item is a conditional put (never overwrites); a replay checks which still exist (BatchGetItem).
  route('batchCreatePersonas', 'POST', '/personas/batch', { tableActions: { personas: ['PutItem', 'BatchGetItem'], idempotency } }),
  route('getPersona', 'GET', '/personas/{id}', { tableActions: { personas: ['GetItem'] } }),
  route('replacePersona', 'PUT', '/personas/{id}', { tableActions: { personas: ['GetItem', 'PutItem'] } }),
  route('patchPersona', 'PATCH', '/personas/{id}', { tableActions: { personas: ['GetItem', 'PutItem'] } }),
  route('deletePersona', 'DELETE', '/personas/{id}', { tableActions: { personas: ['DeleteItem'] } }),
  // Three literal segments beat the two of /personas/{id} (see routeMatching.ts).
  route('searchPersonas', 'POST', '/personas/search', { embeds: true, tableActions: { personas: ['BatchGetItem'] } }),
  // Ranks by the persona's stored vectors: Qdrant, but no model.
  route('similarPersonas', 'GET', '/personas/{id}/similar', { readsIndex: true, tableActions: { personas: ['GetItem', 'BatchGetItem'] } }),
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

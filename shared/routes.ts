/**
 * The one route table. The CDK stack creates one Lambda function and one HTTP API route per
 * entry; the local runtime matches requests against the same entries and calls the same module.
 */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'ANY';

/**
 * The OAuth scopes of the API (auth=jwt). `personas:admin` is every operation: it grants each
 * route that needs read or write (see `scopesGranting`), and is the scope for what acts on the
 * whole database rather than on personas one by one. The bulk operations of the CLI (reconcile,
 * reindex, `export --from table`, status, redrive) do not go through the API at all: they use the
 * stage's table and Qdrant directly with AWS credentials (the IAM `admin` role, infra/accessPolicies.ts).
 */
export const SCOPES = ['personas:read', 'personas:write', 'personas:admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const ADMIN_SCOPE: Scope = 'personas:admin';

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
  /**
   * The scope a caller needs (auth=jwt), or null: for a public route (no authorizer) and for
   * `$default`, which answers only 404/405 and so needs a valid token but no scope.
   */
  readonly scope: Scope | null;
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
  scope: Scope | null,
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
    scope,
    webAssets: options.webAssets ?? false,
  };
};

/** An Idempotency-Key route: claims its key (conditional put), then completes or releases it (conditional update); see shared/persona/idempotency.ts. */
const idempotency: readonly TableAction[] = ['PutItem', 'UpdateItem'];

export const routes: readonly RouteDefinition[] = [
  // A replay checks the persona still exists (GetItem).
  route('createPersona', 'POST', '/personas', 'personas:write', { tableActions: { personas: ['PutItem', 'GetItem'], idempotency } }),
  // A single-tenant stage scans; a tenant (tenancy=claim) queries its partition of the tenant index.
  route('listPersonas', 'GET', '/personas', 'personas:read', { tableActions: { personas: ['Scan', 'Query'] }, signsCursors: true }),
  // Each item is a conditional put (never overwrites); a replay checks which still exist (BatchGetItem).
  route('batchCreatePersonas', 'POST', '/personas/batch', 'personas:write', { tableActions: { personas: ['PutItem', 'BatchGetItem'], idempotency } }),
  route('getPersona', 'GET', '/personas/{id}', 'personas:read', { tableActions: { personas: ['GetItem'] } }),
  route('replacePersona', 'PUT', '/personas/{id}', 'personas:write', { tableActions: { personas: ['GetItem', 'PutItem'] } }),
  route('patchPersona', 'PATCH', '/personas/{id}', 'personas:write', { tableActions: { personas: ['GetItem', 'PutItem'] } }),
  route('deletePersona', 'DELETE', '/personas/{id}', 'personas:write', { tableActions: { personas: ['DeleteItem'] } }),
  // Three literal segments beat the two of /personas/{id} (see routeMatching.ts).
  route('searchPersonas', 'POST', '/personas/search', 'personas:read', { embeds: true, tableActions: { personas: ['BatchGetItem'] } }),
  // Ranks by the persona's stored vectors: Qdrant, but no model.
  route('similarPersonas', 'GET', '/personas/{id}/similar', 'personas:read', { readsIndex: true, tableActions: { personas: ['GetItem', 'BatchGetItem'] } }),
  route('openApiDocument', 'GET', '/openapi.json', 'personas:read'),
  route('apiDocsPage', 'GET', '/docs', null, { public: true }),
  route('consolePage', 'GET', '/console', null, { public: true }),
  route('webAsset', 'GET', '/assets/{file}', null, { public: true, webAssets: true }),
  // Answers unmatched requests with problem+json 404/405 instead of API Gateway's plain 404.
  route('routeNotFound', 'ANY', '$default', null),
];

/**
 * The methods a route answers: a GET route answers HEAD too (same function, body dropped). In an
 * HTTP API each method is a route of its own, so the stack declares both.
 */
export const routeMethods = (route: RouteDefinition): HttpMethod[] => (route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]);

/**
 * The scopes any one of which lets a caller through a route: its own and `personas:admin` (API
 * Gateway's JWT authorizer passes a token that carries at least one of a route's
 * `authorizationScopes`). Empty for a route that needs no scope.
 */
export const scopesGranting = (route: RouteDefinition): Scope[] => (route.scope === null ? [] : route.scope === ADMIN_SCOPE ? [ADMIN_SCOPE] : [route.scope, ADMIN_SCOPE]);

/** The route API Gateway matched, by the event's `routeKey` (`GET /personas/{id}`, `HEAD …` for a GET route, `$default`). */
export function routeForKey(routeKey: string, table: readonly RouteDefinition[] = routes): RouteDefinition | undefined {
  return table.find((route) => (route.path === '$default' ? routeKey === '$default' : routeMethods(route).some((method) => `${method} ${route.path}` === routeKey)));
}

/** The stream consumer: not an HTTP route, listed here so infra and local share its entry. */
export const indexerEntry = 'functions/indexer/handler.ts';

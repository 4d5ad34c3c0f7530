/**
 * The access rules of issue 17, written out here by hand rather than derived from shared/routes.ts,
 * so that a wrong scope in the route table fails the tests: who may call each route with auth=jwt.
 * Checked against the local runtime over HTTP (test/accessControl.test.ts) and against the
 * synthesized template's authorizer scopes (test/infra.test.ts).
 */
export type RouteAccess = 'read' | 'write' | 'public' | 'any-valid-token';

export const EXPECTED_ACCESS: Record<string, RouteAccess> = {
  getPersona: 'read',
  listPersonas: 'read',
  searchPersonas: 'read',
  similarPersonas: 'read',
  openApiDocument: 'read',
  createPersona: 'write',
  batchCreatePersonas: 'write',
  replacePersona: 'write',
  patchPersona: 'write',
  deletePersona: 'write',
  consolePage: 'public',
  apiDocsPage: 'public',
  webAsset: 'public',
  // Answers 404/405 only: any caller the authorizer lets in.
  routeNotFound: 'any-valid-token',
};

export const SCOPE_SETS: Record<string, readonly string[]> = {
  none: [],
  read: ['personas:read'],
  write: ['personas:write'],
  admin: ['personas:admin'],
  'read+write': ['personas:read', 'personas:write'],
};

/** Whether a token with `scopes` may call a route of this access class (admin implies read and write). */
export function expectAllowed(access: RouteAccess, scopes: readonly string[]): boolean {
  if (access === 'public' || access === 'any-valid-token') return true;
  return scopes.includes('personas:admin') || scopes.includes(`personas:${access}`);
}

/**
 * The handlers' own scope check (auth=jwt), behind API Gateway's: a route whose authorizer lost its
 * `authorizationScopes` (a hand-edited stage, a new route added without scopes) still refuses a
 * token without the route's scope. httpHandler runs it before every route handler.
 *
 * The caller comes from the event exactly as API Gateway delivers it with a JWT authorizer
 * (payload format 2.0): `requestContext.authorizer.jwt.claims` (every claim a string) and
 * `requestContext.authorizer.jwt.scopes` (the token's scopes, or null where the route configures no
 * authorization scopes: then the `scope`/`scp` claim is read instead, by tokenScopes).
 * See https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { routeForKey, scopesGranting, type RouteDefinition } from '../routes';
import { ProblemError } from './problem';

/** `none`: open API (dev); `iam`: SigV4-signed callers, IAM policies per route; `jwt`: bearer tokens with scopes. */
export const AUTH_MODES = ['none', 'iam', 'jwt'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The stage's `auth` setting: the stack sets AUTH on every API function; `AUTH=jwt npm start` locally. */
export function authMode(env: NodeJS.ProcessEnv = process.env): AuthMode {
  const mode = env.AUTH || 'none';
  if (!(AUTH_MODES as readonly string[]).includes(mode)) throw new Error(`AUTH must be one of ${AUTH_MODES.join(', ')}; got "${mode}"`);
  return mode as AuthMode;
}

export interface JwtCaller {
  claims: Record<string, string>;
  scopes: string[];
}

/**
 * The scopes of a token, read as API Gateway's JWT authorizer reads them: the `scope` claim, or
 * `scp` when there is none ("scope or scp – The token must include at least one of the scopes in
 * the route's authorizationScopes",
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html), a
 * list of scope tokens delimited by spaces (RFC 6749 §3.3, which the page cites; a comma is a
 * character of a token, not a separator). The claims are in the form the authorizer hands the
 * function, every claim a string and a JSON array claim as `[a b]`; the local authorizer flattens
 * a token's claims into that form first, so it and the handlers' check read one rule.
 */
export function tokenScopes(claims: Readonly<Record<string, string>>): string[] {
  const listed = claims.scope ?? claims.scp ?? '';
  return listed.replace(/^\[(.*)\]$/s, '$1').split(' ').filter(Boolean);
}

/** The JWT caller of this request, or undefined when no JWT authorizer ran (auth=none or iam, a public route). */
export function jwtCaller(event: APIGatewayProxyEventV2): JwtCaller | undefined {
  const jwt = (event.requestContext as unknown as { authorizer?: { jwt?: { claims?: Record<string, string | number | boolean>; scopes?: string[] | null } } }).authorizer?.jwt;
  if (!jwt) return undefined;
  const claims = Object.fromEntries(Object.entries(jwt.claims ?? {}).map(([name, value]) => [name, String(value)]));
  const scopes = Array.isArray(jwt.scopes) ? jwt.scopes : tokenScopes(claims);
  return { claims, scopes };
}

/** The 403 for a caller without any of the route's scopes: it names the scope to ask for. */
export function insufficientScopeProblem(route: RouteDefinition, held: readonly string[]): ProblemError {
  const granting = scopesGranting(route);
  return new ProblemError(
    403,
    'insufficient-scope',
    `${route.method} ${route.path} needs the scope ${route.scope}${granting.length > 1 ? ` (or ${granting.slice(1).join(', ')})` : ''}; ` +
      `this token carries ${held.length ? held.join(', ') : 'no scope'}. Ask your identity provider for a token with ${route.scope} (locally: personas token --scope ${route.scope}).`,
    { extensions: { required_scope: route.scope, accepted_scopes: granting } },
  );
}

/**
 * Throws the 403 problem when auth=jwt and the caller lacks the route's scope. With auth=none (dev)
 * or iam (IAM policies decide per route, infra/accessPolicies.ts) there is nothing to check here.
 */
export function checkRouteScope(event: APIGatewayProxyEventV2, env: NodeJS.ProcessEnv = process.env): void {
  if (authMode(env) !== 'jwt') return;
  const route = routeForKey(event.routeKey);
  // An unknown route key is a route missing from the table: refuse rather than guess.
  if (!route) throw new ProblemError(403, 'insufficient-scope', `No access rule for ${event.routeKey}; it is not in the route table (shared/routes.ts).`);
  const granting = scopesGranting(route);
  if (granting.length === 0) return;
  const caller = jwtCaller(event);
  const held = caller?.scopes ?? [];
  if (!granting.some((scope) => held.includes(scope))) throw insufficientScopeProblem(route, held);
}

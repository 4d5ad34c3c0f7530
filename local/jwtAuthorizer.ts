/**
 * API Gateway's JWT authorizer, for the local runtime (`AUTH=jwt npm start`), as documented in
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html:
 *  1. the token is the Authorization header (identity source `$request.header.Authorization`),
 *     alone or prefixed with `Bearer`;
 *  2-3. decoded, its RSA signature checked with the issuer's key whose `kid` it names (a token
 *     without `kid` is refused: "The token must have a header claim that matches the key in the
 *     jwks_uri that signed the token");
 *  4. claims: `iss` is the issuer, `aud` (or `client_id` when there is no `aud`) one of the
 *     audiences, `exp` after and `nbf` and `iat` before now; `scope` or `scp` must hold at least one of the
 *     route's authorizationScopes (read by tokenScopes, the handlers' own rule).
 * A rejected token is answered by the gateway itself, without calling the function: 401
 * `{"message":"Unauthorized"}` with a `www-authenticate: Bearer … error="invalid_token"` header
 * (http-api-troubleshooting-jwt.html), and 403 `{"message":"Forbidden"}` when the token is valid but
 * carries none of the route's scopes (rest-api-jwt-authorizer-methods.html: "A valid token that
 * carries none of the method's scopes receives a 403 Forbidden response").
 *
 * An accepted token reaches the function as `requestContext.authorizer.jwt`: every claim as a string
 * (numbers and booleans as text, arrays as `[a b]`, null claims left out, as captured from real
 * events in DefinitelyTyped/DefinitelyTyped#75458 and floci-io/floci#2011) and `scopes`, the token's
 * scopes, or null on a route without authorization scopes (the same captures).
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { tokenScopes } from '../shared/http/accessControl';
import { scopesGranting, type RouteDefinition } from '../shared/routes';
import type { LocalIssuer } from './localIssuer';

const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

export interface JwtAuthorizerContext {
  claims: Record<string, string>;
  scopes: string[] | null;
}

export type AuthorizerDecision = { allowed: true; jwt: JwtAuthorizerContext } | { allowed: false; response: APIGatewayProxyStructuredResultV2 };

export interface LocalJwtAuthorizer {
  readonly issuer: LocalIssuer;
  /** Decides a request to `route` (never called for public routes, which have no authorizer). */
  authorize(authorization: string | undefined, route: RouteDefinition): Promise<AuthorizerDecision>;
}

/** A claim value as API Gateway passes it to the function: always a string. */
export function flattenClaim(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return `[${value.map((item) => (typeof item === 'object' && item !== null ? JSON.stringify(item) : String(item))).join(' ')}]`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export const flattenClaims = (payload: JWTPayload): Record<string, string> =>
  Object.fromEntries(Object.entries(payload).flatMap(([name, value]) => {
    const flat = flattenClaim(value);
    return flat === undefined ? [] : [[name, flat]];
  }));

const quoted = (text: string) => text.replace(/["\\]/g, '');

function unauthorized(description?: string): AuthorizerDecision {
  return {
    allowed: false,
    response: {
      statusCode: 401,
      headers: {
        'content-type': 'application/json',
        ...(description ? { 'www-authenticate': `Bearer scope="" error="invalid_token" error_description="${quoted(description)}"` } : {}),
      },
      body: JSON.stringify({ message: 'Unauthorized' }),
    },
  };
}

function forbidden(granting: readonly string[]): AuthorizerDecision {
  return {
    allowed: false,
    response: {
      statusCode: 403,
      headers: {
        'content-type': 'application/json',
        'www-authenticate': `Bearer scope="${granting.join(' ')}" error="insufficient_scope" error_description="the token does not carry any of the route's authorization scopes"`,
      },
      body: JSON.stringify({ message: 'Forbidden' }),
    },
  };
}

function describeVerifyFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `the token has no ${error.claim} claim`;
    if (error.claim === 'iss') return 'the token does not have a valid issuer';
    if (error.claim === 'nbf') return 'the token is not valid yet';
    return `the token's ${error.claim} claim is invalid`;
  }
  if (error instanceof errors.JWKSNoMatchingKey) return 'the token was not signed by a key of the issuer (kid)';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the token is not RSA-signed';
  return 'the token is malformed';
}

export interface LocalJwtAuthorizerOptions {
  /** The accepted audiences (the stack's jwtAudience); the local issuer's audience by default. */
  audiences?: readonly string[];
  /**
   * false only in tests that prove the functions' own scope check: the gateway then lets a token
   * through whatever its scopes, like a route deployed without authorizationScopes.
   */
  enforceScopes?: boolean;
}

export function localJwtAuthorizer(issuer: LocalIssuer, options: LocalJwtAuthorizerOptions = {}): LocalJwtAuthorizer {
  const keySet = createLocalJWKSet(issuer.jwks);
  const audiences = options.audiences ?? [issuer.audience];
  const enforceScopes = options.enforceScopes ?? true;
  return {
    issuer,
    async authorize(authorization, route) {
      const token = authorization?.trim().replace(/^Bearer\s+/i, '');
      if (!token) return unauthorized();
      let payload: JWTPayload;
      try {
        // jose would pick the only key of a set for a token without `kid`; API Gateway requires it.
        const { kid } = decodeProtectedHeader(token);
        if (typeof kid !== 'string' || kid === '') return unauthorized('the token has no kid header naming the issuer key that signed it');
        ({ payload } = await jwtVerify(token, keySet, { issuer: issuer.issuer, algorithms: RSA_ALGORITHMS, requiredClaims: ['exp'] }));
      } catch (error) {
        return unauthorized(describeVerifyFailure(error));
      }
      // jose checks `iat` only against a maximum token age; API Gateway wants it before now.
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000) return unauthorized('the token was issued in the future (iat)');
      // `aud`, or `client_id` only when there is no `aud` (http-api-troubleshooting-jwt.html).
      const audience = payload.aud ?? (typeof payload.client_id === 'string' ? payload.client_id : undefined);
      const tokenAudiences = audience === undefined ? [] : Array.isArray(audience) ? audience : [audience];
      if (!tokenAudiences.some((value) => audiences.includes(value))) return unauthorized('the token does not have a valid audience');
      const granting = scopesGranting(route);
      const claims = flattenClaims(payload);
      const scopes = tokenScopes(claims);
      if (enforceScopes && granting.length > 0 && !granting.some((scope) => scopes.includes(scope))) return forbidden(granting);
      // A route deployed without authorizationScopes (enforceScopes false stands for one) gets null scopes.
      return { allowed: true, jwt: { claims, scopes: enforceScopes && granting.length > 0 ? scopes : null } };
    },
  };
}

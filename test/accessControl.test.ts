/**
 * Access control with auth=jwt, over HTTP against the local runtime (`AUTH=jwt npm start`):
 * - the scope matrix: every route (and HEAD of the GET routes) × every scope set → allowed, or 403.
 *   Twice: with the gateway enforcing the routes' authorization scopes, as API Gateway does
 *   (403 `{"message":"Forbidden"}`, the gateway's own answer), and with the gateway letting every
 *   valid token through (a route deployed without scopes), where the functions' own check answers
 *   403 problem+json naming the scope;
 * - API Gateway's JWT authorizer rules: 401 `{"message":"Unauthorized"}` for a missing, malformed,
 *   expired, not-yet-valid, foreign-signed, non-RSA, wrong-issuer or wrong-audience token; `client_id`
 *   stands in for a missing `aud`; `scp` works like `scope`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html,
 *   .../http-api-troubleshooting-jwt.html);
 * - the Lambda event: `requestContext.authorizer.jwt.claims` as strings and `scopes`, as AWS delivers
 *   them (captured events in DefinitelyTyped/DefinitelyTyped#75458 and floci-io/floci#2011);
 * - `personas token` (key generated once, kept 0600, tokens valid across restarts; --tenant into
 *   TENANT_CLAIM) and the CLI sending PERSONAS_TOKEN.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { decodeJwt, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../local/apiServer';
import { localJwtAuthorizer } from '../local/jwtAuthorizer';
import { localIssuer, localIssuerSettings, type LocalIssuer } from '../local/localIssuer';
import { checkRouteScope } from '../shared/http/accessControl';
import { sendsCredentialsInClear } from '../shared/http/loopbackHost';
import { idempotencyRequest } from '../shared/http/request';
import { ProblemError } from '../shared/http/problem';
import { routeMethods, routes, type Scope } from '../shared/routes';
import { apiClient, samplePersona, type ApiResponse } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { runCli } from './support/operationsHelpers';
import { EXPECTED_ACCESS, expectAllowed, SCOPE_SETS } from './support/scopeMatrix';

const dataDir = mkdtempSync(join(tmpdir(), 'persona-auth-'));
const keyFile = localIssuerSettings({ LOCAL_DATA_DIR: dataDir }).keyFile;

let stop: () => Promise<void>;
let issuer: LocalIssuer;
let call: ReturnType<typeof apiClient>;
let apiUrl: string;
/**
 * The same functions behind a gateway that checks tokens but not scopes, as for routes deployed
 * without authorizationScopes (whose events carry `scopes: null`), and behind one that checks both;
 * each records the events it sends.
 */
let lenient: { server: ApiServer; call: ReturnType<typeof apiClient>; events: APIGatewayProxyEventV2[] };
let recorded: { server: ApiServer; call: ReturnType<typeof apiClient>; events: APIGatewayProxyEventV2[] };
let personaId: string;

const bearer = async (scopes: readonly string[], extra: { tenant?: string } = {}) => ({ authorization: `Bearer ${await issuer.sign({ scopes: scopes as Scope[], ...extra })}` });

/** Signs with the local issuer's own key file, for tokens `personas token` would never print. */
async function signRaw(claims: JWTPayload, options: { header?: Record<string, unknown>; key?: JWK; alg?: string } = {}): Promise<string> {
  const stored = JSON.parse(readFileSync(keyFile, 'utf8')) as { kid: string; privateJwk: JWK };
  const alg = options.alg ?? 'RS256';
  const key = await importJWK(options.key ?? stored.privateJwk, alg);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: issuer.issuer, aud: issuer.audience, iat: now, exp: now + 600, scope: 'personas:read', ...claims })
    .setProtectedHeader({ alg, kid: stored.kid, ...options.header })
    .sign(key);
}

beforeAll(async () => {
  const { system } = await startTestSystem({ auth: 'jwt', jwtKeyFile: keyFile });
  stop = () => system.stop();
  issuer = system.issuer!;
  apiUrl = system.apiUrl;
  call = apiClient(apiUrl);
  const recordingServer = async (enforceScopes: boolean) => {
    const events: APIGatewayProxyEventV2[] = [];
    const server = await startApiServer({ port: 0, authorizer: localJwtAuthorizer(issuer, { enforceScopes }), onEvent: (event) => events.push(event) });
    return { server, call: apiClient(server.url), events };
  };
  lenient = await recordingServer(false);
  recorded = await recordingServer(true);
  const created = await call('POST', '/personas', { body: samplePersona(1), headers: await bearer(['personas:admin']) });
  expect(created.status).toBe(201);
  personaId = created.json.id;
});

afterAll(async () => {
  await lenient?.server.close();
  await recorded?.server.close();
  await stop?.();
});

/** One request per route: real paths, bodies that reach the function (a 4xx from it is "allowed"). */
function requestFor(name: string): { path: string; body?: unknown; headers?: Record<string, string> } {
  const requests: Record<string, { path: string; body?: unknown; headers?: Record<string, string> }> = {
    getPersona: { path: `/personas/${personaId}` },
    listPersonas: { path: '/personas?limit=2' },
    searchPersonas: { path: '/personas/search', body: { query: 'teacher', limit: 2 } },
    similarPersonas: { path: `/personas/${personaId}/similar?limit=2` },
    openApiDocument: { path: '/openapi.json' },
    createPersona: { path: '/personas', body: samplePersona(2) },
    batchCreatePersonas: { path: '/personas/batch', body: {} },
    replacePersona: { path: `/personas/${randomUUID()}`, body: {} },
    patchPersona: { path: `/personas/${randomUUID()}`, body: {}, headers: { 'content-type': 'application/merge-patch+json' } },
    deletePersona: { path: `/personas/${randomUUID()}` },
    consolePage: { path: '/console' },
    apiDocsPage: { path: '/docs' },
    webAsset: { path: '/assets/console.js' },
    routeNotFound: { path: '/no-such-route' },
  };
  const request = requests[name];
  if (!request) throw new Error(`no request for route ${name}: add it here and to test/support/scopeMatrix.ts`);
  return request;
}

const cases = routes.flatMap((route) => routeMethods(route).filter((method) => method !== 'ANY').concat(route.method === 'ANY' ? ['GET'] : []).map((method) => ({ route, method })));

async function runMatrix(send: ReturnType<typeof apiClient>, onDenied: (response: ApiResponse, context: { route: string; method: string; access: string }) => void) {
  const outcomes = { allowed: 0, denied: 0 };
  for (const [setName, scopes] of Object.entries(SCOPE_SETS)) {
    const headers = await bearer(scopes);
    for (const { route, method } of cases) {
      const access = EXPECTED_ACCESS[route.name];
      expect(access, `route ${route.name} needs an expected access in test/support/scopeMatrix.ts`).toBeDefined();
      const request = requestFor(route.name);
      const response = await send(method, request.path, { ...(request.body !== undefined ? { body: request.body } : {}), headers: { ...headers, ...request.headers } });
      const where = `${method} ${route.path} with scopes {${setName}}: ${response.status} ${response.text.slice(0, 200)}`;
      if (expectAllowed(access!, scopes)) {
        expect([401, 403], where).not.toContain(response.status);
        outcomes.allowed++;
      } else {
        expect(response.status, where).toBe(403);
        onDenied(response, { route: route.name, method, access: access! });
        outcomes.denied++;
      }
    }
  }
  console.log(`[scope matrix] ${cases.length} route methods × ${Object.keys(SCOPE_SETS).length} scope sets: ${outcomes.allowed} allowed, ${outcomes.denied} denied`);
  return outcomes;
}

describe('scope matrix over HTTP (AUTH=jwt)', () => {
  it('every route × {none, read, write, admin, read+write}: the gateway lets through exactly the routes the scopes grant, else 403 Forbidden', async () => {
    const outcomes = await runMatrix(call, (response) => {
      // API Gateway's own answer: the function never runs.
      if (response.text) expect(response.json).toEqual({ message: 'Forbidden' });
      expect(response.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    });
    expect(outcomes.denied).toBeGreaterThan(0);
  });

  it('the functions check again: behind a gateway without route scopes, a missing scope is a 403 problem+json naming it', async () => {
    const outcomes = await runMatrix(lenient.call, (response, { method, access }) => {
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      if (method === 'HEAD') return;
      expect(response.json).toMatchObject({ status: 403, type: 'https://persona-db.dev/problems/insufficient-scope', required_scope: `personas:${access}` });
      expect(response.json.detail).toContain(`personas:${access}`);
    });
    expect(outcomes.denied).toBeGreaterThan(0);
  });
});

describe('the API document', () => {
  it("names each operation's scopes (one security requirement per scope, any one suffices), its 401 and its 403", async () => {
    const document = (await call('GET', '/openapi.json', { headers: await bearer(['personas:read']) })).json;
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const route of routes.filter((candidate) => candidate.path !== '$default')) {
      const operation = document.paths[route.path][route.method.toLowerCase()];
      const access = EXPECTED_ACCESS[route.name]!;
      if (access === 'public') {
        expect(operation.security, route.name).toEqual([]);
        continue;
      }
      expect(operation.security, route.name).toEqual([{ bearerAuth: [`personas:${access}`] }, { bearerAuth: ['personas:admin'] }]);
      // 403: API Gateway's own {"message":"Forbidden"}, or the function's insufficient-scope problem; 401: the gateway's.
      const forbidden = operation.responses['403'];
      expect(forbidden.content['application/json'].schema, route.name).toEqual({ $ref: '#/components/schemas/GatewayError' });
      expect(forbidden.content['application/problem+json'].schema.allOf[1].properties.type.enum, route.name).toContain('https://persona-db.dev/problems/insufficient-scope');
      expect(forbidden.description, route.name).toContain('`insufficient-scope`');
      expect(operation.responses['401'].content['application/json'].schema, route.name).toEqual({ $ref: '#/components/schemas/GatewayError' });
    }
  });
});

describe("the local JWT authorizer answers like API Gateway's", () => {
  const unauthorized = (response: ApiResponse, description?: RegExp) => {
    expect(response.status).toBe(401);
    expect(response.json).toEqual({ message: 'Unauthorized' });
    if (description) expect(response.headers.get('www-authenticate')).toMatch(description);
  };

  it('401 for a missing, malformed, expired, early, foreign-signed, unsigned or HMAC token, or a wrong issuer or audience', async () => {
    const now = Math.floor(Date.now() / 1000);
    unauthorized(await call('GET', '/personas'));
    unauthorized(await call('GET', '/personas', { headers: { authorization: 'Bearer not-a-jwt' } }), /error="invalid_token"/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ exp: now - 5 })}` } }), /expired/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ nbf: now + 600 })}` } }), /not valid yet/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ exp: undefined })}` } }), /no exp claim/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ iss: 'https://someone-else.example/' })}` } }), /issuer/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ aud: 'another-api' })}` } }), /audience/);
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({}, { key: await exportJWK(privateKey) })}` } }), /signature/);
    const hmac = await new SignJWT({ iss: issuer.issuer, aud: issuer.audience, exp: now + 600, scope: 'personas:admin' }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${hmac}` } }), /error="invalid_token"/);
    const [header, payload] = (await signRaw({})).split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(header!, 'base64url').toString()), alg: 'none' })).toString('base64url')}.${payload}.`;
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${unsigned}` } }), /error="invalid_token"/);
  });

  it('takes the token with or without "Bearer", client_id when there is no aud, and scp like scope; public pages need no token', async () => {
    const token = await signRaw({});
    expect((await call('GET', '/personas?limit=1', { headers: { authorization: token } })).status).toBe(200);
    expect((await call('GET', '/personas?limit=1', { headers: { authorization: `Bearer ${await signRaw({ aud: undefined, client_id: issuer.audience })}` } })).status).toBe(200);
    expect((await call('GET', '/personas?limit=1', { headers: { authorization: `Bearer ${await signRaw({ scope: undefined, scp: ['personas:read'] })}` } })).status).toBe(200);
    expect((await call('POST', '/personas', { body: {}, headers: { authorization: `Bearer ${await signRaw({ scope: undefined, scp: ['personas:read'] })}` } })).status).toBe(403);
    for (const path of ['/console', '/docs', '/assets/console.js']) expect((await call('GET', path)).status).toBe(200);
    const jwks = await call('GET', '/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.json.keys).toHaveLength(1);
    expect(jwks.json.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.json.keys[0].d).toBeUndefined(); // the public half only
  });

  it('401 for a token without a kid, or with a kid the issuer has no key for, or issued in the future', async () => {
    // "kid – The token must have a header claim that matches the key in the jwks_uri that signed the
    // token"; "iat – Must be before the current time in UTC" (http-api-jwt-authorizer.html, Validate claims).
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({}, { header: { kid: undefined } })}` } }), /kid/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({}, { header: { kid: 'retired-key' } })}` } }), /kid/);
    unauthorized(await call('GET', '/personas', { headers: { authorization: `Bearer ${await signRaw({ iat: Math.floor(Date.now() / 1000) + 600 })}` } }), /issued in the future/);
  });

  it('reads scopes as API Gateway does, the same in the gateway and in the functions: `scope`, else `scp`, split on spaces only', async () => {
    // "scope (RFC 6749 §3.3) or scp – The token must include at least one of the scopes in the
    // route's authorizationScopes" (http-api-jwt-authorizer.html). RFC 6749 §3.3: a list of
    // space-delimited scope tokens, and a comma is a character of a token, not a separator.
    const tokens = {
      commas: await signRaw({ scope: 'personas:read,personas:write' }),
      // `scope` is the token's scope list; a `scp` beside it is not read.
      both: await signRaw({ scope: 'personas:read', scp: ['personas:write'] }),
      scpString: await signRaw({ scope: undefined, scp: 'personas:read personas:write' }),
      scpArray: await signRaw({ scope: undefined, scp: ['personas:read', 'personas:write'] }),
    };
    const write = (send: ReturnType<typeof apiClient>, token: string) => send('POST', '/personas/batch', { body: {}, headers: { authorization: `Bearer ${token}` } });
    for (const send of [call, lenient.call]) {
      expect((await write(send, tokens.commas)).status).toBe(403);
      expect((await write(send, tokens.both)).status).toBe(403);
      expect((await write(send, tokens.scpString)).status).toBe(400); // allowed: the function's own 400 for the empty batch
      expect((await write(send, tokens.scpArray)).status).toBe(400);
    }
  });

  it('passes the claims to the function as strings, and the scopes, in requestContext.authorizer.jwt', async () => {
    recorded.events.length = 0;
    const token = await signRaw({ tenant_id: 'acme', scope: 'personas:read personas:write', groups: ['a', 'b'], verified: true, nothing: null, profile: { team: 'x' } });
    await recorded.call('GET', '/personas?limit=1', { headers: { authorization: `Bearer ${token}` } });
    await recorded.call('GET', '/no-such-route', { headers: { authorization: `Bearer ${token}` } });
    await recorded.call('GET', '/console', { headers: { authorization: `Bearer ${token}` } });
    const [list, unmatched, page] = recorded.events;
    const payload = decodeJwt(token);
    expect(list!.requestContext).toMatchObject({
      authorizer: {
        jwt: {
          claims: {
            tenant_id: 'acme',
            iss: issuer.issuer,
            aud: issuer.audience,
            scope: 'personas:read personas:write',
            exp: String(payload.exp),
            iat: String(payload.iat),
            groups: '[a b]',
            verified: 'true',
            profile: '{"team":"x"}',
          },
          scopes: ['personas:read', 'personas:write'],
        },
      },
    });
    const { claims } = (list!.requestContext as unknown as { authorizer: { jwt: { claims: Record<string, unknown> } } }).authorizer.jwt;
    expect(Object.values(claims).every((value) => typeof value === 'string')).toBe(true);
    expect('nothing' in claims).toBe(false);
    // A route without authorization scopes gets the claims and `scopes: null`; a public route no authorizer at all.
    expect((unmatched!.requestContext as unknown as { authorizer: { jwt: { scopes: unknown } } }).authorizer.jwt.scopes).toBeNull();
    expect('authorizer' in page!.requestContext).toBe(false);
    // Behind the gateway without route scopes every route is one without authorization scopes.
    lenient.events.length = 0;
    await lenient.call('GET', '/personas?limit=1', { headers: { authorization: `Bearer ${token}` } });
    expect((lenient.events[0]!.requestContext as unknown as { authorizer: { jwt: { scopes: unknown } } }).authorizer.jwt.scopes).toBeNull();
  });
});

describe('Idempotency-Keys of callers without a subject (AUTH=jwt, over HTTP)', () => {
  // API Gateway hands the function every claim of the validated token
  // (requestContext.authorizer.jwt.claims; http-api-jwt-authorizer.html: "After validating the JWT,
  // API Gateway passes the claims in the token to the API route's integration"). A machine client's
  // token may name its OAuth client (`client_id`, RFC 9068 §2.2; `azp`, OpenID Connect Core §2) and no `sub`.
  const writer = (claims: JWTPayload) => signRaw({ scope: 'personas:write', ...claims }).then((token) => ({ authorization: `Bearer ${token}` }));
  const create = async (claims: JWTPayload, key: string, body: unknown) => call('POST', '/personas', { body, headers: { ...(await writer(claims)), 'idempotency-key': key } });

  it('are scoped to the OAuth client (client_id, else azp): two clients never meet in one key', async () => {
    const key = `client-key-${randomUUID()}`;
    const first = await create({ client_id: 'client-a' }, key, samplePersona(21));
    expect(first.status).toBe(201);
    // Another client's same key and body: a request of its own, not the first client's replay.
    const other = await create({ client_id: 'client-b' }, key, samplePersona(21));
    expect(other.status).toBe(201);
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(other.json.id).not.toBe(first.json.id);
    // ... and another body under that key is its own request too, not a 422 about the first client's.
    expect((await create({ azp: 'client-c' }, key, samplePersona(22))).status).toBe(201);
    const retry = await create({ client_id: 'client-a' }, key, samplePersona(21));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json.id).toBe(first.json.id);
  });

  it('are refused, with a 400 saying why, from a token that names no caller; the same request without the key is served', async () => {
    const refused = await create({}, `nobody-${randomUUID()}`, samplePersona(23));
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ type: 'https://persona-db.dev/problems/idempotency-key-needs-caller' });
    expect(refused.json.detail).toMatch(/sub, client_id or azp/);
    expect((await call('POST', '/personas', { body: samplePersona(23), headers: await writer({}) })).status).toBe(201);
  });
});

describe('with TENANCY=claim, over HTTP', () => {
  it("the tenant of `personas token --tenant` reaches the functions as the token's claim: each tenant sees only its own personas", async () => {
    process.env.TENANCY = 'claim';
    try {
      const acme = await bearer(['personas:read', 'personas:write'], { tenant: 'acme' });
      const beta = await bearer(['personas:read', 'personas:write'], { tenant: 'beta' });
      const created = await call('POST', '/personas', { body: samplePersona(7), headers: acme });
      expect(created.status).toBe(201);
      expect((await call('GET', `/personas/${created.json.id}`, { headers: acme })).status).toBe(200);
      expect((await call('GET', `/personas/${created.json.id}`, { headers: beta })).status).toBe(404);
      expect((await call('GET', '/personas?limit=100', { headers: beta })).json.items).toEqual([]);
      // A valid token without the claim reaches nothing (the tenancy check's 403 problem).
      const untenanted = await call('GET', '/personas', { headers: await bearer(['personas:read']) });
      expect(untenanted.status).toBe(403);
      expect(untenanted.json.type).toMatch(/tenant-required$/);
    } finally {
      delete process.env.TENANCY;
    }
  });
});

describe("the functions' scope check reads the event as AWS delivers it", () => {
  const event = (routeKey: string, jwt?: { claims: Record<string, string>; scopes: string[] | null }) =>
    ({ routeKey, rawPath: '/', requestContext: { http: { method: routeKey.split(' ')[0] }, ...(jwt ? { authorizer: { jwt } } : {}) } }) as unknown as APIGatewayProxyEventV2;
  const jwtEnv = { AUTH: 'jwt' };

  it('uses jwt.scopes, else the scope or scp claim (null scopes on a route without authorization scopes); off with AUTH=none or iam', () => {
    expect(() => checkRouteScope(event('GET /personas', { claims: {}, scopes: ['personas:read'] }), jwtEnv)).not.toThrow();
    expect(() => checkRouteScope(event('HEAD /personas/{id}', { claims: { scope: 'openid personas:admin' }, scopes: null }), jwtEnv)).not.toThrow();
    expect(() => checkRouteScope(event('DELETE /personas/{id}', { claims: { scp: '[personas:write]' }, scopes: null }), jwtEnv)).not.toThrow();
    // As the gateway reads them: `scope` first (a `scp` beside it is not read), spaces only.
    expect(() => checkRouteScope(event('DELETE /personas/{id}', { claims: { scope: 'personas:read', scp: '[personas:write]' }, scopes: null }), jwtEnv)).toThrow(ProblemError);
    expect(() => checkRouteScope(event('DELETE /personas/{id}', { claims: { scope: 'personas:read,personas:write' }, scopes: null }), jwtEnv)).toThrow(ProblemError);
    const refused = (() => {
      try {
        checkRouteScope(event('PATCH /personas/{id}', { claims: { scope: 'personas:read' }, scopes: ['personas:read'] }), jwtEnv);
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(ProblemError);
    expect((refused as ProblemError).status).toBe(403);
    expect((refused as ProblemError).toDocument().required_scope).toBe('personas:write');
    // No authorizer output at all (a route that lost its authorizer): refused, not waved through.
    expect(() => checkRouteScope(event('GET /personas'), jwtEnv)).toThrow(/needs the scope personas:read/);
    expect(() => checkRouteScope(event('GET /personas'), { AUTH: 'none' })).not.toThrow();
    expect(() => checkRouteScope(event('GET /personas'), { AUTH: 'iam' })).not.toThrow();
    expect(() => checkRouteScope(event('GET /console'), jwtEnv)).not.toThrow();
    expect(() => checkRouteScope(event('$default', { claims: {}, scopes: null }), jwtEnv)).not.toThrow();
  });
});

describe('whose Idempotency-Key a request carries, from the event as AWS delivers it', () => {
  const keyed = (authorizer?: Record<string, unknown>) =>
    ({ routeKey: 'POST /personas', rawPath: '/personas', headers: { 'idempotency-key': 'k-1' }, requestContext: { http: { method: 'POST' }, ...(authorizer ? { authorizer } : {}) } }) as unknown as APIGatewayProxyEventV2;
  const scopeOf = (authorizer: Record<string, unknown> | undefined, env: NodeJS.ProcessEnv) => idempotencyRequest(keyed(authorizer), undefined, env)?.caller;
  const jwt = (claims: Record<string, string>) => ({ jwt: { claims: { iss: 'https://issuer.test/', ...claims }, scopes: ['personas:write'] } });

  it('the subject, else the OAuth client, each in its own namespace; the IAM principal; refused when nobody is named, except on an open stage', () => {
    const jwtEnv = { AUTH: 'jwt' };
    expect(scopeOf(jwt({ sub: 'alice', client_id: 'app' }), jwtEnv)).toBe(scopeOf(jwt({ sub: 'alice', client_id: 'other-app' }), jwtEnv));
    expect(scopeOf(jwt({ client_id: 'app' }), jwtEnv)).toBe(scopeOf(jwt({ sub: '', azp: 'app' }), jwtEnv));
    // A subject that happens to equal a client's id is still someone else.
    expect(scopeOf(jwt({ sub: 'app' }), jwtEnv)).not.toBe(scopeOf(jwt({ client_id: 'app' }), jwtEnv));
    expect(() => scopeOf(jwt({}), jwtEnv)).toThrow(/sub, client_id or azp/);
    // auth=iam: the principal API Gateway verified; a route that lost its authorizer names nobody.
    const iamEnv = { AUTH: 'iam' };
    expect(scopeOf({ iam: { accountId: '123456789012', userArn: 'arn:aws:iam::123456789012:role/importer', callerId: 'AROA1:session' } }, iamEnv)).toBe('iam:123456789012:arn:aws:iam::123456789012:role/importer');
    expect(() => scopeOf(undefined, iamEnv)).toThrow(ProblemError);
    // auth=none (dev, npm start): no identity exists, every request shares one scope, keys keep working.
    expect(scopeOf(undefined, { AUTH: 'none' })).toBe('anonymous');
    expect(idempotencyRequest({ ...keyed(), headers: {} }, undefined, jwtEnv)).toBeUndefined();
  });
});

describe('personas token and the CLI', () => {
  const cliEnv = { LOCAL_DATA_DIR: dataDir };

  it('prints a token of the local issuer with the scopes, the tenant claim and the expiry asked for; the key survives restarts', async () => {
    const run = await runCli(['token', '--scope', 'personas:read,personas:write', '--tenant', 'acme', '--expires', '5m'], { env: cliEnv });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ scope: 'personas:read personas:write', tenant_id: 'acme', iss: issuer.issuer, aud: issuer.audience });
    expect(claims.exp! - claims.iat!).toBe(300);
    // The running system (same data dir) accepts it, and so does a new issuer read from the kept key.
    expect((await call('GET', '/personas?limit=1', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const restarted = await localIssuer({ ...localIssuerSettings(cliEnv), keyFile });
    expect(restarted.jwks).toEqual(issuer.jwks);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const renamed = await runCli(['token', '--scope', 'personas:read', '--tenant', 'beta'], { env: { ...cliEnv, TENANT_CLAIM: 'org_id' } });
    expect(decodeJwt(renamed.stdout.trim())).toMatchObject({ org_id: 'beta' });
    expect(decodeJwt(renamed.stdout.trim()).tenant_id).toBeUndefined();

    const unknown = await runCli(['token', '--scope', 'personas:delete'], { env: cliEnv });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown scope personas:delete; the API's scopes are personas:read, personas:write, personas:admin/);
    const none = await runCli(['token'], { env: cliEnv });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/token needs --scope/);
  });

  it('sends PERSONAS_TOKEN (or --token) on its API calls, and says what to do on 401 and 403', async () => {
    const apiEnv = { ...cliEnv, PERSONAS_API_URL: apiUrl };
    const anonymous = await runCli(['search', 'teacher', '--limit', '1'], { env: apiEnv });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/answered 401[\s\S]*--token/);
    const reader = await issuer.sign({ scopes: ['personas:read'] });
    const search = await runCli(['search', 'teacher', '--limit', '1', '--json'], { env: { ...apiEnv, PERSONAS_TOKEN: reader } });
    expect(search.stderr).toBe('');
    expect(search.code).toBe(0);
    expect(JSON.parse(search.stdout).items.length).toBeLessThanOrEqual(1);
    // A write-only token: the function's 403 names the scope (behind the gateway without route scopes).
    const writer = await issuer.sign({ scopes: ['personas:write'] });
    const refused = await runCli(['search', 'teacher', '--token', writer], { env: { ...apiEnv, PERSONAS_API_URL: lenient.server.url } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/answered 403[\s\S]*personas:read/);

  });

  it('warns before it sends a token over plain http to a host off this machine, and only then', async () => {
    const reader = await issuer.sign({ scopes: ['personas:read'] });
    const warning = /warning: .*bearer token.*plain http.*persona-api\.invalid/;
    // .invalid never resolves (RFC 6761 §6.4), so nothing is sent; the CLI would retry for a minute: it is stopped once it has warned.
    const plain = await runCli(['search', 'teacher'], {
      env: { ...cliEnv, PERSONAS_API_URL: 'http://persona-api.invalid:3000', PERSONAS_TOKEN: reader },
      whileRunning: (child) => {
        const stop = setTimeout(() => child.kill(), 15_000);
        child.stderr!.once('data', () => setTimeout(() => child.kill(), 200));
        child.once('close', () => clearTimeout(stop));
      },
    });
    expect(plain.stderr).toMatch(warning);
    expect(plain.stderr.match(/warning:/g)).toHaveLength(1);
    // Who gets the warning: plain http off loopback only (the searches above, against the local API over http, printed nothing on stderr).
    for (const url of ['http://persona-api.invalid', 'http://192.0.2.10:3000', 'http://[2001:db8::1]/']) expect(sendsCredentialsInClear(new URL(url)), url).toBe(true);
    for (const url of ['https://persona-api.invalid', 'http://localhost:3000', 'http://127.0.0.1:3000', 'http://api.localhost', 'http://[::1]:3000']) expect(sendsCredentialsInClear(new URL(url)), url).toBe(false);
  });
});

/**
 * The typed client (packages/client) against the whole local system as `AUTH=jwt TENANCY=claim npm start`
 * runs it (DynamoDB Local, the local Qdrant server, the API behind the local JWT authorizer, the
 * stream worker with the real indexer), and through a stand-in in front of the API that answers as
 * a throttling gateway or a failing network would (support/apiStandIn.ts):
 * - retries: 429 and 503 with Retry-After (RFC 9110 §10.2.3: seconds to wait) are waited out and
 *   retried, a longer Retry-After than the client's bound is not; a dropped connection is retried;
 * - the Idempotency-Key of a POST is the same on every retry, so a create whose answer was lost is
 *   replayed by the API instead of written twice;
 * - If-Match: a stale version is a StaleVersionError with the current version; updatePersona's
 *   read-change-save runs again from the new version;
 * - the list, search and similar iterators page to the end;
 * - every problem type the API document names arrives as an ApiError with its type, status and
 *   field pointers, or is named below with why it cannot be produced here;
 * - SigV4 signatures match AWS's published test suite
 *   (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html: get-vanilla and
 *   get-vanilla-query-order-key-case, credentials AKIDEXAMPLE, 20150830T123600Z, us-east-1, service).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localIssuerSettings } from '../local/localIssuer';
import {
  ApiError,
  ApiNetworkError,
  bearerAuth,
  createPersonaClient,
  PROBLEM_TYPE_URIS,
  StaleVersionError,
  type PersonaClient,
  type PersonaInput,
  type ProblemType,
} from '../packages/client/src/index';
import { sigv4Auth } from '../packages/client/src/sigv4';
import type { Scope } from '../shared/routes';
import { einstein, samplePersona } from './support/apiClient';
import { startApiStandIn, type ApiStandIn } from './support/apiStandIn';
import { startTestSystem } from './support/localSystem';
import { runCli } from './support/operationsHelpers';

const workDir = mkdtempSync(join(tmpdir(), 'persona-client-'));
const TENANT = 'acme';

let env: Awaited<ReturnType<typeof startTestSystem>>;
let standIn: ApiStandIn;
/** The admin caller of tenant acme, straight to the API. */
let client: PersonaClient;
/** Released to let the indexer run (it waits while this is pending): personas written meanwhile are in the table, not yet in the index. */
let indexerGate: { open: () => void; wait: Promise<void> } = openGate();

function openGate() {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { open, wait };
}

/** A token of the local issuer (what `personas token --scope ... --tenant T` prints); tenant null: none. */
const token = (scopes: Scope[], tenant: string | null) => env.system.issuer!.sign({ scopes, ...(tenant === null ? {} : { tenant }) });
const clientFor = async (scopes: Scope[], options: { tenant?: string | null; baseUrl?: string; retry?: Parameters<typeof createPersonaClient>[0]['retry'] } = {}) =>
  createPersonaClient({
    baseUrl: options.baseUrl ?? env.system.apiUrl,
    auth: bearerAuth(await token(scopes, options.tenant === undefined ? TENANT : options.tenant)),
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
  });

/** The ApiError a call ends in. */
async function failure(call: Promise<unknown>): Promise<ApiError> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

const persona = (n: number) => samplePersona(n) as PersonaInput;

/** The problem types produced here, each by one call through the client. */
const produced = new Map<string, ApiError>();
const expectProblem = async (call: Promise<unknown>, expected: { status: number; slug: ProblemType | (string & {}); pointer?: string }) => {
  const error = await failure(call);
  expect(error.status).toBe(expected.status);
  expect(error.slug).toBe(expected.slug);
  expect(error.type).toBe(`https://persona-db.dev/problems/${expected.slug}`);
  expect(error.is(expected.slug)).toBe(true);
  if (expected.pointer) expect(error.errors.map((item) => item.pointer)).toContain(expected.pointer);
  expect(error.message).toContain(`answered ${expected.status} ${expected.slug}`);
  produced.set(error.type, error);
  return error;
};

beforeAll(async () => {
  process.env.TENANCY = 'claim';
  delete process.env.TENANT_CLAIM;
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  env = await startTestSystem(
    {
      auth: 'jwt',
      jwtKeyFile: localIssuerSettings({ LOCAL_DATA_DIR: workDir }).keyFile,
      wrapIndexer: (handler) => async (event) => {
        await indexerGate.wait;
        return handler(event);
      },
    },
  );
  indexerGate.open();
  client = await clientFor(['personas:admin']);
  standIn = await startApiStandIn(env.system.apiUrl);
});
afterAll(async () => {
  await standIn?.close();
  await env?.system.stop();
  delete process.env.TENANCY;
});

describe('retries', () => {
  it('waits out 429 and 503 with their Retry-After, with the same Idempotency-Key on every attempt, and creates one persona', async () => {
    const throughStandIn = await clientFor(['personas:admin'], { baseUrl: standIn.url, retry: { attempts: 4 } });
    standIn.requests.length = 0;
    standIn.inject({ status: 429, headers: { 'retry-after': '1' } }, { status: 503, headers: { 'retry-after': '0' }, body: '{"message":"Service Unavailable"}' });
    const created = await throughStandIn.createPersona({ ...einstein, name: 'Retried Einstein' } as PersonaInput);

    expect(standIn.requests.map((request) => request.fault && typeof request.fault === 'object' ? request.fault.status : 'forwarded')).toEqual([429, 503, 'forwarded']);
    const keys = standIn.requests.map((request) => request.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    // Retry-After: 1 is at least a second (plus up to 10% jitter), Retry-After: 0 no wait at all.
    expect(standIn.requests[1]!.at - standIn.requests[0]!.at).toBeGreaterThanOrEqual(1_000);
    const names = [];
    for await (const item of client.allPersonas()) names.push(item.name);
    expect(names.filter((name) => name === 'Retried Einstein')).toHaveLength(1);
    expect(created.version).toBe(1);
  });

  it('sends a create whose answer was lost again with the same key, and the API replays it instead of writing a second persona', async () => {
    const throughStandIn = await clientFor(['personas:admin'], { baseUrl: standIn.url });
    standIn.requests.length = 0;
    standIn.inject('lose-answer', 'drop');
    const { result, replayed, idempotencyKey } = await throughStandIn.createPersonas([persona(900), persona(901)]);

    expect(standIn.requests).toHaveLength(3);
    expect(standIn.requests.map((request) => request.headers['idempotency-key'])).toEqual([idempotencyKey, idempotencyKey, idempotencyKey]);
    // The first attempt was written; the third is its replay, with the same ids.
    expect(replayed).toBe(true);
    expect(result.created).toBe(2);
    const ids = result.results.map((item) => ('id' in item ? item.id : undefined));
    for (const id of ids) expect((await client.getPersona(id!)).version).toBe(1);
    const names = [];
    for await (const item of client.allPersonas()) names.push(item.name);
    expect(names.filter((name) => name === 'Persona 900')).toHaveLength(1);
  });

  it('does not retry past its bound: a Retry-After longer than maxDelayMs, or attempts used up, ends in the ApiError', async () => {
    const throughStandIn = await clientFor(['personas:admin'], { baseUrl: standIn.url, retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 2_000 } });
    standIn.requests.length = 0;
    standIn.inject({ status: 503, headers: { 'retry-after': '3600' } });
    const patient = await failure(throughStandIn.listPersonas());
    expect(patient).toMatchObject({ status: 503, retryAfterSeconds: 3600 });
    expect(standIn.requests).toHaveLength(1);

    standIn.requests.length = 0;
    standIn.inject({ status: 429 }, { status: 429 }, { status: 429 });
    const throttled = await failure(throughStandIn.listPersonas());
    expect(throttled).toMatchObject({ status: 429, title: 'Too Many Requests' });
    expect(standIn.requests).toHaveLength(3);
  });

  it('gives up on an API that is not there with an ApiNetworkError naming the URL', async () => {
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const nowhere = createPersonaClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { attempts: 2, baseDelayMs: 10 } });
    const error = await nowhere.listPersonas().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiNetworkError);
    expect((error as Error).message).toBe(`GET http://127.0.0.1:${port}/personas failed: fetch failed (connect ECONNREFUSED 127.0.0.1:${port})`);
  });

  it('waits for a persona that is not indexed yet (409 with Retry-After) and then ranks its neighbours', async () => {
    const indexed = await client.createPersona(persona(500));
    await env.system.streamWorker.drain();
    indexerGate = openGate();
    const fresh = await client.createPersona(persona(501));
    const impatient = await clientFor(['personas:read'], { retry: false });
    const notIndexed = await expectProblem(impatient.similarPersonas(fresh.id), { status: 409, slug: 'persona-not-indexed' });
    expect(notIndexed.retryAfterSeconds).toBeGreaterThan(0);

    const patient = await clientFor(['personas:read'], { retry: { attempts: 10 } });
    const answer = patient.similarPersonas(fresh.id, { mode: 'semantic', limit: 50 });
    setTimeout(() => indexerGate.open(), 500);
    expect((await answer).items.map((item) => item.id)).toContain(indexed.id);
  });
});

describe('If-Match', () => {
  it('answers a stale version with a StaleVersionError that names the current version', async () => {
    const created = await client.createPersona(persona(600));
    const changed = await client.patchPersona(created.id, { name: 'Changed meanwhile' });
    const error = await expectProblem(client.replacePersona(created.id, { ...created, name: 'Overwrite' }, { ifMatch: created }), { status: 412, slug: 'stale-version' });
    expect(error).toBeInstanceOf(StaleVersionError);
    expect(error).toMatchObject({ status: 412, slug: 'stale-version', currentVersion: changed.version, currentEtag: `"${changed.version}"` });
    await expect(client.deletePersona(created.id, { ifMatch: 1 })).rejects.toBeInstanceOf(StaleVersionError);
    expect((await client.getPersona(created.id)).name).toBe('Changed meanwhile');
  });

  it('reads, changes and saves again from the new version when someone saved in between', async () => {
    const created = await client.createPersona(persona(601));
    let rounds = 0;
    const saved = await client.updatePersona(created.id, async (current) => {
      rounds++;
      // Another writer gets in between the first read and its save.
      if (rounds === 1) await client.patchPersona(created.id, { beliefs: ['written by someone else'] });
      return { ...current, name: 'Renamed by updatePersona' };
    });
    expect(rounds).toBe(2);
    expect(saved).toMatchObject({ version: 3, name: 'Renamed by updatePersona', beliefs: ['written by someone else'] });
  });
});

describe('pages', () => {
  it('lists every persona once, page by page, and searches and ranks neighbours to the end of the ranking', async () => {
    const batch = await client.createPersonas(Array.from({ length: 23 }, (_, i) => persona(100 + i)));
    expect(batch.result.created).toBe(23);
    await env.system.streamWorker.drain();

    const pages = [];
    for await (const page of client.listPages({ limit: 7 })) pages.push(page.items.length);
    const all = [];
    for await (const item of client.allPersonas({ limit: 7 })) all.push(item.id);
    expect(new Set(all).size).toBe(all.length);
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(all.length / 7));
    expect(pages.reduce((sum, count) => sum + count, 0)).toBe(all.length);

    const whole = await client.searchPersonas({ mode: 'personality', traits: persona(100).traits, limit: 100 });
    const paged = [];
    for await (const page of client.searchPages({ mode: 'personality', traits: persona(100).traits, limit: 6 })) paged.push(...page.items.map((item) => item.id));
    expect(paged).toEqual(whole.items.map((item) => item.id));
    expect(paged.length).toBe(all.length);

    const firstId = batch.result.results[0]!;
    const similar = [];
    for await (const page of client.similarPages('id' in firstId ? firstId.id : '', { mode: 'personality', limit: 10, filter: { domain: ['domain-1', 'domain-2'] } })) similar.push(...page.items);
    expect(similar.length).toBeGreaterThan(0);
    expect(similar.every((item) => ['domain-1', 'domain-2'].some((domain) => item.domain.includes(domain)))).toBe(true);
  });
});

describe('problems', () => {
  it('turns each answer into an ApiError with its type, status and field pointers', async () => {
    const read = await clientFor(['personas:read']);
    const noTenant = await clientFor(['personas:admin'], { tenant: null });
    const raw = client.api;
    const id = (await client.createPersona(persona(700))).id;

    await expectProblem(client.createPersona({ ...persona(701), traits: { ...persona(701).traits, openness: 2 } }), { status: 400, slug: 'validation-error', pointer: '#/traits/openness' });
    await expectProblem(client.getPersona('not-a-uuid'), { status: 400, slug: 'validation-error', pointer: '#/path/id' });
    await expectProblem(raw.POST('/personas', { body: persona(702), bodySerializer: () => '{"name":' }), { status: 400, slug: 'malformed-json' });
    await expectProblem(client.createPersona(persona(703), { idempotencyKey: 'x'.repeat(256) }), { status: 400, slug: 'invalid-idempotency-key' });
    await expectProblem(client.createPersona({ ...persona(704), beliefs: ['x'.repeat(70_000)] }), { status: 413, slug: 'body-too-large' });
    await expectProblem(raw.POST('/personas', { body: persona(705), headers: { 'content-type': 'text/plain' } }), { status: 415, slug: 'unsupported-media-type' });
    await expectProblem(client.getPersona(randomUUID()), { status: 404, slug: 'persona-not-found' });
    await expectProblem(client.listPersonas({ cursor: 'not-a-cursor' }), { status: 400, slug: 'invalid-cursor' });
    await expectProblem(client.patchPersona(id, { name: 'x' }, { ifMatch: 'not-an-etag' }), { status: 400, slug: 'invalid-precondition' });
    await expectProblem(raw.PUT('/personas/{id}', { params: { path: { id }, header: {} as { 'If-Match': string } }, body: persona(706) }), { status: 428, slug: 'precondition-required' });
    await expectProblem(client.replacePersona(id, persona(707), { ifMatch: 9 }), { status: 412, slug: 'stale-version' });

    const key = randomUUID();
    const once = await client.createPersona(persona(708), { idempotencyKey: key });
    await expectProblem(client.createPersona(persona(709), { idempotencyKey: key }), { status: 422, slug: 'idempotency-key-reused' });
    await client.deletePersona(once.id);
    await expectProblem(client.createPersona(persona(708), { idempotencyKey: key }), { status: 410, slug: 'persona-deleted' });

    await expectProblem(raw.GET('/no-such-route' as '/personas'), { status: 404, slug: 'route-not-found' });
    await expectProblem(raw.request('put' as 'get', '/personas'), { status: 405, slug: 'method-not-allowed' });
    await expectProblem(noTenant.listPersonas(), { status: 403, slug: 'tenant-required' });

    // The gateway's own refusals are not problem documents: about:blank, with its message as title and detail.
    const forbidden = await failure(read.createPersona(persona(710)));
    expect(forbidden).toMatchObject({ status: 403, type: 'about:blank', slug: '', title: 'Forbidden', detail: 'Forbidden' });
    const anonymous = await failure(createPersonaClient({ baseUrl: env.system.apiUrl }).listPersonas());
    expect(anonymous).toMatchObject({ status: 401, type: 'about:blank', title: 'Unauthorized' });
  });

  it('covers every problem type of the API document, or says why it cannot here', () => {
    // Each needs a fault this system does not make on request; the tests named produce them.
    const elsewhere: Record<string, string> = {
      'edit-conflict': 'PATCH losing to other writers past its retry bounds (test/patchContention.test.ts)',
      'idempotency-request-in-progress': 'a first request with the key still running after 8 s (test/idempotencyConcurrency.test.ts)',
      'insufficient-scope': "a gateway that lets a token without the route's scope through, the function's own check (test/accessControl.test.ts)",
      'internal-error': 'a fault in a function (test/malformedRequests.test.ts)',
      'keywords-not-indexed': 'an index built before the keyword vector (test/reindexKeywords.test.ts)',
      'query-not-embeddable': 'the real embedding model, which knows no token of the query (test/searchRealModel.test.ts)',
      'search-unavailable': 'the vector index down (test/search.test.ts)',
      'idempotency-key-needs-caller': 'credentials that name no caller (test/accessControl.test.ts)',
      'cursor-expired': 'a cursor signed more than its lifetime ago (test/secrets.test.ts)',
      throttled: 'DynamoDB throttling a keyed create, which DynamoDB Local never does; the client retries its 503 as any other (above)',
    };
    expect(PROBLEM_TYPE_URIS.length).toBeGreaterThan(20);
    const slugOf = (uri: string) => uri.split('/').at(-1)!;
    const missing = PROBLEM_TYPE_URIS.filter((uri) => !produced.has(uri) && !(slugOf(uri) in elsewhere));
    expect(missing).toEqual([]);
    // Produced here but unknown to the document: the document is missing a type.
    expect([...produced.keys()].filter((uri) => !(PROBLEM_TYPE_URIS as readonly string[]).includes(uri))).toEqual([]);
    expect(Object.keys(elsewhere).filter((slug) => produced.has(`https://persona-db.dev/problems/${slug}`))).toEqual([]);
  });
});

describe('SigV4', () => {
  it("signs as AWS's test suite says", async () => {
    const auth = sigv4Auth({
      credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }),
      region: 'us-east-1',
      service: 'service',
      datetime: '20150830T123600Z',
    });
    const expected = {
      'https://example.amazonaws.com/': '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      'https://example.amazonaws.com/?Param2=value2&Param1=value1': 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    };
    for (const [url, signature] of Object.entries(expected)) {
      const signed = await auth(new Request(url));
      expect(signed.headers.get('authorization')).toBe(
        `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
      );
      expect(signed.headers.get('x-amz-date')).toBe('20150830T123600Z');
    }
  });

  it('signs every attempt of a request, its Idempotency-Key and body included', async () => {
    const signing = createPersonaClient({
      baseUrl: standIn.url,
      auth: sigv4Auth({ credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session' }, region: 'eu-west-1' }),
    });
    standIn.requests.length = 0;
    standIn.inject({ status: 429, headers: { 'retry-after': '0' } });
    // The local API does not check SigV4 (auth=iam is not emulated): the gateway here answers 401 to the unsigned-for-it request.
    expect(await failure(signing.createPersona(persona(800), { idempotencyKey: 'signed-key' }))).toMatchObject({ status: 401, title: 'Unauthorized' });
    expect(standIn.requests).toHaveLength(2);
    for (const request of standIn.requests) {
      expect(request.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*idempotency-key[^,]*x-amz-date[^,]*x-amz-security-token, Signature=[0-9a-f]{64}$/);
      expect(request.headers['x-amz-security-token']).toBe('session');
    }
  });

  it('signs the CLI\'s calls with --iam, with the AWS credentials of the environment and the region AWS_REGION names', async () => {
    standIn.requests.length = 0;
    const run = await runCli(['search', 'teacher', '--iam', '--api-url', standIn.url], {
      env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', AWS_SESSION_TOKEN: '', AWS_REGION: 'eu-west-1', AWS_PROFILE: '', PERSONAS_TOKEN: 'ignored-with-iam' },
    });
    // The local gateway checks JWTs, not signatures: its 401, and the advice names --iam.
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/answered 401[\s\S]*auth=iam pass --iam/);
    expect(standIn.requests).toHaveLength(1);
    expect(standIn.requests[0]!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}$/);
    expect((await runCli(['search', 'teacher', '--iam', '--token', 'x'])).stderr).toContain('--iam signs every request with SigV4 (auth=iam); it takes no --token');
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableConfig } from '../shared/config';
import { countTableItems, useFreshTables } from './support/tables';
import { samplePersona, startTestApi, type ApiResponse } from './support/apiClient';

/**
 * Concurrent requests with one Idempotency-Key, over real HTTP against the local API and the real
 * DynamoDB Local: under any interleaving exactly one body's content is stored, every request with
 * that body gets its response (first or replayed), and every request with another body gets 422.
 * Each round starts 2-3 requests, each after a random delay of 0-12 ms, so the rounds interleave
 * claim, item writes and completion differently.
 */

let config: TableConfig;
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;

beforeAll(async () => {
  config = await useFreshTables('persona-idem');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
});
afterAll(() => close());

const ROUNDS_PER_SCENARIO = 60;
const BATCH_SIZE = 8;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two different bodies for one round: same shape, different content. */
const bodiesFor = (route: 'single' | 'batch', round: number) => {
  const variant = (v: number) =>
    route === 'single'
      ? { ...samplePersona(round), name: `Round ${round} body ${v}` }
      : { personas: Array.from({ length: BATCH_SIZE }, (_, i) => ({ ...samplePersona(i), name: `Round ${round} body ${v} item ${i}` })) };
  return [variant(0), variant(1)];
};

const storedNamesOf = async (route: 'single' | 'batch', response: ApiResponse): Promise<string[]> => {
  const ids: string[] = route === 'single' ? [response.json.id] : response.json.results.map((result: { id: string }) => result.id);
  return Promise.all(ids.map(async (id) => (await api('GET', `/personas/${id}`)).json.name as string));
};

async function runRound(route: 'single' | 'batch', sameBody: boolean, round: number): Promise<number> {
  const key = `${route}-${sameBody ? 'same' : 'diff'}-${round}-${Math.random().toString(36).slice(2)}`;
  const bodies = bodiesFor(route, round);
  const count = 2 + (round % 2);
  // With different bodies, at least one request of each; the rest pick at random.
  const choice = Array.from({ length: count }, (_, i) => (sameBody ? 0 : i < 2 ? i : Math.round(Math.random())));
  const path = route === 'single' ? '/personas' : '/personas/batch';
  const responses = await Promise.all(
    choice.map(async (variant) => {
      await sleep(Math.random() * 12);
      return { variant, response: await api('POST', path, { body: bodies[variant], headers: { 'idempotency-key': key } }) };
    }),
  );
  const successStatus = route === 'single' ? 201 : 200;
  const winners = responses.filter(({ response }) => response.status === successStatus);
  const context = JSON.stringify(responses.map(({ variant, response }) => ({ variant, status: response.status, body: response.json })));

  // Exactly one body won; every request with it got the same answer, every other one a 422.
  expect(new Set(winners.map(({ variant }) => variant)).size, context).toBe(1);
  const winner = winners[0]!;
  for (const { variant, response } of responses) {
    if (variant === winner.variant) {
      expect(response.status, context).toBe(successStatus);
      expect(response.json, context).toEqual(winner.response.json);
    } else {
      expect(response.status, context).toBe(422);
      expect(response.json.type, context).toMatch(/idempotency-key-reused$/);
    }
  }
  expect(winners.filter(({ response }) => response.headers.get('idempotent-replayed') !== 'true').length, context).toBe(1);

  // The stored content is the winner's, item for item.
  const winnerBody = bodies[winner.variant] as { name?: string; personas?: Array<{ name: string }> };
  const expectedNames = route === 'single' ? [winnerBody.name] : winnerBody.personas!.map((persona) => persona.name);
  expect(await storedNamesOf(route, winner.response), context).toEqual(expectedNames);
  return expectedNames.length;
}

describe('concurrent requests with one Idempotency-Key store exactly one request', () => {
  let expectedItems = 0;

  for (const route of ['single', 'batch'] as const) {
    for (const sameBody of [true, false]) {
      it(`${route} route, ${sameBody ? 'same body' : 'different bodies'}: ${ROUNDS_PER_SCENARIO} interleavings`, async () => {
        for (let round = 0; round < ROUNDS_PER_SCENARIO; round++) expectedItems += await runRound(route, sameBody, round);
      }, 120_000);
    }
  }

  it('the table holds exactly the winners’ personas: nothing from a losing request, nothing twice', async () => {
    expect(expectedItems).toBe(ROUNDS_PER_SCENARIO * 2 * (1 + BATCH_SIZE));
    expect(await countTableItems(config.personaTableName)).toBe(expectedItems);
  });
});

describe('Idempotency-Key semantics', () => {
  const keyed = (key: string) => ({ headers: { 'idempotency-key': key } });

  it('hashes the canonical body (RFC 8785): the same body with keys in another order replays', async () => {
    const key = `canonical-${Math.random()}`;
    const body = samplePersona(7);
    const first = await api('POST', '/personas', { body, ...keyed(key) });
    expect(first.status).toBe(201);
    const reordered = Object.fromEntries(Object.entries({ ...body, traits: Object.fromEntries(Object.entries(body.traits as object).reverse()) }).reverse());
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(body));
    const again = await api('POST', '/personas', { body: reordered, ...keyed(key) });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(first.json.id);
  });

  it('answers a replay of a since-deleted persona with 410 naming it, not with a persona that no longer exists', async () => {
    const key = `deleted-${Math.random()}`;
    const first = await api('POST', '/personas', { body: samplePersona(8), ...keyed(key) });
    expect((await api('DELETE', `/personas/${first.json.id}`)).status).toBe(204);
    const replay = await api('POST', '/personas', { body: samplePersona(8), ...keyed(key) });
    expect(replay.status).toBe(410);
    expect(replay.json).toMatchObject({ type: expect.stringMatching(/persona-deleted$/), id: first.json.id });
    expect(await api('GET', `/personas/${first.json.id}`)).toMatchObject({ status: 404 });
  });

  it('marks the since-deleted items of a replayed batch', async () => {
    const key = `deleted-batch-${Math.random()}`;
    const body = { personas: [samplePersona(1), samplePersona(2)] };
    const first = await api('POST', '/personas/batch', { body, ...keyed(key) });
    expect(first.json.created).toBe(2);
    await api('DELETE', `/personas/${first.json.results[1].id}`);
    const replay = await api('POST', '/personas/batch', { body, ...keyed(key) });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.results[0]).toEqual(first.json.results[0]);
    expect(replay.json.results[1]).toEqual({ ...first.json.results[1], deleted: true });
  });
});

describe('claims: callers, abandoned requests, requests still running', () => {
  /**
   * An API Gateway HTTP API (payload 2.0) event as a JWT authorizer delivers it: the verified claims
   * are in requestContext.authorizer.jwt.claims (AWS, "Working with AWS Lambda proxy integrations for
   * HTTP APIs"; the Powertools parser's APIGatewayRequestContextV2 schema has the same shape).
   */
  const eventAs = (subject: string | undefined, key: string, body: unknown) =>
    ({
      version: '2.0',
      routeKey: 'POST /personas',
      rawPath: '/personas',
      rawQueryString: '',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: {
        accountId: '123456789012',
        apiId: 'api',
        domainName: 'api.example.com',
        domainPrefix: 'api',
        http: { method: 'POST', path: '/personas', protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
        requestId: 'r',
        routeKey: 'POST /personas',
        stage: '$default',
        time: '',
        timeEpoch: 0,
        ...(subject ? { authorizer: { jwt: { claims: { iss: 'https://issuer.example.com', sub: subject }, scopes: null } } } : {}),
      },
    }) as never;

  it('scopes keys by caller: another caller’s same key neither replays nor reveals the first caller’s request', async () => {
    const { handler } = await import('../functions/api/createPersona');
    const { lambdaContext } = await import('../local/lambdaEvent');
    const key = `shared-key-${Math.random()}`;
    const invoke = async (subject: string, body: unknown) => {
      const result = (await handler(eventAs(subject, key, body), lambdaContext('createPersona'))) as { statusCode: number; headers: Record<string, string>; body: string };
      return { status: result.statusCode, replayed: result.headers['Idempotent-Replayed'], json: JSON.parse(result.body) };
    };
    const alice = await invoke('alice', samplePersona(11));
    expect(alice.status).toBe(201);
    const bobSame = await invoke('bob', samplePersona(11));
    expect(bobSame).toMatchObject({ status: 201, replayed: undefined });
    expect(bobSame.json.id).not.toBe(alice.json.id);
    const bobOther = await invoke('bob-2', samplePersona(12));
    expect(bobOther.status).toBe(201);
    const aliceRetry = await invoke('alice', samplePersona(11));
    expect(aliceRetry).toMatchObject({ status: 201, replayed: 'true' });
    expect(aliceRetry.json.id).toBe(alice.json.id);
  });

  it('a holder that failed mid-batch is finished by the retry of the same body; another body stays a 422', async () => {
    const { batchCreatePersonas } = await import('../shared/persona/personaService');
    const { personaRepositoryFor } = await import('../shared/persona/personaRepository');
    const repository = personaRepositoryFor();
    const request = { key: `crash-${Math.random()}`, caller: 'anonymous', leaseMs: 10_000 };
    const body = { personas: Array.from({ length: 6 }, (_, i) => samplePersona(i)) };
    // The first attempt writes three items, then its function dies.
    const failing = {
      ...repository,
      createMany: async (personas: Parameters<typeof repository.createMany>[0]) => {
        await repository.createMany(personas.slice(0, 3));
        throw new Error('function timed out');
      },
    };
    const before = await countTableItems(config.personaTableName);
    await expect(batchCreatePersonas({ repository: failing }, body, request)).rejects.toThrow('function timed out');
    expect(await countTableItems(config.personaTableName)).toBe(before + 3);

    await expect(batchCreatePersonas({ repository }, { personas: body.personas.slice(1) }, request)).rejects.toMatchObject({ status: 422 });
    const retry = await batchCreatePersonas({ repository }, body, request);
    expect(retry.replayed).toBe(false);
    expect(retry.result).toMatchObject({ created: 6, failed: 0 });
    expect(await countTableItems(config.personaTableName)).toBe(before + 6);
    expect((await batchCreatePersonas({ repository }, body, request)).replayed).toBe(true);
  });

  it('a claim whose holder vanished is taken over by the same body once its lease ends; until then the retry waits, then 409', async () => {
    const { createPersona } = await import('../shared/persona/personaService');
    const { personaRepositoryFor } = await import('../shared/persona/personaRepository');
    const { requestHash, scopedIdempotencyKey } = await import('../shared/persona/idempotency');
    const repository = personaRepositoryFor();
    const body = samplePersona(21);
    const claimAbandoned = async (key: string, leaseMs: number) =>
      repository.claimIdempotencyKey({
        key: scopedIdempotencyKey('createPersona', { key, caller: 'anonymous' }),
        request_hash: requestHash(body),
        status: 'in-progress',
        owner: 'vanished',
        lease_expires_at: Date.now() + leaseMs,
        expires_at: Math.floor(Date.now() / 1000) + 3600,
      });

    const shortKey = `vanished-${Math.random()}`;
    expect(await claimAbandoned(shortKey, 300)).toMatchObject({ kind: 'claimed' });
    await expect(createPersona({ repository }, samplePersona(22), { key: shortKey, caller: 'anonymous', leaseMs: 10_000 })).rejects.toMatchObject({ status: 422 });
    const takenOver = await createPersona({ repository }, body, { key: shortKey, caller: 'anonymous', leaseMs: 10_000 });
    expect(takenOver.replayed).toBe(false);

    const longKey = `running-${Math.random()}`;
    expect(await claimAbandoned(longKey, 60_000)).toMatchObject({ kind: 'claimed' });
    const waiting = createPersona({ repository }, body, { key: longKey, caller: 'anonymous', leaseMs: 1_500 });
    await expect(waiting).rejects.toMatchObject({ status: 409, type: 'idempotency-request-in-progress', headers: { 'Retry-After': '1' } });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { MAX_REPORTED_ERRORS } from '../shared/http/problem';
import { LAMBDA_RESPONSE_LIMIT_BYTES } from '../shared/http/response';
import { lambdaContext } from '../local/lambdaEvent';
import { einstein, samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { waitFor } from './support/operationsHelpers';

let env: Awaited<ReturnType<typeof startTestSystem>>;
let api: Awaited<ReturnType<typeof startTestSystem>>['api'];

beforeAll(async () => {
  env = await startTestSystem();
  api = env.api;
});
afterAll(() => env?.system.stop());

/** Members k0 … k{n-1}, each an unknown field. */
const unknownKeys = (n: number, prefix = 'k') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, 1]));
const SMALL = 64 * 1024;
/**
 * Each ~1 MB request on its own connection: over Node's HTTP keep-alive, a large POST sent on a
 * socket that just carried another large request is sometimes reset (ECONNRESET) by the local
 * server's transport, before any handler runs; that is not what these tests are about.
 */
const fresh = { connection: 'close' };

describe('error responses stay small however many errors a request has', () => {
  it('a batch item with 80,000 unknown keys (an 869 KB body) reports the first 100 errors and how many more', async () => {
    const body = { personas: [{ ...einstein, ...unknownKeys(80_000) }] };
    expect(JSON.stringify(body).length).toBeGreaterThan(850_000);
    const response = await api('POST', '/personas/batch', { body, headers: fresh });
    expect(response.status).toBe(200);
    expect(Buffer.byteLength(response.text)).toBeLessThan(SMALL);
    const [result] = response.json.results;
    expect(result).toMatchObject({ index: 0, status: 400, more_errors: 80_000 - MAX_REPORTED_ERRORS });
    expect(result.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(result.errors[0]).toEqual({ pointer: '#/personas/0/k0', detail: expect.stringContaining("unknown field 'k0'") });
  });

  it('a batch of 100 items with 800 unknown keys each reports 100 errors over all items', async () => {
    const body = { personas: Array.from({ length: 100 }, (_, i) => ({ ...samplePersona(i), ...unknownKeys(800) })) };
    const response = await api('POST', '/personas/batch', { body, headers: fresh });
    expect(response.status).toBe(200);
    expect(Buffer.byteLength(response.text)).toBeLessThan(SMALL);
    const shown = response.json.results.reduce((sum: number, result: { errors: unknown[] }) => sum + result.errors.length, 0);
    const omitted = response.json.results.reduce((sum: number, result: { more_errors?: number }) => sum + (result.more_errors ?? 0), 0);
    expect(shown).toBe(MAX_REPORTED_ERRORS);
    expect(shown + omitted).toBe(100 * 800);
    expect(response.json.failed).toBe(100);
  });

  it('problem documents (envelope errors, a single create) carry at most 100 errors and more_errors', async () => {
    const envelope = await api('POST', '/personas/batch', { body: { personas: [einstein], ...unknownKeys(80_000, 'x') }, headers: fresh });
    expect(envelope.status).toBe(400);
    expect(envelope.headers.get('content-type')).toContain('application/problem+json');
    expect(Buffer.byteLength(envelope.text)).toBeLessThan(SMALL);
    expect(envelope.json.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(envelope.json.more_errors).toBe(80_000 - MAX_REPORTED_ERRORS);

    const single = await api('POST', '/personas', { body: { ...einstein, ...unknownKeys(5_000) }, headers: fresh });
    expect(single.status).toBe(400);
    expect(single.json.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(single.json.more_errors).toBe(5_000 - MAX_REPORTED_ERRORS);
  });

  it('an enormous field name is clipped, not echoed whole in pointer and detail', async () => {
    const name = 'n'.repeat(60_000);
    const response = await api('POST', '/personas', { body: { ...einstein, [name]: 1 }, headers: fresh });
    expect(response.status).toBe(400);
    expect(Buffer.byteLength(response.text)).toBeLessThan(4 * 1024);
    expect(response.json.errors[0].pointer).toMatch(/^#\/n+…$/);
  });
});

/**
 * Lambda answers a synchronous invocation with at most 6 MB: 6,291,556 bytes of the JSON document the
 * function returns, in which the body is one escaped string (AWS Lambda quotas, "Invocation payload
 * (request and response)"; the runtime's error reads "Exceeded maximum allowed payload size (6291556
 * bytes)"). So the tests call the deployed handler modules and measure what they return, encoded.
 */
describe('pages fit in a Lambda response', () => {
  /** A persona of about 61 KB of request body, 30,000 of it quotes: each is 2 bytes in the body, 4 in the Lambda response. */
  const quoteHeavy = (n: number) => ({
    ...samplePersona(n),
    beliefs: Array.from({ length: 50 }, () => '"'.repeat(300)),
    signature_phrases: Array.from({ length: 50 }, () => '"'.repeat(300)),
  });
  const PERSONAS = 100;

  const invoke = async (entry: string, event: Partial<APIGatewayProxyEventV2>) => {
    const { handler } = (await import(`../functions/api/${entry}.ts`)) as { handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }> };
    const result = await handler(
      { version: '2.0', rawPath: '/', rawQueryString: '', headers: {}, isBase64Encoded: false, requestContext: { http: { method: 'GET' } }, ...event },
      lambdaContext(entry),
    );
    return { result, encodedBytes: Buffer.byteLength(JSON.stringify(result)), json: JSON.parse(result.body) };
  };

  beforeAll(async () => {
    expect(JSON.stringify(quoteHeavy(0)).length).toBeLessThan(64 * 1024);
    for (let start = 0; start < PERSONAS; start += 16) {
      const personas = Array.from({ length: Math.min(16, PERSONAS - start) }, (_, i) => quoteHeavy(start + i));
      const response = await api('POST', '/personas/batch', { body: { personas }, headers: fresh });
      expect(response.json.failed, response.text).toBe(0);
    }
  }, 120_000);

  it('GET /personas?limit=100 of large personas ends the page early with a cursor; following it returns each persona once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const queryStringParameters: Record<string, string> = { limit: '100', ...(cursor ? { cursor } : {}) };
      const { result, encodedBytes, json } = await invoke('listPersonas', { queryStringParameters });
      expect(result.statusCode, result.body.slice(0, 300)).toBe(200);
      expect(encodedBytes).toBeLessThanOrEqual(LAMBDA_RESPONSE_LIMIT_BYTES);
      if (pages === 0) {
        expect(json.items.length).toBeLessThan(100);
        expect(encodedBytes).toBeGreaterThan(LAMBDA_RESPONSE_LIMIT_BYTES * 0.7);
      }
      seen.push(...json.items.filter((item: { beliefs: string[] }) => item.beliefs[0]?.startsWith('"')).map((item: { id: string }) => item.id));
      cursor = json.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    expect(seen).toHaveLength(PERSONAS);
    expect(new Set(seen).size).toBe(PERSONAS);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('a hydrated search of 100 large personas ends early with next_offset at the first result left out', async () => {
    const body = JSON.stringify({ mode: 'personality', traits: samplePersona(0).traits, limit: 100, hydrate: true });
    const search = (offset: number) =>
      invoke('searchPersonas', {
        rawPath: '/personas/search',
        headers: { 'content-type': 'application/json' },
        body: body.replace('"limit":100', `"limit":100,"offset":${offset}`),
        requestContext: { http: { method: 'POST' } } as never,
      });
    await waitFor(async () => ((await env.qdrant.count(env.collection!, { exact: true })).count === PERSONAS ? true : undefined), 90_000, 'the large personas to be indexed');
    const first = await search(0);
    expect(first.result.statusCode).toBe(200);
    expect(first.encodedBytes).toBeLessThanOrEqual(LAMBDA_RESPONSE_LIMIT_BYTES);
    expect(first.json.items.length).toBeLessThan(100);
    expect(first.encodedBytes).toBeGreaterThan(LAMBDA_RESPONSE_LIMIT_BYTES * 0.7);
    expect(first.json.next_offset).toBe(first.json.items.length);
    const second = await search(first.json.next_offset);
    expect(second.encodedBytes).toBeLessThanOrEqual(LAMBDA_RESPONSE_LIMIT_BYTES);
    const third = second.json.next_offset ? await search(second.json.next_offset) : undefined;
    const ids = [...first.json.items, ...second.json.items, ...(third?.json.items ?? [])].map((item: { id: string }) => item.id);
    expect(ids).toHaveLength(PERSONAS);
    expect(new Set(ids).size).toBe(PERSONAS);
  }, 120_000);
});

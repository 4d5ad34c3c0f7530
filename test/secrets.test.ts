/**
 * The Qdrant connection and the cursor key follow their Secrets Manager secrets: read through
 * Powertools parameters against a local Secrets Manager stand-in (test/support/secretsManagerStandIn.ts)
 * and the local Qdrant server with API keys.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';
import { freePort } from './support/globalSetup';
import { startSecretsManagerStandIn, type SecretsManagerStandIn } from './support/secretsManagerStandIn';
import { logger } from '../shared/observability';
import { SECRET_MAX_AGE_SECONDS } from '../shared/aws/secrets';
import { connectQdrant, createQdrantClient, FORCED_REFRESH_INTERVAL_MS, InsecureQdrantUrlError, qdrantSettings } from '../shared/vectorIndex/qdrantConnection';
import { cursorSigningKey, CursorKeyConfigError } from '../shared/persona/cursorSigningKey';
import { CURSOR_TTL_SECONDS, decodeCursor, encodeCursor } from '../shared/persona/pageCursor';
import { ProblemError } from '../shared/http/problem';

let secrets: SecretsManagerStandIn;
const servers: QdrantServer[] = [];

beforeAll(async () => {
  secrets = await startSecretsManagerStandIn();
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await secrets.close();
});

async function qdrantServer(apiKey: string, port = 0): Promise<QdrantServer> {
  const server = await startQdrantServer({ port, apiKey });
  servers.push(server);
  return server;
}

const connect = (secretArn: string) => {
  const env = { QDRANT_SECRET_ARN: secretArn, QDRANT_COLLECTION: 'personas' };
  return connectQdrant((forceFetch) => qdrantSettings(env, { forceFetch }));
};

/** Moves Date (which Powertools' cache and the forced-refresh throttle read) forward. */
function advanceClock(ms: number): void {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + ms });
}

describe('Qdrant connection from the secret', () => {
  it('an indexer that started on the placeholder url reaches Qdrant as soon as the real url is put in, without a restart', async () => {
    const server = await qdrantServer('key-one');
    const arn = secrets.create('placeholder', { url: 'https://replace-me.qdrant.invalid:6333', apiKey: 'generated' });
    const { client, settings } = await connect(arn);
    await expect(client.getCollections()).rejects.toThrow();
    expect(settings().url).toContain('replace-me');

    // The documented post-deploy step: put-secret-value with the real url and key.
    const version = secrets.rotate(arn, { url: server.url, apiKey: 'key-one' });
    advanceClock(FORCED_REFRESH_INTERVAL_MS);
    const info = vi.spyOn(logger, 'info');
    await expect(client.getCollections()).resolves.toEqual({ collections: [] });
    expect(settings().secretVersion).toBe(version);
    // The version in use is logged; the key never is.
    const logged = JSON.stringify(info.mock.calls);
    expect(logged).toContain(version);
    expect(logged).not.toContain('key-one');
  });

  it('a rotated API key (401 from Qdrant) is re-read at once and the call succeeds on the new key', async () => {
    const port = await freePort();
    let server = await qdrantServer('old-key', port);
    const arn = secrets.create('rotation', { url: server.url, apiKey: 'old-key' });
    const { client, settings } = await connect(arn);
    await client.createCollection('rotated', { vectors: { size: 4, distance: 'Cosine' } });
    const readsBefore = secrets.reads.get('rotation')!;

    // Qdrant gets a new key (restart with it), then the secret is updated: warm clients still hold the old one.
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    server = await qdrantServer('new-key', port);
    const version = secrets.rotate(arn, { url: server.url, apiKey: 'new-key' });
    advanceClock(FORCED_REFRESH_INTERVAL_MS);
    await expect(client.getCollections()).resolves.toEqual({ collections: [] });
    expect(settings().secretVersion).toBe(version);
    expect(secrets.reads.get('rotation')! - readsBefore).toBe(1);
  });

  it('without any failure, a changed secret is picked up once the cache is older than its max age', async () => {
    const first = await qdrantServer('a-key');
    const second = await qdrantServer('b-key');
    await createQdrantClient({ url: second.url, apiKey: 'b-key' }).createCollection('only-on-second', { vectors: { size: 4, distance: 'Cosine' } });
    const arn = secrets.create('aging', { url: first.url, apiKey: 'a-key' });
    const { client } = await connect(arn);
    expect((await client.getCollections()).collections).toEqual([]);

    secrets.rotate(arn, { url: second.url, apiKey: 'b-key' });
    // Still inside the cache's age: the old (working) settings stay.
    expect((await client.getCollections()).collections).toEqual([]);
    advanceClock((SECRET_MAX_AGE_SECONDS + 1) * 1000);
    expect((await client.getCollections()).collections).toEqual([{ name: 'only-on-second' }]);
  });

  it('a Qdrant outage re-reads the secret at most once per interval, then fails the call (nothing changed)', async () => {
    const arn = secrets.create('outage', { url: `http://127.0.0.1:${await freePort()}`, apiKey: 'k' });
    const { client } = await connect(arn);
    const before = secrets.reads.get('outage')!;
    advanceClock(FORCED_REFRESH_INTERVAL_MS);
    for (let call = 0; call < 5; call++) await expect(client.getCollections()).rejects.toThrow();
    expect(secrets.reads.get('outage')! - before).toBe(1);
  });
});

describe('Qdrant URL scheme', () => {
  it('refuses plain http to a non-loopback host (the API key would travel in clear) unless explicitly allowed, and logs the opt-out', () => {
    expect(() => createQdrantClient({ url: 'http://qdrant.example.com:6333', apiKey: 'secret' })).toThrow(InsecureQdrantUrlError);
    const warn = vi.spyOn(logger, 'warn');
    const clientWarning = vi.spyOn(console, 'warn');
    createQdrantClient({ url: 'http://qdrant:6333', apiKey: 'secret', allowInsecureHttp: true });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('plain http'), { host: 'qdrant:6333' });
    // The key goes as a header option: the client's own "unsecure connection" warning stays quiet.
    expect(clientWarning).not.toHaveBeenCalled();
    createQdrantClient({ url: 'https://qdrant.example.com:6333', apiKey: 'secret' });
    createQdrantClient({ url: 'http://127.0.0.1:6333', apiKey: 'secret' });
    createQdrantClient({ url: 'http://localhost:6333', apiKey: 'secret' });
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('the opt-out comes from the secret or QDRANT_ALLOW_INSECURE_HTTP', async () => {
    const arn = secrets.create('insecure', { url: 'http://qdrant:6333', apiKey: 'k', allowInsecureHttp: true });
    expect((await qdrantSettings({ QDRANT_SECRET_ARN: arn })).allowInsecureHttp).toBe(true);
    expect((await qdrantSettings({ QDRANT_URL: 'http://qdrant:6333', QDRANT_ALLOW_INSECURE_HTTP: 'true' })).allowInsecureHttp).toBe(true);
    expect((await qdrantSettings({ QDRANT_URL: 'http://qdrant:6333' })).allowInsecureHttp).toBe(false);
  });
});

describe('cursor signing key', () => {
  const longKey = 'k'.repeat(32);

  it('in Lambda it comes from the secret; without one, or shorter than 32 bytes, the function refuses to start', async () => {
    const arn = secrets.create('cursor-key', longKey);
    const lambda = { AWS_LAMBDA_FUNCTION_NAME: 'listPersonas' };
    await expect(cursorSigningKey({ ...lambda, CURSOR_SIGNING_KEY_SECRET_ARN: arn })).resolves.toBe(longKey);
    await expect(cursorSigningKey(lambda)).rejects.toThrow(CursorKeyConfigError);
    await expect(cursorSigningKey({ ...lambda, CURSOR_SIGNING_KEY: '' })).rejects.toThrow(CursorKeyConfigError);
    await expect(cursorSigningKey({ ...lambda, CURSOR_SIGNING_KEY: 'short' })).rejects.toThrow(/5 bytes; it needs at least 32/);
    const shortArn = secrets.create('short-cursor-key', 'x'.repeat(31));
    await expect(cursorSigningKey({ ...lambda, CURSOR_SIGNING_KEY_SECRET_ARN: shortArn })).rejects.toThrow(CursorKeyConfigError);
  });

  it('the local runtime gets a random per-process key, never a constant from the source', async () => {
    const key = await cursorSigningKey({});
    expect(Buffer.byteLength(key)).toBeGreaterThanOrEqual(32);
    expect(await cursorSigningKey({})).toBe(key);
  });

  it('cursors expire after their TTL and do not verify under another key', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    const cursor = encodeCursor('persona-42', longKey, now);
    expect(decodeCursor(cursor, longKey, now + (CURSOR_TTL_SECONDS - 1) * 1000)).toBe('persona-42');
    const expired = (() => {
      try {
        decodeCursor(cursor, longKey, now + CURSOR_TTL_SECONDS * 1000);
      } catch (error) {
        return error;
      }
    })();
    expect(expired).toBeInstanceOf(ProblemError);
    expect(expired).toMatchObject({ status: 400, type: expect.stringContaining('cursor-expired') });
    expect(() => decodeCursor(cursor, 'other'.repeat(8), now)).toThrow(ProblemError);
  });
});

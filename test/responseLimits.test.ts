import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REPORTED_ERRORS } from '../shared/http/problem';
import { useFreshTables } from './support/tables';
import { einstein, samplePersona, startTestApi } from './support/apiClient';

let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;

beforeAll(async () => {
  await useFreshTables('persona-limits');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
});
afterAll(() => close());

/** Members k0 … k{n-1}, each an unknown field. */
const unknownKeys = (n: number, prefix = 'k') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, 1]));
const SMALL = 64 * 1024;

describe('error responses stay small however many errors a request has', () => {
  it('a batch item with 80,000 unknown keys (an 869 KB body) reports the first 100 errors and how many more', async () => {
    const body = { personas: [{ ...einstein, ...unknownKeys(80_000) }] };
    expect(JSON.stringify(body).length).toBeGreaterThan(850_000);
    const response = await api('POST', '/personas/batch', { body });
    expect(response.status).toBe(200);
    expect(Buffer.byteLength(response.text)).toBeLessThan(SMALL);
    const [result] = response.json.results;
    expect(result).toMatchObject({ index: 0, status: 400, more_errors: 80_000 - MAX_REPORTED_ERRORS });
    expect(result.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(result.errors[0]).toEqual({ pointer: '#/personas/0/k0', detail: expect.stringContaining("unknown field 'k0'") });
  });

  it('a batch of 100 items with 800 unknown keys each reports 100 errors over all items', async () => {
    const body = { personas: Array.from({ length: 100 }, (_, i) => ({ ...samplePersona(i), ...unknownKeys(800) })) };
    const response = await api('POST', '/personas/batch', { body });
    expect(response.status).toBe(200);
    expect(Buffer.byteLength(response.text)).toBeLessThan(SMALL);
    const shown = response.json.results.reduce((sum: number, result: { errors: unknown[] }) => sum + result.errors.length, 0);
    const omitted = response.json.results.reduce((sum: number, result: { more_errors?: number }) => sum + (result.more_errors ?? 0), 0);
    expect(shown).toBe(MAX_REPORTED_ERRORS);
    expect(shown + omitted).toBe(100 * 800);
    expect(response.json.failed).toBe(100);
  });

  it('problem documents (envelope errors, a single create) carry at most 100 errors and more_errors', async () => {
    const envelope = await api('POST', '/personas/batch', { body: { personas: [einstein], ...unknownKeys(80_000, 'x') } });
    expect(envelope.status).toBe(400);
    expect(envelope.headers.get('content-type')).toContain('application/problem+json');
    expect(Buffer.byteLength(envelope.text)).toBeLessThan(SMALL);
    expect(envelope.json.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(envelope.json.more_errors).toBe(80_000 - MAX_REPORTED_ERRORS);

    const single = await api('POST', '/personas', { body: { ...einstein, ...unknownKeys(5_000) } });
    expect(single.status).toBe(400);
    expect(single.json.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(single.json.more_errors).toBe(5_000 - MAX_REPORTED_ERRORS);
  });

  it('an enormous field name is clipped, not echoed whole in pointer and detail', async () => {
    const name = 'n'.repeat(60_000);
    const response = await api('POST', '/personas', { body: { ...einstein, [name]: 1 } });
    expect(response.status).toBe(400);
    expect(Buffer.byteLength(response.text)).toBeLessThan(4 * 1024);
    expect(response.json.errors[0].pointer).toMatch(/^#\/n+…$/);
  });
});

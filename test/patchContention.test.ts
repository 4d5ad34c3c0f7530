import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATCH_RETRY_BOUNDS, patchPersona } from '../shared/persona/personaService';
import { ProblemError } from '../shared/http/problem';
import { WriteConflictError, type PersonaRepository } from '../shared/persona/personaRepository';
import type { Persona } from '../shared/persona/schema';
import { useFreshTables } from './support/tables';
import { einstein, startTestApi } from './support/apiClient';

/**
 * The README promises that a PATCH without If-Match is re-read and reapplied when another write
 * gets in between, never lost (issue 11 item 6: 13 of 50 concurrent patches used to get 412).
 */
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;

beforeAll(async () => {
  await useFreshTables('persona-contention');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
});
afterAll(() => close());

const mergePatch = { 'content-type': 'application/merge-patch+json' };

describe('PATCH without If-Match under contention', () => {
  it('50 concurrent patches of one persona all succeed, each applied once on top of the others', async () => {
    const created = (await api('POST', '/personas', { body: einstein })).json;
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        api('PATCH', `/personas/${created.id}`, { body: { signature_phrases: [`phrase ${n}`] }, headers: mergePatch }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    // Every patch got a version of its own: none overwrote another's write.
    expect(responses.map((response) => response.json.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, n) => n + 2));
    responses.forEach((response, n) => expect(response.json.signature_phrases).toEqual([`phrase ${n}`]));
    const stored = (await api('GET', `/personas/${created.id}`)).json;
    expect(stored.version).toBe(51);
    const last = responses.find((response) => response.json.version === 51)!;
    expect(stored).toEqual(last.json);
  });

  it('past its bounds it answers 409 with Retry-After instead of retrying forever', async () => {
    const current = { ...einstein, id: '00000000-0000-4000-8000-000000000001', version: 1, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' } as unknown as Persona;
    let writes = 0;
    const alwaysConflicting = {
      get: async () => current,
      replace: async () => {
        writes++;
        throw new WriteConflictError({ kind: 'version-mismatch', current: { ...current, version: 2 } });
      },
    } as unknown as PersonaRepository;
    const started = Date.now();
    // The function has 3 s left: retries stop PATCH_RETRY_BOUNDS.marginMs before that.
    const remainingMs = 3_000;
    const budget = remainingMs - PATCH_RETRY_BOUNDS.marginMs;
    const error = await patchPersona({ repository: alwaysConflicting }, current.id, { name: 'x' }, undefined, remainingMs).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ status: 409, type: 'edit-conflict', headers: { 'Retry-After': '1' } });
    // Whichever bound came first: the number of tries or the time.
    const elapsed = Date.now() - started;
    expect(writes).toBeLessThanOrEqual(PATCH_RETRY_BOUNDS.attempts);
    expect(writes === PATCH_RETRY_BOUNDS.attempts || elapsed >= budget - 250).toBe(true);
    expect(elapsed).toBeLessThanOrEqual(budget + 500);
  });

  it('with If-Match a stale version is still a 412 at once', async () => {
    const created = (await api('POST', '/personas', { body: einstein })).json;
    await api('PATCH', `/personas/${created.id}`, { body: { name: 'B' }, headers: mergePatch });
    const stale = await api('PATCH', `/personas/${created.id}`, { body: { name: 'C' }, headers: { ...mergePatch, 'if-match': '"1"' } });
    expect(stale.status).toBe(412);
  });
});

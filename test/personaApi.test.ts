import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableConfig } from '../shared/config';
import { countTableItems, useFreshTables } from './support/tables';
import { einstein, einsteinJson, samplePersona, startTestApi, type ApiResponse } from './support/apiClient';

let config: TableConfig;
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;

beforeAll(async () => {
  config = await useFreshTables('persona-api');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
});
afterAll(() => close());

const PROBLEM = 'application/problem+json';
const expectProblem = (response: ApiResponse, status: number) => {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain(PROBLEM);
  expect(response.json).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
};
const create = async (body: unknown = einstein, headers: Record<string, string> = {}) => {
  const response = await api('POST', '/personas', { body, headers });
  expect(response.status).toBe(201);
  return response;
};
const pick = (object: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((key) => [key, object[key]]));

describe('POST /personas', () => {
  it('creates a persona with server-managed fields, Location and ETag', async () => {
    const response = await create();
    const persona = response.json;
    expect(persona.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(persona.version).toBe(1);
    expect(Date.parse(persona.created_at)).not.toBeNaN();
    expect(persona.updated_at).toBe(persona.created_at);
    expect(response.headers.get('location')).toBe(`/personas/${persona.id}`);
    expect(response.headers.get('etag')).toBe('"1"');
  });

  it('round-trips the Einstein record byte-exact, superscript included', async () => {
    const created = await api('POST', '/personas', { rawBody: einsteinJson, headers: { 'content-type': 'application/json' } });
    expect(created.status).toBe(201);
    const fetched = await api('GET', `/personas/${created.json.id}`);
    const inputKeys = Object.keys(einstein);
    expect(JSON.stringify(pick(fetched.json, inputKeys))).toBe(einsteinJson);
    expect(fetched.text).toContain('"E=mc²"');
  });

  it('fills defaults for optional lists and omits absent optional fields', async () => {
    const response = await create({ name: 'Minimal', domain: ['x'], traits: einstein.traits });
    expect(response.json).toMatchObject({ modes: [], beliefs: [], signature_phrases: [] });
    expect(response.json).not.toHaveProperty('humor_usage');
  });

  it('rejects unknown fields by name, at their JSON pointer', async () => {
    const response = await api('POST', '/personas', { body: { ...einstein, age: 76, traits: { ...(einstein.traits as object), iq: 1 } } });
    expectProblem(response, 400);
    const pointers = response.json.errors.map((error: { pointer: string }) => error.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['#/age', '#/traits/iq']));
    expect(JSON.stringify(response.json.errors)).toContain("unknown field 'age'");
  });

  it('reports every invalid field at once', async () => {
    const response = await api('POST', '/personas', {
      body: { ...einstein, name: '', humor_usage: 'lots', traits: { ...(einstein.traits as object), openness: 1.5 } },
    });
    expectProblem(response, 400);
    const pointers = response.json.errors.map((error: { pointer: string }) => error.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['#/name', '#/humor_usage', '#/traits/openness']));
  });

  it('replays the first result for the same Idempotency-Key and body, and rejects a different body with 422', async () => {
    const key = `key-${Date.now()}`;
    const first = await create(einstein, { 'idempotency-key': key });
    const again = await api('POST', '/personas', { body: einstein, headers: { 'idempotency-key': key } });
    expect(again.status).toBe(201);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const different = await api('POST', '/personas', { body: { ...einstein, name: 'Someone else' }, headers: { 'idempotency-key': key } });
    expectProblem(different, 422);
  });

  it('creates exactly one persona when the same Idempotency-Key is sent concurrently', async () => {
    const key = `concurrent-${Date.now()}`;
    const before = await countTableItems(config.personaTableName);
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => api('POST', '/personas', { body: samplePersona(1), headers: { 'idempotency-key': key } })),
    );
    expect(responses.map((response) => response.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(responses.map((response) => response.json.id)).size).toBe(1);
    expect(await countTableItems(config.personaTableName)).toBe(before + 1);
  });
});

describe('GET /personas/{id}', () => {
  it('returns 404 problem for an unknown id and 400 for a malformed one', async () => {
    expectProblem(await api('GET', '/personas/00000000-0000-4000-8000-000000000000'), 404);
    const malformed = await api('GET', '/personas/not-a-uuid');
    expectProblem(malformed, 400);
    expect(malformed.json.errors[0].pointer).toBe('#/path/id');
  });
});

describe('PUT /personas/{id}', () => {
  it('requires If-Match (428), rejects a stale version (412) and replaces on the current one', async () => {
    const { json: created } = await create();
    const replacement = { ...einstein, name: 'Albert E.', modes: ['Storyteller'] };
    expectProblem(await api('PUT', `/personas/${created.id}`, { body: replacement }), 428);
    const stale = await api('PUT', `/personas/${created.id}`, { body: replacement, headers: { 'if-match': '"7"' } });
    expectProblem(stale, 412);
    expect(stale.json.current_version).toBe(1);
    const replaced = await api('PUT', `/personas/${created.id}`, { body: replacement, headers: { 'if-match': '"1"' } });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ id: created.id, name: 'Albert E.', modes: ['Storyteller'], version: 2, created_at: created.created_at });
    expect(replaced.headers.get('etag')).toBe('"2"');
    expect((await api('GET', `/personas/${created.id}`)).json).toEqual(replaced.json);
  });

  it('lets exactly one of two concurrent PUTs with the same If-Match win', async () => {
    const { json: created } = await create();
    const [first, second] = await Promise.all(
      ['Writer A', 'Writer B'].map((name) => api('PUT', `/personas/${created.id}`, { body: { ...einstein, name }, headers: { 'if-match': '"1"' } })),
    );
    const statuses = [first!.status, second!.status].sort();
    expect(statuses).toEqual([200, 412]);
    const winner = first!.status === 200 ? first! : second!;
    const stored = await api('GET', `/personas/${created.id}`);
    expect(stored.json.name).toBe(winner.json.name);
    expect(stored.json.version).toBe(2);
  });

  it('returns 404 for an unknown persona', async () => {
    expectProblem(await api('PUT', '/personas/00000000-0000-4000-8000-000000000001', { body: einstein, headers: { 'if-match': '"1"' } }), 404);
  });
});

describe('PATCH /personas/{id}', () => {
  const mergePatch = { 'content-type': 'application/merge-patch+json' };

  it('applies a JSON Merge Patch: nested merge, null removes, arrays replace', async () => {
    const { json: created } = await create();
    const patched = await api('PATCH', `/personas/${created.id}`, {
      body: { traits: { openness: 0.5 }, humor_usage: null, modes: ['Mentor'] },
      headers: mergePatch,
    });
    expect(patched.status).toBe(200);
    expect(patched.json.traits).toEqual({ ...(einstein.traits as object), openness: 0.5 });
    expect(patched.json).not.toHaveProperty('humor_usage');
    expect(patched.json.modes).toEqual(['Mentor']);
    expect(patched.json.version).toBe(2);
    expect(patched.headers.get('etag')).toBe('"2"');
  });

  it('honours If-Match when given', async () => {
    const { json: created } = await create();
    expectProblem(await api('PATCH', `/personas/${created.id}`, { body: { name: 'x' }, headers: { ...mergePatch, 'if-match': '"9"' } }), 412);
    const ok = await api('PATCH', `/personas/${created.id}`, { body: { name: 'x' }, headers: { ...mergePatch, 'if-match': '"1"' } });
    expect(ok.status).toBe(200);
  });

  it('validates the patched result and leaves the stored persona unchanged on error', async () => {
    const { json: created } = await create();
    const bad = await api('PATCH', `/personas/${created.id}`, { body: { traits: { openness: null } }, headers: mergePatch });
    expectProblem(bad, 400);
    expect(bad.json.errors[0].pointer).toBe('#/traits/openness');
    expectProblem(await api('PATCH', `/personas/${created.id}`, { body: { version: 5 }, headers: mergePatch }), 400);
    expect((await api('GET', `/personas/${created.id}`)).json).toEqual(created);
  });

  it('does not lose either of two concurrent patches without If-Match', async () => {
    const { json: created } = await create();
    await Promise.all([
      api('PATCH', `/personas/${created.id}`, { body: { name: 'Patched name' }, headers: mergePatch }),
      api('PATCH', `/personas/${created.id}`, { body: { emotional_style: 'warm' }, headers: mergePatch }),
    ]);
    const stored = (await api('GET', `/personas/${created.id}`)).json;
    expect(stored).toMatchObject({ name: 'Patched name', emotional_style: 'warm', version: 3 });
  });

  it('requires the merge-patch media type', async () => {
    const { json: created } = await create();
    const response = await api('PATCH', `/personas/${created.id}`, { body: { name: 'x' } });
    expectProblem(response, 415);
    expect(response.headers.get('accept-patch')).toBe('application/merge-patch+json');
  });
});

describe('DELETE /personas/{id}', () => {
  it('deletes with 204, then answers 404 for the second delete and for reads', async () => {
    const { json: created } = await create();
    const deleted = await api('DELETE', `/personas/${created.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expectProblem(await api('DELETE', `/personas/${created.id}`), 404);
    expectProblem(await api('GET', `/personas/${created.id}`), 404);
  });

  it('honours If-Match', async () => {
    const { json: created } = await create();
    expectProblem(await api('DELETE', `/personas/${created.id}`, { headers: { 'if-match': '"2"' } }), 412);
    expect((await api('DELETE', `/personas/${created.id}`, { headers: { 'if-match': '"1"' } })).status).toBe(204);
  });
});

describe('POST /personas/batch', () => {
  it('writes valid items and reports each invalid item with its own errors', async () => {
    const personas = [samplePersona(1), { ...samplePersona(2), traits: { openness: 2 } }, samplePersona(3), 'not an object'];
    const response = await api('POST', '/personas/batch', { body: { personas } });
    expect(response.status).toBe(200);
    expect(response.json.created).toBe(2);
    expect(response.json.failed).toBe(2);
    const [first, second, third, fourth] = response.json.results;
    expect(first).toMatchObject({ index: 0, status: 201, version: 1 });
    expect(second).toMatchObject({ index: 1, status: 400 });
    expect(second.errors.map((error: { pointer: string }) => error.pointer)).toContain('#/personas/1/traits/openness');
    expect(third).toMatchObject({ index: 2, status: 201 });
    expect(fourth).toMatchObject({ index: 3, status: 400 });
    expect((await api('GET', `/personas/${first.id}`)).json.name).toBe('Persona 1');
    expect((await api('GET', `/personas/${third.id}`)).json.name).toBe('Persona 3');
  });

  it('writes 100 items, and a retry with the same Idempotency-Key duplicates nothing', async () => {
    const personas = Array.from({ length: 100 }, (_, n) => samplePersona(1000 + n));
    const key = `batch-${Date.now()}`;
    const before = await countTableItems(config.personaTableName);
    const first = await api('POST', '/personas/batch', { body: { personas }, headers: { 'idempotency-key': key } });
    expect(first.json.created).toBe(100);
    const retry = await api('POST', '/personas/batch', { body: { personas }, headers: { 'idempotency-key': key } });
    expect(retry.json).toEqual(first.json);
    expect(await countTableItems(config.personaTableName)).toBe(before + 100);
    const mismatch = await api('POST', '/personas/batch', { body: { personas: personas.slice(1) }, headers: { 'idempotency-key': key } });
    expectProblem(mismatch, 422);
  });

  it('completes an interrupted batch on retry without duplicates (items already written are kept)', async () => {
    const personas = Array.from({ length: 30 }, (_, n) => samplePersona(2000 + n));
    const key = `interrupted-${Date.now()}`;
    const before = await countTableItems(config.personaTableName);
    // Two concurrent attempts with one key model a client retrying while the first is in flight.
    const [a, b] = await Promise.all([
      api('POST', '/personas/batch', { body: { personas }, headers: { 'idempotency-key': key } }),
      api('POST', '/personas/batch', { body: { personas }, headers: { 'idempotency-key': key } }),
    ]);
    expect(a.json.results.map((result: { id: string }) => result.id)).toEqual(b.json.results.map((result: { id: string }) => result.id));
    expect(await countTableItems(config.personaTableName)).toBe(before + 30);
  });

  it('rejects an empty or oversized batch', async () => {
    expectProblem(await api('POST', '/personas/batch', { body: { personas: [] } }), 400);
    const tooMany = await api('POST', '/personas/batch', { body: { personas: Array.from({ length: 101 }, (_, n) => samplePersona(n)) } });
    expectProblem(tooMany, 400);
    expect(tooMany.json.errors[0].pointer).toBe('#/personas');
  });
});

describe('routing', () => {
  it('answers unknown routes with 404 and wrong methods with 405 and Allow', async () => {
    expectProblem(await api('GET', '/nothing-here'), 404);
    const wrongMethod = await api('DELETE', '/personas');
    expectProblem(wrongMethod, 405);
    expect(wrongMethod.headers.get('allow')).toContain('GET');
    expect(wrongMethod.headers.get('allow')).toContain('POST');
  });
});

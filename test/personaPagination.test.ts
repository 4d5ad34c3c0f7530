import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFreshTables } from './support/tables';
import { samplePersona, startTestApi, type ApiResponse } from './support/apiClient';

// Its own file, so its tables hold only the personas it creates.
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;

beforeAll(async () => {
  await useFreshTables('persona-list');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
});
afterAll(() => close());

const expectProblem = (response: ApiResponse, status: number) => {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
};
const create = async (body: unknown) => {
  const response = await api('POST', '/personas', { body });
  expect(response.status).toBe(201);
  return response;
};

describe('GET /personas (pagination)', () => {
  it('walks every persona across pages without overlap, then ends with next_cursor null', async () => {
    const created = new Set<string>();
    for (let n = 0; n < 45; n++) created.add((await create(samplePersona(n))).json.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: ApiResponse = await api('GET', `/personas?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(response.status).toBe(200);
      expect(response.json.items.length).toBeLessThanOrEqual(10);
      seen.push(...response.json.items.map((persona: { id: string }) => persona.id));
      cursor = response.json.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThanOrEqual(5);
    expect(seen.length).toBe(new Set(seen).size);
    expect(new Set(seen)).toEqual(created);
  });

  it('defaults to 20 items and caps limit at 100', async () => {
    const page = await api('GET', '/personas');
    expect(page.json.items.length).toBe(20);
    expectProblem(await api('GET', '/personas?limit=101'), 400);
    expectProblem(await api('GET', '/personas?limit=0'), 400);
  });

  it('rejects a tampered cursor with 400', async () => {
    const page = await api('GET', '/personas?limit=5');
    const cursor: string = page.json.next_cursor;
    const [payload, signature] = cursor.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ v: 1, after: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
    for (const tampered of [`${forgedPayload}.${signature}`, `${payload}.${signature!.slice(1)}x`, 'garbage', `${payload}`]) {
      const response = await api('GET', `/personas?cursor=${encodeURIComponent(tampered)}`);
      expectProblem(response, 400);
      expect(response.json.type).toContain('invalid-cursor');
    }
  });
});


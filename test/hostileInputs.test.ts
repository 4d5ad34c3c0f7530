import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../shared/http/request';
import type { TableConfig } from '../shared/config';
import { countTableItems, useFreshTables } from './support/tables';
import { einstein, einsteinJson, samplePersona, startTestApi, type ApiResponse } from './support/apiClient';

/**
 * Inputs found by attacking the local system (issue 11): each used to get a 500, be stored
 * silently altered, or be answered wrongly. Each must be a 4xx problem+json that names the field,
 * and none may write anything.
 */
let config: TableConfig;
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;
let seeded: Record<string, any>;

beforeAll(async () => {
  config = await useFreshTables('persona-hostile');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
  seeded = (await api('POST', '/personas', { body: einstein })).json;
});
afterAll(() => close());

const json = { 'content-type': 'application/json' };
const mergePatch = { 'content-type': 'application/merge-patch+json' };

function expectProblem(response: ApiResponse, status: number, type: string) {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(response.json.type).toBe(`https://persona-db.dev/problems/${type}`);
}

async function expectSeededUnchanged() {
  expect((await api('GET', `/personas/${seeded.id}`)).json).toEqual(seeded);
}

/** `{"a":{"a":…{"a":1}…}}` with `levels` objects, built as text (no recursion). */
const nestedObjects = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const nestedArrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

describe('deep nesting (item 2)', () => {
  const deep = nestedObjects(10_000); // about 50 KB: under the 64 KiB limit
  const traitsTooDeep = `{"name":"A","domain":["x"],"traits":${deep}}`;

  it('POST, PUT, PATCH, batch and search answer 400 with a pointer, not a 500', async () => {
    const requests: Array<[string, string, string, Record<string, string>]> = [
      ['POST', '/personas', traitsTooDeep, json],
      ['PUT', `/personas/${seeded.id}`, traitsTooDeep, { ...json, 'if-match': '"1"' }],
      ['PATCH', `/personas/${seeded.id}`, `{"traits":${deep}}`, mergePatch],
      ['POST', '/personas/batch', `{"personas":[${traitsTooDeep}]}`, json],
      ['POST', '/personas/search', `{"query":"x","filter":${nestedArrays(20_000)}}`, json],
    ];
    for (const [method, path, rawBody, headers] of requests) {
      const response = await api(method, path, { rawBody, headers: { ...headers, 'idempotency-key': `deep-${method}-${path}` } });
      expectProblem(response, 400, 'validation-error');
      expect(response.json.errors).toHaveLength(1);
      expect(response.json.errors[0].detail).toContain(`${MAX_JSON_DEPTH} levels`);
    }
    const post = await api('POST', '/personas', { rawBody: traitsTooDeep, headers: json });
    // The pointer names the first value past the limit: the body is level 1, traits level 2, …
    expect(post.json.errors[0].pointer).toBe('#/traits' + '/a'.repeat(MAX_JSON_DEPTH - 1));
  });

  it('the documented maximum is what docs/api.md states', () => {
    expect(readFileSync('docs/api.md', 'utf8')).toContain(`nested at most ${MAX_JSON_DEPTH} levels deep`);
  });

  it('a body exactly at the maximum depth is parsed and then judged by the schema', async () => {
    const atLimit = `{"name":"A","domain":["x"],"traits":${nestedObjects(MAX_JSON_DEPTH - 1)}}`;
    const response = await api('POST', '/personas', { rawBody: atLimit, headers: json });
    expectProblem(response, 400, 'validation-error');
    expect(response.json.errors.map((error: { pointer: string }) => error.pointer)).toContain('#/traits/a');
  });
});

describe('numbers outside DynamoDB’s range (item 3)', () => {
  // DynamoDB numbers: positive 1E-130 to 9.99…E+125, negative likewise, and zero; anything
  // smaller in magnitude is a "Number underflow" ValidationException.
  // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
  const tiny = ['1e-131', '5e-324', '2.2e-308'];

  it.each(tiny)('openness %s is a 400 for that field on POST, PUT and PATCH', async (literal) => {
    const body = einsteinJson.replace('"openness":0.95', `"openness":${literal}`);
    expectProblem(await api('POST', '/personas', { rawBody: body, headers: json }), 400, 'validation-error');
    const put = await api('PUT', `/personas/${seeded.id}`, { rawBody: body, headers: { ...json, 'if-match': '"1"' } });
    expectProblem(put, 400, 'validation-error');
    expect(put.json.errors).toEqual([{ pointer: '#/traits/openness', detail: expect.stringContaining('1e-130') }]);
    const patch = await api('PATCH', `/personas/${seeded.id}`, { rawBody: `{"traits":{"openness":${literal}}}`, headers: mergePatch });
    expectProblem(patch, 400, 'validation-error');
    expect(patch.json.errors[0].pointer).toBe('#/traits/openness');
  });

  it('in a batch only the item with the tiny number fails; the others are written', async () => {
    const good = [samplePersona(1), samplePersona(2)].map((persona) => JSON.stringify(persona));
    const bad = einsteinJson.replace('"openness":0.95', '"openness":1e-131');
    const response = await api('POST', '/personas/batch', { rawBody: `{"personas":[${good[0]},${bad},${good[1]}]}`, headers: json });
    expect(response.status, response.text).toBe(200);
    expect(response.json.created).toBe(2);
    expect(response.json.results[1]).toEqual({ index: 1, status: 400, errors: [{ pointer: '#/personas/1/traits/openness', detail: expect.stringContaining('1e-130') }] });
    for (const index of [0, 2]) {
      const id = response.json.results[index].id;
      expect((await api('GET', `/personas/${id}`)).status).toBe(200);
      await api('DELETE', `/personas/${id}`);
    }
  });

  it('1e-130, DynamoDB’s smallest positive number, is stored and read back exactly', async () => {
    const response = await api('POST', '/personas', { rawBody: einsteinJson.replace('"openness":0.95', '"openness":1e-130'), headers: json });
    expect(response.status, response.text).toBe(201);
    expect((await api('GET', `/personas/${response.json.id}`)).json.traits.openness).toBe(1e-130);
    await api('DELETE', `/personas/${response.json.id}`);
  });
});

describe('strings that are not UTF-8 (items 4 and 5)', () => {
  const withName = (nameBytes: number[]) =>
    Buffer.concat([Buffer.from('{"name":"'), Buffer.from(nameBytes), Buffer.from(einsteinJson.slice(einsteinJson.indexOf('","domain"')))]);

  it.each([
    ['Alb\\xff\\xfert', [0x41, 0x6c, 0x62, 0xff, 0xfe, 0x72, 0x74]],
    ['an overlong /: \\xc0\\xaf', [0x41, 0xc0, 0xaf]],
    ['a truncated euro sign \\xe2\\x82', [0x41, 0xe2, 0x82]],
    ['an encoded surrogate \\xed\\xa0\\x80', [0x41, 0xed, 0xa0, 0x80]],
  ])('invalid UTF-8 in a string (%s) is 400 malformed-json, not stored as U+FFFD', async (_name, bytes) => {
    expectProblem(await api('POST', '/personas', { rawBody: withName(bytes), headers: json }), 400, 'malformed-json');
    expectProblem(await api('POST', '/personas/batch', { rawBody: Buffer.concat([Buffer.from('{"personas":['), withName(bytes), Buffer.from(']}')]), headers: json }), 400, 'malformed-json');
    expectProblem(await api('PATCH', `/personas/${seeded.id}`, { rawBody: withName(bytes), headers: mergePatch }), 400, 'malformed-json');
  });

  it.each([
    ['a lone high surrogate in the name', einsteinJson.replace('"Albert Einstein"', '"Albert \\ud800"'), '#/name'],
    ['a lone low surrogate in a belief', einsteinJson.replace('"Imagination', '"\\udc00Imagination'), '#/beliefs/0'],
    ['a reversed pair in a domain', einsteinJson.replace('"physics"', '"\\udc00\\ud800"'), '#/domain/0'],
  ])('%s is a 400 at its pointer', async (_name, body, pointer) => {
    const response = await api('POST', '/personas', { rawBody: body, headers: json });
    expectProblem(response, 400, 'validation-error');
    expect(response.json.errors).toEqual([{ pointer, detail: expect.stringContaining('surrogate') }]);
    const patch = await api('PATCH', `/personas/${seeded.id}`, { rawBody: body.replace(/"traits".*$/, '"modes":[]}'), headers: mergePatch });
    expectProblem(patch, 400, 'validation-error');
  });

  it('a lone surrogate in a member name is a 400 too', async () => {
    const response = await api('POST', '/personas', { rawBody: einsteinJson.replace('"name"', '"na\\ud800me"'), headers: json });
    expectProblem(response, 400, 'validation-error');
    expect(response.json.errors[0].detail).toContain('surrogate');
  });

  it('a valid surrogate pair (an emoji) is stored exactly as sent', async () => {
    const response = await api('POST', '/personas', { rawBody: einsteinJson.replace('"E=mc²"', '"E=mc² \\ud83d\\ude00 🚀"'), headers: json });
    expect(response.status, response.text).toBe(201);
    expect(response.json.signature_phrases).toEqual(['E=mc² 😀 🚀']);
    await api('DELETE', `/personas/${response.json.id}`);
  });
});

describe('prototype keys (item 10)', () => {
  it.each([
    ['{"__proto__":{"name":"Mallory"}}', '#/__proto__'],
    ['{"__proto__":null}', '#/__proto__'],
    ['{"traits":{"__proto__":{"openness":0}}}', '#/traits/__proto__'],
    ['{"age":null}', '#/age'],
  ])('PATCH %s is a 400 naming the field, like POST, and bumps nothing', async (body, pointer) => {
    const response = await api('PATCH', `/personas/${seeded.id}`, { rawBody: body, headers: mergePatch });
    expectProblem(response, 400, 'validation-error');
    expect(response.json.errors.map((error: { pointer: string }) => error.pointer)).toContain(pointer);
    await expectSeededUnchanged();
  });

  it('POST and PUT answer __proto__ the same way', async () => {
    const body = einsteinJson.replace('{', '{"__proto__":{"x":1},');
    const post = await api('POST', '/personas', { rawBody: body, headers: json });
    const put = await api('PUT', `/personas/${seeded.id}`, { rawBody: body, headers: { ...json, 'if-match': '"1"' } });
    for (const response of [post, put]) {
      expectProblem(response, 400, 'validation-error');
      expect(response.json.errors[0].pointer).toBe('#/__proto__');
    }
  });
});

describe('methods (item 8)', () => {
  // An HTTP API route key is one method and a path ("GET /pets"), HEAD being a method of its own;
  // the documentation maps no HEAD request to a GET route, so the stack declares HEAD beside every
  // GET (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html).
  it('HEAD answers wherever GET does: same status and headers, no body', async () => {
    for (const path of [`/personas/${seeded.id}`, '/personas?limit=1', '/openapi.json', '/docs', `/personas/00000000-0000-4000-8000-0000000000ff`]) {
      const get = await api('GET', path);
      const head = await api('HEAD', path);
      expect(head.status, path).toBe(get.status);
      expect(head.text).toBe('');
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
      expect(head.headers.get('etag')).toBe(get.headers.get('etag'));
    }
  });

  it.each([
    ['/personas/batch', 'POST'],
    ['/personas/search', 'POST'],
    ['/personas', 'GET, HEAD, POST'],
    ['/openapi.json', 'GET, HEAD'],
  ])('a method %s does not have is a 405 whose Allow lists exactly its methods (%s)', async (path, allow) => {
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'POST']) {
      if (allow.split(', ').includes(method)) continue;
      const response = await api(method, path, method === 'PUT' || method === 'PATCH' ? { body: {} } : {});
      expect(response.status, `${method} ${path}: ${response.text}`).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
      if (method !== 'HEAD') expectProblem(response, 405, 'method-not-allowed');
    }
  });

  it('a path that starts with // is routed as a path (404 problem), not read as a host (found by the fuzz suite: 502)', async () => {
    for (const path of ['//', '//personas', '//evil.example/personas']) {
      expectProblem(await api('POST', path, { body: einstein }), 404, 'route-not-found');
    }
  });

  it('a path segment that is not UTF-8 once decoded (%ff) is a 400 for the id, not a crash (found by the fuzz suite: 502)', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      expectProblem(await api(method, '/personas/%ff', method === 'PUT' ? { body: einstein, headers: { 'if-match': '"1"' } } : {}), 400, 'validation-error');
    }
  });

  it('an item path lists its own methods', async () => {
    const response = await api('POST', `/personas/${seeded.id}`, { body: einstein });
    expect(response.headers.get('allow')).toBe('GET, HEAD, PUT, PATCH, DELETE');
  });
});

describe('responses the local runtime imitates from API Gateway (item 15)', () => {
  // API Gateway rejects a payload over its 10 MB quota itself, before any function runs
  // (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html: "Payload
  // size 10 MB"), with its own JSON body, not the project's problem+json. The local server does the
  // same, and docs/api.md says which responses come from API Gateway.
  it('over 10 MB: 413 from the gateway, documented as such', async () => {
    const response = await api('POST', '/personas', { rawBody: 'x'.repeat(10 * 1024 * 1024 + 1), headers: json });
    expect(response.status).toBe(413);
    expect(response.json).toEqual({ message: 'Request Entity Too Large' });
    expect(readFileSync('docs/api.md', 'utf8')).toMatch(/over 10 MB[^\n]*API Gateway's own[^\n]*\{"message": ?"Request Entity Too Large"\}/);
  });

  it('every size limit of the project’s own is problem+json', async () => {
    const response = await api('POST', '/personas', { rawBody: JSON.stringify({ ...einstein, name: 'x'.repeat(70_000) }), headers: json });
    expectProblem(response, 413, 'body-too-large');
  });
});

describe('headers of JSON and problem responses (issue 24, item 5)', () => {
  // Personas are private data: no browser or shared cache may keep a response (RFC 9111 §5.2.2.5,
  // no-store), and no browser may read one as anything but its declared type (Fetch, "X-Content-Type-Options").
  it('every JSON and problem+json answer of every route says nosniff and no-store (the public API document may be cached)', async () => {
    const requests: Array<[string, string, Record<string, unknown>?]> = [
      ['GET', `/personas/${seeded.id}`],
      ['HEAD', `/personas/${seeded.id}`],
      ['GET', '/personas?limit=1'],
      ['GET', '/personas?limit=0'],
      ['POST', '/personas', { body: samplePersona(31) }],
      ['POST', '/personas', { body: {} }],
      ['POST', '/personas/batch', { body: { personas: [samplePersona(32), {}] } }],
      ['PUT', `/personas/${seeded.id}`, { body: einstein }],
      ['PATCH', `/personas/${seeded.id}`, { body: {}, headers: json }],
      ['DELETE', '/personas/00000000-0000-4000-8000-0000000000ff'],
      ['POST', '/personas/search', { body: { query: 'physicist', limit: 1 } }],
      ['GET', `/personas/${seeded.id}/similar?limit=1`],
      ['GET', '/no-such-route'],
      ['DELETE', '/personas'],
      ['GET', '/openapi.json'],
    ];
    const seen = new Set<number>();
    const created: string[] = [];
    for (const [method, path, options] of requests) {
      const response = await api(method, path, options ?? {});
      if (response.status === 201) created.push(response.json.id);
      if (path === '/personas/batch') created.push(...response.json.results.filter((result: { id?: string }) => result.id).map((result: { id: string }) => result.id));
      const where = `${method} ${path}: ${response.status}`;
      expect(response.headers.get('content-type'), where).toMatch(/^application\/(problem\+)?json/);
      expect(response.headers.get('x-content-type-options'), where).toBe('nosniff');
      expect(response.headers.get('cache-control'), where).toBe(path === '/openapi.json' ? 'public, max-age=300' : 'no-store');
      seen.add(response.status);
    }
    // Successes and problems both: 200, 201, 400, 404, 405, 415, 428 at least.
    for (const status of [200, 201, 400, 404, 405, 415, 428]) expect(seen, `status ${status}`).toContain(status);
    for (const id of created) expect((await api('DELETE', `/personas/${id}`)).status).toBe(204);
  });
});

describe('afterwards', () => {
  it('nothing was written by any rejected request', async () => {
    expect(await countTableItems(config.personaTableName)).toBe(1);
    await expectSeededUnchanged();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TableConfig } from '../shared/config';
import { countTableItems, useFreshTables } from './support/tables';
import { einstein, startTestApi, type ApiRequest } from './support/apiClient';

/**
 * Every request here is wrong in one way. Each must get a 4xx problem+json (never a 5xx), and
 * none may leave anything in the tables: the one seeded persona stays exactly as it was.
 */
let config: TableConfig;
let api: Awaited<ReturnType<typeof startTestApi>>['api'];
let close: () => Promise<void>;
let seeded: Record<string, any>;

beforeAll(async () => {
  config = await useFreshTables('persona-malformed');
  const started = await startTestApi();
  api = started.api;
  close = started.server.close;
  seeded = (await api('POST', '/personas', { body: einstein })).json;
});
afterAll(() => close());

const traits = einstein.traits as Record<string, number>;
const withField = (field: string, value: unknown) => ({ ...einstein, [field]: value });
const withTrait = (trait: string, value: unknown) => ({ ...einstein, traits: { ...traits, [trait]: value } });
const without = (field: string) => Object.fromEntries(Object.entries(einstein).filter(([key]) => key !== field));
const json = { 'content-type': 'application/json' };
const mergePatch = { 'content-type': 'application/merge-patch+json' };
const long = (length: number) => 'x'.repeat(length);
const UNKNOWN_ID = '00000000-0000-4000-8000-0000000000ff';

interface MalformedCase {
  name: string;
  method: string;
  path: string | (() => string);
  request?: ApiRequest;
  status?: number;
}

const invalidBodies: Array<[string, unknown, number?]> = [
  ['body is an array', [einstein]],
  ['body is a string', 'einstein'],
  ['body is a number', 42],
  ['body is null', null],
  ['body is true', true],
  ['empty object', {}],
  ['name missing', without('name')],
  ['name empty', withField('name', '')],
  ['name blank', withField('name', '   ')],
  ['name a number', withField('name', 7)],
  ['name null', withField('name', null)],
  ['name an array', withField('name', ['a'])],
  ['name too long', withField('name', long(201))],
  ['domain missing', without('domain')],
  ['domain empty list', withField('domain', [])],
  ['domain a string', withField('domain', 'physics')],
  ['domain item empty', withField('domain', [''])],
  ['domain item a number', withField('domain', [1])],
  ['domain item null', withField('domain', [null])],
  ['domain too many items', withField('domain', Array.from({ length: 21 }, (_, n) => `d${n}`))],
  ['domain item too long', withField('domain', [long(101)])],
  ['modes an object', withField('modes', { a: 1 })],
  ['modes item blank', withField('modes', ['  '])],
  ['modes too many', withField('modes', Array.from({ length: 21 }, (_, n) => `m${n}`))],
  ['modes null', withField('modes', null)],
  ['humor_usage unknown value', withField('humor_usage', 'lots')],
  ['humor_usage uppercase', withField('humor_usage', 'LOW')],
  ['humor_usage a number', withField('humor_usage', 1)],
  ['humor_usage null', withField('humor_usage', null)],
  ['emotional_style empty', withField('emotional_style', '')],
  ['emotional_style too long', withField('emotional_style', long(201))],
  ['emotional_style an array', withField('emotional_style', ['calm'])],
  ['beliefs a string', withField('beliefs', 'imagination')],
  ['beliefs item too long', withField('beliefs', [long(501)])],
  ['beliefs too many', withField('beliefs', Array.from({ length: 51 }, (_, n) => `b${n}`))],
  ['beliefs item an object', withField('beliefs', [{ text: 'x' }])],
  ['signature_phrases a number', withField('signature_phrases', 3)],
  ['signature_phrases item empty', withField('signature_phrases', [''])],
  ['signature_phrases too many', withField('signature_phrases', Array.from({ length: 51 }, (_, n) => `p${n}`))],
  ['traits missing', without('traits')],
  ['traits null', withField('traits', null)],
  ['traits an array', withField('traits', [0.1, 0.2, 0.3, 0.4, 0.5])],
  ['traits a number', withField('traits', 0.5)],
  ['traits empty object', withField('traits', {})],
  ['openness above 1', withTrait('openness', 1.01)],
  ['openness below 0', withTrait('openness', -0.01)],
  ['openness a string', withTrait('openness', '0.5')],
  ['openness null', withTrait('openness', null)],
  ['conscientiousness 2', withTrait('conscientiousness', 2)],
  ['extraversion -1', withTrait('extraversion', -1)],
  ['agreeableness 100', withTrait('agreeableness', 100)],
  ['neuroticism a boolean', withTrait('neuroticism', true)],
  ['neuroticism huge', withTrait('neuroticism', 1e308)],
  ['traits unknown key', withTrait('iq', 0.5)],
  ['unknown top-level field', withField('age', 76)],
  ['client-set id', withField('id', '00000000-0000-4000-8000-000000000001')],
  ['client-set version', withField('version', 3)],
  ['client-set created_at', withField('created_at', '2020-01-01T00:00:00Z')],
  ['client-set updated_at', withField('updated_at', '2020-01-01T00:00:00Z')],
  ['several unknown fields', { ...einstein, a: 1, b: 2, c: 3 }],
];

const rawBodies: Array<[string, string]> = [
  ['truncated JSON', '{"name": "Albert'],
  ['trailing comma', '{"name": "A",}'],
  ['single quotes', "{'name': 'A'}"],
  ['bare word', 'einstein'],
  ['empty body', ''],
  ['whitespace only', '   '],
  ['two documents', '{} {}'],
  ['NaN literal', '{"name": NaN}'],
  ['unquoted key', '{name: "A"}'],
  ['comment', '{/* c */ "name": "A"}'],
];

const cases: MalformedCase[] = [
  ...invalidBodies.map(([name, body]): MalformedCase => ({ name: `POST ${name}`, method: 'POST', path: '/personas', request: { body }, status: 400 })),
  ...invalidBodies
    .filter(([, body]) => typeof body === 'object' && body !== null && !Array.isArray(body))
    .slice(0, 20)
    .map(([name, body]): MalformedCase => ({
      name: `PUT ${name}`,
      method: 'PUT',
      path: () => `/personas/${seeded.id}`,
      request: { body, headers: { 'if-match': '"1"' } },
      status: 400,
    })),
  ...rawBodies.map(([name, rawBody]): MalformedCase => ({ name: `POST ${name}`, method: 'POST', path: '/personas', request: { rawBody, headers: json }, status: 400 })),
  ...rawBodies.slice(0, 4).map(([name, rawBody]): MalformedCase => ({ name: `PATCH ${name}`, method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { rawBody, headers: mergePatch }, status: 400 })),
  { name: 'POST invalid UTF-8', method: 'POST', path: '/personas', request: { rawBody: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers: json }, status: 400 },
  // Media types
  { name: 'POST without content type', method: 'POST', path: '/personas', request: { rawBody: JSON.stringify(einstein) }, status: 415 },
  { name: 'POST text/plain', method: 'POST', path: '/personas', request: { rawBody: JSON.stringify(einstein), headers: { 'content-type': 'text/plain' } }, status: 415 },
  { name: 'POST form encoded', method: 'POST', path: '/personas', request: { rawBody: 'name=A', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, status: 415 },
  { name: 'POST xml', method: 'POST', path: '/personas', request: { rawBody: '<persona/>', headers: { 'content-type': 'application/xml' } }, status: 415 },
  { name: 'POST latin-1 charset', method: 'POST', path: '/personas', request: { rawBody: JSON.stringify(einstein), headers: { 'content-type': 'application/json; charset=iso-8859-1' } }, status: 415 },
  { name: 'POST octet-stream', method: 'POST', path: '/personas', request: { rawBody: Buffer.from(JSON.stringify(einstein)), headers: { 'content-type': 'application/octet-stream' } }, status: 415 },
  { name: 'PATCH with application/json', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { name: 'x' } }, status: 415 },
  { name: 'PUT with merge-patch type', method: 'PUT', path: () => `/personas/${seeded.id}`, request: { rawBody: JSON.stringify(einstein), headers: { ...mergePatch, 'if-match': '"1"' } }, status: 415 },
  { name: 'batch text/plain', method: 'POST', path: '/personas/batch', request: { rawBody: '{"personas":[]}', headers: { 'content-type': 'text/plain' } }, status: 415 },
  // Sizes
  { name: 'POST body over 64 KiB', method: 'POST', path: '/personas', request: { body: withField('name', long(70_000)) }, status: 413 },
  { name: 'PUT body over 64 KiB', method: 'PUT', path: () => `/personas/${seeded.id}`, request: { body: withField('beliefs', [long(70_000)]), headers: { 'if-match': '"1"' } }, status: 413 },
  { name: 'batch body over 1 MiB', method: 'POST', path: '/personas/batch', request: { body: { personas: Array.from({ length: 100 }, () => withField('beliefs', [long(11_000)])) } }, status: 413 },
  { name: 'body over API Gateway 10 MB', method: 'POST', path: '/personas', request: { rawBody: long(10 * 1024 * 1024 + 10), headers: json }, status: 413 },
  // Ids
  ...['not-a-uuid', '123', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', '00000000-0000-4000-8000-00000000000', `${UNKNOWN_ID}0`, '%20', "'%20OR%201=1"].flatMap(
    (badId): MalformedCase[] => [
      { name: `GET bad id ${badId}`, method: 'GET', path: `/personas/${badId}`, status: 400 },
      { name: `DELETE bad id ${badId}`, method: 'DELETE', path: `/personas/${badId}`, status: 400 },
    ],
  ),
  { name: 'PUT bad id', method: 'PUT', path: '/personas/nope', request: { body: einstein, headers: { 'if-match': '"1"' } }, status: 400 },
  { name: 'PATCH bad id', method: 'PATCH', path: '/personas/nope', request: { body: { name: 'x' }, headers: mergePatch }, status: 400 },
  { name: 'GET unknown id', method: 'GET', path: `/personas/${UNKNOWN_ID}`, status: 404 },
  { name: 'DELETE unknown id', method: 'DELETE', path: `/personas/${UNKNOWN_ID}`, status: 404 },
  { name: 'PUT unknown id', method: 'PUT', path: `/personas/${UNKNOWN_ID}`, request: { body: einstein, headers: { 'if-match': '"1"' } }, status: 404 },
  { name: 'PATCH unknown id', method: 'PATCH', path: `/personas/${UNKNOWN_ID}`, request: { body: { name: 'x' }, headers: mergePatch }, status: 404 },
  // Preconditions
  { name: 'PUT without If-Match', method: 'PUT', path: () => `/personas/${seeded.id}`, request: { body: einstein }, status: 428 },
  { name: 'PUT stale If-Match', method: 'PUT', path: () => `/personas/${seeded.id}`, request: { body: einstein, headers: { 'if-match': '"2"' } }, status: 412 },
  { name: 'PUT malformed If-Match', method: 'PUT', path: () => `/personas/${seeded.id}`, request: { body: einstein, headers: { 'if-match': 'version-1' } }, status: 400 },
  { name: 'PATCH stale If-Match', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { name: 'x' }, headers: { ...mergePatch, 'if-match': '"5"' } }, status: 412 },
  { name: 'DELETE stale If-Match', method: 'DELETE', path: () => `/personas/${seeded.id}`, request: { headers: { 'if-match': '"9"' } }, status: 412 },
  { name: 'PATCH body an array', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { rawBody: '[]', headers: mergePatch }, status: 400 },
  { name: 'PATCH sets version', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { version: 9 }, headers: mergePatch }, status: 400 },
  { name: 'PATCH removes name', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { name: null }, headers: mergePatch }, status: 400 },
  { name: 'PATCH trait out of range', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { traits: { openness: 3 } }, headers: mergePatch }, status: 400 },
  { name: 'PATCH unknown field', method: 'PATCH', path: () => `/personas/${seeded.id}`, request: { body: { nickname: 'Al' }, headers: mergePatch }, status: 400 },
  // Cursors and limits
  ...['abc', 'abc.def', '..', 'eyJ2IjoxLCJhZnRlciI6IngifQ.AAAAAAAAAAAAAAAAAAAAAA', '%00', 'a.b.c'].map(
    (cursor): MalformedCase => ({ name: `list bad cursor ${cursor}`, method: 'GET', path: `/personas?cursor=${encodeURIComponent(cursor)}`, status: 400 }),
  ),
  ...['0', '101', '-1', '1.5', 'ten', '1e2', '99999999999999999999'].map(
    (limit): MalformedCase => ({ name: `list bad limit ${limit}`, method: 'GET', path: `/personas?limit=${limit}`, status: 400 }),
  ),
  // Batch envelopes
  { name: 'batch body an array', method: 'POST', path: '/personas/batch', request: { body: [einstein] }, status: 400 },
  { name: 'batch personas missing', method: 'POST', path: '/personas/batch', request: { body: {} }, status: 400 },
  { name: 'batch personas an object', method: 'POST', path: '/personas/batch', request: { body: { personas: einstein } }, status: 400 },
  { name: 'batch personas empty', method: 'POST', path: '/personas/batch', request: { body: { personas: [] } }, status: 400 },
  { name: 'batch over 100 items', method: 'POST', path: '/personas/batch', request: { body: { personas: Array.from({ length: 101 }, () => einstein) } }, status: 400 },
  { name: 'batch unknown envelope field', method: 'POST', path: '/personas/batch', request: { body: { personas: [einstein], dryRun: true } }, status: 400 },
  { name: 'batch malformed JSON', method: 'POST', path: '/personas/batch', request: { rawBody: '{"personas": [', headers: json }, status: 400 },
  { name: 'bad Idempotency-Key', method: 'POST', path: '/personas', request: { body: { ...einstein, traits: { openness: 9 } }, headers: { 'idempotency-key': 'x'.repeat(300) } }, status: 400 },
  // Routes and methods
  { name: 'unknown route', method: 'GET', path: '/persons', status: 404 },
  { name: 'unknown nested route', method: 'GET', path: `/personas/${UNKNOWN_ID}/friends`, status: 404 },
  { name: 'root', method: 'GET', path: '/', status: 404 },
  { name: 'DELETE collection', method: 'DELETE', path: '/personas', status: 405 },
  { name: 'PUT collection', method: 'PUT', path: '/personas', request: { body: einstein }, status: 405 },
  { name: 'PATCH collection', method: 'PATCH', path: '/personas', request: { body: {}, headers: mergePatch }, status: 405 },
  { name: 'POST to an item', method: 'POST', path: () => `/personas/${seeded.id}`, request: { body: einstein }, status: 405 },
  { name: 'DELETE batch', method: 'DELETE', path: '/personas/batch', status: 405 },
];

describe('malformed requests', () => {
  it('lists at least 100 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it.each(cases.map((testCase) => [testCase.name, testCase] as const))('%s → 4xx problem+json', async (_name, testCase) => {
    const path = typeof testCase.path === 'function' ? testCase.path() : testCase.path;
    const response = await api(testCase.method, path, testCase.request);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    if (testCase.status) expect(response.status).toBe(testCase.status);
    // API Gateway itself answers payloads over 10 MB, before any function runs.
    if (!testCase.name.includes('API Gateway')) {
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(response.json.status).toBe(response.status);
      expect(response.json.detail).toEqual(expect.any(String));
    }
  });

  it('left nothing in the tables: the seeded persona is unchanged and alone', async () => {
    expect(await countTableItems(config.personaTableName)).toBe(1);
    expect(await countTableItems(config.idempotencyTableName)).toBe(0);
    expect((await api('GET', `/personas/${seeded.id}`)).json).toEqual(seeded);
  });
});

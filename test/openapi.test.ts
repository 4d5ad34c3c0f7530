import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bodyLimits } from '../shared/http/request';
import { applyMergePatch } from '../shared/persona/mergePatch';
import { listLimits, MAX_BATCH_ITEMS } from '../shared/persona/personaService';
import { personaInputSchema, personaLimits } from '../shared/persona/schema';
import { routes } from '../shared/routes';
import { parseSearchRequest, searchLimits } from '../shared/search/searchRequest';
import { batchCreateRequestSchema } from '../shared/openapi/apiSchemas';
import { buildOpenApiDocument, type OpenApiDocument } from '../shared/openapi/openApiDocument';
import { requestExamples } from '../shared/openapi/operations';
import { einstein, samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

type Json = Record<string, any>;

const document = buildOpenApiDocument();
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function resolvePointer(root: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), root);
}

const deref = (item: Json): Json => (item.$ref ? (resolvePointer(document, item.$ref) as Json) : item);

/** Every `$ref` in a JSON value, with where it stands. */
function refs(value: unknown, at = '#'): Array<[string, string]> {
  if (Array.isArray(value)) return value.flatMap((item, index) => refs(item, `${at}/${index}`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) =>
    key === '$ref' && typeof child === 'string' ? [[at, child] as [string, string]] : refs(child, `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`),
  );
}

/**
 * The structural rules of OpenAPI 3.1 that a generator can get wrong; returns the violations.
 * (A check written here rather than a validator dependency: the rules are few and explicit.)
 */
function openApiViolations(doc: OpenApiDocument): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(message);
  if (!/^3\.1\.\d+$/.test(doc.openapi)) fail(`openapi is ${doc.openapi}, not 3.1.x`);
  const info = doc.info as Json;
  if (typeof info?.title !== 'string' || typeof info?.version !== 'string') fail('info needs title and version strings');
  const declaredTags = new Set(((doc.tags as Json[]) ?? []).map((tag) => tag.name));
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/')) fail(`path ${path} must start with /`);
    const placeholders = [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => name!);
    for (const [method, operation] of Object.entries(item) as Array<[string, Json]>) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!METHODS.includes(method)) fail(`${where}: ${method} is not an HTTP method field`);
      if (typeof operation.operationId !== 'string' || operationIds.has(operation.operationId)) fail(`${where}: operationId missing or not unique`);
      operationIds.add(operation.operationId);
      for (const tag of operation.tags ?? []) if (!declaredTags.has(tag)) fail(`${where}: tag ${tag} is not declared`);
      const parameters = ((operation.parameters ?? []) as Json[]).map(deref);
      const keys = parameters.map((parameter) => `${parameter.in}:${parameter.name}`);
      if (new Set(keys).size !== keys.length) fail(`${where}: duplicate parameters`);
      for (const parameter of parameters) {
        if (typeof parameter.name !== 'string' || !['query', 'header', 'path', 'cookie'].includes(parameter.in)) fail(`${where}: parameter needs name and in`);
        if (!parameter.schema === !parameter.content) fail(`${where}: parameter ${parameter.name} needs exactly one of schema and content`);
        if (parameter.in === 'path' && (parameter.required !== true || !placeholders.includes(parameter.name))) fail(`${where}: path parameter ${parameter.name} must be required and in the path`);
        if (parameter.style !== undefined && parameter.in === 'query' && !['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'].includes(parameter.style)) fail(`${where}: bad style`);
      }
      for (const name of placeholders) {
        if (!parameters.some((parameter) => parameter.in === 'path' && parameter.name === name)) fail(`${where}: {${name}} is not declared as a path parameter`);
      }
      if (operation.requestBody && Object.keys(operation.requestBody.content ?? {}).length === 0) fail(`${where}: requestBody without content`);
      const responses = Object.entries((operation.responses ?? {}) as Json);
      if (responses.length === 0) fail(`${where}: no responses`);
      for (const [status, response] of responses) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) fail(`${where}: response key ${status}`);
        if (typeof deref(response).description !== 'string') fail(`${where} ${status}: response needs a description`);
        for (const [mediaType, content] of Object.entries((deref(response).content ?? {}) as Json)) {
          if (!content.schema) fail(`${where} ${status} ${mediaType}: no schema`);
        }
        for (const header of Object.values((deref(response).headers ?? {}) as Json)) {
          if (!deref(header).schema) fail(`${where} ${status}: header without schema`);
        }
      }
    }
  }
  for (const [section, entries] of Object.entries(doc.components)) {
    for (const name of Object.keys(entries)) if (!/^[a-zA-Z0-9._-]+$/.test(name)) fail(`components.${section}.${name}: invalid name`);
  }
  for (const [at, ref] of refs(doc)) if (resolvePointer(doc, ref) === undefined) fail(`${at}: $ref ${ref} does not resolve`);
  return problems;
}

/** A validator built from the document's own JSON Schema (not from the zod source), for cross-checks. */
function documentSchema(name: string): z.ZodType {
  const rewritten = JSON.parse(JSON.stringify(document.components.schemas).replace(/#\/components\/schemas\//g, '#/$defs/'));
  return z.fromJSONSchema({ $defs: rewritten, $ref: `#/$defs/${name}` });
}

describe('the OpenAPI document', () => {
  it('documents every route of the route table, under its name', () => {
    for (const route of routes) {
      if (route.path === '$default') {
        expect((document['x-unmatched-requests'] as Json).operationId).toBe(route.name);
        continue;
      }
      const operation = document.paths[route.path]?.[route.method.toLowerCase()] as Json | undefined;
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      expect(operation!.operationId).toBe(route.name);
    }
    const documented = Object.values(document.paths).flatMap((item) => Object.values(item)).length;
    expect(documented).toBe(routes.length - 1);
  });

  it('is structurally valid OpenAPI 3.1', () => {
    expect(openApiViolations(document)).toEqual([]);
  });

  it('the structural check catches broken documents', () => {
    const broken = structuredClone(document) as Json;
    broken.openapi = '3.0.3';
    broken.paths['/personas/{id}'].get.parameters = [];
    broken.paths['/personas/search'].post.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nope' };
    broken.paths['/docs'].get.responses = { ok: { description: 'x' } };
    const violations = openApiViolations(broken as OpenApiDocument);
    expect(violations).toEqual([
      'openapi is 3.0.3, not 3.1.x',
      'GET /personas/{id}: {id} is not declared as a path parameter',
      'GET /docs: response key ok',
      '#/paths/~1personas~1search/post/responses/200/content/application~1json/schema: $ref #/components/schemas/Nope does not resolve',
    ]);
  });

  it('publishes the limits from the schemas and request reader', () => {
    const schemas = document.components.schemas as Json;
    expect(schemas.PersonaInput.properties.name.maxLength).toBe(personaLimits.nameLength);
    expect(schemas.PersonaInput.properties.beliefs.maxItems).toBe(personaLimits.statementCount);
    expect(schemas.PersonaInput.properties.beliefs.items.maxLength).toBe(personaLimits.statementLength);
    expect(schemas.BatchCreateRequest.properties.personas.maxItems).toBe(MAX_BATCH_ITEMS);
    expect(schemas.SearchRequest.properties.limit).toMatchObject({ minimum: 1, maximum: searchLimits.maxLimit, default: searchLimits.defaultLimit });
    expect(schemas.SearchRequest.properties.offset).toMatchObject({ minimum: 0, maximum: searchLimits.maxOffset });
    expect(schemas.SearchRequest.properties.query.maxLength).toBe(searchLimits.queryLength);
    expect(schemas.SearchRequest.additionalProperties).toBe(false);
    expect(document.paths['/personas']!.post!.requestBody).toMatchObject({ description: expect.stringContaining(String(bodyLimits.single)) });
    expect(document.paths['/personas/batch']!.post!.requestBody).toMatchObject({ description: expect.stringContaining(String(bodyLimits.batch)) });
    const listLimit = (document.paths['/personas']!.get!.parameters as Json[]).find((parameter) => parameter.name === 'limit')!;
    expect(listLimit.schema).toMatchObject({ maximum: listLimits.max, default: listLimits.default });
    expect(document['x-limits']).toEqual({ body_bytes: bodyLimits, persona: personaLimits, batch_items: MAX_BATCH_ITEMS, list: listLimits, search: searchLimits });
  });

  it('documents the headers of conditional and idempotent requests', () => {
    const parameterNames = (path: string, method: string) => ((document.paths[path]![method] as Json).parameters as Json[]).map((parameter) => deref(parameter).name);
    expect(parameterNames('/personas', 'post')).toContain('Idempotency-Key');
    expect(parameterNames('/personas/batch', 'post')).toContain('Idempotency-Key');
    for (const method of ['put', 'patch', 'delete']) expect(parameterNames('/personas/{id}', method)).toContain('If-Match');
    expect(deref(((document.paths['/personas/{id}']!.put as Json).parameters as Json[])[1]!).required).toBe(true);
    const responses = (path: string, method: string) => (document.paths[path]![method] as Json).responses as Json;
    expect(Object.keys(responses('/personas/{id}', 'get')['200'].headers)).toEqual(['ETag']);
    expect(Object.keys(responses('/personas', 'post')['201'].headers)).toEqual(['ETag', 'Location', 'Idempotent-Replayed']);
    expect(responses('/personas/{id}', 'put')).toHaveProperty('428');
    expect(responses('/personas/{id}', 'put')).toHaveProperty('412');
    expect(Object.keys(responses('/personas/{id}/similar', 'get')['409'].headers)).toEqual(['Retry-After']);
    for (const item of Object.values(document.paths)) {
      for (const operation of Object.values(item) as Json[]) {
        for (const [status, response] of Object.entries(operation.responses as Json)) {
          if (Number(status) >= 400) expect(Object.keys(response.content)).toEqual(['application/problem+json']);
        }
      }
    }
  });

  it('documents the similar query string with the bounds of the search schema', () => {
    const parameters = ((document.paths['/personas/{id}/similar']!.get as Json).parameters as Json[]).map(deref);
    const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
    expect(byName.get('limit')!.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: searchLimits.maxLimit });
    expect(byName.get('domain')).toMatchObject({ in: 'query', style: 'form', explode: false, schema: { type: 'array' } });
    expect(byName.get('traits.neuroticism.lte')!.schema).toEqual({ type: 'number', minimum: 0, maximum: 1 });
    expect(byName.get('mode')!.schema.enum).toEqual(['hybrid', 'semantic', 'keyword', 'personality', 'blend']);
    expect(byName.get('fusion')!.schema).toMatchObject({ enum: ['rrf', 'dbsf'], default: 'rrf' });
    expect(byName.get('explain')!.schema).toMatchObject({ type: 'boolean', default: false });
    expect(byName.get('weights.keyword')!.schema).toEqual({ type: 'number', exclusiveMinimum: 0, maximum: 100 });
    expect(parameters).toHaveLength(1 + 7 + 4 + 10 + 3);
  });

  it('has request examples that the API accepts', () => {
    for (const example of Object.values(requestExamples.SearchRequest)) expect(() => parseSearchRequest(example.value)).not.toThrow();
    expect(personaInputSchema.safeParse(requestExamples.PersonaInput.einstein.value).success).toBe(true);
    expect(batchCreateRequestSchema.safeParse(requestExamples.BatchCreateRequest.two.value).success).toBe(true);
    for (const example of Object.values(requestExamples.PersonaMergePatch)) {
      expect(personaInputSchema.safeParse(applyMergePatch(einstein, example.value)).success).toBe(true);
    }
    // The document's own JSON Schema agrees with the zod source about them.
    for (const example of Object.values(requestExamples.SearchRequest)) expect(documentSchema('SearchRequest').safeParse(example.value).success).toBe(true);
    expect(documentSchema('SearchRequest').safeParse({ query: 'a', limit: 0 }).success).toBe(false);
    expect(documentSchema('SearchRequest').safeParse({ query: 'a', filter: { traits: { charisma: { gte: 1 } } } }).success).toBe(false);
  });
});

describe('served by the API', () => {
  let env: Awaited<ReturnType<typeof startTestSystem>>;
  beforeAll(async () => {
    env = await startTestSystem();
  });
  afterAll(() => env?.system.stop());

  it('GET /openapi.json is the document', async () => {
    const response = await env.api('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.json).toEqual(JSON.parse(JSON.stringify(document)));
  });

  it('GET /docs is the Swagger UI page of this document (console.test.ts runs it in a browser)', async () => {
    const response = await env.api('GET', '/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(response.text).toContain('<script type="module" src="assets/docs.js"></script>');
    expect(response.text).toContain('<a href="openapi.json">');
    const script = await env.api('GET', '/assets/docs.js');
    expect(script.status).toBe(200);
    // Swagger UI's own bundle, with this page's settings: the document of this origin, try-it-out on.
    expect(script.text).toContain('openapi.json');
    expect(script.text).toContain('tryItOutEnabled');
  });

  it('real responses match the document\'s response schemas, and the documented status codes', async () => {
    const created = await env.api('POST', '/personas', { body: samplePersona(1) });
    const createdDoc = (document.paths['/personas']!.post as Json).responses;
    expect(Object.keys(createdDoc)).toContain(String(created.status));
    expect(documentSchema('Persona').parse(created.json)).toEqual(created.json);
    await env.system.streamWorker.drain();

    const checks: Array<[string, string, string, Parameters<typeof env.api>[2]?]> = [
      ['GET', '/personas?limit=5', 'PersonaListPage'],
      ['POST', '/personas/batch', 'BatchResult', { body: { personas: [samplePersona(2), { name: '' }] } }],
      ['POST', '/personas/search', 'SearchResults', { body: { query: 'belief phrase', hydrate: true } }],
      ['POST', '/personas/search', 'SearchResults', { body: { mode: 'personality', traits: einstein.traits } }],
      ['GET', `/personas/${created.json.id}/similar?mode=blend`, 'SimilarResults'],
      ['POST', '/personas/search', 'Problem', { body: { query: 'a', limit: 1000 } }],
      ['GET', '/personas/3f2b8c1e-8f7a-4f7e-9a53-2f0d9c6c1b2a', 'Problem'],
      ['PUT', `/personas/${created.json.id}`, 'Problem', { body: samplePersona(1) }],
    ];
    for (const [method, path, schema, request] of checks) {
      const response = await env.api(method, path, request);
      const result = documentSchema(schema).safeParse(response.json);
      expect(result.success, `${method} ${path}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
      const template = path.split('?')[0]!.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/, '{id}');
      expect(Object.keys(((document.paths[template]![method.toLowerCase()] as Json).responses) as Json), `${method} ${template}`).toContain(String(response.status));
    }
    // The document's schemas are strict where the API is: a result with an unknown field does not pass.
    const search = await env.api('POST', '/personas/search', { body: { query: 'belief' } });
    expect(documentSchema('SearchResults').safeParse({ ...search.json, extra: 1 }).success).toBe(false);
  });
});

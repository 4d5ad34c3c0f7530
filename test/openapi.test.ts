import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyLimits, idempotencyKey, ifMatchVersion } from '../shared/http/request';
import { applyMergePatch } from '../shared/persona/mergePatch';
import { listLimits, MAX_BATCH_ITEMS } from '../shared/persona/personaService';
import { DYNAMODB_SMALLEST_NUMBER, NOT_BLANK, personaInputSchema, personaLimits, TRAIT_NAMES } from '../shared/persona/schema';
import { routes } from '../shared/routes';
import { parseSearchRequest, RANKINGS, SEARCH_MODES, searchLimits, searchRequestSchema } from '../shared/search/searchRequest';
import { parseSimilarQuery, weightParameter } from '../shared/search/similarQuery';
import { batchCreateRequestSchema } from '../shared/openapi/apiSchemas';
import { buildOpenApiDocument, type OpenApiDocument } from '../shared/openapi/openApiDocument';
import { requestExamples } from '../shared/openapi/operations';
import { einstein, samplePersona } from './support/apiClient';
import { documentSchemas } from './support/documentSchemas';
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
const documentSchema = documentSchemas(document);

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
    // Errors are problems, but for API Gateway's own refusals (401, and 403 when the gateway checks scopes).
    const gatewayMediaTypes: Record<string, string[]> = { '401': ['application/json'], '403': ['application/json', 'application/problem+json'] };
    for (const item of Object.values(document.paths)) {
      for (const operation of Object.values(item) as Json[]) {
        for (const [status, response] of Object.entries(operation.responses as Json)) {
          if (Number(status) >= 400) expect(Object.keys(response.content), `${operation.operationId} ${status}`).toEqual(gatewayMediaTypes[status] ?? ['application/problem+json']);
        }
      }
    }
  });

  it('documents every status an operation can answer, 401 included, each problem status with its problem types', () => {
    for (const route of routes) {
      if (route.path === '$default') continue;
      const operation = document.paths[route.path]![route.method.toLowerCase()] as Json;
      const statuses = Object.keys(operation.responses);
      // Behind the JWT authorizer: API Gateway's 401 and 403, as its documentation describes them.
      if (route.scope) expect(statuses, route.name).toEqual(expect.arrayContaining(['401', '403']));
      else expect(statuses, route.name).not.toContain('401');
      expect(statuses, route.name).toContain('500');
      for (const [status, response] of Object.entries(operation.responses as Json)) {
        const problem = response.content?.['application/problem+json'];
        if (!problem) continue;
        const types: string[] = problem.schema.allOf[1].properties.type.enum;
        expect(types.length, `${route.name} ${status}`).toBeGreaterThan(0);
        // The description names each type it lists, so that a reader learns when each happens.
        for (const type of types) expect(response.description, `${route.name} ${status}`).toContain(`\`${type.split('/').pop()}\``);
      }
    }
    expect(Object.keys((document['x-unmatched-requests'] as Json).responses)).toEqual(['401', '404', '405']);
    const gatewayAnswer = documentSchema('GatewayError');
    expect(gatewayAnswer.safeParse({ message: 'Unauthorized' }).success).toBe(true);
    expect(gatewayAnswer.safeParse({ type: 'x' }).success).toBe(false);
  });

  it('documents the similar query string with the bounds of the search schema', () => {
    const parameters = ((document.paths['/personas/{id}/similar']!.get as Json).parameters as Json[]).map(deref);
    const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
    expect(byName.get('limit')!.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: searchLimits.maxLimit });
    expect(byName.get('domain')).toMatchObject({ in: 'query', style: 'form', explode: false, schema: { type: 'array' } });
    expect(byName.get('traits.neuroticism.lte')!.schema).toEqual({ type: 'number', minimum: 0, maximum: 1 });
    expect(byName.get('explain')!.schema).toMatchObject({ type: 'boolean', default: false });
    // mode, fusion and the weights depend on one another: one exploded object parameter states it.
    expect(byName.get('ranking')).toMatchObject({ in: 'query', style: 'form', explode: true, schema: { $ref: '#/components/schemas/SimilarRanking' } });
    const ranking = (document.components.schemas as Json).SimilarRanking;
    expect(ranking.properties.mode.enum).toEqual(['hybrid', 'semantic', 'keyword', 'personality', 'blend']);
    expect(ranking.properties.fusion).toMatchObject({ enum: ['rrf', 'dbsf'], default: 'rrf' });
    expect(ranking.properties['weights.keyword']).toMatchObject({ type: 'number', exclusiveMinimum: 0, maximum: 100 });
    expect(parameters).toHaveLength(1 + 1 + 5 + 4 + 10);
    // The parser counts an empty value as absent, but for a list (one empty label); the document says which.
    for (const parameter of parameters.filter((parameter) => parameter.in === 'query' && parameter.name !== 'ranking')) {
      expect(parameter.allowEmptyValue, parameter.name).toBe(parameter.schema.type !== 'array');
    }
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

/**
 * Issue 31: the document states every validation rule that JSON Schema can state. Each property
 * below generates requests around the rules and checks that the document's JSON Schema (Ajv) and
 * the API's own validation (zod) give the same verdict; the only rule left out is the one JSON
 * Schema cannot say (a trait range's gte ≤ lte), which the document names with its 400.
 */
describe('the document states the validation rules', () => {
  const RUNS = 400;
  const traitsArbitrary = fc.record(Object.fromEntries(TRAIT_NAMES.map((trait) => [trait, fc.constantFrom(0, 0.5, 1, DYNAMODB_SMALLEST_NUMBER, 1e-131, 5e-324, 1.5, -0.1)])) as Record<string, fc.Arbitrary<number>>);
  const sometimes = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 2 });
  const succeeds = (run: () => unknown): boolean => {
    try {
      run();
      return true;
    } catch {
      return false;
    }
  };
  const defined = (value: Record<string, unknown>) => Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined));
  /** Strings around each rule: blank, blank by JavaScript's trim() but not by Python's \\s, emoji (two UTF-16 units, one character) up to the limits. */
  const text = (maxLength: number) =>
    fc.oneof(
      fc.constantFrom('', ' ', '\t\n', '\u00a0', '\ufeff', '\u2028', '\u001c', 'x', ' x '),
      fc.constantFrom(maxLength - 1, maxLength, maxLength + 1).map((length) => '😀'.repeat(length)),
      fc.constantFrom(maxLength, maxLength + 1).map((length) => 'x'.repeat(length)),
    );

  it('blank: the pattern is exactly what String.prototype.trim() removes', () => {
    for (let code = 0; code <= 0xffff; code++) {
      const character = String.fromCharCode(code);
      if (code >= 0xd800 && code <= 0xdfff) continue;
      expect(NOT_BLANK.test(character), `U+${code.toString(16)}`).toBe(character.trim().length > 0);
    }
  });

  it('PersonaInput: the document and the API agree on strings, lengths in characters and trait numbers', () => {
    const persona = fc.record({
      name: text(personaLimits.nameLength),
      domain: fc.array(text(personaLimits.labelLength), { minLength: 0, maxLength: 2 }),
      emotional_style: sometimes(text(personaLimits.emotionalStyleLength)),
      traits: traitsArbitrary,
    });
    const schema = documentSchema('PersonaInput');
    fc.assert(
      fc.property(persona, (value) => {
        const body = defined(value);
        expect(schema.safeParse(body).success, JSON.stringify(body).slice(0, 200)).toBe(personaInputSchema.safeParse(body).success);
      }),
      { numRuns: RUNS },
    );
  });

  it('PersonaMergePatch: the document accepts exactly the patches that leave a valid persona', () => {
    const member = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>) => sometimes(fc.oneof(valid, invalid, fc.constant(null)));
    const patch = fc
      .record({
        name: member(fc.constant('Ada'), text(personaLimits.nameLength)),
        domain: member(fc.constant(['math']), fc.constant([])),
        modes: member(fc.constant(['Coach']), fc.constant([' '])),
        humor_usage: member(fc.constant('high'), fc.constant('loud')),
        emotional_style: member(fc.constant('calm'), fc.constant('')),
        traits: member(
          fc.record({ openness: sometimes(fc.constantFrom(0, 0.3, 1e-131, 2)), neuroticism: sometimes(fc.constantFrom(0.1, null)) }).map(defined),
          fc.constantFrom(5, [], { charisma: 1 }),
        ),
        unknown: sometimes(fc.constant(1)),
      })
      .map(defined);
    const schema = documentSchema('PersonaMergePatch');
    fc.assert(
      fc.property(patch, (value) => {
        const patched = personaInputSchema.safeParse(applyMergePatch(einstein, value)).success;
        expect(schema.safeParse(value).success, JSON.stringify(value)).toBe(patched);
      }),
      { numRuns: RUNS },
    );
  });

  it('SearchRequest: the document states which inputs each mode needs and refuses, and where weights apply', () => {
    const search = fc
      .record({
        mode: sometimes(fc.constantFrom(...SEARCH_MODES)),
        query: sometimes(fc.oneof(fc.constant('physics'), text(searchLimits.queryLength))),
        traits: sometimes(fc.constant(einstein.traits)),
        fusion: sometimes(fc.constantFrom('rrf', 'dbsf')),
        weights: sometimes(fc.record({ semantic: sometimes(fc.constant(2)), keyword: sometimes(fc.constant(1)), personality: sometimes(fc.constant(3)) }).map(defined)),
        // Ranges with gte ≤ lte, and empty ones: the rule JSON Schema cannot state is left out.
        filter: sometimes(fc.constantFrom({}, { traits: { openness: { gte: 0.2, lte: 0.8 } } }, { traits: { openness: {} } }, { domain: [''] })),
      })
      .map(defined);
    const schema = documentSchema('SearchRequest');
    fc.assert(
      fc.property(search, (body) => {
        expect(schema.safeParse(body).success, JSON.stringify(body).slice(0, 300)).toBe(searchRequestSchema.safeParse(body).success);
      }),
      { numRuns: RUNS },
    );
    // The one rule it cannot state is named with its 400 instead.
    expect(schema.safeParse({ query: 'a', filter: { traits: { openness: { gte: 0.9, lte: 0.1 } } } }).success).toBe(true);
    expect(() => parseSearchRequest({ query: 'a', filter: { traits: { openness: { gte: 0.9, lte: 0.1 } } } })).toThrow();
    expect(((document.paths['/personas/search']!.post as Json).responses['400'] as Json).description).toContain('gte is greater than its lte');
  });

  it('SimilarRanking: the document states which weights each mode and fusion take, as the query parser checks them', () => {
    const ranking = fc
      .record({
        // '' too: the members of the ranking object cannot be empty (unlike the flat parameters).
        mode: sometimes(fc.constantFrom(...SEARCH_MODES, '')),
        fusion: sometimes(fc.constantFrom('rrf', 'dbsf', '')),
        ...Object.fromEntries(RANKINGS.map((name) => [weightParameter(name), sometimes(fc.constantFrom(0.5, 2, ''))])),
      })
      .map(defined);
    const schema = documentSchema('SimilarRanking');
    const accepted = (parameters: Record<string, unknown>) => succeeds(() => parseSimilarQuery(new URLSearchParams(parameters as Record<string, string>).toString()));
    fc.assert(
      fc.property(ranking, (parameters) => {
        expect(schema.safeParse(parameters).success, JSON.stringify(parameters)).toBe(accepted(parameters));
      }),
      { numRuns: RUNS },
    );
  });

  it('headers: If-Match and Idempotency-Key patterns are the ones the API reads', () => {
    const pattern = (name: string) => new RegExp(((document.components.parameters as Json)[name].schema as Json).pattern, 'u');
    const event = (headers: Record<string, string>) => ({ headers, requestContext: { http: { method: 'PUT' } } }) as never;
    for (const value of ['"1"', 'W/"12"', '*', '"x"', '1', '"1", "2"', 'W/"١"', '"0123456789012345"', '']) {
      // An empty If-Match counts as absent: not read, and not refused.
      const read = succeeds(() => ifMatchVersion(event({ 'if-match': value }))) && value !== '';
      expect(pattern('IfMatchRequired').test(value), value).toBe(read);
      expect(pattern('IfMatch').test(value), value).toBe(read || value === '');
    }
    for (const value of ['a', 'x'.repeat(255), 'x'.repeat(256), 'with space', 'é', '']) {
      expect(pattern('IdempotencyKey').test(value), value).toBe(succeeds(() => idempotencyKey(event({ 'idempotency-key': value }))));
    }
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
    expect(documentSchema('Persona').safeParse(created.json).success).toBe(true);
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
      expect(result.success, `${method} ${path}: ${JSON.stringify(result.errors)}`).toBe(true);
      const template = path.split('?')[0]!.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/, '{id}');
      expect(Object.keys(((document.paths[template]![method.toLowerCase()] as Json).responses) as Json), `${method} ${template}`).toContain(String(response.status));
    }
    // The document's schemas are strict where the API is: a result with an unknown field does not pass.
    const search = await env.api('POST', '/personas/search', { body: { query: 'belief' } });
    expect(documentSchema('SearchResults').safeParse({ ...search.json, extra: 1 }).success).toBe(false);
  });
});

import { z } from 'zod';
import { bodyLimits, IDEMPOTENCY_KEY_PATTERN, IF_MATCH_PATTERN } from '../http/request';
import { listLimits, MAX_BATCH_ITEMS } from '../persona/personaService';
import { personaInputSchema, personaLimits, personaMergePatchSchema, personaSchema, TRAIT_NAMES } from '../persona/schema';
import { routes, scopesGranting, type RouteDefinition } from '../routes';
import {
  defaultWeightText,
  LIST_FILTER_FIELDS,
  MODE_RANKINGS,
  RANKINGS,
  SIMILAR_DEFAULT_MODE,
  weightRules,
  type Ranking,
  searchFilterSchema,
  searchLimits,
  searchRequestSchema,
  similarRequestSchema,
} from '../search/searchRequest';
import { hydratedSearchHitSchema, searchHitSchema, searchResultsSchema, similarResultsSchema } from '../search/searchResults';
import { RANKING_PARAMETERS, SCALAR_PARAMETERS, TRAIT_BOUNDS, traitParameter, weightParameter } from '../search/similarQuery';
import { batchCreateRequestSchema, batchResultSchema, personaListPageSchema, problemSchema } from './apiSchemas';
import { EXAMPLE_ID, links, operations, problemSpec } from './operations';

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; description?: string };
export type OpenApiDocument = Record<string, unknown> & {
  openapi: string;
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: Record<string, Record<string, unknown>>;
};

const COMPONENT_URI = (id: string) => `#/components/schemas/${id}`;

/** Component schemas from zod: requests as clients may send them (defaults optional), responses as the API sends them. */
function componentSchemas(): Record<string, JsonSchema> {
  const requests = z.registry<{ id: string }>();
  requests.add(personaInputSchema, { id: 'PersonaInput' });
  requests.add(personaMergePatchSchema, { id: 'PersonaMergePatch' });
  requests.add(batchCreateRequestSchema, { id: 'BatchCreateRequest' });
  requests.add(searchRequestSchema, { id: 'SearchRequest' });
  requests.add(searchFilterSchema, { id: 'SearchFilter' });
  const responses = z.registry<{ id: string }>();
  responses.add(personaSchema, { id: 'Persona' });
  responses.add(personaListPageSchema, { id: 'PersonaListPage' });
  responses.add(batchResultSchema, { id: 'BatchResult' });
  responses.add(searchResultsSchema, { id: 'SearchResults' });
  responses.add(similarResultsSchema, { id: 'SimilarResults' });
  responses.add(searchHitSchema, { id: 'SearchHit' });
  responses.add(hydratedSearchHitSchema, { id: 'HydratedSearchHit' });
  responses.add(problemSchema, { id: 'Problem' });
  const options = { target: 'draft-2020-12', uri: COMPONENT_URI } as const;
  const schemas = {
    ...z.toJSONSchema(requests, { ...options, io: 'input' }).schemas,
    ...z.toJSONSchema(responses, { ...options, io: 'output' }).schemas,
    SimilarRanking: similarRankingSchema(),
    GatewayError: {
      type: 'object',
      description: 'API Gateway\'s own answer when its authorizer refuses a request (the function never runs).',
      properties: { message: { type: 'string', enum: ['Unauthorized', 'Forbidden'] } },
      required: ['message'],
    },
  } as Record<string, JsonSchema>;
  // The document is one JSON Schema 2020-12 resource (OpenAPI 3.1's default dialect); ids would make each its own.
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas;
}

const withoutDescription = ({ description: _, ...schema }: JsonSchema) => schema;

/**
 * The similar route's query parameters, from the same option schema that validates them. Every
 * parameter is optional and an empty value counts as absent (allowEmptyValue), but for a list, where it is
 * one empty value (refused: on the wire, `domain=` is also the list of one empty label), and for the
 * members of `ranking` (OpenAPI has no allowEmptyValue for an object's members). `mode`, `fusion` and
 * the `weights.<ranking>` parameters depend on one another (a weight needs fusion rrf and a mode
 * that fuses its ranking), which OpenAPI can only state within one schema: they are the properties
 * of one object parameter, `ranking`, in form style exploded, so each is still its own
 * `name=value` pair in the query string.
 */
function similarQueryParameters(): Record<string, unknown>[] {
  const options = z.toJSONSchema(similarRequestSchema, { target: 'draft-2020-12', io: 'input' }) as JsonSchema;
  const filter = options.properties!.filter!;
  const optional = (name: string, description: unknown, schema: JsonSchema, extra: JsonSchema = {}) => ({ name, in: 'query', required: false, allowEmptyValue: true, description, ...extra, schema });
  const scalars = SCALAR_PARAMETERS.filter((name) => !(RANKING_PARAMETERS as readonly string[]).includes(name)).map((name) =>
    optional(name, options.properties![name]!.description, withoutDescription(options.properties![name]!)),
  );
  const ranking = {
    name: 'ranking',
    in: 'query',
    required: false,
    style: 'form',
    explode: true,
    description:
      'How the neighbours are ranked: `mode`, `fusion` and the RRF weights `weights.<ranking>`, each its own query parameter (`mode=blend&weights.personality=2`). ' +
      `A weight needs fusion rrf and a mode that fuses its ranking (the default mode, ${SIMILAR_DEFAULT_MODE}, fuses ${MODE_RANKINGS[SIMILAR_DEFAULT_MODE].join(' and ')}).`,
    schema: { $ref: COMPONENT_URI('SimilarRanking') },
    example: { mode: 'blend', 'weights.personality': 2 },
  };
  const lists = LIST_FILTER_FIELDS.map((name) => {
    const { example, ...schema } = filter.properties![name]!;
    return {
      ...optional(name, `${schema.description} Comma-separated; a comma inside a value is %2C. An empty value is one empty label, refused.`, withoutDescription(schema), {
        style: 'form',
        explode: false,
        ...(example !== undefined ? { example } : {}),
      }),
      allowEmptyValue: false,
    };
  });
  const traitRanges = filter.properties!.traits!.properties!;
  const bounds = TRAIT_NAMES.flatMap((trait) =>
    TRAIT_BOUNDS.map((bound) =>
      optional(
        traitParameter(trait, bound),
        `${bound === 'gte' ? 'Minimum' : 'Maximum'} ${trait} score (inclusive)${bound === 'gte' ? `; not greater than traits.${trait}.lte` : ''}.`,
        traitRanges[trait]!.properties![bound]!,
      ),
    ),
  );
  return [ranking, ...scalars, ...lists, ...bounds];
}

/** The `ranking` object parameter's schema (a component, for generators): mode, fusion and weights, with the rules between them. */
function similarRankingSchema(): JsonSchema {
  const options = z.toJSONSchema(similarRequestSchema, { target: 'draft-2020-12', io: 'input' }) as JsonSchema;
  const weights = Object.fromEntries(
    RANKINGS.map((ranking) => [
      weightParameter(ranking),
      { ...options.properties!.weights!.properties![ranking]!, description: `RRF weight of the ${ranking} ranking (default: ${defaultWeightText(ranking)}); see \`weights\` of SearchRequest.` },
    ]),
  );
  const weight = (ranking: Ranking) => ({ required: [weightParameter(ranking)] });
  return {
    type: 'object',
    description: 'The ranking options of GET /personas/{id}/similar (its `ranking` parameter), each a query parameter of its own.',
    properties: { ...Object.fromEntries(RANKING_PARAMETERS.map((name) => [name, options.properties![name]!])), ...weights },
    additionalProperties: false,
    allOf: weightRules(SIMILAR_DEFAULT_MODE, { anyOf: RANKINGS.map(weight) }, weight),
  };
}

const limitsSummary = () =>
  [
    '## Limits',
    '',
    `- Request bodies: ${bodyLimits.single} bytes (single persona, patch, search), ${bodyLimits.batch} bytes (batch); larger is a 413 problem.`,
    `- Persona: name ≤ ${personaLimits.nameLength} characters; domain and modes ≤ ${personaLimits.labelCount} labels of ≤ ${personaLimits.labelLength}; beliefs and signature_phrases ≤ ${personaLimits.statementCount} statements of ≤ ${personaLimits.statementLength}; emotional_style ≤ ${personaLimits.emotionalStyleLength}; traits in [0, 1].`,
    `- Batch: ≤ ${MAX_BATCH_ITEMS} personas. List: limit ≤ ${listLimits.max} (default ${listLimits.default}).`,
    `- Search: query ≤ ${searchLimits.queryLength} characters; limit 1–${searchLimits.maxLimit} (default ${searchLimits.defaultLimit}); offset ≤ ${searchLimits.maxOffset}.`,
  ].join('\n');

const API_DESCRIPTION = [
  'Personas stored in DynamoDB (the source of truth) and mirrored into a vector index (Qdrant) for semantic and personality search.',
  '',
  '## Errors',
  '',
  'Every error is an RFC 9457 problem document (`application/problem+json`) with a stable `type` URI (https://persona-db.dev/problems/<slug>). Validation errors list each invalid field in `errors` as `{pointer, detail}`, where pointer is a JSON Pointer into the body, or `#/query/<name>` / `#/path/<name>`. A request no route matches is a 404 `route-not-found`; a known path with another method is a 405 `method-not-allowed` with an Allow header.',
  '',
  '## Concurrency',
  '',
  'Every persona response carries its version as the ETag. PUT requires If-Match; PATCH and DELETE accept it. A stale ETag is a 412 `stale-version`.',
  '',
  limitsSummary(),
].join('\n');

/** API Gateway's own answer when its authorizer refuses a request: the function never runs. */
const gatewayRefusal = { 'application/json': { schema: { $ref: COMPONENT_URI('GatewayError') } } };

/**
 * 401 and 403 of a route that needs a scope, on a stage with auth=jwt. API Gateway's JWT
 * authorizer answers a missing or invalid token 401 and a token without the route's scopes 403,
 * both as `{"message": ...}` JSON (http-api-jwt-authorizer.html); a function behind a gateway that
 * does not check scopes answers the 403 itself, as a problem.
 */
function accessResponses(route: RouteDefinition): Record<string, Record<string, unknown>> {
  const granting = scopesGranting(route);
  const problem = problemSpec({
    'insufficient-scope': `the token carries neither ${granting.join(' nor ')}; the problem names required_scope.`,
    // Routes that reach personas need the caller's tenant on a tenancy=claim stage (shared/tenancy/tenancy.ts).
    ...(route.tableActions.personas ? { 'tenant-required': 'on a tenancy=claim stage, the token has no valid tenant claim.' } : {}),
  });
  return {
    '401': {
      description: 'auth=jwt: the token is missing, malformed, expired, not yet valid, or not signed by the stage\'s issuer for its audience. API Gateway answers `{"message":"Unauthorized"}`.',
      headers: { 'WWW-Authenticate': { $ref: '#/components/headers/WWWAuthenticate' } },
      content: gatewayRefusal,
    },
    '403': {
      description: `auth=jwt: the token carries none of ${granting.join(', ')}. API Gateway answers \`{"message":"Forbidden"}\`; the function answers the problem: ${problem.description}`,
      content: { ...gatewayRefusal, ...problem.content },
    },
  };
}

/** Path parameters by placeholder name, as components. */
const PATH_PARAMETERS: Record<string, string> = { id: 'PersonaId', file: 'AssetFile' };

/**
 * The OpenAPI 3.1 document of every route in shared/routes.ts. A route without documentation in
 * operations.ts, or documentation without a route, is an error rather than a silent gap.
 */
export function buildOpenApiDocument(): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const documented = new Set<string>();
  for (const route of routes) {
    if (route.path === '$default') continue;
    const spec = operations[route.name];
    if (!spec) throw new Error(`Route ${route.name} (${route.method} ${route.path}) has no entry in shared/openapi/operations.ts`);
    documented.add(route.name);
    const pathParameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => {
      const component = PATH_PARAMETERS[name!];
      if (!component) throw new Error(`Path parameter {${name}} of ${route.path} has no component in openApiDocument.ts`);
      return { $ref: `#/components/parameters/${component}` };
    });
    const parameters = [...pathParameters, ...(spec.parameters ?? []), ...(route.name === 'similarPersonas' ? similarQueryParameters() : [])];
    (paths[route.path] ??= {})[route.method.toLowerCase()] = {
      operationId: route.name,
      summary: spec.summary,
      description: spec.description,
      tags: spec.tags,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(spec.requestBody ? { requestBody: spec.requestBody } : {}),
      // Who may call it on a stage with auth=jwt: one requirement per scope, any one of which suffices
      // (the scopes listed in one requirement would all be needed). The console's pages need nothing.
      security: scopesGranting(route).map((scope) => ({ bearerAuth: [scope] })),
      responses: {
        ...spec.responses,
        ...(route.scope ? accessResponses(route) : {}),
        '500': problemSpec({ 'internal-error': 'the server failed; retry later or report the request id in detail.' }),
      },
    };
  }
  const fallback = routes.find((route) => route.path === '$default');
  const stale = Object.keys(operations).filter((name) => !documented.has(name));
  if (stale.length > 0) throw new Error(`shared/openapi/operations.ts documents routes that do not exist: ${stale.join(', ')}`);

  return {
    openapi: '3.1.1',
    info: { title: 'persona-db API', version: '1.0.0', description: API_DESCRIPTION },
    tags: [
      { name: 'personas', description: 'Create, read, change and delete personas.' },
      { name: 'search', description: 'Hybrid (meaning and keywords), semantic, keyword, personality and blended similarity over the vector index.' },
      { name: 'documentation', description: 'This document, its web page and the persona console.' },
    ],
    paths,
    // API Gateway's `$default` route: OpenAPI has no path for "everything else".
    ...(fallback
      ? {
          'x-unmatched-requests': {
            operationId: fallback.name,
            description: 'Any request that no path and method above matches. On a stage with auth=jwt it needs a valid token (of any scope), so that only callers learn which paths exist: without one, API Gateway answers 401.',
            responses: {
              '401': accessResponses(fallback)['401'],
              '404': problemSpec({ 'route-not-found': 'no route has this path.' }),
              '405': problemSpec({ 'method-not-allowed': 'the path exists with other methods, listed in Allow.' }, { Allow: { $ref: '#/components/headers/Allow' } }),
            },
          },
        }
      : {}),
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'On a stage with auth=jwt: a token of the stage\'s issuer whose scope claim holds the operation\'s scope (personas:read, personas:write; personas:admin grants both). A missing or invalid token is answered 401 by API Gateway. Stages with auth=none need none; auth=iam signs with SigV4 instead.',
        },
      },
      schemas: componentSchemas(),
      parameters: {
        PersonaId: { name: 'id', in: 'path', required: true, description: 'The persona id (a UUID).', schema: { type: 'string', format: 'uuid' }, example: EXAMPLE_ID },
        AssetFile: { name: 'file', in: 'path', required: true, description: 'A file of the console or of this page (console.js, console.css, docs.js, docs.css).', schema: { type: 'string' }, example: 'console.js' },
        IfMatch: {
          name: 'If-Match',
          in: 'header',
          required: false,
          description: 'The ETag of the version you read ("3", or W/"3"), or * for any version. An empty value counts as absent.',
          schema: { type: 'string', pattern: `^$|${IF_MATCH_PATTERN.source}` },
          example: '"1"',
        },
        IfMatchRequired: {
          name: 'If-Match',
          in: 'header',
          required: true,
          description: 'The ETag of the version you read ("3", or W/"3"), or * to replace any version. Missing or empty: 428.',
          schema: { type: 'string', pattern: IF_MATCH_PATTERN.source },
          example: '"1"',
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            '1 to 255 visible ASCII characters, such as a UUID, scoped to the caller (the JWT sub, else client_id or azp, or the IAM principal; credentials naming none of them are refused a key with 400 idempotency-key-needs-caller) and the route. A retry with the same key and body (compared in RFC 8785 canonical form, so key order does not matter) replays the first result for 24 hours from the first request; the same key with another body is a 422; while the first request still runs, the retry waits for it (409 after 8 s).',
          schema: { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN.source },
          example: '6a1f3e1c-0b8e-4c55-9a0e-0f1c2d3e4f50',
        },
      },
      links,
      headers: {
        WWWAuthenticate: { description: 'Why the token was refused (RFC 6750 §3), when one was sent: `Bearer error="invalid_token" error_description="…"`.', schema: { type: 'string' } },
        ETag: { description: 'The persona version as an entity tag ("3"); send it in If-Match.', schema: { type: 'string', pattern: '^"[1-9][0-9]*"$' } },
        Location: { description: 'The new persona\'s URL path.', schema: { type: 'string' } },
        IdempotentReplayed: { description: '"true" when this is the stored response of an earlier request with the same Idempotency-Key.', schema: { type: 'string', enum: ['true'] } },
        RetryAfter: { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } },
        AcceptPatch: { description: 'The patch media type this resource accepts.', schema: { type: 'string' } },
        Allow: { description: 'The methods the path accepts.', schema: { type: 'string' } },
      },
    },
    'x-limits': { body_bytes: bodyLimits, persona: personaLimits, batch_items: MAX_BATCH_ITEMS, list: listLimits, search: searchLimits },
  };
}

let built: OpenApiDocument | undefined;

/** Built once per container: it depends on code only. */
export function openApiDocument(): OpenApiDocument {
  built ??= buildOpenApiDocument();
  return built;
}

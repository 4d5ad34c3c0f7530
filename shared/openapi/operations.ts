import { problemTypeUri } from '../http/problem';
import { bodyLimits, MERGE_PATCH_MEDIA_TYPE } from '../http/request';
import { CURSOR_TTL_SECONDS } from '../persona/pageCursor';
import { PATCH_RETRY_BOUNDS, listLimits } from '../persona/personaService';
import { BLEND_CANDIDATES, NOT_INDEXED_RETRY_SECONDS, UNAVAILABLE_RETRY_SECONDS } from '../search/personaSearch';
import { defaultWeightText, RANKINGS, RRF_K, searchLimits, SIMILAR_DEFAULT_MODE } from '../search/searchRequest';
import { MAX_PARAMETER_LENGTH } from '../search/similarQuery';
import { KEYWORD_SETTINGS } from '../vectorIndex/keywordVector';

/**
 * What the API document says about each route of shared/routes.ts, keyed by route name. Schemas
 * come from the zod schemas (see openApiDocument.ts); this file adds what a schema cannot say:
 * headers, status codes, problem types and examples.
 */

type Json = Record<string, unknown>;

export interface OperationSpec {
  summary: string;
  description: string;
  tags: string[];
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
}

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const parameterRef = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });

const kib = (bytes: number) => `${bytes} bytes (${bytes / 1024} KiB)`;

export const EXAMPLE_ID = '3f2b8c1e-8f7a-4f7e-9a53-2f0d9c6c1b2a';

const einstein = {
  name: 'Albert Einstein',
  domain: ['physics', 'philosophy'],
  modes: ['Educator', 'Debater'],
  humor_usage: 'low',
  emotional_style: 'reserved',
  beliefs: ['Imagination is more important than knowledge'],
  signature_phrases: ['E=mc²'],
  traits: { openness: 0.95, conscientiousness: 0.72, extraversion: 0.3, agreeableness: 0.7, neuroticism: 0.25 },
};

/** Request body examples, by schema; the tests check each against its schema. */
export const requestExamples = {
  PersonaInput: { einstein: { summary: 'A persona', value: einstein } },
  PersonaMergePatch: {
    traits: { summary: 'Change one trait', value: { traits: { openness: 0.9 } } },
    remove: { summary: 'Remove an optional field', value: { humor_usage: null } },
  },
  BatchCreateRequest: { two: { summary: 'Two personas', value: { personas: [einstein, { ...einstein, name: 'Marie Curie', domain: ['chemistry', 'physics'] }] } } },
  SearchRequest: {
    hybrid: {
      summary: 'Hybrid search (meaning and keywords) with filters',
      value: { query: 'a physicist fond of thought experiments', filter: { domain: ['physics'], traits: { openness: { gte: 0.7 } } }, limit: 5 },
    },
    weighted: {
      summary: 'Hybrid with the meaning ranking weighted up (RRF weights), each result explained',
      value: { query: 'someone who loves the outdoors', weights: { semantic: 2, keyword: 1 }, explain: true, limit: 5 },
    },
    keyword: {
      summary: 'Exact words, each result explained',
      value: { mode: 'keyword', query: 'saxophone karate', explain: true, limit: 5 },
    },
    personality: {
      summary: 'Personas with the closest Big Five profile',
      value: { mode: 'personality', traits: { openness: 0.9, conscientiousness: 0.4, extraversion: 0.8, agreeableness: 0.6, neuroticism: 0.3 }, limit: 5 },
    },
    blend: {
      summary: 'Text and profile, fused',
      value: {
        mode: 'blend',
        query: 'jazz improvisation',
        traits: { openness: 0.9, conscientiousness: 0.4, extraversion: 0.8, agreeableness: 0.6, neuroticism: 0.3 },
        filter: { humor_usage: ['medium', 'high'] },
        hydrate: true,
      },
    },
  },
} as const;

const json = (description: string, schema: Json, headers?: Json, links?: string[]) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema } },
  ...(links ? { links: Object.fromEntries(links.map((name) => [name, { $ref: `#/components/links/${name}` }])) } : {}),
});

/** Problem slugs and when an operation answers each. */
export type ProblemTypes = Record<string, string>;

/**
 * An error response: its problem types, each named with when it happens in the description, and
 * stated in the schema as the enum of `type`, so a client (or a fuzzer) knows exactly which
 * problems a status can carry.
 */
export const problemSpec = (types: ProblemTypes, headers?: Json) => ({
  description: Object.entries(types)
    .map(([slug, when]) => `\`${slug}\`: ${when}`)
    .join(' '),
  ...(headers ? { headers } : {}),
  content: { 'application/problem+json': { schema: problemSchemaOf(Object.keys(types)) } },
});

export const problemSchemaOf = (slugs: string[]) => ({ allOf: [schemaRef('Problem'), { properties: { type: { enum: slugs.map(problemTypeUri) } } }] });

const jsonBody = (schema: string, maxBytes: number, mediaType = 'application/json') => ({
  required: true,
  description: `At most ${kib(maxBytes)} of UTF-8 JSON.`,
  content: { [mediaType]: { schema: schemaRef(schema), examples: requestExamples[schema as keyof typeof requestExamples] } },
});

const malformedJson = { 'malformed-json': 'the body is empty, not UTF-8, not JSON, nested deeper than 32 levels, or has a lone UTF-16 surrogate.' };
const validationError = (what: string) => ({ 'validation-error': `${what}; \`errors\` has a pointer and a detail per invalid field.` });
const malformedId = { 'validation-error': 'at #/path/id: the id is not a UUID.' };
const invalidIdempotencyKey = {
  'invalid-idempotency-key': 'Idempotency-Key is not 1 to 255 visible ASCII characters.',
  'idempotency-key-needs-caller': 'an Idempotency-Key from credentials that name no caller (no JWT sub, client_id or azp, no IAM principal), to whom it could be scoped.',
};
const invalidPrecondition = { 'invalid-precondition': 'If-Match is not an ETag ("3", W/"3") or *.' };

const bodyProblems = (maxBytes: number, mediaType = 'application/json') => ({
  '413': problemSpec({ 'body-too-large': `the body is over ${kib(maxBytes)}; the problem carries max_bytes.` }),
  '415': problemSpec(
    { 'unsupported-media-type': `Content-Type is missing, not ${mediaType}, or names a charset other than UTF-8.` },
    mediaType === MERGE_PATCH_MEDIA_TYPE ? { 'Accept-Patch': headerRef('AcceptPatch') } : undefined,
  ),
});

const personaLinks = ['GetPersona', 'ReplacePersona', 'PatchPersona', 'DeletePersona', 'SimilarPersonas', 'SearchByName'];
const personaResponse = (description: string, extraHeaders: Json = {}) =>
  json(description, schemaRef('Persona'), { ETag: headerRef('ETag'), ...extraHeaders }, personaLinks);
const notFound = problemSpec({ 'persona-not-found': 'no persona has this id.' });
const staleVersion = problemSpec({ 'stale-version': 'If-Match names another version than the current one; the problem carries current_version and the current ETag.' }, { ETag: headerRef('ETag') });

const searchUnavailable = problemSpec({ 'search-unavailable': `the vector index did not answer; retry after Retry-After (${UNAVAILABLE_RETRY_SECONDS} s).` }, {
  'Retry-After': headerRef('RetryAfter'),
});

const keywordsNotIndexed = {
  'keywords-not-indexed': 'mode keyword or hybrid on an index built before the keywords vector; run `personas reindex` (zero downtime) to add it, or use mode semantic.',
};
const searchDescription = [
  'Ranks personas by one of five modes (`mode`), each made of one or more rankings:',
  '',
  `- \`hybrid\` (default when \`query\` is given): the \`semantic\` and the \`keyword\` ranking fused, by reciprocal rank fusion (\`fusion: rrf\`, the default: Qdrant's weighted RRF, position p from 0 of a ranking with weight w adds 1/((p + 1)/w + ${RRF_K} − 1); default weights ${RANKINGS.map(defaultWeightText).join('; ')}; \`weights\` overrides them) or distribution-based score fusion (\`fusion: dbsf\`: each ranking's scores mapped by mean ± 3 standard deviations to 0–1, then summed). Meaning and exact words together.`,
  '- `semantic`: cosine similarity between the embedding of `query` (with the model\'s query instruction) and each persona\'s text (name, domain, modes, beliefs, signature phrases, humor, emotional style, written as plain sentences). `score` is higher for closer, at most 1.',
  `- \`keyword\`: BM25 over the words of the same text (lower-cased, ${KEYWORD_SETTINGS.dropStopwords ? 'English stop words dropped' : 'stop words kept'}${KEYWORD_SETTINGS.stem ? ', Porter-stemmed' : ''}; term frequency saturated with k1 = ${KEYWORD_SETTINGS.k1}, length-normalised with b = ${KEYWORD_SETTINGS.b}, IDF from the whole index). Finds names and rare words a model does not know. \`score\` (bm25) is higher for better.`,
  '- `personality` (default when only `traits` is given): Euclidean distance between the Big Five profile in `traits` and each persona\'s traits. `score` is a distance: lower is closer, 0 is the same profile.',
  '- `blend`: the semantic, keyword and personality rankings fused (`fusion` as in hybrid).',
  '',
  `Each ranking of a fused mode is cut at its best ${BLEND_CANDIDATES} before fusing. \`explain: true\` adds to each result its rank and score in every ranking of the mode (rank null: not among that ranking's candidates). An index built before the keyword vector existed runs a search without \`mode\` as semantic (and blend without keywords); asking for keyword or hybrid there is a 409 keywords-not-indexed until \`personas reindex\` adds it.`,
  '',
  '`filter` narrows every ranking before it is cut. `score_threshold` drops results worse than it: a minimum score in every mode but personality, where it is a maximum distance.',
  '',
  `Pages: \`limit\` (1–${searchLimits.maxLimit}) results from rank \`offset\` (0–${searchLimits.maxOffset}); \`next_offset\` is the next page's offset or null. Pages of one request never overlap and concatenate to the unpaged ranking (as long as the data does not change).`,
  '',
  'Results come from the vector index, which follows the table within seconds of a write. With `hydrate: true` each result is the full persona read from the table now, and results whose persona was deleted meanwhile are left out (the page may then be shorter than `limit`); a page of large personas also ends early, so that it fits in 5 MB, with `next_offset` at the first result left out. Before anything is indexed the answer is an empty page.',
].join('\n');

const similarQueryDescription = [
  'The neighbours of one persona, ranked by its stored vectors (it is never among its own results); modes, scores, pages and hydrate as in POST /personas/search.',
  '',
  `Query string: \`mode\` (default ${SIMILAR_DEFAULT_MODE}; semantic on an index without keywords), \`fusion\`, \`explain\`, \`limit\`, \`offset\`, \`score_threshold\`, \`hydrate\` as in the search body; RRF weights as \`weights.<ranking>\` (\`weights.keyword=2\`); filters` +
    ' as `domain`, `modes`, `humor_usage`, `emotional_style` (comma-separated lists: `domain=physics,philosophy`; a comma inside a value is `%2C`; a repeated parameter adds to its list) and `traits.<trait>.gte` / `traits.<trait>.lte` (`traits.openness.gte=0.7`). An unknown parameter, or a value longer than ' +
    `${MAX_PARAMETER_LENGTH} characters (percent-encoded), is a 400.`,
].join('\n');

const idempotencyInProgress = {
  'idempotency-request-in-progress': 'a request with this Idempotency-Key and the same body is still running (waited for up to 8 s); retry after Retry-After for its response.',
};
const idempotencyKeyReused = problemSpec({ 'idempotency-key-reused': 'the key was used with a different body (within 24 hours); send a new key for a new request.' });

const htmlPage = { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } };

export const operations: Record<string, OperationSpec> = {
  createPersona: {
    summary: 'Create a persona',
    description: 'Validates and stores a persona at version 1. With an Idempotency-Key, a retry of the same request replays the first response instead of creating a second persona.',
    tags: ['personas'],
    parameters: [parameterRef('IdempotencyKey')],
    requestBody: jsonBody('PersonaInput', bodyLimits.single),
    responses: {
      '201': personaResponse('Created.', { Location: headerRef('Location'), 'Idempotent-Replayed': headerRef('IdempotentReplayed') }),
      '400': problemSpec({ ...validationError('the body is not a valid PersonaInput'), ...malformedJson, ...invalidIdempotencyKey }),
      ...bodyProblems(bodyLimits.single),
      '409': problemSpec(idempotencyInProgress, { 'Retry-After': headerRef('RetryAfter') }),
      '410': problemSpec({ 'persona-deleted': 'a replay whose persona has been deleted since the first request created it; `id` names it. Send a new Idempotency-Key to create it again.' }),
      '422': idempotencyKeyReused,
      '503': problemSpec({ throttled: 'DynamoDB throttled the write; retry the same request with the same Idempotency-Key.' }, { 'Retry-After': headerRef('RetryAfter') }),
    },
  },
  listPersonas: {
    summary: 'List personas',
    description: 'Pages through all personas in table order (not sorted). Follow next_cursor until it is null. A page of large personas may end before `limit` (every response fits in 5 MB, under Lambda\'s 6 MB response limit); its next_cursor continues after its last item.',
    tags: ['personas'],
    parameters: [
      { name: 'limit', in: 'query', required: false, allowEmptyValue: true, description: 'Personas per page (an empty value counts as absent).', schema: { type: 'integer', minimum: 1, maximum: listLimits.max, default: listLimits.default } },
      {
        name: 'cursor',
        in: 'query',
        required: false,
        allowEmptyValue: true,
        description: `next_cursor of the previous page, unchanged (an empty value counts as absent). It is signed and expires after ${CURSOR_TTL_SECONDS / 3600} h: one the API did not issue is a 400 invalid-cursor, an old one a 400 cursor-expired.`,
        schema: { type: 'string' },
      },
    ],
    responses: {
      '200': json('One page.', schemaRef('PersonaListPage'), undefined, ['GetFirstPersona', 'NextPage']),
      '400': problemSpec({
        ...validationError('at #/query/limit: limit is not an integer in range'),
        'invalid-cursor': 'the cursor is not one this API issued (its signature does not match), or was issued for another tenant.',
        'cursor-expired': `the cursor is older than ${CURSOR_TTL_SECONDS / 3600} h; start the listing again.`,
      }),
    },
  },
  batchCreatePersonas: {
    summary: 'Create up to 100 personas',
    description:
      'Validates each item on its own and writes the valid ones, each only if its id is free; the answer has one result per item. With an Idempotency-Key the key is claimed before anything is written and item ids derive from the key and the body, so a retried batch writes only what is missing and never duplicates; a replay marks items deleted since with `deleted: true`.',
    tags: ['personas'],
    parameters: [parameterRef('IdempotencyKey')],
    requestBody: jsonBody('BatchCreateRequest', bodyLimits.batch),
    responses: {
      '200': json('Per-item results (also when some items failed).', schemaRef('BatchResult'), { 'Idempotent-Replayed': headerRef('IdempotentReplayed') }, ['GetFirstCreated']),
      '400': problemSpec({ ...validationError('the envelope is invalid: not an object, no personas, more than 100, or another member (an invalid item fails alone, in its result)'), ...malformedJson, ...invalidIdempotencyKey }),
      ...bodyProblems(bodyLimits.batch),
      '409': problemSpec(idempotencyInProgress, { 'Retry-After': headerRef('RetryAfter') }),
      '422': idempotencyKeyReused,
    },
  },
  getPersona: {
    summary: 'Read a persona',
    description: 'Strongly consistent read from the table. The ETag is the version, for If-Match.',
    tags: ['personas'],
    responses: { '200': personaResponse('The persona.'), '400': problemSpec(malformedId), '404': notFound },
  },
  replacePersona: {
    summary: 'Replace a persona',
    description: 'Replaces every writable field. If-Match is required, so that no concurrent change is lost.',
    tags: ['personas'],
    parameters: [parameterRef('IfMatchRequired')],
    requestBody: jsonBody('PersonaInput', bodyLimits.single),
    responses: {
      '200': personaResponse('The new version.'),
      '400': problemSpec({ ...validationError('the body is not a valid PersonaInput, or the id is not a UUID (#/path/id)'), ...malformedJson, ...invalidPrecondition }),
      '404': notFound,
      '412': staleVersion,
      ...bodyProblems(bodyLimits.single),
      '428': problemSpec({ 'precondition-required': 'If-Match is missing (or empty); send the ETag of the version you read, or * for any.' }),
    },
  },
  patchPersona: {
    summary: 'Change some fields of a persona (JSON Merge Patch)',
    description:
      `RFC 7396: members replace, null removes an optional member, objects (traits) merge. The result must be a valid persona. With If-Match the patch applies only to that version; without it, a concurrent change makes the server re-read and reapply (up to ${PATCH_RETRY_BOUNDS.attempts} tries, until shortly before the function's timeout).`,
    tags: ['personas'],
    parameters: [parameterRef('IfMatch')],
    requestBody: jsonBody('PersonaMergePatch', bodyLimits.single, MERGE_PATCH_MEDIA_TYPE),
    responses: {
      '200': personaResponse('The new version.'),
      '400': problemSpec({ ...validationError('the patched persona is not a valid PersonaInput, the patch is not an object, or the id is not a UUID (#/path/id)'), ...malformedJson, ...invalidPrecondition }),
      '404': notFound,
      '409': problemSpec({ 'edit-conflict': 'without If-Match, other writes kept getting in first past the retry bounds; nothing was written. Retry after Retry-After.' }, { 'Retry-After': headerRef('RetryAfter') }),
      '412': staleVersion,
      ...bodyProblems(bodyLimits.single, MERGE_PATCH_MEDIA_TYPE),
    },
  },
  deletePersona: {
    summary: 'Delete a persona',
    description: 'Deletes the persona (a second delete is a 404). With If-Match, only that version is deleted. Its point leaves the vector index within seconds.',
    tags: ['personas'],
    parameters: [parameterRef('IfMatch')],
    responses: {
      '204': { description: 'Deleted.' },
      '400': problemSpec({ ...malformedId, ...invalidPrecondition }),
      '404': notFound,
      '412': staleVersion,
    },
  },
  searchPersonas: {
    summary: 'Search personas by meaning, keywords, personality or a fusion of them',
    description: searchDescription,
    tags: ['search'],
    requestBody: jsonBody('SearchRequest', bodyLimits.single),
    responses: {
      '200': json('One page of ranked results.', schemaRef('SearchResults'), undefined, ['GetFirstResult', 'SimilarToFirstResult']),
      '400': problemSpec({
        ...validationError(
          'the body is not a valid SearchRequest (unknown field or trait, bounds, wrong type, unknown mode, a field the mode does not use); also a trait range whose gte is greater than its lte, the one rule of SearchRequest its schema cannot state',
        ),
        ...malformedJson,
      }),
      ...bodyProblems(bodyLimits.single),
      '409': problemSpec(keywordsNotIndexed),
      '422': problemSpec({ 'query-not-embeddable': 'the embedding model finds nothing it knows in `query` (a zero vector ranks nothing); rephrase it.' }),
      '503': searchUnavailable,
    },
  },
  similarPersonas: {
    summary: 'Personas similar to one persona',
    description: similarQueryDescription,
    tags: ['search'],
    // The query parameters are generated from the search option schema (openApiDocument.ts).
    responses: {
      '200': json('One page of ranked results, without the persona itself, and the version of it the index ranked from.', schemaRef('SimilarResults'), undefined, ['GetFirstResult']),
      '400': problemSpec({
        'validation-error':
          'a pointer #/query/<parameter> per invalid parameter (unknown, repeated, out of bounds, a weight the mode does not fuse, a trait bound whose gte is greater than its lte), or #/path/id for an id that is not a UUID.',
      }),
      '404': notFound,
      '409': problemSpec(
        {
          'persona-not-indexed': `the persona exists but the vector index does not have it yet (it was just written); retry after Retry-After (${NOT_INDEXED_RETRY_SECONDS} s).`,
          ...keywordsNotIndexed,
        },
        { 'Retry-After': headerRef('RetryAfter') },
      ),
      '503': searchUnavailable,
    },
  },
  openApiDocument: {
    summary: 'This API document',
    description: 'The OpenAPI 3.1 document of every route, generated from the same schemas that validate requests.',
    tags: ['documentation'],
    responses: { '200': json('The document.', { type: 'object' }) },
  },
  apiDocsPage: {
    summary: 'The API document as a web page',
    description: 'Swagger UI (bundled from its npm package, no CDN) showing GET /openapi.json, with "Try it out" against this origin. No authorizer: the page holds no data.',
    tags: ['documentation'],
    responses: { '200': htmlPage },
  },
  consolePage: {
    summary: 'The persona console',
    description: 'A web page to browse, search, compare and curate personas; it calls this API from the browser. No authorizer: the page holds no data (with auth=jwt the user enters a token in the page).',
    tags: ['documentation'],
    responses: { '200': htmlPage },
  },
  webAsset: {
    summary: 'A script or stylesheet of the console or of /docs',
    description: 'Served with an ETag (If-None-Match gives a 304) and gzip when Accept-Encoding allows it.',
    tags: ['documentation'],
    responses: {
      '200': { description: 'The file.', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
      '304': { description: 'Not modified (If-None-Match names the current ETag).' },
      '404': problemSpec({ 'route-not-found': 'no such asset.' }),
    },
  },
};

/**
 * The links between operations (OpenAPI `links`): what a response gives the next request, such as
 * a created persona's id and ETag for its GET, PUT, PATCH, DELETE and similar search. Clients and
 * stateful fuzzers (Schemathesis) follow them.
 */
export const links: Record<string, Json> = {
  GetPersona: { operationId: 'getPersona', parameters: { 'path.id': '$response.body#/id' }, description: 'Read this persona.' },
  ReplacePersona: { operationId: 'replacePersona', parameters: { 'path.id': '$response.body#/id', 'header.If-Match': '$response.header.ETag' }, description: 'Replace this version.' },
  PatchPersona: { operationId: 'patchPersona', parameters: { 'path.id': '$response.body#/id', 'header.If-Match': '$response.header.ETag' }, description: 'Patch this version.' },
  DeletePersona: { operationId: 'deletePersona', parameters: { 'path.id': '$response.body#/id', 'header.If-Match': '$response.header.ETag' }, description: 'Delete this version.' },
  SimilarPersonas: { operationId: 'similarPersonas', parameters: { 'path.id': '$response.body#/id' }, description: 'The neighbours of this persona.' },
  SearchByName: { operationId: 'searchPersonas', requestBody: { mode: 'keyword', query: '$response.body#/name' }, description: 'Find this persona by its name (keyword mode).' },
  GetFirstPersona: { operationId: 'getPersona', parameters: { 'path.id': '$response.body#/items/0/id' }, description: 'Read the first persona of the page.' },
  NextPage: { operationId: 'listPersonas', parameters: { 'query.cursor': '$response.body#/next_cursor' }, description: 'The next page (while next_cursor is not null).' },
  GetFirstCreated: { operationId: 'getPersona', parameters: { 'path.id': '$response.body#/results/0/id' }, description: 'Read the persona the first item created.' },
  GetFirstResult: { operationId: 'getPersona', parameters: { 'path.id': '$response.body#/items/0/id' }, description: 'Read the first result.' },
  SimilarToFirstResult: { operationId: 'similarPersonas', parameters: { 'path.id': '$response.body#/items/0/id' }, description: 'The neighbours of the first result.' },
};

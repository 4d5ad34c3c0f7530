/**
 * Parses the Query API request (`/points/query`) and the legacy search request
 * (`/points/search`) into one tree of stages: each stage has its own prefetches, query, vector
 * name, filter, threshold and limit, which is how Qdrant plans them too.
 */
import { badRequest, formatError, unsupported, validationError } from './errors';
import { parseFilter, type Filter } from './filterParse';
import {
  expectArray,
  expectNumber,
  expectObject,
  expectString,
  expectUnsigned,
  isNumberArray,
  isObject,
  joinPath,
  oneOrMany,
  optional,
  type JsonObject,
} from './json';
import { parseWithPayload, parseWithVector, type PayloadSelection, type VectorSelection } from './output';
import { parsePointId, type PointId } from './pointId';
import { DEFAULT_RRF_K } from './fusion';
import { DEFAULT_VECTOR } from './vectors';

/** Something to find neighbours of; dense and sparse values are checked once the vector is known. */
export type NearestInput = { kind: 'dense'; vector: number[] } | { kind: 'sparse'; vector: JsonObject } | { kind: 'id'; id: PointId };

export type StageQuery =
  | { kind: 'nearest'; input: NearestInput }
  | { kind: 'rrf'; k: number; weights?: number[] }
  | { kind: 'dbsf' };

/** Qdrant 1.19 `params.idf`: the population a sparse vector's IDF statistics are computed over. */
export type IdfParams = { kind: 'global' } | { kind: 'corpus'; corpus: Filter };

export interface Stage {
  prefetch: Stage[];
  query?: StageQuery;
  using: string;
  filter?: Filter;
  scoreThreshold?: number;
  limit: number;
  idf?: IdfParams;
}

export interface QueryRequest {
  stage: Stage;
  offset: number;
  withPayload: PayloadSelection;
  withVector: VectorSelection;
}

const DEFAULT_LIMIT = 10;

const UNSUPPORTED_QUERIES: Record<string, string> = {
  recommend: 'Recommend query',
  discover: 'Discover query',
  context: 'Context query',
  order_by: 'Order-by query',
  formula: 'Formula query',
  sample: 'Sample query',
  relevance_feedback: 'Relevance feedback query',
};

function parseNearestInput(value: unknown, at: string): NearestInput {
  if (typeof value === 'number' || typeof value === 'string') return { kind: 'id', id: parsePointId(value, at) };
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every(Array.isArray)) throw unsupported('Multivector query');
    if (!isNumberArray(value)) throw formatError(`invalid type: expected a sequence of f32 at ${at}`);
    return { kind: 'dense', vector: value };
  }
  if (isObject(value) && 'indices' in value) return { kind: 'sparse', vector: value };
  if (isObject(value) && ('text' in value || 'image' in value || 'object' in value)) throw unsupported('Inference');
  throw formatError(`Expected some form of vector, id, or a type of query at ${at}`);
}

function parseStageQuery(value: unknown, at: string): StageQuery | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value) || 'indices' in value) return { kind: 'nearest', input: parseNearestInput(value, at) };
  if ('nearest' in value) {
    if (value.mmr !== undefined && value.mmr !== null) throw unsupported('MMR');
    return { kind: 'nearest', input: parseNearestInput(value.nearest, joinPath(at, 'nearest')) };
  }
  if ('fusion' in value) {
    if (value.fusion === 'rrf') return { kind: 'rrf', k: DEFAULT_RRF_K };
    if (value.fusion === 'dbsf') return { kind: 'dbsf' };
    throw formatError(`unknown variant \`${String(value.fusion)}\`, expected \`rrf\` or \`dbsf\` at ${joinPath(at, 'fusion')}`);
  }
  if ('rrf' in value) {
    const spec = expectObject(value.rrf ?? {}, joinPath(at, 'rrf'));
    const k = optional(spec.k, (raw) => expectUnsigned(raw, joinPath(at, 'rrf.k'))) ?? DEFAULT_RRF_K;
    if (k < 1) throw validationError(joinPath(at, 'rrf.k'), 'value 0 invalid, must be 1 or larger');
    const weights = optional(spec.weights, (raw) =>
      expectArray(raw, joinPath(at, 'rrf.weights')).map((w, i) => expectNumber(w, `${joinPath(at, 'rrf.weights')}[${i}]`)),
    );
    return weights ? { kind: 'rrf', k, weights } : { kind: 'rrf', k };
  }
  for (const [key, feature] of Object.entries(UNSUPPORTED_QUERIES)) if (key in value) throw unsupported(feature);
  return { kind: 'nearest', input: parseNearestInput(value, at) };
}

/**
 * `params` (`SearchParams` in openapi-v1.19.json): only `idf` changes an exact search's answer, so
 * the other parameters (hnsw_ef, exact, quantization, indexed_only, acorn) are accepted and ignored.
 * `idf` is `"global"` (`IdfScope`) or `{"corpus": <filter>}` (`IdfCorpusParams`).
 */
function parseIdfParams(params: unknown, at: string): IdfParams | undefined {
  if (params === undefined || params === null) return undefined;
  const idf = expectObject(params, at).idf;
  if (idf === undefined || idf === null) return undefined;
  const where = joinPath(at, 'idf');
  if (idf === 'global') return { kind: 'global' };
  if (isObject(idf) && 'corpus' in idf) return { kind: 'corpus', corpus: parseFilter(idf.corpus, joinPath(where, 'corpus')) };
  throw formatError(`data did not match any variant of untagged enum IdfParams at ${where}`);
}

const parseLimit = (value: unknown, at: string, fallback: number) => {
  const limit = optional(value, (raw) => expectUnsigned(raw, at)) ?? fallback;
  if (limit < 1) throw validationError(at, 'value 0 invalid, must be 1 or larger');
  return limit;
};

function parseStage(object: JsonObject, at: string): Stage {
  if (object.lookup_from !== undefined && object.lookup_from !== null) throw unsupported('lookup_from');
  const stage: Stage = {
    prefetch: (optional(object.prefetch, oneOrMany) ?? []).map((item, i) =>
      parseStage(expectObject(item, joinPath(joinPath(at, 'prefetch'), i)), joinPath(joinPath(at, 'prefetch'), i)),
    ),
    using: optional(object.using, (raw) => expectString(raw, joinPath(at, 'using'))) ?? DEFAULT_VECTOR,
    limit: parseLimit(object.limit, joinPath(at, 'limit'), DEFAULT_LIMIT),
  };
  const query = parseStageQuery(object.query, joinPath(at, 'query'));
  if (query) stage.query = query;
  const filter = optional(object.filter, (raw) => parseFilter(raw, joinPath(at, 'filter')));
  if (filter) stage.filter = filter;
  const threshold = optional(object.score_threshold, (raw) => expectNumber(raw, joinPath(at, 'score_threshold')));
  if (threshold !== undefined) stage.scoreThreshold = threshold;
  const idf = parseIdfParams(object.params, joinPath(at, 'params'));
  if (idf) stage.idf = idf;
  checkStage(stage);
  return stage;
}

/**
 * The checks Qdrant makes on every query and prefetch (`CollectionQueryRequest::validation` in
 * lib/collection/src/operations/universal_query/collection_query.rs), each a 400 "Bad request".
 */
function checkStage(stage: Stage): void {
  if (stage.prefetch.length > 0 && !stage.query) {
    throw badRequest("A query is needed to merge the prefetches. Can't have prefetches without defining a query.");
  }
  if (stage.scoreThreshold !== undefined && !stage.query) {
    throw badRequest("A query is needed to use the score_threshold. Can't have score_threshold without defining a query.");
  }
  if ((stage.query?.kind === 'rrf' || stage.query?.kind === 'dbsf') && stage.using !== DEFAULT_VECTOR) {
    throw badRequest("Fusion queries cannot be combined with the 'using' field.");
  }
}

export function parseQueryRequest(value: unknown, at = ''): QueryRequest {
  const object = expectObject(value, at);
  return {
    stage: parseStage(object, at),
    offset: optional(object.offset, (raw) => expectUnsigned(raw, joinPath(at, 'offset'))) ?? 0,
    withPayload: parseWithPayload(object.with_payload, false),
    withVector: parseWithVector(object, false),
  };
}

/** The legacy `/points/search` body: `vector` is a bare vector or `{name, vector}`. */
export function parseSearchRequest(value: unknown, at = ''): QueryRequest {
  const object = expectObject(value, at);
  let using = DEFAULT_VECTOR;
  let vector: unknown = object.vector;
  if (vector === undefined) throw formatError(`missing field \`vector\`${at ? ` at ${at}` : ''}`);
  if (isObject(vector) && 'name' in vector) {
    using = expectString(vector.name, joinPath(at, 'vector.name'));
    vector = vector.vector;
  }
  const stage: Stage = {
    prefetch: [],
    query: { kind: 'nearest', input: parseNearestInput(vector, joinPath(at, 'vector')) },
    using,
    limit: parseLimit(object.limit ?? object.top, joinPath(at, 'limit'), DEFAULT_LIMIT),
  };
  const filter = optional(object.filter, (raw) => parseFilter(raw, joinPath(at, 'filter')));
  if (filter) stage.filter = filter;
  const threshold = optional(object.score_threshold, (raw) => expectNumber(raw, joinPath(at, 'score_threshold')));
  if (threshold !== undefined) stage.scoreThreshold = threshold;
  const idf = parseIdfParams(object.params, joinPath(at, 'params'));
  if (idf) stage.idf = idf;
  return {
    stage,
    offset: optional(object.offset, (raw) => expectUnsigned(raw, joinPath(at, 'offset'))) ?? 0,
    withPayload: parseWithPayload(object.with_payload, false),
    withVector: parseWithVector(object, false),
  };
}

import type { QdrantClient, Schemas } from '@qdrant/js-client-rest';
import type { Embedder } from '../embedding';
import { UnembeddableTextError } from '../embedding/config';
import { ProblemError } from '../http/problem';
import { itemsWithinBudget } from '../http/response';
import type { PersonaRepository } from '../persona/personaRepository';
import { getPersona } from '../persona/personaService';
import { orderPersonaKeys } from '../persona/schema';
import { TEXT_VECTOR, TRAITS_VECTOR } from '../vectorIndex/personaCollection';
import { traitsVector, type PersonaPayload } from '../vectorIndex/personaPoint';
import { isTransient, withRetries } from '../vectorIndex/retry';
import { qdrantFilter } from './qdrantFilter';
import { searchLimits, type SearchRequest, type SimilarRequest } from './searchRequest';
import { SCORE_TYPES, type HydratedSearchHit, type SearchHit, type SearchResults, type SimilarResults } from './searchResults';

export interface SearchDeps {
  repository: PersonaRepository;
  qdrant: QdrantClient;
  /** Collection or alias to read. */
  collection: string;
  embedder: Pick<Embedder, 'embedQuery'>;
}

/**
 * How many candidates each ranking hands to a blend. Qdrant applies `offset` only after fusing,
 * so the prefetch size must not depend on the page: then every page is a slice of one fused ranking.
 */
export const BLEND_CANDIDATES = searchLimits.maxOffset + searchLimits.maxLimit;

/** Seconds a client should wait before asking again for a persona that is not indexed yet. */
export const NOT_INDEXED_RETRY_SECONDS = 1;

/** A search waits for one quick retry at most: a user is waiting, the indexer's longer backoff is not for them. */
const SEARCH_RETRY_DELAYS_MS = [100];
export const UNAVAILABLE_RETRY_SECONDS = 2;

const searchUnavailable = () =>
  new ProblemError(503, 'search-unavailable', `The vector index did not answer; retry after ${UNAVAILABLE_RETRY_SECONDS} s.`, {
    headers: { 'Retry-After': String(UNAVAILABLE_RETRY_SECONDS) },
  });

const SUMMARY_FIELDS = ['name', 'domain', 'modes', 'humor_usage', 'emotional_style', 'traits'] as const;

/** What a ranking is relative to: a vector, or a point id (that point's stored vector). */
type Reference = number[] | string;
type References = Partial<Record<typeof TEXT_VECTOR | typeof TRAITS_VECTOR, Reference>>;

function queryRequest(options: SimilarRequest, references: References, filter: Schemas['Filter'] | undefined): Schemas['QueryRequest'] {
  const page = {
    // One more than the page, to know whether a next page exists.
    limit: options.limit + 1,
    offset: options.offset,
    with_payload: options.hydrate ? false : [...SUMMARY_FIELDS],
    ...(options.score_threshold !== undefined ? { score_threshold: options.score_threshold } : {}),
  };
  if (options.mode === 'blend') {
    return {
      prefetch: ([TEXT_VECTOR, TRAITS_VECTOR] as const).map((using) => ({ query: references[using]!, using, filter, limit: BLEND_CANDIDATES })),
      query: { fusion: 'rrf' },
      ...page,
    };
  }
  const using = options.mode === 'semantic' ? TEXT_VECTOR : TRAITS_VECTOR;
  return { query: references[using]!, using, filter, ...page };
}

/** Runs one ranked query; undefined when Qdrant answers 404 (no collection yet, or the reference point is missing). */
async function rankedPage(
  deps: SearchDeps,
  options: SimilarRequest,
  references: References,
  filter: Schemas['Filter'] | undefined,
): Promise<SearchResults | undefined> {
  let points: Schemas['ScoredPoint'][];
  try {
    ({ points } = await withRetries(() => deps.qdrant.query(deps.collection, queryRequest(options, references, filter)), SEARCH_RETRY_DELAYS_MS));
  } catch (error) {
    if ((error as { status?: unknown }).status === 404) return undefined;
    if (isTransient(error)) {
      throw searchUnavailable();
    }
    throw error;
  }
  let page = points.slice(0, options.limit);
  let more = points.length > options.limit;
  let items: Array<SearchHit | HydratedSearchHit>;
  if (!options.hydrate) items = page.map(summaryHit);
  else {
    const hydrated = await hydrate(deps, page);
    // Full personas can be large: the page ends early, at a rank, when the next one would not fit a Lambda response.
    const fitting = itemsWithinBudget(hydrated);
    if (fitting < page.length) {
      page = page.slice(0, fitting);
      more = true;
    }
    items = hydrated.slice(0, page.length).flatMap((hit) => (hit ? [hit] : []));
  }
  const nextOffset = options.offset + page.length;
  return {
    ...emptyPage(options),
    items,
    next_offset: more && nextOffset <= searchLimits.maxOffset ? nextOffset : null,
  };
}

function summaryHit(point: Schemas['ScoredPoint']): SearchHit {
  const payload = (point.payload ?? {}) as unknown as PersonaPayload;
  return {
    id: String(point.id),
    score: point.score,
    name: payload.name,
    domain: payload.domain,
    modes: payload.modes,
    ...(payload.humor_usage !== undefined ? { humor_usage: payload.humor_usage as SearchHit['humor_usage'] } : {}),
    ...(payload.emotional_style !== undefined ? { emotional_style: payload.emotional_style } : {}),
    traits: payload.traits as SearchHit['traits'],
  };
}

/** Full records from the table, one per point in rank order; undefined where the persona is gone (deleted, index not yet synced). */
async function hydrate(deps: SearchDeps, points: Schemas['ScoredPoint'][]): Promise<Array<HydratedSearchHit | undefined>> {
  const personas = await deps.repository.getMany(points.map((point) => String(point.id)));
  return points.map((point) => {
    const persona = personas.get(String(point.id));
    if (!persona) return undefined;
    const { id, ...fields } = orderPersonaKeys(persona);
    return { id, score: point.score, ...fields };
  });
}

const emptyPage = (options: SimilarRequest): SearchResults => ({
  mode: options.mode,
  score_type: SCORE_TYPES[options.mode],
  items: [],
  limit: options.limit,
  offset: options.offset,
  next_offset: null,
});

/** The query's vector; a query the model finds nothing in is the client's to rephrase (422), not a server error. */
async function embedQuery(deps: SearchDeps, query: string): Promise<number[]> {
  try {
    return await deps.embedder.embedQuery(query);
  } catch (error) {
    if (!(error instanceof UnembeddableTextError)) throw error;
    const detail = 'has no words the embedding model knows (its embedding is a zero vector, which ranks nothing); rephrase it with more common words';
    throw new ProblemError(422, 'query-not-embeddable', `The query ${detail}.`, { errors: [{ pointer: '#/query', detail }] });
  }
}

/**
 * POST /personas/search: ranks personas against the query text (embedded in the model's query
 * form), a target Big Five profile, or both fused. Before the first persona is indexed there is
 * no collection, and the answer is an empty page.
 */
export async function searchPersonas(deps: SearchDeps, request: SearchRequest): Promise<SearchResults> {
  const references: References = {
    ...(request.query !== undefined ? { [TEXT_VECTOR]: await embedQuery(deps, request.query) } : {}),
    ...(request.traits !== undefined ? { [TRAITS_VECTOR]: traitsVector({ traits: request.traits }) } : {}),
  };
  return (await rankedPage(deps, request, references, qdrantFilter(request.filter))) ?? emptyPage(request);
}

/**
 * GET /personas/{id}/similar: the nearest neighbours of the persona's stored vectors, never the
 * persona itself. The table decides whether the persona exists (404); a persona that exists but
 * has no point yet is a 409 to retry shortly.
 */
export async function findSimilarPersonas(deps: SearchDeps, id: string, options: SimilarRequest): Promise<SimilarResults> {
  const [persona, page, indexedVersion] = await Promise.allSettled([
    getPersona(deps, id),
    rankedPage(deps, options, { [TEXT_VECTOR]: id, [TRAITS_VECTOR]: id }, qdrantFilter(options.filter, id)),
    pointVersion(deps, id),
  ]);
  if (persona.status === 'rejected') throw persona.reason;
  if (page.status === 'rejected') throw page.reason;
  if (indexedVersion.status === 'rejected') throw indexedVersion.reason;
  if (page.value === undefined || indexedVersion.value === undefined) {
    throw new ProblemError(
      409,
      'persona-not-indexed',
      `Persona ${id} exists but is not in the search index yet; the indexer adds a persona within seconds of a write. Retry after ${NOT_INDEXED_RETRY_SECONDS} s.`,
      { headers: { 'Retry-After': String(NOT_INDEXED_RETRY_SECONDS) } },
    );
  }
  return { ...page.value, indexed_version: indexedVersion.value };
}

/** The version in the index's payload of a persona's point; undefined when it has no point (or no collection yet). */
async function pointVersion(deps: SearchDeps, id: string): Promise<number | undefined> {
  try {
    const [point] = await withRetries(() => deps.qdrant.retrieve(deps.collection, { ids: [id], with_payload: ['version'], with_vector: false }), SEARCH_RETRY_DELAYS_MS);
    const version = point?.payload?.version;
    return typeof version === 'number' ? version : undefined;
  } catch (error) {
    if ((error as { status?: unknown }).status === 404) return undefined;
    if (isTransient(error)) {
      throw searchUnavailable();
    }
    throw error;
  }
}

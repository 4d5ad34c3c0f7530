import type { Schemas } from '@qdrant/js-client-rest';
import type { Embedder } from '../embedding';
import { UnembeddableTextError } from '../embedding/config';
import { ProblemError } from '../http/problem';
import { itemsWithinBudget } from '../http/response';
import type { PersonaRepository } from '../persona/personaRepository';
import { getPersona } from '../persona/personaService';
import { orderPersonaKeys } from '../persona/schema';
import { keywordQueryVector, type SparseVector } from '../vectorIndex/keywordVector';
import { KEYWORDS_VECTOR, TEXT_VECTOR, TRAITS_VECTOR } from '../vectorIndex/personaCollection';
import { traitsVector, type PersonaPayload } from '../vectorIndex/personaPoint';
import { isAuthOrConnectionFailure } from '../vectorIndex/qdrantConnection';
import type { IndexClient } from '../vectorIndex/tenantScopedIndex';
import { isTransient, withRetries } from '../vectorIndex/retry';
import { qdrantFilter } from './qdrantFilter';
import { keywordEvidence, keywordWeightFor } from './keywordEvidence';
import {
  DEFAULT_RRF_WEIGHTS,
  defaultSearchMode,
  KEYWORD_WEIGHT_POLICY,
  MODE_RANKINGS,
  RRF_K,
  searchLimits,
  SIMILAR_DEFAULT_MODE,
  type SearchMode,
  type SearchRequest,
  type SimilarRequest,
} from './searchRequest';
import {
  RANKING_SCORE_TYPES,
  type HydratedSearchHit,
  type Ranking,
  type RankingExplanation,
  type SearchHit,
  type SearchResults,
  type SimilarResults,
} from './searchResults';

export interface SearchDeps {
  repository: PersonaRepository;
  /** The index as the request's tenant sees it (tenantScopedIndex). */
  qdrant: IndexClient;
  /** Collection or alias to read. */
  collection: string;
  embedder: Pick<Embedder, 'embedQuery'>;
}

/** What reading by stored vectors needs: no model (GET /personas/{id}/similar never embeds). */
export type IndexReadDeps = Omit<SearchDeps, 'embedder'>;

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

/** A failed index read as the caller sees it: an outage (also a wrong or rotated key, after the client re-read its secret) is a 503. */
const asSearchError = (error: unknown): unknown => (isTransient(error) || isAuthOrConnectionFailure(error) ? searchUnavailable() : error);

const SUMMARY_FIELDS = ['name', 'domain', 'modes', 'humor_usage', 'emotional_style', 'traits'] as const;

/** What a ranking is relative to: a vector (dense or sparse), or a point id (that point's stored vector). */
type Reference = number[] | SparseVector | string;
type References = Partial<Record<Ranking, Reference>>;

const RANKING_VECTORS = { semantic: TEXT_VECTOR, keyword: KEYWORDS_VECTOR, personality: TRAITS_VECTOR } as const satisfies Record<Ranking, string>;

/** A search resolved against the index: the mode that runs and the rankings it fuses. */
interface Plan {
  mode: SearchMode;
  rankings: readonly Ranking[];
  options: SimilarRequest;
  /** Keyword's RRF weight where the request gives none (chosen from the keyword ranking's evidence). */
  keywordWeight?: number;
}

/** A fused RRF query whose request leaves keyword's weight to the evidence. */
const needsKeywordEvidence = (plan: Plan) =>
  plan.rankings.length > 1 && plan.rankings.includes('keyword') && plan.options.fusion === 'rrf' && plan.options.weights?.keyword === undefined;

const rrfWeight = (plan: Plan, ranking: Ranking): number =>
  plan.options.weights?.[ranking] ?? (ranking === 'keyword' ? plan.keywordWeight! : DEFAULT_RRF_WEIGHTS[ranking]);

/** One ranking alone, as a query (for a single-ranking mode, and for explain). */
const rankingQuery = (ranking: Ranking, references: References, filter: Schemas['Filter'] | undefined) => ({
  query: references[ranking]!,
  using: RANKING_VECTORS[ranking],
  filter,
});

function queryRequest(plan: Plan, references: References, filter: Schemas['Filter'] | undefined): Schemas['QueryRequest'] {
  const { options } = plan;
  const page = {
    // One more than the page, to know whether a next page exists.
    limit: options.limit + 1,
    offset: options.offset,
    with_payload: options.hydrate ? false : [...SUMMARY_FIELDS],
    ...(options.score_threshold !== undefined ? { score_threshold: options.score_threshold } : {}),
  };
  const [only] = plan.rankings;
  if (plan.rankings.length === 1) return { ...rankingQuery(only!, references, filter), ...page };
  return {
    prefetch: plan.rankings.map((ranking) => ({ ...rankingQuery(ranking, references, filter), limit: BLEND_CANDIDATES })),
    query:
      options.fusion === 'rrf'
        ? { rrf: { k: RRF_K, weights: plan.rankings.map((ranking) => rrfWeight(plan, ranking)) } }
        : { fusion: options.fusion },
    ...page,
  } as Schemas['QueryRequest'];
}

/** Qdrant's answer when a query names a vector the collection does not have. */
const missingKeywords = (error: unknown) =>
  (error as { status?: unknown }).status === 400 &&
  new RegExp(`vector name.*\\b${KEYWORDS_VECTOR}\\b`, 'i').test(JSON.stringify((error as { data?: unknown }).data ?? ''));

/**
 * A collection built before the keywords vector existed (until `personas reindex`): a defaulted
 * hybrid search runs as semantic and blend fuses meaning and profile only; an explicit keyword or
 * hybrid search is a 409 that says what to do.
 */
function withoutKeywords(plan: Plan, defaulted: boolean): Plan {
  if (plan.mode === 'blend' || (plan.mode === 'hybrid' && defaulted)) {
    const rankings = plan.rankings.filter((ranking) => ranking !== 'keyword');
    return { ...plan, mode: plan.mode === 'hybrid' ? 'semantic' : plan.mode, rankings };
  }
  throw new ProblemError(
    409,
    'keywords-not-indexed',
    `Mode ${plan.mode} needs the keywords vector, which this index was built without. Run \`personas reindex\` (zero downtime) to add it; until then use mode semantic.`,
  );
}

async function queryPoints(deps: IndexReadDeps, requests: Schemas['QueryRequest'][]): Promise<Schemas['ScoredPoint'][][]> {
  try {
    const answers = await withRetries(
      () => (requests.length === 1 ? deps.qdrant.query(deps.collection, requests[0]!).then((answer) => [answer]) : deps.qdrant.queryBatch(deps.collection, { searches: requests })),
      SEARCH_RETRY_DELAYS_MS,
    );
    return answers.map((answer) => answer.points);
  } catch (error) {
    throw asSearchError(error);
  }
}

/** Each ranking's own candidates (as the fusion saw them), to explain where every hit stood. */
function explanations(plan: Plan, page: Schemas['ScoredPoint'][], rankingAnswers: Schemas['ScoredPoint'][][]) {
  if (plan.rankings.length === 1) {
    return page.map((point, index) => ({ [plan.rankings[0]!]: { rank: plan.options.offset + index + 1, score: point.score } }));
  }
  const positions = rankingAnswers.map((points) => new Map(points.map((point, index) => [String(point.id), { rank: index + 1, score: point.score }])));
  return page.map((point) =>
    Object.fromEntries(plan.rankings.map((ranking, i) => [ranking, positions[i]!.get(String(point.id)) ?? { rank: null, score: null }])),
  ) as Partial<Record<Ranking, RankingExplanation>>[];
}

/**
 * The plan with keyword's weight chosen from the keyword ranking's evidence (keywordEvidence.ts):
 * its best candidates under the same filter, with their keyword vectors, against the query's own
 * words (for similar, the reference persona's stored keyword vector). Every page of a search asks
 * the same, so every page is a slice of one fused ranking.
 */
async function withKeywordWeight(deps: IndexReadDeps, plan: Plan, references: References, filter: Schemas['Filter'] | undefined): Promise<Plan> {
  const reference = references.keyword!;
  const probe = { ...rankingQuery('keyword', references, filter), limit: KEYWORD_WEIGHT_POLICY.candidates, with_payload: false, with_vector: [KEYWORDS_VECTOR] };
  const [[candidates], queryTerms] = await Promise.all([
    queryPoints(deps, [probe]),
    typeof reference === 'string' ? storedKeywordTerms(deps, reference) : (reference as SparseVector).indices,
  ]);
  const termsOf = (point: Schemas['ScoredPoint']) => ((point.vector as Record<string, SparseVector> | undefined)?.[KEYWORDS_VECTOR]?.indices ?? []);
  return { ...plan, keywordWeight: keywordWeightFor(KEYWORD_WEIGHT_POLICY, keywordEvidence(queryTerms, candidates!.map(termsOf))) };
}

/** The terms of a stored point's keyword vector; a point that is gone has none (the ranked query then answers 404). */
async function storedKeywordTerms(deps: IndexReadDeps, id: string): Promise<number[]> {
  try {
    const [point] = await withRetries(() => deps.qdrant.retrieve(deps.collection, { ids: [id], with_payload: false, with_vector: [KEYWORDS_VECTOR] }), SEARCH_RETRY_DELAYS_MS);
    return (point?.vector as Record<string, SparseVector> | undefined)?.[KEYWORDS_VECTOR]?.indices ?? [];
  } catch (error) {
    throw asSearchError(error);
  }
}

/** Runs one ranked query; undefined when Qdrant answers 404 (no collection yet, or the reference point is missing). */
async function rankedPage(
  deps: IndexReadDeps,
  initial: Plan,
  defaulted: boolean,
  references: References,
  filter: Schemas['Filter'] | undefined,
): Promise<SearchResults | undefined> {
  let plan = initial;
  let answers: Schemas['ScoredPoint'][][];
  for (;;) {
    try {
      if (needsKeywordEvidence(plan)) plan = await withKeywordWeight(deps, plan, references, filter);
      const requests = [queryRequest(plan, references, filter)];
      if (plan.options.explain && plan.rankings.length > 1) {
        for (const ranking of plan.rankings) requests.push({ ...rankingQuery(ranking, references, filter), limit: BLEND_CANDIDATES, with_payload: false });
      }
      answers = await queryPoints(deps, requests);
      break;
    } catch (error) {
      if ((error as { status?: unknown }).status === 404) return undefined;
      if (!missingKeywords(error) || !plan.rankings.includes('keyword')) throw error;
      plan = withoutKeywords(plan, defaulted);
    }
  }
  const [points, ...rankingAnswers] = answers;
  const { options } = plan;
  let page = points!.slice(0, options.limit);
  let more = points!.length > options.limit;
  const explained = options.explain ? explanations(plan, page, rankingAnswers) : undefined;
  const withExplain = <T extends SearchHit | HydratedSearchHit>(hit: T | undefined, index: number): T | undefined =>
    hit && explained ? { ...hit, explain: explained[index] } : hit;
  let items: Array<SearchHit | HydratedSearchHit>;
  if (!options.hydrate) items = page.map((point, index) => withExplain(summaryHit(point), index)!);
  else {
    const hydrated = (await hydrate(deps, page)).map(withExplain);
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
    ...emptyPage(plan),
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
async function hydrate(deps: IndexReadDeps, points: Schemas['ScoredPoint'][]): Promise<Array<HydratedSearchHit | undefined>> {
  const personas = await deps.repository.getMany(points.map((point) => String(point.id)));
  return points.map((point) => {
    const persona = personas.get(String(point.id));
    if (!persona) return undefined;
    const { id, ...fields } = orderPersonaKeys(persona);
    return { id, score: point.score, ...fields };
  });
}

const emptyPage = ({ mode, rankings, options }: Plan): SearchResults => ({
  mode,
  score_type: rankings.length === 1 ? RANKING_SCORE_TYPES[rankings[0]!] : options.fusion,
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

const planFor = (mode: SearchMode, options: SimilarRequest): Plan => ({ mode, rankings: MODE_RANKINGS[mode], options });

/**
 * POST /personas/search: ranks personas against the query text (embedded in the model's query
 * form), a target Big Five profile, or both fused. Before the first persona is indexed there is
 * no collection, and the answer is an empty page.
 */
export async function searchPersonas(deps: SearchDeps, request: SearchRequest): Promise<SearchResults> {
  const mode = request.mode ?? defaultSearchMode(request);
  const plan = planFor(mode, request);
  const needs = new Set<Ranking>(plan.rankings);
  const references: References = {
    ...(needs.has('semantic') ? { semantic: await embedQuery(deps, request.query!) } : {}),
    ...(needs.has('keyword') ? { keyword: keywordQueryVector(request.query!) } : {}),
    ...(needs.has('personality') ? { personality: traitsVector({ traits: request.traits! }) } : {}),
  };
  return (await rankedPage(deps, plan, request.mode === undefined, references, qdrantFilter(request.filter))) ?? emptyPage(plan);
}

/**
 * GET /personas/{id}/similar: the nearest neighbours of the persona's stored vectors, never the
 * persona itself. The table decides whether the persona exists (404); a persona that exists but
 * has no point yet is a 409 to retry shortly.
 */
export async function findSimilarPersonas(deps: IndexReadDeps, id: string, options: SimilarRequest): Promise<SimilarResults> {
  const [persona, page, indexedVersion] = await Promise.allSettled([
    getPersona(deps, id),
    rankedPage(
      deps,
      planFor(options.mode ?? SIMILAR_DEFAULT_MODE, options),
      options.mode === undefined,
      { semantic: id, keyword: id, personality: id },
      qdrantFilter(options.filter, id),
    ),
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
async function pointVersion(deps: IndexReadDeps, id: string): Promise<number | undefined> {
  try {
    const [point] = await withRetries(() => deps.qdrant.retrieve(deps.collection, { ids: [id], with_payload: ['version'], with_vector: false }), SEARCH_RETRY_DELAYS_MS);
    const version = point?.payload?.version;
    return typeof version === 'number' ? version : undefined;
  } catch (error) {
    if ((error as { status?: unknown }).status === 404) return undefined;
    throw asSearchError(error);
  }
}

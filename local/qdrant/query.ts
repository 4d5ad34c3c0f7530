/**
 * Runs a parsed query against a collection with exact (brute-force) scoring. Stages follow
 * Qdrant's planner: prefetches run first with the parent's filter pushed down into them, then the
 * stage's own query either fuses their results or re-scores the union of their points.
 */
import type { Collection, StoredPoint } from './collection';
import { badRequest, pointNotFound, unsupported, vectorNameNotFound, wrongInput } from './errors';
import { mergeFilters, type Filter } from './filterParse';
import { distributionBasedScoreFusion, reciprocalRankFusion, type Scored } from './fusion';
import { comparePointIds, pointKey } from './pointId';
import type { PointId } from './pointId';
import type { NearestInput, QueryRequest, Stage, StageQuery } from './queryParse';
import {
  denseScore,
  higherIsBetter,
  isSparse,
  prepareVector,
  rawSimilarity,
  type Distance,
  type SparseVector,
  type StoredVector,
} from './vectors';

type DenseTarget = { kind: 'dense'; name: string; distance: Distance; vector: number[] };
type SparseTarget = { kind: 'sparse'; name: string; idf: boolean; vector: SparseVector; corpus?: Filter };
/** A recommend query scored against each example (`best_score`, `sum_scores`); dense vectors only. */
type RecommendTarget = {
  kind: 'recommend';
  name: string;
  distance: Distance;
  strategy: 'best_score' | 'sum_scores';
  positives: number[][];
  negatives: number[][];
};
type Target = DenseTarget | SparseTarget | RecommendTarget;

/**
 * Resolves what a stage searches for; a point id means "that point's stored vector" (runQuery
 * excludes the point itself). A stage's `params.idf` needs a sparse vector with the IDF modifier:
 * Qdrant refuses it on any other vector rather than ignore a scoring parameter
 * (`init_query_context` in lib/shard/src/query/query_context.rs, a validation error).
 */
function resolveTarget(collection: Collection, stage: Stage, input: NearestInput): Target {
  const using = stage.using;
  const dense = collection.schema.dense.get(using);
  const sparse = collection.schema.sparse.get(using);
  if (!dense && !sparse) throw vectorNameNotFound(using);
  let vector;
  if (input.kind === 'id') {
    vector = storedVector(collection, input.id, using);
  } else {
    vector = prepareVector(collection.schema, using, input.vector, 'query');
  }
  if (stage.idf && !sparse?.idf) {
    throw wrongInput(`Validation failed: search param \`idf\` requires a sparse vector with the \`idf\` modifier, which vector ${JSON.stringify(using)} is not`);
  }
  if (dense && !isSparse(vector)) return { kind: 'dense', name: using, distance: dense.distance, vector };
  if (sparse && isSparse(vector)) {
    const target: SparseTarget = { kind: 'sparse', name: using, idf: sparse.idf, vector };
    if (stage.idf?.kind === 'corpus') target.corpus = stage.idf.corpus;
    return target;
  }
  throw wrongInput('Conversion between sparse and regular vectors failed');
}

/** A stage's query as what to search for: a nearest target, or a recommend query's examples. */
function resolveQuery(collection: Collection, stage: Stage, query: Extract<StageQuery, { kind: 'nearest' | 'recommend' }>): Target {
  if (query.kind === 'nearest') return resolveTarget(collection, stage, query.input);
  const using = stage.using;
  const dense = collection.schema.dense.get(using);
  const sparse = collection.schema.sparse.get(using);
  if (!dense && !sparse) throw vectorNameNotFound(using);
  // An example by id is that point's stored vector (already unit length for Cosine); a given one is
  // checked against the vector's configuration, and kept as given for averaging.
  const example = (input: NearestInput, prepared: boolean): StoredVector => {
    if (input.kind === 'id') return storedVector(collection, input.id, using);
    const vector = prepareVector(collection.schema, using, input.vector, 'query');
    return prepared || isSparse(vector) ? vector : [...(input.vector as number[])];
  };
  if (query.strategy === 'average_vector') {
    // `avg_vector_for_recommendation` (lib/segment/src/vector_storage/query/reco_query.rs):
    // avg(positives), or avg(positives) + (avg(positives) - avg(negatives)); then a nearest search.
    if (query.positive.length === 0) throw wrongInput('Validation failed: Positive vectors should not be empty with `average` strategy');
    const positive = averageVectors(query.positive.map((input) => example(input, false)));
    const vector =
      query.negative.length === 0
        ? positive
        : mergeAverages(positive, averageVectors(query.negative.map((input) => example(input, false))));
    return resolveTarget(collection, stage, isSparse(vector) ? { kind: 'sparse', vector: { ...vector } } : { kind: 'dense', vector });
  }
  if (!dense) throw unsupported(`Recommend strategy ${query.strategy} on a sparse vector`);
  if (stage.idf) {
    throw wrongInput(`Validation failed: search param \`idf\` requires a sparse vector with the \`idf\` modifier, which vector ${JSON.stringify(using)} is not`);
  }
  return {
    kind: 'recommend',
    name: using,
    distance: dense.distance,
    strategy: query.strategy,
    positives: query.positive.map((input) => example(input, true) as number[]),
    negatives: query.negative.map((input) => example(input, true) as number[]),
  };
}

function storedVector(collection: Collection, id: PointId, using: string): StoredVector {
  const point = collection.get(id);
  if (!point) throw pointNotFound(id);
  const vector = point.vectors[using];
  if (vector === undefined) throw wrongInput(`Vector \`${using}\` is not found in point ${id}`);
  return vector;
}

/** `avg_vectors` (reco_query.rs): dense vectors averaged per dimension, sparse ones per index. */
function averageVectors(vectors: StoredVector[]): StoredVector {
  const first = vectors[0]!;
  if (vectors.some((vector) => isSparse(vector) !== isSparse(first))) throw wrongInput("Validation failed: Can't average vectors with different types");
  if (!isSparse(first)) {
    const sum = first.map((_, i) => (vectors as number[][]).reduce((total, vector) => total + vector[i]!, 0));
    return sum.map((value) => value / vectors.length);
  }
  const sums = new Map<number, number>();
  for (const vector of vectors as SparseVector[]) {
    vector.indices.forEach((index, i) => sums.set(index, (sums.get(index) ?? 0) + vector.values[i]!));
  }
  const indices = [...sums.keys()].sort((a, b) => a - b);
  return { indices, values: indices.map((index) => sums.get(index)! / vectors.length) };
}

/** `merge_positive_and_negative_avg` (reco_query.rs): pos + pos - neg, over the union of sparse indices. */
function mergeAverages(positive: StoredVector, negative: StoredVector): StoredVector {
  if (!isSparse(positive) && !isSparse(negative)) return positive.map((value, i) => value + value - negative[i]!);
  if (isSparse(positive) && isSparse(negative)) {
    const merged = new Map<number, number>();
    positive.indices.forEach((index, i) => merged.set(index, 2 * positive.values[i]!));
    negative.indices.forEach((index, i) => merged.set(index, (merged.get(index) ?? 0) - negative.values[i]!));
    const indices = [...merged.keys()].sort((a, b) => a - b);
    return { indices, values: indices.map((index) => merged.get(index)!) };
  }
  throw wrongInput('Validation failed: Positive and negative vectors should be of the same type, either all dense or all sparse or all multi');
}

/** `scaled_fast_sigmoid` (lib/common/common/src/math.rs): 0.5 · (x / (1 + |x|) + 1). */
const scaledFastSigmoid = (x: number) => 0.5 * (x / (1 + Math.abs(x)) + 1);

/**
 * `RecoBestScoreQuery::score_by` and `RecoSumScoresQuery::score_by` (reco_query.rs), over the
 * metric's raw similarity (Euclid and Manhattan as negated distances, Euclid squared): the best
 * positive through the sigmoid when it beats the best negative, else the negated sigmoid of the
 * best negative; or the positives' similarities summed minus the negatives'.
 */
function recommendScore(target: RecommendTarget, stored: number[]): number {
  const similarity = (example: number[]) => rawSimilarity(target.distance, example, stored);
  if (target.strategy === 'sum_scores') {
    let total = 0;
    for (const example of target.positives) total += similarity(example);
    for (const example of target.negatives) total -= similarity(example);
    return total;
  }
  let bestPositive = Number.NEGATIVE_INFINITY;
  for (const example of target.positives) bestPositive = Math.max(bestPositive, similarity(example));
  let bestNegative = Number.NEGATIVE_INFINITY;
  for (const example of target.negatives) bestNegative = Math.max(bestNegative, similarity(example));
  return bestPositive > bestNegative ? scaledFastSigmoid(bestPositive) : -scaledFastSigmoid(bestNegative);
}

/**
 * Keeps the best `limit` of a stream of scored points in order: a candidate worse than the last
 * kept one is dropped at once, a better one is inserted where a binary search puts it. Ranking n
 * points costs about n + limit·log(n/limit)·log(limit) comparisons instead of sorting all n.
 */
function topScored(limit: number, largerBetter: boolean) {
  const best: Scored[] = [];
  const before = (a: Scored, b: Scored) =>
    (largerBetter ? a.score > b.score : a.score < b.score) || (a.score === b.score && comparePointIds(a.point.id, b.point.id) < 0);
  const admits = (candidate: Scored) => best.length < limit || before(candidate, best[best.length - 1]!);
  return {
    /** Whether `offer` would keep the candidate now (to skip costlier checks on the rest). */
    admits,
    offer(candidate: Scored) {
      if (!admits(candidate)) return;
      let low = 0;
      let high = best.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (before(candidate, best[middle]!)) high = middle;
        else low = middle + 1;
      }
      best.splice(low, 0, candidate);
      if (best.length > limit) best.pop();
    },
    best,
  };
}

/**
 * Ranks the accepted points of `pool` by a score of their dense vector `name`; points without the
 * vector are skipped, as in Qdrant, and so are points the score does not `keep`.
 */
function rankDense(
  pool: StoredPoint[],
  accept: (point: StoredPoint) => boolean,
  name: string,
  score: (stored: number[]) => number,
  ranking: ReturnType<typeof topScored>,
  keep: (score: number) => boolean,
): Scored[] {
  for (const point of pool) {
    const stored = point.vectors[name];
    if (!stored || isSparse(stored)) continue;
    const candidate = { point, score: score(stored) };
    if (!keep(candidate.score)) continue;
    // The filter is the costly check: only for points that would make the ranking.
    if (ranking.admits(candidate) && accept(point)) ranking.offer(candidate);
  }
  return ranking.best;
}

/** Ranks the accepted points of `pool` against a dense target. */
function denseSearch(pool: StoredPoint[], accept: (point: StoredPoint) => boolean, target: DenseTarget, limit: number, threshold?: number): Scored[] {
  const largerBetter = higherIsBetter(target.distance);
  // Qdrant's `check_threshold` is strict: better than the threshold, not equal to it.
  const keep = (score: number) => threshold === undefined || (largerBetter ? score > threshold : score < threshold);
  const score = (stored: number[]) => denseScore(target.distance, target.vector, stored);
  return rankDense(pool, accept, target.name, score, topScored(limit, largerBetter), keep);
}

/**
 * Ranks the accepted points that share a dimension with a sparse target, through the vector's
 * inverted index; with the `idf` modifier each query weight is scaled by the dimension's IDF
 * (see sparseIndex.ts for Qdrant's formula and statistics).
 */
function sparseSearch(
  collection: Collection,
  target: SparseTarget,
  accept: (point: StoredPoint) => boolean,
  limit: number,
  threshold?: number,
): Scored[] {
  const index = collection.sparseIndexes.get(target.name)!;
  const ranking = topScored(limit, true);
  const corpusIdf = target.idf && target.corpus ? index.corpusIdf(target.vector.indices, (point) => collection.matches(point, target.corpus)) : undefined;
  const weight = !target.idf ? () => 1 : corpusIdf ? (dimension: number) => corpusIdf.get(dimension)! : (dimension: number) => index.idf(dimension);
  index.score(target.vector, weight, (point, score) => {
    if (threshold !== undefined && !(score > threshold)) return;
    const candidate = { point, score };
    // The filter is the costly check: only for candidates that would make the ranking.
    if (ranking.admits(candidate) && accept(point)) ranking.offer(candidate);
  });
  return ranking.best;
}

/**
 * Ranks the accepted points by a recommend query's score (higher is better); points without the
 * vector are skipped, and so are points scored NaN (`best_score` with no examples at all: the
 * sigmoid of -inf over inf), which Qdrant Edge 0.9.0 leaves out of its answer.
 *
 * A score threshold is Qdrant's `Distance::check_threshold` (lib/segment/src/types.rs) for the
 * vector's metric, applied to the ranked points while they pass (Edge 0.9.0): for Cosine and Dot
 * `score > threshold`, a filter; for Euclid and Manhattan `score < threshold`, which on scores
 * ranked best first keeps every point when the best one is below the threshold, and none otherwise.
 */
function recommendSearch(pool: StoredPoint[], accept: (point: StoredPoint) => boolean, target: RecommendTarget, limit: number, threshold?: number): Scored[] {
  const largerBetter = higherIsBetter(target.distance);
  const keep = (score: number) => !Number.isNaN(score) && (threshold === undefined || !largerBetter || score > threshold);
  const best = rankDense(pool, accept, target.name, (stored) => recommendScore(target, stored), topScored(limit, true), keep);
  if (threshold !== undefined && !largerBetter && best[0] && !(best[0].score < threshold)) return [];
  return best;
}

function search(
  collection: Collection,
  target: Target,
  candidates: { filter: Filter | undefined } | { points: StoredPoint[] },
  limit: number,
  threshold?: number,
): Scored[] {
  if (target.kind === 'recommend') {
    if ('points' in candidates) return recommendSearch(candidates.points, () => true, target, limit, threshold);
    return recommendSearch(collection.sortedPoints(), (point) => collection.matches(point, candidates.filter), target, limit, threshold);
  }
  if (target.kind === 'dense') {
    if ('points' in candidates) return denseSearch(candidates.points, () => true, target, limit, threshold);
    return denseSearch(collection.sortedPoints(), (point) => collection.matches(point, candidates.filter), target, limit, threshold);
  }
  const accept =
    'points' in candidates
      ? ((members: Set<StoredPoint>) => (point: StoredPoint) => members.has(point))(new Set(candidates.points))
      : (point: StoredPoint) => collection.matches(point, candidates.filter);
  return sparseSearch(collection, target, accept, limit, threshold);
}

function runStage(collection: Collection, stage: Stage, inherited: Filter | undefined, limit: number): Scored[] {
  const filter = mergeFilters(inherited, stage.filter);
  const query = stage.query;
  if (stage.prefetch.length === 0) {
    if (!query) return collection.filtered(filter).slice(0, limit).map((point) => ({ point, score: 0 }));
    if (query.kind !== 'nearest' && query.kind !== 'recommend') throw badRequest('cannot apply Fusion without prefetches');
    const target = resolveQuery(collection, stage, query);
    return search(collection, target, { filter }, limit, stage.scoreThreshold);
  }
  const sources = stage.prefetch.map((prefetch) => runStage(collection, prefetch, filter, prefetch.limit));
  // Unreachable through the API: parseStage refuses prefetches without a query, as Qdrant does.
  if (!query) throw badRequest('A query is needed to merge the prefetches.');
  if (query.kind === 'rrf' || query.kind === 'dbsf') {
    const fused =
      query.kind === 'rrf' ? reciprocalRankFusion(sources, query.k, query.weights) : distributionBasedScoreFusion(sources);
    const threshold = stage.scoreThreshold;
    // Fusion scores are "higher is better" and Qdrant keeps those at or above the threshold.
    return (threshold === undefined ? fused : fused.filter((item) => item.score >= threshold)).slice(0, limit);
  }
  // A vector query over prefetches re-scores exactly the points the prefetches found.
  const candidates = new Map<string, StoredPoint>();
  for (const item of sources.flat()) candidates.set(pointKey(item.point.id), item.point);
  const target = resolveQuery(collection, stage, query);
  return search(collection, target, { points: [...candidates.values()] }, limit, stage.scoreThreshold);
}

/** Ids used as query vectors anywhere in the request (root and nested prefetches). */
function referencedIds(stage: Stage, keys = new Set<string>()): Set<string> {
  const inputs = stage.query?.kind === 'nearest' ? [stage.query.input] : stage.query?.kind === 'recommend' ? [...stage.query.positive, ...stage.query.negative] : [];
  for (const input of inputs) if (input.kind === 'id') keys.add(pointKey(input.id));
  for (const prefetch of stage.prefetch) referencedIds(prefetch, keys);
  return keys;
}

/**
 * Points queried by id are not results: Qdrant adds `must_not: has_id` for every referenced id to
 * the root filter (`exclude_referenced_ids`, called from `try_into_shard_request` in
 * lib/collection/src/operations/universal_query/collection_query.rs), and the root filter reaches
 * every prefetch.
 */
export function runQuery(collection: Collection, request: QueryRequest): Scored[] {
  const excluded = referencedIds(request.stage);
  const exclusion: Filter | undefined = excluded.size > 0 ? { mustNot: [{ type: 'has_id', keys: excluded }] } : undefined;
  return runStage(collection, request.stage, exclusion, request.stage.limit + request.offset).slice(request.offset);
}

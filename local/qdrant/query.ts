/**
 * Runs a parsed query against a collection with exact (brute-force) scoring. Stages follow
 * Qdrant's planner: prefetches run first with the parent's filter pushed down into them, then the
 * stage's own query either fuses their results or re-scores the union of their points.
 */
import type { Collection, StoredPoint } from './collection';
import { badRequest, pointNotFound, vectorNameNotFound, wrongInput } from './errors';
import { mergeFilters, type Filter } from './filterParse';
import { distributionBasedScoreFusion, reciprocalRankFusion, type Scored } from './fusion';
import { comparePointIds, pointKey } from './pointId';
import type { NearestInput, QueryRequest, Stage } from './queryParse';
import {
  denseScore,
  higherIsBetter,
  isSparse,
  prepareVector,
  type Distance,
  type SparseVector,
} from './vectors';

type DenseTarget = { kind: 'dense'; name: string; distance: Distance; vector: number[] };
type SparseTarget = { kind: 'sparse'; name: string; idf: boolean; vector: SparseVector; corpus?: Filter };
type Target = DenseTarget | SparseTarget;

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
    const point = collection.get(input.id);
    if (!point) throw pointNotFound(input.id);
    vector = point.vectors[using];
    if (vector === undefined) throw wrongInput(`Vector \`${using}\` is not found in point ${input.id}`);
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

/** Ranks the accepted points of `pool` against a dense target; points without the vector are skipped, as in Qdrant. */
function denseSearch(pool: StoredPoint[], accept: (point: StoredPoint) => boolean, target: DenseTarget, limit: number, threshold?: number): Scored[] {
  const largerBetter = higherIsBetter(target.distance);
  const ranking = topScored(limit, largerBetter);
  for (const point of pool) {
    const stored = point.vectors[target.name];
    if (!stored || isSparse(stored)) continue;
    const score = denseScore(target.distance, target.vector, stored);
    // Qdrant's `check_threshold` is strict: better than the threshold, not equal to it.
    if (threshold !== undefined && !(largerBetter ? score > threshold : score < threshold)) continue;
    const candidate = { point, score };
    // The filter is the costly check: only for points that would make the ranking.
    if (ranking.admits(candidate) && accept(point)) ranking.offer(candidate);
  }
  return ranking.best;
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

function search(
  collection: Collection,
  target: Target,
  candidates: { filter: Filter | undefined } | { points: StoredPoint[] },
  limit: number,
  threshold?: number,
): Scored[] {
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
    if (query.kind !== 'nearest') throw badRequest('cannot apply Fusion without prefetches');
    const target = resolveTarget(collection, stage, query.input);
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
  const target = resolveTarget(collection, stage, query.input);
  return search(collection, target, { points: [...candidates.values()] }, limit, stage.scoreThreshold);
}

/** Ids used as query vectors anywhere in the request (root and nested prefetches). */
function referencedIds(stage: Stage, keys = new Set<string>()): Set<string> {
  if (stage.query?.kind === 'nearest' && stage.query.input.kind === 'id') keys.add(pointKey(stage.query.input.id));
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

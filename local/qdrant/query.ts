/**
 * Runs a parsed query against a collection with exact (brute-force) scoring. Stages follow
 * Qdrant's planner: prefetches run first with the parent's filter pushed down into them, then the
 * stage's own query either fuses their results or re-scores the union of their points.
 */
import type { Collection, StoredPoint } from './collection';
import { badRequest, pointNotFound, vectorNameNotFound, wrongInput } from './errors';
import { combineFilters, type Filter } from './filterParse';
import { distributionBasedScoreFusion, reciprocalRankFusion, type Scored } from './fusion';
import { comparePointIds, pointKey } from './pointId';
import type { NearestInput, QueryRequest, Stage } from './queryParse';
import {
  denseScore,
  higherIsBetter,
  isSparse,
  prepareVector,
  sparseScore,
  type Distance,
  type SparseVector,
} from './vectors';

type Target =
  | { kind: 'dense'; name: string; distance: Distance; vector: number[] }
  | { kind: 'sparse'; name: string; idf: boolean; vector: SparseVector };

/** Resolves what to search for; a point id means "that point's stored vector" (the point itself stays a candidate). */
function resolveTarget(collection: Collection, using: string, input: NearestInput): Target {
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
  if (dense && !isSparse(vector)) return { kind: 'dense', name: using, distance: dense.distance, vector };
  if (sparse && isSparse(vector)) return { kind: 'sparse', name: using, idf: sparse.idf, vector };
  throw wrongInput('Conversion between sparse and regular vectors failed');
}

/** BM25-style IDF over every point carrying the sparse vector, as Qdrant's `idf` modifier computes it. */
function idfWeights(collection: Collection, name: string): (index: number) => number {
  let total = 0;
  const frequency = new Map<number, number>();
  for (const point of collection.points.values()) {
    const vector = point.vectors[name];
    if (!vector || !isSparse(vector)) continue;
    total++;
    for (const index of vector.indices) frequency.set(index, (frequency.get(index) ?? 0) + 1);
  }
  return (index) => {
    const n = frequency.get(index) ?? 0;
    return Math.log((total - n + 0.5) / (n + 0.5) + 1);
  };
}

/**
 * Keeps the best `limit` of a stream of scored points in order (insertion into a short sorted
 * array), so ranking n points costs n·limit at worst instead of sorting all n.
 */
function topScored(limit: number, largerBetter: boolean) {
  const best: Scored[] = [];
  const before = (a: Scored, b: Scored) =>
    (largerBetter ? a.score > b.score : a.score < b.score) || (a.score === b.score && comparePointIds(a.point.id, b.point.id) < 0);
  return {
    offer(candidate: Scored) {
      if (best.length >= limit && !before(candidate, best[best.length - 1]!)) return;
      let index = best.length;
      while (index > 0 && before(candidate, best[index - 1]!)) index--;
      best.splice(index, 0, candidate);
      if (best.length > limit) best.pop();
    },
    best,
  };
}

/** Ranks `pool` against the target; points without the vector are skipped, as in Qdrant. */
function search(collection: Collection, pool: StoredPoint[], target: Target, limit: number, threshold?: number): Scored[] {
  const largerBetter = target.kind === 'sparse' || higherIsBetter(target.distance);
  const weight = target.kind === 'sparse' && target.idf ? idfWeights(collection, target.name) : () => 1;
  const ranking = topScored(limit, largerBetter);
  for (const point of pool) {
    const stored = point.vectors[target.name];
    if (!stored) continue;
    let score: number | undefined;
    if (target.kind === 'dense' && !isSparse(stored)) score = denseScore(target.distance, target.vector, stored);
    else if (target.kind === 'sparse' && isSparse(stored)) score = sparseScore(target.vector, stored, weight);
    if (score === undefined) continue;
    // Qdrant's `check_threshold` is strict: better than the threshold, not equal to it.
    if (threshold !== undefined && !(largerBetter ? score > threshold : score < threshold)) continue;
    ranking.offer({ point, score });
  }
  return ranking.best;
}

function runStage(collection: Collection, stage: Stage, inherited: Filter | undefined, limit: number): Scored[] {
  const filter = combineFilters(inherited, stage.filter);
  const query = stage.query;
  if (stage.prefetch.length === 0) {
    if (!query) return collection.filtered(filter).slice(0, limit).map((point) => ({ point, score: 0 }));
    if (query.kind !== 'nearest') throw badRequest('cannot apply Fusion without prefetches');
    const target = resolveTarget(collection, stage.using, query.input);
    return search(collection, collection.filtered(filter), target, limit, stage.scoreThreshold);
  }
  const sources = stage.prefetch.map((prefetch) => runStage(collection, prefetch, filter, prefetch.limit));
  if (!query) {
    const [only] = sources;
    if (sources.length !== 1 || !only) throw badRequest('a query is required when using more than one prefetch');
    return only.slice(0, limit);
  }
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
  const target = resolveTarget(collection, stage.using, query.input);
  return search(collection, [...candidates.values()], target, limit, stage.scoreThreshold);
}

export function runQuery(collection: Collection, request: QueryRequest): Scored[] {
  return runStage(collection, request.stage, undefined, request.stage.limit + request.offset).slice(request.offset);
}

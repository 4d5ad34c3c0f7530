/**
 * Combining the ranked results of several prefetches, as Qdrant's `reciprocal_rank_fusion` and
 * `score_fusion` modules do. Ties keep first-seen order so results are deterministic.
 */
import type { StoredPoint } from './collection';
import { wrongInput } from './errors';
import { pointKey } from './pointId';

export interface Scored {
  point: StoredPoint;
  score: number;
}

/** Qdrant's default `k`; smaller than the textbook 60 on purpose. */
export const DEFAULT_RRF_K = 2;

function accumulate(sources: Scored[][], scoreOf: (sourceIndex: number, position: number, item: Scored) => number): Scored[] {
  const byId = new Map<string, Scored>();
  sources.forEach((source, sourceIndex) => {
    source.forEach((item, position) => {
      const key = pointKey(item.point.id);
      const contribution = scoreOf(sourceIndex, position, item);
      const existing = byId.get(key);
      if (existing) existing.score += contribution;
      else byId.set(key, { point: item.point, score: contribution });
    });
  });
  return [...byId.values()].sort((a, b) => b.score - a.score);
}

/**
 * Score of position `p` (0-based) is `1 / ((p + 1) / weight + k - 1)`, i.e. `1 / (p + k)` unweighted;
 * a weight ≤ 0 scores 0 (Qdrant's `position_score` and `rrf_scoring` in
 * lib/segment/src/common/reciprocal_rank_fusion.rs; weights are Qdrant 1.19's `rrf.weights`).
 */
export function reciprocalRankFusion(sources: Scored[][], k = DEFAULT_RRF_K, weights?: number[]): Scored[] {
  if (weights && weights.length !== sources.length) {
    throw wrongInput(
      `Number of weights in RRF should match number of pre-fetches: got ${weights.length}, expected ${sources.length}`,
    );
  }
  return accumulate(sources, (sourceIndex, position) => {
    const weight = weights?.[sourceIndex] ?? 1;
    return weight <= 0 ? 0 : 1 / ((position + 1) / weight + k - 1);
  });
}

/** Normalises each source to mean ± 3 sample standard deviations, then sums. */
export function distributionBasedScoreFusion(sources: Scored[][]): Scored[] {
  const normalised = sources.map((source) => {
    if (source.length < 2) return source.map((item) => ({ ...item, score: 0.5 }));
    const mean = source.reduce((sum, item) => sum + item.score, 0) / source.length;
    const variance = source.reduce((sum, item) => sum + (item.score - mean) ** 2, 0) / (source.length - 1);
    const deviation = Math.sqrt(variance);
    const low = mean - 3 * deviation;
    const high = mean + 3 * deviation;
    return source.map((item) => ({ ...item, score: high === low ? 0.5 : (item.score - low) / (high - low) }));
  });
  return accumulate(normalised, (_source, _position, item) => item.score);
}

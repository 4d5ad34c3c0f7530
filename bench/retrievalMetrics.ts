/** Depth of every ranking the quality benchmark and its tuning grids look at; a target below it counts as not found. */
export const QUALITY_DEPTH = 100;

/** Retrieval figures from the rank (1-based) at which each query found its target; Infinity = not found. */
export interface RetrievalMetrics {
  queries: number;
  recallAt1: number;
  recallAt10: number;
  /** Mean reciprocal rank; a target not found counts 0. */
  mrr: number;
  /** Median rank; Infinity when more than half were not found within the ranks looked at. */
  medianRank: number;
}

export function retrievalMetrics(ranks: readonly number[]): RetrievalMetrics {
  const sorted = [...ranks].sort((a, b) => a - b);
  const share = (predicate: (rank: number) => boolean) => ranks.filter(predicate).length / Math.max(ranks.length, 1);
  const middle = sorted.length / 2;
  const medianRank =
    sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return {
    queries: ranks.length,
    recallAt1: share((rank) => rank <= 1),
    recallAt10: share((rank) => rank <= 10),
    mrr: ranks.reduce((sum, rank) => sum + (Number.isFinite(rank) ? 1 / rank : 0), 0) / Math.max(ranks.length, 1),
    medianRank,
  };
}

/** A difference between two variants with its 95% bootstrap interval. */
export interface MetricDifference {
  /** Variant minus baseline, over all queries. */
  difference: number;
  low: number;
  high: number;
}

/**
 * Paired bootstrap of a metric's difference (variant − baseline) with query personas as the unit of
 * resampling: a persona's pairs share one ranking, so they are drawn together (a cluster bootstrap).
 * `variant[i]` and `baseline[i]` are the ranks of query persona i's targets, in the same order.
 * Fixed seed, so a run repeats.
 */
export function bootstrapDifference(
  variant: readonly (readonly number[])[],
  baseline: readonly (readonly number[])[],
  metric: 'mrr' | 'recallAt10',
  samples = 2000,
): MetricDifference {
  const value = (rank: number) => (metric === 'mrr' ? (Number.isFinite(rank) ? 1 / rank : 0) : rank <= 10 ? 1 : 0);
  const clusters = variant.map((ranks, i) => ({
    sum: ranks.reduce((total, rank) => total + value(rank), 0) - baseline[i]!.reduce((total, rank) => total + value(rank), 0),
    count: ranks.length,
  }));
  const mean = (picks: Iterable<{ sum: number; count: number }>) => {
    let sum = 0;
    let count = 0;
    for (const cluster of picks) {
      sum += cluster.sum;
      count += cluster.count;
    }
    return count === 0 ? 0 : sum / count;
  };
  // A small deterministic generator (mulberry32): Math.random would make every run's interval differ.
  let state = 0x9e3779b9;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const estimates = Array.from({ length: samples }, () =>
    mean(Array.from({ length: clusters.length }, () => clusters[Math.floor(random() * clusters.length)]!)),
  ).sort((a, b) => a - b);
  return {
    difference: mean(clusters),
    low: estimates[Math.floor(samples * 0.025)]!,
    high: estimates[Math.ceil(samples * 0.975) - 1]!,
  };
}

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

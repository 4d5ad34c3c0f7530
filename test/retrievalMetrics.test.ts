import { describe, expect, it } from 'vitest';
import { bootstrapDifference, QUALITY_DEPTH, retrievalMetrics } from '../bench/retrievalMetrics';

/** The figures the quality benchmark and its tuning grids report, on hand-computed cases. */
describe('retrieval metrics', () => {
  it('recall@1, recall@10, MRR and median rank from the ranks at which targets were found', () => {
    const metrics = retrievalMetrics([1, 2, Infinity, 10, 11]);
    expect(metrics).toEqual({ queries: 5, recallAt1: 0.2, recallAt10: 0.6, mrr: (1 + 1 / 2 + 0 + 1 / 10 + 1 / 11) / 5, medianRank: 10 });
    expect(retrievalMetrics([Infinity, Infinity, 3]).medianRank).toBe(Infinity);
    expect(QUALITY_DEPTH).toBe(100);
  });

  it('a variant identical to its baseline differs by exactly zero, interval included', () => {
    const ranks = [[1, 3], [2], [Infinity, 5], [4]];
    expect(bootstrapDifference(ranks, ranks, 'mrr')).toEqual({ difference: 0, low: 0, high: 0 });
  });

  it('a variant better on every query persona has its whole interval above zero; a mixed one straddles it', () => {
    const baseline = Array.from({ length: 40 }, () => [2, 3]);
    const better = Array.from({ length: 40 }, () => [1, 2]);
    const gain = bootstrapDifference(better, baseline, 'mrr');
    expect(gain.difference).toBeCloseTo((1 + 1 / 2 - 1 / 2 - 1 / 3) / 2, 12);
    expect(gain.low).toBeCloseTo(gain.difference, 12);
    // From rank 2, half the personas move to rank 1 (+1/2), half lose the target (−1/2): the mean is
    // zero, the interval spans both signs.
    const second = Array.from({ length: 40 }, () => [2]);
    const mixed = second.map((_, i) => (i % 2 === 0 ? [1] : [Infinity]));
    const straddle = bootstrapDifference(mixed, second, 'mrr');
    expect(straddle.difference).toBe(0);
    expect(straddle.low).toBeLessThan(0);
    expect(straddle.high).toBeGreaterThan(0);
    // Deterministic: the same inputs give the same interval.
    expect(bootstrapDifference(mixed, second, 'mrr')).toEqual(straddle);
  });

  it('recall@10 differences count targets that crossed rank 10, per pair', () => {
    const baseline = [[11], [5], [12]];
    const variant = [[9], [5], [12]];
    expect(bootstrapDifference(variant, baseline, 'recallAt10').difference).toBeCloseTo(1 / 3, 12);
  });
});

import { describe, expect, it } from 'vitest';
import { comparisonTable, measureSearchQuality, QUALITY_VARIANTS, qualityDataAvailable, qualityTable, type QualityReport } from '../bench/searchQuality';

/**
 * The retrieval benchmark (`npm run bench:quality`) on a fixed sample of the dev pairs, with floors:
 * the README's full-run table must not silently get worse. All 10,489 real personas are indexed (the
 * distractors), only the queries are sampled; 600 pairs (about 100 s on 2 idle cores) because a sample
 * of 150 moved hybrid's MRR against keyword's by ±0.02, ten times the full run's difference.
 */
const SAMPLE_PAIRS = 600;

/**
 * Floors under what this sample measured (fixed, so a run repeats it): search keyword R@10 1.000 /
 * MRR 0.445, semantic 0.878 / 0.398; similar keyword 1.000 / 0.444, semantic 0.880 / 0.398 (README
 * "Search quality" has the full run). A regression fails.
 */
const FLOORS = {
  search: { keyword: { recallAt10: 0.98, mrr: 0.43 }, semantic: { recallAt10: 0.85, mrr: 0.37 } },
  similar: { keyword: { recallAt10: 0.98, mrr: 0.43 }, semantic: { recallAt10: 0.85, mrr: 0.37 } },
} as const;

const available = qualityDataAvailable();
const [, , hybridDefault, hybridUnweighted, hybridDbsf] = QUALITY_VARIANTS.map((variant) => variant.label);

describe('search quality on real personas', () => {
  it.skipIf(!available)(
    `default hybrid (weighted RRF) reaches BM25's recall@10, comes within 0.015 of its MRR, and beats semantic (beyond sampling noise) and unweighted RRF, for search and similar${available ? '' : ' (skipped: ../shared/data/personas or ../shared/models/glove-sif-50d is absent)'}`,
    async () => {
      const report: QualityReport = await measureSearchQuality({ pairs: SAMPLE_PAIRS });
      console.log(`[quality] ${report.pairs} pairs, indexed in ${report.indexSeconds.toFixed(0)} s, queried in ${report.querySeconds.toFixed(0)} s\n${qualityTable(report)}\n${comparisonTable(report)}`);
      expect(report.personas).toBe(10_489);
      const row = (task: 'search' | 'similar', variant: string) => report.rows.find((candidate) => candidate.task === task && candidate.variant === variant)!.metrics;
      const compared = (task: 'search' | 'similar', baseline: string) => report.comparisons.find((candidate) => candidate.task === task && candidate.baseline === baseline)!;
      for (const task of ['search', 'similar'] as const) {
        const keyword = row(task, 'keyword');
        const semantic = row(task, 'semantic');
        expect(keyword.recallAt10).toBeGreaterThanOrEqual(FLOORS[task].keyword.recallAt10);
        expect(keyword.mrr).toBeGreaterThanOrEqual(FLOORS[task].keyword.mrr);
        expect(semantic.recallAt10).toBeGreaterThanOrEqual(FLOORS[task].semantic.recallAt10);
        expect(semantic.mrr).toBeGreaterThanOrEqual(FLOORS[task].semantic.mrr);
        // The target is hybrid ≥ the better of the two. On these lexical near-duplicate pairs
        // the default weights (keyword 3 : semantic 1) fall short of BM25 over all 7,559 pairs by 2
        // pairs' recall@10 and about 0.002 MRR (README "Search quality": why, and what heavier keyword
        // weights cost); on this sample they trail its MRR by 0.007–0.010.
        const hybrid = row(task, hybridDefault!);
        expect(hybrid.recallAt10, `${task}: default hybrid recall@10`).toBeGreaterThanOrEqual(keyword.recallAt10);
        expect(hybrid.mrr, `${task}: default hybrid MRR`).toBeGreaterThanOrEqual(keyword.mrr - 0.015);
        // Against semantic the gain is real, not sampling noise: the whole 95% interval is above zero.
        expect(compared(task, 'semantic').recallAt10.low, `${task}: hybrid − semantic recall@10, interval low`).toBeGreaterThan(0);
        expect(compared(task, 'semantic').mrr.low, `${task}: hybrid − semantic MRR, interval low`).toBeGreaterThan(0);
        for (const variant of [hybridUnweighted!, hybridDbsf!]) {
          expect(row(task, variant).recallAt10, `${task}: ${variant} recall@10`).toBeGreaterThan(semantic.recallAt10);
          expect(row(task, variant).mrr, `${task}: ${variant} MRR`).toBeGreaterThan(semantic.mrr);
        }
        // What the weights are for: unweighted RRF gives the weak 50-d model an equal vote.
        expect(hybrid.recallAt10, `${task}: weighted vs unweighted recall@10`).toBeGreaterThanOrEqual(row(task, hybridUnweighted!).recallAt10);
        expect(hybrid.mrr, `${task}: weighted vs unweighted MRR`).toBeGreaterThanOrEqual(row(task, hybridUnweighted!).mrr);
      }
    },
    600_000,
  );
});

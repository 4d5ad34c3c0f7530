/**
 * Tuning of hybrid fusion (RRF k and weights, DBSF, prefetch limits) on the dev pairs, in memory:
 * every ranking a hybrid query fuses is computed once per query persona exactly as the index ranks
 * (the indexed texts, the same model and keyword vectors, exact cosine, BM25 with Qdrant's IDF, ties
 * by point id, the query persona excluded from similar's rankings as Qdrant excludes a referenced
 * id), then each setting only re-fuses those rankings as Qdrant's fusion does (local/qdrant/fusion.ts).
 * A grid of hundreds of settings takes a minute instead of a reindex and 15,000 queries each.
 *
 * The pairs are split by family into two halves: settings are chosen on the `tune` half and then
 * confirmed on the `check` half, which the choice never saw (the dataset's harder held-out pairs are
 * not available here: ../shared/data/personas/README.md).
 */
import { createHash } from 'node:crypto';
import { distributionBasedScoreFusion, reciprocalRankFusion, type Scored } from '../local/qdrant/fusion';
import type { StoredPoint } from '../local/qdrant/collection';
import { createEmbedder } from '../shared/embedding';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { keywordDocumentVector, keywordQueryVector, type SparseVector } from '../shared/vectorIndex/keywordVector';
import { sparseIndex } from './keywordTuning';
import { targetsByQuery, type DevPair, type PersonaDataset } from './personaDataset';
import { QUALITY_DEPTH as DEPTH, retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics';

/** The two rankings of hybrid, in the order the product's query lists its prefetches. */
export const HYBRID_LEGS = ['semantic', 'keyword'] as const;
export type HybridLeg = (typeof HYBRID_LEGS)[number];

export interface FusionSetting {
  fusion: 'rrf' | 'dbsf';
  /** RRF's k (Qdrant's default 2). */
  k: number;
  /** RRF weight of each leg (Qdrant 1.19's `rrf.weights`); DBSF has none. */
  weights: Record<HybridLeg, number>;
  /** Prefetch limit of each leg. */
  limits: Record<HybridLeg, number>;
}

/** One ranking, best first: dataset positions and their scores. */
interface Ranked {
  docs: Int32Array;
  scores: Float64Array;
}

type Legs = Record<HybridLeg, Ranked>;

interface QueryRankings {
  /** Dataset position of the query persona. */
  self: number;
  /** Dataset positions of the personas it should find (its dev pairs). */
  targets: number[];
  search: Legs;
  similar: Legs;
}

export type PairSplit = 'tune' | 'check';

/** Half of the families (by a hash of the family id) tune, the other half check. */
export const splitOf = (family: string): PairSplit => (createHash('sha256').update(family).digest()[0]! & 1 ? 'check' : 'tune');


/** The `limit` best of `scores` (all documents), ties by `tieOrder` (point id order, as the local server). */
function topK(scores: Float64Array, candidates: Iterable<number>, limit: number, tieOrder: Int32Array, exclude: number): Ranked {
  const docs = [...candidates].filter((doc) => doc !== exclude);
  docs.sort((a, b) => scores[b]! - scores[a]! || tieOrder[a]! - tieOrder[b]!);
  const kept = docs.slice(0, limit);
  return { docs: Int32Array.from(kept), scores: Float64Array.from(kept, (doc) => scores[doc]!) };
}

export interface FusionTuningData {
  queries: QueryRankings[];
  splitOfQuery: PairSplit[];
  personas: number;
}

/**
 * Every query persona's rankings, to `maxLimit` deep: search (query = its dataset text, as
 * bench/searchQuality.ts asks) and similar (its stored vectors, itself excluded).
 */
export async function prepareFusionTuning(dataset: PersonaDataset, pairs: readonly DevPair[], modelDir: string, maxLimit: number): Promise<FusionTuningData> {
  const byUuid = dataset.personas.map((entry, i) => [entry.persona.id, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const tieOrder = new Int32Array(dataset.personas.length);
  byUuid.forEach(([, doc], order) => (tieOrder[doc] = order));

  const embedder = await createEmbedder({ modelDir, allowRemote: false, pooling: 'mean', queryPrefix: '' });
  try {
    const texts = dataset.personas.map((entry) => personaEmbeddingText(entry.persona));
    const dense = await embedder.embedDocuments(texts);
    const keywordDocs = texts.map((text) => keywordDocumentVector(text));
    const keywords = sparseIndex(keywordDocs);
    const n = dataset.personas.length;
    const scores = new Float64Array(n);
    const all = Array.from({ length: n }, (_, i) => i);
    const denseRanking = (query: number[], exclude: number) => {
      for (let doc = 0; doc < n; doc++) {
        const stored = dense[doc]!;
        let total = 0;
        for (let i = 0; i < query.length; i++) total += query[i]! * stored[i]!;
        scores[doc] = total;
      }
      return topK(scores, all, maxLimit, tieOrder, exclude);
    };
    const keywordRanking = (query: SparseVector, exclude: number) => {
      const touched = keywords.score(query, scores);
      return topK(scores, touched, maxLimit, tieOrder, exclude);
    };

    const queries: QueryRankings[] = [];
    const splitOfQuery: PairSplit[] = [];
    for (const [self, targets] of targetsByQuery(dataset, pairs)) {
      const entry = dataset.personas[self]!;
      const queryVector = await embedder.embedQuery(entry.text);
      queries.push({
        self,
        targets,
        search: { semantic: denseRanking(queryVector, -1), keyword: keywordRanking(keywordQueryVector(entry.text), -1) },
        similar: { semantic: denseRanking(dense[self]!, self), keyword: keywordRanking(keywordDocs[self]!, self) },
      });
      splitOfQuery.push(splitOf(entry.family ?? entry.sourceId));
    }
    return { queries, splitOfQuery, personas: n };
  } finally {
    await embedder.dispose();
  }
}

/** Stand-in points for the local server's fusion: only the id matters to it. */
const pointsOf = (n: number): StoredPoint[] => Array.from({ length: n }, (_, doc) => ({ id: doc }) as unknown as StoredPoint);

export interface FusionMetrics {
  search: RetrievalMetrics;
  similar: RetrievalMetrics;
}

export type Variant = { kind: 'leg'; leg: HybridLeg } | { kind: 'fused'; setting: FusionSetting };

/** The legs cut to the setting's prefetch limits, in the product's prefetch order. */
const sourcesOf = (legs: Legs, setting: FusionSetting) =>
  HYBRID_LEGS.map((leg) => {
    const { docs, scores } = legs[leg];
    const limit = Math.min(setting.limits[leg], docs.length);
    return { leg, docs: docs.subarray(0, limit), scores: scores.subarray(0, limit) };
  });

/**
 * Fuses as local/qdrant/fusion.ts does, on typed arrays: the same contributions added in the same
 * order (so the same floating-point sums), ties kept in first-seen order. Returns each target's
 * rank with `self` ignored (Infinity beyond DEPTH).
 */
function fusedTargetRanks(
  legs: Legs,
  setting: FusionSetting,
  self: number,
  targets: readonly number[],
  scratch: { score: Float64Array; seen: Int32Array },
  keywordBlind = false,
): number[] {
  const { score, seen } = scratch;
  const touched: number[] = [];
  for (const source of sourcesOf(legs, setting)) {
    const { leg } = source;
    let { docs, scores } = source;
    if (keywordBlind && leg === 'keyword') {
      // The targets taken out of the keyword ranking, as if they shared no word with the query.
      const kept = [...docs.keys()].filter((p) => !targets.includes(docs[p]!));
      docs = Int32Array.from(kept, (p) => docs[p]!);
      scores = Float64Array.from(kept, (p) => scores[p]!);
    }
    let low = 0;
    let high = 0;
    if (setting.fusion === 'dbsf' && docs.length >= 2) {
      let mean = 0;
      for (const value of scores) mean += value;
      mean /= scores.length;
      let variance = 0;
      for (const value of scores) variance += (value - mean) ** 2;
      const deviation = Math.sqrt(variance / (scores.length - 1));
      low = mean - 3 * deviation;
      high = mean + 3 * deviation;
    }
    const weight = setting.weights[leg];
    for (let p = 0; p < docs.length; p++) {
      const doc = docs[p]!;
      const contribution =
        setting.fusion === 'rrf'
          ? weight <= 0
            ? 0
            : 1 / ((p + 1) / weight + setting.k - 1)
          : docs.length < 2 || high === low
            ? 0.5
            : (scores[p]! - low) / (high - low);
      if (seen[doc] === 0) {
        touched.push(doc);
        seen[doc] = touched.length;
        score[doc] = contribution;
      } else score[doc] = score[doc]! + contribution;
    }
  }
  const ranks = targets.map((target) => {
    if (seen[target] === 0) return Infinity;
    const own = score[target]!;
    const order = seen[target]!;
    let rank = 1;
    for (const doc of touched) {
      if (doc === self || doc === target) continue;
      if (score[doc]! > own || (score[doc] === own && seen[doc]! < order)) rank++;
    }
    return rank > DEPTH ? Infinity : rank;
  });
  for (const doc of touched) {
    seen[doc] = 0;
    score[doc] = 0;
  }
  return ranks;
}

/** Rank (1-based, the query persona ignored) of each target in a ranking; Infinity beyond DEPTH. */
function targetRanks(ranking: readonly number[], self: number, targets: readonly number[]): number[] {
  const order = ranking.filter((doc) => doc !== self).slice(0, DEPTH);
  return targets.map((target) => {
    const at = order.indexOf(target);
    return at < 0 ? Infinity : at + 1;
  });
}

/**
 * The metrics of one variant over the queries of one split. `keywordBlind`: the targets are taken
 * out of the keyword ranking before fusing, a stand-in for paraphrase pairs that share no words
 * (the dataset's held-out kind): how much of what the meaning ranking finds survives the fusion.
 */
export function evaluateVariant(data: FusionTuningData, split: PairSplit | 'all', variant: Variant, keywordBlind = false): FusionMetrics {
  const scratch = { score: new Float64Array(data.personas), seen: new Int32Array(data.personas) };
  const ranks = { search: [] as number[], similar: [] as number[] };
  data.queries.forEach((query, i) => {
    if (split !== 'all' && data.splitOfQuery[i] !== split) return;
    for (const task of ['search', 'similar'] as const) {
      ranks[task].push(
        ...(variant.kind === 'leg'
          ? targetRanks([...query[task][variant.leg].docs], query.self, query.targets)
          : fusedTargetRanks(query[task], variant.setting, query.self, query.targets, scratch, keywordBlind)),
      );
    }
  });
  return { search: retrievalMetrics(ranks.search), similar: retrievalMetrics(ranks.similar) };
}

/**
 * The fast fusion above against the local server's own (local/qdrant/fusion.ts) on the first
 * `count` queries: the ranks of every target must be the same, or the grid measures something else.
 */
export function checkAgainstServerFusion(data: FusionTuningData, setting: FusionSetting, count: number): void {
  const points = pointsOf(data.personas);
  const scratch = { score: new Float64Array(data.personas), seen: new Int32Array(data.personas) };
  for (const query of data.queries.slice(0, count)) {
    for (const task of ['search', 'similar'] as const) {
      const sources: Scored[][] = sourcesOf(query[task], setting).map(({ docs, scores }) =>
        Array.from(docs, (doc, p) => ({ point: points[doc]!, score: scores[p]! })),
      );
      const fused =
        setting.fusion === 'rrf'
          ? reciprocalRankFusion(sources, setting.k, HYBRID_LEGS.map((leg) => setting.weights[leg]))
          : distributionBasedScoreFusion(sources);
      const expected = targetRanks(fused.map((item) => item.point.id as number), query.self, query.targets);
      const actual = fusedTargetRanks(query[task], setting, query.self, query.targets, scratch);
      if (expected.join() !== actual.join()) {
        throw new Error(`fusion tuning disagrees with the local server's fusion (${JSON.stringify(setting)}, ${task}): ${actual} vs ${expected}`);
      }
    }
  }
}

/** The settings tried: RRF over k, weights and limits; DBSF over limits. */
export function fusionGrid(maxLimit: number): FusionSetting[] {
  const grid: FusionSetting[] = [];
  const limitChoices = [...new Set([100, maxLimit])];
  for (const semanticLimit of limitChoices) {
    for (const keywordLimit of limitChoices) {
      const limits = { semantic: semanticLimit, keyword: keywordLimit };
      grid.push({ fusion: 'dbsf', k: 0, weights: { semantic: 1, keyword: 1 }, limits });
      for (const k of [1, 2, 3, 5, 10, 60])
        for (const keyword of [1, 1.5, 2, 3, 4, 5, 8]) grid.push({ fusion: 'rrf', k, weights: { semantic: 1, keyword }, limits });
    }
  }
  return grid;
}

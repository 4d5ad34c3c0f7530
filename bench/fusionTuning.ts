/**
 * Tuning of hybrid fusion (RRF k and weights, DBSF, prefetch limits, and weights chosen per query
 * from the keyword ranking's own evidence) on both development sets, in memory: every ranking a
 * hybrid query fuses is computed once per query persona exactly as the index ranks (the indexed
 * texts, the same model and keyword vectors, exact cosine, BM25 with Qdrant's IDF, ties by point id,
 * the query persona excluded from similar's rankings as Qdrant excludes a referenced id), then each
 * setting only re-fuses those rankings as Qdrant's fusion does (local/qdrant/fusion.ts). A grid of
 * hundreds of settings takes a minute instead of a reindex and thousands of queries each.
 *
 * Settings are chosen on the `tune` queries of both sets and confirmed on the `held-out` ones, which
 * the choice never saw (the dataset's own harder held-out pairs are not available here:
 * ../shared/data/personas/README.md).
 */
import { distributionBasedScoreFusion, reciprocalRankFusion, type Scored } from '../local/qdrant/fusion';
import type { StoredPoint } from '../local/qdrant/collection';
import { createEmbedder } from '../shared/embedding';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { keywordEvidence, keywordWeightFor, type KeywordWeightPolicy } from '../shared/search/keywordEvidence';
import { keywordDocumentVector, keywordQueryVector, type SparseVector } from '../shared/vectorIndex/keywordVector';
import { cachedEmbeddings } from './embeddingCache';
import { sparseIndex } from './keywordTuning';
import type { PersonaDataset, RetrievalQuery, RetrievalSet, RetrievalSetName } from './personaDataset';
import type { QuerySplit } from './paraphraseSet';
import { qualityEmbedderOptions } from './qualityModel';
import { QUALITY_DEPTH as DEPTH, retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics';

/** The two rankings of hybrid, in the order the product's query lists its prefetches. */
export const HYBRID_LEGS = ['semantic', 'keyword'] as const;
export type HybridLeg = (typeof HYBRID_LEGS)[number];
export const TASKS = ['search', 'similar'] as const;
export type Task = (typeof TASKS)[number];

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

export interface QueryRankings extends RetrievalQuery {
  search: Legs;
  similar: Legs;
  /** The keyword ranking's evidence (shared/search/keywordEvidence.ts) over its best EVIDENCE_CANDIDATES, per task. */
  evidence: Record<Task, number>;
}

/** Candidates the evidence is computed over in the grid (a policy with another `candidates` is refused). */
export const EVIDENCE_CANDIDATES = 10;

/** The `limit` best of `scores` (all documents), ties by `tieOrder` (point id order, as the local server). */
function topK(scores: Float64Array, candidates: Iterable<number>, limit: number, tieOrder: Int32Array, exclude: number): Ranked {
  const docs = [...candidates].filter((doc) => doc !== exclude);
  docs.sort((a, b) => scores[b]! - scores[a]! || tieOrder[a]! - tieOrder[b]!);
  const kept = docs.slice(0, limit);
  return { docs: Int32Array.from(kept), scores: Float64Array.from(kept, (doc) => scores[doc]!) };
}

export interface FusionTuningData {
  sets: Record<RetrievalSetName, QueryRankings[]>;
  personas: number;
  model: string;
}

/**
 * Every query persona's rankings, to `maxLimit` deep: search (query = its text, embedded as a
 * query) and similar (its stored vectors, itself excluded).
 */
export async function prepareFusionTuning(dataset: PersonaDataset, sets: readonly RetrievalSet[], maxLimit: number, log: (line: string) => void = () => undefined): Promise<FusionTuningData> {
  const byUuid = dataset.personas.map((entry, i) => [entry.persona.id, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const tieOrder = new Int32Array(dataset.personas.length);
  byUuid.forEach(([, doc], order) => (tieOrder[doc] = order));

  const embedder = await createEmbedder(qualityEmbedderOptions());
  try {
    const texts = dataset.personas.map((entry) => personaEmbeddingText(entry.persona));
    const started = performance.now();
    const dense = await cachedEmbeddings(embedder, texts, 'document');
    log(`${texts.length} personas' vectors (cached or embedded) in ${((performance.now() - started) / 1000).toFixed(0)} s (${embedder.model.id}, ${embedder.model.dtype})`);
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
    const keywordRanking = (query: SparseVector, exclude: number) => topK(scores, keywords.score(query, scores), maxLimit, tieOrder, exclude);

    const result = {} as Record<RetrievalSetName, QueryRankings[]>;
    for (const set of sets) {
      const queries: QueryRankings[] = [];
      const queryVectors = await cachedEmbeddings(embedder, set.queries.map((query) => dataset.personas[query.self]!.text), 'query');
      for (const [i, query] of set.queries.entries()) {
        const text = dataset.personas[query.self]!.text;
        const queryVector = queryVectors[i]!;
        const searchKeywords = keywordQueryVector(text);
        const search = { semantic: denseRanking(queryVector, -1), keyword: keywordRanking(searchKeywords, -1) };
        const similar = { semantic: denseRanking(dense[query.self]!, query.self), keyword: keywordRanking(keywordDocs[query.self]!, query.self) };
        const evidenceOf = (terms: readonly number[], legs: Legs) =>
          keywordEvidence(terms, Array.from(legs.keyword.docs.subarray(0, EVIDENCE_CANDIDATES), (doc) => keywordDocs[doc]!.indices));
        queries.push({
          ...query,
          search,
          similar,
          evidence: { search: evidenceOf(searchKeywords.indices, search), similar: evidenceOf(keywordDocs[query.self]!.indices, similar) },
        });
      }
      result[set.name] = queries;
      log(`${set.name}: ${queries.length} query personas ranked`);
    }
    return { sets: result, personas: n, model: `${embedder.model.id} (${embedder.model.dtype})` };
  } finally {
    await embedder.dispose();
  }
}

/** Stand-in points for the local server's fusion: only the id matters to it. */
const pointsOf = (n: number): StoredPoint[] => Array.from({ length: n }, (_, doc) => ({ id: doc }) as unknown as StoredPoint);

export type FusionMetrics = Record<Task, RetrievalMetrics>;

/**
 * A ranking to evaluate: one leg alone, a fixed fusion setting, or RRF whose keyword weight a policy
 * picks per query from the keyword ranking's evidence (shared/search/keywordEvidence.ts).
 */
export type Variant =
  | { kind: 'leg'; leg: HybridLeg }
  | { kind: 'fused'; setting: FusionSetting }
  | { kind: 'policy'; policy: KeywordWeightPolicy; k: number; limits: Record<HybridLeg, number> };

/** The setting a variant fuses one query's legs with. */
export function settingFor(variant: Exclude<Variant, { kind: 'leg' }>, query: QueryRankings, task: Task): FusionSetting {
  if (variant.kind === 'fused') return variant.setting;
  if (variant.policy.candidates !== EVIDENCE_CANDIDATES) throw new Error(`the grid computes evidence over ${EVIDENCE_CANDIDATES} candidates, not ${variant.policy.candidates}`);
  return { fusion: 'rrf', k: variant.k, weights: { semantic: 1, keyword: keywordWeightFor(variant.policy, query.evidence[task]) }, limits: variant.limits };
}

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
function fusedTargetRanks(legs: Legs, setting: FusionSetting, self: number, targets: readonly number[], scratch: { score: Float64Array; seen: Int32Array }): number[] {
  const { score, seen } = scratch;
  const touched: number[] = [];
  for (const { leg, docs, scores } of sourcesOf(legs, setting)) {
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

/** Each query's target ranks under a variant, in query order (a query's targets together, for the cluster bootstrap). */
export function variantRanks(data: FusionTuningData, set: RetrievalSetName, split: QuerySplit | 'all', variant: Variant): Record<Task, number[][]> {
  const scratch = { score: new Float64Array(data.personas), seen: new Int32Array(data.personas) };
  const ranks: Record<Task, number[][]> = { search: [], similar: [] };
  for (const query of data.sets[set]) {
    if (split !== 'all' && query.split !== split) continue;
    for (const task of TASKS) {
      const legs = query[task];
      ranks[task].push(
        variant.kind === 'leg'
          ? targetRanks([...legs[variant.leg].docs], query.self, query.targets)
          : fusedTargetRanks(legs, settingFor(variant, query, task), query.self, query.targets, scratch),
      );
    }
  }
  return ranks;
}

export function evaluateVariant(data: FusionTuningData, set: RetrievalSetName, split: QuerySplit | 'all', variant: Variant): FusionMetrics {
  const ranks = variantRanks(data, set, split, variant);
  return { search: retrievalMetrics(ranks.search.flat()), similar: retrievalMetrics(ranks.similar.flat()) };
}

/**
 * The fast fusion above against the local server's own (local/qdrant/fusion.ts) on the first
 * `count` queries of each set: the ranks of every target must be the same, or the grid measures
 * something else.
 */
export function checkAgainstServerFusion(data: FusionTuningData, variant: Exclude<Variant, { kind: 'leg' }>, count: number): void {
  const points = pointsOf(data.personas);
  const scratch = { score: new Float64Array(data.personas), seen: new Int32Array(data.personas) };
  for (const queries of Object.values(data.sets)) {
    for (const query of queries.slice(0, count)) {
      for (const task of TASKS) {
        const setting = settingFor(variant, query, task);
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
}

/**
 * Tuning of the keyword (BM25) vector on the `tune` queries of both retrieval sets: the same tokeniser and vectors the
 * index stores, scored in memory with Qdrant's IDF formula (so a grid of settings takes minutes,
 * not a reindex each). `npm run bench:quality -- --tune` prints the grid.
 */
import { personaEmbeddingText } from '../shared/persona/personaText';
import { keywordDocumentVector, keywordQueryVector, keywordTokens, type KeywordSettings, type SparseVector } from '../shared/vectorIndex/keywordVector';
import type { PersonaDataset, RetrievalSet } from './personaDataset';
import { QUALITY_DEPTH, retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics';

/** Qdrant's `fancy_idf` (lib/segment/src/data_types/query_context.rs). */
const idf = (n: number, df: number) => Math.log((n - df + 0.5) / (df + 0.5) + 1);

/** An in-memory sparse index with IDF-modified dot-product scoring. */
export function sparseIndex(vectors: SparseVector[]) {
  const postings = new Map<number, { doc: number; value: number }[]>();
  vectors.forEach((vector, doc) =>
    vector.indices.forEach((index, i) => {
      let list = postings.get(index);
      if (!list) postings.set(index, (list = []));
      list.push({ doc, value: vector.values[i]! });
    }),
  );
  const own = new Float64Array(vectors.length);
  /** Scores into `scores` (left zero elsewhere); returns the documents scored. */
  const score = (query: SparseVector, scores: Float64Array): number[] => {
    scores.fill(0);
    const touched: number[] = [];
    query.indices.forEach((index, i) => {
      const list = postings.get(index);
      if (!list) return;
      const weight = query.values[i]! * idf(vectors.length, list.length);
      for (const { doc, value } of list) {
        if (scores[doc] === 0) touched.push(doc);
        scores[doc] = scores[doc]! + weight * value;
      }
    });
    return touched;
  };
  return {
    score,
    /** Documents ranked for the query; `exclude` is left out. */
    rank(query: SparseVector, exclude: number): number[] {
      return score(query, own)
        .filter((doc) => doc !== exclude)
        .sort((a, b) => own[b]! - own[a]! || a - b);
    },
  };
}

export interface TuningRow {
  settings: KeywordSettings;
  search: RetrievalMetrics;
  similar: RetrievalMetrics;
}

/** Mean token count of the indexed texts under `settings`: the `averageLength` those settings should use. */
export const meanTokenCount = (dataset: PersonaDataset, settings: KeywordSettings): number =>
  dataset.personas.reduce((sum, entry) => sum + keywordTokens(personaEmbeddingText(entry.persona), settings).length, 0) / dataset.personas.length;

/**
 * Rank (1-based, `self` ignored) of `target` by `scores` among the scored documents, ties in document
 * order as `rank` sorts them: a count, not a sort, so a grid of settings over thousands of queries
 * takes minutes.
 */
function rankByCount(scores: Float64Array, touched: readonly number[], self: number, target: number): number {
  const own = scores[target]!;
  if (own === 0) return Infinity;
  let rank = 1;
  for (const doc of touched) {
    if (doc === self || doc === target) continue;
    if (scores[doc]! > own || (scores[doc] === own && doc < target)) rank++;
  }
  return rank > QUALITY_DEPTH ? Infinity : rank;
}

/** The settings' figures on the `tune` queries of one retrieval set (search: the query persona's text; similar: its stored vector). */
export function evaluateKeywordSettings(dataset: PersonaDataset, set: RetrievalSet, settings: KeywordSettings): TuningRow {
  const documents = dataset.personas.map((entry) => keywordDocumentVector(personaEmbeddingText(entry.persona), settings));
  const index = sparseIndex(documents);
  const scores = new Float64Array(documents.length);
  const searchRanks: number[] = [];
  const similarRanks: number[] = [];
  for (const { self, targets, split } of set.queries) {
    if (split !== 'tune') continue;
    const searched = index.score(keywordQueryVector(dataset.personas[self]!.text, settings), scores);
    for (const target of targets) searchRanks.push(rankByCount(scores, searched, self, target));
    const similar = index.score(documents[self]!, scores);
    for (const target of targets) similarRanks.push(rankByCount(scores, similar, self, target));
  }
  return { settings, search: retrievalMetrics(searchRanks), similar: retrievalMetrics(similarRanks) };
}

/** The grid's rows one by one (each takes seconds), so a caller can print them as they come: each setting on every set. */
export function* tuneKeywordSettings(dataset: PersonaDataset, sets: readonly RetrievalSet[], base: KeywordSettings): Generator<{ settings: KeywordSettings; rows: TuningRow[] }> {
  for (const stem of [false, true])
    for (const dropStopwords of [false, true]) {
      // Each tokenisation gets its own average length, as KEYWORD_SETTINGS would if it were chosen.
      const averageLength = Math.round(meanTokenCount(dataset, { ...base, stem, dropStopwords }));
      for (const k1 of [0.6, 0.9, 1.2, 1.5, 2.0])
        for (const b of [0.25, 0.5, 0.75, 1.0]) {
          const settings = { ...base, stem, dropStopwords, k1, b, averageLength };
          yield { settings, rows: sets.map((set) => evaluateKeywordSettings(dataset, set, settings)) };
        }
    }
}

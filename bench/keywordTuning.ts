/**
 * Tuning of the keyword (BM25) vector on the dev pairs only: the same tokeniser and vectors the
 * index stores, scored in memory with Qdrant's IDF formula (so a grid of settings takes seconds,
 * not a reindex each). `npm run bench:quality -- --tune` prints the grid.
 */
import { personaEmbeddingText } from '../shared/persona/personaText';
import { keywordDocumentVector, keywordQueryVector, type KeywordSettings, type SparseVector } from '../shared/vectorIndex/keywordVector';
import type { DevPair, PersonaDataset } from './personaDataset';
import { retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics';

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

export function evaluateKeywordSettings(dataset: PersonaDataset, pairs: readonly DevPair[], settings: KeywordSettings): TuningRow {
  const position = new Map(dataset.personas.map((entry, i) => [entry.sourceId, i]));
  const documents = dataset.personas.map((entry) => keywordDocumentVector(personaEmbeddingText(entry.persona), settings));
  const index = sparseIndex(documents);
  const rankOf = (ranking: number[], target: number) => {
    const at = ranking.indexOf(target);
    return at < 0 ? Infinity : at + 1;
  };
  const searchRanks: number[] = [];
  const similarRanks: number[] = [];
  for (const pair of pairs) {
    const a = position.get(pair.a)!;
    const b = position.get(pair.b)!;
    searchRanks.push(rankOf(index.rank(keywordQueryVector(dataset.personas[a]!.text, settings), a), b));
    similarRanks.push(rankOf(index.rank(documents[a]!, a), b));
  }
  return { settings, search: retrievalMetrics(searchRanks), similar: retrievalMetrics(similarRanks) };
}

export function tuneKeywordSettings(dataset: PersonaDataset, pairs: readonly DevPair[], base: KeywordSettings): TuningRow[] {
  const rows: TuningRow[] = [];
  for (const stem of [false, true])
    for (const dropStopwords of [false, true])
      for (const k1 of [0.6, 0.9, 1.2, 1.5, 2.0])
        for (const b of [0.25, 0.5, 0.75, 1.0]) rows.push(evaluateKeywordSettings(dataset, pairs, { ...base, stem, dropStopwords, k1, b }));
  return rows;
}

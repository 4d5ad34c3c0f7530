import { stemmer } from 'stemmer';
import { eng } from 'stopword';

/**
 * The `keywords` vector: a sparse BM25 vector of a persona's text. The client computes the term
 * frequency part of BM25 (saturation by k1, length normalisation by b); the IDF part is left to
 * Qdrant's `modifier: idf`, which multiplies each query weight by IDF computed from the
 * collection's current statistics. A query vector has weight 1 per distinct term, so the dot
 * product Qdrant computes is exactly
 *
 *   score(q, d) = Σ_{t ∈ q ∩ d} idf(t) · tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))
 *
 * with avgdl fixed here (a client cannot know the collection's) rather than measured live.
 */

export interface KeywordSettings {
  /** Term-frequency saturation: higher lets repeated words count for more. */
  k1: number;
  /** Length normalisation: 0 ignores the text's length, 1 divides fully by it. */
  b: number;
  /** The text length (in tokens) at which no length normalisation applies. */
  averageLength: number;
  /** Porter-stem tokens ("plays", "playing" → "play"). */
  stem: boolean;
  /** Drop English stop words ("i", "the", "and"). */
  dropStopwords: boolean;
}

/**
 * Tuned on all 7,559 ../shared/data/personas dev pairs (`npm run bench:quality -- --tune`, the grid in
 * bench/results/keyword-tuning.md, README "Search quality"): the best of k1 0.6–2 × b 0.25–1, with or
 * without stemming and stop words. Keeping stop words measured the same (search MRR +0.0005) with
 * vectors twice as long, so they are dropped. averageLength is the mean token count of those
 * personas' indexed texts. Changing any of these changes every stored vector: build a new collection
 * with `personas reindex`.
 */
export const KEYWORD_SETTINGS: KeywordSettings = {
  k1: 2,
  b: 1,
  averageLength: 22,
  stem: false,
  dropStopwords: true,
};

export interface SparseVector {
  indices: number[];
  values: number[];
}

const STOPWORDS = new Set(eng);

/** Lower-cased runs of letters and digits; apostrophes inside words are dropped ("don't" → "dont"). */
export function keywordTokens(text: string, settings: KeywordSettings = KEYWORD_SETTINGS): string[] {
  const words = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/(\p{L})['’](\p{L})/gu, '$1$2')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word !== '');
  const kept = settings.dropStopwords ? words.filter((word) => !STOPWORDS.has(word)) : words;
  return settings.stem ? kept.map((word) => stemmer(word)) : kept;
}

/**
 * A term's dimension: FNV-1a (32 bit) of its UTF-8 bytes, so every writer and reader agrees
 * without a shared vocabulary. Two terms sharing a dimension is rare (about one pair in 4·10⁹)
 * and only merges their counts.
 */
export function termIndex(term: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(term, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function termCounts(tokens: readonly string[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const token of tokens) {
    const index = termIndex(token);
    counts.set(index, (counts.get(index) ?? 0) + 1);
  }
  return counts;
}

const sortedVector = (entries: Iterable<[number, number]>): SparseVector => {
  const sorted = [...entries].sort((a, b) => a[0] - b[0]);
  return { indices: sorted.map(([index]) => index), values: sorted.map(([, value]) => value) };
};

/** BM25's term-frequency part of every term of a document. */
export function keywordDocumentVector(text: string, settings: KeywordSettings = KEYWORD_SETTINGS): SparseVector {
  const tokens = keywordTokens(text, settings);
  const lengthFactor = 1 - settings.b + (settings.b * tokens.length) / settings.averageLength;
  return sortedVector(
    [...termCounts(tokens)].map(([index, tf]) => [index, (tf * (settings.k1 + 1)) / (tf + settings.k1 * lengthFactor)]),
  );
}

/** Weight 1 per distinct query term: Qdrant's IDF modifier turns each into idf(term). */
export function keywordQueryVector(text: string, settings: KeywordSettings = KEYWORD_SETTINGS): SparseVector {
  return sortedVector([...termCounts(keywordTokens(text, settings)).keys()].map((index) => [index, 1]));
}

/**
 * The paraphrase development set (bench/paraphrase-pairs.jsonl, bench/PARAPHRASES.md): 340 personas
 * of ../shared/data/personas, each with a text written for this project that says the same persona
 * in other words. The file holds the persona ids and our texts only, never the dataset's texts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';

export const PARAPHRASE_FILE = path.join(PROJECT_ROOT, 'bench', 'paraphrase-pairs.jsonl');

/** `tune`: fusion and keyword settings may be chosen on it; `held-out`: reported only, never tuned on. */
export type QuerySplit = 'tune' | 'held-out';

export interface ParaphrasePair {
  /** The dataset id (`spcpc-…`, `spcnew-…`) of the persona the text says again. */
  id: string;
  split: QuerySplit;
  /** Our text: the same persona, sentence by sentence, in other words. */
  text: string;
}

export const loadParaphrasePairs = (): ParaphrasePair[] =>
  readFileSync(PARAPHRASE_FILE, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ParaphrasePair);

/** How many personas of each origin the set paraphrases (about the dataset's 62 : 38). */
export const PARAPHRASE_SAMPLE = { spc_personachat: 210, spc_new_synthetic: 130 } as const;

const sentenceSet = (text: string) =>
  new Set(text.split(/(?<=[.!?])\s+/).map((sentence) => sentence.trim().toLowerCase()).filter((sentence) => sentence !== ''));

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * The rule that chose the personas (so anyone can check the file against it): per origin, the
 * personas in order of sha256("persona-db-paraphrase:" + id), skipping one that shares two or more
 * sentences with a persona already chosen (PersonaChat reuses sentences across personas: two chosen
 * near-duplicates would ask for the same paraphrase twice), until PARAPHRASE_SAMPLE are chosen.
 */
export function selectParaphraseTargets(records: ReadonlyArray<{ id: string; text: string; origin: string }>): string[] {
  const chosen: Array<Set<string>> = [];
  const ids: string[] = [];
  for (const [origin, count] of Object.entries(PARAPHRASE_SAMPLE)) {
    const candidates = records
      .filter((record) => record.origin === origin)
      .map((record) => ({ record, key: sha256(`persona-db-paraphrase:${record.id}`).toString('hex') }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let taken = 0;
    for (const { record } of candidates) {
      if (taken === count) break;
      const own = sentenceSet(record.text);
      if (chosen.some((other) => [...other].filter((sentence) => own.has(sentence)).length >= 2)) continue;
      chosen.push(own);
      ids.push(record.id);
      taken++;
    }
  }
  return ids;
}

/** A third of the pairs, by sha256("persona-db-paraphrase-split:" + id), is held out. */
export const paraphraseSplitOf = (id: string): QuerySplit => (sha256(`persona-db-paraphrase-split:${id}`)[0]! % 3 === 0 ? 'held-out' : 'tune');

/** How many content words (the keyword index's tokens: stop words dropped, unstemmed) two texts share. */
export interface WordOverlap {
  /** |A ∩ B| / |A ∪ B| of the two texts' distinct content words, averaged over pairs. */
  jaccard: number;
  /** Share of the query's distinct content words that the target persona also has, averaged over pairs. */
  queryWordsInTarget: number;
  pairs: number;
}

export function wordOverlap(pairs: ReadonlyArray<{ query: string; target: string }>, tokens: (text: string) => string[]): WordOverlap {
  let jaccard = 0;
  let covered = 0;
  for (const { query, target } of pairs) {
    const q = new Set(tokens(query));
    const t = new Set(tokens(target));
    const shared = [...q].filter((word) => t.has(word)).length;
    jaccard += shared / Math.max(q.size + t.size - shared, 1);
    covered += shared / Math.max(q.size, 1);
  }
  return { jaccard: jaccard / Math.max(pairs.length, 1), queryWordsInTarget: covered / Math.max(pairs.length, 1), pairs: pairs.length };
}

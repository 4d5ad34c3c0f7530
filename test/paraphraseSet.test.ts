import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadParaphrasePairs, PARAPHRASE_SAMPLE, paraphraseSplitOf, selectParaphraseTargets, wordOverlap } from '../bench/paraphraseSet';
import { keywordTokens } from '../shared/vectorIndex/keywordVector';
import { PERSONAS_DATA_DIR, sharedReason } from './support/sharedAssets';

/**
 * The paraphrase development set (bench/paraphrase-pairs.jsonl, described in bench/PARAPHRASES.md):
 * our texts and the dataset's ids, chosen by a stated rule, with a held-out third.
 */
const pairs = loadParaphrasePairs();

describe('the paraphrase development set', () => {
  it('has at least 300 pairs, one per persona, each split by its stated rule, about a third held out', () => {
    const total = PARAPHRASE_SAMPLE.spc_personachat + PARAPHRASE_SAMPLE.spc_new_synthetic;
    expect(pairs).toHaveLength(total);
    expect(total).toBeGreaterThanOrEqual(300);
    expect(new Set(pairs.map((pair) => pair.id)).size).toBe(pairs.length);
    for (const pair of pairs) {
      expect(pair.split, pair.id).toBe(paraphraseSplitOf(pair.id));
      expect(pair.text.trim().length, pair.id).toBeGreaterThan(20);
    }
    const heldOut = pairs.filter((pair) => pair.split === 'held-out').length;
    expect(heldOut / pairs.length).toBeGreaterThan(0.25);
    expect(heldOut / pairs.length).toBeLessThan(0.42);
  });

  const records = PERSONAS_DATA_DIR
    ? readFileSync(path.join(PERSONAS_DATA_DIR, 'personas.jsonl'), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { id: string; text: string; origin: string })
    : [];
  const byId = new Map(records.map((record) => [record.id, record]));

  it.skipIf(!PERSONAS_DATA_DIR)(`paraphrases exactly the personas the selection rule picks, in its order ${sharedReason(PERSONAS_DATA_DIR, 'data/personas')}`, () => {
    expect(pairs.map((pair) => pair.id)).toEqual(selectParaphraseTargets(records));
  });

  it.skipIf(!PERSONAS_DATA_DIR)(`copies no sentence of the dataset and shares few content words with its persona ${sharedReason(PERSONAS_DATA_DIR, 'data/personas')}`, () => {
    for (const pair of pairs) {
      const persona = byId.get(pair.id)!.text.toLowerCase();
      for (const sentence of pair.text.toLowerCase().split(/(?<=[.!?])\s+/)) {
        if (sentence.split(/\s+/).length >= 5) expect(persona, `${pair.id}: "${sentence}"`).not.toContain(sentence.replace(/[.!?]$/, ''));
      }
    }
    const overlap = wordOverlap(pairs.map((pair) => ({ query: pair.text, target: byId.get(pair.id)!.text })), (text) => keywordTokens(text));
    // Measured: Jaccard 0.046, 7.9% of a paraphrase's content words in its persona; dev pairs 0.679 and 79% (bench/PARAPHRASES.md).
    expect(overlap.jaccard).toBeLessThan(0.08);
    expect(overlap.queryWordsInTarget).toBeLessThan(0.12);
  });
});

import { expect } from 'vitest';

import type { Embedder } from '../../shared/embedding';

/** Texts of very different lengths: one word, a sentence, a persona, and one past every token limit. */
export function mixedLengthTexts(persona: string): string[] {
  return ['jazz', 'A stoic philosopher.', persona, `${persona} `.repeat(40).trim()];
}

/**
 * Asserts that a text's vector does not depend on what it is embedded with: each text embedded
 * alone, then inside one call among texts of very different lengths (and the empty text), gives
 * the same bits; a query (embedded alone) equals the document embedding of the query prefix + text
 * taken from a mixed call. Returns how many vectors were compared.
 */
export async function expectBatchIndependent(embedder: Embedder, texts: readonly string[]): Promise<number> {
  const alone: number[][] = [];
  for (const text of texts) alone.push((await embedder.embedDocuments([text]))[0]!);
  const others = [...texts].reverse().map((text) => `${text} ${text}`);
  const mixed = await embedder.embedDocuments([...others, ...texts, '', ...texts]);
  const first = mixed.slice(others.length, others.length + texts.length);
  const second = mixed.slice(others.length + texts.length + 1);
  for (const [i, text] of texts.entries()) {
    expect(first[i], `text ${i} (${text.length} characters) among others`).toEqual(alone[i]);
    expect(second[i], `text ${i} again in the same call`).toEqual(alone[i]);
  }
  const prefixed = await embedder.embedDocuments([...others, ...texts.map((text) => embedder.model.queryPrefix + text)]);
  for (const [i, text] of texts.entries()) {
    expect(await embedder.embedQuery(text), `query ${i}`).toEqual(prefixed[others.length + i]);
  }
  return texts.length * 3;
}

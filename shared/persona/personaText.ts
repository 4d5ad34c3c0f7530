import { createHash } from 'node:crypto';
import type { Persona } from './schema';

/** A value as a sentence: its own closing punctuation kept, a full stop added where it has none. */
const asSentence = (value: string): string => {
  const trimmed = value.trim();
  return /[.!?…]["'”’)\]]*$/u.test(trimmed) ? trimmed : `${trimmed}.`;
};

/**
 * The text that represents a persona in the vector index. Only semantic fields, in a fixed
 * order, with absent fields left out, so that a change of metadata (version, updated_at) or of
 * the traits (indexed as their own vector) never changes the text and never re-embeds.
 *
 * The values are written as plain sentences, without field labels ("Beliefs:", "Expertise:"):
 * a label that every persona carries says nothing about which persona a query means, but it is in
 * every document vector and in no free-text query, so it pulls all documents toward the same
 * point and away from the queries (with labels, semantic search on the dev pairs found 66% of
 * the targets in the top 10; without, 87%: README "Search quality"). Humor and emotional style
 * keep theirs: "low" or "reserved" alone would not say what they describe.
 */
export function personaEmbeddingText(persona: Pick<Persona, 'name' | 'domain' | 'modes' | 'beliefs' | 'signature_phrases' | 'humor_usage' | 'emotional_style'>): string {
  const lines: string[] = [asSentence(persona.name)];
  const list = (values: readonly string[] | undefined) => {
    if (values && values.length > 0) lines.push(asSentence(values.join(', ')));
  };
  const sentences = (values: readonly string[] | undefined) => {
    if (values && values.length > 0) lines.push(values.map(asSentence).join(' '));
  };
  list(persona.domain);
  list(persona.modes);
  sentences(persona.beliefs);
  sentences(persona.signature_phrases);
  if (persona.humor_usage) lines.push(`Humor: ${persona.humor_usage}.`);
  if (persona.emotional_style) lines.push(asSentence(`Emotional style: ${persona.emotional_style}`));
  return lines.join('\n');
}

export const textHash = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);

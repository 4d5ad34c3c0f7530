import { createHash } from 'node:crypto';
import type { Persona } from './schema';

/**
 * The text that represents a persona in the vector index. Only semantic fields, in a fixed
 * order, with absent fields left out, so that a change of metadata (version, updated_at) or of
 * the traits (indexed as their own vector) never changes the text and never re-embeds.
 */
export function personaEmbeddingText(persona: Pick<Persona, 'name' | 'domain' | 'modes' | 'beliefs' | 'signature_phrases' | 'humor_usage' | 'emotional_style'>): string {
  const lines: string[] = [`${persona.name}.`];
  const list = (label: string, values: readonly string[] | undefined) => {
    if (values && values.length > 0) lines.push(`${label}: ${values.join('; ')}.`);
  };
  list('Expertise', persona.domain);
  list('Conversational modes', persona.modes);
  list('Beliefs', persona.beliefs);
  list('Signature phrases', persona.signature_phrases);
  if (persona.humor_usage) lines.push(`Humor: ${persona.humor_usage}.`);
  if (persona.emotional_style) lines.push(`Emotional style: ${persona.emotional_style}.`);
  return lines.join('\n');
}

export const textHash = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);

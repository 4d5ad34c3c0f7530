import { describe, expect, it } from 'vitest';
import { personaEmbeddingText, textHash } from '../shared/persona/personaText';
import type { Persona } from '../shared/persona/schema';
import { einstein } from './support/apiClient';

const persona = {
  ...einstein,
  id: '3f2b8c1e-8f7a-4f7e-9a53-2f0d9c6c1b2a',
  version: 3,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-02T00:00:00.000Z',
} as Persona;

describe('personaEmbeddingText', () => {
  it('holds every semantic field in a fixed order, as plain sentences without field labels', () => {
    expect(personaEmbeddingText(persona)).toBe(
      [
        'Albert Einstein.',
        'physics, philosophy.',
        'Educator, Debater.',
        'Imagination is more important than knowledge.',
        'E=mc².',
        'Humor: low.',
        'Emotional style: reserved.',
      ].join('\n'),
    );
  });

  it('ends each statement once: its own closing punctuation is kept, a full stop added only where there is none', () => {
    const text = personaEmbeddingText({ ...persona, beliefs: ['I am 32.', 'Do you like jazz?', 'I never give up!', 'Say "maybe."', 'no full stop'] });
    expect(text.split('\n')[3]).toBe('I am 32. Do you like jazz? I never give up! Say "maybe." no full stop.');
  });

  it('does not change with metadata or traits, so such changes never re-embed', () => {
    const changed = { ...persona, version: 9, updated_at: '2027-01-01T00:00:00.000Z', traits: { ...persona.traits, openness: 0.1 } };
    expect(textHash(personaEmbeddingText(changed))).toBe(textHash(personaEmbeddingText(persona)));
  });

  it('leaves absent fields out instead of writing "undefined" or empty labels', () => {
    const minimal = { ...persona, modes: [], beliefs: [], signature_phrases: [], humor_usage: undefined, emotional_style: undefined };
    const text = personaEmbeddingText(minimal);
    expect(text).toBe('Albert Einstein.\nphysics, philosophy.');
    expect(text).not.toMatch(/undefined|null/);
  });

  it('changes when a semantic field changes', () => {
    expect(textHash(personaEmbeddingText({ ...persona, beliefs: ['God does not play dice'] }))).not.toBe(textHash(personaEmbeddingText(persona)));
  });
});

/**
 * Deterministic benchmark personas: the same seed gives the same personas on every machine, so
 * runs compare. They are shaped like real records (several domains, beliefs as sentences,
 * signature phrases), so the embedded texts have realistic lengths, unlike the tests' minimal ones.
 */
import { createHash } from 'node:crypto';
import type { Persona, PersonaInput } from '../shared/persona/schema';
import { HUMOR_LEVELS } from '../shared/persona/schema';
import { mulberry32 } from '../lib/seededRandom';

export const BENCH_SEED = 20261127;

const FIRST = 'Ada Alan Grace Marie Nikola Rosalind Carl Hypatia Isaac Emmy Richard Julia Frida Leo Maya Omar Priya Sofia Tariq Yuki'.split(' ');
const LAST = 'Lovelace Turing Hopper Curie Tesla Franklin Sagan Noether Feynman Child Kahlo Tolstoy Angelou Khayyam Patel Rossi Haddad Tanaka'.split(' ');
const DOMAINS = `physics mathematics philosophy history cooking music painting poetry economics biology chemistry astronomy
  medicine law architecture film theatre chess gardening psychology linguistics sociology engineering robotics climate
  oceanography geology sports nutrition education journalism finance design photography dance archaeology`.split(/\s+/);
const MODES = 'Educator Debater Storyteller Coach Critic Mentor Interviewer Comedian Counselor Explorer Skeptic Advocate'.split(' ');
const STYLES = ['calm', 'reserved', 'warm', 'passionate', 'playful', 'stoic', 'intense', 'gentle and patient', 'dry and witty', 'exuberant'];
const SUBJECTS = `curiosity imagination discipline kindness evidence practice patience doubt humility courage beauty rigor
  simplicity tradition change failure wonder honesty craft community silence play memory`.split(/\s+/);
const VERBS = 'matters more than anything in teaching|is the root of every discovery|beats talent in the long run|should be taught early|is how we learn to see|makes people better|is underrated by experts|needs to be practised daily|keeps a mind young|opens every door'.split('|');
const PHRASES = `Let us think it through|Here is the thing|Try it and see|Show me the evidence|Simple, but not simpler|Back to first principles
  |Every mistake is data|Slow down to go fast|Ask a better question|Measure twice|Make it beautiful|Stay curious`.split('|').map((phrase) => phrase.trim());

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const pickSome = <T>(random: () => number, items: readonly T[], min: number, max: number): T[] => {
  const count = min + Math.floor(random() * (max - min + 1));
  const chosen = new Set<T>();
  while (chosen.size < count) chosen.add(pick(random, items));
  return [...chosen];
};
const score = (random: () => number) => Math.round(random() * 100) / 100;

/** Persona number `n` of the corpus: a function of (seed, n) only, so any slice can be made alone. */
export function benchPersona(n: number, seed = BENCH_SEED): PersonaInput {
  const random = mulberry32(seed ^ Math.imul(n + 1, 0x9e3779b1));
  return {
    name: `${pick(random, FIRST)} ${pick(random, LAST)} ${n}`,
    domain: pickSome(random, DOMAINS, 1, 3),
    modes: pickSome(random, MODES, 1, 3),
    humor_usage: pick(random, HUMOR_LEVELS),
    emotional_style: pick(random, STYLES),
    beliefs: Array.from({ length: 2 + Math.floor(random() * 4) }, () => `${pick(random, SUBJECTS)} ${pick(random, VERBS)}`.replace(/^./, (c) => c.toUpperCase())),
    signature_phrases: pickSome(random, PHRASES, 1, 3),
    traits: {
      openness: score(random),
      conscientiousness: score(random),
      extraversion: score(random),
      agreeableness: score(random),
      neuroticism: score(random),
    },
  };
}

/** Persona `n` as the table would hold it, with a deterministic UUID (for seeding the index directly). */
export function benchStoredPersona(n: number, seed = BENCH_SEED): Persona {
  const hex = createHash('sha256').update(`persona-db-bench:${seed}:${n}`).digest('hex');
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  const at = '2026-01-01T00:00:00.000Z';
  return { id, ...benchPersona(n, seed), version: 1, created_at: at, updated_at: at };
}

/** Deterministic search queries (what a user might type). */
export function benchQueries(count: number, seed = BENCH_SEED + 1): string[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => `a ${pick(random, STYLES)} ${pick(random, MODES).toLowerCase()} who knows ${pick(random, DOMAINS)} and values ${pick(random, SUBJECTS)}`);
}

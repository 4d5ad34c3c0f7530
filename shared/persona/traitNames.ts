/** The Big Five, in the order of every response; no zod here, so browser code can import it too. */
export const TRAIT_NAMES = [
  'openness',
  'conscientiousness',
  'extraversion',
  'agreeableness',
  'neuroticism',
] as const;
export type TraitName = (typeof TRAIT_NAMES)[number];

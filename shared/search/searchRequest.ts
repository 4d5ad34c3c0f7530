import { z } from 'zod';
import { fieldErrorsFromZod, jsonTypeOf, validationProblem } from '../http/problem';
import { isPlainObject } from '../persona/mergePatch';
import { HUMOR_LEVELS, TRAIT_NAMES, nonBlankString, personaLimits, stringOfAtMost, traitsSchema, type TraitName } from '../persona/schema';
import type { KeywordWeightPolicy } from './keywordEvidence';

/**
 * The search requests: the one definition of their validation, their TypeScript types and their
 * JSON Schema in the API document.
 */

export const SEARCH_MODES = ['hybrid', 'semantic', 'keyword', 'personality', 'blend'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];

/** How hybrid and blend combine their rankings: Qdrant's reciprocal rank fusion or distribution-based score fusion. */
export const FUSIONS = ['rrf', 'dbsf'] as const;
export type Fusion = (typeof FUSIONS)[number];

/** The rankings a mode is made of; hybrid and blend fuse theirs. */
export const RANKINGS = ['semantic', 'keyword', 'personality'] as const;
export type Ranking = (typeof RANKINGS)[number];

export const MODE_RANKINGS = {
  semantic: ['semantic'],
  keyword: ['keyword'],
  personality: ['personality'],
  hybrid: ['semantic', 'keyword'],
  blend: ['semantic', 'keyword', 'personality'],
} as const satisfies Record<SearchMode, readonly Ranking[]>;

/** GET /personas/{id}/similar without `mode`. */
export const SIMILAR_DEFAULT_MODE: SearchMode = 'hybrid';

/**
 * RRF as hybrid and blend send it to Qdrant (`{"rrf": {"k", "weights"}}`, Qdrant 1.19): a ranking's
 * position p (0-based) scores weight-scaled 1 / ((p + 1) / weight + k − 1). Semantic and personality
 * weigh 1 unless a request says otherwise; keyword's weight is chosen per query from the keyword
 * ranking's own evidence (KEYWORD_WEIGHT_POLICY, keywordEvidence.ts). Measured with a real sentence
 * encoder on near-duplicates and paraphrases (docs/search.md "Search quality",
 * `npm run bench:quality -- --tune-fusion`).
 */
export const RRF_K = 2;
export const DEFAULT_RRF_WEIGHTS = { semantic: 1, personality: 1 } as const satisfies Record<Exclude<Ranking, 'keyword'>, number>;

/**
 * Keyword's RRF weight without one in the request: `strong` when, among the keyword ranking's best
 * `candidates`, one (besides an exact copy of the query) has at least `threshold` of the query's
 * words; `weak` otherwise.
 */
export const KEYWORD_WEIGHT_POLICY = { candidates: 10, threshold: 0.6, strong: 2, weak: 0.1 } as const satisfies KeywordWeightPolicy;

/** The default weight of a ranking, in words (for the API document). */
export const defaultWeightText = (ranking: Ranking): string =>
  ranking === 'keyword'
    ? `keyword ${KEYWORD_WEIGHT_POLICY.strong} when one of its best ${KEYWORD_WEIGHT_POLICY.candidates} candidates (an exact copy of the query aside) has at least ${KEYWORD_WEIGHT_POLICY.threshold * 100}% of the query's words, else ${KEYWORD_WEIGHT_POLICY.weak}`
    : `${ranking} ${DEFAULT_RRF_WEIGHTS[ranking]}`;

export const MAX_RRF_WEIGHT = 100;

/** Bounds of every search and similar request. */
export const searchLimits = {
  defaultLimit: 10,
  maxLimit: 100,
  maxOffset: 1000,
  queryLength: 1000,
} as const;

const anyOf = <T extends z.ZodType>(item: T, maxItems: number) =>
  z
    .array(item)
    .min(1, { message: 'must have at least one item' })
    .max(maxItems, { message: `must have at most ${maxItems} items` });

const label = (maxLength: number) => stringOfAtMost(maxLength, z.string().min(1, { message: 'must not be empty', abort: true }));

const traitBound = z
  .number({ message: 'must be a number between 0 and 1' })
  .min(0, { message: 'must be between 0 and 1' })
  .max(1, { message: 'must be between 0 and 1' });

/** The one rule of the search schemas that JSON Schema cannot state; the API document names it with the 400 it causes. */
export const GTE_ABOVE_LTE = 'gte must not be greater than lte';

const traitRangeSchema = z
  .strictObject({ gte: traitBound.optional(), lte: traitBound.optional() })
  .refine((range) => range.gte !== undefined || range.lte !== undefined, { message: 'give gte, lte or both' })
  .refine((range) => range.gte === undefined || range.lte === undefined || range.gte <= range.lte, {
    message: GTE_ABOVE_LTE,
    path: ['gte'],
  })
  // The first refinement, as the document states it; gte ≤ lte is the one rule JSON Schema cannot state.
  .meta({ description: 'Inclusive bounds of a trait score: gte ≤ score ≤ lte; gte must not be greater than lte.', example: { gte: 0.7 }, minProperties: 1 });

const traitRangesSchema = z
  .strictObject(
    Object.fromEntries(TRAIT_NAMES.map((name) => [name, traitRangeSchema.optional()])) as Record<
      TraitName,
      z.ZodOptional<typeof traitRangeSchema>
    >,
  )
  .meta({ description: 'Ranges of Big Five trait scores; every given range must hold.' });

export const searchFilterSchema = z
  .strictObject({
    domain: anyOf(label(personaLimits.labelLength), personaLimits.labelCount)
      .optional()
      .meta({ description: 'Personas with at least one of these domains (exact, case-sensitive match).', example: ['physics'] }),
    modes: anyOf(label(personaLimits.labelLength), personaLimits.labelCount)
      .optional()
      .meta({ description: 'Personas with at least one of these conversational modes (exact match).', example: ['Educator'] }),
    humor_usage: anyOf(z.enum(HUMOR_LEVELS, { message: `must be one of ${HUMOR_LEVELS.join(', ')}` }), HUMOR_LEVELS.length)
      .optional()
      .meta({ description: 'Personas whose humor_usage is one of these; personas without one never match.', example: ['low', 'medium'] }),
    emotional_style: anyOf(label(personaLimits.emotionalStyleLength), personaLimits.labelCount)
      .optional()
      .meta({ description: 'Personas whose emotional_style is exactly one of these.', example: ['reserved'] }),
    traits: traitRangesSchema.optional(),
  })
  .meta({
    description: 'Conditions on the indexed persona fields. Every given field must match (AND); a list matches when any of its values does (OR).',
    example: { domain: ['physics', 'philosophy'], traits: { openness: { gte: 0.7 } } },
  });

export type SearchFilter = z.output<typeof searchFilterSchema>;

/** The filter fields that take a list of values: every field but `traits`. */
export const LIST_FILTER_FIELDS = (Object.keys(searchFilterSchema.shape) as Array<keyof SearchFilter>).filter(
  (field): field is Exclude<keyof SearchFilter, 'traits'> => field !== 'traits',
);

const rrfWeight = z
  .number({ message: `must be a number greater than 0 and at most ${MAX_RRF_WEIGHT}` })
  .gt(0, { message: `must be greater than 0 (leave the ranking out with another mode instead) and at most ${MAX_RRF_WEIGHT}` })
  .max(MAX_RRF_WEIGHT, { message: `must be greater than 0 and at most ${MAX_RRF_WEIGHT}` });

const rrfWeightsSchema = z
  .strictObject(Object.fromEntries(RANKINGS.map((ranking) => [ranking, rrfWeight.optional()])) as Record<Ranking, z.ZodOptional<typeof rrfWeight>>)
  .meta({
    description:
      `RRF weight of each ranking the mode fuses (fusion rrf only); a ranking left out keeps its default (${RANKINGS.map(defaultWeightText).join('; ')}). ` +
      'A weight w makes position p of that ranking count as position p / w would at weight 1: keyword 3 lets a BM25 hit at rank 3 count as much as a meaning hit at rank 1.',
    example: { semantic: 1, keyword: 2 },
  });

/** Options that POST /personas/search and GET /personas/{id}/similar share. */
const searchOptions = {
  mode: z
    .enum(SEARCH_MODES, { message: `must be one of ${SEARCH_MODES.join(', ')}` })
    .optional()
    .meta({
      description:
        "What 'similar' means. `hybrid`: the meaning ranking and the keyword ranking fused (see `fusion`); the default for " +
        'a search with `query`. `semantic`: the text embedding alone (cosine similarity). `keyword`: BM25 over the words ' +
        '(exact words, names, rare terms). `personality`: the Big Five profile (Euclidean distance); the default for a ' +
        `search with \`traits\` only. \`blend\`: meaning, keywords and profile fused. GET /personas/{id}/similar defaults to \`${SIMILAR_DEFAULT_MODE}\`.`,
    }),
  fusion: z
    .enum(FUSIONS, { message: `must be one of ${FUSIONS.join(', ')}` })
    .default('rrf')
    .meta({
      description:
        `How \`hybrid\` and \`blend\` fuse their rankings: \`rrf\` (reciprocal rank fusion, by rank, with k = ${RRF_K} and \`weights\`) or \`dbsf\` (distribution-based ` +
        'score fusion: each ranking\'s scores normalised by their mean ± 3 standard deviations, then summed).',
    }),
  weights: rrfWeightsSchema.optional(),
  explain: z
    .boolean({ message: 'must be true or false' })
    .default(false)
    .meta({ description: 'true: every result carries `explain`, its rank and score in each ranking the mode uses.' }),
  filter: searchFilterSchema.optional(),
  limit: z
    .int({ message: `must be an integer from 1 to ${searchLimits.maxLimit}` })
    .min(1, { message: `must be an integer from 1 to ${searchLimits.maxLimit}` })
    .max(searchLimits.maxLimit, { message: `must be an integer from 1 to ${searchLimits.maxLimit}` })
    .default(searchLimits.defaultLimit)
    .meta({ description: 'Results per page.' }),
  offset: z
    .int({ message: `must be an integer from 0 to ${searchLimits.maxOffset}` })
    .min(0, { message: `must be an integer from 0 to ${searchLimits.maxOffset}` })
    .max(searchLimits.maxOffset, { message: `must be an integer from 0 to ${searchLimits.maxOffset}` })
    .default(0)
    .meta({ description: 'Results to skip: the page starts at this rank (next_offset of the previous page).' }),
  score_threshold: z
    .number({ message: 'must be a number' })
    .optional()
    .meta({
      description:
        'Drops results whose score is worse than this: a minimum score in every mode but `personality`, where it is a ' +
        'maximum distance.',
    }),
  hydrate: z
    .boolean({ message: 'must be true or false' })
    .default(false)
    .meta({
      description:
        'false: results carry the indexed summary (name, domain, modes, humor_usage, emotional_style, traits). true: results ' +
        'are the full, current personas from the table; results whose persona was deleted meanwhile are left out.',
    }),
};

/** The mode of a search without `mode`: hybrid with a query, personality with traits alone. */
export const defaultSearchMode = (request: { query?: unknown }): SearchMode => (request.query !== undefined ? 'hybrid' : 'personality');

/** What each mode searches for: the text (`query`), the Big Five profile (`traits`), or both. Each is required in its modes and refused in the others. */
export const MODE_INPUTS = {
  hybrid: ['query'],
  semantic: ['query'],
  keyword: ['query'],
  personality: ['traits'],
  blend: ['query', 'traits'],
} as const satisfies Record<SearchMode, ReadonlyArray<'query' | 'traits'>>;
const SEARCH_INPUTS = ['query', 'traits'] as const;
const INPUT_PURPOSE = { query: 'the text to search for', traits: 'the Big Five profile to search for' } as const;
const INPUT_ALTERNATIVE = { query: 'use mode blend to combine text and traits', traits: 'use mode personality or blend to search by traits' } as const;

const modesUsing = (input: 'query' | 'traits') => SEARCH_MODES.filter((mode) => (MODE_INPUTS[mode] as readonly string[]).includes(input));
/** The modes that fuse a ranking (and so take its weight): hybrid and blend. */
const modesFusing = (ranking?: Ranking) => SEARCH_MODES.filter((mode) => MODE_RANKINGS[mode].length > 1 && (ranking === undefined || (MODE_RANKINGS[mode] as readonly Ranking[]).includes(ranking)));

/** `weights` only where RRF fuses the rankings they name. */
function checkWeights(request: { fusion: Fusion; weights?: Partial<Record<Ranking, number>> | undefined }, mode: SearchMode, context: z.RefinementCtx): void {
  if (!request.weights) return;
  const fused: readonly Ranking[] = MODE_RANKINGS[mode];
  if (fused.length < 2) {
    context.addIssue({ code: 'custom', path: ['weights'], message: `is only used by the modes that fuse rankings (${modesFusing().join(', ')}); mode ${mode} ranks by ${fused[0]} alone` });
  } else if (request.fusion !== 'rrf') {
    context.addIssue({ code: 'custom', path: ['weights'], message: `is only used with fusion rrf; ${request.fusion} fuses by score, without weights` });
  } else {
    for (const ranking of Object.keys(request.weights) as Ranking[]) {
      if (!fused.includes(ranking)) context.addIssue({ code: 'custom', path: ['weights', ranking], message: `is not a ranking of mode ${mode}, which fuses ${fused.join(' and ')}` });
    }
  }
}

type JsonSchema = Record<string, unknown>;
const has = (...members: string[]): JsonSchema => ({ required: members });
const lacks = (member: string): JsonSchema => ({ not: { required: [member] } });

/**
 * "The request's mode is one of `modes`", in JSON Schema: `mode` is one of them, or it is absent
 * and the default mode (`defaultMode`, which may depend on the request) is.
 */
function modeIsOneOf(modes: readonly SearchMode[], defaultMode: 'search' | SearchMode): JsonSchema {
  const withMode = { ...has('mode'), properties: { mode: { enum: modes } } };
  const defaults =
    defaultMode === 'search'
      ? [...(modes.includes(defaultSearchMode({ query: '' })) ? [{ allOf: [lacks('mode'), has('query')] }] : []), ...(modes.includes(defaultSearchMode({})) ? [{ allOf: [lacks('mode'), lacks('query')] }] : [])]
      : modes.includes(defaultMode)
        ? [lacks('mode')]
        : [];
  return defaults.length > 0 ? { anyOf: [withMode, ...defaults] } : withMode;
}

/**
 * checkWeights as JSON Schema, for the API document: any weight needs fusion rrf and a mode that
 * fuses; a ranking's weight needs a mode that fuses that ranking. `weight(ranking)` names where a
 * weight is (`weights/<ranking>` in the search body, the `weights.<ranking>` query parameter), and
 * `anyWeight` when the request has weights at all.
 */
export function weightRules(defaultMode: 'search' | SearchMode, anyWeight: JsonSchema, weight: (ranking: Ranking) => JsonSchema): JsonSchema[] {
  return [
    { if: anyWeight, then: { properties: { fusion: { const: 'rrf' } }, ...modeIsOneOf(modesFusing(), defaultMode) } },
    ...RANKINGS.filter((ranking) => modesFusing(ranking).length < modesFusing().length).map((ranking) => ({ if: weight(ranking), then: modeIsOneOf(modesFusing(ranking), defaultMode) })),
  ];
}

/** The search body's rules between members (MODE_INPUTS, and the weights), as JSON Schema; the superRefine below checks the same. */
const searchRequestRules: JsonSchema[] = [
  ...SEARCH_MODES.map((mode) => ({
    if: { ...has('mode'), properties: { mode: { const: mode } } },
    then: {
      ...has(...MODE_INPUTS[mode]),
      properties: Object.fromEntries(SEARCH_INPUTS.filter((input) => !(MODE_INPUTS[mode] as readonly string[]).includes(input)).map((input) => [input, false])),
    },
  })),
  // Without mode: the text or the profile, not both (their default modes differ).
  { if: lacks('mode'), then: { oneOf: SEARCH_INPUTS.map((input) => has(input)) } },
  ...weightRules('search', has('weights'), (ranking) => ({ ...has('weights'), properties: { weights: has(ranking) } })),
];

export const searchRequestSchema = z
  .strictObject({
    query: nonBlankString(searchLimits.queryLength)
      .optional()
      .meta({ description: `Text to search for (modes ${modesUsing('query').join(', ')}).`, example: 'a physicist fond of thought experiments' }),
    traits: traitsSchema
      .optional()
      .meta({ description: `Target Big Five profile (modes ${modesUsing('traits').join(', ')}): personas closest to it rank first.` }),
    ...searchOptions,
  })
  .superRefine((request, context) => {
    checkWeights(request, request.mode ?? defaultSearchMode(request), context);
    if (request.mode === undefined) {
      if (request.query === undefined && request.traits === undefined) {
        context.addIssue({ code: 'custom', path: ['query'], message: 'give query (text to search for), traits (a Big Five profile) or both with mode blend' });
      }
      if (request.query !== undefined && request.traits !== undefined) {
        context.addIssue({ code: 'custom', path: ['mode'], message: 'is required when both query and traits are given; use blend to combine them' });
      }
      return;
    }
    const inputs: readonly string[] = MODE_INPUTS[request.mode];
    for (const input of SEARCH_INPUTS) {
      if (inputs.includes(input) && request[input] === undefined) {
        context.addIssue({ code: 'custom', path: [input], message: `is required in ${request.mode} mode (${INPUT_PURPOSE[input]})` });
      }
      if (!inputs.includes(input) && request[input] !== undefined) {
        context.addIssue({ code: 'custom', path: [input], message: `is not used in ${request.mode} mode; ${INPUT_ALTERNATIVE[input]}` });
      }
    }
  })
  .meta({
    description:
      'A search. `hybrid` (the default with `query`), `semantic` and `keyword` need `query`; `personality` (the default with ' +
      '`traits` alone) needs `traits` (a target profile) and no `query`; `blend` needs both and fuses the text rankings with the profile ranking.',
    allOf: searchRequestRules,
  });

export type SearchRequest = z.output<typeof searchRequestSchema>;

/** GET /personas/{id}/similar takes the shared options from its query string (see similarQuery.ts). */
export const similarRequestSchema = z.strictObject(searchOptions).superRefine((request, context) => checkWeights(request, request.mode ?? SIMILAR_DEFAULT_MODE, context));

export type SimilarRequest = z.output<typeof similarRequestSchema>;

/** Validates a POST /personas/search body; every problem is reported at its JSON pointer. */
export function parseSearchRequest(body: unknown): SearchRequest {
  if (!isPlainObject(body)) throw validationProblem([{ pointer: '#', detail: `must be a JSON object, not ${jsonTypeOf(body)}` }]);
  const result = searchRequestSchema.safeParse(body, { reportInput: true });
  if (!result.success) throw validationProblem(fieldErrorsFromZod(result.error));
  return result.data;
}

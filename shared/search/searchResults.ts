import { z } from 'zod';
import { personaSchema } from '../persona/schema';
import { FUSIONS, RANKINGS, SEARCH_MODES, searchLimits, type Ranking } from './searchRequest';

export { RANKINGS, type Ranking } from './searchRequest';

/** What `score` measures in a single ranking, named in every response (fused modes name the fusion). */
export const RANKING_SCORE_TYPES = {
  semantic: 'cosine_similarity',
  keyword: 'bm25',
  personality: 'euclidean_distance',
} as const satisfies Record<Ranking, string>;

const score = z.number().meta({
  description:
    'cosine_similarity (semantic): higher is closer, at most 1. bm25 (keyword): BM25 score, higher is better. ' +
    'euclidean_distance (personality): distance between Big Five profiles, lower is closer, 0 to √5. rrf / dbsf (hybrid, ' +
    'blend): the fused score, higher is better.',
});

const rankingExplanation = z
  .object({
    rank: z.int().min(1).nullable().meta({ description: 'Rank in this ranking (1 = best), or null when not among its candidates.' }),
    score: z.number().nullable().meta({ description: "Score in this ranking (that ranking's score type), or null." }),
  })
  .meta({ description: 'Where the result stood in one ranking.' });

const explanation = z
  .object(Object.fromEntries(RANKINGS.map((ranking) => [ranking, rankingExplanation.optional()])) as Record<Ranking, z.ZodOptional<typeof rankingExplanation>>)
  .meta({ description: 'With explain: true, the rank and score of the result in each ranking the mode used.' });

/** A result from the index's payload: what result lists show, without a table read. */
export const searchHitSchema = personaSchema
  .pick({ id: true, name: true, domain: true, modes: true, humor_usage: true, emotional_style: true, traits: true })
  .extend({ score, explain: explanation.optional() })
  .meta({ description: 'A result as indexed (hydrate: false); the index follows the table within seconds.' });

/** A result with the full, current persona from the table. */
export const hydratedSearchHitSchema = personaSchema
  .extend({ score, explain: explanation.optional() })
  .meta({ description: 'A result with the full persona as stored now (hydrate: true).' });

export const searchResultsSchema = z
  .object({
    mode: z.enum(SEARCH_MODES).meta({
      description: 'The mode that ranked the results (a defaulted hybrid search on an index without keywords is semantic).',
    }),
    score_type: z.enum([...Object.values(RANKING_SCORE_TYPES), ...FUSIONS]).meta({ description: 'What `score` measures.' }),
    items: z
      .array(z.union([searchHitSchema, hydratedSearchHitSchema]))
      .meta({ description: 'Best first. With hydrate, a page may hold fewer than `limit` items (deleted personas are left out, and a page of large personas ends early to fit in 5 MB).' }),
    limit: z.int().min(1).max(searchLimits.maxLimit),
    offset: z.int().min(0).max(searchLimits.maxOffset),
    next_offset: z
      .int()
      .min(1)
      .max(searchLimits.maxOffset)
      .nullable()
      .meta({ description: 'The offset of the next page, or null when there are no more results within the maximum offset.' }),
  })
  .meta({ description: 'One page of ranked results.' });

/** GET /personas/{id}/similar: the page, and which version of the persona the index ranked from. */
export const similarResultsSchema = searchResultsSchema
  .extend({
    indexed_version: z.int().min(1).meta({
      description:
        "The persona's version in the vector index, whose vectors ranked these results. Lower than the persona's ETag while the index catches up with a write (seconds).",
    }),
  })
  .meta({ description: 'One page of ranked neighbours of a persona.' });

export type RankingExplanation = z.output<typeof rankingExplanation>;
export type SearchHit = z.output<typeof searchHitSchema>;
export type HydratedSearchHit = z.output<typeof hydratedSearchHitSchema>;
export type SearchResults = z.output<typeof searchResultsSchema>;
export type SimilarResults = z.output<typeof similarResultsSchema>;

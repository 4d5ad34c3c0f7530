import { z } from 'zod';
import { personaSchema } from '../persona/schema';
import { SEARCH_MODES, searchLimits, type SearchMode } from './searchRequest';

/** What `score` measures in each mode, named in every response. */
export const SCORE_TYPES = {
  semantic: 'cosine_similarity',
  personality: 'euclidean_distance',
  blend: 'rrf',
} as const satisfies Record<SearchMode, string>;

const score = z.number().meta({
  description:
    'cosine_similarity (semantic mode): higher is closer, at most 1. euclidean_distance (personality mode): distance between ' +
    'Big Five profiles, lower is closer, 0 to √5. rrf (blend mode): reciprocal rank fusion score, higher is better.',
});

/** A result from the index's payload: what result lists show, without a table read. */
export const searchHitSchema = personaSchema
  .pick({ id: true, name: true, domain: true, modes: true, humor_usage: true, emotional_style: true, traits: true })
  .extend({ score })
  .meta({ description: 'A result as indexed (hydrate: false); the index follows the table within seconds.' });

/** A result with the full, current persona from the table. */
export const hydratedSearchHitSchema = personaSchema
  .extend({ score })
  .meta({ description: 'A result with the full persona as stored now (hydrate: true).' });

export const searchResultsSchema = z
  .object({
    mode: z.enum(SEARCH_MODES),
    score_type: z.enum(Object.values(SCORE_TYPES) as [string, ...string[]]).meta({ description: 'What `score` measures.' }),
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

export type SearchHit = z.output<typeof searchHitSchema>;
export type HydratedSearchHit = z.output<typeof hydratedSearchHitSchema>;
export type SearchResults = z.output<typeof searchResultsSchema>;
export type SimilarResults = z.output<typeof similarResultsSchema>;

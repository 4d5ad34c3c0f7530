import type { Schemas } from '@qdrant/js-client-rest';
import { TRAIT_NAMES } from '../persona/schema';
import { LIST_FILTER_FIELDS, type SearchFilter } from './searchRequest';

type QdrantFilter = Schemas['Filter'];
type QdrantCondition = Schemas['Condition'];

/**
 * The one translation of a search filter into a Qdrant filter, over the payload that
 * shared/vectorIndex/personaPoint.ts writes (and whose fields personaCollection.ts indexes).
 * Lists become `match.any` (on an array payload, any element may match), trait ranges `range`
 * on `traits.<name>`; `excludeId` keeps one point out (a persona is not similar to itself).
 */
export function qdrantFilter(filter: SearchFilter | undefined, excludeId?: string): QdrantFilter | undefined {
  const must: QdrantCondition[] = [];
  for (const key of LIST_FILTER_FIELDS) {
    const values = filter?.[key];
    if (values) must.push({ key, match: { any: [...values] } });
  }
  for (const trait of TRAIT_NAMES) {
    const range = filter?.traits?.[trait];
    if (range) must.push({ key: `traits.${trait}`, range: { gte: range.gte ?? null, lte: range.lte ?? null } });
  }
  const mustNot: QdrantCondition[] = excludeId ? [{ has_id: [excludeId] }] : [];
  if (must.length === 0 && mustNot.length === 0) return undefined;
  return { ...(must.length > 0 ? { must } : {}), ...(mustNot.length > 0 ? { must_not: mustNot } : {}) };
}

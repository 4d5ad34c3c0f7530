/**
 * How hybrid (and blend) weigh the keyword ranking when a request gives it no weight: by the
 * keyword ranking's own evidence for that query. When the personas that BM25 ranks best share most
 * of the query's words (a query copied from a persona, a name, a few exact words), those words say
 * which persona is meant and keyword gets a heavy weight; when even the best share only a few of
 * them (a description in the user's own words), the words matched are incidental and the meaning
 * ranking decides. Measured on both development sets, near-duplicates and paraphrases
 * (docs/search.md "Search quality", `npm run bench:quality -- --tune-fusion`).
 */

/**
 * The evidence: the largest share of the query's distinct words that one of the keyword ranking's
 * best candidates has, after setting aside one candidate that has them all. An exact copy of the
 * query (the stored persona a text was pasted from, or the query's own persona) is a match of the
 * query with itself; it says nothing about how the others should rank, so a second candidate must
 * share the words too.
 */
export function keywordEvidence<Term>(queryTerms: readonly Term[], candidates: ReadonlyArray<readonly Term[]>): number {
  const query = new Set(queryTerms);
  if (query.size === 0) return 0;
  const shares = candidates
    .map((terms) => {
      let shared = 0;
      for (const term of new Set(terms)) if (query.has(term)) shared++;
      return shared / query.size;
    })
    .sort((a, b) => b - a);
  const [best = 0, next = 0] = shares;
  return best < 1 ? best : next;
}

export interface KeywordWeightPolicy {
  /** How many of the keyword ranking's best candidates the evidence looks at. */
  candidates: number;
  /** Evidence (a share of the query's words) from which keyword counts as strong. */
  threshold: number;
  /** RRF weight of keyword with strong evidence, and without (semantic's is 1). */
  strong: number;
  weak: number;
}

export const keywordWeightFor = (policy: KeywordWeightPolicy, evidence: number): number => (evidence >= policy.threshold ? policy.strong : policy.weak);

import { describe, expect, it } from 'vitest';
import { keywordEvidence, keywordWeightFor } from '../shared/search/keywordEvidence';
import { KEYWORD_WEIGHT_POLICY } from '../shared/search/searchRequest';
import { keywordQueryVector } from '../shared/vectorIndex/keywordVector';

const terms = (text: string) => keywordQueryVector(text).indices;

describe('the keyword ranking\'s evidence for a query (keyword\'s default RRF weight)', () => {
  const query = terms('I play the saxophone in a jazz band and hold a black belt in karate');

  it('is the largest share of the query\'s words one candidate holds', () => {
    const evidence = keywordEvidence(query, [terms('jazz on Sundays'), terms('a saxophone player in a jazz band'), terms('karate')]);
    // "saxophone", "jazz", "band" of the query's play, saxophone, jazz, band, hold, black, belt, karate.
    expect(evidence).toBeCloseTo(3 / 8, 10);
    expect(keywordWeightFor(KEYWORD_WEIGHT_POLICY, evidence)).toBe(KEYWORD_WEIGHT_POLICY.weak);
  });

  it('sets aside one candidate holding every word (a copy of the query): a second must hold them too', () => {
    const copy = terms('I play the saxophone in a jazz band and hold a black belt in karate. Also I bake.');
    expect(keywordEvidence(query, [copy, terms('a saxophone player')])).toBeCloseTo(1 / 8, 10);
    expect(keywordEvidence(query, [copy, copy])).toBe(1);
    const nearDuplicate = terms('I play the saxophone in a jazz band and I have a black belt');
    const evidence = keywordEvidence(query, [copy, nearDuplicate]);
    expect(evidence).toBeCloseTo(6 / 8, 10);
    expect(keywordWeightFor(KEYWORD_WEIGHT_POLICY, evidence)).toBe(KEYWORD_WEIGHT_POLICY.strong);
  });

  it('is 0 without candidates or query words, and counts a repeated word once', () => {
    expect(keywordEvidence(query, [])).toBe(0);
    expect(keywordEvidence([], [query])).toBe(0);
    expect(keywordEvidence([1, 1, 2], [[1, 1, 1]])).toBe(0.5);
  });
});

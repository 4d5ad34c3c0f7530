import { describe, expect, it } from 'vitest';
import { ProblemError } from '../shared/http/problem';
import { MAX_PARAMETER_LENGTH, parseSimilarQuery } from '../shared/search/similarQuery';

const errorsOf = (query: string) => {
  try {
    parseSimilarQuery(query);
  } catch (error) {
    if (error instanceof ProblemError) return error.errors ?? [];
    throw error;
  }
  return [];
};

describe('the /similar query-string parser', () => {
  it('rejects an over-long value by its length, before parsing it (15,000 digits then a letter)', () => {
    const errors = errorsOf(`limit=${'1'.repeat(15_000)}x`);
    expect(errors).toEqual([{ pointer: '#/query/limit', detail: expect.stringContaining(`at most ${MAX_PARAMETER_LENGTH} characters`) }]);
    expect(errorsOf(`traits.openness.gte=${'9'.repeat(60_000)}a`)[0]).toMatchObject({ pointer: '#/query/traits.openness.gte', detail: expect.stringContaining('at most') });
    expect(errorsOf(`domain=${'a,'.repeat(5_000)}`)[0]).toMatchObject({ pointer: '#/query/domain', detail: expect.stringContaining('at most') });
    // An over-long unknown name is reported at a bounded pointer, not echoed whole.
    expect(errorsOf(`${'n'.repeat(10_000)}=1`)[0]!.pointer.length).toBeLessThan(120);
  });

  it('parses decimal numbers, with sign, fraction and exponent, and nothing else', () => {
    const accepted: Array<[string, number]> = [['0.5', 0.5], ['.5', 0.5], ['1.', 1], ['+0.25', 0.25], ['5e-1', 0.5], ['0.1E1', 1]];
    for (const [text, value] of accepted) expect(parseSimilarQuery(`traits.openness.gte=${encodeURIComponent(text)}`).filter?.traits?.openness?.gte, text).toBe(value);
    for (const text of ['e3', '.', '1e', '1.2.3', '0x1', '1_0', 'Infinity', ' 1', `${'1'.repeat(4_000)}x`]) {
      expect(errorsOf(`traits.openness.gte=${encodeURIComponent(text)}`)[0]?.pointer, text).toBe('#/query/traits.openness.gte');
    }
  });
});

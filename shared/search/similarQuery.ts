import { fieldErrorsFromZod, validationProblem, type FieldError } from '../http/problem';
import { TRAIT_NAMES } from '../persona/schema';
import { LIST_FILTER_FIELDS, RANKINGS, similarRequestSchema, type SimilarRequest } from './searchRequest';

/**
 * The query-string encoding of GET /personas/{id}/similar (OpenAPI `style: form, explode: false`):
 *
 *   mode=hybrid&fusion=dbsf&explain=true&limit=5&offset=0&score_threshold=0.2&hydrate=true
 *   domain=physics,philosophy&modes=Educator&humor_usage=low,medium&emotional_style=reserved
 *   traits.openness.gte=0.7&traits.neuroticism.lte=0.3
 *   weights.semantic=1&weights.keyword=2
 *
 * A list is comma-separated; a comma inside a value is sent as %2C. A repeated list parameter adds
 * to the list. An empty value counts as absent, but for a list (`domain=`), where it is one empty
 * value, and for mode, fusion and the weights (the document's `ranking` object): those are refused. Values are then checked by the same schema as the
 * search body, and every problem is reported at `#/query/<parameter>`.
 */

export const SCALAR_PARAMETERS = ['mode', 'fusion', 'explain', 'limit', 'offset', 'score_threshold', 'hydrate'] as const satisfies ReadonlyArray<
  Exclude<keyof SimilarRequest, 'filter'>
>;
export const TRAIT_BOUNDS = ['gte', 'lte'] as const;
/** The scalar parameters whose validity depends on one another (with the weights): the API document's `ranking` object parameter. */
export const RANKING_PARAMETERS = ['mode', 'fusion'] as const;
export const traitParameter = (trait: string, bound: string) => `traits.${trait}.${bound}`;
export const weightParameter = (ranking: string) => `weights.${ranking}`;

type Scalar = (typeof SCALAR_PARAMETERS)[number];
type Parsed = { value: unknown } | { invalid: string };

/**
 * A decimal number. Every part is unambiguous (digits, then an optional dot-and-digits), so a
 * mismatch is found in linear time; `\d+\.?\d*` backtracked quadratically on long digit runs.
 */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Longest raw (percent-encoded) value of one parameter; longer values are rejected before any parsing. */
export const MAX_PARAMETER_LENGTH = 4096;

function decode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The JSON type a parameter has in the search body; the schema then checks the value. */
function scalarValue(name: Scalar, text: string): Parsed {
  if (name === 'mode' || name === 'fusion') return { value: text };
  if (name === 'hydrate' || name === 'explain') return text === 'true' || text === 'false' ? { value: text === 'true' } : { invalid: 'must be true or false' };
  if (NUMBER.test(text)) return { value: Number(text) };
  return { invalid: name === 'score_threshold' ? 'must be a number' : 'must be an integer' };
}

/** Where a problem in the parsed request is, as the query parameter that carried it. */
function queryPointer(bodyPointer: string): string {
  const segments = bodyPointer.replace(/^#\/?/, '').split('/').filter((segment) => segment !== '');
  const [name, ...rest] = segments[0] === 'filter' ? segments.slice(1) : segments;
  // An item of a list belongs to the list's parameter; a trait bound or a weight is its dotted name.
  return `#/query/${name === 'traits' || name === 'weights' ? [name, ...rest].join('.') : name ?? ''}`;
}

export function parseSimilarQuery(rawQueryString: string | undefined): SimilarRequest {
  const errors: FieldError[] = [];
  const options: Record<string, unknown> = {};
  const lists: Record<string, string[]> = {};
  const traits: Record<string, Record<string, unknown>> = {};
  const weights: Record<string, unknown> = {};

  for (const part of (rawQueryString ?? '').split('&')) {
    if (part === '') continue;
    const separator = part.indexOf('=');
    const rawName = separator < 0 ? part : part.slice(0, separator);
    const rawValue = separator < 0 ? '' : part.slice(separator + 1);
    const name = decode(rawName) ?? rawName;
    const pointer = `#/query/${name.slice(0, 100)}`;
    if (rawValue.length > MAX_PARAMETER_LENGTH || rawName.length > MAX_PARAMETER_LENGTH) {
      errors.push({ pointer, detail: `must be at most ${MAX_PARAMETER_LENGTH} characters (percent-encoded), got ${Math.max(rawValue.length, rawName.length)}` });
      continue;
    }

    if ((LIST_FILTER_FIELDS as readonly string[]).includes(name)) {
      const values = rawValue.split(',').map(decode);
      if (values.some((value) => value === undefined)) errors.push({ pointer, detail: 'is not valid percent-encoding' });
      else (lists[name] ??= []).push(...(values as string[]));
      continue;
    }
    // An empty list value would read both as no value and as one empty one: it is the latter (and
    // refused by the schema); so is an empty member of the document's `ranking` object (mode,
    // fusion, weights), which OpenAPI cannot let be empty. Any other empty value counts as absent.
    const rankingMember = (RANKING_PARAMETERS as readonly string[]).includes(name) || name.startsWith('weights.');
    if (rawValue === '' && !rankingMember) continue;
    const value = decode(rawValue);
    if (value === undefined) {
      errors.push({ pointer, detail: 'is not valid percent-encoding' });
      continue;
    }
    const trait = /^traits\.([^.]+)\.([^.]+)$/.exec(name);
    if (trait && (TRAIT_NAMES as readonly string[]).includes(trait[1]!) && (TRAIT_BOUNDS as readonly string[]).includes(trait[2]!)) {
      if (traits[trait[1]!]?.[trait[2]!] !== undefined) errors.push({ pointer, detail: 'must be given once' });
      else if (NUMBER.test(value)) (traits[trait[1]!] ??= {})[trait[2]!] = Number(value);
      else errors.push({ pointer, detail: `must be a number between 0 and 1, got '${value}'` });
      continue;
    }
    const weight = /^weights\.([^.]+)$/.exec(name);
    if (weight && (RANKINGS as readonly string[]).includes(weight[1]!)) {
      if (weights[weight[1]!] !== undefined) errors.push({ pointer, detail: 'must be given once' });
      else if (NUMBER.test(value)) weights[weight[1]!] = Number(value);
      else errors.push({ pointer, detail: `must be a number, got '${value}'` });
      continue;
    }
    if ((SCALAR_PARAMETERS as readonly string[]).includes(name)) {
      const parsed = scalarValue(name as Scalar, value);
      if (options[name] !== undefined) errors.push({ pointer, detail: 'must be given once' });
      else if ('invalid' in parsed) errors.push({ pointer, detail: `${parsed.invalid}, got '${value}'` });
      else options[name] = parsed.value;
      continue;
    }
    errors.push({
      pointer,
      detail: trait
        ? `unknown trait bound; use traits.<trait>.gte or .lte with a trait among ${TRAIT_NAMES.join(', ')}`
        : weight
          ? `unknown ranking; use weights.<ranking> with a ranking among ${RANKINGS.join(', ')}`
          : `unknown query parameter; use ${[...SCALAR_PARAMETERS, ...LIST_FILTER_FIELDS].join(', ')}, traits.<trait>.gte/lte or weights.<ranking>`,
    });
  }

  const filter: Record<string, unknown> = { ...lists, ...(Object.keys(traits).length > 0 ? { traits } : {}) };
  const result = similarRequestSchema.safeParse(
    { ...options, ...(Object.keys(weights).length > 0 ? { weights } : {}), ...(Object.keys(filter).length > 0 ? { filter } : {}) },
    { reportInput: true },
  );
  if (!result.success) {
    errors.push(...fieldErrorsFromZod(result.error).map((error) => ({ ...error, pointer: queryPointer(error.pointer) })));
  }
  if (errors.length > 0 || !result.success) throw validationProblem(errors, 'The query string is invalid; see errors for each parameter.');
  return result.data;
}

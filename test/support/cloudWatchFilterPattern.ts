/**
 * CloudWatch Logs' matching of a JSON filter pattern against one log event, for the forms this
 * project's metric filters use, by the rules of "Filter and Pattern Syntax", Matching Terms in
 * JSON Log Events (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html;
 * source text: awsdocs/amazon-cloudwatch-logs-user-guide, doc_source/FilterAndPatternSyntax.md):
 *
 * - `{ SELECTOR EQUALITY_OPERATOR STRING }`: `=` or `!=`; the string "with or without quotes"
 *   (unquoted only when it has no characters that need them); a `*` at its start or end matches any
 *   text before or after ("*Event" matches PutEvent, "Event*" EventId), one inside is literal ("Ev*ent
 *   will only match the actual string Ev*ent").
 * - `{ SELECTOR NUMERIC_OPERATOR NUMBER }`: `=`, `!=`, `<`, `>`, `<=`, `>=`; NUMBER is an integer
 *   or decimal with an optional sign, or one in scientific notation.
 * - SELECTOR: `$` then `.name` (alphanumerics, `-`, `_`) and `[index]` steps. It "must point to a
 *   value node (string or number)": on an array or object, `=` and `!=` both fail; a missing
 *   property or a non-array indexed fails too ("If arrayKey is not an array this will be false").
 * - "The items in the JSON log event data must exactly match the metric filter": a string is
 *   compared with a string node only and a number with a number node only. The documented compound
 *   example relies on it: `$.coordinates[0][1] = nonmatch` is false against the number 1.
 * - `&&` and `||` with parentheses, precedence `()` > `&&` > `||`.
 *
 * Anything else (term and space-delimited patterns, IS NULL, EXISTS, IS TRUE, `= *`) throws
 * "not implemented" rather than guessing.
 */

type Comparison = { kind: 'comparison'; selector: (string | number)[]; operator: string; value: { type: 'string'; text: string } | { type: 'number'; number: number } };
type Expression = Comparison | { kind: 'and' | 'or'; left: Expression; right: Expression };

const NUMBER = /^[+-]?(\d+(\.\d+)?|\.\d+)(e[+-]?\d+)?$/i;

function tokenize(pattern: string): string[] {
  const tokens: string[] = [];
  let index = 0;
  while (index < pattern.length) {
    const rest = pattern.slice(index);
    const space = /^\s+/.exec(rest);
    if (space) {
      index += space[0].length;
      continue;
    }
    const fixed = ['&&', '||', '!=', '<=', '>=', '{', '}', '(', ')', '=', '<', '>'].find((symbol) => rest.startsWith(symbol));
    if (fixed) {
      tokens.push(fixed);
      index += fixed.length;
      continue;
    }
    if (rest.startsWith('"')) {
      let end = 1;
      while (end < rest.length && rest[end] !== '"') end += rest[end] === '\\' ? 2 : 1;
      if (end >= rest.length) throw new Error(`unterminated string in ${pattern}`);
      tokens.push(rest.slice(0, end + 1));
      index += end + 1;
      continue;
    }
    const bare = /^[^\s(){}&|=!<>"]+/.exec(rest);
    if (!bare) throw new Error(`cannot read ${JSON.stringify(rest.slice(0, 20))} in ${pattern}`);
    tokens.push(bare[0]);
    index += bare[0].length;
  }
  return tokens;
}

function parseSelector(token: string): (string | number)[] {
  if (!token.startsWith('$')) throw new Error(`not implemented: ${token} is not a JSON property selector`);
  const steps: (string | number)[] = [];
  const pattern = /\.([A-Za-z0-9_-]+)|\[(\d+)\]/gy;
  pattern.lastIndex = 1;
  while (pattern.lastIndex < token.length) {
    const step = pattern.exec(token);
    if (!step) throw new Error(`not a selector: ${token}`);
    steps.push(step[1] !== undefined ? step[1] : Number(step[2]));
  }
  return steps;
}

/** Parses a JSON filter pattern; throws on the forms not implemented here. */
export function parseJsonFilterPattern(pattern: string): Expression {
  const tokens = tokenize(pattern);
  let position = 0;
  const next = () => tokens[position++];
  const peek = () => tokens[position];
  const expect = (token: string) => {
    const found = next();
    if (found !== token) throw new Error(`expected ${token}, found ${found ?? 'the end'} in ${pattern}`);
  };
  const comparison = (): Comparison => {
    const selector = parseSelector(next() ?? '');
    const operator = next() ?? '';
    if (!['=', '!=', '<', '>', '<=', '>='].includes(operator)) throw new Error(`not implemented: operator ${operator} in ${pattern}`);
    const raw = next() ?? '';
    if (raw === '*' || /^(IS|NOT|EXISTS)$/i.test(raw)) throw new Error(`not implemented: ${raw} in ${pattern}`);
    if (raw.startsWith('"')) return { kind: 'comparison', selector, operator, value: { type: 'string', text: JSON.parse(raw) as string } };
    if (NUMBER.test(raw)) return { kind: 'comparison', selector, operator, value: { type: 'number', number: Number(raw) } };
    return { kind: 'comparison', selector, operator, value: { type: 'string', text: raw } };
  };
  const primary = (): Expression => {
    if (peek() !== '(') return comparison();
    next();
    const inner = or();
    expect(')');
    return inner;
  };
  const and = (): Expression => {
    let left = primary();
    while (peek() === '&&') {
      next();
      left = { kind: 'and', left, right: primary() };
    }
    return left;
  };
  const or = (): Expression => {
    let left = and();
    while (peek() === '||') {
      next();
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  expect('{');
  const expression = or();
  expect('}');
  if (position !== tokens.length) throw new Error(`unexpected ${peek()} after the pattern in ${pattern}`);
  return expression;
}

function valueAt(event: unknown, selector: readonly (string | number)[]): unknown {
  let current = event;
  for (const step of selector) {
    if (typeof step === 'number') {
      if (!Array.isArray(current)) return undefined;
      current = current[step];
    } else {
      if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
      current = (current as Record<string, unknown>)[step];
    }
  }
  return current;
}

function stringMatches(value: string, text: string): boolean {
  const leading = text.startsWith('*');
  const trailing = text.length > 1 && text.endsWith('*');
  const core = text.slice(leading ? 1 : 0, trailing ? -1 : undefined);
  if (leading && trailing) return value.includes(core);
  if (leading) return value.endsWith(core);
  if (trailing) return value.startsWith(core);
  return value === text;
}

function evaluate(expression: Expression, event: unknown): boolean {
  if (expression.kind !== 'comparison') {
    const [left, right] = [evaluate(expression.left, event), evaluate(expression.right, event)];
    return expression.kind === 'and' ? left && right : left || right;
  }
  const node = valueAt(event, expression.selector);
  const { operator, value } = expression;
  if (value.type === 'string') {
    if (operator !== '=' && operator !== '!=') throw new Error(`not a documented form: ${operator} with the string ${value.text}`);
    if (typeof node !== 'string') return false;
    return stringMatches(node, value.text) === (operator === '=');
  }
  if (typeof node !== 'number') return false;
  switch (operator) {
    case '=':
      return node === value.number;
    case '!=':
      return node !== value.number;
    case '<':
      return node < value.number;
    case '>':
      return node > value.number;
    case '<=':
      return node <= value.number;
    default:
      return node >= value.number;
  }
}

/** Whether CloudWatch Logs counts `message` (one log event) for the JSON filter `pattern`. A JSON pattern never matches a non-JSON event. */
export function jsonFilterPatternMatches(pattern: string, message: string): boolean {
  const expression = parseJsonFilterPattern(pattern);
  let event: unknown;
  try {
    event = JSON.parse(message);
  } catch {
    return false;
  }
  return evaluate(expression, event);
}

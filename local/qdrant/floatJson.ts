/**
 * JSON text the way Qdrant writes it. Qdrant serialises with serde_json, which prints floats with
 * the `ryu` crate: the shortest digits that read back as the same f32 (vectors, scores) or f64
 * (`time`, float order values), and always as a float (`1.0`, never `1`). Strict clients (Qdrant's
 * Python client through pydantic) reject an integer where the schema says float, so the numbers
 * Qdrant holds as floats are marked when the response is built and printed here.
 *
 * The printing rules are ryu's `format32` / `format64` (ryu/src/pretty/mod.rs): digits `d` with
 * exponent `k` (value d·10^k, kk = len(d) + k) print as `ddd000.0` when k ≥ 0 and kk ≤ 13 (16 for
 * f64), `dd.dd` when 0 < kk ≤ 13 (16), `0.000dd` when -6 < kk ≤ 0 (-5 for f64), else `d.ddde-7`.
 */

/** A number Qdrant holds as `f32` (a score): printed rounded to f32, as a float. */
export class Float32 {
  constructor(readonly value: number) {}
}

/** A number Qdrant holds as `f64` (`time`, a float order value): printed as a float. */
export class Float64 {
  constructor(readonly value: number) {}
}

/** A list of `f32` (a dense vector, the values of a sparse one). */
export class Float32List {
  constructor(readonly values: readonly number[]) {}
}

function layout(digits: string, exponent: number, maxIntegerDigits: number, minExponent: number): string {
  const length = digits.length;
  const kk = length + exponent;
  if (exponent >= 0 && kk <= maxIntegerDigits) return `${digits}${'0'.repeat(exponent)}.0`;
  if (kk > 0 && kk <= maxIntegerDigits) return `${digits.slice(0, kk)}.${digits.slice(kk)}`;
  if (kk > minExponent && kk <= 0) return `0.${'0'.repeat(-kk)}${digits}`;
  const mantissa = length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  return `${mantissa}e${kk - 1}`;
}

/** Splits a number's shortest round-trip text into significant digits and a decimal exponent. */
function decompose(shortest: number): { digits: string; exponent: number } {
  const [mantissa, exp] = shortest.toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '').replace('-', '');
  return { digits, exponent: Number(exp) - (digits.length - 1) };
}

function format(value: number, shortest: (x: number) => number, maxIntegerDigits: number, minExponent: number): string {
  // serde_json writes non-finite floats as null.
  if (!Number.isFinite(value)) return 'null';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const { digits, exponent } = decompose(shortest(Math.abs(value)));
  return `${value < 0 ? '-' : ''}${layout(digits, exponent, maxIntegerDigits, minExponent)}`;
}

/** The shortest decimal that rounds back to the same f32 (round-trip is monotonic in the digit count). */
function shortestF32(x: number): number {
  let low = 1;
  let high = 9;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (Math.fround(Number(x.toPrecision(middle))) === x) high = middle;
    else low = middle + 1;
  }
  return Number(x.toPrecision(low));
}

const formatF32Exactly = (value: number): string => format(value, shortestF32, 13, -6);

const POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** |x| rounded (halves up, as ryu does) to `digits` significant digits, given x's decimal exponent. */
function roundedTo(magnitude: number, exponent: number, digits: number): number {
  const shift = digits - 1 - exponent;
  return shift >= 0
    ? Math.round(magnitude * POWERS_OF_TEN[shift]!) / POWERS_OF_TEN[shift]!
    : Math.round(magnitude / POWERS_OF_TEN[-shift]!) * POWERS_OF_TEN[-shift]!;
}

/**
 * The same text, faster for the common range (vectors are long lists of these): the shortest
 * candidate is found with float arithmetic, starting at 7 digits where most f32 values end
 * (reading back as the same f32 is monotonic in the digit count). Where the result lies in
 * 1e-5 ≤ |x| < 1e13, JavaScript and ryu both print it in plain notation; anything else takes the
 * exact path above.
 */
export function formatF32(value: number): string {
  const x = Math.fround(value);
  const magnitude = Math.abs(x);
  if (!(magnitude >= 1e-5 && magnitude < 1e13)) return formatF32Exactly(x);
  const exponent = Math.floor(Math.log10(magnitude));
  const fits = (digits: number) => Math.fround(roundedTo(magnitude, exponent, digits)) === magnitude;
  let digits = 7;
  if (fits(digits)) while (digits > 1 && fits(digits - 1)) digits--;
  else digits = fits(8) ? 8 : 9;
  const rounded = roundedTo(magnitude, exponent, digits);
  if (Math.fround(rounded) !== magnitude || rounded >= 1e13) return formatF32Exactly(x);
  const text = String(rounded);
  if (text.includes('e')) return formatF32Exactly(x);
  return `${x < 0 ? '-' : ''}${text}${text.includes('.') ? '' : '.0'}`;
}

/** Vectors are stored once and read many times: their text is kept with them (they are never changed in place). */
const vectorText = new WeakMap<readonly number[], string>();

function formatF32List(values: readonly number[]): string {
  let text = vectorText.get(values);
  if (text === undefined) {
    text = `[${values.map(formatF32).join(',')}]`;
    vectorText.set(values, text);
  }
  return text;
}

/** JavaScript's own number text is already the shortest round-trip f64. */
export const formatF64 = (value: number): string => format(value, (x) => x, 16, -5);

/** JSON.stringify, except for the float markers above. */
export function toQdrantJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (value instanceof Float32List) return formatF32List(value.values);
  if (value instanceof Float32) return formatF32(value.value);
  if (value instanceof Float64) return formatF64(value.value);
  if (Array.isArray(value)) return `[${value.map((item) => write(item) ?? 'null').join(',')}]`;
  const parts: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    const text = write(item);
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${parts.join(',')}}`;
}

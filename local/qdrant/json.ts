import { formatError } from './errors';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const isNumberArray = (value: unknown): value is number[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'number' && Number.isFinite(item));

/** Describes a value the way serde does in "invalid type" messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a sequence';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return `boolean \`${value}\``;
  if (typeof value === 'number') return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
  return typeof value;
}

function invalidType(value: unknown, expected: string, at: string): never {
  throw formatError(`invalid type: ${describe(value)}, expected ${expected}${at ? ` at ${at}` : ''}`);
}

export function expectObject(value: unknown, at: string): JsonObject {
  return isObject(value) ? value : invalidType(value, 'a map', at);
}

/** `undefined` and `null` both mean "not given", as with serde's `Option`. */
export function optional<T>(value: unknown, read: (value: unknown) => T): T | undefined {
  return value === undefined || value === null ? undefined : read(value);
}

export function expectString(value: unknown, at: string): string {
  return typeof value === 'string' ? value : invalidType(value, 'a string', at);
}

export function expectNumber(value: unknown, at: string): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : invalidType(value, 'f64', at);
}

/** Qdrant's `usize` is 64 bits: up to 2^64 − 1, which JSON.parse rounds to 2^64. */
const USIZE_MAX = 2 ** 64;

export function expectUnsigned(value: unknown, at: string): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= USIZE_MAX
    ? value
    : invalidType(value, 'usize', at);
}

export function expectU32(value: unknown, at: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && (value < 0 || value > 0xffffffff)) {
    throw formatError(`invalid value: integer \`${value}\`, expected u32${at ? ` at ${at}` : ''}`);
  }
  return typeof value === 'number' && Number.isInteger(value) ? value : invalidType(value, 'u32', at);
}

export function expectArray(value: unknown, at: string): unknown[] {
  return Array.isArray(value) ? value : invalidType(value, 'a sequence', at);
}

/** Rejects keys outside `allowed`, as serde does for Qdrant types declared `deny_unknown_fields`. */
export function denyUnknownFields(object: JsonObject, allowed: readonly string[], at: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      const expected = allowed.map((name) => `\`${name}\``).join(', ');
      throw formatError(`unknown field \`${key}\`, expected one of ${expected}${at ? ` at ${at}` : ''}`);
    }
  }
}

/** Accepts either one item or a list of items, like Qdrant's `MaybeOneOrMany`. */
export function oneOrMany(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

export const joinPath = (base: string, next: string | number) =>
  typeof next === 'number' ? `${base}[${next}]` : base ? `${base}.${next}` : next;

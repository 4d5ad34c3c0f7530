import { formatError, wrongInput } from './errors';

/** A point id after normalisation: an unsigned integer, or a lowercase hyphenated UUID. */
export type PointId = number | string;

// The textual forms the Rust `uuid` crate accepts: simple, hyphenated, braced and URN.
const UUID_FORMS = [
  /^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/i,
  /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i,
  /^\{([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}$/i,
  /^urn:uuid:([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i,
];

function normaliseUuid(text: string): string | undefined {
  for (const form of UUID_FORMS) {
    const match = form.exec(text);
    if (match) return match.slice(1).join('-').toLowerCase();
  }
  return undefined;
}

/** Parses an id from a JSON body; a numeric string is not an id, exactly as in Qdrant. */
export function parsePointId(value: unknown, at = ''): PointId {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const uuid = normaliseUuid(value);
    if (uuid) return uuid;
  }
  throw formatError(
    `value ${JSON.stringify(value)} is not a valid point ID, valid values are either an unsigned integer or a UUID${at ? ` at ${at}` : ''}`,
  );
}

/** Parses an id from a URL path segment, where integers arrive as text. */
export function parsePathPointId(text: string): PointId {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (Number.isSafeInteger(value)) return value;
  }
  const uuid = normaliseUuid(text);
  if (uuid) return uuid;
  throw wrongInput(`Unable to parse point id: ${text}`);
}

/** A string key that keeps integer 1 and UUID-ish "1" apart in maps and sets. */
export const pointKey = (id: PointId): string => (typeof id === 'number' ? `n${id}` : `u${id}`);

/** Qdrant orders integer ids before UUIDs, integers numerically and UUIDs by their bytes. */
export function comparePointIds(a: PointId, b: PointId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

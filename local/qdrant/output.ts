/**
 * How points leave the server: `with_payload` / `with_vector` selection and the JSON shapes of
 * `Record` (retrieve, scroll) and `ScoredPoint` (query, search).
 */
import type { StoredPoint } from './collection';
import { formatError, vectorNameNotFound } from './errors';
import { expectString, isObject, type JsonObject } from './json';
import { excludeAll, includeOnly, parseJsonPath, type JsonPath } from './jsonPath';
import { Float32, Float32List } from './floatJson';
import { DEFAULT_VECTOR, type StoredVector, type VectorSchema } from './vectors';

export type PayloadSelection =
  | { kind: 'all' }
  | { kind: 'none' }
  | { kind: 'include'; paths: JsonPath[] }
  | { kind: 'exclude'; paths: JsonPath[] };

/** `true`/`false`, a list of names, or nothing (then `fallback`). */
export type VectorSelection = boolean | string[];

const paths = (list: unknown, at: string) =>
  (Array.isArray(list) ? list : []).map((item, i) => parseJsonPath(expectString(item, `${at}[${i}]`)));

export function parseWithPayload(value: unknown, fallback: boolean): PayloadSelection {
  if (value === undefined || value === null) return { kind: fallback ? 'all' : 'none' };
  if (typeof value === 'boolean') return { kind: value ? 'all' : 'none' };
  if (Array.isArray(value)) return { kind: 'include', paths: paths(value, 'with_payload') };
  if (isObject(value) && Array.isArray(value.include)) return { kind: 'include', paths: paths(value.include, 'with_payload.include') };
  if (isObject(value) && Array.isArray(value.exclude)) return { kind: 'exclude', paths: paths(value.exclude, 'with_payload.exclude') };
  throw formatError('data did not match any variant of untagged enum WithPayloadInterface at with_payload');
}

/**
 * A request's `with_vector`, also spelt `with_vectors` (`#[serde(alias = "with_vectors")]` on the
 * request types in lib/api/src/rest/schema.rs).
 */
export function parseWithVector(request: JsonObject, fallback: boolean): VectorSelection {
  const value = request.with_vector ?? request.with_vectors;
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((name, i) => expectString(name, `with_vector[${i}]`));
  throw formatError('data did not match any variant of untagged enum WithVector at with_vector');
}

/**
 * Asking for a vector the collection does not have is an error in Qdrant (the segment reads each
 * selected name and fails with `OperationError::VectorNameNotExists`, "Not existing vector name
 * error", in lib/segment/src/common/operation_error.rs), not an empty selection.
 */
export function checkVectorSelection(schema: VectorSchema, selection: VectorSelection): void {
  if (!Array.isArray(selection)) return;
  for (const name of selection) if (!schema.dense.has(name) && !schema.sparse.has(name)) throw vectorNameNotFound(name);
}

function selectPayload(payload: JsonObject, selection: PayloadSelection): JsonObject | null {
  switch (selection.kind) {
    case 'none':
      return null;
    case 'all':
      return structuredClone(payload);
    case 'include':
      return structuredClone(includeOnly(payload, selection.paths));
    case 'exclude':
      return structuredClone(excludeAll(payload, selection.paths));
  }
}

/** Vector elements are f32 in Qdrant and are written as floats (see floatJson.ts). */
const vectorJson = (vector: StoredVector): unknown =>
  Array.isArray(vector)
    ? new Float32List(vector)
    : { indices: [...vector.indices], values: new Float32List(vector.values) };

/** A lone unnamed vector is returned bare; anything else as a map from name to vector. */
function selectVectors(vectors: Record<string, StoredVector>, selection: VectorSelection): unknown {
  const names = selection === true ? Object.keys(vectors) : (selection as string[]).filter((name) => vectors[name] !== undefined);
  const only = names.length === 1 ? names[0] : undefined;
  if (only === DEFAULT_VECTOR) return vectorJson(vectors[DEFAULT_VECTOR]!);
  return Object.fromEntries(names.map((name) => [name, vectorJson(vectors[name]!)]));
}

/**
 * The selected parts of a point. Qdrant's `Record` and `ScoredPoint` skip `payload` and `vector`
 * when they were not asked for (`#[serde(skip_serializing_if = "Option::is_none")]` in
 * lib/api/src/rest/schema.rs) instead of writing `null`.
 */
function selectedParts(point: StoredPoint, payload: PayloadSelection, vectors: VectorSelection): OutputObject {
  const parts: OutputObject = {};
  if (payload.kind !== 'none') parts.payload = selectPayload(point.payload, payload);
  if (vectors !== false) parts.vector = selectVectors(point.vectors, vectors);
  return parts;
}

/** A response object that may hold float markers; the server writes it with toQdrantJson. */
export type OutputObject = Record<string, unknown>;

export function recordJson(point: StoredPoint, payload: PayloadSelection, vectors: VectorSelection): OutputObject {
  return { id: point.id, ...selectedParts(point, payload, vectors) };
}

export function scoredPointJson(
  point: StoredPoint,
  score: number,
  payload: PayloadSelection,
  vectors: VectorSelection,
): OutputObject {
  // Scores are f32 in Qdrant (`ScoreType`).
  return { id: point.id, version: point.version, score: new Float32(score), ...selectedParts(point, payload, vectors) };
}

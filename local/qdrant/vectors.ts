/**
 * Vector configuration of a collection and the per-point vectors checked against it: dense
 * vectors with a distance, sparse vectors with an optional IDF modifier. Storing vectors already
 * preprocessed (unit length for Cosine, as Qdrant does) makes scoring a plain function of two
 * arrays.
 */
import {
  dimensionMismatch,
  formatError,
  unsupported,
  validationError,
  vectorNameNotFound,
  wrongInput,
} from './errors';
import { expectArray, expectObject, expectUnsigned, isNumberArray, isObject, joinPath, type JsonObject } from './json';

export type Distance = 'Cosine' | 'Euclid' | 'Dot' | 'Manhattan';
const DISTANCES: readonly Distance[] = ['Cosine', 'Euclid', 'Dot', 'Manhattan'];

export interface SparseVector {
  indices: number[];
  values: number[];
}

export type StoredVector = number[] | SparseVector;

/** The name Qdrant gives the single unnamed vector of a collection. */
export const DEFAULT_VECTOR = '';

export interface DenseVectorParams {
  size: number;
  distance: Distance;
  /** Exactly what the client configured, echoed back in collection info. */
  config: JsonObject;
}

export interface SparseVectorParams {
  idf: boolean;
  config: JsonObject;
}

export interface VectorSchema {
  /** Created with one unnamed vector (`vectors: {size, distance}`), not a map of names. */
  single: boolean;
  dense: Map<string, DenseVectorParams>;
  sparse: Map<string, SparseVectorParams>;
}

export const isSparse = (vector: StoredVector): vector is SparseVector => !Array.isArray(vector);

function parseDenseParams(value: unknown, at: string): DenseVectorParams {
  const object = expectObject(value, at);
  if (object.size === undefined) throw formatError(`missing field \`size\` at ${at}`);
  if (object.distance === undefined) throw formatError(`missing field \`distance\` at ${at}`);
  const size = expectUnsigned(object.size, joinPath(at, 'size'));
  if (size < 1) throw validationError(joinPath(at, 'size'), 'value 0 invalid, must be 1 or larger');
  const distance = object.distance;
  if (typeof distance !== 'string' || !DISTANCES.includes(distance as Distance)) {
    throw formatError(
      `unknown variant \`${String(distance)}\`, expected one of ${DISTANCES.map((d) => `\`${d}\``).join(', ')} at ${joinPath(at, 'distance')}`,
    );
  }
  if (object.multivector_config !== undefined && object.multivector_config !== null) {
    throw unsupported('Multivector configuration');
  }
  const config: JsonObject = { ...object, size, distance };
  return { size, distance: distance as Distance, config };
}

export function parseVectorSchema(vectors: unknown, sparseVectors: unknown): VectorSchema {
  const schema: VectorSchema = { single: false, dense: new Map(), sparse: new Map() };
  if (vectors !== undefined && vectors !== null) {
    const object = expectObject(vectors, 'vectors');
    if ('size' in object || 'distance' in object) {
      schema.single = true;
      schema.dense.set(DEFAULT_VECTOR, parseDenseParams(object, 'vectors'));
    } else {
      for (const [name, params] of Object.entries(object)) {
        schema.dense.set(name, parseDenseParams(params, joinPath('vectors', name)));
      }
    }
  }
  if (sparseVectors !== undefined && sparseVectors !== null) {
    for (const [name, params] of Object.entries(expectObject(sparseVectors, 'sparse_vectors'))) {
      const config = expectObject(params ?? {}, joinPath('sparse_vectors', name));
      if (schema.dense.has(name)) throw wrongInput(`Vector name ${name} is used by both dense and sparse vectors`);
      schema.sparse.set(name, { idf: config.modifier === 'idf', config: { ...config } });
    }
  }
  return schema;
}

export function vectorsConfigOutput(schema: VectorSchema): JsonObject {
  if (schema.single) return schema.dense.get(DEFAULT_VECTOR)?.config ?? {};
  return Object.fromEntries([...schema.dense].map(([name, params]) => [name, params.config]));
}

export const sparseConfigOutput = (schema: VectorSchema): JsonObject =>
  Object.fromEntries([...schema.sparse].map(([name, params]) => [name, params.config]));

function parseSparseVector(value: JsonObject, at: string): SparseVector {
  const indices = expectArray(value.indices, joinPath(at, 'indices')).map((index, i) =>
    expectUnsigned(index, `${joinPath(at, 'indices')}[${i}]`),
  );
  if (!isNumberArray(value.values)) throw formatError(`invalid type: expected a sequence of f32 at ${joinPath(at, 'values')}`);
  const values = value.values;
  if (indices.length !== values.length) throw validationError(at, 'indices and values must be the same length');
  if (new Set(indices).size !== indices.length) throw validationError(at, 'indices must be unique');
  // Qdrant keeps sparse vectors sorted by index, and returns them that way.
  const order = indices.map((_, i) => i).sort((a, b) => indices[a]! - indices[b]!);
  return { indices: order.map((i) => indices[i]!), values: order.map((i) => values[i]!) };
}

/** Unit length for Cosine, unchanged otherwise; a zero vector stays zero (as in Qdrant). */
function preprocessDense(distance: Distance, vector: number[]): number[] {
  if (distance !== 'Cosine') return [...vector];
  const length = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  return length < Number.EPSILON ? [...vector] : vector.map((x) => x / length);
}

/** Checks one vector value against the named slot and returns it ready for storage or search. */
export function prepareVector(schema: VectorSchema, name: string, value: unknown, at: string): StoredVector {
  const dense = schema.dense.get(name);
  const sparse = schema.sparse.get(name);
  if (!dense && !sparse) throw vectorNameNotFound(name);
  if (Array.isArray(value) && value.length > 0 && value.every(Array.isArray)) throw unsupported('Multivectors');
  if (dense) {
    if (!Array.isArray(value)) {
      if (isObject(value) && 'indices' in value) throw wrongInput('Conversion between sparse and regular vectors failed');
      throw formatError(`Expected some form of vector at ${at}`);
    }
    if (!isNumberArray(value)) throw formatError(`invalid type: expected a sequence of f32 at ${at}`);
    if (value.length !== dense.size) throw dimensionMismatch(dense.size, value.length);
    return preprocessDense(dense.distance, value);
  }
  if (!isObject(value) || !('indices' in value)) {
    if (Array.isArray(value)) throw wrongInput('Conversion between sparse and regular vectors failed');
    throw formatError(`Expected some form of vector at ${at}`);
  }
  return parseSparseVector(value, at);
}

/** A point's `vector` field: an unnamed dense vector, or a map from vector name to vector. */
export function preparePointVectors(schema: VectorSchema, value: unknown, at: string): Record<string, StoredVector> {
  if (value === undefined) throw formatError(`missing field \`vector\` at ${at}`);
  if (Array.isArray(value)) return { [DEFAULT_VECTOR]: prepareVector(schema, DEFAULT_VECTOR, value, at) };
  if (!isObject(value)) throw formatError(`Expected some form of vector at ${at}`);
  if ('text' in value && typeof value.text === 'string' && 'model' in value) throw unsupported('Inference (Document)');
  const prepared: Record<string, StoredVector> = {};
  for (const [name, vector] of Object.entries(value)) {
    prepared[name] = prepareVector(schema, name, vector, joinPath(at, name));
  }
  return prepared;
}

export const higherIsBetter = (distance: Distance) => distance === 'Cosine' || distance === 'Dot';

/** The score Qdrant reports: similarity for Cosine/Dot, the distance itself for Euclid/Manhattan. */
export function denseScore(distance: Distance, query: number[], stored: number[]): number {
  const similarity = rawSimilarity(distance, query, stored);
  // Math.abs keeps a distance of 0 from printing as -0.0.
  if (distance === 'Euclid') return Math.sqrt(Math.abs(similarity));
  return distance === 'Manhattan' ? Math.abs(similarity) : similarity;
}

/**
 * The metric's similarity before Qdrant's post-processing (`Metric::similarity` in
 * lib/segment/src/spaces/simple.rs): the dot product for Cosine (on unit vectors) and Dot, the
 * negated squared distance for Euclid, the negated distance for Manhattan. Custom queries such as
 * recommend `best_score` and `sum_scores` score with it.
 */
export function rawSimilarity(distance: Distance, a: number[], b: number[]): number {
  let total = 0;
  switch (distance) {
    case 'Cosine':
    case 'Dot':
      for (let i = 0; i < a.length; i++) total += a[i]! * b[i]!;
      return total;
    case 'Euclid':
      for (let i = 0; i < a.length; i++) total -= (a[i]! - b[i]!) ** 2;
      return total;
    case 'Manhattan':
      for (let i = 0; i < a.length; i++) total -= Math.abs(a[i]! - b[i]!);
      return total;
  }
}

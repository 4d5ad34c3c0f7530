/**
 * The point update endpoints (upsert, delete, payload and vector edits, and the batch endpoint
 * that chains them). Each request is fully parsed and validated before the first point changes,
 * so a bad point in a request leaves the collection untouched.
 */
import type { Collection, StoredPoint } from './collection';
import { formatError, pointNotFound, validationError, wrongInput } from './errors';
import { parseFilter, type Filter } from './filterParse';
import {
  expectArray,
  expectObject,
  expectString,
  isObject,
  joinPath,
  optional,
  type JsonObject,
} from './json';
import { parseJsonPath, removeAtPath, setAtPath, type JsonPath } from './jsonPath';
import { parsePointId, type PointId } from './pointId';
import { DEFAULT_VECTOR, prepareVector, preparePointVectors, type StoredVector } from './vectors';

type UpdateMode = 'upsert' | 'insert_only' | 'update_only';

interface PreparedPoint {
  id: PointId;
  vectors: Record<string, StoredVector>;
  payload: JsonObject;
}

const parsePayload = (value: unknown, at: string): JsonObject =>
  value === undefined || value === null ? {} : structuredClone(expectObject(value, at));

function parsePoints(collection: Collection, body: JsonObject): PreparedPoint[] {
  if (body.points !== undefined) {
    return expectArray(body.points, 'points').map((raw, i) => {
      const at = `points[${i}]`;
      const point = expectObject(raw, at);
      if (point.id === undefined) throw formatError(`missing field \`id\` at ${at}`);
      return {
        id: parsePointId(point.id, `${at}.id`),
        vectors: preparePointVectors(collection.schema, point.vector, `${at}.vector`),
        payload: parsePayload(point.payload, `${at}.payload`),
      };
    });
  }
  if (body.batch !== undefined) {
    const batch = expectObject(body.batch, 'batch');
    const ids = expectArray(batch.ids, 'batch.ids').map((id, i) => parsePointId(id, `batch.ids[${i}]`));
    const payloads = optional(batch.payloads, (raw) => expectArray(raw, 'batch.payloads')) ?? [];
    // `vectors` is either a list of unnamed vectors or a map from name to a list of vectors.
    const columns: [string, unknown[]][] = Array.isArray(batch.vectors)
      ? [[DEFAULT_VECTOR, batch.vectors]]
      : Object.entries(expectObject(batch.vectors, 'batch.vectors')).map(([name, list]) => [
          name,
          expectArray(list, joinPath('batch.vectors', name)),
        ]);
    for (const [name, list] of columns) {
      if (list.length !== ids.length) {
        throw wrongInput(`number of vectors for \`${name || 'default'}\` (${list.length}) does not match number of ids (${ids.length})`);
      }
    }
    if (payloads.length > 0 && payloads.length !== ids.length) {
      throw wrongInput(`number of payloads (${payloads.length}) does not match number of ids (${ids.length})`);
    }
    return ids.map((id, i) => ({
      id,
      vectors: Object.fromEntries(
        columns.map(([name, list]) => [name, prepareVector(collection.schema, name, list[i], `batch.vectors[${i}]`)]),
      ),
      payload: parsePayload(payloads[i], `batch.payloads[${i}]`),
    }));
  }
  throw formatError('data did not match any variant of untagged enum PointInsertOperations');
}

function parseUpdateMode(value: unknown): UpdateMode {
  if (value === undefined || value === null) return 'upsert';
  if (value === 'upsert' || value === 'insert_only' || value === 'update_only') return value;
  throw formatError(`unknown variant \`${String(value)}\`, expected one of \`upsert\`, \`insert_only\`, \`update_only\` at update_mode`);
}

/**
 * `update_filter` guards overwrites only: an existing point is replaced when it matches the
 * filter, a new point is always inserted.
 */
export function upsertPoints(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const points = parsePoints(collection, object);
  const updateFilter = optional(object.update_filter, (raw) => parseFilter(raw, 'update_filter'));
  const mode = parseUpdateMode(object.update_mode);
  const version = collection.nextOperationId();
  for (const point of points) {
    const existing = collection.get(point.id);
    if (existing && (mode === 'insert_only' || !collection.matches(existing, updateFilter))) continue;
    if (!existing && mode === 'update_only') continue;
    collection.put({ ...point, version });
  }
}

interface Selector {
  ids?: PointId[];
  filter?: Filter;
}

function parseSelector(object: JsonObject): Selector {
  const selector: Selector = {};
  const ids = optional(object.points, (raw) => expectArray(raw, 'points').map((id, i) => parsePointId(id, `points[${i}]`)));
  if (ids) selector.ids = ids;
  const filter = optional(object.filter, (raw) => parseFilter(raw));
  if (filter) selector.filter = filter;
  if (!ids && !filter) throw validationError('points', 'Either list of point ids or filter must be provided');
  return selector;
}

interface Selection {
  points: StoredPoint[];
  /** The first listed id that names no point: the update still changes the others, then answers 404 for it. */
  missing?: PointId;
}

/**
 * The points a selector names: each listed id that exists, and every point a filter matches.
 * Qdrant applies a payload or vector update to the listed points that exist and only then fails
 * with the first missing one (`check_unprocessed_points` after `apply_points` in
 * lib/collection/src/collection_manager/segments_updater.rs); Qdrant Edge, built from the same
 * shard code, does the same.
 */
function select(collection: Collection, selector: Selector): Selection {
  const selected = new Set<StoredPoint>();
  let missing: PointId | undefined;
  for (const id of selector.ids ?? []) {
    const point = collection.get(id);
    if (point) selected.add(point);
    else missing ??= id;
  }
  if (selector.filter) for (const point of collection.filtered(selector.filter)) selected.add(point);
  return missing === undefined ? { points: [...selected] } : { points: [...selected], missing };
}

export function deletePoints(collection: Collection, body: unknown): void {
  const selector = parseSelector(expectObject(body, ''));
  collection.nextOperationId();
  for (const id of selector.ids ?? []) collection.remove(id);
  if (selector.filter) for (const point of collection.filtered(selector.filter)) collection.remove(point.id);
  collection.vacuumIfLittered();
}

function touch(collection: Collection, selection: Selection, change: (point: StoredPoint) => void): void {
  const version = collection.nextOperationId();
  for (const point of selection.points) {
    change(point);
    point.version = version;
  }
  if (selection.missing !== undefined) throw pointNotFound(selection.missing);
}

const parseKey = (value: unknown): JsonPath | undefined =>
  optional(value, (raw) => parseJsonPath(expectString(raw, 'key')));

export function setPayload(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const payload = expectObject(object.payload, 'payload');
  const key = parseKey(object.key);
  touch(collection, select(collection, parseSelector(object)), (point) => setAtPath(point.payload, key, payload));
}

export function overwritePayload(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const payload = expectObject(object.payload, 'payload');
  const key = parseKey(object.key);
  touch(collection, select(collection, parseSelector(object)), (point) => {
    if (!key) {
      point.payload = structuredClone(payload);
      return;
    }
    removeAtPath(point.payload, key);
    setAtPath(point.payload, key, payload);
  });
}

export function deletePayloadKeys(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const keys = expectArray(object.keys, 'keys').map((key, i) => parseJsonPath(expectString(key, `keys[${i}]`)));
  touch(collection, select(collection, parseSelector(object)), (point) => {
    for (const key of keys) removeAtPath(point.payload, key);
  });
}

export function clearPayload(collection: Collection, body: unknown): void {
  touch(collection, select(collection, parseSelector(expectObject(body, ''))), (point) => {
    point.payload = {};
  });
}

/** Replaces the given named vectors and keeps the point's other vectors. */
export function updateVectors(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const updates = expectArray(object.points, 'points').map((raw, i) => {
    const point = expectObject(raw, `points[${i}]`);
    return {
      id: parsePointId(point.id, `points[${i}].id`),
      vectors: preparePointVectors(collection.schema, point.vector, `points[${i}].vector`),
    };
  });
  const updateFilter = optional(object.update_filter, (raw) => parseFilter(raw, 'update_filter'));
  const targets = updates.map((update) => {
    const point = collection.get(update.id);
    if (!point) throw pointNotFound(update.id);
    return { point, vectors: update.vectors };
  });
  const version = collection.nextOperationId();
  for (const { point, vectors } of targets) {
    if (!collection.matches(point, updateFilter)) continue;
    collection.setVectors(point, vectors);
    point.version = version;
  }
}

export function deleteVectors(collection: Collection, body: unknown): void {
  const object = expectObject(body, '');
  const names = expectArray(object.vector, 'vector').map((name, i) => expectString(name, `vector[${i}]`));
  for (const name of names) {
    if (!collection.schema.dense.has(name) && !collection.schema.sparse.has(name)) {
      throw wrongInput(`Not existing vector name error: ${name}`);
    }
  }
  touch(collection, select(collection, parseSelector(object)), (point) => {
    collection.deleteVectors(point, names);
  });
}

const BATCH_OPERATIONS: Record<string, (collection: Collection, body: unknown) => void> = {
  upsert: upsertPoints,
  delete: deletePoints,
  set_payload: setPayload,
  overwrite_payload: overwritePayload,
  delete_payload: deletePayloadKeys,
  clear_payload: clearPayload,
  update_vectors: updateVectors,
  delete_vectors: deleteVectors,
};

/** Runs the operations in order; returns how many operation ids were used, one per operation. */
export function batchUpdate(collection: Collection, body: unknown): number[] {
  const operations = expectArray(expectObject(body, '').operations, 'operations');
  const steps = operations.map((raw, i) => {
    const operation = expectObject(raw, `operations[${i}]`);
    const [name] = Object.keys(operation);
    const apply = name === undefined ? undefined : BATCH_OPERATIONS[name];
    if (!apply || !isObject(operation[name!])) {
      throw formatError(`data did not match any variant of untagged enum UpdateOperation at operations[${i}]`);
    }
    return () => apply(collection, operation[name!]);
  });
  return steps.map((step) => {
    step();
    return collection.lastOperation();
  });
}

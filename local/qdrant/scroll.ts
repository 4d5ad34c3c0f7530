/**
 * Reading points without a vector query: retrieve by id, scroll (id order, or `order_by` a
 * range-indexed field) and count.
 */
import type { Collection, StoredPoint } from './collection';
import { parseDatetime } from './datetime';
import { badRequest, validationError } from './errors';
import { parseFilter } from './filterParse';
import {
  expectArray,
  expectNumber,
  expectObject,
  expectString,
  expectUnsigned,
  isObject,
  optional,
  type JsonObject,
  type JsonValue,
} from './json';
import { formatJsonPath, getValues, parseJsonPath } from './jsonPath';
import { checkVectorSelection, parseWithPayload, parseWithVector, recordJson, type OutputObject } from './output';
import { Float64 } from './floatJson';
import { comparePointIds, parsePointId } from './pointId';

export function retrievePoints(collection: Collection, body: unknown): OutputObject[] {
  const object = expectObject(body, '');
  const ids = expectArray(object.ids, 'ids').map((id, i) => parsePointId(id, `ids[${i}]`));
  const withPayload = parseWithPayload(object.with_payload, true);
  const withVector = parseWithVector(object, false);
  checkVectorSelection(collection.schema, withVector);
  const seen = new Set<StoredPoint>();
  const records: OutputObject[] = [];
  for (const id of ids) {
    const point = collection.get(id);
    if (!point || seen.has(point)) continue;
    seen.add(point);
    records.push(recordJson(point, withPayload, withVector));
  }
  return records;
}

export function scrollPoints(collection: Collection, body: unknown): OutputObject {
  const object = expectObject(body, '');
  const filter = optional(object.filter, (raw) => parseFilter(raw));
  const limit = optional(object.limit, (raw) => expectUnsigned(raw, 'limit')) ?? 10;
  if (limit < 1) throw validationError('limit', 'value 0 invalid, must be 1 or larger');
  const withPayload = parseWithPayload(object.with_payload, true);
  const withVector = parseWithVector(object, false);
  checkVectorSelection(collection.schema, withVector);
  const offset = optional(object.offset, (raw) => parsePointId(raw, 'offset'));

  if (object.order_by !== undefined && object.order_by !== null) {
    if (offset !== undefined) throw badRequest('Cannot use an `offset` when using `order_by`. The alternative for paging is to use `order_by.start_from` and a filter to exclude the IDs that you\'ve already seen for the `order_by.start_from` value');
    const ordered = orderByField(collection, object.order_by, collection.filtered(filter));
    return {
      points: ordered.slice(0, limit).map(({ point, value }) => ({ ...recordJson(point, withPayload, withVector), order_value: value })),
      next_page_offset: null,
    };
  }

  const matching = collection.filtered(filter);
  const start = offset === undefined ? 0 : matching.findIndex((point) => comparePointIds(point.id, offset) >= 0);
  const from = start < 0 ? matching.length : start;
  const page = matching.slice(from, from + limit);
  return {
    points: page.map((point) => recordJson(point, withPayload, withVector)),
    next_page_offset: matching[from + limit]?.id ?? null,
  };
}

/** A datetime index holds i64 microseconds since the epoch, and that is its order value (Qdrant Edge answers 1704067200000000 for 2024-01-01T00:00:00Z). */
function microseconds(text: string): number | undefined {
  const millis = parseDatetime(text);
  return millis === undefined ? undefined : Math.round(millis * 1000);
}

const RANGE_INDEX_TYPES = new Set(['integer', 'float', 'datetime']);

/** Qdrant only orders by fields that have a range-capable payload index. */
function orderByField(collection: Collection, raw: JsonValue, points: StoredPoint[]) {
  const spec = typeof raw === 'string' ? { key: raw } : expectObject(raw, 'order_by');
  const key = expectString(spec.key, 'order_by.key');
  const path = parseJsonPath(key);
  const index = collection.payloadIndexes.get(formatJsonPath(path));
  if (!index || !RANGE_INDEX_TYPES.has(index.dataType)) {
    throw badRequest(
      `No range index for \`order_by\` key \`${key}\`. Please create one to use \`order_by\`. ` +
        'Check https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload schemas support Range conditions',
    );
  }
  const descending = isObject(spec) && spec.direction === 'desc';
  const startFrom = isObject(spec)
    ? optional(spec.start_from, (value) =>
        typeof value === 'string' ? (microseconds(value) ?? expectNumber(value, 'order_by.start_from')) : expectNumber(value, 'order_by.start_from'),
      )
    : undefined;
  const numeric = (value: JsonValue): number | undefined => {
    if (typeof value === 'number') return index.dataType === 'integer' && !Number.isInteger(value) ? undefined : value;
    if (typeof value === 'string' && index.dataType === 'datetime') return microseconds(value);
    return undefined;
  };
  // Qdrant streams the range index's (value, point) pairs (`Segment::filtered_read_by_index_ordered`,
  // lib/segment/src/segment/order_by.rs): a point with several values is listed once per value.
  const entries: { point: StoredPoint; value: number }[] = [];
  for (const point of points) {
    const values = getValues(point.payload, path)
      .flatMap((value) => (Array.isArray(value) ? value : [value]))
      .map(numeric)
      .filter((value): value is number => value !== undefined);
    for (const value of values) {
      if (startFrom !== undefined && (descending ? value > startFrom : value < startFrom)) continue;
      entries.push({ point, value });
    }
  }
  entries.sort((a, b) => (descending ? b.value - a.value : a.value - b.value) || comparePointIds(a.point.id, b.point.id));
  // `OrderValue` is an i64 for integer (and datetime) indexes and an f64 for float ones.
  return index.dataType === 'float' ? entries.map(({ point, value }) => ({ point, value: new Float64(value) })) : entries;
}

export function countPoints(collection: Collection, body: unknown): JsonObject {
  const object = expectObject(body, '');
  const filter = optional(object.filter, (raw) => parseFilter(raw));
  return { count: filter ? collection.filtered(filter).length : collection.points.size };
}

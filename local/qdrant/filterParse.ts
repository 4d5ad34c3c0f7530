/**
 * Turns a request's `filter` JSON into a checked tree, so malformed filters fail with a 400 before
 * any point is looked at (as in Qdrant, where serde rejects them) and evaluation needs no checks.
 */
import { formatError, validationError } from './errors';
import {
  denyUnknownFields,
  expectArray,
  expectNumber,
  expectObject,
  expectString,
  expectUnsigned,
  isObject,
  joinPath,
  oneOrMany,
  optional,
  type JsonObject,
} from './json';
import { parseDatetime } from './datetime';
import { parseJsonPath, type JsonPath } from './jsonPath';
import { parsePointId, pointKey } from './pointId';

export interface Filter {
  must?: Condition[];
  should?: Condition[];
  mustNot?: Condition[];
  minShould?: { conditions: Condition[]; minCount: number };
}

export type Condition =
  | { type: 'field'; field: FieldCondition }
  | { type: 'is_empty'; path: JsonPath }
  | { type: 'is_null'; path: JsonPath }
  | { type: 'has_id'; keys: Set<string> }
  | { type: 'has_vector'; name: string }
  | { type: 'nested'; path: JsonPath; filter: Filter }
  | { type: 'filter'; filter: Filter };

export type Match =
  | { kind: 'value'; value: string | number | boolean }
  | { kind: 'any'; values: (string | number)[] }
  | { kind: 'except'; values: (string | number)[] }
  | { kind: 'text' | 'text_any' | 'phrase' | 'prefix'; text: string };

export interface Bounds {
  lt?: number;
  gt?: number;
  lte?: number;
  gte?: number;
}

export interface GeoPoint {
  lon: number;
  lat: number;
}

export interface FieldCondition {
  key: string;
  path: JsonPath;
  match?: Match;
  range?: Bounds;
  /** Range bounds were datetimes; payload strings are then compared as instants. */
  datetimeRange?: boolean;
  valuesCount?: Bounds;
  geoBoundingBox?: { topLeft: GeoPoint; bottomRight: GeoPoint };
  geoRadius?: { center: GeoPoint; radius: number };
  geoPolygon?: { exterior: GeoPoint[]; interiors: GeoPoint[][] };
  isEmpty?: boolean;
  isNull?: boolean;
}

const FILTER_FIELDS = ['should', 'min_should', 'must', 'must_not'] as const;

export function parseFilter(value: unknown, at = 'filter'): Filter {
  const object = expectObject(value, at);
  denyUnknownFields(object, FILTER_FIELDS, at);
  const list = (key: string) =>
    optional(object[key], (raw) => oneOrMany(raw).map((item, i) => parseCondition(item, joinPath(joinPath(at, key), i))));
  const filter: Filter = {};
  const must = list('must');
  const should = list('should');
  const mustNot = list('must_not');
  if (must) filter.must = must;
  if (should) filter.should = should;
  if (mustNot) filter.mustNot = mustNot;
  const minShould = optional(object.min_should, (raw) => {
    const where = joinPath(at, 'min_should');
    const spec = expectObject(raw, where);
    const conditions = expectArray(spec.conditions, joinPath(where, 'conditions')).map((item, i) =>
      parseCondition(item, joinPath(joinPath(where, 'conditions'), i)),
    );
    const minCount = expectUnsigned(spec.min_count, joinPath(where, 'min_count'));
    if (minCount < 1) throw validationError(joinPath(where, 'min_count'), 'value 0 invalid, must be 1 or larger');
    return { conditions, minCount };
  });
  if (minShould) filter.minShould = minShould;
  return filter;
}

function parseCondition(value: unknown, at: string): Condition {
  const object = expectObject(value, at);
  if ('key' in object) return { type: 'field', field: parseFieldCondition(object, at) };
  if (isObject(object.is_empty)) return { type: 'is_empty', path: parseKey(object.is_empty.key, `${at}.is_empty.key`) };
  if (isObject(object.is_null)) return { type: 'is_null', path: parseKey(object.is_null.key, `${at}.is_null.key`) };
  if ('has_id' in object) {
    const ids = expectArray(object.has_id, `${at}.has_id`);
    return { type: 'has_id', keys: new Set(ids.map((id, i) => pointKey(parsePointId(id, `${at}.has_id[${i}]`)))) };
  }
  if ('has_vector' in object) return { type: 'has_vector', name: expectString(object.has_vector, `${at}.has_vector`) };
  if (isObject(object.nested)) {
    const nested = object.nested;
    const path = parseKey(nested.key, `${at}.nested.key`);
    // A nested key addresses the array itself, with or without a trailing `[]`.
    const last = path.rest[path.rest.length - 1];
    if (!last || !('wildcard' in last)) path.rest.push({ wildcard: true });
    return { type: 'nested', path, filter: parseFilter(nested.filter, `${at}.nested.filter`) };
  }
  if (Object.keys(object).every((key) => (FILTER_FIELDS as readonly string[]).includes(key))) {
    return { type: 'filter', filter: parseFilter(object, at) };
  }
  throw formatError(
    'Expected some form of condition, which can be a field condition (like {"key": ..., "match": ... }), ' +
      'or some other mentioned in the documentation: ' +
      `https://qdrant.tech/documentation/concepts/filtering/#filtering-conditions at ${at}`,
  );
}

const parseKey = (value: unknown, at: string) => parseJsonPath(expectString(value, at));

function parseFieldCondition(object: JsonObject, at: string): FieldCondition {
  const key = expectString(object.key, `${at}.key`);
  const condition: FieldCondition = { key, path: parseJsonPath(key) };
  const match = optional(object.match, (raw) => parseMatch(raw, `${at}.match`));
  if (match) condition.match = match;
  if (object.range !== undefined && object.range !== null) {
    const { bounds, datetime } = parseRange(object.range, `${at}.range`);
    condition.range = bounds;
    if (datetime) condition.datetimeRange = true;
  }
  const valuesCount = optional(object.values_count, (raw) => parseBounds(raw, `${at}.values_count`, expectUnsigned));
  if (valuesCount) condition.valuesCount = valuesCount;
  const box = optional(object.geo_bounding_box, (raw) => {
    const spec = expectObject(raw, `${at}.geo_bounding_box`);
    return {
      topLeft: parseGeoPoint(spec.top_left, `${at}.geo_bounding_box.top_left`),
      bottomRight: parseGeoPoint(spec.bottom_right, `${at}.geo_bounding_box.bottom_right`),
    };
  });
  if (box) condition.geoBoundingBox = box;
  const radius = optional(object.geo_radius, (raw) => {
    const spec = expectObject(raw, `${at}.geo_radius`);
    return {
      center: parseGeoPoint(spec.center, `${at}.geo_radius.center`),
      radius: expectNumber(spec.radius, `${at}.geo_radius.radius`),
    };
  });
  if (radius) condition.geoRadius = radius;
  const polygon = optional(object.geo_polygon, (raw) => {
    const spec = expectObject(raw, `${at}.geo_polygon`);
    const ring = (value: unknown, where: string) =>
      expectArray(expectObject(value, where).points, `${where}.points`).map((point, i) =>
        parseGeoPoint(point, `${where}.points[${i}]`),
      );
    return {
      exterior: ring(spec.exterior, `${at}.geo_polygon.exterior`),
      interiors: (optional(spec.interiors, (list) => expectArray(list, `${at}.geo_polygon.interiors`)) ?? []).map(
        (interior, i) => ring(interior, `${at}.geo_polygon.interiors[${i}]`),
      ),
    };
  });
  if (polygon) condition.geoPolygon = polygon;
  if (typeof object.is_empty === 'boolean') condition.isEmpty = object.is_empty;
  if (typeof object.is_null === 'boolean') condition.isNull = object.is_null;
  const given = [
    condition.match,
    condition.range,
    condition.valuesCount,
    condition.geoBoundingBox,
    condition.geoRadius,
    condition.geoPolygon,
    condition.isEmpty,
    condition.isNull,
  ].some((part) => part !== undefined);
  if (!given) throw validationError(at, 'At least one field condition must be specified');
  return condition;
}

function parseGeoPoint(value: unknown, at: string): GeoPoint {
  const object = expectObject(value, at);
  return { lon: expectNumber(object.lon, `${at}.lon`), lat: expectNumber(object.lat, `${at}.lat`) };
}

function parseMatch(value: unknown, at: string): Match {
  const object = expectObject(value, at);
  const noVariant = () => formatError(`data did not match any variant of untagged enum Match at ${at}`);
  if ('value' in object) {
    const raw = object.value;
    if (typeof raw === 'string' || typeof raw === 'boolean' || (typeof raw === 'number' && Number.isSafeInteger(raw))) {
      return { kind: 'value', value: raw };
    }
    throw noVariant();
  }
  for (const kind of ['text', 'text_any', 'phrase', 'prefix'] as const) {
    if (kind in object) return { kind, text: expectString(object[kind], `${at}.${kind}`) };
  }
  for (const kind of ['any', 'except'] as const) {
    if (kind in object) {
      const list = expectArray(object[kind], `${at}.${kind}`);
      const allStrings = list.every((item) => typeof item === 'string');
      const allIntegers = list.every((item) => typeof item === 'number' && Number.isSafeInteger(item));
      if (!allStrings && !allIntegers) throw noVariant();
      return { kind, values: list as (string | number)[] };
    }
  }
  throw noVariant();
}

function parseBounds(value: unknown, at: string, read: (value: unknown, at: string) => number): Bounds {
  const object = expectObject(value, at);
  const bounds: Bounds = {};
  for (const side of ['lt', 'gt', 'lte', 'gte'] as const) {
    const bound = optional(object[side], (raw) => read(raw, `${at}.${side}`));
    if (bound !== undefined) bounds[side] = bound;
  }
  return bounds;
}

function parseRange(value: unknown, at: string): { bounds: Bounds; datetime: boolean } {
  const object = expectObject(value, at);
  const datetime = ['lt', 'gt', 'lte', 'gte'].some((side) => typeof object[side] === 'string');
  if (!datetime) return { bounds: parseBounds(object, at, expectNumber), datetime };
  const readDatetime = (raw: unknown, where: string) => {
    const parsed = parseDatetime(expectString(raw, where));
    if (parsed === undefined) {
      throw formatError(
        `'${String(raw)}' does not match accepted datetime format (RFC3339). Example: 2014-01-01T00:00:00Z at ${where}`,
      );
    }
    return parsed;
  };
  return { bounds: parseBounds(object, at, readDatetime), datetime };
}

/**
 * A parent stage's filter pushed into a prefetch, as Qdrant's planner does it: `recurse_prefetches`
 * (lib/shard/src/query/planned_query.rs) calls `Filter::merge_opts(propagate_filter, filter)`, and
 * `Filter::merge_owned` (lib/segment/src/types.rs) concatenates each clause list: `must` and
 * `must_not` stay conjunctive, but `should` becomes one list (either side's condition suffices) and
 * `min_should` one union of conditions with the larger `min_count`. That is not an AND of the two
 * filters when both carry `should` or `min_should` (qdrant/qdrant#10594, open); the local server
 * answers as Qdrant 1.19 does.
 */
export function mergeFilters(parent: Filter | undefined, own: Filter | undefined): Filter | undefined {
  if (!parent) return own;
  if (!own) return parent;
  const concat = (a: Condition[] | undefined, b: Condition[] | undefined) => (a && b ? [...a, ...b] : (a ?? b));
  const merged: Filter = {};
  const should = concat(parent.should, own.should);
  const must = concat(parent.must, own.must);
  const mustNot = concat(parent.mustNot, own.mustNot);
  if (should) merged.should = should;
  if (must) merged.must = must;
  if (mustNot) merged.mustNot = mustNot;
  const a = parent.minShould;
  const b = own.minShould;
  const minShould = a && b ? { conditions: [...a.conditions, ...b.conditions], minCount: Math.max(a.minCount, b.minCount) } : (a ?? b);
  if (minShould) merged.minShould = minShould;
  return merged;
}

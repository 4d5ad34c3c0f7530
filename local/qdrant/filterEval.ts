/**
 * Decides whether a point passes a filter, following Qdrant's `query_checker` and
 * `condition_checker`: a condition on a multi-valued field passes when any value passes, a
 * missing field fails `match`/`range` (so it passes under `must_not`), `is_empty` holds for
 * missing, `null` and `[]`, and `is_null` only for an explicit `null`.
 */
import { parseDatetime } from './datetime';
import type { Bounds, Condition, FieldCondition, Filter, GeoPoint, Match } from './filterParse';
import { isObject, type JsonObject, type JsonValue } from './json';
import { formatJsonPath, getValues } from './jsonPath';

export interface FilterSubject {
  payload: JsonObject;
  /** Absent inside `nested` conditions, where Qdrant does not support `has_id`. */
  idKey?: string;
  hasVector?: (name: string) => boolean;
}

export interface TextIndexOptions {
  lowercase: boolean;
}

/** Full-text indexes change how `match.text` behaves, so evaluation needs to know about them. */
export type TextIndexLookup = (key: string) => TextIndexOptions | undefined;

const noTextIndexes: TextIndexLookup = () => undefined;

// Plain loops, no per-call closures: this runs for every point of every filtered scan.
export function matchesFilter(filter: Filter, subject: FilterSubject, textIndex: TextIndexLookup = noTextIndexes): boolean {
  if (filter.should) {
    let any = false;
    for (const condition of filter.should) {
      if (checkCondition(condition, subject, textIndex)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (filter.minShould) {
    let passed = 0;
    for (const condition of filter.minShould.conditions) {
      if (checkCondition(condition, subject, textIndex) && ++passed >= filter.minShould.minCount) break;
    }
    if (passed < filter.minShould.minCount) return false;
  }
  if (filter.must) {
    for (const condition of filter.must) if (!checkCondition(condition, subject, textIndex)) return false;
  }
  if (filter.mustNot) {
    for (const condition of filter.mustNot) if (checkCondition(condition, subject, textIndex)) return false;
  }
  return true;
}

function checkCondition(condition: Condition, subject: FilterSubject, textIndex: TextIndexLookup): boolean {
  switch (condition.type) {
    case 'filter':
      return matchesFilter(condition.filter, subject, textIndex);
    case 'field':
      return checkField(condition.field, subject.payload, textIndex);
    case 'is_empty':
      return isEmpty(getValues(subject.payload, condition.path));
    case 'is_null':
      return isNull(getValues(subject.payload, condition.path));
    case 'has_id':
      return subject.idKey !== undefined && condition.keys.has(subject.idKey);
    case 'has_vector':
      return subject.hasVector?.(condition.name) ?? false;
    case 'nested':
      return getValues(subject.payload, condition.path).some(
        (element) => isObject(element) && matchesFilter(condition.filter, { payload: element }),
      );
  }
}

const isEmpty = (values: JsonValue[]) =>
  values.every((value) => value === null || (Array.isArray(value) && value.length === 0));

const isNull = (values: JsonValue[]) => values.some((value) => value === null);

function checkField(field: FieldCondition, payload: JsonObject, textIndex: TextIndexLookup): boolean {
  const values = getValues(payload, field.path);
  if (field.isEmpty !== undefined && isEmpty(values) === field.isEmpty) return true;
  if (field.isNull !== undefined && isNull(values) === field.isNull) return true;
  if (values.length === 0) {
    // Only a count can hold for a field that is not there: it has zero values.
    return field.valuesCount !== undefined && inBounds(0, field.valuesCount);
  }
  const text = textIndex(formatJsonPath(field.path));
  return values.some((value) => checkValue(field, value, text));
}

/** One value found at the key; an array there counts as its elements, except for `values_count`. */
function checkValue(field: FieldCondition, value: JsonValue, text: TextIndexOptions | undefined): boolean {
  if (field.valuesCount) return inBounds(countValues(value), field.valuesCount);
  if (Array.isArray(value)) return value.some((element) => checkScalar(field, element, text));
  return checkScalar(field, value, text);
}

const countValues = (value: JsonValue) => (value === null ? 0 : Array.isArray(value) ? value.length : 1);

/** Qdrant ORs the kinds of condition given on one field condition. */
function checkScalar(field: FieldCondition, value: JsonValue, text: TextIndexOptions | undefined): boolean {
  if (field.match && checkMatch(field.match, value, text)) return true;
  if (field.range && checkRange(field.range, value, field.datetimeRange === true)) return true;
  const point = asGeoPoint(value);
  if (point) {
    if (field.geoBoundingBox && inBoundingBox(point, field.geoBoundingBox.topLeft, field.geoBoundingBox.bottomRight)) {
      return true;
    }
    if (field.geoRadius && haversineMeters(point, field.geoRadius.center) < field.geoRadius.radius) return true;
    if (
      field.geoPolygon &&
      inRing(point, field.geoPolygon.exterior) &&
      !field.geoPolygon.interiors.some((ring) => inRing(point, ring))
    ) {
      return true;
    }
  }
  return false;
}

function checkMatch(match: Match, value: JsonValue, text: TextIndexOptions | undefined): boolean {
  switch (match.kind) {
    case 'value':
      return value === match.value;
    case 'any':
      return (typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))) &&
        match.values.includes(value);
    case 'except': {
      if (value === null) return false;
      const listIsStrings = match.values.every((item) => typeof item === 'string');
      if (typeof value === 'string' && listIsStrings) return !match.values.includes(value);
      if (typeof value === 'number' && !listIsStrings) return !Number.isInteger(value) || !match.values.includes(value);
      // A value of another type than the list is "not one of them".
      return true;
    }
    default:
      return typeof value === 'string' && checkText(match.kind, match.text, value, text);
  }
}

const tokenize = (text: string, options: TextIndexOptions) =>
  (options.lowercase ? text.toLowerCase() : text).split(/[^\p{L}\p{N}_]+/u).filter(Boolean);

function checkText(kind: 'text' | 'text_any' | 'phrase' | 'prefix', query: string, stored: string, index?: TextIndexOptions) {
  if (kind === 'prefix') return stored.startsWith(query);
  if (!index) {
    // Without a full-text index Qdrant falls back to plain substring matching.
    if (kind === 'text_any') return query.split(/\s+/).filter(Boolean).some((word) => stored.includes(word));
    return stored.includes(query);
  }
  const tokens = tokenize(stored, index);
  const wanted = tokenize(query, index);
  if (kind === 'text') return wanted.every((token) => tokens.includes(token));
  if (kind === 'text_any') return wanted.some((token) => tokens.includes(token));
  if (wanted.length === 0) return true;
  for (let start = 0; start + wanted.length <= tokens.length; start++) {
    if (wanted.every((token, offset) => tokens[start + offset] === token)) return true;
  }
  return false;
}

function checkRange(bounds: Bounds, value: JsonValue, datetime: boolean): boolean {
  if (datetime) {
    const instant = typeof value === 'string' ? parseDatetime(value) : undefined;
    return instant !== undefined && inBounds(instant, bounds);
  }
  return typeof value === 'number' && inBounds(value, bounds);
}

const inBounds = (value: number, bounds: Bounds) =>
  (bounds.lt === undefined || value < bounds.lt) &&
  (bounds.gt === undefined || value > bounds.gt) &&
  (bounds.lte === undefined || value <= bounds.lte) &&
  (bounds.gte === undefined || value >= bounds.gte);

function asGeoPoint(value: JsonValue): GeoPoint | undefined {
  if (!isObject(value) || typeof value.lon !== 'number' || typeof value.lat !== 'number') return undefined;
  return { lon: value.lon, lat: value.lat };
}

function inBoundingBox(point: GeoPoint, topLeft: GeoPoint, bottomRight: GeoPoint): boolean {
  const latOk = bottomRight.lat <= point.lat && point.lat <= topLeft.lat;
  // A box whose left edge is east of its right edge crosses the antimeridian.
  const lonOk =
    topLeft.lon <= bottomRight.lon
      ? topLeft.lon <= point.lon && point.lon <= bottomRight.lon
      : point.lon >= topLeft.lon || point.lon <= bottomRight.lon;
  return latOk && lonOk;
}

const EARTH_RADIUS_METERS = 6_371_008.8;

function haversineMeters(a: GeoPoint, b: GeoPoint): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_METERS * Math.asin(Math.sqrt(h));
}

function inRing(point: GeoPoint, ring: GeoPoint[]): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[i]!;
    const b = ring[j]!;
    if (a.lat > point.lat !== b.lat > point.lat) {
      const crossLon = ((b.lon - a.lon) * (point.lat - a.lat)) / (b.lat - a.lat) + a.lon;
      if (point.lon < crossLon) inside = !inside;
    }
  }
  return inside;
}

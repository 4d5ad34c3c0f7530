/**
 * Payload indexes. Search here is exact brute force, so an index only matters for what Qdrant
 * reports (`payload_schema` with per-field point counts) and for full-text matching, where a
 * `text` index switches `match.text` from substring to token matching.
 */
import { parseDatetime } from './datetime';
import { formatError, validationError, wrongInput } from './errors';
import { expectObject, isObject, type JsonObject, type JsonValue } from './json';
import { getValues, parseJsonPath } from './jsonPath';
import type { TextIndexOptions } from './filterEval';

const PAYLOAD_SCHEMA_TYPES = ['keyword', 'integer', 'float', 'geo', 'text', 'bool', 'datetime', 'uuid'] as const;
export type PayloadSchemaType = (typeof PAYLOAD_SCHEMA_TYPES)[number];

export interface PayloadIndex {
  dataType: PayloadSchemaType;
  /** Set when the index was created with the object form (`{type: ..., ...}`). */
  params: JsonObject | null;
}

const isSchemaType = (value: unknown): value is PayloadSchemaType =>
  typeof value === 'string' && (PAYLOAD_SCHEMA_TYPES as readonly string[]).includes(value);

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Whether a single (non-array) payload value would be indexed by an index of this type. */
function indexable(type: PayloadSchemaType, value: JsonValue): boolean {
  switch (type) {
    case 'keyword':
    case 'text':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'geo':
      return isObject(value) && typeof value.lon === 'number' && typeof value.lat === 'number';
    case 'datetime':
      return typeof value === 'string' && parseDatetime(value) !== undefined;
    case 'uuid':
      return typeof value === 'string' && UUID.test(value);
  }
}

const flatten = (values: JsonValue[]) => values.flatMap((value) => (Array.isArray(value) ? value : [value]));

export function parsePayloadIndex(
  fieldName: string,
  fieldSchema: unknown,
  payloads: Iterable<JsonObject>,
): PayloadIndex {
  parseJsonPath(fieldName);
  if (fieldSchema === undefined || fieldSchema === null) return { dataType: inferType(fieldName, payloads), params: null };
  if (isSchemaType(fieldSchema)) return { dataType: fieldSchema, params: null };
  if (typeof fieldSchema === 'string') {
    throw formatError(`unknown variant \`${fieldSchema}\`, expected one of ${PAYLOAD_SCHEMA_TYPES.map((t) => `\`${t}\``).join(', ')}`);
  }
  const params = expectObject(fieldSchema, 'field_schema');
  if (!isSchemaType(params.type)) throw formatError('data did not match any variant of untagged enum PayloadFieldSchema');
  // `validate_integer_index_params` (lib/segment/src/data_types/index.rs): an integer index must keep one capability.
  if (params.type === 'integer' && params.lookup === false && params.range === false) {
    throw validationError('field_schema.lookup', "the 'lookup' and 'range' capabilities can't be both disabled");
  }
  return { dataType: params.type, params: { ...params } };
}

/** Qdrant can still infer a schema from existing values when none is given. */
function inferType(fieldName: string, payloads: Iterable<JsonObject>): PayloadSchemaType {
  const path = parseJsonPath(fieldName);
  for (const payload of payloads) {
    for (const value of flatten(getValues(payload, path))) {
      if (typeof value === 'boolean') return 'bool';
      if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
      if (typeof value === 'string') return parseDatetime(value) !== undefined ? 'datetime' : 'keyword';
      if (indexable('geo', value)) return 'geo';
    }
  }
  throw wrongInput(`Can't infer type of field ${fieldName}, please specify it explicitly`);
}

function countIndexedPoints(fieldName: string, index: PayloadIndex, payloads: Iterable<JsonObject>): number {
  const path = parseJsonPath(fieldName);
  let count = 0;
  for (const payload of payloads) {
    if (flatten(getValues(payload, path)).some((value) => indexable(index.dataType, value))) count++;
  }
  return count;
}

export function payloadSchemaInfo(fieldName: string, index: PayloadIndex, payloads: Iterable<JsonObject>): JsonObject {
  const info: JsonObject = { data_type: index.dataType };
  if (index.params) info.params = index.params;
  info.points = countIndexedPoints(fieldName, index, payloads);
  return info;
}

export function textIndexOptions(index: PayloadIndex | undefined): TextIndexOptions | undefined {
  if (!index || index.dataType !== 'text') return undefined;
  return { lowercase: index.params?.lowercase !== false };
}

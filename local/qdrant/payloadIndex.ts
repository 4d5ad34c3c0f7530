/**
 * Payload indexes. Search here is exact brute force, so an index only matters for what Qdrant
 * reports (`payload_schema` with per-field point counts) and for full-text matching, where a
 * `text` index switches `match.text` from substring to token matching.
 */
import { parseDatetime } from './datetime';
import { formatError, validationError, wrongInput } from './errors';
import { isObject, type JsonObject, type JsonValue } from './json';
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

/** A field of an `*IndexParams` object (openapi-v1.19.json): whether a value fits it (null always does: all are `Option`s). */
type FieldCheck = (value: JsonValue) => boolean;
const boolean: FieldCheck = (value) => typeof value === 'boolean';
const oneOf = (...names: string[]): FieldCheck => (value) => typeof value === 'string' && names.includes(value);
const uint: FieldCheck = (value) => typeof value === 'number' && Number.isInteger(value) && value >= 0;
const strings: FieldCheck = (value) => Array.isArray(value) && value.every((item) => typeof item === 'string');
// `StopwordsInterface`: a language, or `{languages?, custom?}` (language names are not checked here).
const stopwords: FieldCheck = (value) =>
  typeof value === 'string' ||
  (isObject(value) && [value.languages, value.custom].every((list) => list === undefined || list === null || strings(list)));
// `StemmingAlgorithm`: `{type: "snowball", language}` or `{type: "none"}`.
const stemmer: FieldCheck = (value) =>
  isObject(value) && ((value.type === 'snowball' && typeof value.language === 'string') || value.type === 'none');

const COMMON: Record<string, FieldCheck> = { on_disk: boolean, memory: oneOf('cold', 'cached', 'pinned'), enable_hnsw: boolean };
const PARAMS: Record<PayloadSchemaType, Record<string, FieldCheck>> = {
  keyword: { ...COMMON, is_tenant: boolean, prefix: boolean },
  integer: { ...COMMON, lookup: boolean, range: boolean, is_principal: boolean },
  float: { ...COMMON, is_principal: boolean },
  geo: COMMON,
  text: {
    ...COMMON,
    tokenizer: oneOf('prefix', 'whitespace', 'word', 'multilingual'),
    min_token_len: uint,
    max_token_len: uint,
    lowercase: boolean,
    ascii_folding: boolean,
    phrase_matching: boolean,
    stopwords,
    stemmer,
  },
  bool: COMMON,
  datetime: { ...COMMON, is_principal: boolean },
  uuid: { ...COMMON, is_tenant: boolean },
};

/**
 * `field_schema` of PUT /collections/{name}/index (`CreateFieldIndex`, openapi-v1.19.json): a
 * `PayloadSchemaType` name or one of the `*IndexParams` objects. Qdrant's `PayloadFieldSchema` and
 * `PayloadSchemaParams` are untagged serde enums (lib/segment/src/types.rs), so any value that is
 * neither (an unknown name, a number, an object without a known `type` or with a field of the wrong
 * type) is one 400: "data did not match any variant of untagged enum PayloadFieldSchema". The params
 * structs do not deny unknown fields (lib/segment/src/data_types/index.rs), so those are dropped.
 */
export function parsePayloadIndex(
  fieldName: string,
  fieldSchema: unknown,
  payloads: Iterable<JsonObject>,
): PayloadIndex {
  parseJsonPath(fieldName);
  if (fieldSchema === undefined || fieldSchema === null) return { dataType: inferType(fieldName, payloads), params: null };
  if (isSchemaType(fieldSchema)) return { dataType: fieldSchema, params: null };
  const untagged = () => formatError('data did not match any variant of untagged enum PayloadFieldSchema');
  if (!isObject(fieldSchema) || !isSchemaType(fieldSchema.type)) throw untagged();
  const type = fieldSchema.type;
  const params: JsonObject = { type };
  for (const [field, check] of Object.entries(PARAMS[type])) {
    const value = fieldSchema[field];
    if (value === undefined) continue;
    if (value !== null && !check(value)) throw untagged();
    params[field] = value;
  }
  // `validate_integer_index_params` (lib/segment/src/data_types/index.rs): an integer index must keep one capability.
  if (type === 'integer' && params.lookup === false && params.range === false) {
    throw validationError('field_schema.lookup', "the 'lookup' and 'range' capabilities can't be both disabled");
  }
  return { dataType: type, params };
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

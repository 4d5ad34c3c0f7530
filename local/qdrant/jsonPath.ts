/**
 * Qdrant's payload key syntax (`a.b`, `a[].b`, `a[0]`, `"dotted.key".c`) and the four operations
 * it is used for: reading values, merging a payload in at a path, removing a path, and selecting
 * parts of a payload for output. The semantics follow Qdrant's `json_path` module: intermediate
 * arrays are only traversed with `[]`, and a leaf array is returned whole (conditions then look
 * inside it).
 */
import { formatError } from './errors';
import { isObject, type JsonObject, type JsonValue } from './json';

export type PathItem = { key: string } | { index: number } | { wildcard: true };

export interface JsonPath {
  first: string;
  rest: PathItem[];
}

const UNQUOTED_KEY = /^[^.[\]"]+/;

export function parseJsonPath(text: string): JsonPath {
  const invalid = () => formatError(`Invalid json path: '${text}'`);
  let rest = text;
  const readKey = (): string => {
    if (rest.startsWith('"')) {
      const end = rest.indexOf('"', 1);
      if (end < 0) throw invalid();
      const key = rest.slice(1, end);
      rest = rest.slice(end + 1);
      return key;
    }
    const match = UNQUOTED_KEY.exec(rest);
    if (!match) throw invalid();
    rest = rest.slice(match[0].length);
    return match[0];
  };
  const first = readKey();
  const items: PathItem[] = [];
  while (rest.length > 0) {
    if (rest.startsWith('.')) {
      rest = rest.slice(1);
      items.push({ key: readKey() });
    } else if (rest.startsWith('[]')) {
      rest = rest.slice(2);
      items.push({ wildcard: true });
    } else {
      const match = /^\[(\d+)\]/.exec(rest);
      if (!match) throw invalid();
      rest = rest.slice(match[0].length);
      items.push({ index: Number(match[1]) });
    }
  }
  return { first, rest: items };
}

export function formatJsonPath(path: JsonPath): string {
  const key = (name: string) => (UNQUOTED_KEY.exec(name)?.[0] === name ? name : `"${name}"`);
  let text = key(path.first);
  for (const item of path.rest) {
    if ('key' in item) text += `.${key(item.key)}`;
    else if ('index' in item) text += `[${item.index}]`;
    else text += '[]';
  }
  return text;
}

const sameItem = (a: PathItem, b: PathItem) =>
  ('key' in a && 'key' in b && a.key === b.key) ||
  ('index' in a && 'index' in b && a.index === b.index) ||
  ('wildcard' in a && 'wildcard' in b);

/** All values at the path; empty when the path leads nowhere. */
export function getValues(payload: JsonObject, path: JsonPath): JsonValue[] {
  const result: JsonValue[] = [];
  collectValues(path.rest, 0, payload[path.first], result);
  return result;
}

/** Walks `items` from `position`; a module-level function with an index, since filters call it for every point. */
function collectValues(items: PathItem[], position: number, value: JsonValue | undefined, result: JsonValue[]): void {
  if (value === undefined) return;
  const head = items[position];
  if (!head) {
    result.push(value);
    return;
  }
  if ('key' in head) {
    if (isObject(value)) collectValues(items, position + 1, value[head.key], result);
  } else if ('index' in head) {
    if (Array.isArray(value)) collectValues(items, position + 1, value[head.index], result);
  } else if (Array.isArray(value)) {
    for (const element of value) collectValues(items, position + 1, element, result);
  }
}

/** Qdrant's `merge_map`: a `null` in the source removes the key rather than storing null. */
function mergeInto(dest: JsonObject, source: JsonObject): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === null) delete dest[key];
    else dest[key] = structuredClone(value);
  }
}

/**
 * Merges `source` into the object found at `path` (or the payload root), creating objects along
 * the way and replacing non-objects that are in the way, as Qdrant's `value_set` does.
 */
export function setAtPath(payload: JsonObject, path: JsonPath | undefined, source: JsonObject): void {
  if (!path) {
    mergeInto(payload, source);
    return;
  }
  const setIn = (items: PathItem[], holder: JsonObject | JsonValue[], slot: string | number) => {
    const current = (holder as Record<string | number, JsonValue>)[slot];
    const assign = (value: JsonValue) => {
      (holder as Record<string | number, JsonValue>)[slot] = value;
    };
    const [head, ...tail] = items;
    if (!head) {
      const target = isObject(current) ? current : {};
      mergeInto(target, source);
      assign(target);
    } else if ('key' in head) {
      const target = isObject(current) ? current : {};
      assign(target);
      setIn(tail, target, head.key);
    } else if ('index' in head) {
      const target = Array.isArray(current) ? current : [];
      assign(target);
      if (head.index < target.length) setIn(tail, target, head.index);
    } else if (Array.isArray(current)) {
      current.forEach((_, index) => setIn(tail, current, index));
    } else {
      assign([]);
    }
  };
  setIn(path.rest, payload, path.first);
}

/** Removes what the path points at. Like Qdrant, a trailing `[n]` is ignored (not idempotent). */
export function removeAtPath(payload: JsonObject, path: JsonPath): void {
  const removeIn = (items: PathItem[], holder: JsonValue, head: PathItem) => {
    const [next, ...tail] = items;
    if (!next) {
      if ('key' in head && isObject(holder)) delete holder[head.key];
      else if ('wildcard' in head && Array.isArray(holder)) holder.length = 0;
      return;
    }
    if ('key' in head && isObject(holder)) {
      const child = holder[head.key];
      if (child !== undefined) removeIn(tail, child, next);
    } else if ('index' in head && Array.isArray(holder)) {
      const child = holder[head.index];
      if (child !== undefined) removeIn(tail, child, next);
    } else if ('wildcard' in head && Array.isArray(holder)) {
      for (const child of holder) removeIn(tail, child, next);
    }
  };
  removeIn(path.rest, payload, { key: path.first });
}

/** True when either path is a prefix of the other (Qdrant's `check_include_pattern`). */
function overlaps(path: JsonPath, pattern: JsonPath): boolean {
  if (path.first !== pattern.first) return false;
  const length = Math.min(path.rest.length, pattern.rest.length);
  for (let i = 0; i < length; i++) if (!sameItem(path.rest[i]!, pattern.rest[i]!)) return false;
  return true;
}

/** True when `pattern` is a prefix of `path` (Qdrant's `check_exclude_pattern`). */
function startsWith(path: JsonPath, pattern: JsonPath): boolean {
  if (path.first !== pattern.first || pattern.rest.length > path.rest.length) return false;
  return pattern.rest.every((item, i) => sameItem(item, path.rest[i]!));
}

/** Rebuilds the payload keeping only the parts whose path passes `keep` (Qdrant's `value_filter`). */
function filterPayload(payload: JsonObject, keep: (path: JsonPath) => boolean): JsonObject {
  const path: JsonPath = { first: '', rest: [] };
  const run = (value: JsonValue): JsonValue => {
    if (Array.isArray(value)) {
      path.rest.push({ wildcard: true });
      const kept = value.filter(() => keep(path)).map(run);
      path.rest.pop();
      return kept;
    }
    if (isObject(value)) {
      const kept: JsonObject = {};
      for (const [key, child] of Object.entries(value)) {
        path.rest.push({ key });
        if (keep(path)) kept[key] = run(child);
        path.rest.pop();
      }
      return kept;
    }
    return value;
  };
  const result: JsonObject = {};
  for (const [key, value] of Object.entries(payload)) {
    path.first = key;
    if (keep(path)) result[key] = run(value);
  }
  return result;
}

export const includeOnly = (payload: JsonObject, patterns: JsonPath[]) =>
  filterPayload(payload, (path) => patterns.some((pattern) => overlaps(path, pattern)));

export const excludeAll = (payload: JsonObject, patterns: JsonPath[]) =>
  filterPayload(payload, (path) => !patterns.some((pattern) => startsWith(path, pattern)));

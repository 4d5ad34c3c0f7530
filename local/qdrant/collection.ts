/**
 * One collection: its configuration, its points and its payload indexes, plus the primitive
 * mutations the update endpoints are built from. Everything is in memory; `toSnapshot` and
 * `fromSnapshot` are the whole persistence contract.
 */
import { matchesFilter, type FilterSubject, type TextIndexLookup } from './filterEval';
import type { Filter } from './filterParse';
import { validationError, vectorNameNotFound } from './errors';
import { expectU32, isObject, optional, type JsonObject, type JsonValue } from './json';
import { formatJsonPath, parseJsonPath } from './jsonPath';
import { payloadSchemaInfo, textIndexOptions, type PayloadIndex } from './payloadIndex';
import { comparePointIds, pointKey, type PointId } from './pointId';
import { SparseVectorIndex, type SparseStatistics } from './sparseIndex';
import {
  isSparse,
  parseVectorSchema,
  sparseConfigOutput,
  vectorsConfigOutput,
  type StoredVector,
  type VectorSchema,
} from './vectors';

export interface StoredPoint {
  id: PointId;
  /** Operation id of the last change, reported as `version` in search results. */
  version: number;
  vectors: Record<string, StoredVector>;
  payload: JsonObject;
}

/** Configuration echoed in collection info; only the vector schema affects behaviour. */
export interface CollectionSettings {
  params: JsonObject;
  hnsw: JsonObject;
  optimizers: JsonObject;
  wal: JsonObject;
  quantization: JsonValue;
  strictMode: JsonObject;
  metadata?: JsonObject;
}

const DEFAULT_HNSW: JsonObject = { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false };
const DEFAULT_OPTIMIZERS: JsonObject = {
  deleted_threshold: 0.2,
  vacuum_min_vector_number: 1000,
  default_segment_number: 0,
  max_segment_size: null,
  memmap_threshold: null,
  indexing_threshold: 10000,
  flush_interval_sec: 5,
  max_optimization_threads: null,
};
const DEFAULT_WAL: JsonObject = { wal_capacity_mb: 32, wal_segments_ahead: 0, wal_retain_closed: 1 };

/**
 * In a config diff `null` means "not given": the diff types' fields are `Option`s (e.g. `WalConfigDiff`
 * in lib/collection/src/operations/config_diff.rs), `null` deserializes to `None`, and a `None`
 * leaves the default or current value in place.
 */
const givenFields = (diff: unknown): JsonObject =>
  isObject(diff) ? Object.fromEntries(Object.entries(diff).filter(([, value]) => value !== null)) : {};

const merged = (base: JsonObject, diff: unknown): JsonObject => ({ ...base, ...givenFields(diff) });

/**
 * `shard_number`, `replication_factor` and `write_consistency_factor` are `Option<u32>` with
 * `#[validate(range(min = 1))]` (`CreateCollection` in lib/storage/src/content_manager/collection_meta_ops.rs):
 * a negative number does not deserialize (400), a zero fails validation (422).
 */
function atLeastOne(body: JsonObject, field: string): number {
  const value = optional(body[field], (raw) => expectU32(raw, field)) ?? 1;
  if (value < 1) throw validationError(field, 'value 0 invalid, must be 1 or larger');
  return value;
}

export function settingsFromCreateRequest(body: JsonObject): CollectionSettings {
  const params: JsonObject = {
    shard_number: atLeastOne(body, 'shard_number'),
    replication_factor: atLeastOne(body, 'replication_factor'),
    write_consistency_factor: atLeastOne(body, 'write_consistency_factor'),
    on_disk_payload: typeof body.on_disk_payload === 'boolean' ? body.on_disk_payload : true,
  };
  if (typeof body.sharding_method === 'string') params.sharding_method = body.sharding_method;
  const settings: CollectionSettings = {
    params,
    hnsw: merged(DEFAULT_HNSW, body.hnsw_config),
    optimizers: merged(DEFAULT_OPTIMIZERS, body.optimizers_config),
    wal: merged(DEFAULT_WAL, body.wal_config),
    quantization: body.quantization_config ?? null,
    strictMode: merged({ enabled: false }, body.strict_mode_config),
  };
  if (isObject(body.metadata)) settings.metadata = { ...body.metadata };
  return settings;
}

/**
 * PATCH merges metadata key by key, and a key set to `null` is removed (Qdrant's `UpdateCollection`
 * docs in lib/storage/src/content_manager/collection_meta_ops.rs, published in the OpenAPI document:
 * "Individual keys can be removed by setting their value to `null`").
 */
function mergeMetadata(current: JsonObject | undefined, diff: JsonObject): JsonObject {
  const next: JsonObject = { ...current };
  for (const [key, value] of Object.entries(diff)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}

export interface CollectionSnapshot {
  format: 1;
  name: string;
  vectors: JsonObject;
  sparseVectors: JsonObject;
  settings: CollectionSettings;
  lastOperationId: number;
  payloadIndexes: Record<string, PayloadIndex>;
  points: StoredPoint[];
  /** What deleted points still leave in the sparse statistics until a vacuum (absent in older snapshots). */
  deletedPoints?: number;
  sparseStatistics?: Record<string, SparseStatistics>;
}

export class Collection {
  readonly points = new Map<string, StoredPoint>();
  readonly payloadIndexes = new Map<string, PayloadIndex>();
  /** One inverted index per named sparse vector, kept current by every write below. */
  readonly sparseIndexes = new Map<string, SparseVectorIndex>();
  private lastOperationId = -1;
  /** Points deleted since the last vacuum (a restart starts from a vacuumed state). */
  private deletedPoints = 0;
  private sortedCache: StoredPoint[] | undefined;

  constructor(
    readonly name: string,
    readonly schema: VectorSchema,
    public settings: CollectionSettings,
  ) {
    for (const vectorName of schema.sparse.keys()) this.sparseIndexes.set(vectorName, new SparseVectorIndex(vectorName));
  }

  /** Tells the sparse indexes the point's vectors of these names now (absent ones are removed). */
  private indexSparse(point: StoredPoint, names: Iterable<string>): void {
    const key = pointKey(point.id);
    for (const vectorName of names) {
      const index = this.sparseIndexes.get(vectorName);
      const vector = point.vectors[vectorName];
      if (index) index.update(key, point, vector && isSparse(vector) ? vector : undefined);
    }
  }

  /** Replaces some named vectors of a stored point (the others stay). */
  setVectors(point: StoredPoint, vectors: Record<string, StoredVector>): void {
    Object.assign(point.vectors, vectors);
    this.indexSparse(point, Object.keys(vectors));
  }

  deleteVectors(point: StoredPoint, names: readonly string[]): void {
    for (const vectorName of names) delete point.vectors[vectorName];
    this.indexSparse(point, names);
  }

  /** Every update gets the next id; it becomes the `version` of the points it touches. */
  nextOperationId(): number {
    return ++this.lastOperationId;
  }

  lastOperation(): number {
    return this.lastOperationId;
  }

  get(id: PointId): StoredPoint | undefined {
    return this.points.get(pointKey(id));
  }

  put(point: StoredPoint): void {
    const key = pointKey(point.id);
    const previous = this.points.get(key);
    this.points.set(key, point);
    // An upsert replaces all vectors of the point: each sparse name is set or removed.
    this.indexSparse(point, this.sparseIndexes.keys());
    if (!previous) {
      this.sortedCache = undefined;
    } else if (this.sortedCache) {
      // The cache holds the point objects themselves: a replaced point must be replaced there
      // too, or filters, scroll and search keep seeing its old payload and vectors.
      this.sortedCache[this.sortedIndexOf(point.id)] = point;
    }
  }

  /** Position of an id in the sorted cache (binary search; the id is known to be there). */
  private sortedIndexOf(id: PointId): number {
    const sorted = this.sortedCache!;
    let low = 0;
    let high = sorted.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (comparePointIds(sorted[middle]!.id, id) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  remove(id: PointId): boolean {
    const key = pointKey(id);
    const previous = this.points.get(key);
    if (!previous) return false;
    for (const index of this.sparseIndexes.values()) index.retire(key);
    this.points.delete(key);
    this.sortedCache = undefined;
    this.deletedPoints++;
    return true;
  }

  /**
   * Once deleted points make up more than `deleted_threshold` of a segment of at least
   * `vacuum_min_vector_number` points, Qdrant's vacuum optimizer rebuilds it without them
   * (`VacuumOptimizer::littered_ratio_segment` in
   * lib/collection/src/collection_manager/optimizers/vacuum_optimizer.rs); the only trace deleted
   * points leave here is in the sparse statistics. Called after each delete.
   */
  vacuumIfLittered(): void {
    const total = this.points.size + this.deletedPoints;
    const threshold = Number(this.settings.optimizers.deleted_threshold ?? 0.2);
    const minimum = Number(this.settings.optimizers.vacuum_min_vector_number ?? 1000);
    if (total < minimum || this.deletedPoints / total <= threshold) return;
    for (const index of this.sparseIndexes.values()) index.vacuum();
    this.deletedPoints = 0;
  }

  /** Points in Qdrant's id order, the order scroll pages through. */
  sortedPoints(): StoredPoint[] {
    this.sortedCache ??= [...this.points.values()].sort((a, b) => comparePointIds(a.id, b.id));
    return this.sortedCache;
  }

  readonly textIndex: TextIndexLookup = (key) => textIndexOptions(this.payloadIndexes.get(key));

  subject(point: StoredPoint): FilterSubject {
    return new PointSubject(point);
  }

  matches(point: StoredPoint, filter: Filter | undefined): boolean {
    return !filter || matchesFilter(filter, this.subject(point), this.textIndex);
  }

  filtered(filter: Filter | undefined): StoredPoint[] {
    return this.sortedPoints().filter((point) => this.matches(point, filter));
  }

  setPayloadIndex(fieldName: string, index: PayloadIndex): void {
    this.payloadIndexes.set(formatJsonPath(parseJsonPath(fieldName)), index);
  }

  deletePayloadIndex(fieldName: string): void {
    this.payloadIndexes.delete(formatJsonPath(parseJsonPath(fieldName)));
  }

  /** PATCH /collections/{name}: merges the diffs into the echoed configuration. */
  applyUpdate(body: JsonObject): void {
    const vectorDiffs = Object.entries(isObject(body.vectors) ? body.vectors : {});
    const sparseDiffs = Object.entries(isObject(body.sparse_vectors) ? body.sparse_vectors : {});
    // Check every name first so an unknown one changes nothing.
    for (const [name] of vectorDiffs) if (!this.schema.dense.has(name)) throw vectorNameNotFound(name);
    for (const [name] of sparseDiffs) if (!this.schema.sparse.has(name)) throw vectorNameNotFound(name);
    const settings = this.settings;
    Object.assign(settings.params, givenFields(body.params));
    Object.assign(settings.hnsw, givenFields(body.hnsw_config));
    Object.assign(settings.optimizers, givenFields(body.optimizers_config));
    Object.assign(settings.strictMode, givenFields(body.strict_mode_config));
    if (body.quantization_config !== undefined && body.quantization_config !== null) {
      settings.quantization = body.quantization_config === 'Disabled' ? null : body.quantization_config;
    }
    if (isObject(body.metadata)) settings.metadata = mergeMetadata(settings.metadata, body.metadata);
    for (const [name, diff] of vectorDiffs) Object.assign(this.schema.dense.get(name)!.config, givenFields(diff));
    for (const [name, diff] of sparseDiffs) {
      const params = this.schema.sparse.get(name)!;
      Object.assign(params.config, givenFields(diff));
      params.idf = params.config.modifier === 'idf';
    }
  }

  info(): JsonObject {
    const payloads = () => [...this.points.values()].map((point) => point.payload);
    const params: JsonObject = { vectors: vectorsConfigOutput(this.schema), ...this.settings.params };
    if (this.schema.sparse.size > 0) params.sparse_vectors = sparseConfigOutput(this.schema);
    const config: JsonObject = {
      params,
      hnsw_config: this.settings.hnsw,
      optimizer_config: this.settings.optimizers,
      wal_config: this.settings.wal,
      quantization_config: this.settings.quantization,
      strict_mode_config: this.settings.strictMode,
    };
    if (this.settings.metadata) config.metadata = this.settings.metadata;
    return {
      status: 'green',
      optimizer_status: 'ok',
      // Small collections stay below Qdrant's indexing threshold, so nothing is HNSW-indexed.
      indexed_vectors_count: 0,
      points_count: this.points.size,
      segments_count: 1,
      config,
      payload_schema: Object.fromEntries(
        [...this.payloadIndexes].map(([field, index]) => [field, payloadSchemaInfo(field, index, payloads())]),
      ),
    };
  }

  toSnapshot(): CollectionSnapshot {
    return {
      format: 1,
      name: this.name,
      vectors: vectorsConfigOutput(this.schema),
      sparseVectors: sparseConfigOutput(this.schema),
      settings: this.settings,
      lastOperationId: this.lastOperationId,
      payloadIndexes: Object.fromEntries(this.payloadIndexes),
      points: this.sortedPoints(),
      deletedPoints: this.deletedPoints,
      sparseStatistics: Object.fromEntries([...this.sparseIndexes].map(([name, index]) => [name, index.statistics()])),
    };
  }

  static fromSnapshot(snapshot: CollectionSnapshot): Collection {
    const vectors = Object.keys(snapshot.vectors).length > 0 ? snapshot.vectors : undefined;
    const collection = new Collection(snapshot.name, parseVectorSchema(vectors, snapshot.sparseVectors), snapshot.settings);
    collection.lastOperationId = snapshot.lastOperationId;
    for (const [field, index] of Object.entries(snapshot.payloadIndexes)) collection.payloadIndexes.set(field, index);
    for (const point of snapshot.points) collection.put(point);
    collection.deletedPoints = snapshot.deletedPoints ?? 0;
    for (const [name, statistics] of Object.entries(snapshot.sparseStatistics ?? {})) collection.sparseIndexes.get(name)?.restore(statistics);
    return collection;
  }
}

/** A point as filters see it. Only has_id conditions read the key, so it is formatted on demand. */
class PointSubject implements FilterSubject {
  readonly payload: JsonObject;
  constructor(private readonly point: StoredPoint) {
    this.payload = point.payload;
  }
  get idKey(): string {
    return pointKey(this.point.id);
  }
  hasVector(name: string): boolean {
    return this.point.vectors[name] !== undefined;
  }
}

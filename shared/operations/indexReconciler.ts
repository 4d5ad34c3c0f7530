/**
 * Compares the table (the truth) with the index behind the alias and, on request, repairs every
 * difference. The comparison is findDrift(); the repair is syncPersonaChanges() for each differing
 * id, which re-reads the row and writes its current state under a version guard (or, for a point
 * with no row, deletes it only at the version it saw), so a repair racing a live write can never
 * undo that write.
 */
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { PersonaRepository } from '../persona/personaRepository';
import type { Persona } from '../persona/schema';
import { findDrift, scrollPoints, type Drift, type DriftKind, type IndexedPoint } from '../vectorIndex/indexDrift';
import { keyOfPoint, pointIdForKey } from '../tenancy/tenantKeys';
import { modelLabel, readIndexedModel, sameModel, EmbeddingModelMismatchError, TEXT_VECTOR, TRAITS_VECTOR, type IndexedModel } from '../vectorIndex/personaCollection';
import { syncPersonaChanges, type SyncAction, type SyncDeps } from '../vectorIndex/syncPersonaChanges';

export interface IndexSnapshotDeps {
  repository: Pick<PersonaRepository, 'scanAll' | 'getMany'>;
  qdrant: QdrantClient;
}

export interface ReconcileDeps extends IndexSnapshotDeps {
  /** Alias or collection to check. */
  collection: string;
  /** Needed for `repair`: must embed with the model the collection was built with. */
  embedder?: SyncDeps['embedder'];
  /** Parallel scan segments of the table. */
  segments?: number;
}

export const DRIFT_KINDS: readonly DriftKind[] = ['missing', 'orphan', 'stale-version', 'stale-payload', 'wrong-model', 'missing-vector'];

export interface ReconcileReport {
  /** The physical collection behind the alias. */
  collection: string;
  model: string;
  personas: number;
  points: number;
  drift: Drift[];
  byKind: Record<DriftKind, number>;
  /** With repair: what the repair did, and the differences a second comparison still found. */
  repair?: { actions: Record<SyncAction, number>; errors: string[]; remaining: Drift[] };
  durationMs: number;
}

const SYNC_CHUNK = 64;

export const countByKind = (drift: readonly Drift[]): Record<DriftKind, number> => {
  const counts = Object.fromEntries(DRIFT_KINDS.map((kind) => [kind, 0])) as Record<DriftKind, number>;
  for (const entry of drift) counts[entry.kind]++;
  return counts;
};

/** Every persona, read by `segments` parallel scans. */
export async function scanTable(repository: Pick<PersonaRepository, 'scanAll'>, segments = 4): Promise<Persona[]> {
  const parts = await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      const personas: Persona[] = [];
      for await (const page of repository.scanAll({ segment, totalSegments: segments })) personas.push(...page);
      return personas;
    }),
  );
  return parts.flat();
}

export async function readAllPoints(qdrant: QdrantClient, collection: string): Promise<IndexedPoint[]> {
  const points: IndexedPoint[] = [];
  for await (const page of scrollPoints(qdrant, collection)) points.push(...page);
  return points;
}

/** The physical collection an alias points at (a plain collection name is its own target). */
export async function resolveCollection(qdrant: QdrantClient, name: string): Promise<string> {
  const { aliases } = await qdrant.getAliases();
  const target = aliases.find((alias) => alias.alias_name === name)?.collection_name;
  if (target) return target;
  if ((await qdrant.collectionExists(name)).exists) return name;
  throw new Error(`Qdrant has no collection or alias '${name}'; check QDRANT_COLLECTION / QDRANT_URL (or start the system once, which creates it).`);
}

export async function collectionModel(qdrant: QdrantClient, collection: string): Promise<IndexedModel> {
  const model = await readIndexedModel(qdrant, collection);
  if (!model) throw new Error(`Collection '${collection}' has no embedding_model in its metadata, so its vectors cannot be checked; rebuild it with \`personas reindex\`.`);
  return model;
}

/** Differences between the table and `collection`, judged against `model`. */
export async function compareIndex(deps: IndexSnapshotDeps, collection: string, model: IndexedModel, segments?: number) {
  const [personas, points] = await Promise.all([scanTable(deps.repository, segments), readAllPoints(deps.qdrant, collection)]);
  return { personas: personas.length, points: points.length, drift: findDrift(personas, points, modelLabel(model)) };
}

/**
 * Makes `collection` agree with the table for the given ids. Returns the counts of what was done
 * and the errors of ids that could not be synced (they stay different; a later run retries them).
 */
export async function repairIds(
  deps: IndexSnapshotDeps & { embedder: SyncDeps['embedder'] },
  collection: string,
  ids: readonly string[],
  options: Pick<SyncDeps, 'overwriteNewerPoints'> = {},
) {
  const actions: Record<SyncAction, number> = { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 };
  const errors: string[] = [];
  const syncDeps: SyncDeps = { readPersonas: (batch) => deps.repository.getMany(batch), qdrant: deps.qdrant, collection, embedder: deps.embedder, ...options };
  for (let start = 0; start < ids.length; start += SYNC_CHUNK) {
    const chunk = ids.slice(start, start + SYNC_CHUNK);
    const report = await syncPersonaChanges(syncDeps, chunk.map((id) => ({ recordId: id, personaId: id, kind: 'MODIFY' as const, changedAt: Date.now() })));
    for (const [action, count] of Object.entries(report.counts)) actions[action as SyncAction] += count;
    for (const [id, error] of report.errors) if (errors.length < 10) errors.push(`${id}: ${error.message}`);
  }
  return { actions, errors };
}

/** Differences for just these ids, read fresh from both sides. */
export async function differencesOf(deps: IndexSnapshotDeps, collection: string, model: IndexedModel, ids: readonly string[]): Promise<Drift[]> {
  const [rows, points] = await Promise.all([
    deps.repository.getMany(ids),
    deps.qdrant.retrieve(collection, { ids: ids.map(pointIdForKey), with_payload: true, with_vector: true }),
  ]);
  const indexed: IndexedPoint[] = points.map((point) => {
    const vectors = (point.vector ?? {}) as Record<string, unknown>;
    return { id: keyOfPoint(String(point.id), point.payload), payload: point.payload ?? {}, hasTextVector: Array.isArray(vectors[TEXT_VECTOR]), hasTraitsVector: Array.isArray(vectors[TRAITS_VECTOR]) };
  });
  const wanted = new Set(ids);
  // findDrift calls a point without a row an orphan; only the asked-for ids count here.
  return findDrift(rows.values(), indexed, modelLabel(model)).filter((entry) => wanted.has(entry.id));
}

const REPAIR_ROUNDS = 5;

/**
 * Repairs `drift` and checks those ids again, a few rounds: a persona written again between the
 * repair and the check (live traffic) is simply repaired once more. Returns what still differs.
 */
export async function repairUntilEqual(deps: IndexSnapshotDeps & { embedder: SyncDeps['embedder'] }, collection: string, drift: readonly Drift[]) {
  const totals: Record<SyncAction, number> = { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 };
  const errors: string[] = [];
  let remaining = [...drift];
  for (let round = 0; round < REPAIR_ROUNDS && remaining.length > 0; round++) {
    const ids = [...new Set(remaining.map((entry) => entry.id))];
    // Each id here differs on a fresh comparison, so the row wins even over a point that looks newer.
    const { actions, errors: roundErrors } = await repairIds(deps, collection, ids, { overwriteNewerPoints: true });
    for (const [action, count] of Object.entries(actions)) totals[action as SyncAction] += count;
    errors.push(...roundErrors.slice(0, 10 - errors.length));
    // The sync deletes an orphan only at the version it saw; an orphan with no version at all was
    // never written by the indexer, so it goes by id.
    const orphans = remaining.filter((entry) => entry.kind === 'orphan').map((entry) => entry.id);
    if (orphans.length > 0) {
      await deps.qdrant.delete(collection, { wait: true, filter: { must: [{ has_id: orphans.map(pointIdForKey) }, { is_empty: { key: 'version' } }] } });
    }
    remaining = await differencesOf(deps, collection, deps.embedder.model, ids);
  }
  return { actions: totals, errors, remaining };
}

export async function reconcileIndex(deps: ReconcileDeps, options: { repair: boolean }): Promise<ReconcileReport> {
  const started = performance.now();
  const collection = await resolveCollection(deps.qdrant, deps.collection);
  const model = await collectionModel(deps.qdrant, collection);
  if (options.repair && (!deps.embedder || !sameModel(model, deps.embedder.model))) {
    // Repairing with another model would mix two models' vectors in one collection.
    throw new EmbeddingModelMismatchError(collection, model, deps.embedder?.model ?? { id: 'no model', revision: '-', dimension: 0, dtype: '-' });
  }
  const found = await compareIndex(deps, collection, model, deps.segments);
  const report: ReconcileReport = {
    collection,
    model: modelLabel(model),
    personas: found.personas,
    points: found.points,
    drift: found.drift,
    byKind: countByKind(found.drift),
    ...(options.repair ? { repair: await repairUntilEqual({ ...deps, embedder: deps.embedder! }, collection, found.drift) } : {}),
    durationMs: 0,
  };
  report.durationMs = performance.now() - started;
  return report;
}

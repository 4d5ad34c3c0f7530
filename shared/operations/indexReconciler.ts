/**
 * Compares the table (the truth) with the index behind the alias and, on request, repairs every
 * difference, page by page (reconcileIndex: resumable from a checkpoint). The comparison is
 * findDrift(); the repair is syncPersonaChanges() for each differing
 * id, which re-reads the row and writes its current state under a version guard (or, for a point
 * with no row, deletes it only at the version it saw), so a repair racing a live write can never
 * undo that write.
 */
import { randomUUID } from 'node:crypto';
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { PersonaRepository } from '../persona/personaRepository';
import type { Persona } from '../persona/schema';
import { findDrift, indexedPoint, orphanDrift, scrollPoints, type Drift, type DriftKind, type IndexedPoint } from '../vectorIndex/indexDrift';
import { keyOfPoint, pointIdForKey } from '../tenancy/tenantKeys';
import { modelLabel, readIndexedModel, sameModel, EmbeddingModelMismatchError, type IndexedModel } from '../vectorIndex/personaCollection';
import { syncPersonaChanges, type SyncAction, type SyncDeps } from '../vectorIndex/syncPersonaChanges';
import { CHECKPOINT_FORMAT, type CheckpointStore, type ReconcileCheckpoint } from './reconcileCheckpoint';
import { takeLease, type HeldLease, type LeaseOptions } from './reconcileLease';

export interface IndexSnapshotDeps {
  repository: Pick<PersonaRepository, 'scanAll' | 'getMany'>;
  qdrant: QdrantClient;
}

export interface ReconcileDeps extends IndexSnapshotDeps {
  repository: Pick<PersonaRepository, 'scanAll' | 'scanPage' | 'getMany'>;
  /** Alias or collection to check. */
  collection: string;
  /** Needed for `repair`: must embed with the model the collection was built with. */
  embedder?: SyncDeps['embedder'];
  /** Parallel scan segments of the table. */
  segments?: number;
}

export interface ReconcileOptions {
  repair: boolean;
  /** Rows per table scan page and points per index scroll page. */
  pageSize?: number;
  /**
   * Where the pass keeps its position: a run that stops early or fails is resumed by the next run
   * with the same key. Without one the pass runs to its end in one go.
   */
  checkpoint?: { store: CheckpointStore; key: string; ttlSeconds?: number };
  /**
   * Held for the whole run, so that only one run of the alias works at a time: when another run
   * holds it, this one throws ReconcileLeaseHeldError before reading or writing anything else.
   */
  lease?: LeaseOptions;
  /** Asked before each page; true stops the run there (its position saved), e.g. near a deadline. */
  shouldStop?: (progress: { longestPageMs: number }) => boolean;
  /** Clock for the checkpoint's expiry (epoch milliseconds). */
  now?: () => number;
}

export const DRIFT_KINDS: readonly DriftKind[] = ['missing', 'orphan', 'stale-version', 'stale-payload', 'wrong-model', 'missing-vector'];

export interface ReconcileReport {
  /** The physical collection behind the alias. */
  collection: string;
  model: string;
  /** The pass this run belongs to: a resumed run carries on an earlier run's pass. */
  runId: string;
  /** False when the run stopped early and saved its position: the next run resumes the pass. */
  complete: boolean;
  /** Runs that worked on this pass, this one included (1 for a pass in one go). */
  invocations: number;
  /** Why a stored checkpoint was not resumed (expired, another collection or model), if one was found. */
  discardedCheckpoint?: string;
  /** Table scan pages and index scroll pages this run compared. */
  pages: number;
  /** The whole pass so far: rows scanned, points scrolled, differences found per kind. */
  personas: number;
  points: number;
  byKind: Record<DriftKind, number>;
  /** The differences this run found (all of them for a pass in one go). */
  drift: Drift[];
  /**
   * With repair: what the repairs of the whole pass did and their first errors, and the
   * differences of this run a fresh comparison still found after repairing them.
   */
  repair?: { actions: Record<SyncAction, number>; errors: string[]; remaining: Drift[] };
  /** Differences of the whole pass still there (after their repair, with repair). */
  remaining: number;
  durationMs: number;
}

/** How long an abandoned checkpoint is kept (each saved page renews it). */
export const CHECKPOINT_TTL_SECONDS = 24 * 60 * 60;
const DEFAULT_PAGE_SIZE = 256;

const SYNC_CHUNK = 64;

const noActions = (): Record<SyncAction, number> => ({ embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 });

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
  const actions = noActions();
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
  const indexed = points.map(indexedPoint);
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
  const totals = noActions();
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

/** Why `stored` cannot be resumed by a pass over `expected`, or undefined when it can. */
function staleCheckpointReason(
  stored: { checkpoint: ReconcileCheckpoint; expiresAt: number },
  expected: Pick<ReconcileCheckpoint, 'collection' | 'model'> & { segments: number; repair: boolean },
  nowMs: number,
): string | undefined {
  const { checkpoint } = stored;
  // DynamoDB deletes expired items up to days late, and reads still return them until then.
  if (stored.expiresAt * 1000 <= nowMs) return `checkpoint of run ${checkpoint.runId} expired at ${new Date(stored.expiresAt * 1000).toISOString()}`;
  if (checkpoint.format !== CHECKPOINT_FORMAT) return `checkpoint format ${checkpoint.format}, expected ${CHECKPOINT_FORMAT}`;
  if (checkpoint.collection !== expected.collection) return `checkpoint was for collection ${checkpoint.collection}, the alias now points at ${expected.collection}`;
  if (checkpoint.model !== expected.model) return `checkpoint was for model ${checkpoint.model}, the collection now holds ${expected.model}`;
  if (checkpoint.segments.length !== expected.segments) return `checkpoint has ${checkpoint.segments.length} scan segments, this run uses ${expected.segments}`;
  if (!!checkpoint.totals.actions !== expected.repair) return `checkpoint was for a run ${expected.repair ? 'without' : 'with'} repair`;
  return undefined;
}

/**
 * Compares the table with the index page by page and, with `repair`, repairs each page's
 * differences before the next page. First the table: each scan page (per parallel segment) against
 * the points of its ids (missing, stale, wrong-model points); then the index, scrolled in id order:
 * points whose id has no row (orphans). With a checkpoint, the position (each segment's
 * LastEvaluatedKey, then the scroll offset) and the pass's counts are saved after every page, so a
 * run that stops (shouldStop, an error, a timeout) is resumed by the next one; a finished pass
 * clears it. With a lease, the run works only while it holds it (see reconcileLease.ts).
 */
export async function reconcileIndex(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileReport> {
  if (!options.lease) return reconcilePass(deps, options);
  const lease = await takeLease(options.lease, options.now ?? Date.now);
  try {
    return await reconcilePass(deps, options, lease);
  } finally {
    await lease.release();
  }
}

async function reconcilePass(deps: ReconcileDeps, options: ReconcileOptions, lease?: HeldLease): Promise<ReconcileReport> {
  const started = performance.now();
  const now = options.now ?? Date.now;
  const collection = await resolveCollection(deps.qdrant, deps.collection);
  const model = await collectionModel(deps.qdrant, collection);
  if (options.repair && (!deps.embedder || !sameModel(model, deps.embedder.model))) {
    // Repairing with another model would mix two models' vectors in one collection.
    throw new EmbeddingModelMismatchError(collection, model, deps.embedder?.model ?? { id: 'no model', revision: '-', dimension: 0, dtype: '-' });
  }
  const label = modelLabel(model);
  const segments = deps.segments ?? 4;
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const store = options.checkpoint;

  const stored = store && (await store.store.load(store.key));
  const discardedCheckpoint = stored && staleCheckpointReason(stored, { collection, model: label, segments, repair: options.repair }, now());
  const state: ReconcileCheckpoint =
    stored && !discardedCheckpoint
      ? stored.checkpoint
      : {
          format: CHECKPOINT_FORMAT,
          runId: randomUUID(),
          startedAt: new Date(now()).toISOString(),
          invocations: 0,
          collection,
          model: label,
          phase: 'table',
          segments: Array.from({ length: segments }, () => ({ done: false })),
          totals: { personas: 0, points: 0, byKind: countByKind([]), remaining: 0, errors: [], ...(options.repair ? { actions: noActions() } : {}) },
        };
  state.invocations++;

  // Saves run one after another, each writing the state as it is when it runs (never an older one).
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    if (store) {
      saving = saving.then(async () => {
        await lease?.keep(); // a run whose lease another run took over saves nothing more
        await store.store.save(store.key, structuredClone(state), Math.floor(now() / 1000) + (store.ttlSeconds ?? CHECKPOINT_TTL_SECONDS));
      });
    }
    return saving;
  };
  await save();

  const found: Drift[] = [];
  const remainingHere: Drift[] = [];
  let pages = 0;
  let longestPageMs = 0;
  let stopping = false;
  const stop = () => (stopping ||= options.shouldStop?.({ longestPageMs }) ?? false);
  const repairDeps = { ...deps, embedder: deps.embedder! };

  /** Repairs a page's differences; returns what the page adds to the pass, applied at once by `record`. */
  const settle = async (drift: Drift[]) => {
    if (!options.repair || drift.length === 0) return { drift, remaining: drift, actions: noActions(), errors: [] as string[] };
    return { drift, ...(await repairUntilEqual(repairDeps, collection, drift)) };
  };
  // Synchronous: a save never sees a page's counts without its new position, or the reverse.
  const record = (outcome: Awaited<ReturnType<typeof settle>>, counted: { personas?: number; points?: number }, pageStarted: number, advance: () => void) => {
    const { totals } = state;
    totals.personas += counted.personas ?? 0;
    totals.points += counted.points ?? 0;
    for (const entry of outcome.drift) totals.byKind[entry.kind]++;
    if (totals.actions) for (const [action, count] of Object.entries(outcome.actions)) totals.actions[action as SyncAction] += count;
    totals.errors.push(...outcome.errors.slice(0, 10 - totals.errors.length));
    totals.remaining += outcome.remaining.length;
    found.push(...outcome.drift);
    remainingHere.push(...outcome.remaining);
    advance();
    pages++;
    longestPageMs = Math.max(longestPageMs, performance.now() - pageStarted);
  };

  const scanSegment = async (segment: number) => {
    const position = state.segments[segment]!;
    while (!position.done && !stop()) {
      await lease?.keep();
      const pageStarted = performance.now();
      const page = await deps.repository.scanPage({ segment, totalSegments: segments, pageSize, ...(position.startKey ? { startKey: position.startKey } : {}) });
      const points = page.items.length > 0 ? await deps.qdrant.retrieve(collection, { ids: page.items.map((row) => pointIdForKey(row.id)), with_payload: true, with_vector: true }) : [];
      // Only this page's ids were retrieved, so no point here is an orphan: phase two finds those.
      const outcome = await settle(findDrift(page.items, points.map(indexedPoint), label));
      record(outcome, { personas: page.items.length }, pageStarted, () => {
        if (page.lastKey) position.startKey = page.lastKey;
        else delete position.startKey;
        position.done = !page.lastKey;
      });
      await save();
    }
  };

  const scrollIndex = async () => {
    while (!stop()) {
      await lease?.keep();
      const pageStarted = performance.now();
      const offset = state.indexOffset;
      // Just what names the point's table key (a tenant's point: tenant_id and persona_id).
      const page = await deps.qdrant.scroll(collection, { limit: pageSize, with_payload: ['tenant_id', 'persona_id'], with_vector: false, ...(offset !== undefined ? { offset } : {}) });
      const ids = page.points.map((point) => keyOfPoint(String(point.id), point.payload));
      const rows = ids.length > 0 ? await deps.repository.getMany(ids) : new Map<string, Persona>();
      const outcome = await settle(ids.filter((id) => !rows.has(id)).map(orphanDrift));
      // Without order_by, the next page's first point id (null on the last page).
      const next = (page.next_page_offset ?? undefined) as string | number | undefined;
      record(outcome, { points: ids.length }, pageStarted, () => {
        if (next !== undefined) state.indexOffset = next;
      });
      if (next === undefined) return true;
      await save();
    }
    return false;
  };

  let complete = false;
  if (state.phase === 'table') {
    const results = await Promise.allSettled(
      state.segments.map((_, segment) =>
        scanSegment(segment).catch((error: unknown) => {
          stopping = true; // the other segments finish their page, save it and stop
          throw error;
        }),
      ),
    );
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    if (state.segments.every((position) => position.done)) {
      state.phase = 'index';
      await save();
    }
  }
  if (state.phase === 'index') complete = await scrollIndex();
  await saving;
  if (complete && store) {
    await lease?.keep();
    await store.store.clear(store.key);
  }

  const { totals } = state;
  return {
    collection,
    model: label,
    runId: state.runId,
    complete,
    invocations: state.invocations,
    ...(discardedCheckpoint ? { discardedCheckpoint } : {}),
    pages,
    personas: totals.personas,
    points: totals.points,
    byKind: totals.byKind,
    drift: found,
    ...(totals.actions ? { repair: { actions: totals.actions, errors: totals.errors, remaining: remainingHere } } : {}),
    remaining: totals.remaining,
    durationMs: performance.now() - started,
  };
}

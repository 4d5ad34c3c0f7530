/**
 * Zero-downtime reindex: build `<alias>-v<n+1>` with another model (or the same one, for new
 * collection settings) while searches keep using the alias, then move the alias (aliasSwap.ts:
 * checked, read back and repaired, since Qdrant's alias actions are not atomic on error) and drop
 * the old collection.
 *
 * Live changes: before the table scan starts, a tail of the table's stream is opened at its end
 * (personaChangeTail.ts); every persona changed from then on is synced into the new collection with
 * the new model, by the same state-based, version-guarded syncPersonaChanges() the indexer uses, so
 * scan and tail can overlap in any order. The indexer itself keeps writing to the collection it
 * resolved from the alias (the old one) until it resolves again (ALIAS_RECHECK_MS); the tail runs
 * on for longer than that after the swap, so every change reaches the new collection. The indexer
 * checks the model of the collection it resolves: after a model change it refuses to write (its
 * records retry, then go to the on-failure destination) until it runs with the new model.
 *
 * The backfill is pluggable: by default a parallel scan embedded in this process (scanBackfill);
 * in AWS, a DynamoDB export read by a Step Functions Distributed Map of embedding Lambdas
 * (shared/reindexAtScale/stepFunctionsBackfill.ts), which outlives this process: a re-run attaches
 * to it (`resume`) and opens the tail at its start again, so no change in between is lost.
 */
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { TableConfig } from '../config';
import type { PersonaRepository } from '../persona/personaRepository';
import { ALIAS_RECHECK_MS, createPersonaCollection, modelLabel, readIndexedModel, sameModel, EmbeddingModelMismatchError } from '../vectorIndex/personaCollection';
import { syncPersonaRows, type SyncDeps } from '../vectorIndex/syncPersonaChanges';
import { swapAlias } from './aliasSwap';
import { compareIndex, reconcileIndex, repairIds, repairUntilEqual, resolveCollection } from './indexReconciler';
import { tailPersonaChanges } from './personaChangeTail';

export interface ReindexDeps {
  repository: Pick<PersonaRepository, 'scanAll' | 'scanPage' | 'getMany'>;
  qdrant: QdrantClient;
  /** The alias searches and the indexer use. */
  alias: string;
  /** Where the table and its stream are. */
  tables: TableConfig;
  /** The model of the new collection. */
  embedder: SyncDeps['embedder'];
}

/** `created` starts a new reindex; `attached` carries on one a previous run left (see ReindexBackfill.resume). */
export type ReindexPhase = 'created' | 'attached' | 'backfilled' | 'verified' | 'swapped' | 'drained' | 'dropped';

export interface BackfillProgress {
  /** Personas written so far (an estimate where the backfill only counts chunks). */
  personas: number;
  /** All the backfill will write, once known. */
  totalPersonas?: number;
  note?: string;
}

/** A backfill a previous run started that is still running (or finished) without its alias swap. */
export interface ResumableBackfill {
  collection: string;
  /** When its cut of the table was taken (ms since epoch): the change tail starts there. */
  since: number;
  detail: string;
}

/**
 * Fills the new collection with every persona as of a cut at or after `since` (the moment the
 * change tail started, so the tail covers everything after the cut).
 */
export interface ReindexBackfill {
  readonly name: string;
  /** A reindex of `alias` left unfinished by an earlier run, to attach to instead of starting over. */
  resume?(alias: string): Promise<ResumableBackfill | undefined>;
  run(target: { alias: string; collection: string; since: number; resumed: boolean }, onProgress: (progress: BackfillProgress) => void): Promise<{ personas: number; detail?: string }>;
  /** Stops work that would go on writing into `collection` after the reindex failed (it is then dropped). */
  abort?(collection: string): Promise<void>;
}

export interface ReindexOptions {
  /** Parallel scan segments. */
  segments?: number;
  /** How long the tail keeps feeding the new collection after the swap (default: the indexer's ALIAS_RECHECK_MS + 5 s). */
  graceMs?: number;
  /** Keep the old collection (default: drop it). */
  keepOld?: boolean;
  /** Default: the parallel table scan of this process (scanBackfill). */
  backfill?: ReindexBackfill;
  /**
   * How the new collection is checked against the table before and after the swap: `in-memory`
   * (default) compares both sides whole; `paged` runs the reconciler's paged pass with repair,
   * whose memory does not grow with the table (for tables that do not fit one process).
   */
  verification?: 'in-memory' | 'paged';
  /** Awaited: a caller may finish its own work at a phase (e.g. settle writes before the swap). */
  onPhase?: (phase: ReindexPhase, detail: string) => void | Promise<void>;
  onBackfillProgress?: (progress: BackfillProgress) => void;
}

export interface ReindexReport {
  alias: string;
  from: { collection: string; model: string | null };
  to: { collection: string; model: string };
  personas: number;
  backfill: { by: string; personas: number; durationMs: number; personasPerSecond: number; detail?: string };
  /** Set when this run carried on a reindex an earlier run started. */
  attached?: string;
  /** Stream records the tail saw while the new collection filled and until after the swap. */
  liveChanges: number;
  /** Differences the verification found (and repaired) before the swap; then zero. */
  repairedBeforeSwap: number;
  /** Differences a last comparison found after the tail stopped (repaired; normally 0). */
  repairedAfterSwap: number;
  oldCollectionDropped: boolean;
  /** Set when the alias swap failed part-way and was repaired (see aliasSwap.ts). */
  aliasRecovery?: string;
  durationMs: number;
}

const SCAN_PAGE = 128;

/**
 * `<alias>-v<n>` with n one above every existing version, among collections and aliases alike:
 * Qdrant refuses (400) to create a collection under a name an alias already has.
 */
async function nextCollectionName(qdrant: QdrantClient, alias: string): Promise<string> {
  const [{ collections }, { aliases }] = await Promise.all([qdrant.getCollections(), qdrant.getAliases()]);
  const names = [...collections.map((collection) => collection.name), ...aliases.map((entry) => entry.alias_name)];
  const pattern = new RegExp(`^${alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-v(\\d+)$`);
  const versions = names.map((name) => Number(pattern.exec(name)?.[1] ?? 0));
  return `${alias}-v${Math.max(0, ...versions) + 1}`;
}

/**
 * A full comparison, then repair-and-recheck of what differed, until nothing does. Changes written
 * after the comparison's scan are the tail's to deliver; the caller waits for it first.
 */
async function verifyAndRepair(deps: ReindexDeps, collection: string, verification: ReindexOptions['verification'], segments: number): Promise<{ repaired: number; personas: number }> {
  const refuse = (count: number, first: string, errors: readonly string[]) =>
    new Error(
      `${collection} still differs from the table in ${count} personas after repairs ` +
        `(first: ${first}${errors.length ? `; errors: ${errors.slice(0, 3).join('; ')}` : ''}); ` +
        'the alias was not swapped. Fix the cause and run the reindex again.',
    );
  const describe = (entries: ReadonlyArray<{ id: string; kind: string }>) => entries.slice(0, 3).map((entry) => `${entry.id} ${entry.kind}`).join(', ');
  if (verification === 'paged') {
    const report = await reconcileIndex({ repository: deps.repository, qdrant: deps.qdrant, collection, embedder: deps.embedder, segments }, { repair: true });
    if (report.remaining > 0) throw refuse(report.remaining, describe(report.repair?.remaining ?? []), report.repair?.errors ?? []);
    return { repaired: new Set(report.drift.map((entry) => entry.id)).size, personas: report.personas };
  }
  const { drift, personas } = await compareIndex(deps, collection, deps.embedder.model);
  const { remaining, errors } = await repairUntilEqual(deps, collection, drift);
  if (remaining.length > 0) throw refuse(remaining.length, describe(remaining), errors);
  return { repaired: new Set(drift.map((entry) => entry.id)).size, personas };
}

/** The default backfill: `segments` parallel scans of the table, each page embedded and written as read. */
export function scanBackfill(deps: Pick<ReindexDeps, 'repository' | 'qdrant' | 'embedder'>, segments = 4): ReindexBackfill {
  return {
    name: `table scan (${segments} segments) in this process`,
    async run({ collection }, onProgress) {
      let personas = 0;
      await Promise.all(
        Array.from({ length: segments }, async (_, segment) => {
          for await (const page of deps.repository.scanAll({ segment, totalSegments: segments, pageSize: SCAN_PAGE })) {
            if (page.length === 0) continue;
            const report = await syncPersonaRows({ qdrant: deps.qdrant, collection, embedder: deps.embedder }, page);
            // Failed ids are left to the verification, which finds and repairs them.
            personas += page.length - report.counts.failed;
            onProgress({ personas });
          }
        }),
      );
      return { personas };
    },
  };
}

export async function reindexCollection(deps: ReindexDeps, options: ReindexOptions = {}): Promise<ReindexReport> {
  const started = performance.now();
  const phase = async (name: ReindexPhase, detail: string) => options.onPhase?.(name, detail);
  const segments = options.segments ?? 4;
  const backfill = options.backfill ?? scanBackfill(deps, segments);
  const { qdrant, alias } = deps;
  const from = await resolveCollection(qdrant, alias);
  if (from === alias) throw new Error(`'${alias}' is a collection, not an alias, so it cannot be swapped; recreate it behind an alias (the indexer creates '${alias}-v1' behind the alias '${alias}').`);
  const fromModel = await readIndexedModel(qdrant, from);
  const newModel = modelLabel(deps.embedder.model);

  const resumable = await backfill.resume?.(alias);
  let target: string;
  if (resumable) {
    target = resumable.collection;
    const indexed = await readIndexedModel(qdrant, target);
    // The tail and the verification embed with this process's model: it must be the backfill's.
    if (!indexed || !sameModel(indexed, deps.embedder.model)) throw new EmbeddingModelMismatchError(target, indexed, deps.embedder.model);
    await phase('attached', `${target} (${resumable.detail}); the change tail restarts at ${new Date(resumable.since).toISOString()}`);
  } else {
    target = await nextCollectionName(qdrant, alias);
    await createPersonaCollection(qdrant, target, deps.embedder.model);
    await phase('created', `${target} for ${newModel} (the alias stays on ${from}${fromModel ? `, ${modelLabel(fromModel)}` : ''})`);
  }

  const changed = new Set<string>();
  const tail = await tailPersonaChanges({
    tables: deps.tables,
    ...(resumable ? { from: resumable.since } : {}),
    onChanges: async (ids) => {
      for (const id of ids) changed.add(id);
      const { actions } = await repairIds(deps, target, ids);
      return actions.failed > 0 ? ids : [];
    },
  });
  // The tail sees every change from here on: a cut of the table taken now or later misses none.
  const since = resumable?.since ?? Date.now();
  let swapped = false;
  try {
    const backfillStarted = performance.now();
    const filled = await backfill.run({ alias, collection: target, since, resumed: !!resumable }, (progress) => options.onBackfillProgress?.(progress));
    // A row the backfill read before it was deleted was written after the tail removed its point
    // (a guarded upsert of a missing point inserts it): every id the tail has seen is synced once more.
    const resynced = changed.size > 0 ? await repairIds(deps, target, [...changed]) : undefined;
    const backfillMs = performance.now() - backfillStarted;
    await phase(
      'backfilled',
      `${filled.personas} personas by ${backfill.name} in ${(backfillMs / 1000).toFixed(1)} s${filled.detail ? ` (${filled.detail})` : ''}` +
        (resynced ? `; ${changed.size} personas changed meanwhile synced again (${resynced.actions.deleted} deleted)` : ''),
    );

    await tail.caughtUp(Date.now());
    const { repaired: repairedBeforeSwap } = await verifyAndRepair(deps, target, options.verification, segments);
    await phase('verified', `${target} equals the table (${repairedBeforeSwap} differences repaired on the way)`);

    // Throws with the alias back on `from` when the swap cannot complete.
    const { recovery } = await swapAlias(qdrant, alias, from, target);
    swapped = true;
    const swappedAt = Date.now();
    await phase('swapped', `${alias} -> ${target}${recovery ? ` (repaired: ${recovery})` : ''}`);

    const graceMs = options.graceMs ?? ALIAS_RECHECK_MS + 5_000;
    await new Promise((resolve) => setTimeout(resolve, graceMs));
    await tail.caughtUp(swappedAt + graceMs);
    await tail.stop();
    const { repaired: repairedAfterSwap, personas } = await verifyAndRepair(deps, target, options.verification, segments);
    await phase('drained', `${tail.stats.records} live changes followed; ${repairedAfterSwap} late differences repaired`);

    if (!options.keepOld) {
      await qdrant.deleteCollection(from);
      await phase('dropped', from);
    }
    return {
      alias,
      from: { collection: from, model: fromModel ? modelLabel(fromModel) : null },
      to: { collection: target, model: newModel },
      personas,
      backfill: {
        by: backfill.name,
        personas: filled.personas,
        durationMs: backfillMs,
        personasPerSecond: filled.personas / Math.max(backfillMs / 1000, 1e-3),
        ...(filled.detail ? { detail: filled.detail } : {}),
      },
      ...(resumable ? { attached: resumable.detail } : {}),
      liveChanges: tail.stats.records,
      repairedBeforeSwap,
      repairedAfterSwap,
      oldCollectionDropped: !options.keepOld,
      ...(recovery ? { aliasRecovery: recovery } : {}),
      durationMs: performance.now() - started,
    };
  } catch (error) {
    await tail.stop();
    // Before the swap nothing depends on the new collection: stop what writes into it and remove it, so a re-run starts clean.
    if (!swapped) {
      await backfill.abort?.(target).catch(() => undefined);
      await qdrant.deleteCollection(target).catch(() => undefined);
    }
    throw error;
  }
}

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
 */
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { TableConfig } from '../config';
import type { PersonaRepository } from '../persona/personaRepository';
import type { Persona } from '../persona/schema';
import { ALIAS_RECHECK_MS, createPersonaCollection, modelLabel, readIndexedModel } from '../vectorIndex/personaCollection';
import { syncPersonaChanges, type SyncDeps } from '../vectorIndex/syncPersonaChanges';
import { swapAlias } from './aliasSwap';
import { compareIndex, repairIds, repairUntilEqual, resolveCollection } from './indexReconciler';
import { tailPersonaChanges } from './personaChangeTail';

export interface ReindexDeps {
  repository: Pick<PersonaRepository, 'scanAll' | 'getMany'>;
  qdrant: QdrantClient;
  /** The alias searches and the indexer use. */
  alias: string;
  /** Where the table and its stream are. */
  tables: TableConfig;
  /** The model of the new collection. */
  embedder: SyncDeps['embedder'];
}

export type ReindexPhase = 'created' | 'backfilled' | 'verified' | 'swapped' | 'drained' | 'dropped';

export interface ReindexOptions {
  /** Parallel scan segments. */
  segments?: number;
  /** How long the tail keeps feeding the new collection after the swap (default: the indexer's ALIAS_RECHECK_MS + 5 s). */
  graceMs?: number;
  /** Keep the old collection (default: drop it). */
  keepOld?: boolean;
  /** Awaited: a caller may finish its own work at a phase (e.g. settle writes before the swap). */
  onPhase?: (phase: ReindexPhase, detail: string) => void | Promise<void>;
  onBackfillProgress?: (personas: number) => void;
}

export interface ReindexReport {
  alias: string;
  from: { collection: string; model: string | null };
  to: { collection: string; model: string };
  personas: number;
  backfill: { personas: number; durationMs: number; personasPerSecond: number };
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
async function verifyAndRepair(deps: ReindexDeps, collection: string): Promise<number> {
  const { drift } = await compareIndex(deps, collection, deps.embedder.model);
  const { remaining, errors } = await repairUntilEqual(deps, collection, drift);
  if (remaining.length > 0) {
    throw new Error(
      `${collection} still differs from the table in ${remaining.length} personas after repairs ` +
        `(first: ${remaining.slice(0, 3).map((entry) => `${entry.id} ${entry.kind}`).join(', ')}${errors.length ? `; errors: ${errors.slice(0, 3).join('; ')}` : ''}); ` +
        'the alias was not swapped. Fix the cause and run the reindex again.',
    );
  }
  return new Set(drift.map((entry) => entry.id)).size;
}

export async function reindexCollection(deps: ReindexDeps, options: ReindexOptions = {}): Promise<ReindexReport> {
  const started = performance.now();
  const phase = async (name: ReindexPhase, detail: string) => options.onPhase?.(name, detail);
  const segments = options.segments ?? 4;
  const { qdrant, alias } = deps;
  const from = await resolveCollection(qdrant, alias);
  if (from === alias) throw new Error(`'${alias}' is a collection, not an alias, so it cannot be swapped; recreate it behind an alias (the indexer creates '${alias}-v1' behind the alias '${alias}').`);
  const fromModel = await readIndexedModel(qdrant, from);
  const target = await nextCollectionName(qdrant, alias);
  const newModel = modelLabel(deps.embedder.model);
  await createPersonaCollection(qdrant, target, deps.embedder.model);
  await phase('created', `${target} for ${newModel} (the alias stays on ${from}${fromModel ? `, ${modelLabel(fromModel)}` : ''})`);

  const tail = await tailPersonaChanges({
    tables: deps.tables,
    onChanges: async (ids) => {
      const { actions } = await repairIds(deps, target, ids);
      return actions.failed > 0 ? ids : [];
    },
  });
  let swapped = false;
  try {
    // Backfill: each page is written as scanned; the sync's version guard keeps a newer point the tail already wrote.
    const backfillStarted = performance.now();
    let backfilled = 0;
    await Promise.all(
      Array.from({ length: segments }, async (_, segment) => {
        for await (const page of deps.repository.scanAll({ segment, totalSegments: segments, pageSize: SCAN_PAGE })) {
          if (page.length === 0) continue;
          const rows = new Map<string, Persona>(page.map((persona) => [persona.id, persona]));
          const report = await syncPersonaChanges(
            { readPersonas: async () => rows, qdrant, collection: target, embedder: deps.embedder },
            page.map((persona) => ({ recordId: persona.id, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
          );
          // Failed ids are left to the verification below, which finds and repairs them.
          backfilled += page.length - report.counts.failed;
          options.onBackfillProgress?.(backfilled);
        }
      }),
    );
    const backfillMs = performance.now() - backfillStarted;
    await phase('backfilled', `${backfilled} personas in ${(backfillMs / 1000).toFixed(1)} s`);

    await tail.caughtUp(Date.now());
    const repairedBeforeSwap = await verifyAndRepair(deps, target);
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
    const repairedAfterSwap = await verifyAndRepair(deps, target);
    await phase('drained', `${tail.stats.records} live changes followed; ${repairedAfterSwap} late differences repaired`);

    if (!options.keepOld) {
      await qdrant.deleteCollection(from);
      await phase('dropped', from);
    }
    const { personas } = await compareIndex(deps, target, deps.embedder.model);
    return {
      alias,
      from: { collection: from, model: fromModel ? modelLabel(fromModel) : null },
      to: { collection: target, model: newModel },
      personas,
      backfill: { personas: backfilled, durationMs: backfillMs, personasPerSecond: backfilled / Math.max(backfillMs / 1000, 1e-3) },
      liveChanges: tail.stats.records,
      repairedBeforeSwap,
      repairedAfterSwap,
      oldCollectionDropped: !options.keepOld,
      ...(recovery ? { aliasRecovery: recovery } : {}),
      durationMs: performance.now() - started,
    };
  } catch (error) {
    await tail.stop();
    // Before the swap nothing depends on the new collection: remove it so a re-run starts clean.
    if (!swapped) await qdrant.deleteCollection(target).catch(() => undefined);
    throw error;
  }
}

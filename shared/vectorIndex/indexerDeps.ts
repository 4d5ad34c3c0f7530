import { personaRepositoryFor } from '../persona/personaRepository';
import { ALIAS_RECHECK_MS, ensurePersonaCollection } from './personaCollection';
import type { SyncDeps } from './syncPersonaChanges';
import { isAuthOrConnectionFailure } from './qdrantConnection';
import { vectorIndexDeps } from './vectorIndexDeps';

let loading: Promise<SyncDeps> | undefined;
let target: { collection: string; checkedAt: number } | undefined;
/** The collection check under way: a call made meanwhile (the first invocation, while init's check runs on) joins it. */
let checking: Promise<void> | undefined;

/**
 * Everything the indexer needs, built once per warm container: the model (loaded once), the
 * Qdrant client, the collection checked against the model, and the table reader. A failed
 * initialisation is retried on the next invocation instead of being cached.
 *
 * Writes go to the physical collection behind the alias, resolved and checked against this
 * model at most ALIAS_RECHECK_MS ago: after a reindex swaps the alias, the indexer moves to the
 * new collection within that time, and if the new collection holds another model's vectors it
 * refuses (EmbeddingModelMismatchError, so the records are retried) instead of mixing models.
 */
export async function indexerDeps(): Promise<SyncDeps> {
  loading ??= (async () => {
    const repository = personaRepositoryFor();
    const { qdrant, collection, embedder } = await vectorIndexDeps();
    return { readPersonas: (ids: readonly string[]) => repository.getMany(ids), qdrant, collection, embedder };
  })().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  const deps = await loading;
  if (!target || Date.now() - target.checkedAt >= ALIAS_RECHECK_MS) {
    checking ??= (async () => {
      try {
        target = { collection: await ensurePersonaCollection(deps.qdrant, deps.collection, deps.embedder.model), checkedAt: Date.now() };
      } catch (error) {
        // Qdrant unreachable or refusing the key: keep the collection checked last, so each record
        // fails (and is logged with its persona id) on its own. A model mismatch, or no collection
        // checked yet, still fails the batch.
        if (!target || !isAuthOrConnectionFailure(error)) throw error;
      } finally {
        checking = undefined;
      }
    })();
    await checking;
  }
  return { ...deps, collection: target!.collection };
}

import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig } from '../config';
import { personaRepository } from '../persona/personaRepository';
import { ensurePersonaCollection } from './personaCollection';
import type { SyncDeps } from './syncPersonaChanges';
import { vectorIndexDeps } from './vectorIndexDeps';

let loading: Promise<SyncDeps> | undefined;

/**
 * Everything the indexer needs, built once per warm container: the model (loaded once), the
 * Qdrant client, the collection checked against the model, and the table reader. A failed
 * initialisation is retried on the next invocation instead of being cached.
 */
export function indexerDeps(): Promise<SyncDeps> {
  loading ??= (async () => {
    const config = tableConfig();
    const repository = personaRepository(createDocumentClient(config), {
      personas: config.personaTableName,
      idempotency: config.idempotencyTableName,
    });
    const { qdrant, collection, embedder } = await vectorIndexDeps();
    await ensurePersonaCollection(qdrant, collection, embedder.model);
    return { readPersonas: (ids: readonly string[]) => repository.getMany(ids), qdrant, collection, embedder };
  })().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

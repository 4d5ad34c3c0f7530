import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig } from '../config';
import { getEmbedder } from '../embedding';
import { personaRepository } from '../persona/personaRepository';
import { ensurePersonaCollection } from './personaCollection';
import { createQdrantClient, qdrantSettings } from './qdrantConnection';
import type { SyncDeps } from './syncPersonaChanges';

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
    const [settings, embedder] = await Promise.all([qdrantSettings(), getEmbedder()]);
    const qdrant = createQdrantClient(settings);
    await ensurePersonaCollection(qdrant, settings.collection, embedder.model);
    return { readPersonas: (ids: readonly string[]) => repository.getMany(ids), qdrant, collection: settings.collection, embedder };
  })().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

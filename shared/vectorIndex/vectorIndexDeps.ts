import type { QdrantClient } from '@qdrant/js-client-rest';
import { getEmbedder, type Embedder } from '../embedding';
import { createQdrantClient, qdrantSettings } from './qdrantConnection';

export interface VectorIndexDeps {
  qdrant: QdrantClient;
  /** The alias (or collection) that every reader and writer uses. */
  collection: string;
  embedder: Embedder;
}

let loading: Promise<VectorIndexDeps> | undefined;

/**
 * The Qdrant client, the collection name and the embedding model, built once per warm container
 * (and shared by the indexer and the search functions in the local runtime's single process). A
 * failed initialisation is retried on the next call instead of being cached.
 */
export function vectorIndexDeps(): Promise<VectorIndexDeps> {
  loading ??= (async () => {
    const [settings, embedder] = await Promise.all([qdrantSettings(), getEmbedder()]);
    return { qdrant: createQdrantClient(settings), collection: settings.collection, embedder };
  })().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

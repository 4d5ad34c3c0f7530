import type { QdrantClient } from '@qdrant/js-client-rest';
import { getEmbedder, type Embedder } from '../embedding';
import { qdrantDeps } from './qdrantDeps';

export interface VectorIndexDeps {
  qdrant: QdrantClient;
  /** The alias (or collection) that every reader and writer uses. */
  collection: string;
  embedder: Embedder;
}

let loading: Promise<VectorIndexDeps> | undefined;

/**
 * qdrantDeps plus the embedding model (shared by the indexer and the search functions in the local
 * runtime's single process).
 */
export function vectorIndexDeps(): Promise<VectorIndexDeps> {
  loading ??= Promise.all([qdrantDeps(), getEmbedder()])
    .then(([qdrant, embedder]) => ({ ...qdrant, embedder }))
    .catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
  return loading;
}


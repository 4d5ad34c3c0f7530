import type { QdrantClient } from '@qdrant/js-client-rest';
import { connectQdrant, qdrantSettings } from './qdrantConnection';

export interface QdrantDeps {
  qdrant: QdrantClient;
  /** The alias (or collection) that every reader and writer uses. */
  collection: string;
}

let connecting: Promise<QdrantDeps> | undefined;

/**
 * The Qdrant client and the collection name, built once per warm container. The client follows
 * its secret (see connectQdrant): a rotated key or a url put in after deploy reaches warm
 * containers. A failed initialisation is retried on the next call instead of being cached.
 */
export function qdrantDeps(): Promise<QdrantDeps> {
  connecting ??= connectQdrant((forceFetch) => qdrantSettings(process.env, { forceFetch }))
    .then(({ client, settings }) => ({ qdrant: client, collection: settings().collection }))
    .catch((error: unknown) => {
      connecting = undefined;
      throw error;
    });
  return connecting;
}


import { QdrantClient } from '@qdrant/js-client-rest';

export interface QdrantSettings {
  url: string;
  apiKey: string | undefined;
  /** The alias (or collection) that every reader and writer uses. */
  collection: string;
}

interface SecretValue {
  url?: unknown;
  apiKey?: unknown;
}

/**
 * Where Qdrant is. In AWS the URL and API key come from the Secrets Manager secret named by
 * QDRANT_SECRET_ARN (JSON {"url": ..., "apiKey": ...}), never from plain environment values;
 * locally QDRANT_URL / QDRANT_API_KEY, defaulting to the local Qdrant server.
 */
export async function qdrantSettings(env: NodeJS.ProcessEnv = process.env): Promise<QdrantSettings> {
  const collection = env.QDRANT_COLLECTION ?? 'personas';
  if (env.QDRANT_SECRET_ARN) {
    const { getSecret } = await import('@aws-lambda-powertools/parameters/secrets');
    const secret = (await getSecret(env.QDRANT_SECRET_ARN, { transform: 'json', maxAge: 300 })) as SecretValue | undefined;
    if (!secret || typeof secret.url !== 'string') {
      throw new Error(`The secret ${env.QDRANT_SECRET_ARN} must be JSON {"url": "https://…:6333", "apiKey": "…"}; its "url" is missing.`);
    }
    return { url: secret.url, apiKey: typeof secret.apiKey === 'string' ? secret.apiKey : undefined, collection };
  }
  return { url: env.QDRANT_URL ?? 'http://127.0.0.1:6333', apiKey: env.QDRANT_API_KEY || undefined, collection };
}

export function createQdrantClient(settings: Pick<QdrantSettings, 'url' | 'apiKey'>): QdrantClient {
  return new QdrantClient({
    url: settings.url,
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
    // The version handshake costs a request per cold start; the API subset used is stable across 1.x.
    checkCompatibility: false,
    timeout: 10_000,
  });
}

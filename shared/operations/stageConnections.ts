import type { QdrantClient } from '@qdrant/js-client-rest';
import { tableConfig, type TableConfig } from '../config';
import { personaRepositoryFor, type PersonaRepository } from '../persona/personaRepository';
import { connectQdrant, qdrantSettings } from '../vectorIndex/qdrantConnection';

/** The table and the index of one stage, as the operator commands and the reconciler reach them. */
export interface StageConnections {
  tables: TableConfig;
  repository: PersonaRepository;
  qdrant: QdrantClient;
  /** The alias every reader and writer uses (QDRANT_COLLECTION, default `personas`). */
  alias: string;
  qdrantUrl: string;
}

/**
 * From the same environment variables the functions read: TABLE_NAME, DYNAMODB_ENDPOINT (unset in
 * AWS), AWS_REGION, QDRANT_URL / QDRANT_API_KEY or QDRANT_SECRET_ARN, QDRANT_COLLECTION. The
 * defaults reach `npm start`.
 */
export async function connectToStage(env: NodeJS.ProcessEnv = process.env): Promise<StageConnections> {
  const tables = tableConfig(env);
  // Long runs (the reconciler, reindex) keep following the secret, as the functions do.
  const { client, settings } = await connectQdrant((forceFetch) => qdrantSettings(env, { forceFetch }));
  return {
    tables,
    repository: personaRepositoryFor(tables),
    qdrant: client,
    alias: settings().collection,
    qdrantUrl: settings().url,
  };
}

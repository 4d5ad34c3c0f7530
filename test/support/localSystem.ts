import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { generateTestModel } from '../../lib/generatedModels/testModel';
import { startLocalSystem, type LocalSystem, type LocalSystemOptions } from '../../local/system';
import { createQdrantClient } from '../../shared/vectorIndex/qdrantConnection';
import { useFreshTables } from './tables';
import { apiClient } from './apiClient';

/** Points the embedding code at the generated test model, offline, exactly as production loads a model. */
export async function useTestModel(): Promise<string> {
  const { dir } = await generateTestModel();
  process.env.EMBEDDING_MODEL_DIR = dir;
  process.env.EMBEDDING_ALLOW_REMOTE = 'false';
  return dir;
}

/**
 * The whole local system for one test file: its own tables in the shared DynamoDB Local, its own
 * Qdrant server and collection, the API and the stream worker with the real indexer handler. The
 * embedding model is the generated test model unless `modelDir` names another (configured, as in
 * production, by EMBEDDING_MODEL_DIR alone).
 */
export async function startTestSystem(overrides: Partial<LocalSystemOptions> = {}, { modelDir }: { modelDir?: string } = {}) {
  await useFreshTables('persona-sys');
  if (modelDir === undefined) await useTestModel();
  else {
    process.env.EMBEDDING_MODEL_DIR = modelDir;
    process.env.EMBEDDING_ALLOW_REMOTE = 'false';
  }
  process.env.QDRANT_COLLECTION = `personas-${randomUUID().slice(0, 8)}`;
  const workDir = mkdtempSync(join(tmpdir(), 'persona-system-'));
  const system: LocalSystem = await startLocalSystem({
    apiPort: 0,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    qdrantPort: 0,
    failureFile: join(workDir, 'indexer-failures.jsonl'),
    // With auth: 'jwt', the local issuer's key lives with this system, not in the project's .data.
    jwtKeyFile: join(workDir, 'local-jwt-signing-key.json'),
    ...overrides,
  });
  return {
    system,
    workDir,
    api: apiClient(system.apiUrl),
    qdrant: createQdrantClient({ url: system.qdrantUrl, apiKey: system.qdrantApiKey }),
    collection: process.env.QDRANT_COLLECTION,
  };
}

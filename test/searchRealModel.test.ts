import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';
import { createEmbedder, type Embedder } from '../shared/embedding';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import { personaInputSchema, type Persona } from '../shared/persona/schema';
import { searchPersonas } from '../shared/search/personaSearch';
import { ensurePersonaCollection } from '../shared/vectorIndex/personaCollection';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { syncPersonaChanges } from '../shared/vectorIndex/syncPersonaChanges';
import { einstein } from './support/apiClient';
import { jazzDrummer, pastryChef } from './support/searchFixtures';
import { useFreshTables } from './support/tables';

/**
 * Semantic quality needs a real sentence-embedding model, which the generated test model is not.
 * One is looked for in ../shared/models/<name>/ (transformers.js layout), or given with
 * REAL_EMBEDDING_MODEL_DIR; without one the test is skipped and says so.
 */
const SHARED_MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/models');

function findRealModel(): string | undefined {
  if (process.env.REAL_EMBEDDING_MODEL_DIR) return path.resolve(process.env.REAL_EMBEDDING_MODEL_DIR);
  if (!existsSync(SHARED_MODELS)) return undefined;
  return readdirSync(SHARED_MODELS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(SHARED_MODELS, entry.name))
    .find((dir) => ['config.json', 'tokenizer.json', 'onnx/model_quantized.onnx'].every((file) => existsSync(path.join(dir, file))));
}

const realModel = findRealModel();

const personas = { einstein, pastryChef, jazzDrummer };

let qdrant: QdrantServer | undefined;
let embedder: Embedder | undefined;
afterAll(async () => {
  await embedder?.dispose();
  await qdrant?.close();
});

describe('semantic search with a real embedding model', () => {
  it.skipIf(!realModel)(
    `ranks Einstein above a pastry chef and a jazz drummer for "a physicist fond of thought experiments"${realModel ? '' : ' (skipped: no real model in ../shared/models/<name>/ and REAL_EMBEDDING_MODEL_DIR unset)'}`,
    async () => {
      // The real path minus HTTP and the stream: DynamoDB Local, the indexer's sync, the search function.
      const tables = await useFreshTables('personas-real');
      const repository = personaRepositoryFor(tables);
      const now = new Date().toISOString();
      const stored: Persona[] = Object.values(personas).map((input, index) => ({
        id: `00000000-0000-4000-8000-00000000000${index + 1}`,
        ...personaInputSchema.parse(input),
        version: 1,
        created_at: now,
        updated_at: now,
      }));
      expect([...(await repository.createMany(stored)).values()].every((outcome) => outcome.kind === 'created')).toBe(true);

      embedder = await createEmbedder({ modelDir: realModel!, allowRemote: false });
      qdrant = await startQdrantServer({ port: 0 });
      const client = createQdrantClient({ url: qdrant.url, apiKey: undefined });
      const collection = await ensurePersonaCollection(client, 'personas-real', embedder.model);
      const report = await syncPersonaChanges(
        { readPersonas: (ids) => repository.getMany(ids), qdrant: client, collection, embedder },
        stored.map((persona) => ({ recordId: persona.id, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
      );
      expect(report.counts.embedded).toBe(stored.length);

      const results = await searchPersonas(
        { repository, qdrant: client, collection, embedder },
        { query: 'a physicist fond of thought experiments', mode: 'semantic', limit: 3, offset: 0, hydrate: false },
      );
      console.log(`[search, ${embedder.model.id}] ${results.items.map((item) => `${item.name} ${item.score.toFixed(3)}`).join(', ')}`);
      expect(results.items.map((item) => item.name)).toEqual(['Albert Einstein', expect.any(String), expect.any(String)]);
      expect(results.items[0]!.score).toBeGreaterThan(results.items[1]!.score);
    },
  );
});

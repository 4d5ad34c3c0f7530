/**
 * `personas status`: how far the index is from the table, cheaply (versions only, no vectors):
 * counts on both sides, personas whose change has not reached the index yet, changes the indexer
 * gave up on, and the sync lag between the newest write in the table and in the index.
 */
import { readFile } from 'node:fs/promises';
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { PersonaRepository } from '../persona/personaRepository';
import { keyOfPoint } from '../tenancy/tenantKeys';
import { describeIndexedModel, modelLabel, readIndexedModel } from '../vectorIndex/personaCollection';
import { resolveCollection, scanTable } from './indexReconciler';

export interface StatusDeps {
  repository: Pick<PersonaRepository, 'scanAll'>;
  qdrant: QdrantClient;
  alias: string;
  tableName: string;
  /** The local stream worker's failure file (JSON lines of failed batches). */
  failureFile?: string;
  /** Depth of the indexer's SQS on-failure queue, when a queue URL was given. */
  failureQueueDepth?: () => Promise<number>;
}

export interface StatusReport {
  table: { name: string; personas: number; newestUpdatedAt: string | null };
  index: {
    alias: string;
    collection: string;
    /** "id@revision/dtype", as point payloads name it. */
    model: string | null;
    /** How the collection's vectors were made (pooling, prompts, token limit), from its metadata. */
    embedding: string | null;
    points: number;
    newestUpdatedAt: string | null;
  };
  /** Collections named `<alias>-v<n>` that the alias does not point at (a reindex in progress, or left over). */
  otherCollections: string[];
  /** Personas whose point is missing or at an older version. */
  pending: number;
  /** Points whose persona is gone from the table (a delete not yet applied). */
  pendingDeletes: number;
  failed: { where: string; batches: number; records: number | null } | null;
  /** Newest `updated_at` in the table minus the newest in the index (0 when the index has caught up). */
  syncLagMs: number | null;
}

async function indexVersions(qdrant: QdrantClient, collection: string) {
  const versions = new Map<string, number>();
  let newest = '';
  let offset: string | number | null | undefined;
  do {
    const page: Awaited<ReturnType<QdrantClient['scroll']>> = await qdrant.scroll(collection, {
      limit: 1_000,
      with_payload: ['version', 'updated_at', 'tenant_id', 'persona_id'],
      with_vector: false,
      ...(offset !== undefined && offset !== null ? { offset } : {}),
    });
    for (const point of page.points) {
      versions.set(keyOfPoint(String(point.id), point.payload), Number(point.payload?.version));
      const updatedAt = String(point.payload?.updated_at ?? '');
      if (updatedAt > newest) newest = updatedAt;
    }
    offset = page.next_page_offset as string | number | null | undefined;
  } while (offset !== undefined && offset !== null);
  return { versions, newest };
}

async function failureFileCounts(file: string): Promise<{ batches: number; records: number }> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const entries = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { records?: unknown[] });
  return { batches: entries.length, records: entries.reduce((sum, entry) => sum + (entry.records?.length ?? 0), 0) };
}

export async function indexStatus(deps: StatusDeps): Promise<StatusReport> {
  const collection = await resolveCollection(deps.qdrant, deps.alias);
  const [personas, index, model, { collections }] = await Promise.all([
    scanTable(deps.repository),
    indexVersions(deps.qdrant, collection),
    readIndexedModel(deps.qdrant, collection),
    deps.qdrant.getCollections(),
  ]);
  let pending = 0;
  let newestInTable = '';
  const ids = new Set<string>();
  for (const persona of personas) {
    ids.add(persona.id);
    const version = index.versions.get(persona.id);
    if (version === undefined || version < persona.version) pending++;
    if (persona.updated_at > newestInTable) newestInTable = persona.updated_at;
  }
  const pendingDeletes = [...index.versions.keys()].filter((id) => !ids.has(id)).length;

  let failed: StatusReport['failed'] = null;
  if (deps.failureQueueDepth) failed = { where: 'SQS on-failure queue', batches: await deps.failureQueueDepth(), records: null };
  else if (deps.failureFile) failed = { where: deps.failureFile, ...(await failureFileCounts(deps.failureFile)) };

  const lag = newestInTable && index.newest ? Math.max(0, Date.parse(newestInTable) - Date.parse(index.newest)) : null;
  return {
    table: { name: deps.tableName, personas: personas.length, newestUpdatedAt: newestInTable || null },
    index: { alias: deps.alias, collection, model: model ? modelLabel(model) : null, embedding: model ? describeIndexedModel(model) : null, points: index.versions.size, newestUpdatedAt: index.newest || null },
    otherCollections: collections.map((entry) => entry.name).filter((name) => name !== collection && name.startsWith(`${deps.alias}-v`)).sort(),
    pending,
    pendingDeletes,
    failed,
    syncLagMs: lag,
  };
}

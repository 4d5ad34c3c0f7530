/**
 * What one child of the reindex's Distributed Map does: reads its chunk of an export data file and
 * writes those rows into the reindex's new collection, through the same embedding and
 * version-guarded upsert as the indexer and the in-process backfill (syncPersonaRows). A retried
 * chunk re-reads its rows and skips every point already written with the same content, so a retry
 * embeds only what the failed attempt did not write.
 *
 * What fails the chunk (the state machine retries it, with backoff, and then fails the Map Run,
 * which tolerates no failure): Qdrant or the network unavailable (QdrantUnavailableError, retried),
 * a collection of another model or not a reindex's (not retried), a data file shorter than its
 * manifest entry. What does not: a persona whose text cannot be embedded fails alone, is listed in
 * the chunk's result, and is left to the reindex's verification, which refuses the swap while it
 * differs, as in the in-process reindex.
 */
import type { Readable } from 'node:stream';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { readIndexedModel, sameModel, EmbeddingModelMismatchError } from '../vectorIndex/personaCollection';
import { isConnectionFailure } from '../vectorIndex/qdrantConnection';
import { syncPersonaRows, UnembeddablePersonaError, type SyncAction, type SyncDeps } from '../vectorIndex/syncPersonaChanges';
import { readChunkRows, type BackfillChunk } from './exportFiles';

/** The input of one child (the Map's ItemSelector adds collection and bucket to each work-list line). */
export interface BackfillChunkEvent {
  /** The reindex's new collection: `<alias>-v<n>`, not the one the alias points at. */
  collection: string;
  bucket: string;
  chunk: BackfillChunk;
}

export interface BackfillChunkReport {
  collection: string;
  chunk: BackfillChunk;
  personas: number;
  actions: Record<SyncAction, number>;
  /** Personas that could not be written (at most 20 listed), for the verification to find. */
  failed: Array<{ id: string; reason: string }>;
  durationMs: number;
  personasPerSecond: number;
}

export interface BackfillChunkDeps {
  qdrant: QdrantClient;
  embedder: SyncDeps['embedder'];
  /** The alias of this stage: the only collections a chunk may write are its reindex versions. */
  alias: string;
  /** The gzipped body of an object in `bucket`. */
  openObject(bucket: string, key: string): Promise<Readable>;
}

/** The error name the state machine's Retry of a chunk matches (infra/reindexAtScale.ts). */
export const QDRANT_UNAVAILABLE = 'QdrantUnavailable';

/** Qdrant (or the way to it) cannot take writes now: the state machine retries the chunk with backoff. */
export class QdrantUnavailableError extends Error {
  constructor(cause: Error) {
    super(`Qdrant is unavailable (${cause.message}); the chunk is retried`, { cause });
    this.name = QDRANT_UNAVAILABLE;
  }
}

/** The collection is not one a backfill may write: not retried. */
export class BackfillTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackfillTargetRefused';
  }
}

/** Rows embedded per sync: one embedding call and one upsert. */
export const BACKFILL_PAGE = 128;
/** Pages in flight: the next page embeds while the previous one's upsert waits on Qdrant. */
const PAGES_IN_FLIGHT = 2;
const MAX_LISTED_FAILURES = 20;

const unavailable = (error: Error): boolean => {
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status === 408 || status === 429 || status >= 500 : isConnectionFailure(error);
};

async function checkTarget(deps: BackfillChunkDeps, collection: string): Promise<void> {
  const escaped = deps.alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (!new RegExp(`^${escaped}-v\\d+$`).test(collection)) {
    throw new BackfillTargetError(`refusing to backfill '${collection}': a reindex of '${deps.alias}' writes only '${deps.alias}-v<n>' collections`);
  }
  const { aliases } = await deps.qdrant.getAliases().catch((error: Error) => {
    throw unavailable(error) ? new QdrantUnavailableError(error) : error;
  });
  if (aliases.some((entry) => entry.alias_name === deps.alias && entry.collection_name === collection)) {
    throw new BackfillTargetError(`refusing to backfill '${collection}': the alias '${deps.alias}' already points at it (the reindex that built it has swapped)`);
  }
  const indexed = await readIndexedModel(deps.qdrant, collection).catch((error: Error) => {
    if (unavailable(error)) throw new QdrantUnavailableError(error);
    throw new BackfillTargetError(`cannot read collection '${collection}' (${error.message}): was the reindex's new collection dropped?`);
  });
  if (!indexed || !sameModel(indexed, deps.embedder.model)) {
    // The reindex created the collection for its model; this function bundles another one.
    throw new BackfillTargetError(new EmbeddingModelMismatchError(collection, indexed, deps.embedder.model).message);
  }
}

export async function backfillChunk(deps: BackfillChunkDeps, event: BackfillChunkEvent): Promise<BackfillChunkReport> {
  const started = performance.now();
  await checkTarget(deps, event.collection);
  const actions: Record<SyncAction, number> = { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 };
  const failed: BackfillChunkReport['failed'] = [];
  let personas = 0;
  let systemic: Error | undefined;
  const inFlight = new Set<Promise<void>>();

  const syncPage = async (rows: Parameters<typeof syncPersonaRows>[1]) => {
    const report = await syncPersonaRows({ qdrant: deps.qdrant, collection: event.collection, embedder: deps.embedder }, rows);
    personas += rows.length;
    for (const [action, count] of Object.entries(report.counts)) actions[action as SyncAction] += count;
    for (const [id, error] of report.errors) {
      if (!(error instanceof UnembeddablePersonaError)) {
        systemic ??= unavailable(error) ? new QdrantUnavailableError(error) : error;
        continue;
      }
      if (failed.length < MAX_LISTED_FAILURES) failed.push({ id, reason: error.message });
    }
  };

  const body = await deps.openObject(event.bucket, event.chunk.dataFileS3Key);
  for await (const rows of readChunkRows(body, event.chunk, BACKFILL_PAGE)) {
    if (systemic) break;
    const running: Promise<void> = syncPage(rows).finally(() => inFlight.delete(running));
    inFlight.add(running);
    if (inFlight.size >= PAGES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (systemic) throw systemic;

  const durationMs = performance.now() - started;
  return { collection: event.collection, chunk: event.chunk, personas, actions, failed, durationMs, personasPerSecond: personas / Math.max(durationMs / 1000, 1e-3) };
}

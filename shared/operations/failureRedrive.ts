/**
 * `personas redrive`: clears the indexer's on-failure destination by re-syncing the personas its
 * messages name, and deletes each message only once those personas are in sync.
 *
 * What a message holds: for a DynamoDB stream event source, Lambda sends the on-failure destination
 * an invocation record with the batch's metadata, not its records: `DDBStreamBatchInfo` with
 * `shardId`, `startSequenceNumber`, `endSequenceNumber`, `approximateArrivalOfFirstRecord`,
 * `approximateArrivalOfLastRecord`, `batchSize` and `streamArn`
 * (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html). The records
 * themselves stay readable in the stream for 24 hours
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html), so within that
 * window the persona ids are read back from the shard (GetShardIterator AT_SEQUENCE_NUMBER, then
 * GetRecords up to the end sequence number); after it, or when the shard is trimmed, only a full
 * reconcile can tell which personas differ. The local runtime's failure file holds the records
 * themselves.
 *
 * The sync is state-based (each persona's current row is written, version-guarded), so redriving
 * in any order, twice, or after the hourly reconciler already repaired the index is safe.
 */
import {
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ResourceNotFoundException,
  TrimmedDataAccessException,
} from '@aws-sdk/client-dynamodb-streams';
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { DynamoDBRecord } from 'aws-lambda';
import type { Embedder } from '../embedding';
import type { PersonaRepository } from '../persona/personaRepository';
import { EmbeddingModelMismatchError, sameModel } from '../vectorIndex/personaCollection';
import { collectionModel, differencesOf, reconcileIndex, repairUntilEqual, resolveCollection } from './indexReconciler';

/** Stream records are readable this long after they were written (DynamoDB Streams retention). */
export const STREAM_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Older batches are not read back from the stream: their records may be trimmed while we read. */
const STREAM_READ_MARGIN_MS = 15 * 60 * 1000;

export interface FailedBatch {
  /** How the source finds the message again (SQS receipt handle, line of the failure file). */
  readonly handle: string;
  /** A short label for the report (message id, line number). */
  readonly label: string;
  readonly streamArn?: string | undefined;
  readonly shardId?: string | undefined;
  readonly startSequenceNumber?: string | undefined;
  readonly endSequenceNumber?: string | undefined;
  /** When the batch's first record reached the stream (ms since epoch), when known. */
  readonly firstRecordAt?: number | undefined;
  /** The persona ids, when the message carries the records themselves (the local failure file). */
  readonly personaIds?: readonly string[] | undefined;
  /** Not an on-failure record at all: reported and left where it is, never deleted. */
  readonly unrecognised?: boolean;
}

/** Where failed batches wait: the SQS on-failure queue, or the local runtime's failure file. */
export interface FailureSource {
  readonly description: string;
  receive(): Promise<FailedBatch[]>;
  /** Deletes these messages for good. */
  remove(batches: readonly FailedBatch[]): Promise<void>;
  /** Gives back messages that are kept (SQS: visible again at once). */
  release(batches: readonly FailedBatch[]): Promise<void>;
}

export interface RedriveDeps {
  repository: PersonaRepository;
  qdrant: QdrantClient;
  /** The alias every reader and writer uses. */
  collection: string;
  embedder: Embedder;
  streams: DynamoDBStreamsClient;
  source: FailureSource;
  segments?: number;
  now?: () => number;
}

export interface RedriveReport {
  source: string;
  batches: number;
  /** Batches whose personas were read back from the stream (or carried by the message). */
  fromStream: number;
  /** Batches past the stream's retention (or trimmed): settled by a full reconcile. */
  byReconcile: number;
  personas: number;
  repaired: { embedded: number; 'payload-only': number; deleted: number; skipped: number; failed: number };
  reconcile?: { found: number; remaining: number };
  deleted: number;
  kept: { batch: string; reason: string }[];
  errors: string[];
}

/** Parses one SQS message body of the on-failure destination; undefined when it is not one. */
export function parseOnFailureRecord(body: string): Omit<FailedBatch, 'handle' | 'label'> | undefined {
  let parsed: { DDBStreamBatchInfo?: Record<string, unknown> };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return undefined;
  }
  const info = parsed.DDBStreamBatchInfo;
  if (!info || typeof info.shardId !== 'string' || typeof info.startSequenceNumber !== 'string') return undefined;
  const arrival = typeof info.approximateArrivalOfFirstRecord === 'string' ? Date.parse(info.approximateArrivalOfFirstRecord) : NaN;
  return {
    streamArn: typeof info.streamArn === 'string' ? info.streamArn : undefined,
    shardId: info.shardId,
    startSequenceNumber: info.startSequenceNumber,
    endSequenceNumber: typeof info.endSequenceNumber === 'string' ? info.endSequenceNumber : info.startSequenceNumber,
    firstRecordAt: Number.isNaN(arrival) ? undefined : arrival,
  };
}

/** Persona ids of the failure file's records (DynamoDB stream records with Keys.id). */
export function personaIdsOfRecords(records: readonly DynamoDBRecord[]): string[] {
  return [...new Set(records.map((record) => record.dynamodb?.Keys?.id?.S).filter((id): id is string => typeof id === 'string'))];
}

const MAX_EMPTY_PAGES = 5;

/**
 * The persona ids of the stream records from start to end sequence number on the batch's shard;
 * 'unavailable' when the records are gone (trimmed after 24 h, or the shard no longer exists).
 */
export async function personaIdsFromStream(streams: DynamoDBStreamsClient, batch: FailedBatch): Promise<string[] | 'unavailable'> {
  if (!batch.streamArn || !batch.shardId || !batch.startSequenceNumber) return 'unavailable';
  const end = BigInt(batch.endSequenceNumber ?? batch.startSequenceNumber);
  const ids = new Set<string>();
  try {
    let iterator = (
      await streams.send(
        new GetShardIteratorCommand({ StreamArn: batch.streamArn, ShardId: batch.shardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: batch.startSequenceNumber }),
      )
    ).ShardIterator;
    let emptyPages = 0;
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      for (const record of page.Records ?? []) {
        if (BigInt(record.dynamodb?.SequenceNumber ?? '0') > end) return [...ids];
        const id = record.dynamodb?.Keys?.id?.S;
        if (id) ids.add(id);
      }
      if (!page.Records?.length && ++emptyPages >= MAX_EMPTY_PAGES) break;
      iterator = page.NextShardIterator;
    }
    return [...ids];
  } catch (error) {
    if (error instanceof TrimmedDataAccessException || error instanceof ResourceNotFoundException || error instanceof ExpiredIteratorException) return 'unavailable';
    throw error;
  }
}

/**
 * Reads every waiting batch, re-syncs the personas they name (from the stream, else by a full
 * reconcile), deletes each message whose personas are now in sync and gives back the others.
 */
export async function redriveFailures(deps: RedriveDeps): Promise<RedriveReport> {
  const now = deps.now ?? Date.now;
  const batches = await deps.source.receive();
  const report: RedriveReport = {
    source: deps.source.description,
    batches: batches.length,
    fromStream: 0,
    byReconcile: 0,
    personas: 0,
    repaired: { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 },
    deleted: 0,
    kept: [],
    errors: [],
  };
  if (batches.length === 0) return report;
  const done: FailedBatch[] = [];
  const kept = (batch: FailedBatch, reason: string) => report.kept.push({ batch: batch.label, reason });
  try {
    const collection = await resolveCollection(deps.qdrant, deps.collection);
    const model = await collectionModel(deps.qdrant, collection);
    // Repairing with another model would mix two models' vectors in one collection.
    if (!sameModel(model, deps.embedder.model)) throw new EmbeddingModelMismatchError(collection, model, deps.embedder.model);

    const named = new Map<FailedBatch, string[]>();
    const needReconcile: FailedBatch[] = [];
    for (const batch of batches) {
      if (batch.unrecognised) {
        kept(batch, 'not an on-failure record of a DynamoDB stream batch; left for a person to read');
        continue;
      }
      const fresh = batch.firstRecordAt === undefined || now() - batch.firstRecordAt < STREAM_RETENTION_MS - STREAM_READ_MARGIN_MS;
      const ids = batch.personaIds ? [...batch.personaIds] : fresh ? await personaIdsFromStream(deps.streams, batch) : 'unavailable';
      if (ids === 'unavailable') needReconcile.push(batch);
      else named.set(batch, ids);
    }
    report.fromStream = named.size;
    report.byReconcile = needReconcile.length;

    const ids = [...new Set([...named.values()].flat())];
    report.personas = ids.length;
    const stillDifferent = new Set<string>();
    if (ids.length > 0) {
      const repair = await repairUntilEqual(deps, collection, await differencesOf(deps, collection, model, ids));
      report.repaired = repair.actions;
      report.errors.push(...repair.errors);
      for (const entry of repair.remaining) stillDifferent.add(entry.id);
    }
    for (const [batch, batchIds] of named) {
      const unsynced = batchIds.filter((id) => stillDifferent.has(id));
      if (unsynced.length === 0) done.push(batch);
      else kept(batch, `${unsynced.length} persona(s) still not in sync: ${unsynced.slice(0, 5).join(', ')}`);
    }

    if (needReconcile.length > 0) {
      const reconciled = await reconcileIndex({ ...deps, ...(deps.segments ? { segments: deps.segments } : {}) }, { repair: true });
      const remaining = reconciled.remaining;
      report.reconcile = { found: reconciled.drift.length, remaining };
      report.errors.push(...(reconciled.repair?.errors ?? []));
      for (const batch of needReconcile) {
        if (remaining === 0) done.push(batch);
        else kept(batch, `records past the stream's 24 h retention, and a full reconcile left ${remaining} difference(s)`);
      }
    }
  } catch (error) {
    report.errors.push((error as Error).message);
    for (const batch of batches) if (!done.includes(batch) && !report.kept.some((entry) => entry.batch === batch.label)) kept(batch, (error as Error).message);
  }
  // Only now, with their personas in sync, do the messages go.
  if (done.length > 0) await deps.source.remove(done);
  report.deleted = done.length;
  const release = batches.filter((batch) => !done.includes(batch));
  if (release.length > 0) await deps.source.release(release);
  return report;
}

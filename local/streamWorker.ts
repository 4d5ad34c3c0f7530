import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { changeWrittenAt } from '../shared/vectorIndex/streamRecordTime';
import { indexerStreamSettings, type IndexerStreamSettings } from '../shared/streamSettings';

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;

export interface StreamWorkerOptions {
  endpoint: string;
  region?: string;
  tableName: string;
  handler: StreamHandler;
  /** Where batches that exhaust their retries are written (JSON lines), like Lambda's on-failure destination. */
  failureFile: string;
  /**
   * Where the position in each shard is kept (JSON), like the event source mapping keeps its own:
   * a restarted worker continues after the last record it finished instead of from the starting
   * position. Without it every start reads from the starting position (fine for in-memory tables).
   */
  checkpointFile?: string;
  settings?: IndexerStreamSettings;
  /** Poll interval when the shard is idle. Lambda polls each shard about four times a second. */
  idlePollMs?: number;
  /** First retry delay; doubled per attempt. */
  retryBaseDelayMs?: number;
  log?: (line: string) => void;
  /** Called with each run of records the handler accepted, and with each run sent to the failure file. */
  onSettled?: (records: readonly DynamoDBRecord[], outcome: 'delivered' | 'failed') => void;
}

export interface StreamWorker {
  /** Resolves when every record written so far has been handed to the handler (or the failure file). */
  drain(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  stats: { invocations: number; recordsDelivered: number; recordsFailed: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Turns a DynamoDB Streams API record into the record shape Lambda's event carries.
 * ApproximateCreationDateTime is whole epoch seconds, as AWS delivers it: "in UNIX epoch time
 * format and rounded down to the closest second" (DynamoDB API Reference, StreamRecord); the SDK
 * hands it over as a Date. The indexer reads the write time from the item where it is finer
 * (shared/vectorIndex/streamRecordTime.ts), so the lag it reports is not coarsened by this.
 */
export function toLambdaRecord(record: StreamRecord, streamArn: string, region: string): DynamoDBRecord {
  const data = record.dynamodb!;
  return {
    eventID: record.eventID!,
    eventName: record.eventName as DynamoDBRecord['eventName'],
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    eventSourceARN: streamArn,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor((data.ApproximateCreationDateTime?.getTime() ?? Date.now()) / 1000),
      Keys: data.Keys as never,
      ...(data.NewImage ? { NewImage: data.NewImage as never } : {}),
      ...(data.OldImage ? { OldImage: data.OldImage as never } : {}),
      SequenceNumber: data.SequenceNumber!,
      SizeBytes: data.SizeBytes ?? 0,
      StreamViewType: data.StreamViewType as never,
    },
  };
}

/**
 * Polls DynamoDB Local's stream through the DynamoDB Streams API and invokes the indexer the
 * way Lambda's event source mapping does, with the settings the CDK stack declares: batch size,
 * batching window, partial batch responses (retry from the first failed record), bisect on
 * error, retry attempts, maximum record age, and an on-failure destination (a JSON-lines file).
 */
export async function startStreamWorker(options: StreamWorkerOptions): Promise<StreamWorker> {
  const settings = options.settings ?? indexerStreamSettings;
  const region = options.region ?? 'us-east-1';
  const log = options.log ?? (() => undefined);
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const dynamodb = new DynamoDBClient({ endpoint: options.endpoint, region, credentials });
  const streams = new DynamoDBStreamsClient({ endpoint: options.endpoint, region, credentials });
  const table = await dynamodb.send(new DescribeTableCommand({ TableName: options.tableName }));
  const streamArn = table.Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`Table ${options.tableName} has no stream; it must be created with StreamSpecification enabled.`);

  const stats = { invocations: 0, recordsDelivered: 0, recordsFailed: 0 };
  const iterators = new Map<string, string | null>(); // shardId → iterator (null: closed and finished)
  const checkpoints = await loadCheckpoints(options.checkpointFile, streamArn);
  let checkpointWrite = Promise.resolve();
  /** Records the last finished sequence number of a shard; writes are serialised and atomic (rename). */
  function checkpoint(shardId: string, sequenceNumber: string): Promise<void> {
    const file = options.checkpointFile;
    if (!file) return Promise.resolve();
    checkpoints.set(shardId, sequenceNumber);
    const content = JSON.stringify({ streamArn, shards: Object.fromEntries(checkpoints) });
    checkpointWrite = checkpointWrite.then(async () => {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, content);
      await rename(`${file}.tmp`, file);
    });
    return checkpointWrite;
  }
  let running = true;
  let lastEmptyPollStartedAt = 0;
  let lastDeliveryAt = 0;

  async function sendToFailureDestination(records: DynamoDBRecord[], reason: string, attempts: number) {
    stats.recordsFailed += records.length;
    options.onSettled?.(records, 'failed');
    await mkdir(dirname(options.failureFile), { recursive: true });
    const entry = {
      failedAt: new Date().toISOString(),
      reason,
      attempts,
      streamArn,
      firstSequenceNumber: records[0]?.dynamodb?.SequenceNumber,
      lastSequenceNumber: records.at(-1)?.dynamodb?.SequenceNumber,
      records,
    };
    await appendFile(options.failureFile, JSON.stringify(entry) + '\n');
    log(`indexer: ${records.length} record(s) sent to ${options.failureFile} after ${attempts} attempt(s): ${reason}`);
  }

  /** Sync lag: from the stream's creation time to the indexer's acknowledgement. */
  function logSyncLag(records: DynamoDBRecord[]) {
    const acknowledgedAt = Date.now();
    const lags = records.map((record) => acknowledgedAt - changeWrittenAt(record)).sort((a, b) => a - b);
    log(`indexer: synced ${records.length} record(s), sync lag median ${lags[Math.floor(lags.length / 2)]} ms, max ${lags.at(-1)} ms`);
  }

  async function invoke(records: DynamoDBRecord[]): Promise<{ failedFrom?: number; error?: Error }> {
    stats.invocations++;
    try {
      const response = await options.handler({ Records: records });
      const failures = response?.batchItemFailures ?? [];
      if (failures.length === 0) return {};
      const failedIds = new Set(failures.map((failure) => failure.itemIdentifier));
      const index = records.findIndex((record) => failedIds.has(record.dynamodb!.SequenceNumber!));
      return { failedFrom: index < 0 ? 0 : index };
    } catch (error) {
      return { failedFrom: 0, error: error as Error };
    }
  }

  /** Delivers records like Lambda: retries from the first failure, bisects a throwing batch. */
  async function deliver(records: DynamoDBRecord[], attempt = 0): Promise<void> {
    const maxAgeMs = settings.maxRecordAgeSeconds * 1000;
    const fresh = records.filter((record) => Date.now() - record.dynamodb!.ApproximateCreationDateTime! * 1000 <= maxAgeMs);
    if (fresh.length < records.length) {
      await sendToFailureDestination(records.filter((record) => !fresh.includes(record)), 'record older than maxRecordAge', attempt);
    }
    let pending = fresh;
    while (pending.length > 0) {
      const { failedFrom, error } = await invoke(pending);
      if (failedFrom === undefined) {
        stats.recordsDelivered += pending.length;
        options.onSettled?.(pending, 'delivered');
        logSyncLag(pending);
        return;
      }
      stats.recordsDelivered += failedFrom;
      if (failedFrom > 0) options.onSettled?.(pending.slice(0, failedFrom), 'delivered');
      pending = pending.slice(failedFrom);
      if (attempt >= settings.retryAttempts) {
        await sendToFailureDestination(pending, error?.message ?? 'reported as batch item failure', attempt + 1);
        return;
      }
      await sleep(Math.min(5_000, (options.retryBaseDelayMs ?? 100) * 2 ** attempt));
      attempt++;
      if (error && settings.bisectBatchOnError && pending.length > 1) {
        const middle = Math.ceil(pending.length / 2);
        await deliver(pending.slice(0, middle), attempt);
        await deliver(pending.slice(middle), attempt);
        return;
      }
    }
  }

  async function refreshShards(): Promise<void> {
    const description = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    for (const shard of description.StreamDescription?.Shards ?? []) {
      if (iterators.has(shard.ShardId!)) continue;
      // Children are read after their parent is finished, which keeps each key's changes in order.
      const parent = shard.ParentShardId;
      if (parent && iterators.has(parent) && iterators.get(parent) !== null) continue;
      iterators.set(shard.ShardId!, await shardIterator(shard.ShardId!));
    }
  }

  /** After the shard's checkpoint when there is one (and its record is still in the stream), else the starting position. */
  async function shardIterator(shardId: string): Promise<string | null> {
    const after = checkpoints.get(shardId);
    if (after) {
      try {
        const iterator = await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after }));
        return iterator.ShardIterator ?? null;
      } catch (error) {
        if (!(error instanceof TrimmedDataAccessException)) throw error;
        log(`stream worker: shard ${shardId}'s checkpoint is older than the stream's retention; reading from ${settings.startingPosition}`);
      }
    }
    const iterator = await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: settings.startingPosition }));
    return iterator.ShardIterator ?? null;
  }

  async function pollShard(shardId: string): Promise<number> {
    const iterator = iterators.get(shardId);
    if (!iterator) return 0;
    const batch: DynamoDBRecord[] = [];
    let next: string | null | undefined = iterator;
    const windowEnds = Date.now() + settings.maxBatchingWindowSeconds * 1000;
    do {
      try {
        const result: GetRecordsCommandOutput = await streams.send(new GetRecordsCommand({ ShardIterator: next, Limit: settings.batchSize - batch.length }));
        batch.push(...(result.Records ?? []).map((record) => toLambdaRecord(record, streamArn!, region)));
        next = result.NextShardIterator ?? null;
      } catch (error) {
        if (error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException) {
          iterators.delete(shardId);
          return 0;
        }
        throw error;
      }
      if (batch.length >= settings.batchSize || !next || Date.now() >= windowEnds) break;
      await sleep(Math.min(100, windowEnds - Date.now()));
    } while (running);
    if (batch.length > 0) {
      await deliver(batch);
      // Delivered or sent to the failure file: either way finished, as Lambda moves past it.
      await checkpoint(shardId, batch.at(-1)!.dynamodb!.SequenceNumber!);
    }
    iterators.set(shardId, next ?? null);
    return batch.length;
  }

  const loop = (async () => {
    while (running) {
      const pollStartedAt = Date.now();
      try {
        await refreshShards();
        let delivered = 0;
        for (const shardId of [...iterators.keys()]) delivered += await pollShard(shardId);
        if (delivered === 0) {
          lastEmptyPollStartedAt = pollStartedAt;
          await sleep(options.idlePollMs ?? 100);
        } else {
          lastDeliveryAt = Date.now();
        }
      } catch (error) {
        log(`stream worker: ${(error as Error).message}; retrying`);
        await sleep(1_000);
      }
    }
  })();

  return {
    stats,
    async drain(timeoutMs = 30_000) {
      const requestedAt = Date.now();
      const deadline = requestedAt + timeoutMs;
      // Caught up means: a poll found nothing new, and it started after the last delivery and a
      // moment after this call, since a write's stream record can appear slightly after the write returns.
      const settleMs = 250;
      while (!(lastEmptyPollStartedAt >= requestedAt + settleMs && lastEmptyPollStartedAt > lastDeliveryAt)) {
        if (Date.now() > deadline) throw new Error(`stream worker did not catch up within ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async stop() {
      running = false;
      await loop;
      await checkpointWrite;
      dynamodb.destroy();
      streams.destroy();
    },
  };
}


/** The checkpoint file's positions, when it belongs to this stream (a recreated table has a new stream). */
async function loadCheckpoints(file: string | undefined, streamArn: string): Promise<Map<string, string>> {
  const text = file ? await readFile(file, 'utf8').catch(() => undefined) : undefined;
  if (!text) return new Map();
  const saved = JSON.parse(text) as { streamArn?: string; shards?: Record<string, string> };
  return saved.streamArn === streamArn ? new Map(Object.entries(saved.shards ?? {})) : new Map();
}

/**
 * Sends every batch in the failure file through the handler again (the state-based indexer makes
 * this safe in any order), and rewrites the file with only the batches that still fail.
 */
export async function replayFailures(failureFile: string, handler: StreamHandler): Promise<{ replayed: number; stillFailing: number }> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const text = await readFile(failureFile, 'utf8').catch(() => '');
  const entries = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { records: DynamoDBRecord[] });
  const remaining: string[] = [];
  let replayed = 0;
  for (const entry of entries) {
    try {
      const response = await handler({ Records: entry.records });
      const failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
      const stillFailing = entry.records.filter((record) => failed.has(record.dynamodb!.SequenceNumber!));
      replayed += entry.records.length - stillFailing.length;
      if (stillFailing.length > 0) remaining.push(JSON.stringify({ ...entry, records: stillFailing }));
    } catch {
      remaining.push(JSON.stringify(entry));
    }
  }
  await writeFile(failureFile, remaining.map((line) => line + '\n').join(''));
  return { replayed, stillFailing: remaining.length };
}

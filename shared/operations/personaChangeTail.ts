/**
 * Follows the persona table's DynamoDB stream from "now" and hands the ids of changed personas to
 * a callback: how a reindex keeps its new collection current while it fills. It is a second reader
 * of the stream next to the indexer (DynamoDB Streams allows two per shard), through the public
 * Streams API, so it works the same against DynamoDB Local and in AWS.
 *
 * Order does not matter to the callback (the sync is state-based: it writes each persona's current
 * row), so shards are read side by side and a failed id is simply offered again.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { TableConfig } from '../config';

export interface PersonaChangeTail {
  /** Resolves once every change written before `since` (ms since epoch) has been handed over and accepted. */
  caughtUp(since: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  readonly stats: { records: number; idsSynced: number; retries: number };
}

export interface TailOptions {
  tables: TableConfig;
  /** Syncs these personas; returns the ids that failed (offered again on the next poll). */
  onChanges: (personaIds: string[]) => Promise<readonly string[]>;
  /**
   * Start at this moment (ms since epoch) instead of now: every shard is read from its oldest
   * record and records written before it are skipped. For re-attaching to a reindex whose cut
   * was taken then; the stream keeps records for 24 hours, so it must be later than that.
   */
  from?: number;
  idlePollMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long DynamoDB Streams keeps a record ("24 hours", DynamoDB Developer Guide, Change data capture for DynamoDB Streams), less a margin. */
export const STREAM_RETENTION_MS = 24 * 60 * 60_000;
const RETENTION_MARGIN_MS = 30 * 60_000;

/** A DynamoDB and a DynamoDB Streams client for the configured endpoint (DynamoDB Local or AWS). */
export function streamClients(tables: TableConfig) {
  const options = {
    region: tables.region,
    ...(tables.dynamodbEndpoint
      ? { endpoint: tables.dynamodbEndpoint, credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local' } }
      : {}),
  };
  return { dynamodb: new DynamoDBClient(options), streams: new DynamoDBStreamsClient(options) };
}

/** Starts tailing; when it resolves, every change written from then on will be seen. */
export async function tailPersonaChanges(options: TailOptions): Promise<PersonaChangeTail> {
  const log = options.log ?? (() => undefined);
  const { dynamodb, streams } = streamClients(options.tables);
  const table = await dynamodb.send(new DescribeTableCommand({ TableName: options.tables.personaTableName }));
  const streamArn = table.Table?.LatestStreamArn;
  if (!streamArn || table.Table?.StreamSpecification?.StreamEnabled === false) {
    throw new Error(`Table ${options.tables.personaTableName} has no enabled stream; the indexer (and a reindex) need its NEW_AND_OLD_IMAGES stream.`);
  }

  const listShards = async (): Promise<Shard[]> => {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const page = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) }));
      shards.push(...(page.StreamDescription?.Shards ?? []));
      start = page.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  };
  const iteratorFor = async (shardId: string, type: 'LATEST' | 'TRIM_HORIZON') =>
    (await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: type }))).ShardIterator ?? null;

  const from = options.from;
  if (from !== undefined && from < Date.now() - STREAM_RETENTION_MS + RETENTION_MARGIN_MS) {
    throw new Error(`the change stream keeps 24 hours of changes; those since ${new Date(from).toISOString()} may be gone, so this reindex cannot be resumed: run it again`);
  }
  // ApproximateCreationDateTime is rounded down to the second: keep the whole second `from` falls in.
  const keepFrom = from === undefined ? undefined : Math.floor(from / 1000) * 1000;
  // Shards open now are read from their end; closed ones hold only older changes (the scan has them).
  // From a moment in the past: every shard from its oldest record, filtered by time.
  const iterators = new Map<string, string | null>();
  for (const shard of await listShards()) {
    const closed = !!shard.SequenceNumberRange?.EndingSequenceNumber;
    iterators.set(shard.ShardId!, from !== undefined ? await iteratorFor(shard.ShardId!, 'TRIM_HORIZON') : closed ? null : await iteratorFor(shard.ShardId!, 'LATEST'));
  }

  const stats = { records: 0, idsSynced: 0, retries: 0 };
  let retry = new Set<string>();
  let running = true;
  let lastCleanPollStartedAt = 0;
  let failure: Error | undefined;

  const poll = async (): Promise<boolean> => {
    // Shards created after the start (splits) hold only new changes: read them from their beginning.
    for (const shard of await listShards()) {
      if (!iterators.has(shard.ShardId!)) iterators.set(shard.ShardId!, await iteratorFor(shard.ShardId!, 'TRIM_HORIZON'));
    }
    const ids = new Set(retry);
    for (const [shardId, iterator] of iterators) {
      if (!iterator) continue;
      try {
        const result = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 }));
        for (const record of result.Records ?? []) {
          const writtenAt = record.dynamodb?.ApproximateCreationDateTime?.getTime();
          if (keepFrom !== undefined && writtenAt !== undefined && writtenAt < keepFrom) continue;
          stats.records++;
          const id = record.dynamodb?.Keys?.id?.S;
          if (id) ids.add(id);
        }
        iterators.set(shardId, result.NextShardIterator ?? null);
      } catch (error) {
        if (error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException) {
          throw new Error(`the change stream moved past this reindex (${error.name}); run the reindex again`);
        }
        throw error;
      }
    }
    if (ids.size === 0) return true;
    const failed = await options.onChanges([...ids]);
    stats.idsSynced += ids.size - failed.length;
    stats.retries += failed.length;
    retry = new Set(failed);
    // Not clean: more records may be waiting behind these.
    return false;
  };

  const loop = (async () => {
    while (running) {
      const startedAt = Date.now();
      try {
        const clean = await poll();
        if (clean) {
          lastCleanPollStartedAt = startedAt;
          await sleep(options.idlePollMs ?? 200);
        }
      } catch (error) {
        if ((error as Error).message.includes('moved past this reindex')) {
          failure = error as Error;
          return;
        }
        log(`change tail: ${(error as Error).message}; retrying`);
        await sleep(1_000);
      }
    }
  })();

  return {
    stats,
    async caughtUp(since, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      // A write's stream record can appear a moment after the write returns.
      const settleMs = 500;
      while (lastCleanPollStartedAt < since + settleMs) {
        if (failure) throw failure;
        if (Date.now() > deadline) throw new Error(`the change tail did not catch up within ${timeoutMs} ms (${retry.size} personas keep failing to sync)`);
        await sleep(50);
      }
    },
    async stop() {
      running = false;
      await loop;
      dynamodb.destroy();
      streams.destroy();
    },
  };
}

/**
 * `personas redrive` against the real local system (DynamoDB Local with its stream, the local Qdrant
 * server) and an SQS stand-in (test/support/sqsStandIn.ts). The on-failure messages are built as
 * Lambda builds them for a DynamoDB stream source: an invocation record whose `DDBStreamBatchInfo`
 * names the shard and the sequence-number range, not the records
 * (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
 */
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { redriveFailures, STREAM_RETENTION_MS, type FailureSource } from '../shared/operations/failureRedrive';
import { fileFailureSource, sqsFailureSource } from '../shared/operations/failureSources';
import { resolveCollection } from '../shared/operations/indexReconciler';
import { streamClients } from '../shared/operations/personaChangeTail';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { startSqsStandIn, type SqsStandIn } from './support/sqsStandIn';

let env: Awaited<ReturnType<typeof startTestSystem>>;
let sqs: SqsStandIn;
let ids: string[] = [];
/** The stream records of the writes, in stream order, with their shard. */
let written: { shardId: string; record: DynamoDBRecord }[] = [];
let streamArn: string;
let collection: string;

async function readStream(): Promise<typeof written> {
  const { dynamodb, streams } = streamClients(tableConfig());
  const table = await dynamodb.send(new DescribeTableCommand({ TableName: tableConfig().personaTableName }));
  streamArn = table.Table!.LatestStreamArn!;
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const out: typeof written = [];
  for (const shard of StreamDescription!.Shards ?? []) {
    let iterator = (await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let page = 0; iterator && page < 20; page++) {
      const result = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const record of result.Records ?? []) out.push({ shardId: shard.ShardId!, record: record as unknown as DynamoDBRecord });
      if (!result.Records?.length) break;
      iterator = result.NextShardIterator;
    }
  }
  return out;
}

const recordOf = (id: string) => written.find((entry) => entry.record.dynamodb?.Keys?.id?.S === id)!;

/** The on-failure invocation record Lambda sends for a failed batch of stream records from `first` to `last`. */
function onFailureMessage(first: string, last: string, arrivedAt = new Date()): string {
  const [from, to] = [recordOf(first), recordOf(last)];
  expect(from.shardId).toBe(to.shardId);
  return JSON.stringify({
    requestContext: { requestId: 'c2e0b6a8-0000-4000-8000-000000000000', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:indexer', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: new Date().toISOString(),
    DDBStreamBatchInfo: {
      shardId: from.shardId,
      startSequenceNumber: from.record.dynamodb!.SequenceNumber,
      endSequenceNumber: to.record.dynamodb!.SequenceNumber,
      approximateArrivalOfFirstRecord: arrivedAt.toISOString(),
      approximateArrivalOfLastRecord: arrivedAt.toISOString(),
      batchSize: 2,
      streamArn,
    },
  });
}

const pointIds = async () => new Set((await env.qdrant.scroll(collection, { limit: 1000, with_payload: false })).points.map((point) => String(point.id)));
/** What a failed sync leaves behind: the persona is in the table, its point is not in the index. */
const losePoints = (lost: string[]) => env.qdrant.delete(collection, { wait: true, points: lost });

async function redrive(source: FailureSource) {
  return redriveFailures({
    repository: personaRepositoryFor(),
    qdrant: env.qdrant,
    collection: env.collection!,
    embedder: await getEmbedder(),
    streams: streamClients(tableConfig()).streams,
    source,
  });
}

beforeAll(async () => {
  env = await startTestSystem();
  sqs = await startSqsStandIn();
  const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 6 }, (_, n) => samplePersona(n)) } });
  ids = (created.json.results as { id: string }[]).map((result) => result.id);
  await env.system.streamWorker.drain(60_000);
  collection = await resolveCollection(env.qdrant, env.collection!);
  written = (await readStream()).filter((entry) => ids.includes(entry.record.dynamodb?.Keys?.id?.S ?? ''));
  expect(written).toHaveLength(6);
});
afterAll(async () => {
  await sqs?.close();
  await env?.system.stop();
});

describe('personas redrive from the SQS on-failure queue', () => {
  it('re-syncs the personas named by stream ranges (within 24 h) or by a full reconcile (older), deletes those messages, keeps what it cannot read', async () => {
    // Stream order is write order: the first range covers personas 0-1, not 2.
    const order = written.map((entry) => entry.record.dynamodb!.Keys!.id!.S!);
    const [a, b, c] = order as [string, string, string];
    await losePoints([a, b, c]);
    sqs.send(onFailureMessage(a, b));
    // A batch older than the stream keeps (24 h): only a full reconcile can settle it.
    sqs.send(onFailureMessage(c, c, new Date(Date.now() - STREAM_RETENTION_MS - 60_000)));
    const notOnFailureRecord = sqs.send('{"hello": "not an on-failure record"}');

    const client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const report = await redrive(sqsFailureSource(sqs.queueUrl, { client }));

    expect(report).toMatchObject({ batches: 3, fromStream: 1, byReconcile: 1, personas: 2, deleted: 2 });
    expect(report.repaired.embedded).toBe(2);
    // The reconcile finds only c: a and b were already repaired from the stream range.
    expect(report.reconcile).toEqual({ found: 1, remaining: 0 });
    expect(report.kept).toEqual([{ batch: `message ${notOnFailureRecord}`, reason: expect.stringContaining('not an on-failure record') }]);
    expect([...(await pointIds())].sort()).toEqual([...ids].sort());
    // Only the message that is not an on-failure record is still in the queue, visible again.
    expect(sqs.bodies()).toEqual(['{"hello": "not an on-failure record"}']);
    const again = await redrive(sqsFailureSource(sqs.queueUrl, { client }));
    expect(again).toMatchObject({ batches: 1, deleted: 0 });
  });
});

describe('personas redrive from the local failure file', () => {
  it('syncs the records a line carries, removes that line only once its personas are in sync, and keeps lines appended meanwhile', async () => {
    const [, , , d, e] = written.map((entry) => entry.record);
    await losePoints([d!.dynamodb!.Keys!.id!.S!]);
    const file = join(env.workDir, 'redrive-failures.jsonl');
    const line = JSON.stringify({ failedAt: new Date().toISOString(), reason: 'fetch failed', attempts: 3, streamArn, records: [d] });
    writeFileSync(file, `${line}\n`);
    const report = await redrive(fileFailureSource(file));
    expect(report).toMatchObject({ batches: 1, fromStream: 1, personas: 1, deleted: 1, kept: [] });
    expect(report.repaired.embedded).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('');
    expect(await pointIds()).toContain(d!.dynamodb!.Keys!.id!.S!);

    // A second run over an already-synced batch is a no-op that still clears it.
    writeFileSync(file, `${JSON.stringify({ streamArn, records: [e] })}\n`);
    expect(await redrive(fileFailureSource(file))).toMatchObject({ deleted: 1, repaired: { embedded: 0 } });
  });
});

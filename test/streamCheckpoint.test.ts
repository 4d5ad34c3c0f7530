import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it, inject } from 'vitest';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { startStreamWorker } from '../local/streamWorker';
import { indexerStreamSettings } from '../shared/streamSettings';
import { useFreshTables } from './support/tables';

/**
 * Issue 11 item 14. Lambda's event source mapping reads from its starting position (TRIM_HORIZON
 * here) only when it is created; afterwards it keeps its own position per shard and continues
 * after the last batch it finished, across function deployments and restarts
 * (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html; the position is a shard iterator of
 * type AFTER_SEQUENCE_NUMBER: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
 * The local stream worker keeps that position in a checkpoint file, so a restart with --persist
 * does not replay the whole stream (whose old records would exceed the record-age limit).
 */
describe('local stream worker checkpoint', () => {
  it('a restarted worker continues after the last record it finished, per shard, instead of from TRIM_HORIZON', async () => {
    const tables = await useFreshTables('persona-checkpoint');
    const client = createDocumentClient(tables);
    const workDir = mkdtempSync(join(tmpdir(), 'persona-checkpoint-'));
    const checkpointFile = join(workDir, 'stream-checkpoints.json');
    const put = (n: number) => client.send(new PutCommand({ TableName: tables.personaTableName, Item: { id: `p-${n}`, version: 1, updated_at: new Date().toISOString() } }));
    const seen: string[] = [];
    const start = () =>
      startStreamWorker({
        endpoint: inject('dynamodbEndpoint'),
        tableName: tables.personaTableName,
        failureFile: join(workDir, 'failures.jsonl'),
        checkpointFile,
        settings: { ...indexerStreamSettings, maxBatchingWindowSeconds: 0 },
        handler: async (event) => {
          seen.push(...event.Records.map((record: DynamoDBRecord) => String(record.dynamodb!.Keys!.id!.S)));
        },
      });

    for (let n = 0; n < 5; n++) await put(n);
    const first = await start();
    await first.drain(60_000);
    await first.stop();
    expect(seen).toEqual(['p-0', 'p-1', 'p-2', 'p-3', 'p-4']);
    const checkpoint = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    expect(Object.values(checkpoint.shards as Record<string, string>)).toHaveLength(1);

    // Written while no worker runs: the next worker must deliver these, and only these.
    for (let n = 5; n < 8; n++) await put(n);
    seen.length = 0;
    const second = await start();
    await second.drain(60_000);
    await second.stop();
    expect(seen).toEqual(['p-5', 'p-6', 'p-7']);
    client.destroy();
  });
});

import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig, type TableConfig } from '../config';
import type { Persona } from './schema';

export interface StoredIdempotencyRecord {
  key: string;
  request_hash: string;
  status_code: number;
  response_body: string;
  expires_at: number;
}

/** What a conditional write found instead of the expected state. */
export type WriteConflict = { kind: 'missing' } | { kind: 'version-mismatch'; current: Persona } | { kind: 'exists' };

export class WriteConflictError extends Error {
  constructor(readonly conflict: WriteConflict) {
    super(`conditional write failed: ${conflict.kind}`);
    this.name = 'WriteConflictError';
  }
}

export interface PersonaPage {
  items: Persona[];
  lastKey: string | undefined;
}

const BATCH_WRITE_SIZE = 25;
const BATCH_GET_SIZE = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const backoff = (attempt: number) => Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);

/**
 * Persona storage in DynamoDB. Every write is conditional on the version the caller read,
 * so concurrent writers cannot overwrite each other's changes.
 */
export function personaRepository(client: DynamoDBDocumentClient, tables: { personas: string; idempotency: string }) {
  const conflictFrom = (item: Record<string, unknown> | undefined): WriteConflict =>
    item ? { kind: 'version-mismatch', current: item as Persona } : { kind: 'missing' };

  return {
    async get(id: string): Promise<Persona | undefined> {
      const result = await client.send(new GetCommand({ TableName: tables.personas, Key: { id }, ConsistentRead: true }));
      return result.Item as Persona | undefined;
    },

    async getMany(ids: readonly string[]): Promise<Map<string, Persona>> {
      const found = new Map<string, Persona>();
      for (let start = 0; start < ids.length; start += BATCH_GET_SIZE) {
        let keys: Record<string, unknown>[] = ids.slice(start, start + BATCH_GET_SIZE).map((id) => ({ id }));
        for (let attempt = 0; keys.length > 0; attempt++) {
          if (attempt > 0) await sleep(backoff(attempt));
          const result = await client.send(
            new BatchGetCommand({ RequestItems: { [tables.personas]: { Keys: keys, ConsistentRead: true } } }),
          );
          for (const item of result.Responses?.[tables.personas] ?? []) found.set(item.id as string, item as Persona);
          keys = result.UnprocessedKeys?.[tables.personas]?.Keys ?? [];
          if (attempt >= 8 && keys.length > 0) throw new Error(`DynamoDB left ${keys.length} keys unprocessed after retries`);
        }
      }
      return found;
    },

    /** Creates a persona that must not exist yet, together with its idempotency record when given. */
    async create(persona: Persona, idempotencyRecord?: StoredIdempotencyRecord): Promise<void> {
      if (!idempotencyRecord) {
        try {
          await client.send(
            new PutCommand({ TableName: tables.personas, Item: persona, ConditionExpression: 'attribute_not_exists(id)' }),
          );
        } catch (error) {
          if (error instanceof ConditionalCheckFailedException) throw new WriteConflictError({ kind: 'exists' });
          throw error;
        }
        return;
      }
      try {
        await client.send(
          new TransactWriteCommand({
            TransactItems: [
              { Put: { TableName: tables.personas, Item: persona, ConditionExpression: 'attribute_not_exists(id)' } },
              {
                Put: {
                  TableName: tables.idempotency,
                  Item: idempotencyRecord,
                  ConditionExpression: 'attribute_not_exists(#key) OR expires_at < :now',
                  ExpressionAttributeNames: { '#key': 'key' },
                  ExpressionAttributeValues: { ':now': Math.floor(Date.now() / 1000) },
                },
              },
            ],
          }),
        );
      } catch (error) {
        if (error instanceof TransactionCanceledException) {
          const reasons = error.CancellationReasons ?? [];
          if (reasons[1]?.Code === 'ConditionalCheckFailed') throw new IdempotencyRaceError();
          if (reasons[0]?.Code === 'ConditionalCheckFailed') throw new WriteConflictError({ kind: 'exists' });
        }
        throw error;
      }
    },

    /** Overwrites a persona whose stored version is `expectedVersion` (or any version, for '*'). */
    async replace(persona: Persona, expectedVersion: number | '*'): Promise<void> {
      try {
        await client.send(
          new PutCommand({
            TableName: tables.personas,
            Item: persona,
            ...(expectedVersion === '*'
              ? { ConditionExpression: 'attribute_exists(id)' }
              : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) throw new WriteConflictError(conflictFrom(error.Item && unmarshall(error.Item)));
        throw error;
      }
    },

    async delete(id: string, expectedVersion?: number | '*'): Promise<Persona> {
      try {
        const result = await client.send(
          new DeleteCommand({
            TableName: tables.personas,
            Key: { id },
            ...(typeof expectedVersion === 'number'
              ? { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }
              : { ConditionExpression: 'attribute_exists(id)' }),
            ReturnValues: 'ALL_OLD',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return result.Attributes as Persona;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) throw new WriteConflictError(conflictFrom(error.Item && unmarshall(error.Item)));
        throw error;
      }
    },

    /** One page of a table scan; keeps scanning until `limit` items or the end of the table. */
    async list(limit: number, startAfterId: string | undefined): Promise<PersonaPage> {
      const items: Persona[] = [];
      let exclusiveStartKey: Record<string, unknown> | undefined = startAfterId ? { id: startAfterId } : undefined;
      do {
        const result = await client.send(
          new ScanCommand({
            TableName: tables.personas,
            Limit: limit - items.length,
            ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
          }),
        );
        items.push(...((result.Items ?? []) as Persona[]));
        exclusiveStartKey = result.LastEvaluatedKey;
      } while (exclusiveStartKey && items.length < limit);
      return { items, lastKey: exclusiveStartKey ? String(exclusiveStartKey.id) : undefined };
    },

    /** Every persona, page by page; `segment`/`totalSegments` split the table for parallel scans. */
    async *scanAll(options: { segment?: number; totalSegments?: number; pageSize?: number } = {}): AsyncGenerator<Persona[]> {
      let exclusiveStartKey: Record<string, unknown> | undefined;
      do {
        const result = await client.send(
          new ScanCommand({
            TableName: tables.personas,
            ConsistentRead: true,
            Limit: options.pageSize ?? 500,
            ...(options.totalSegments ? { Segment: options.segment ?? 0, TotalSegments: options.totalSegments } : {}),
            ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
          }),
        );
        yield (result.Items ?? []) as Persona[];
        exclusiveStartKey = result.LastEvaluatedKey;
      } while (exclusiveStartKey);
    },

    /**
     * Writes new personas in batches of 25, retrying DynamoDB's unprocessed items with backoff.
     * Returns the ids that still could not be written, so the caller reports them instead of losing them.
     */
    async putMany(personas: readonly Persona[], maxAttempts = 8): Promise<Set<string>> {
      const failed = new Set<string>();
      for (let start = 0; start < personas.length; start += BATCH_WRITE_SIZE) {
        let requests = personas.slice(start, start + BATCH_WRITE_SIZE).map((Item) => ({ PutRequest: { Item } }));
        for (let attempt = 0; requests.length > 0 && attempt < maxAttempts; attempt++) {
          if (attempt > 0) await sleep(backoff(attempt));
          const result = await client.send(new BatchWriteCommand({ RequestItems: { [tables.personas]: requests } }));
          requests = (result.UnprocessedItems?.[tables.personas] ?? []) as typeof requests;
        }
        for (const request of requests) failed.add(String(request.PutRequest.Item.id));
      }
      return failed;
    },

    async getIdempotencyRecord(key: string): Promise<StoredIdempotencyRecord | undefined> {
      const result = await client.send(
        new GetCommand({ TableName: tables.idempotency, Key: { key }, ConsistentRead: true }),
      );
      const record = result.Item as StoredIdempotencyRecord | undefined;
      if (record && record.expires_at < Math.floor(Date.now() / 1000)) return undefined;
      return record;
    },

    async putIdempotencyRecord(record: StoredIdempotencyRecord): Promise<void> {
      await client.send(new PutCommand({ TableName: tables.idempotency, Item: record }));
    },
  };
}

export type PersonaRepository = ReturnType<typeof personaRepository>;

/** The repository for the configured tables (TABLE_NAME, IDEMPOTENCY_TABLE_NAME, DYNAMODB_ENDPOINT by default). */
export function personaRepositoryFor(config: TableConfig = tableConfig()): PersonaRepository {
  return personaRepository(createDocumentClient(config), { personas: config.personaTableName, idempotency: config.idempotencyTableName });
}

/** Another request with the same Idempotency-Key finished first. */
export class IdempotencyRaceError extends Error {
  constructor() {
    super('another request with the same Idempotency-Key completed first');
    this.name = 'IdempotencyRaceError';
  }
}

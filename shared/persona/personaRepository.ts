import {
  BatchGetCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig, type TableConfig } from '../config';
import { tenantIndexDesign } from '../tableDesign';
import { personaKey, splitPersonaKey } from '../tenancy/tenantKeys';
import { idempotencyRecordKey, type ClaimOutcome, type StoredIdempotencyRecord } from './idempotency';
import type { Persona } from './schema';

/** What a conditional create found: the id was free, or a persona already has it. */
export type CreateOutcome = { kind: 'created' } | { kind: 'exists'; current: Persona } | { kind: 'failed'; reason: string };

/** What a conditional write found instead of the expected state. */
export type WriteConflict = { kind: 'missing' } | { kind: 'version-mismatch'; current: Persona } | { kind: 'exists' };

export class WriteConflictError extends Error {
  constructor(readonly conflict: WriteConflict) {
    super(`conditional write failed: ${conflict.kind}`);
    this.name = 'WriteConflictError';
  }
}

export interface ScanPageOptions {
  segment?: number;
  totalSegments?: number;
  pageSize?: number;
  /** Where to continue: the `lastKey` of the previous page of the same segment (DynamoDB's ExclusiveStartKey). */
  startKey?: Record<string, unknown>;
}

export interface PersonaPage {
  items: Persona[];
  lastKey: string | undefined;
}

const BATCH_GET_SIZE = 100;
/** Conditional puts in flight at once for a batch create. */
const CREATE_CONCURRENCY = 16;
/** Errors DynamoDB answers when it is overloaded; an item that still meets one is reported, not lost. */
const RETRYABLE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const backoff = (attempt: number) => Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);

/**
 * Persona storage in DynamoDB. Every write is conditional on the version the caller read,
 * so concurrent writers cannot overwrite each other's changes.
 *
 * With a `tenant`, the repository reaches that tenant's personas only: every key it builds is
 * `<tenant>#<id>` (shared/tenancy/tenantKeys.ts), every item it writes carries `tenant_id`, every
 * item it reads must carry the same `tenant_id`, and listing queries the tenant's partition of the
 * tenant index. Callers see bare ids. Without a tenant (single-tenant stages, and the operator's
 * and indexer's whole-table view) keys are used as they are.
 */
export function personaRepository(client: DynamoDBDocumentClient, tables: { personas: string; idempotency: string }, tenant?: string) {
  const keyOf = (id: string) => personaKey(tenant, id);
  const toItem = (persona: Persona): Record<string, unknown> => (tenant === undefined ? persona : { ...persona, id: keyOf(persona.id), tenant_id: tenant });
  /** The persona of a stored item, or undefined when the item is not this tenant's. */
  const fromItem = (item: Record<string, unknown> | undefined): Persona | undefined => {
    if (!item || tenant === undefined) return item as Persona | undefined;
    const { tenant_id: owner, ...fields } = item;
    const key = splitPersonaKey(String(item.id));
    if (owner !== tenant || key.tenant !== tenant) return undefined;
    return { ...fields, id: key.id } as unknown as Persona;
  };
  const idempotencyKeyOf = (key: string) => idempotencyRecordKey(tenant, key);

  const conflictFrom = (item: Record<string, unknown> | undefined): WriteConflict => {
    const current = fromItem(item);
    return current ? { kind: 'version-mismatch', current } : { kind: 'missing' };
  };

  const createIfAbsent = async (persona: Persona): Promise<CreateOutcome> => {
    try {
      await client.send(
        new PutCommand({
          TableName: tables.personas,
          Item: toItem(persona),
          ConditionExpression: 'attribute_not_exists(id)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { kind: 'created' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return { kind: 'exists', current: (error.Item ? fromItem(unmarshall(error.Item)) : undefined) ?? persona };
    }
  };

  /** A conditional update of an idempotency record that only its current owner may make. */
  const ownerUpdate = async (key: string, owner: string, update: string, values: Record<string, unknown>): Promise<boolean> => {
    try {
      await client.send(
        new UpdateCommand({
          TableName: tables.idempotency,
          Key: { key: idempotencyKeyOf(key) },
          UpdateExpression: update,
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner', ...(update.includes('#status') ? { '#status': 'status' } : {}) },
          ExpressionAttributeValues: { ':owner': owner, ...values },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  };

  /** A tenant's partition of the tenant index (eventually consistent, as GSI reads are). */
  const tenantQuery = (page: { Limit: number; ExclusiveStartKey?: Record<string, unknown> }) =>
    new QueryCommand({
      TableName: tables.personas,
      IndexName: tenantIndexDesign.indexName,
      KeyConditionExpression: '#tenant = :tenant',
      ExpressionAttributeNames: { '#tenant': tenantIndexDesign.partitionKey },
      ExpressionAttributeValues: { ':tenant': tenant },
      ...page,
    });

  /**
   * One page of a (segment of a) consistent table scan, from `startKey` (the `lastKey` of the
   * previous page of the same segment); `lastKey` is absent on the segment's last page. A tenant's
   * personas come from its partition of the tenant index (segment 0; the other segments are empty).
   */
  const scanPage = async (options: ScanPageOptions = {}): Promise<{ items: Persona[]; lastKey?: Record<string, unknown> }> => {
    if (tenant !== undefined && (options.segment ?? 0) > 0) return { items: [] };
    const page = { Limit: options.pageSize ?? 500, ...(options.startKey ? { ExclusiveStartKey: options.startKey } : {}) };
    const result =
      tenant === undefined
        ? await client.send(
            new ScanCommand({
              TableName: tables.personas,
              ConsistentRead: true,
              ...page,
              ...(options.totalSegments ? { Segment: options.segment ?? 0, TotalSegments: options.totalSegments } : {}),
            }),
          )
        : await client.send(tenantQuery(page));
    return { items: (result.Items ?? []).flatMap((item) => fromItem(item) ?? []), ...(result.LastEvaluatedKey ? { lastKey: result.LastEvaluatedKey } : {}) };
  };

  return {
    /** The tenant this repository is confined to (undefined: the whole table). */
    tenant,

    async get(id: string): Promise<Persona | undefined> {
      const result = await client.send(new GetCommand({ TableName: tables.personas, Key: { id: keyOf(id) }, ConsistentRead: true }));
      return fromItem(result.Item);
    },

    async getMany(ids: readonly string[]): Promise<Map<string, Persona>> {
      const found = new Map<string, Persona>();
      for (let start = 0; start < ids.length; start += BATCH_GET_SIZE) {
        let keys: Record<string, unknown>[] = ids.slice(start, start + BATCH_GET_SIZE).map((id) => ({ id: keyOf(id) }));
        for (let attempt = 0; keys.length > 0; attempt++) {
          if (attempt > 0) await sleep(backoff(attempt));
          const result = await client.send(
            new BatchGetCommand({ RequestItems: { [tables.personas]: { Keys: keys, ConsistentRead: true } } }),
          );
          for (const item of result.Responses?.[tables.personas] ?? []) {
            const persona = fromItem(item);
            if (persona) found.set(persona.id, persona);
          }
          keys = result.UnprocessedKeys?.[tables.personas]?.Keys ?? [];
          if (attempt >= 8 && keys.length > 0) throw new Error(`DynamoDB left ${keys.length} keys unprocessed after retries`);
        }
      }
      return found;
    },

    /** Creates a persona that must not exist yet. */
    async create(persona: Persona): Promise<void> {
      const outcome = await createIfAbsent(persona);
      if (outcome.kind === 'exists') throw new WriteConflictError({ kind: 'exists' });
    },

    /**
     * Creates each persona whose id is still free, several at a time, each write conditional on
     * the id being free. An id that exists is reported with the stored persona, never overwritten;
     * a write DynamoDB still throttles after the SDK's retries is reported as failed.
     */
    async createMany(personas: readonly Persona[]): Promise<Map<string, CreateOutcome>> {
      const outcomes = new Map<string, CreateOutcome>();
      let next = 0;
      const worker = async () => {
        while (next < personas.length) {
          const persona = personas[next++]!;
          try {
            outcomes.set(persona.id, await createIfAbsent(persona));
          } catch (error) {
            if (!RETRYABLE_ERRORS.has((error as Error).name)) throw error;
            outcomes.set(persona.id, { kind: 'failed', reason: (error as Error).name });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(CREATE_CONCURRENCY, personas.length) }, worker));
      return outcomes;
    },

    /** Overwrites a persona whose stored version is `expectedVersion` (or any version, for '*'). */
    async replace(persona: Persona, expectedVersion: number | '*'): Promise<void> {
      try {
        await client.send(
          new PutCommand({
            TableName: tables.personas,
            Item: toItem(persona),
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
            Key: { id: keyOf(id) },
            ...(typeof expectedVersion === 'number'
              ? { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }
              : { ConditionExpression: 'attribute_exists(id)' }),
            ReturnValues: 'ALL_OLD',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return fromItem(result.Attributes)!;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) throw new WriteConflictError(conflictFrom(error.Item && unmarshall(error.Item)));
        throw error;
      }
    },

    /**
     * One page of personas after `startAfterId`; keeps reading until `limit` items or the end. A
     * single-tenant stage scans the table; a tenant queries its own partition of the tenant index.
     */
    async list(limit: number, startAfterId: string | undefined): Promise<PersonaPage> {
      const items: Persona[] = [];
      let exclusiveStartKey: Record<string, unknown> | undefined =
        startAfterId === undefined ? undefined : tenant === undefined ? { id: startAfterId } : { id: keyOf(startAfterId), tenant_id: tenant };
      do {
        const page = { Limit: limit - items.length, ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}) };
        const result = tenant === undefined ? await client.send(new ScanCommand({ TableName: tables.personas, ...page })) : await client.send(tenantQuery(page));
        for (const item of result.Items ?? []) {
          const persona = fromItem(item);
          if (persona) items.push(persona);
        }
        exclusiveStartKey = result.LastEvaluatedKey;
      } while (exclusiveStartKey && items.length < limit);
      return { items, lastKey: exclusiveStartKey ? splitPersonaKey(String(exclusiveStartKey.id)).id : undefined };
    },

    scanPage,

    /**
     * Every persona, page by page; `segment`/`totalSegments` split the table for parallel scans. A
     * tenant's personas come from one query of the tenant index (segment 0; other segments are empty).
     */
    async *scanAll(options: Omit<ScanPageOptions, 'startKey'> = {}): AsyncGenerator<Persona[]> {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await scanPage({ ...options, ...(startKey ? { startKey } : {}) });
        yield page.items;
        startKey = page.lastKey;
      } while (startKey);
    },

    async claimIdempotencyKey(record: StoredIdempotencyRecord): Promise<ClaimOutcome> {
      const now = Date.now();
      try {
        await client.send(
          new PutCommand({
            TableName: tables.idempotency,
            Item: { ...record, key: idempotencyKeyOf(record.key) },
            // Free, expired, or abandoned by a request with the same body (its lease is over).
            ConditionExpression:
              'attribute_not_exists(#key) OR expires_at < :nowSeconds OR (#status = :inProgress AND lease_expires_at < :nowMs AND request_hash = :hash)',
            ExpressionAttributeNames: { '#key': 'key', '#status': 'status' },
            ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000), ':nowMs': now, ':inProgress': 'in-progress', ':hash': record.request_hash },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { kind: 'claimed', owner: record.owner };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const existing = (error.Item && { ...unmarshall(error.Item), key: record.key }) as StoredIdempotencyRecord | undefined;
        if (!existing) return { kind: 'in-progress' };
        if (existing.request_hash !== record.request_hash) return { kind: 'mismatch' };
        return existing.status === 'completed' ? { kind: 'completed', record: existing } : { kind: 'in-progress' };
      }
    },

    async completeIdempotencyKey(key: string, owner: string, statusCode: number, responseBody: string): Promise<boolean> {
      return ownerUpdate(key, owner, 'SET #status = :completed, status_code = :statusCode, response_body = :body', {
        ':completed': 'completed',
        ':statusCode': statusCode,
        ':body': responseBody,
      });
    },

    async releaseIdempotencyKey(key: string, owner: string): Promise<void> {
      await ownerUpdate(key, owner, 'SET lease_expires_at = :zero', { ':zero': 0 });
    },
  };
}

export type PersonaRepository = ReturnType<typeof personaRepository>;

/** The repository for the configured tables (TABLE_NAME, IDEMPOTENCY_TABLE_NAME, DYNAMODB_ENDPOINT by default), confined to `tenant` when given. */
export function personaRepositoryFor(config: TableConfig = tableConfig(), tenant?: string): PersonaRepository {
  return personaRepository(createDocumentClient(config), { personas: config.personaTableName, idempotency: config.idempotencyTableName }, tenant);
}


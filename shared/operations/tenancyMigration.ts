/**
 * `personas migrate-tenancy --tenant T`: turns a single-tenant stage's data into tenant T's, for a
 * stage that switches to tenancy=claim.
 *
 * - Personas: every item under a bare key (`<id>`) moves to `<T>#<id>` with `tenant_id: T`, in one
 *   transaction per persona (put if the new key is free, delete the old one only at the version
 *   read), so a persona is never lost or doubled, a concurrent write is never overwritten (that
 *   persona is reported and a re-run moves it), and a re-run moves only what is left.
 * - Idempotency-Key records (kept 24 h) move to T's keys the same way, so a client's retry of a
 *   request it sent before the migration still replays instead of writing again. Only the API's
 *   own records move (parseIdempotencyRecordKey, beside the code that builds their keys): the
 *   reconciler's lease and checkpoint in the same table stay where a running reconcile looks.
 * - The index: the stream indexer deletes each bare key's point and indexes the tenant's point as
 *   the moves arrive; the command then runs the usual zero-downtime reindex, which builds a new
 *   collection with the `tenant_id` tenant index (collections built before tenancy lack it) and
 *   verifies it against the table before swapping the alias.
 */
import { TransactWriteCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { idempotencyRecordKey, parseIdempotencyRecordKey } from '../persona/idempotency';
import { personaKey, splitPersonaKey } from '../tenancy/tenantKeys';

export interface TenancyMigrationDeps {
  client: DynamoDBDocumentClient;
  tables: { personas: string; idempotency: string };
}

export interface TenancyMigrationReport {
  tenant: string;
  /** Personas moved into the tenant's keys. */
  moved: number;
  /** Personas already under a tenant's key (moved by an earlier run, or written as a tenant's). */
  alreadyTenants: number;
  /** Bare keys not moved: changed while being moved, or the tenant's key was taken. A re-run retries them. */
  skipped: Array<{ id: string; reason: string }>;
  idempotencyKeysMoved: number;
  durationMs: number;
}

/** A record the API wrote on a single-tenant stage (no tenant in its key). */
const isSingleTenantIdempotencyRecord = (key: string) => {
  const parsed = parseIdempotencyRecordKey(key);
  return parsed !== undefined && parsed.tenant === undefined;
};

async function* scanItems(client: DynamoDBDocumentClient, table: string): AsyncGenerator<Record<string, unknown>> {
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    yield* page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

const cancelReason = (error: unknown) => {
  if (!(error instanceof TransactionCanceledException)) throw error;
  const reasons = error.CancellationReasons?.map((reason) => reason.Code ?? 'None') ?? [];
  if (reasons.includes('ConditionalCheckFailed')) {
    return reasons[0] === 'ConditionalCheckFailed' ? 'the tenant already has a persona with this id' : 'changed while being moved';
  }
  throw error;
};

export async function migrateToTenant(
  deps: TenancyMigrationDeps,
  tenant: string,
  options: { onProgress?: (moved: number) => void } = {},
): Promise<TenancyMigrationReport> {
  const started = performance.now();
  const report: TenancyMigrationReport = { tenant, moved: 0, alreadyTenants: 0, skipped: [], idempotencyKeysMoved: 0, durationMs: 0 };
  for await (const item of scanItems(deps.client, deps.tables.personas)) {
    const key = String(item.id);
    if (splitPersonaKey(key).tenant !== undefined) {
      report.alreadyTenants++;
      continue;
    }
    try {
      await deps.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: deps.tables.personas,
                Item: { ...item, id: personaKey(tenant, key), tenant_id: tenant },
                ConditionExpression: 'attribute_not_exists(id)',
              },
            },
            {
              Delete: {
                TableName: deps.tables.personas,
                Key: { id: key },
                ConditionExpression: 'version = :version',
                ExpressionAttributeValues: { ':version': item.version },
              },
            },
          ],
        }),
      );
      report.moved++;
      options.onProgress?.(report.moved);
    } catch (error) {
      report.skipped.push({ id: key, reason: cancelReason(error) });
    }
  }
  for await (const record of scanItems(deps.client, deps.tables.idempotency)) {
    const key = String(record.key);
    if (!isSingleTenantIdempotencyRecord(key)) continue;
    try {
      await deps.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: deps.tables.idempotency, Item: { ...record, key: idempotencyRecordKey(tenant, key) }, ConditionExpression: 'attribute_not_exists(#key)', ExpressionAttributeNames: { '#key': 'key' } } },
            {
              Delete: {
                TableName: deps.tables.idempotency,
                Key: { key },
                ConditionExpression: '#owner = :owner',
                ExpressionAttributeNames: { '#owner': 'owner' },
                ExpressionAttributeValues: { ':owner': record.owner },
              },
            },
          ],
        }),
      );
      report.idempotencyKeysMoved++;
    } catch (error) {
      cancelReason(error);
      // A record that changed or already moved is left; it expires within 24 h.
    }
  }
  report.durationMs = performance.now() - started;
  return report;
}

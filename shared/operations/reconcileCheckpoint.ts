/**
 * Where a reconcile pass that stopped early (the scheduled reconciler nearing Lambda's 15-minute
 * limit, or failing) keeps its position, so that the next run resumes instead of starting over.
 * One item in the idempotency table (its `expires_at` TTL removes abandoned checkpoints; the key
 * cannot meet an Idempotency-Key record, whose keys are `[<tenant>#]<operation>#<sha256>`, scopedIdempotencyKey).
 */
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TableActions } from '../routes';
import { leaseKey } from './reconcileLease';
import type { DriftKind } from '../vectorIndex/indexDrift';
import type { SyncAction } from '../vectorIndex/syncPersonaChanges';

/**
 * The DynamoDB actions a checkpointed reconcile calls, per table (the checkpoint; the lease of
 * reconcileLease.ts uses the same PutItem and DeleteItem): the stack grants exactly these
 * (test/reconcileResume.test.ts records them).
 */
export const RECONCILER_TABLE_ACTIONS = {
  personas: ['Scan', 'BatchGetItem'],
  idempotency: ['GetItem', 'PutItem', 'DeleteItem'],
} as const satisfies TableActions;

/** Bumped when the stored shape changes: a checkpoint of another format is discarded. */
export const CHECKPOINT_FORMAT = 1;

/** Counts of the whole pass, summed over the invocations that made it. */
export interface PassTotals {
  personas: number;
  points: number;
  byKind: Record<DriftKind, number>;
  /** What the repairs did (absent without repair). */
  actions?: Record<SyncAction, number>;
  /** Differences still there after their repair (or all found ones, without repair). */
  remaining: number;
  /** The first few repair errors. */
  errors: string[];
}

export interface ReconcileCheckpoint {
  format: number;
  runId: string;
  /** ISO time the pass started. */
  startedAt: string;
  /** Invocations that have worked on this pass, this one included. */
  invocations: number;
  /** The physical collection and model label the pass compares against: another one discards it. */
  collection: string;
  model: string;
  /** First the table (per scan segment), then the index (orphans). */
  phase: 'table' | 'index';
  /** Per parallel scan segment: DynamoDB's LastEvaluatedKey to continue from, and whether it is done. */
  segments: { startKey?: Record<string, unknown>; done: boolean }[];
  /** Qdrant's scroll `next_page_offset` to continue the index phase from (absent: its start). */
  indexOffset?: string | number;
  totals: PassTotals;
}

export interface CheckpointStore {
  /** The stored checkpoint and its expiry (epoch seconds), if any. */
  load(key: string): Promise<{ checkpoint: ReconcileCheckpoint; expiresAt: number } | undefined>;
  save(key: string, checkpoint: ReconcileCheckpoint, expiresAt: number): Promise<void>;
  clear(key: string): Promise<void>;
}

/** The item key of the checkpoint of reconciling `alias`. */
export const checkpointKey = (alias: string) => `reconciler-checkpoint#${alias}`;

/**
 * The only idempotency-table items the reconciler reads or writes, as IAM `dynamodb:LeadingKeys`
 * patterns: its checkpoints and its leases, never an Idempotency-Key record of the API.
 */
export const RECONCILER_IDEMPOTENCY_KEYS = [checkpointKey('*'), leaseKey('*')] as const;

export function dynamoCheckpointStore(client: DynamoDBDocumentClient, tableName: string): CheckpointStore {
  return {
    async load(key) {
      const { Item } = await client.send(new GetCommand({ TableName: tableName, Key: { key }, ConsistentRead: true }));
      if (!Item) return undefined;
      return { checkpoint: Item.checkpoint as ReconcileCheckpoint, expiresAt: Number(Item.expires_at) };
    },
    async save(key, checkpoint, expiresAt) {
      await client.send(new PutCommand({ TableName: tableName, Item: { key, checkpoint, expires_at: expiresAt } }));
    },
    async clear(key) {
      await client.send(new DeleteCommand({ TableName: tableName, Key: { key } }));
    },
  };
}

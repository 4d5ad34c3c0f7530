/**
 * Only one reconcile of an alias works at a time: two runs of one pass (the schedule and a manual
 * `personas reconcile`, or two manual runs) would both resume the same checkpoint, race on it and
 * count the pass's drift twice. A run first takes a lease, one item of the idempotency table beside
 * the checkpoint, with a conditional PutItem that succeeds only when there is no lease or it has
 * expired; it renews the lease (conditional on still owning it) as its pages go, and releases it at
 * the end with a delete conditional on its owner. A run that crashes leaves its lease to expire.
 */
import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/** The DynamoDB actions taking, renewing and releasing a lease calls (the CLI's admin policy grants these on the lease items). */
export const LEASE_TABLE_ACTIONS = ['PutItem', 'DeleteItem'] as const;

/** The item key of the lease on reconciling `alias` (cannot meet an Idempotency-Key record, `[<tenant>#]<operation>#<sha256>`). */
export const leaseKey = (alias: string) => `reconciler-lease#${alias}`;

export interface ReconcileLease {
  /** This run's own id: only it may renew or release the lease. */
  owner: string;
  /** Who holds it, for the run that finds it taken, e.g. "personas reconcile on host (pid 42)". */
  holder: string;
  /** ISO time it was taken. */
  acquiredAt: string;
  /** Epoch seconds (also the item's TTL attribute): after this, another run may take it over. */
  expiresAt: number;
}

export interface LeaseStore {
  /** Takes the lease if there is none or it expired before `nowSeconds`; else returns the current one. */
  acquire(key: string, lease: ReconcileLease, nowSeconds: number): Promise<{ acquired: true } | { acquired: false; current: ReconcileLease }>;
  /** Moves the expiry of a lease `owner` still holds; false when it no longer holds it. */
  renew(key: string, lease: ReconcileLease): Promise<boolean>;
  /** Deletes the lease if `owner` still holds it; false when it did not. */
  release(key: string, owner: string): Promise<boolean>;
}

const fromItem = (item: Record<string, unknown>): ReconcileLease => ({
  owner: String(item.owner),
  holder: String(item.holder),
  acquiredAt: String(item.acquired_at),
  expiresAt: Number(item.expires_at),
});

/**
 * The lease as an item of the idempotency table (key `key`, TTL attribute `expires_at`). A
 * conditional write happens only when its ConditionExpression holds on the item as stored, else it
 * fails with ConditionalCheckFailedException and changes nothing; with
 * `ReturnValuesOnConditionCheckFailure: ALL_OLD` the exception carries that stored item, so a run
 * learns who holds the lease from the same request
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
 */
export function dynamoLeaseStore(client: DynamoDBDocumentClient, tableName: string): LeaseStore {
  /** Sends a conditional write: whether it was made, and when not, the stored item that failed the condition. */
  const conditionally = async (command: PutCommand | DeleteCommand): Promise<{ made: true } | { made: false; stored?: Record<string, unknown> }> => {
    try {
      await (command instanceof PutCommand ? client.send(command) : client.send(command));
      return { made: true };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return { made: false, ...(error.Item ? { stored: unmarshall(error.Item) } : {}) };
    }
  };
  const ownedBy = (owner: string) => ({ ConditionExpression: '#owner = :owner', ExpressionAttributeNames: { '#owner': 'owner' }, ExpressionAttributeValues: { ':owner': owner } });
  const item = (key: string, lease: ReconcileLease) => ({ key, owner: lease.owner, holder: lease.holder, acquired_at: lease.acquiredAt, expires_at: lease.expiresAt });
  return {
    async acquire(key, lease, nowSeconds) {
      const outcome = await conditionally(
        new PutCommand({
          TableName: tableName,
          Item: item(key, lease),
          // DynamoDB's TTL deletes expired items late (up to days), so the expiry is checked here.
          ConditionExpression: 'attribute_not_exists(#key) OR expires_at < :now',
          ExpressionAttributeNames: { '#key': 'key' },
          ExpressionAttributeValues: { ':now': nowSeconds },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      if (outcome.made) return { acquired: true };
      if (!outcome.stored) throw new Error(`the reconcile lease ${key} was refused without the item that holds it`);
      return { acquired: false, current: fromItem(outcome.stored) };
    },
    async renew(key, lease) {
      return (await conditionally(new PutCommand({ TableName: tableName, Item: item(key, lease), ...ownedBy(lease.owner) }))).made;
    },
    async release(key, owner) {
      return (await conditionally(new DeleteCommand({ TableName: tableName, Key: { key }, ...ownedBy(owner) }))).made;
    },
  };
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

/** Another run holds the lease: this one did nothing. */
export class ReconcileLeaseHeldError extends Error {
  constructor(readonly current: ReconcileLease) {
    super(
      `another reconcile of this index is running: ${current.holder}, since ${current.acquiredAt}, its lease runs until ${iso(current.expiresAt)}. ` +
        'Run again once it has finished (a run that crashed leaves its lease to expire at that time).',
    );
    this.name = 'ReconcileLeaseHeldError';
  }
}

/** This run's lease expired and another run took it over: this run stops without saving more. */
export class ReconcileLeaseLostError extends Error {
  constructor(holder: string) {
    super(`the reconcile lease of ${holder} expired and another run took it over; this run stopped (the other run carries the pass on)`);
    this.name = 'ReconcileLeaseLostError';
  }
}

export interface LeaseOptions {
  store: LeaseStore;
  key: string;
  holder: string;
  /** How long from now the lease should last (asked at each renewal): a Lambda's remaining time plus a margin. */
  durationMs: () => number;
}

export interface HeldLease {
  readonly owner: string;
  /**
   * Called before each page and each checkpoint save: renews the lease once less than half of it
   * is left (with a Lambda's remaining time as its duration, never). Throws ReconcileLeaseLostError
   * when another run has taken it over, so a run whose lease ran out saves nothing more.
   */
  keep(): Promise<void>;
  /** Best effort: a lease that cannot be deleted expires on its own. */
  release(): Promise<void>;
}

/** Takes the lease or throws ReconcileLeaseHeldError naming the run that holds it. */
export async function takeLease(options: LeaseOptions, now: () => number): Promise<HeldLease> {
  const lease: ReconcileLease = { owner: randomUUID(), holder: options.holder, acquiredAt: new Date(now()).toISOString(), expiresAt: 0 };
  const expiry = () => Math.ceil((now() + options.durationMs()) / 1000);
  lease.expiresAt = expiry();
  const outcome = await options.store.acquire(options.key, lease, Math.floor(now() / 1000));
  if (!outcome.acquired) throw new ReconcileLeaseHeldError(outcome.current);
  let renewing: Promise<void> | undefined;
  return {
    owner: lease.owner,
    keep() {
      if (renewing) return renewing;
      if (lease.expiresAt * 1000 - now() > options.durationMs() / 2) return Promise.resolve();
      const renewed = { ...lease, expiresAt: expiry() };
      renewing = options.store
        .renew(options.key, renewed)
        .then((kept) => {
          if (!kept) throw new ReconcileLeaseLostError(lease.holder);
          lease.expiresAt = renewed.expiresAt;
        })
        .finally(() => {
          renewing = undefined;
        });
      return renewing;
    },
    async release() {
      await options.store.release(options.key, lease.owner).catch(() => false);
    },
  };
}

/**
 * One reconcile of an alias at a time: a run takes a lease (an item of the idempotency table) with
 * a conditional PutItem, renews it conditional on owning it, and deletes it at the end conditional
 * on owning it. DynamoDB's conditional writes, which the lease relies on and DynamoDB Local runs
 * here for real:
 * - a PutItem or DeleteItem with a ConditionExpression is carried out only if the condition holds
 *   on the stored item, else it fails with ConditionalCheckFailedException and writes nothing;
 *   `attribute_not_exists` of the key attribute holds only when there is no such item
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html,
 *   https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html);
 * - concurrent conditional writes to one item are applied one after another, each condition judged
 *   on the item the previous one left, so of two runs racing for a free lease exactly one wins
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate);
 * - `ReturnValuesOnConditionCheckFailure: ALL_OLD` returns the stored item with the failure, which
 *   is how the losing run learns who holds the lease and until when;
 * - TTL deletes expired items late ("typically within a few days") and reads return them until then
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html), so
 *   an expired lease is still there and the condition compares `expires_at` with the clock itself.
 */
import { randomUUID } from 'node:crypto';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as reconcilerHandler } from '../functions/reconciler/handler';
import { lambdaContext } from '../local/lambdaEvent';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { logger } from '../shared/observability';
import { reconcileIndex, resolveCollection, type ReconcileDeps, type ReconcileOptions, type ReconcileReport } from '../shared/operations/indexReconciler';
import { checkpointKey, dynamoCheckpointStore, type CheckpointStore } from '../shared/operations/reconcileCheckpoint';
import { dynamoLeaseStore, LEASE_TABLE_ACTIONS, leaseKey, ReconcileLeaseHeldError, ReconcileLeaseLostError, takeLease, type LeaseOptions } from '../shared/operations/reconcileLease';
import { startTestSystem } from './support/localSystem';
import { createIndexedPersonas, indexDifferences, injectEveryDriftKind, runCli, testStage } from './support/operationsHelpers';

let env: Awaited<ReturnType<typeof startTestSystem>>;
let ids: string[] = [];
let collection: string;
const documents = () => createDocumentClient(tableConfig());
const table = () => tableConfig().idempotencyTableName;
const checkpoints = () => dynamoCheckpointStore(documents(), table());
const leases = () => dynamoLeaseStore(documents(), table());
const lease = () => leaseKey(env.collection!);
const checkpoint = () => ({ store: checkpoints(), key: checkpointKey(env.collection!) });
const leaseItem = async () => (await documents().send(new GetCommand({ TableName: table(), Key: { key: lease() }, ConsistentRead: true }))).Item;
const leaseFor = (holder: string, durationMs = 10 * 60_000): LeaseOptions => ({ store: leases(), key: lease(), holder, durationMs: () => durationMs });
const EVERY_KIND = { missing: 5, orphan: 3, 'stale-version': 4, 'stale-payload': 3, 'wrong-model': 2, 'missing-vector': 0 };

beforeAll(async () => {
  env = await startTestSystem();
  ids = await createIndexedPersonas(env, 60);
  collection = await resolveCollection(env.qdrant, env.collection!);
});
afterAll(() => env.system.stop());
afterEach(async () => {
  // Each test starts without a lease or a checkpoint.
  await documents().send(new DeleteCommand({ TableName: table(), Key: { key: lease() } }));
  await checkpoints().clear(checkpointKey(env.collection!));
});

const reconcileDeps = async (): Promise<ReconcileDeps> => {
  const stage = await testStage();
  return { repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, embedder: await getEmbedder() };
};

const run = async (options: Partial<ReconcileOptions> & { lease: LeaseOptions }) =>
  reconcileIndex(await reconcileDeps(), { repair: true, pageSize: 10, checkpoint: checkpoint(), ...options });

describe('the reconcile lease', () => {
  it('two concurrent runs: exactly one does the pass, with the counts of a single pass; the other is refused naming the holder and its expiry', async () => {
    await injectEveryDriftKind(env.qdrant, collection, ids);
    expect((await indexDifferences()).drift).toHaveLength(17);
    const started = Date.now();
    const outcomes = await Promise.allSettled([run({ lease: leaseFor('run A') }), run({ lease: leaseFor('run B') })]);
    const done = outcomes.filter((outcome): outcome is PromiseFulfilledResult<ReconcileReport> => outcome.status === 'fulfilled');
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const report = done[0]!.value;
    // Counts of one pass over 60 rows and 63 points, each difference found and repaired once.
    expect(report).toMatchObject({ complete: true, invocations: 1, personas: 60, points: 63, byKind: EVERY_KIND, remaining: 0 });
    expect(report.drift).toHaveLength(17);
    expect(report.repair!.actions.embedded + report.repair!.actions['payload-only']).toBe(14);

    const error = refused[0]!.reason as ReconcileLeaseHeldError;
    expect(error).toBeInstanceOf(ReconcileLeaseHeldError);
    const winner = outcomes[0]!.status === 'fulfilled' ? 'run A' : 'run B';
    expect(error.current.holder).toBe(winner);
    // The holder's lease: its own duration (10 minutes) from when it took it.
    expect(error.current.expiresAt).toBeGreaterThanOrEqual(Math.floor(started / 1000) + 600);
    expect(error.current.expiresAt).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600);
    expect(error.message).toContain(`${winner}, since `);
    expect(error.message).toContain(`its lease runs until ${new Date(error.current.expiresAt * 1000).toISOString()}`);
    expect((await indexDifferences()).drift).toEqual([]);
    // Released at the end of the pass, and the pass's checkpoint cleared.
    expect(await leaseItem()).toBeUndefined();
    expect(await checkpoints().load(checkpointKey(env.collection!))).toBeUndefined();
  });

  it('a run refused by the lease reads and writes nothing: the holder\'s checkpoint stays as it was', async () => {
    await injectEveryDriftKind(env.qdrant, collection, ids);
    // The holder stopped after 3 pages (its position saved) and still holds the lease.
    const holder = await takeLease(leaseFor('a paused holder'), Date.now);
    const paused = await reconcileIndex(await reconcileDeps(), { repair: true, pageSize: 10, checkpoint: checkpoint(), shouldStop: ((pages) => () => pages-- <= 0)(3) });
    expect(paused.complete).toBe(false);
    const saved = await checkpoints().load(checkpointKey(env.collection!));
    await expect(run({ lease: leaseFor('a second run') })).rejects.toBeInstanceOf(ReconcileLeaseHeldError);
    expect(await checkpoints().load(checkpointKey(env.collection!))).toEqual(saved);
    expect(await leaseItem()).toMatchObject({ owner: holder.owner, holder: 'a paused holder' });
    // Released, the next run resumes that pass and finishes it.
    await holder.release();
    const resumed = await run({ lease: leaseFor('the next run') });
    expect(resumed).toMatchObject({ complete: true, runId: paused.runId, invocations: 2, byKind: EVERY_KIND, remaining: 0 });
  });

  it('an expired lease (a crashed run) is taken over; the crashed run can no longer release or renew it', async () => {
    await env.qdrant.delete(collection, { wait: true, points: ids.slice(20, 22) });
    const crashedOwner = randomUUID();
    const expiredAt = Math.floor(Date.now() / 1000) - 5;
    await leases().acquire(lease(), { owner: crashedOwner, holder: 'a crashed run', acquiredAt: new Date(Date.now() - 900_000).toISOString(), expiresAt: expiredAt }, expiredAt - 1);
    expect(await leaseItem()).toMatchObject({ owner: crashedOwner, expires_at: expiredAt });

    const next = await takeLease(leaseFor('the run after the crash'), Date.now);
    expect(await leaseItem()).toMatchObject({ owner: next.owner, holder: 'the run after the crash' });
    // The crashed run's owner id no longer matches: its release and renewal change nothing.
    expect(await leases().release(lease(), crashedOwner)).toBe(false);
    expect(await leases().renew(lease(), { owner: crashedOwner, holder: 'a crashed run', acquiredAt: '', expiresAt: expiredAt + 3600 })).toBe(false);
    expect(await leaseItem()).toMatchObject({ owner: next.owner });
    await next.release();

    // The same through a whole run: it finds the expired lease, takes it over and does the pass.
    await leases().acquire(lease(), { owner: crashedOwner, holder: 'a crashed run', acquiredAt: new Date().toISOString(), expiresAt: expiredAt }, expiredAt - 1);
    const report = await run({ lease: leaseFor('a scheduled run') });
    expect(report).toMatchObject({ complete: true, byKind: { missing: 2 }, remaining: 0 });
    expect(await leaseItem()).toBeUndefined();
  });

  it('released at the end of every run (finished, paused, failed), so the next run proceeds', async () => {
    const finished = await run({ lease: leaseFor('finishes') });
    expect(finished.complete).toBe(true);
    expect(await leaseItem()).toBeUndefined();

    const paused = await run({ lease: leaseFor('pauses'), shouldStop: ((pages) => () => pages-- <= 0)(2) });
    expect(paused.complete).toBe(false);
    expect(await leaseItem()).toBeUndefined();

    const deps = await reconcileDeps();
    const failing: typeof deps.qdrant = Object.assign(Object.create(deps.qdrant), {
      scroll: async () => {
        throw new Error('fetch failed');
      },
    });
    await expect(reconcileIndex({ ...deps, qdrant: failing }, { repair: true, pageSize: 10, checkpoint: checkpoint(), lease: leaseFor('fails') })).rejects.toThrow(/fetch failed/);
    expect(await leaseItem()).toBeUndefined();

    const next = await run({ lease: leaseFor('the next run') });
    expect(next).toMatchObject({ complete: true, runId: paused.runId, invocations: 3 });
  });

  it('a run whose lease ran out and was taken over stops with ReconcileLeaseLostError and saves nothing more', async () => {
    const savedPages: number[] = [];
    let taken = false;
    // A process that was stopped (or whose clock is behind): by its clock its 5-minute lease has
    // all of it left, while the expiry it wrote is already a minute past for everyone else.
    let offsetMs = -6 * 60_000;
    const now = () => Date.now() + offsetMs;
    const store: CheckpointStore = {
      ...checkpoints(),
      async save(key, state, expiresAt) {
        await checkpoints().save(key, state, expiresAt);
        savedPages.push(state.totals.personas + state.totals.points);
        if (savedPages.length === 3 && !taken) {
          // Another run takes the expired lease over; then this run's clock catches up.
          taken = (await leases().acquire(lease(), { owner: randomUUID(), holder: 'the run that took over', acquiredAt: new Date().toISOString(), expiresAt: Math.ceil(Date.now() / 1000) + 600 }, Math.floor(Date.now() / 1000))).acquired;
          offsetMs = -3 * 60_000; // now 2 minutes left by its clock, less than half: it renews, and finds the lease gone
        }
      },
    };
    const deps = await reconcileDeps();
    await expect(
      reconcileIndex(deps, { repair: true, pageSize: 10, now, checkpoint: { store, key: checkpointKey(env.collection!) }, lease: { ...leaseFor('a paused run', 5 * 60_000) } }),
    ).rejects.toBeInstanceOf(ReconcileLeaseLostError);
    expect(taken).toBe(true);
    // Nothing saved after the takeover (the first save is the pass's start, then one per page).
    expect(savedPages).toHaveLength(3);
    expect(await leaseItem()).toMatchObject({ holder: 'the run that took over' });
  });
});

describe('the lease in the scheduled function and the CLI', () => {
  it('a CLI run (no checkpoint) calls only PutItem and DeleteItem on the idempotency table, on its lease item: what the admin policy grants (infra/accessPolicies.ts)', async () => {
    const send = DynamoDBDocumentClient.prototype.send;
    const calls: { command: string; input: Record<string, any> }[] = [];
    vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: any, ...rest: any[]) {
      calls.push({ command: command.constructor.name, input: command.input });
      return (send as any).call(this, command, ...rest);
    } as any);
    try {
      // As bin/personas.ts runs it: a pass in one go, a 10-minute lease; then another run's lease is found held.
      await reconcileIndex(await reconcileDeps(), { repair: false, lease: leaseFor('personas reconcile') });
      const held = await takeLease(leaseFor('a scheduled run'), Date.now);
      await expect(reconcileIndex(await reconcileDeps(), { repair: false, lease: leaseFor('personas reconcile') })).rejects.toBeInstanceOf(ReconcileLeaseHeldError);
      await held.release();
    } finally {
      vi.mocked(DynamoDBDocumentClient.prototype.send).mockRestore();
    }
    const onIdempotencyTable = calls.filter((call) => call.input.TableName === table());
    const action = { PutCommand: 'PutItem', DeleteCommand: 'DeleteItem', GetCommand: 'GetItem', UpdateCommand: 'UpdateItem' } as Record<string, string>;
    expect([...new Set(onIdempotencyTable.map((call) => action[call.command] ?? call.command))].sort()).toEqual([...LEASE_TABLE_ACTIONS].sort());
    // The admin policy's dynamodb:LeadingKeys condition: every key is a lease key.
    for (const call of onIdempotencyTable) expect((call.input.Item ?? call.input.Key).key).toBe(leaseKey(env.collection!));
    expect(leaseKey('*')).toBe('reconciler-lease#*');
  });

  it('the scheduled function, finding the lease held, logs who holds it and returns skipped without touching the checkpoint or publishing metrics', async () => {
    const holder = await takeLease(leaseFor('personas reconcile --repair on ops-laptop (pid 4242)'), Date.now);
    const written: string[] = [];
    // The tests silence the Logger (POWERTOOLS_LOG_LEVEL), so its call is what is checked; metrics (EMF) go to stdout.
    const warned = vi.spyOn(logger, 'warn');
    const capture = (stream: NodeJS.WriteStream) =>
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      });
    const spies = [capture(process.stdout), capture(process.stderr)];
    let result: Record<string, unknown>;
    try {
      result = await reconcilerHandler({}, lambdaContext('reconciler', 900_000));
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const warnings = [...warned.mock.calls];
    warned.mockRestore();
    const expiresAt = new Date(Number((await leaseItem())!.expires_at) * 1000).toISOString();
    expect(result).toEqual({ collection: env.collection, complete: false, skipped: 'lease-held', heldBy: 'personas reconcile --repair on ops-laptop (pid 4242)', leaseExpiresAt: expiresAt });
    expect(warnings).toContainEqual(['reconcile skipped: another run holds the lease', expect.objectContaining({ heldBy: 'personas reconcile --repair on ops-laptop (pid 4242)', until: expiresAt })]);
    const lines = written.join('').split('\n').filter(Boolean);
    expect(lines.filter((line) => line.includes('DriftFound') || line.includes('ReconcilePassesCompleted'))).toEqual([]);
    expect(await checkpoints().load(checkpointKey(env.collection!))).toBeUndefined();
    // Still the CLI run's lease.
    expect(await leaseItem()).toMatchObject({ owner: holder.owner });
    await holder.release();

    // Released, the next scheduled run does the pass, and releases the lease in turn.
    const next = await reconcilerHandler({}, lambdaContext('reconciler', 900_000));
    expect(next).toMatchObject({ complete: true });
    expect(await leaseItem()).toBeUndefined();
  });

  it('personas reconcile, finding the lease held, names the run and until when and exits 4; once released it runs', async () => {
    const holder = await takeLease(leaseFor('scheduled reconciler persona-db-prod-reconciler (request 1234)'), Date.now);
    const expiresAt = new Date(Number((await leaseItem())!.expires_at) * 1000).toISOString();
    const refused = await runCli(['reconcile', '--repair']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('another reconcile of this index is running: scheduled reconciler persona-db-prod-reconciler (request 1234)');
    expect(refused.stderr).toContain(`until ${expiresAt}`);
    expect(refused.stdout).toBe('');
    await holder.release();

    const ran = await runCli(['reconcile', '--json']);
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ personas: 60, remaining: 0 });
    expect(await leaseItem()).toBeUndefined();
  });
});

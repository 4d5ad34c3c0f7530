/**
 * The scheduled reconciler works page by page and keeps its position in a checkpoint (an item of
 * the idempotency table), so a run that stops before Lambda's 15-minute limit, or fails, is resumed
 * by the next run instead of restarting. The position is what the two systems themselves page by:
 * - DynamoDB Scan: a page ends with `LastEvaluatedKey`, passed back as `ExclusiveStartKey` to read
 *   the next; in a parallel scan the request must name the same segment whose scan returned that
 *   key (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html).
 * - Qdrant scroll: "By default, all resulting points are sorted by id. To query the next page
 *   specify the last id in the offset field"; `next_page_offset` is that point id, null on the last
 *   page (https://api.qdrant.tech/v-1-19-x/api-reference/points/scroll-points), a plain id a caller
 *   may store and resume from later (https://github.com/orgs/qdrant/discussions/2872).
 * - DynamoDB TTL deletes expired items late ("typically within two days"), and reads return them
 *   until then (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html),
 *   so the reconciler checks `expires_at` itself.
 * Every run here goes against DynamoDB Local and the local Qdrant server, and the union of the
 * interrupted runs must find exactly what one full comparison finds.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as reconcilerHandler } from '../functions/reconciler/handler';
import { lambdaContext } from '../local/lambdaEvent';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { collectionModel, countByKind, reconcileIndex, resolveCollection, type ReconcileDeps, type ReconcileReport } from '../shared/operations/indexReconciler';
import { checkpointKey, dynamoCheckpointStore, RECONCILER_IDEMPOTENCY_KEYS, RECONCILER_TABLE_ACTIONS, type ReconcileCheckpoint } from '../shared/operations/reconcileCheckpoint';
import type { DriftKind } from '../shared/vectorIndex/indexDrift';
import { modelLabel } from '../shared/vectorIndex/personaCollection';
import { startTestSystem } from './support/localSystem';
import { createIndexedPersonas, indexDifferences, injectEveryDriftKind, testStage } from './support/operationsHelpers';

let env: Awaited<ReturnType<typeof startTestSystem>>;
let ids: string[] = [];
let collection: string;
const documents = () => createDocumentClient(tableConfig());
const store = () => dynamoCheckpointStore(documents(), tableConfig().idempotencyTableName);
const key = () => checkpointKey(env.collection!);

beforeAll(async () => {
  env = await startTestSystem();
  ids = await createIndexedPersonas(env, 60);
  collection = await resolveCollection(env.qdrant, env.collection!);
});
afterAll(() => env.system.stop());

const reconcileDeps = async (): Promise<ReconcileDeps> => {
  const stage = await testStage();
  return { repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, embedder: await getEmbedder() };
};

const injectDrift = () => injectEveryDriftKind(env.qdrant, collection, ids);

/** What one full comparison (both sides read whole, the pre-checkpoint algorithm) finds: `kind id` entries. */
async function fullPassDrift(): Promise<string[]> {
  const { drift } = await indexDifferences();
  return drift.map((entry) => `${entry.kind} ${entry.id}`).sort();
}

const driftOf = (reports: readonly ReconcileReport[]) => reports.flatMap((report) => report.drift.map((entry) => `${entry.kind} ${entry.id}`)).sort();

/** A stop rule that lets exactly `pages` pages start, then stops the run. */
const afterPages = (pages: number) => () => pages-- <= 0;

describe('resumable reconcile', () => {
  it('a pass interrupted every 3 pages is resumed by the next run; the runs together find and repair exactly what one full pass finds', async () => {
    await injectDrift();
    const expected = await fullPassDrift();
    expect(expected).toHaveLength(17);
    const deps = await reconcileDeps();
    const reports: ReconcileReport[] = [];
    for (let run = 0; run < 20; run++) {
      const report = await reconcileIndex(deps, { repair: true, pageSize: 10, checkpoint: { store: store(), key: key() }, shouldStop: afterPages(3) });
      reports.push(report);
      if (report.complete) break;
      expect(report.pages).toBe(3);
      // Its position and counts are stored between the runs.
      const saved = await store().load(key());
      expect(saved?.checkpoint).toMatchObject({ runId: reports[0]!.runId, invocations: run + 1, collection });
    }
    const last = reports.at(-1)!;
    expect(last.complete).toBe(true);
    // 60 rows in 4 segments of pages of 10, then 63 points in pages of 10: at least 11 pages, so 4 or more runs.
    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(new Set(reports.map((report) => report.runId)).size).toBe(1);
    expect(reports.map((report) => report.invocations)).toEqual(reports.map((_, n) => n + 1));

    // Each difference found once, by exactly one of the runs, and the pass's counts are the union's.
    expect(driftOf(reports)).toEqual(expected);
    expect(last.byKind).toEqual({ missing: 5, orphan: 3, 'stale-version': 4, 'stale-payload': 3, 'wrong-model': 2, 'missing-vector': 0 });
    expect(last).toMatchObject({ personas: 60, points: 63, remaining: 0 });
    expect(last.repair!.actions.embedded + last.repair!.actions['payload-only']).toBe(14);
    expect(reports.flatMap((report) => report.repair!.remaining)).toEqual([]);
    expect((await indexDifferences()).drift).toEqual([]);
    // A finished pass clears its checkpoint: the next run starts a new pass.
    expect(await store().load(key())).toBeUndefined();
  });

  it('a run that fails mid-pass (Qdrant down during the index phase) is resumed from its last saved page', async () => {
    await injectDrift();
    const expected = await fullPassDrift();
    const deps = await reconcileDeps();
    let scrolls = 0;
    // The stage's client follows its secret through a Proxy; this one fails its third scroll.
    const flaky: typeof deps.qdrant = Object.assign(Object.create(deps.qdrant), {
      scroll: async (...args: Parameters<typeof deps.qdrant.scroll>) => {
        if (++scrolls === 3) throw new Error('fetch failed');
        return deps.qdrant.scroll(...args);
      },
    });
    await expect(reconcileIndex({ ...deps, qdrant: flaky }, { repair: true, pageSize: 10, checkpoint: { store: store(), key: key() } })).rejects.toThrow(/fetch failed/);
    const saved = (await store().load(key()))!.checkpoint;
    // The table phase and two index pages were done and saved; the third page is where it resumes.
    expect(saved).toMatchObject({ phase: 'index', segments: [{ done: true }, { done: true }, { done: true }, { done: true }] });
    expect(saved.indexOffset).toBeDefined();
    expect(saved.totals.points).toBe(20);

    const resumed = await reconcileIndex(deps, { repair: true, pageSize: 10, checkpoint: { store: store(), key: key() } });
    expect(resumed).toMatchObject({ complete: true, runId: saved.runId, invocations: 2, personas: 60, points: 63, remaining: 0 });
    // The pass's counts cover both runs: what the failed run found before its last save, and the rest.
    expect(resumed.byKind).toEqual({ missing: 5, orphan: 3, 'stale-version': 4, 'stale-payload': 3, 'wrong-model': 2, 'missing-vector': 0 });
    // The resumed run found only what the failed run had not reached (nothing twice, nothing missed).
    expect(expected).toEqual(expect.arrayContaining(driftOf([resumed])));
    const resumedCounts = countByKind(resumed.drift);
    for (const [kind, count] of Object.entries(resumed.byKind)) expect(saved.totals.byKind[kind as DriftKind] + resumedCounts[kind as DriftKind], kind).toBe(count);
    expect((await indexDifferences()).drift).toEqual([]);
    expect(await store().load(key())).toBeUndefined();
  });

  it('discards a checkpoint that expired, or was made for another collection or model, and starts over; a valid one is resumed', async () => {
    const deps = await reconcileDeps();
    const model = await collectionModel(env.qdrant, collection);
    const nowSeconds = Math.floor(Date.now() / 1000);
    // A checkpoint that claims the table phase is done: resumed, it would not look at the table again.
    const tableDone = (change: Partial<ReconcileCheckpoint>): ReconcileCheckpoint => ({
      format: 1,
      runId: randomUUID(),
      startedAt: new Date().toISOString(),
      invocations: 1,
      collection,
      model: modelLabel(model),
      phase: 'index',
      segments: Array.from({ length: 4 }, () => ({ done: true })),
      totals: { personas: 60, points: 0, byKind: countByKind([]), remaining: 0, errors: [], actions: { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 } },
      ...change,
    });
    const cases: [string, ReconcileCheckpoint, number, RegExp][] = [
      ['expired', tableDone({}), nowSeconds - 60, /expired/],
      ['another collection', tableDone({ collection: 'personas-before-reindex' }), nowSeconds + 3600, /collection personas-before-reindex, the alias now points at/],
      ['another model', tableDone({ model: 'some-other-model@main/q8' }), nowSeconds + 3600, /model some-other-model@main\/q8/],
    ];
    for (const [what, checkpoint, expiresAt, reason] of cases) {
      await env.qdrant.delete(collection, { wait: true, points: ids.slice(30, 32) });
      await store().save(key(), checkpoint, expiresAt);
      const report = await reconcileIndex(deps, { repair: true, checkpoint: { store: store(), key: key() } });
      expect(report.discardedCheckpoint, what).toMatch(reason);
      // A new pass from the start of the table: the deleted points are found and repaired.
      expect(report, what).toMatchObject({ complete: true, invocations: 1, personas: 60, byKind: { missing: 2 }, remaining: 0 });
      expect(report.runId, what).not.toBe(checkpoint.runId);
    }

    // The same checkpoint, current and for this collection and model, is resumed: the table is skipped.
    await env.qdrant.delete(collection, { wait: true, points: ids.slice(30, 32) });
    const valid = tableDone({});
    await store().save(key(), valid, nowSeconds + 3600);
    const resumed = await reconcileIndex(deps, { repair: true, checkpoint: { store: store(), key: key() } });
    expect(resumed).toMatchObject({ complete: true, runId: valid.runId, invocations: 2, byKind: { missing: 0 } });
    expect(resumed.discardedCheckpoint).toBeUndefined();
    expect((await indexDifferences()).drift.map((entry) => entry.kind)).toEqual(['missing', 'missing']);
    // The next pass (no checkpoint left) finds them.
    const next = await reconcileIndex(deps, { repair: true, checkpoint: { store: store(), key: key() } });
    expect(next.byKind.missing).toBe(2);
    expect((await indexDifferences()).drift).toEqual([]);
  });
});

describe('the scheduled reconciler function', () => {
  const inHandler = new AsyncLocalStorage<true>();
  const calls: { command: string; input: Record<string, any> }[] = [];

  /** `table -> actions` of the DynamoDB calls the handler made, as the IAM actions AWS authorizes them by. */
  const recordedActions = () => {
    const { personaTableName, idempotencyTableName } = tableConfig();
    const action = { GetCommand: 'GetItem', PutCommand: 'PutItem', DeleteCommand: 'DeleteItem', ScanCommand: 'Scan', BatchGetCommand: 'BatchGetItem' } as Record<string, string>;
    const out: Record<string, Set<string>> = {};
    for (const { command, input } of calls) {
      for (const table of input.RequestItems ? Object.keys(input.RequestItems) : [input.TableName as string]) {
        const name = table === personaTableName ? 'personas' : table === idempotencyTableName ? 'idempotency' : table;
        (out[name] ??= new Set()).add(action[command] ?? command);
      }
    }
    return Object.fromEntries(Object.entries(out).map(([table, actions]) => [table, [...actions].sort()]));
  };

  it('stops before the remaining time runs out, saves its position, resumes on the next invocation and publishes the whole pass\'s metrics and ReconcilePassesCompleted once; it calls exactly the DynamoDB actions the stack grants', async () => {
    await injectDrift();
    const expected = await fullPassDrift();
    process.env.RECONCILER_PAGE_SIZE = '10';
    const send = DynamoDBDocumentClient.prototype.send;
    vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: any, ...rest: any[]) {
      if (inHandler.getStore()) calls.push({ command: command.constructor.name, input: command.input });
      return (send as any).call(this, command, ...rest);
    } as any);
    const written: string[] = [];
    /** Per invocation: its ReconcilePassesCompleted values. */
    const passesCompleted: number[][] = [];
    const results: Record<string, unknown>[] = [];
    const checkpoints: Record<string, any>[] = [];
    try {
      for (let invocation = 0; invocation < 20; invocation++) {
        // Lambda's clock: 15 minutes for the first 5 questions (middy asks once at the start, for
        // its timeoutEarly; the reconciler before each page), then 5 s, less than its reserve.
        let asked = 0;
        const context = { ...lambdaContext('reconciler', 900_000), getRemainingTimeInMillis: () => (asked++ < 5 ? 900_000 : 5_000) };
        const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
          written.push(String(chunk));
          return true;
        });
        const before = written.length;
        try {
          results.push(await inHandler.run(true, () => reconcilerHandler({}, context)));
        } finally {
          stdout.mockRestore();
        }
        passesCompleted.push(
          written
            .slice(before)
            .flatMap((chunk) => chunk.split('\n'))
            .filter((line) => line.includes('"ReconcilePassesCompleted"'))
            .map((line) => (JSON.parse(line) as { ReconcilePassesCompleted: number }).ReconcilePassesCompleted),
        );
        const { Item } = await documents().send(new GetCommand({ TableName: tableConfig().idempotencyTableName, Key: { key: key() } }));
        if (results.at(-1)!.complete) {
          expect(Item).toBeUndefined();
          break;
        }
        checkpoints.push(Item!);
      }
    } finally {
      vi.mocked(DynamoDBDocumentClient.prototype.send).mockRestore();
      delete process.env.RECONCILER_PAGE_SIZE;
    }

    expect(results.length).toBeGreaterThanOrEqual(3);
    // Every invocation but the last made progress, then stopped when the remaining time ran low.
    for (const result of results.slice(0, -1)) {
      expect(result.complete).toBe(false);
      expect(result.pages).toBeGreaterThan(0);
      expect(result.pages).toBeLessThanOrEqual(4);
    }
    expect(new Set(results.map((result) => result.runId)).size).toBe(1);
    // The stored checkpoint: the run, its position, and a TTL about a day ahead, renewed by every save.
    const nowSeconds = Math.floor(Date.now() / 1000);
    for (const item of checkpoints) {
      expect(item.checkpoint.runId).toBe(results[0]!.runId);
      expect(item.expires_at).toBeGreaterThan(nowSeconds + 23 * 3600);
      expect(item.expires_at).toBeLessThanOrEqual(nowSeconds + 24 * 3600 + 5);
    }
    expect(checkpoints.map((item) => item.checkpoint.invocations)).toEqual(checkpoints.map((_, n) => n + 1));

    expect(results.at(-1)).toMatchObject({ complete: true, found: expected.length, remaining: 0 });
    const metrics = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('"DriftFound"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // Published once, by the invocation that finished the pass, for the whole pass.
    expect(metrics).toHaveLength(1);
    // ReconcilePassesCompleted (what the passes-stalled alarm waits for): 1, from the invocation that
    // finished the pass, in the same EMF document as the drift metrics; none from a paused one.
    expect(passesCompleted).toEqual([...results.slice(0, -1).map(() => []), [1]]);
    expect(metrics[0]).toMatchObject({ ReconcilePassesCompleted: 1, _aws: { CloudWatchMetrics: [{ Namespace: 'PersonaDb', Dimensions: [['service']] }] } });
    expect(metrics[0]).toMatchObject({ DriftFound: 17, DriftMissing: 5, DriftOrphan: 3, DriftStaleVersion: 4, DriftStalePayload: 3, DriftWrongModel: 2, DriftRepaired: 17, DriftRemaining: 0 });
    expect((await indexDifferences()).drift).toEqual([]);

    // What infra/personaDbStack.ts grants the reconciler (test/infra.test.ts checks the template).
    expect(recordedActions()).toEqual(Object.fromEntries(Object.entries(RECONCILER_TABLE_ACTIONS).map(([table, actions]) => [table, [...actions].sort()])));
    // ...and on the idempotency table only items whose key matches the grant's LeadingKeys patterns.
    const { idempotencyTableName } = tableConfig();
    const keys = calls.filter(({ input }) => input.TableName === idempotencyTableName).map(({ input }) => String((input.Key ?? input.Item).key));
    const granted = RECONCILER_IDEMPOTENCY_KEYS.map((pattern) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
    expect(keys.length).toBeGreaterThan(0);
    for (const key of new Set(keys)) expect(granted.some((pattern) => pattern.test(key)), key).toBe(true);
  });
});

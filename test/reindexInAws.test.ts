/**
 * `personas reindex --in-aws` against the whole local system (DynamoDB Local and its stream, the
 * local Qdrant server, the API and the stream indexer, the generated test model), with stand-ins
 * for what has no local emulator: Step Functions (test/support/stepFunctionsStandIn.ts, its API
 * shapes cited there) and S3 (test/support/s3StandIn.ts). An execution of the stand-in does what
 * the stack's state machine does, in its order, with the settings its ASL gives
 * (test/support/reindexStateMachine.ts: MaxConcurrency, the chunk's Retry): the export
 * (ExportTableToPointInTime, "a snapshot of the table's state" at the request:
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html,
 * written in DynamoDB's layout by test/support/tableExport.ts), the plan step, and the Distributed
 * Map's children (the backfill's own code). The bundled plan and backfill functions run on export
 * files in test/artifacts.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Readable } from 'node:stream';
import { buildStageConfig } from '../infra/stageConfig';
import { getEmbedder } from '../shared/embedding';
import { reindexCollection, type ReindexPhase } from '../shared/operations/collectionReindex';
import { compareIndex, readAllPoints, resolveCollection } from '../shared/operations/indexReconciler';
import { backfillChunk, BackfillTargetError, QdrantUnavailableError } from '../shared/reindexAtScale/backfillChunk';
import { planBackfill, type BackfillChunk, type ObjectStore } from '../shared/reindexAtScale/exportFiles';
import { stepFunctionsBackfill } from '../shared/reindexAtScale/stepFunctionsBackfill';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { runCli, testStage, waitFor } from './support/operationsHelpers';
import { mapStateSettings, reindexDefinition } from './support/reindexStateMachine';
import { startS3StandIn, type S3StandIn } from './support/s3StandIn';
import { startStepFunctionsStandIn, type StepFunctionsStandIn } from './support/stepFunctionsStandIn';
import { writeTableExport } from './support/tableExport';

const BUCKET = 'persona-db-dev-reindex';
let env: Awaited<ReturnType<typeof startTestSystem>>;
let s3: S3StandIn;
let sfn: StepFunctionsStandIn;
const settings = mapStateSettings(reindexDefinition(buildStageConfig('dev')));

/** What the test makes the next execution's children do. */
const behaviour = {
  /** Children wait for this before they start (a Map Run in progress). */
  gate: Promise.resolve() as Promise<void>,
  /** Chunks whose first attempt meets an unavailable Qdrant. */
  unavailableOnce: new Set<number>(),
  /** A chunk that fails for good. */
  failChunk: undefined as number | undefined,
  attempts: new Map<number, number>(),
};

const store: ObjectStore = {
  getText: async (bucket, key) => s3.get(bucket, key)?.toString('utf8') ?? Promise.reject(new Error(`NoSuchKey ${key}`)),
  putText: async (bucket, key, body) => s3.put(bucket, key, body),
};

beforeAll(async () => {
  env = await startTestSystem();
  for (let start = 0; start < 120; start += 60) {
    const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 60 }, (_, n) => samplePersona(start + n)) } });
    expect(created.status).toBe(200);
  }
  await env.system.streamWorker.drain(60_000);
  s3 = await startS3StandIn();
  const embedder = await getEmbedder();
  const stage = await testStage();
  sfn = await startStepFunctionsStandIn({
    stateMachineName: 'persona-db-dev-reindex',
    mapState: settings,
    // The ASL's Retry waits seconds; a hundredth of them here.
    retryTimeScale: 0.01,
    async run({ input, distributedMap }) {
      const collection = String(input.collection);
      // StartExport .. ExportFinished? COMPLETED: the table as of now, in the export layout.
      const exported = await writeTableExport(s3, stage.tables, { bucket: BUCKET, prefix: `reindex/${collection}`, partitions: 3 });
      // PlanChunks: 10 personas a chunk (the ASL passes 2,000), so that 120 personas make a dozen children.
      const plan = await planBackfill(store, { bucket: BUCKET, manifestSummaryKey: exported.summaryKey, workListKey: `reindex/${collection}/work-list.jsonl`, chunkItems: 10 });
      const items = s3.get(BUCKET, plan.workListKey)!.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as BackfillChunk);
      // Backfill: each child gets the ItemSelector's {collection, bucket, chunk}.
      const map = await distributedMap(items, async (item) => {
        const index = items.indexOf(item as BackfillChunk);
        await behaviour.gate;
        const attempt = (behaviour.attempts.get(index) ?? 0) + 1;
        behaviour.attempts.set(index, attempt);
        if (behaviour.unavailableOnce.has(index) && attempt === 1) throw new QdrantUnavailableError(new Error('HTTP 503 Service Unavailable'));
        if (behaviour.failChunk === index) throw new BackfillTargetError(`refusing to backfill '${collection}': a test says so`);
        return backfillChunk(
          { qdrant: stage.qdrant, embedder, alias: stage.alias, openObject: async (bucket, key) => Readable.from([s3.get(bucket, key)!]) },
          { collection, bucket: BUCKET, chunk: item as BackfillChunk },
        );
      });
      return { ...input, plan, backfill: { MapRunArn: map.MapRunArn, ResultWriterDetails: { Bucket: BUCKET, Key: `reindex/results/${randomUUID()}/manifest.json` } } };
    },
  });
  process.env.AWS_ENDPOINT_URL_SFN = sfn.endpoint;
}, 300_000);

afterAll(async () => {
  await sfn?.settled();
  await sfn?.close();
  await s3?.close();
  await env?.system.stop();
});

const sfnClient = () => new SFNClient({ region: 'us-east-1', endpoint: sfn.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

describe('personas reindex --in-aws', () => {
  it('reads the ASL of the stack: the stand-in runs the Map with its MaxConcurrency and the chunk\'s Retry on QdrantUnavailable', () => {
    expect(settings.maxConcurrency).toBe(buildStageConfig('dev').reindexAtScale.maxConcurrency);
    expect(settings.retry.some((entry) => entry.ErrorEquals.includes('QdrantUnavailable'))).toBe(true);
  });

  it('export, plan and Distributed Map fill the new collection; deletes, creates and patches during the backfill are all in it; verified, swapped, drained, dropped', async () => {
    const stage = await testStage();
    const embedder = await getEmbedder();
    const from = await resolveCollection(stage.qdrant, stage.alias);
    const ids = (await readAllPoints(stage.qdrant, from)).map((point) => point.id);
    let open!: () => void;
    behaviour.gate = new Promise((resolve) => (open = resolve));
    behaviour.unavailableOnce = new Set([0, 3]);
    behaviour.attempts.clear();
    const phases: ReindexPhase[] = [];
    const deleted = ids.slice(0, 5);
    const patched = ids.slice(5, 10);
    const created: string[] = [];

    const running = reindexCollection(
      { repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder },
      {
        backfill: stepFunctionsBackfill({ sfn: sfnClient(), stateMachineArn: sfn.stateMachineArn, qdrant: stage.qdrant, pollMs: 50 }),
        verification: 'paged',
        graceMs: 1_000,
        onPhase: (phase) => void phases.push(phase),
      },
    );
    // While the export exists and the children wait: personas in the export are deleted (a child
    // writes them again afterwards: Qdrant's update_filter guards only points that exist), others
    // patched, new ones created (not in the export).
    await waitFor(() => ([...sfn.executions.values()].some((execution) => execution.mapRuns.length > 0) ? true : undefined), 60_000, 'the Map Run starts');
    for (const id of deleted) expect((await env.api('DELETE', `/personas/${id}`)).status).toBe(204);
    for (const id of patched) {
      const response = await env.api('PATCH', `/personas/${id}`, { body: { beliefs: ['changed while the export was embedded'] }, headers: { 'content-type': 'application/merge-patch+json' } });
      expect(response.status).toBe(200);
    }
    for (const n of [501, 502, 503]) created.push((await env.api('POST', '/personas', { body: samplePersona(n) })).json.id);
    open();
    const report = await running;

    expect(phases).toEqual(['created', 'backfilled', 'verified', 'swapped', 'drained', 'dropped']);
    // The tail re-synced the deleted ones after the Map Run, so the verification had nothing left to repair.
    expect(report.repairedBeforeSwap).toBe(0);
    expect(report.backfill).toMatchObject({ personas: ids.length, by: expect.stringContaining('persona-db-dev-reindex') });
    expect(behaviour.attempts.get(0)).toBe(2);
    expect(behaviour.attempts.get(3)).toBe(2);
    expect(await resolveCollection(stage.qdrant, stage.alias)).toBe(report.to.collection);
    expect((await stage.qdrant.collectionExists(from)).exists).toBe(false);
    const { drift, personas } = await compareIndex(stage, report.to.collection, embedder.model);
    expect(drift).toEqual([]);
    expect(personas).toBe(ids.length - deleted.length + created.length);
    const points = new Map((await readAllPoints(stage.qdrant, report.to.collection)).map((point) => [point.id, point]));
    for (const id of deleted) expect(points.has(id), id).toBe(false);
    for (const id of created) expect(points.has(id), id).toBe(true);
    const rows = await stage.repository.getMany(patched);
    for (const id of patched) expect(points.get(id)?.payload.version).toBe(rows.get(id)!.version);
  }, 300_000);

  it('the CLI interrupted during the Map Run leaves the execution running; run again, it re-attaches, opens the tail at the execution\'s start and finishes', async () => {
    const stage = await testStage();
    const from = await resolveCollection(stage.qdrant, stage.alias);
    let open!: () => void;
    behaviour.gate = new Promise((resolve) => (open = resolve));
    behaviour.unavailableOnce = new Set();
    const cliEnv = { AWS_ENDPOINT_URL_SFN: sfn.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const args = ['reindex', '--in-aws', '--state-machine', sfn.stateMachineArn, '--grace-seconds', '1', '--json'];
    const first = await runCli(args, {
      env: cliEnv,
      whileRunning: (child) =>
        void waitFor(() => ([...sfn.executions.values()].some((execution) => execution.status === 'RUNNING' && execution.mapRuns.length > 0) ? true : undefined), 120_000, 'the Map Run starts').then(() => child.kill('SIGINT')),
    });
    expect(first.code, first.stderr).toBe(130);
    expect(first.stderr).toMatch(/keeps running in AWS; run the same command again to re-attach/);
    const execution = [...sfn.executions.values()].find((candidate) => candidate.status === 'RUNNING')!;
    expect(execution).toBeDefined();

    // Written while no CLI runs: after the cut, so only a tail opened at the execution's start sees it.
    const late = (await env.api('POST', '/personas', { body: samplePersona(777) })).json.id as string;
    open();
    const second = await runCli(args, { env: cliEnv });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/reindex: attached: .*execution .* (running|succeeded)/);
    const report = JSON.parse(second.stdout);
    expect(report).toMatchObject({ from: { collection: from }, attached: expect.stringContaining(execution.name) });
    expect(sfn.executions.size).toBeGreaterThan(0);
    expect([...sfn.executions.values()].filter((candidate) => candidate.input === execution.input)).toHaveLength(1);
    expect(await resolveCollection(stage.qdrant, stage.alias)).toBe(report.to.collection);
    expect((await stage.qdrant.retrieve(report.to.collection, { ids: [late] })).length).toBe(1);
    expect((await compareIndex(stage, report.to.collection, (await getEmbedder()).model)).drift).toEqual([]);
  }, 300_000);

  it('a chunk that fails for good fails the Map Run (no failure tolerated): the reindex names it, drops its collection, and the alias stays', async () => {
    const stage = await testStage();
    const embedder = await getEmbedder();
    const from = await resolveCollection(stage.qdrant, stage.alias);
    behaviour.gate = Promise.resolve();
    behaviour.failChunk = 1;
    let target: string | undefined;
    try {
      await expect(
        reindexCollection(
          { repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder },
          {
            backfill: stepFunctionsBackfill({ sfn: sfnClient(), stateMachineArn: sfn.stateMachineArn, qdrant: stage.qdrant, pollMs: 50 }),
            onPhase: (phase, detail) => {
              if (phase === 'created') target = detail.split(' ')[0];
            },
          },
        ),
      ).rejects.toThrow(/backfill execution .* failed: States\.ExceedToleratedFailureThreshold .*BackfillTargetRefused.*Map Run: \d+\/\d+ chunks done, 0 running, 1 failed/);
    } finally {
      behaviour.failChunk = undefined;
    }
    expect(target).toMatch(/-v\d+$/);
    expect((await stage.qdrant.collectionExists(target!)).exists).toBe(false);
    expect(await resolveCollection(stage.qdrant, stage.alias)).toBe(from);
  }, 300_000);
});

/**
 * `personas import --in-aws FILE` against the whole local system (DynamoDB Local and its stream,
 * the local Qdrant server, the API and the stream indexer, the generated test model), with
 * stand-ins for what has no local emulator: Step Functions (test/support/stepFunctionsStandIn.ts,
 * its API shapes cited there) and S3 (test/support/s3StandIn.ts, reached by the real SDK client
 * through AWS_ENDPOINT_URL_S3). An execution of the stand-in does what the stack's import state
 * machine does (infra/importAtScale.ts), with the settings its ASL gives (MaxConcurrency, the
 * writer's Retry: test/support/reindexStateMachine.ts): the Distributed Map reads the work list the
 * CLI staged (JSONL ItemReader), each child is the writer's own code (writeImportChunk) on DynamoDB
 * Local, and the ResultWriter's files are written as Step Functions documents them
 * (test/support/mapRunResults.ts). The bundled writer runs on staged files in test/artifacts.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStageConfig } from '../infra/stageConfig';
import { IMPORT_MAP_LABEL } from '../infra/importAtScale';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { createS3Client, s3ObjectStore } from '../shared/aws/s3';
import { tableConfig } from '../shared/config';
import { importKeys, ImportRefusedError, writeImportChunk, type ImportChunkEvent, type ImportChunkRef } from '../shared/importAtScale/importChunk';
import { ImportExecutionFailedError, importInAws, type ImportExecutionInput, type ImportInAwsProgress } from '../shared/importAtScale/importInAws';
import { describeProgress } from '../bin/progressBar';
import { sha256OfFile } from '../shared/operations/personaImport';
import { importRowId } from '../shared/persona/personaService';
import type { Persona } from '../shared/persona/schema';
import { personaRepository, personaRepositoryFor } from '../shared/persona/personaRepository';
import { startTestSystem } from './support/localSystem';
import { writeMapRunResults } from './support/mapRunResults';
import { filePersona, indexDifferences, runCli, tablePersonas, waitFor, writeJsonLines } from './support/operationsHelpers';
import { importDefinition, importMapStateSettings } from './support/reindexStateMachine';
import { startS3StandIn, type S3StandIn } from './support/s3StandIn';
import { startStepFunctionsStandIn, type StepFunctionsStandIn } from './support/stepFunctionsStandIn';

const BUCKET = 'persona-db-dev-reindex';
const config = buildStageConfig('dev');
const settings = importMapStateSettings(importDefinition(config));
let env: Awaited<ReturnType<typeof startTestSystem>>;
let s3: S3StandIn;
let sfn: StepFunctionsStandIn;

/** What the test makes the next execution's children do. */
const behaviour = {
  gate: Promise.resolve() as Promise<void>,
  /** Chunks held until their promise settles (the others run). */
  hold: new Map<number, Promise<void>>(),
  /** Chunks whose first attempt meets DynamoDB throttling of 3 of its rows, past the writer's own retries. */
  throttledOnce: new Set<number>(),
  /** Chunks that fail for good (not retried). */
  refuse: new Set<number>(),
  attempts: new Map<string, number>(),
};

const sfnClient = () => new SFNClient({ region: 'us-east-1', endpoint: sfn.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const store = () => s3ObjectStore(createS3Client());
const readLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);

beforeAll(async () => {
  env = await startTestSystem();
  s3 = await startS3StandIn();
  process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint;
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  const tables = tableConfig();
  const documents = createDocumentClient(tables);
  sfn = await startStepFunctionsStandIn({
    stateMachineName: 'persona-db-dev-import',
    mapLabel: IMPORT_MAP_LABEL,
    mapState: settings,
    retryTimeScale: 0.01,
    async run({ input, distributedMap }) {
      const execution = input as unknown as ImportExecutionInput;
      // WriteChunks: the ItemReader reads the work list (JSON lines); each child gets the ItemSelector's fields.
      const items = s3.get(BUCKET, execution.workListKey)!.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as ImportChunkRef);
      const events: ImportChunkEvent[] = items.map((chunk) => ({ importId: execution.importId, fileSha256: execution.fileSha256, tenant: execution.tenant, bucket: BUCKET, chunk }));
      const map = await distributedMap(events, async (item) => {
        const event = item as ImportChunkEvent;
        await behaviour.gate;
        await behaviour.hold.get(event.chunk.n);
        const key = `${event.importId}/${event.chunk.n}`;
        const attempt = (behaviour.attempts.get(key) ?? 0) + 1;
        behaviour.attempts.set(key, attempt);
        if (behaviour.refuse.has(event.chunk.n)) throw new ImportRefusedError(`chunk ${event.chunk.n}: a test says so`);
        const repositoryFor = (tenant: string | undefined) => {
          const repository = personaRepository(documents, { personas: tables.personaTableName, idempotency: tables.idempotencyTableName }, tenant);
          if (!behaviour.throttledOnce.has(event.chunk.n) || attempt > 1) return repository;
          // DynamoDB throttles three rows on every try of this attempt (what createMany reports after the SDK's retries).
          return {
            async createMany(personas: readonly Persona[], options?: { concurrency?: number }) {
              const throttled = new Set(personas.slice(0, 3).map((persona) => persona.id));
              const outcomes = await repository.createMany(personas.filter((persona) => !throttled.has(persona.id)), options);
              for (const id of throttled) outcomes.set(id, { kind: 'failed', reason: 'ProvisionedThroughputExceededException' });
              return outcomes;
            },
          };
        };
        return writeImportChunk({ store: store(), tenancy: 'single', repositoryFor, throttleBackoffMs: 1 }, event);
      });
      const write = writeMapRunResults(s3, { bucket: BUCKET, prefix: settings.resultsPrefix, mapRunArn: map.MapRunArn, stateMachineArn: sfn.stateMachineArn }, events.map((event, n) => ({ input: event, output: map.results[n] })));
      return { ...input, write };
    },
  });
}, 300_000);

afterAll(async () => {
  await sfn?.settled();
  await sfn?.close();
  await s3?.close();
  await env?.system.stop();
});

const named = async (prefix: string) => (await tablePersonas()).filter((persona) => persona.name.startsWith(`${prefix} `));

describe('personas import --in-aws', () => {
  it('reads the ASL of the stack: the stand-in runs the Map with its MaxConcurrency and the writer\'s Retry on ImportThrottled', () => {
    expect(settings.maxConcurrency).toBe(config.importAtScale.maxConcurrency);
    expect(settings.retry.some((entry) => entry.ErrorEquals.includes('ImportThrottled'))).toBe(true);
    expect(settings.retry.some((entry) => entry.ErrorEquals.includes('ImportRefused') || entry.ErrorEquals.includes('States.ALL'))).toBe(false);
  });

  it('validates and stages the file, writes every valid row once as the API stores a persona, reports rejected rows as `personas import` does; the indexer embeds them', async () => {
    const file = join(env.workDir, 'load.jsonl');
    const rows: unknown[] = Array.from({ length: 60 }, (_, n) => filePersona('Load', n));
    rows.splice(7, 0, { ...filePersona('Load', 9_001), traits: { openness: 2 } });
    rows.splice(30, 0, JSON.stringify('not a persona'));
    // As `personas export` writes rows: server-managed fields and a tenant are dropped, the row is new.
    rows.push({ ...filePersona('Load', 60), id: 'f00dfeed-0000-4000-8000-000000000000', version: 7, created_at: '2020-01-01T00:00:00.000Z', tenant_id: 'other' });
    writeJsonLines(file, rows);
    behaviour.throttledOnce = new Set([2]);
    behaviour.attempts.clear();
    const phases: string[] = [];

    const report = await importInAws({ file, bucket: BUCKET, stateMachineArn: sfn.stateMachineArn, sfn: sfnClient(), store: store(), chunkRows: 8, pollMs: 20, onPhase: (phase) => void phases.push(phase) });
    expect(phases).toEqual(['staging', 'staged', 'started']);
    // Chunk 2's first attempt wrote 5 rows and was throttled on 3 (ImportThrottled, no done marker); its retry (the ASL's Retry) wrote the 3 and found the 5.
    expect(report).toMatchObject({ format: 'jsonl', rows: 63, valid: 61, rejected: 2, rejectedByWriters: 0, chunks: 8, created: 56, existing: 5, chunksAlreadyDone: 0, attempt: 1, attached: false });
    expect(report.resultsManifest).toMatch(/^s3:\/\/persona-db-dev-reindex\/import\/results\/.+\/manifest\.json$/);
    expect(behaviour.attempts.get(`${report.importId}/2`)).toBe(2);

    const rejections = readLines(report.reportFile!);
    expect(rejections.map((rejection) => rejection.index)).toEqual([7, 30]);
    expect(rejections[0]!.errors).toEqual(expect.arrayContaining([expect.objectContaining({ pointer: '#/traits/openness', detail: 'must be between 0 and 1' })]));
    expect(rejections[1]!.errors).toEqual([{ pointer: '#', detail: 'must be a JSON object, not string' }]);

    const stored = await named('Load');
    expect(stored).toHaveLength(61);
    const sha = await sha256OfFile(file);
    // Ids from the rule of importRowId (row index in the file), the item the API stores: version 1, one timestamp, keys in schema order.
    const byName = new Map(stored.map((persona) => [persona.name, persona]));
    const exported = byName.get('Load 60')!;
    expect(exported.id).toBe(importRowId(undefined, sha, 62));
    expect(exported).toMatchObject({ version: 1 });
    expect(exported.created_at).toBe(exported.updated_at);
    expect(exported.created_at > '2021').toBe(true);
    expect(exported).not.toHaveProperty('tenant_id');
    const viaApi = await env.api('POST', '/personas', { body: filePersona('Shape', 1) });
    expect(viaApi.status).toBe(201);
    const apiRow = (await named('Shape'))[0]!;
    expect(Object.keys(exported)).toEqual(Object.keys(apiRow));
    expect(byName.get('Load 0')!.id).toBe(importRowId(undefined, sha, 0));

    await env.system.streamWorker.drain(120_000);
    const { drift, personas, points } = await indexDifferences();
    expect(drift).toEqual([]);
    expect(points).toBe(personas);
  }, 300_000);

  it('idempotent per row: a re-run re-attaches to the finished execution; a retried chunk creates nothing twice and overwrites no newer version; a finished chunk is not written again', async () => {
    const file = join(env.workDir, 'load.jsonl');
    const sha = await sha256OfFile(file);
    const before = await named('Load');
    const executions = sfn.executions.size;
    const again = await importInAws({ file, bucket: BUCKET, stateMachineArn: sfn.stateMachineArn, sfn: sfnClient(), store: store(), chunkRows: 8, pollMs: 20 });
    expect(again).toMatchObject({ attempt: 1, attached: true, created: 56, existing: 5, rejected: 2 });
    expect(sfn.executions.size).toBe(executions);
    expect(await named('Load')).toHaveLength(before.length);

    // A user changes one persona of chunk 0 and deletes another after the import wrote them.
    const repository = personaRepositoryFor(tableConfig());
    const changed = importRowId(undefined, sha, 1);
    const deleted = importRowId(undefined, sha, 2);
    const current = (await repository.get(changed))!;
    await repository.replace({ ...current, beliefs: ['changed after the import'], version: 2, updated_at: new Date().toISOString() }, 1);
    await repository.delete(deleted);
    const tables = tableConfig();
    const deps = { store: store(), tenancy: 'single' as const, repositoryFor: (tenant: string | undefined) => personaRepositoryFor(tables, tenant) };
    const event: ImportChunkEvent = { importId: again.importId, fileSha256: sha, tenant: null, bucket: BUCKET, chunk: { n: 0, key: importKeys(again.importId).chunk(0), rows: 8 } };

    // A Map retry of chunk 0 after its done marker was written: nothing written, the deleted persona stays deleted.
    const done = await writeImportChunk(deps, event);
    expect(done).toMatchObject({ alreadyDone: true, created: 0, existing: 8 });
    expect(await repository.get(deleted)).toBeUndefined();
    // A retry of an attempt that died after its puts, before its marker: every row is found, none overwritten.
    s3.delete(BUCKET, importKeys(again.importId).done(0));
    const retried = await writeImportChunk(deps, event);
    expect(retried).toMatchObject({ alreadyDone: false, created: 1, existing: 7, rejected: 0 });
    expect((await repository.get(changed))!).toMatchObject({ version: 2, beliefs: ['changed after the import'] });
    // (Only here, with its marker gone, does the deleted persona come back: docs/operations.md says when.)
    expect((await repository.get(deleted))!.version).toBe(1);
    expect(await named('Load')).toHaveLength(before.length);
  }, 120_000);

  it('a chunk that fails for good fails the execution (no failure tolerated); the same command again starts attempt 2, which skips the finished chunks and writes the rest', async () => {
    const file = join(env.workDir, 'fail.jsonl');
    writeJsonLines(file, Array.from({ length: 40 }, (_, n) => filePersona('Fail', n)));
    behaviour.refuse = new Set([3]);
    behaviour.throttledOnce = new Set();
    behaviour.attempts.clear();
    const options = { file, bucket: BUCKET, stateMachineArn: sfn.stateMachineArn, sfn: sfnClient(), store: store(), chunkRows: 5, pollMs: 20 };
    let failure: unknown;
    try {
      await importInAws(options);
    } catch (error) {
      failure = error;
    } finally {
      behaviour.refuse = new Set();
    }
    expect(failure).toBeInstanceOf(ImportExecutionFailedError);
    // (The Map state's own error; which child failed and why is in the results and the writer's logs, not in the execution's cause.)
    expect(String(failure)).toMatch(/execution import-[0-9a-f]{32}-1 failed: States\.ExceedToleratedFailureThreshold .*Map Run: \d+\/8 chunks done, 0 running, 1 failed.*FAILED_\*\.json under import\/results\/.*Run the same command again/);
    const written = (await named('Fail')).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(40);

    const phases: string[] = [];
    const report = await importInAws({ ...options, onPhase: (phase, detail) => void phases.push(`${phase}: ${detail}`) });
    expect(phases[0]).toMatch(/^staged: already staged/);
    expect(phases[1]).toMatch(/^attached: attempt 1 .* failed: States\.ExceedToleratedFailureThreshold; starting attempt 2$/);
    expect(report).toMatchObject({ attempt: 2, attached: false, valid: 40 });
    expect(report.chunksAlreadyDone).toBeGreaterThan(0);
    expect(report.created + report.existing).toBe(40);
    expect(report.created).toBe(40 - written);
    expect(await named('Fail')).toHaveLength(40);
  }, 120_000);

  it('progress: the staging by bytes, then the rows of finished chunks out of the valid rows with the Map Run\'s counts, which the bar shows with rate and ETA', async () => {
    const file = join(env.workDir, 'progress.jsonl');
    writeJsonLines(file, Array.from({ length: 20 }, (_, n) => filePersona('Progress', n)));
    let release!: () => void;
    behaviour.hold = new Map([[3, new Promise<void>((resolve) => (release = resolve))]]);
    const samples: ImportInAwsProgress[] = [];
    try {
      const importing = importInAws({ file, bucket: BUCKET, stateMachineArn: sfn.stateMachineArn, sfn: sfnClient(), store: store(), chunkRows: 5, pollMs: 20, onProgress: (sample) => void samples.push(sample) });
      // Chunks 0-2 finish, chunk 3 is held: DescribeMapRun says 3 of 4 succeeded, 1 running.
      const partial = await waitFor(() => samples.find((sample) => sample.phase === 'writing' && sample.note?.startsWith('3/4')), 60_000, 'three of four chunks done');
      release();
      const report = await importing;
      expect(samples[0]).toMatchObject({ phase: 'staging', total: readFileSync(file).length });
      expect(partial).toMatchObject({ done: 15, total: 20, rows: 15, note: '3/4 chunks done, 1 running, 0 failed' });
      // What the CLI hands its progress bar (bin/personas.ts) for such a sample.
      const line = describeProgress({ done: partial.done, total: partial.total, items: partial.rows, unit: 'personas written (estimated)', elapsedMs: partial.elapsedMs, note: partial.note! });
      expect(line).toMatch(/\] {2}75% 15 personas written \(estimated\) \d+\/s ETA \d+:\d\d 3\/4 chunks done, 1 running, 0 failed$/);
      expect(report).toMatchObject({ valid: 20, created: 20, chunks: 4 });
      expect(await named('Progress')).toHaveLength(20);
    } finally {
      release();
      behaviour.hold = new Map();
    }
  }, 120_000);

  it('the CLI interrupted during the Map Run leaves the execution running; run again, it re-attaches and reports it (one execution, every row once)', async () => {
    const file = join(env.workDir, 'cli.csv');
    const header = 'name,domain,modes,humor_usage,emotional_style,beliefs,signature_phrases,openness,conscientiousness,extraversion,agreeableness,neuroticism';
    const lines = Array.from({ length: 30 }, (_, n) => `CLI ${n},music;jazz,Performer,low,calm,belief ${n},phrase ${n},0.5,0.5,0.5,0.5,0.5`);
    writeFileSync(file, [header, ...lines, 'CLI bad,,Performer,low,calm,b,p,0.5,0.5,0.5,0.5,0.5'].join('\n') + '\n');
    let open!: () => void;
    behaviour.gate = new Promise((resolve) => (open = resolve));
    const cliEnv = { AWS_ENDPOINT_URL_SFN: sfn.endpoint, AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
    const args = ['import', file, '--in-aws', '--state-machine', sfn.stateMachineArn, '--bucket', BUCKET, '--json'];
    const running = () => [...sfn.executions.values()].find((execution) => execution.status === 'RUNNING' && execution.mapRuns.length > 0);
    const first = await runCli(args, { env: cliEnv, whileRunning: (child) => void waitFor(() => (running() ? true : undefined), 120_000, 'the Map Run starts').then(() => child.kill('SIGINT')) });
    expect(first.code, first.stderr).toBe(130);
    expect(first.stderr).toMatch(/import: started: execution import-[0-9a-f]{32}-1: 1 chunks, 30 rows/);
    expect(first.stderr).toMatch(/keeps running in AWS once started; run the same command again to re-attach/);
    const execution = running()!;
    expect(execution.status).toBe('RUNNING');

    open();
    const second = await runCli(args, { env: cliEnv });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/import: staged: already staged .* 30 valid rows in 1 chunks, 1 rejected/);
    expect(second.stderr).toMatch(/import: attached: execution import-[0-9a-f]{32}-1 (running|succeeded)/);
    const report = JSON.parse(second.stdout);
    expect(report).toMatchObject({ format: 'csv', rows: 31, valid: 30, rejected: 1, created: 30, attempt: 1, attached: true, execution: execution.name, reportFile: `${file}.rejected.jsonl` });
    expect([...sfn.executions.values()].filter((candidate) => candidate.input === execution.input)).toHaveLength(1);
    expect(await named('CLI')).toHaveLength(30);
    expect(readLines(`${file}.rejected.jsonl`)).toEqual([expect.objectContaining({ index: 30, line: 32, errors: expect.arrayContaining([expect.objectContaining({ pointer: '#/domain' })]) })]);
  }, 300_000);

  it('usage: --in-aws needs the state machine and the bucket, and takes none of the API import\'s flags; --tenant is for --in-aws', async () => {
    const file = join(env.workDir, 'load.jsonl');
    const bare = { IMPORT_STATE_MACHINE_ARN: '', IMPORT_BUCKET: '' };
    const noMachine = await runCli(['import', file, '--in-aws', '--bucket', BUCKET], { env: bare });
    expect(noMachine.code).toBe(2);
    expect(noMachine.stderr).toMatch(/--in-aws needs the import state machine: --state-machine ARN or IMPORT_STATE_MACHINE_ARN \(the stack output ImportStateMachineArn\)/);
    const noBucket = await runCli(['import', file, '--in-aws', '--state-machine', sfn.stateMachineArn], { env: bare });
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(/--bucket NAME or IMPORT_BUCKET \(the stack output ImportBucketName\)/);
    const batch = await runCli(['import', file, '--in-aws', '--state-machine', sfn.stateMachineArn, '--bucket', BUCKET, '--batch-size', '10']);
    expect(batch.code).toBe(2);
    expect(batch.stderr).toMatch(/--batch-size is for an import through the API/);
    const tenant = await runCli(['import', file, '--tenant', 'acme']);
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toMatch(/--tenant is for --in-aws; through the API the token's tenant decides/);
  }, 120_000);
});

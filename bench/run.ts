/**
 * `npm run bench`: the performance figures of the whole system on this machine, separate from
 * the tests. Fixed seeds (bench/personaCorpus.ts), its own DynamoDB Local and Qdrant server on
 * free ports. Every phase runs with two generated models, side by side: the test model (no
 * transformer layers: the system's own overhead) and the MEANINGLESS bge-small-shaped model
 * (bge-small-en-v1.5's architecture and cost, random weights), on which the targets are judged;
 * EMBEDDING_MODEL_DIR names one real model to run instead. Prints the machine, a markdown table
 * and the Lambda sizing table, and writes everything measured to bench/results/<date>-<models>.json.
 *
 * Options (environment): BENCH_QUICK=1 shortens every phase (a smoke run; its figures are not
 * comparable), BENCH_SKIP=phase,phase skips phases (embedding, lag, import, search100k, coldstart, edge),
 * BENCH_MODELS=test or bge-shaped runs one of the two generated models. The console phase (page
 * load in Chromium, see test/support/browser.ts) runs once, on the first import phase of the full
 * size; BENCH_SKIP=console skips it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import { lambdaIntraOpThreads } from '../infra/lambdaCpu';
import { stageDefaults } from '../infra/stageConfig';
import { generateBgeShapedModel } from '../lib/generatedModels/bgeShapedModel';
import { generateTestModel } from '../lib/generatedModels/testModel';
import { createEmbedder } from '../shared/embedding';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { routes } from '../shared/routes';
import { indexerStreamSettings } from '../shared/streamSettings';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { apiClient } from '../test/support/apiClient';
import { createDataset, startApiProcess, startIndexerProcess, startInfrastructure, type ServiceProcess } from './benchSystem';
import { buildWebAssets } from '../web/build';
import { measureBulkImport } from './bulkImport';
import { measureConsoleLoad } from './consoleLoad';
import { coldStartTargets, measureColdStarts } from './coldStart';
import { measureCeiling, measureIndexerComparison, measureNaive, rawModelOf } from './embeddingThroughput';
import { ASSUMED_QDRANT_POINTS_PER_SECOND, backfillSizing, backfillSizingMarkdown, measureBackfillRate } from './backfillRate';
import { machineInfo } from './machineInfo';
import { benchPersona, benchStoredPersona, BENCH_SEED } from './personaCorpus';
import { measureOnnxSettings } from './onnxSettings';
import { markdownTable, sizingMarkdown, sizingTable, type BenchResults, type ModelResults } from './resultsReport';
import { edgeComparisonMarkdown, measureEdgeComparison } from './qdrantEdgeLatency';
import { measureSearchLatency, seedIndexDirectly } from './searchLatency';
import { runLag, type LagRunResult } from './syncLag';
import { measureVectorFidelity } from './vectorFidelity';

const quick = process.env.BENCH_QUICK === '1';
/** EMBEDDING_THREADS of the dev stage's indexer: the ceiling comparison runs both sides with it. */
const indexerThreads = lambdaIntraOpThreads(stageDefaults.dev.functions.indexer.memoryMb);
const skip = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
/** Files a run writes on the way (import files, bundles); ignored by git. */
const scratchDir = path.join(PROJECT_ROOT, 'bench', 'scratch');
const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

let consoleMeasured = false;

/** Sizes and durations of every phase; quick mode only checks that everything runs. */
const plan = quick
  ? { texts: 256, fidelityTexts: 16, batchSizes: [1, 8, 32], timing: { budgetMs: 300, repetitions: 2 }, rounds: 2, naive: 5, backfillChunk: 256, backfillRounds: 2, lagMs: 4_000, stepRates: [50], stepMs: 4_000, importCount: 1_000, searchSizes: [300, 1_000, 2_000], searchRequests: 30, largestSearchRequests: 10, coldRuns: 1, consoleRuns: 2 }
  : { texts: 2_048, fidelityTexts: 128, batchSizes: [1, 4, 8, 16, 32, 64, 128], timing: { budgetMs: 1_000, repetitions: 3 }, rounds: 7, naive: 40, backfillChunk: 2_000, backfillRounds: 5, lagMs: 20_000, stepRates: [50, 75, 100, 150, 200, 300, 400, 600], stepMs: 15_000, importCount: 10_000, searchSizes: [1_000, 10_000, 100_000], searchRequests: 300, largestSearchRequests: 100, coldRuns: 3, consoleRuns: 5 };

interface BenchModel {
  label: string;
  source: string;
  dir: string;
  judged: boolean;
}

/** The models to run: EMBEDDING_MODEL_DIR alone, else the test model and the bge-small-shaped one (BENCH_MODELS=test or bge-shaped picks one). */
async function benchModels(): Promise<BenchModel[]> {
  if (process.env.EMBEDDING_MODEL_DIR) return [{ label: path.basename(process.env.EMBEDDING_MODEL_DIR), source: 'EMBEDDING_MODEL_DIR', dir: process.env.EMBEDDING_MODEL_DIR, judged: true }];
  const wanted = new Set((process.env.BENCH_MODELS ?? 'test,bge-shaped').split(',').filter(Boolean));
  const models: BenchModel[] = [];
  if (wanted.has('test')) models.push({ label: 'test model (no layers)', source: 'generated test model', dir: (await generateTestModel()).dir, judged: false });
  if (wanted.has('bge-shaped')) {
    const generated = await generateBgeShapedModel();
    models.push({ label: 'bge-small-shaped (MEANINGLESS random weights)', source: 'generated bge-small-shaped model (random weights)', dir: generated.dir, judged: true });
  }
  return models;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const machine = machineInfo();
  Object.assign(process.env, {
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  console.log(`persona-db benchmark${quick ? ' (QUICK: smoke run, figures not comparable)' : ''}`);
  console.log(`machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}`);
  console.log(`load average at start: ${machine.loadAverage.start}; commit ${machine.gitCommit}${machine.gitDirty ? ' (uncommitted changes)' : ''}; seed ${BENCH_SEED}`);
  const models = await benchModels();
  const results: BenchResults = { machine, quick, seed: BENCH_SEED, models: [] };
  for (const model of models) {
    log(`=== model: ${model.label} (${model.dir}); load average ${os.loadavg()[0]!.toFixed(2)}`);
    results.models.push(await benchModel(model));
  }

  const judged = results.models.find((model) => model.judged);
  const settings = judged?.onnxSettings;
  if (judged && settings) {
    const indexerMiB = Math.max(judged.memory?.lagPhase?.indexerMiB ?? 0, judged.memory?.importPhase?.indexerMiB ?? 0) || undefined;
    results.sizing = sizingTable(judged.label, settings.perPersona, indexerMiB, indexerStreamSettings.batchSize);
  }
  results.backfillSizing = judged?.backfill?.sizing;
  if (!skip.has('edge')) {
    // The local Qdrant server's engine against Qdrant Edge's, once per run (no model involved).
    log(`=== local Qdrant server vs Qdrant Edge; load average ${os.loadavg()[0]!.toFixed(2)}`);
    results.edge = await measureEdgeComparison(quick ? [1_000] : [10_000, 100_000], quick ? 10 : 100);
  }
  machine.loadAverage.end = Math.round(os.loadavg()[0]! * 100) / 100;
  results.totalSeconds = Math.round((performance.now() - startedAt) / 1000);
  const table = markdownTable(results.models);
  results.markdown = [
    table,
    results.sizing ? sizingMarkdown(results.sizing) : undefined,
    results.backfillSizing ? backfillSizingMarkdown(results.backfillSizing) : undefined,
    results.edge ? edgeComparisonMarkdown(results.edge) : undefined,
  ]
    .filter(Boolean)
    .join('\n\n');
  console.log(`\n${results.markdown}\n`);
  for (const model of results.models) for (const note of model.notes) console.log(`note (${model.label}): ${note}`);
  console.log(`total ${results.totalSeconds} s; load average at end ${machine.loadAverage.end}`);
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const slug = models.map((model) => path.basename(model.dir)).join('+').replace(/[^\w.+-]+/g, '-');
  // Quick and partial runs are kept apart (and out of git): their figures are not the bench's.
  const kind = quick ? '-quick' : skip.size > 0 ? '-partial' : '';
  const file = path.join(dir, `${machine.date.slice(0, 19).replace(/[:T]/g, '-')}-${slug}${kind}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${path.relative(PROJECT_ROOT, file)}`);
}

/** Every phase with one model: its own DynamoDB Local and Qdrant server, processes started with EMBEDDING_MODEL_DIR set to it. */
async function benchModel(benchModel: BenchModel): Promise<ModelResults> {
  const startedAt = performance.now();
  process.env.EMBEDDING_MODEL_DIR = benchModel.dir;
  process.env.EMBEDDING_ALLOW_REMOTE = 'false';
  const embedder = await createEmbedder();
  console.log(`model: ${embedder.model.id} (${benchModel.source}, ${embedder.model.dtype}, ${embedder.model.dimension} dims, ${benchModel.dir})`);
  const searchRoute = routes.some((route) => route.name === 'searchPersonas');
  const results: ModelResults = { label: benchModel.label, judged: benchModel.judged, model: { ...embedder.model, source: benchModel.source, dir: benchModel.dir }, notes: [] };
  if (!searchRoute) results.notes.push('POST /personas/search is not in the route table: search latency and search-API visibility not measured.');

  log('starting DynamoDB Local and the Qdrant server on free ports');
  const infrastructure = await startInfrastructure(process.env);
  const qdrant = createQdrantClient({ url: infrastructure.qdrant.url, apiKey: undefined });
  const running: ServiceProcess[] = [];
  const stopAll = async () => {
    for (const service of running.splice(0)) await service.stop();
  };
  try {
    if (!skip.has('embedding')) {
      const personas = Array.from({ length: plan.texts }, (_, i) => benchStoredPersona(i));
      const texts = personas.map(personaEmbeddingText);
      log(`embedding ceiling: raw ONNX session, ${indexerThreads} intra-op thread(s) as the deployed indexer, batch sizes ${plan.batchSizes.join(', ')}`);
      const ceiling = await measureCeiling(rawModelOf(embedder.model), texts, plan.batchSizes, plan.timing, indexerThreads);
      log(`raw session best ${ceiling.best.personasPerSecond.toFixed(0)}/s at batch ${ceiling.best.batchSize}; comparing with the indexer's path (${plan.rounds} interleaved rounds)`);
      const comparison = await measureIndexerComparison(personas, ceiling.best.batchSize, { budgetMs: plan.timing.budgetMs, rounds: plan.rounds }, indexerThreads);
      log('vector fidelity: q8 against fp32, batch independence, the raw session in batches of 8');
      const fidelity = await measureVectorFidelity(benchModel.dir, texts.slice(0, plan.fidelityTexts), indexerThreads);
      log('naive approach (new pipeline and Qdrant client per persona)');
      const naive = await measureNaive(personas, infrastructure.qdrant.url, embedder, { maxPersonas: plan.naive, budgetMs: 15_000 });
      results.embedding = { texts: texts.length, meanTextChars: Math.round(texts.reduce((sum, text) => sum + text.length, 0) / texts.length), ceiling, comparison, naive, fidelity };
      log('ONNX Runtime settings: reference grid, graph optimisation levels, sequence bucketing, CPU cost per persona');
      results.onnxSettings = await measureOnnxSettings(benchModel.dir, texts, indexerStreamSettings.batchSize, plan.timing.budgetMs);
    }

    if (!skip.has('backfill')) {
      // The reindex in AWS: one child at the prod backfill function's memory (the indexer's), on a chunk of an export file.
      const memoryMb = stageDefaults.prod.functions.backfill.memoryMb;
      const personas = Array.from({ length: plan.backfillChunk }, (_, i) => benchStoredPersona(i));
      log(`backfill child: a ${personas.length}-persona export chunk against the indexer's path, ${plan.backfillRounds} interleaved rounds, threads of ${memoryMb} MB`);
      const measured = await measureBackfillRate(personas, qdrant, { memoryMb, rounds: plan.backfillRounds, alias: 'bench-backfill' });
      const qdrantRate = Number(process.env.BENCH_QDRANT_POINTS_PER_SECOND) || ASSUMED_QDRANT_POINTS_PER_SECOND;
      results.backfill = { ...measured, sizing: backfillSizing(measured.perChildPersonasPerSecond, qdrantRate, !process.env.BENCH_QDRANT_POINTS_PER_SECOND) };
      log(
        `  backfill ${measured.backfill.cpuMsPerPersona} CPU ms/persona (${measured.backfill.wallPersonasPerSecond}/s here), indexer path ${measured.indexer.cpuMsPerPersona} ms ` +
          `(${measured.indexer.wallPersonasPerSecond}/s); backfill rate ${(measured.backfillRateShareOfIndexer * 100).toFixed(1)}% of the indexer's; ${measured.perChildPersonasPerSecond} personas/s per child at ${memoryMb} MB`,
      );
      console.log(backfillSizingMarkdown(results.backfill.sizing));
    }

    if (!skip.has('lag') || searchRoute) {
      const dataset = await createDataset(infrastructure, 'a');
      log(`data set A: starting the indexer and API processes`);
      const indexer = await startIndexerProcess(dataset);
      running.push(indexer);
      const api = await startApiProcess(dataset);
      running.push(api);
      log('importing 1,000 personas');
      results.seed1k = await measureBulkImport(api.url, dataset, 1_000, scratchDir);
      if (searchRoute) {
        log('search latency at 1,000 personas');
        (results.search ??= []).push(await measureSearchLatency(api.url, embedder, qdrant, dataset.collection, { points: 1_000, seededBy: 'api-import', requests: plan.searchRequests, warmup: 20 }));
      }
      if (!skip.has('lag')) {
        const patchTargets = await listIds(api.url);
        const lag: LagRunResult[] = [];
        const run = async (rate: number, durationMs: number, visibility: LagRunResult['visibility']) => {
          log(`lag at ${rate} writes/s for ${durationMs / 1000} s (${visibility})`);
          const result = await runLag({ apiUrl: api.url, qdrant, collection: dataset.collection, patchTargets, ratePerSecond: rate, durationMs, visibility, pollIntervalMs: 10, runId: `${visibility}-${rate}` });
          log(`  p50 ${result.lagMs.p50} p95 ${result.lagMs.p95} p99 ${result.lagMs.p99} ms, ${result.keptUp ? 'kept up' : 'did not keep up'}`);
          lag.push(result);
          return result;
        };
        // 5 and 20 writes/s (the target's rate, also seen through the search API), then rates stepping
        // up until one is not kept up: a backlog left by a failed rate would spoil every later one.
        await run(5, plan.lagMs, 'qdrant-retrieve');
        const at20 = await run(20, plan.lagMs, 'qdrant-retrieve');
        if (searchRoute) await run(20, plan.lagMs, 'search-api');
        if (at20.keptUp) {
          for (const rate of plan.stepRates) if (!(await run(rate, rate === 50 ? plan.lagMs : plan.stepMs, 'qdrant-retrieve')).keptUp) break;
        }
        results.lag = lag;
      }
      results.memory = { lagPhase: { apiMiB: api.peakRssMiB(), indexerMiB: indexer.peakRssMiB() } };
      await stopAll();
    }

    if (!skip.has('import')) {
      await infrastructure.freshDynamoDb();
      const dataset = await createDataset(infrastructure, 'b');
      // The API process serves the console's scripts from here, as `npm start` does.
      dataset.env.WEB_ASSETS_DIR = path.join(scratchDir, 'web-assets');
      buildWebAssets(dataset.env.WEB_ASSETS_DIR);
      log('data set B: starting the indexer and API processes');
      const indexer = await startIndexerProcess(dataset);
      running.push(indexer);
      const api = await startApiProcess(dataset);
      running.push(api);
      // At most about three minutes of embedding, judged by the indexer's measured rate (a slow model imports fewer).
      const importCount = embedBudget(results, plan.importCount, 1_000);
      if (importCount < plan.importCount) results.notes.push(`The bulk import sent ${importCount} personas, not ${plan.importCount}: about three minutes of this model's indexer rate.`);
      log(`bulk import of ${importCount} personas`);
      results.bulkImport = await measureBulkImport(api.url, dataset, importCount, scratchDir);
      log(`  imported in ${results.bulkImport.importSeconds} s, all searchable after ${results.bulkImport.searchableSeconds} s`);
      if (searchRoute && importCount === plan.importCount) {
        log(`search latency at ${importCount} personas`);
        (results.search ??= []).push(await measureSearchLatency(api.url, embedder, qdrant, dataset.collection, { points: importCount, seededBy: 'api-import', requests: plan.searchRequests, warmup: 20 }));
      }
      // The page load does not depend on the model: measured once, with every persona imported.
      if (!skip.has('console') && !consoleMeasured && importCount === plan.importCount) {
        consoleMeasured = true;
        log(`console page load with ${importCount} personas (${plan.consoleRuns} runs in Chromium)`);
        results.console = await measureConsoleLoad(api.url, importCount, plan.consoleRuns);
        if (results.console) log(`  first rows p50 ${results.console.firstRowsMs.p50} ms, all loaded p50 ${results.console.allLoadedMs.p50} ms, map p50 ${results.console.mapMs.p50} ms`);
        else results.notes.push('Console page load not measured: no Chromium (apt-get install -y chromium, or set CHROMIUM_PATH).');
      }
      (results.memory ??= {}).importPhase = { apiMiB: api.peakRssMiB(), indexerMiB: indexer.peakRssMiB() };
      await stopAll();
    }

    const largest = plan.searchSizes.at(-1)!;
    if (searchRoute && !skip.has('search100k')) {
      const dataset = await createDataset(infrastructure, 'c');
      const embedLimit = embedBudget(results, largest, plan.importCount);
      const vectors: number[][] = [];
      const imported = results.bulkImport?.personas ?? 0;
      if (imported < plan.importCount) {
        // The bulk import sent fewer than the target's 10k: its search is measured here instead.
        log(`data set C: seeding ${plan.importCount} points straight into Qdrant for the ${plan.importCount} search`);
        await seedIndexDirectly(qdrant, dataset.collection, embedder, { count: plan.importCount, embedLimit, vectors });
        const api = await startApiProcess(dataset);
        running.push(api);
        (results.search ??= []).push(await measureSearchLatency(api.url, embedder, qdrant, dataset.collection, { points: plan.importCount, seededBy: 'direct-qdrant-upsert', requests: plan.searchRequests, warmup: 20 }));
        await stopAll();
      }
      log(`data set C: seeding ${largest} points straight into Qdrant (production point builders, embedDocuments for ${embedLimit} of them)`);
      const seeding = await seedIndexDirectly(qdrant, dataset.collection, embedder, { count: largest, embedLimit, vectors });
      log(`  seeded in ${seeding.seconds} s`);
      if (seeding.embedded < largest) results.notes.push(`The ${largest} points seeded directly reuse the vectors of the first ${seeding.embedded} personas (embedding all would take too long with this model).`);
      const api = await startApiProcess(dataset);
      running.push(api);
      log(`search latency at ${largest} personas`);
      (results.search ??= []).push({
        ...(await measureSearchLatency(api.url, embedder, qdrant, dataset.collection, { points: largest, seededBy: 'direct-qdrant-upsert', requests: plan.largestSearchRequests, warmup: 5 })),
        seeding,
      });
      (results.memory ??= {}).search100kPhase = { apiMiB: api.peakRssMiB() };
      await stopAll();
    }
    (results.memory ??= {}).qdrantServerMiB = infrastructure.qdrant.peakRssMiB();

    if (!skip.has('coldstart')) {
      const dataset = await createDataset(infrastructure, 'cold');
      const workDir = path.join(scratchDir, 'coldstart');
      mkdirSync(workDir, { recursive: true });
      log('cold starts: bundling like the CDK stack, then fresh Node processes');
      results.coldStart = await measureColdStarts(coldStartTargets(benchPersona(0)), workDir, dataset.env, plan.coldRuns);
    }
  } finally {
    await stopAll();
    await infrastructure.stop();
    await embedder.dispose();
  }
  results.seconds = Math.round((performance.now() - startedAt) / 1000);
  return results;
}

/** About three minutes of embedding at the indexer's measured rate, between `floor` and `count`. */
function embedBudget(results: ModelResults, count: number, floor: number): number {
  const indexerRate = results.embedding?.comparison.embedDocuments.personasPerSecond;
  return indexerRate ? Math.min(count, Math.max(floor, Math.round(indexerRate * 180))) : count;
}

/** Ids of every persona in the data set, through the API's own paging. */
async function listIds(apiUrl: string): Promise<string[]> {
  const api = apiClient(apiUrl);
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const response = await api('GET', `/personas?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    ids.push(...(response.json.items as Array<{ id: string }>).map((item) => item.id));
    cursor = response.json.next_cursor as string | null;
  } while (cursor);
  return ids;
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`bench failed: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);

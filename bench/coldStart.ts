/**
 * Cold start of the deployed artefacts: each function is bundled with esbuild using the very
 * options the CDK stack uses (infra/bundling.ts; no cdk synth), embedding functions get their
 * asset (onnxruntime-node for this machine's architecture and the model) from the same copy
 * commands, and then a FRESH Node process imports the bundle and invokes the handler once.
 *
 * Measured in that process: module import (Lambda's init phase) and the first invocation (for
 * embedding functions that loads the model; for all it opens the first connections). The parent
 * also times spawn → answer, which adds Node's own start-up.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { build } from 'esbuild';
import { apiBundling, embeddingAssetCommands, embeddingBundling, MODEL_ASSET_DIR, PROJECT_ROOT, resolveEmbeddingModel } from '../infra/bundling';
import { lambdaIntraOpThreads } from '../infra/lambdaCpu';
import { stageDefaults } from '../infra/stageConfig';
import { indexerEntry, routes } from '../shared/routes';
import { median } from './latencyStats';

export interface ColdStartResult {
  name: string;
  embeds: boolean;
  /** The bundled .mjs file. */
  bundleKiB: number;
  /** Everything in the function's asset: bundle, source map, and for embedding functions onnxruntime and the model. */
  assetMiB: number;
  runs: number;
  /** Medians over the runs, in ms. */
  importMs: number;
  firstInvokeMs: number;
  /** Process start to the end of the first invocation, measured in the process. */
  initPlusFirstInvokeMs: number;
  /** spawn() to the answer, measured by the parent (adds Node's start-up). */
  spawnToAnswerMs: number;
}

function directorySize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? directorySize(full) : statSync(full).size;
  }
  return total;
}

/** The CDK NodejsFunction options as esbuild build options (the subset infra/bundling.ts sets). */
async function bundleLikeCdk(entry: string, outDir: string, options: BundlingOptions): Promise<string> {
  const outfile = path.join(outDir, 'index.mjs');
  const alias = Object.fromEntries(
    Object.entries(options.esbuildArgs ?? {})
      .filter(([flag]) => flag.startsWith('--alias:'))
      .map(([flag, target]) => [flag.slice('--alias:'.length), String(target)]),
  );
  await build({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: options.target,
    mainFields: options.mainFields,
    banner: options.banner ? { js: options.banner } : {},
    minify: options.minify,
    sourcemap: options.sourceMap,
    sourcesContent: options.sourcesContent,
    external: options.externalModules,
    alias,
    logLevel: 'error',
  });
  return outfile;
}

/**
 * Runs in the fresh process: imports the bundle, invokes its handler with the event, and prints
 * the timings. performance.now() counts from the process's start.
 */
const PROBE = `
const [bundle, event] = [process.argv[1], JSON.parse(process.argv[2])];
const t0 = performance.now();
const { handler } = await import(bundle);
const t1 = performance.now();
const context = { functionName: 'bench', functionVersion: '$LATEST', awsRequestId: crypto.randomUUID(), memoryLimitInMB: '2048',
  invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:bench', logGroupName: 'bench', logStreamName: 'bench',
  getRemainingTimeInMillis: () => 60000, callbackWaitsForEmptyEventLoop: false };
const result = await handler(event, context);
const t2 = performance.now();
const status = result?.statusCode ?? (Array.isArray(result?.batchItemFailures) ? 'batch:' + result.batchItemFailures.length + ' failed' : 'ok');
process.stdout.write('\\n' + JSON.stringify({ coldStart: { importMs: t1 - t0, firstInvokeMs: t2 - t1, total: t2, status } }) + '\\n');
process.exit(0);
`;

function runProbe(bundle: string, event: unknown, env: NodeJS.ProcessEnv): Promise<{ importMs: number; firstInvokeMs: number; total: number; status: unknown; wallMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', PROBE, bundle, JSON.stringify(event)], {
      cwd: path.dirname(bundle),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const wallMs = performance.now() - started;
      const line = out.split('\n').find((text) => text.startsWith('{"coldStart"'));
      if (code !== 0 || !line) return reject(new Error(`cold-start probe of ${bundle} failed (exit ${code}):\n${out.slice(-3000)}`));
      resolve({ ...(JSON.parse(line) as { coldStart: { importMs: number; firstInvokeMs: number; total: number; status: unknown } }).coldStart, wallMs });
    });
  });
}

/** An API Gateway HTTP API (payload 2.0) event, as much of it as the handlers read. */
function httpEvent(method: string, routePath: string, rawPath: string, body: unknown) {
  return {
    version: '2.0',
    routeKey: `${method} ${routePath}`,
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', host: 'bench.local' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'bench.local',
      domainPrefix: 'bench',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey: `${method} ${routePath}`,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

/** A stream batch of one INSERT record for an id no row has: the indexer reads, finds nothing, skips. */
function streamEvent() {
  return {
    Records: [
      {
        eventID: randomUUID(),
        eventName: 'INSERT',
        eventVersion: '1.1',
        eventSource: 'aws:dynamodb',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:dynamodb:us-east-1:000000000000:table/bench/stream/bench',
        dynamodb: { ApproximateCreationDateTime: Date.now() / 1000, Keys: { id: { S: randomUUID() } }, SequenceNumber: '1', SizeBytes: 1, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      },
    ],
  };
}

export interface ColdStartTarget {
  name: string;
  entry: string;
  embeds: boolean;
  /** The dev stage's memory for the function: decides its EMBEDDING_THREADS, as in the stack. */
  memoryMb: number;
  event: () => unknown;
}

/** The functions measured: a plain API route, the search route when the route table has it, and the indexer. */
export function coldStartTargets(persona: unknown): ColdStartTarget[] {
  const targets: ColdStartTarget[] = [];
  const { functions } = stageDefaults.dev;
  const routeMemory = (embeds: boolean) => (embeds ? functions.embeddingApi : functions.api).memoryMb;
  const create = routes.find((route) => route.name === 'createPersona');
  if (create) targets.push({ name: create.name, entry: create.entry, embeds: create.embeds, memoryMb: routeMemory(create.embeds), event: () => httpEvent('POST', '/personas', '/personas', persona) });
  const search = routes.find((route) => route.name === 'searchPersonas');
  if (search) targets.push({ name: search.name, entry: search.entry, embeds: search.embeds, memoryMb: routeMemory(search.embeds), event: () => httpEvent('POST', '/personas/search', '/personas/search', { query: 'a calm physics teacher' }) });
  targets.push({ name: 'indexer', entry: indexerEntry, embeds: true, memoryMb: functions.indexer.memoryMb, event: streamEvent });
  return targets;
}

export async function measureColdStarts(targets: readonly ColdStartTarget[], workDir: string, env: NodeJS.ProcessEnv, runs: number): Promise<ColdStartResult[]> {
  // The model as `cdk synth` would pick it for the dev stage (EMBEDDING_MODEL_DIR first), with its label.
  const model = resolveEmbeddingModel(stageDefaults.dev, env);
  // This machine's architecture, whatever the stage deploys to: the native binding has to load here.
  const architecture = process.arch === 'arm64' ? 'arm64' : 'x86_64';
  const results: ColdStartResult[] = [];
  for (const target of targets) {
    const outDir = path.join(workDir, target.name);
    rmSync(outDir, { recursive: true, force: true });
    const bundle = await bundleLikeCdk(target.entry, outDir, target.embeds ? embeddingBundling(architecture, model) : apiBundling());
    if (target.embeds) execFileSync('sh', ['-c', embeddingAssetCommands(outDir, architecture, model).join(' && ')], { cwd: PROJECT_ROOT });
    // The function's environment as the stack sets it for embedding functions (model inside the
    // asset, one intra-op thread per whole vCPU of the dev stage's memory for that function).
    const functionEnv = target.embeds
      ? {
          ...env,
          EMBEDDING_MODEL_DIR: path.join(outDir, MODEL_ASSET_DIR),
          EMBEDDING_ALLOW_REMOTE: 'false',
          EMBEDDING_DTYPE: model.dtype,
          EMBEDDING_MODEL_ID: model.id,
          EMBEDDING_THREADS: String(lambdaIntraOpThreads(target.memoryMb)),
        }
      : env;
    const samples = [];
    for (let run = 0; run < runs; run++) samples.push(await runProbe(bundle, target.event(), functionEnv));
    const bad = samples.find((sample) => typeof sample.status === 'number' && sample.status >= 400);
    if (bad) throw new Error(`${target.name} answered ${String(bad.status)} on its first invocation`);
    results.push({
      name: target.name,
      embeds: target.embeds,
      bundleKiB: Math.round(statSync(bundle).size / 1024),
      assetMiB: Math.round((directorySize(outDir) / 2 ** 20) * 10) / 10,
      runs,
      importMs: Math.round(median(samples.map((sample) => sample.importMs))),
      firstInvokeMs: Math.round(median(samples.map((sample) => sample.firstInvokeMs))),
      initPlusFirstInvokeMs: Math.round(median(samples.map((sample) => sample.total))),
      spawnToAnswerMs: Math.round(median(samples.map((sample) => sample.wallMs))),
    });
  }
  return results;
}

/**
 * The local runtime laid out as separate processes, so each one's CPU and memory can be told
 * apart, and on free ports, so a running `npm start` or test run is never touched:
 *
 *   DynamoDB Local (Java, in memory)   local/dynamodbLocal.ts
 *   Qdrant-compatible server           local/qdrant/main.ts
 *   API server (all routes' handlers)  bench/processes/apiServerProcess.ts → local/apiServer.ts
 *   stream worker + indexer handler    bench/processes/streamIndexerProcess.ts → local/streamWorker.ts
 *
 * The bench itself only drives them over HTTP, like a client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import { startDynamoDbLocal, type DynamoDbLocal } from '../local/dynamodbLocal';
import { ensureTables } from '../local/tables';
import { createDynamoDbClient } from '../shared/aws/dynamodb';
import { tableConfig, type TableConfig } from '../shared/config';
import { freePort } from '../test/support/globalSetup';

/** Peak resident set size (VmHWM) of a live process, in MiB; undefined once it has exited. */
export function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** What the process printed to say it is ready (a URL, or '' when it serves none). */
  url: string;
  peakRssMiB(): number | undefined;
  stop(): Promise<void>;
}

/** Every service process the bench has started and not yet seen exit. */
const liveChildren = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/**
 * A bench stopped by a signal to its own process (`kill`, `pkill -f bench/run.ts`) takes its service
 * processes with it: they are its children, not its process group's leader's, so without this they
 * kept running (DynamoDB Local and a Qdrant server, orphaned to init) and loaded the next run.
 */
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}

/**
 * Runs a TypeScript entry in a fresh Node process (tsx's loader, as `npm start` runs) and waits
 * until its stdout matches `ready`; the first capture group is the URL it serves.
 */
export function startTsProcess(name: string, entry: string, env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 60_000): Promise<ServiceProcess> {
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, entry)], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stderr!.on('data', collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      void stopChild(child);
      reject(new Error(`${error.message}\n--- ${name} output ---\n${output}`));
    };
    child.once('exit', (code, signal) => fail(new Error(`${name} exited (${code ?? signal}) before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      collect(chunk);
      const match = ready.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume();
      resolve({ name, child, url: match[1] ?? '', peakRssMiB: () => peakRssMiB(child.pid), stop: () => stopChild(child) });
    });
  });
}

export interface BenchInfrastructure {
  dynamodb: DynamoDbLocal;
  qdrant: ServiceProcess;
  /** Environment for processes that use this DynamoDB Local and Qdrant server. */
  env: NodeJS.ProcessEnv;
  /**
   * Replaces DynamoDB Local with an empty one (new port, `env` updated): the data of one phase,
   * kept in its Java heap and streams, would otherwise slow the next phase's writes.
   */
  freshDynamoDb(): Promise<void>;
  stop(): Promise<void>;
}

/** DynamoDB Local and the Qdrant-compatible server, each on a free port, in memory. */
export async function startInfrastructure(baseEnv: NodeJS.ProcessEnv): Promise<BenchInfrastructure> {
  const startDynamoDb = async () => {
    const started = await startDynamoDbLocal({ port: await freePort(), quiet: true });
    track(started.process);
    return started;
  };
  let dynamodb = await startDynamoDb();
  try {
    const qdrant = await startTsProcess('qdrant', 'local/qdrant/main.ts', { ...baseEnv, QDRANT_PORT: '0', QDRANT_DATA_DIR: '' }, /listening on (http:\/\/\S+)/);
    const infrastructure: BenchInfrastructure = {
      dynamodb,
      qdrant,
      env: { ...baseEnv, DYNAMODB_ENDPOINT: dynamodb.endpoint, QDRANT_URL: qdrant.url, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' },
      freshDynamoDb: async () => {
        await dynamodb.stop();
        dynamodb = await startDynamoDb();
        infrastructure.dynamodb = dynamodb;
        infrastructure.env.DYNAMODB_ENDPOINT = dynamodb.endpoint;
      },
      stop: async () => {
        await qdrant.stop();
        await dynamodb.stop();
      },
    };
    return infrastructure;
  } catch (error) {
    await dynamodb.stop();
    throw error;
  }
}

/** One data set: its own persona table (with stream) and idempotency table, and its own collection alias. */
export interface Dataset {
  name: string;
  tables: TableConfig;
  collection: string;
  env: NodeJS.ProcessEnv;
}

export async function createDataset(infrastructure: BenchInfrastructure, name: string): Promise<Dataset> {
  const env = { ...infrastructure.env, TABLE_NAME: `bench-${name}`, IDEMPOTENCY_TABLE_NAME: `bench-${name}-idempotency`, QDRANT_COLLECTION: `bench-${name}` };
  const tables = tableConfig(env);
  const client = createDynamoDbClient(tables);
  await ensureTables(client, tables);
  client.destroy();
  return { name, tables, collection: env.QDRANT_COLLECTION, env };
}

export const startApiProcess = (dataset: Dataset) =>
  startTsProcess('api', 'bench/processes/apiServerProcess.ts', dataset.env, /^api ready (http:\/\/\S+)$/m);

export const startIndexerProcess = (dataset: Dataset) =>
  startTsProcess('indexer', 'bench/processes/streamIndexerProcess.ts', dataset.env, /^indexer ready()$/m);

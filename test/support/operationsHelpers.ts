import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { PROJECT_ROOT } from '../../infra/bundling';
import { getEmbedder } from '../../shared/embedding';
import { compareIndex, resolveCollection, scanTable } from '../../shared/operations/indexReconciler';
import { connectToStage } from '../../shared/operations/stageConnections';
import { readIndexedModel } from '../../shared/vectorIndex/personaCollection';
import { samplePersona } from './apiClient';
import type { startTestSystem } from './localSystem';

/** The table and index of the test system, through the same connections the CLI uses. */
export const testStage = () => connectToStage();

/** Differences between the table and the collection behind the alias, judged against the collection's model. */
export async function indexDifferences() {
  const stage = await testStage();
  const collection = await resolveCollection(stage.qdrant, stage.alias);
  const model = (await readIndexedModel(stage.qdrant, collection)) ?? (await getEmbedder()).model;
  return compareIndex(stage, collection, model);
}

export async function tablePersonas() {
  return scanTable((await testStage()).repository);
}

/**
 * Drift of every kind written straight into Qdrant behind the indexer's back, from the first 14 of
 * `ids`: 5 deleted points (missing), 4 stale versions, 3 stale payloads, 2 points of another model,
 * and 3 orphans (the last one without any version: never written by the indexer).
 */
export async function injectEveryDriftKind(qdrant: QdrantClient, collection: string, ids: readonly string[]) {
  const [deleted, staleVersion, stalePayload, wrongModel] = [ids.slice(0, 5), ids.slice(5, 9), ids.slice(9, 12), ids.slice(12, 14)];
  await qdrant.delete(collection, { wait: true, points: deleted });
  const points = await qdrant.retrieve(collection, { ids: [...staleVersion, ...stalePayload, ...wrongModel], with_payload: true, with_vector: true });
  const byId = new Map(points.map((point) => [String(point.id), point]));
  const rewrite = (id: string, change: Record<string, unknown>) => ({ id, vector: byId.get(id)!.vector as Record<string, number[]>, payload: { ...byId.get(id)!.payload, ...change } });
  const template = byId.get(staleVersion[0]!)!;
  const orphans = [randomUUID(), randomUUID(), randomUUID()];
  await qdrant.upsert(collection, {
    wait: true,
    points: [
      ...staleVersion.map((id) => rewrite(id, { version: 0, name: 'an old name' })),
      ...stalePayload.map((id) => rewrite(id, { domain: ['tampered'] })),
      ...wrongModel.map((id) => rewrite(id, { embedding_model: 'some-other-model@main/q8' })),
      ...orphans.slice(0, 2).map((id) => ({ id, vector: template.vector as Record<string, number[]>, payload: { ...template.payload, name: 'ghost' } })),
      { id: orphans[2]!, vector: template.vector as Record<string, number[]>, payload: { name: 'stray' } },
    ],
  });
  return { orphans };
}

/** Creates `count` sample personas through the test system's API, waits until the indexer has them, returns their ids. */
export async function createIndexedPersonas(env: Awaited<ReturnType<typeof startTestSystem>>, count: number): Promise<string[]> {
  const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: count }, (_, n) => samplePersona(n)) } });
  await env.system.streamWorker.drain(60_000);
  return (created.json.results as { id: string }[]).map((result) => result.id);
}

/** A persona for bulk files: `samplePersona` with a name that says which test wrote it. */
export const filePersona = (prefix: string, n: number) => ({ ...samplePersona(n), name: `${prefix} ${n}` });

export function writeJsonLines(file: string, rows: readonly unknown[]): void {
  writeFileSync(file, rows.map((row) => (typeof row === 'string' ? row : JSON.stringify(row))).join('\n') + '\n');
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin/personas.mjs` as an operator would, against this test file's system (the environment
 * variables startTestSystem set: TABLE_NAME, DYNAMODB_ENDPOINT, QDRANT_URL, QDRANT_COLLECTION,
 * EMBEDDING_MODEL_DIR). `whileRunning` may interrupt it.
 */
export function runCli(args: string[], options: { whileRunning?: (child: ReturnType<typeof spawn>) => void; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/personas.mjs', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.whileRunning?.(child);
  });
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

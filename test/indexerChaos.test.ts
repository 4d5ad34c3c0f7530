import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startQdrantServer } from '../local/qdrant/server';
import { replayFailures, type StreamHandler } from '../local/streamWorker';
import { lambdaContext } from '../local/lambdaEvent';
import { handler as indexerHandler } from '../functions/indexer/handler';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import type { Persona } from '../shared/persona/schema';
import { findDrift, scrollPoints, type IndexedPoint } from '../shared/vectorIndex/indexDrift';
import { modelLabel } from '../shared/vectorIndex/personaCollection';
import { indexerStreamSettings } from '../shared/streamSettings';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

/**
 * Chaos: 500+ random creates, updates and deletes through the API while the Qdrant server is
 * stopped and restarted and the indexer fails at random (before, after, or partway through its
 * work). After convergence the index must equal the table, and every record must be accounted
 * for: delivered, or in the failure destination and then replayed.
 */
let seed = 20261127;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;

const qdrantDir = mkdtempSync(join(tmpdir(), 'chaos-qdrant-'));
let qdrant: Awaited<ReturnType<typeof startQdrantServer>>;
let env: Awaited<ReturnType<typeof startTestSystem>>;
const injected = { before: 0, after: 0, partial: 0 };
/** Stream sequence numbers the worker settled: accepted by the indexer, or sent to the failure file. */
const settled = new Set<string>();
let successfulWrites = 0;

const chaoticIndexer = (handler: StreamHandler): StreamHandler => async (event) => {
  const roll = random();
  if (roll < 0.2) {
    injected.before++;
    throw new Error('injected failure before any work');
  }
  const response = await handler(event);
  if (roll < 0.35) {
    injected.after++;
    throw new Error('injected failure after the work (response lost)');
  }
  if (roll < 0.5 && event.Records.length > 0) {
    injected.partial++;
    const victim = pick(event.Records);
    return { batchItemFailures: [...(response?.batchItemFailures ?? []), { itemIdentifier: victim.dynamodb!.SequenceNumber! }] };
  }
  return response;
};

beforeAll(async () => {
  qdrant = await startQdrantServer({ port: 0, dataDir: qdrantDir });
  env = await startTestSystem({
    qdrantUrl: qdrant.url,
    wrapIndexer: chaoticIndexer,
    // Smaller batches than the deployed 50 mean more invocations, so more chances for faults.
    streamSettings: { ...indexerStreamSettings, batchSize: 10 },
    onStreamRecordsSettled: (records) => records.forEach((record) => settled.add(record.dynamodb!.SequenceNumber!)),
  });
});
afterAll(async () => {
  await env.system.stop();
  await qdrant.close();
});

it('converges to zero differences after 500 random changes with Qdrant outages and random indexer failures', async () => {
  const ids: string[] = [];
  const operations = { create: 0, put: 0, patch: 0, delete: 0 };
  let outages = 0;
  let running = true;

  // Qdrant goes down for 0.2–1.5 s at a time, every so often, while writes go on.
  const port = qdrant.port;
  const outageLoop = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 300 + random() * 700));
      if (!running) break;
      await qdrant.close();
      outages++;
      await new Promise((resolve) => setTimeout(resolve, 200 + random() * 1300));
      qdrant = await startQdrantServer({ port, dataDir: qdrantDir });
    }
  })();

  const mergePatch = { 'content-type': 'application/merge-patch+json' };
  async function randomOperation(n: number) {
    const roll = random();
    if (ids.length < 5 || roll < 0.35) {
      const response = await env.api('POST', '/personas', { body: samplePersona(n) });
      expect(response.status).toBe(201);
      successfulWrites++;
      ids.push(response.json.id);
      operations.create++;
      return;
    }
    const id = pick(ids);
    if (roll < 0.55) {
      const current = await env.api('GET', `/personas/${id}`);
      if (current.status !== 200) {
        expect(current.status).toBe(404);
        operations.put++; // a write attempt on a deleted persona is part of the mix
        return;
      }
      const response = await env.api('PUT', `/personas/${id}`, { body: { ...samplePersona(n), name: `replaced ${n}` }, headers: { 'if-match': current.headers.get('etag')! } });
      expect([200, 404, 412]).toContain(response.status);
      if (response.status === 200) successfulWrites++;
      operations.put++;
    } else if (roll < 0.85) {
      const body = random() < 0.5 ? { traits: { extraversion: Math.round(random() * 100) / 100 } } : { beliefs: [`belief ${n}`], modes: [pick(['Mentor', 'Critic', 'Storyteller'])] };
      const response = await env.api('PATCH', `/personas/${id}`, { body, headers: mergePatch });
      expect([200, 404]).toContain(response.status);
      if (response.status === 200) successfulWrites++;
      operations.patch++;
    } else {
      const response = await env.api('DELETE', `/personas/${id}`);
      expect([204, 404]).toContain(response.status);
      if (response.status === 204) successfulWrites++;
      operations.delete++;
    }
  }

  const operationCount = () => Object.values(operations).reduce((a, b) => a + b, 0);
  for (let n = 0; operationCount() < 520; n += 4) {
    await Promise.all([0, 1, 2, 3].map((offset) => randomOperation(n + offset)));
    // A short pause between rounds spreads the writes over many indexer invocations.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  while (outages < 3) await new Promise((resolve) => setTimeout(resolve, 100));
  running = false;
  await outageLoop;

  // Convergence: Qdrant is up for good; the worker finishes its retries, then the failure destination is replayed.
  await env.system.streamWorker.drain(120_000);
  const failureFile = join(env.workDir, 'indexer-failures.jsonl');
  const failedBatches = existsSync(failureFile) ? readFileSync(failureFile, 'utf8').split('\n').filter(Boolean).length : 0;
  const replay = await replayFailures(failureFile, (event) => indexerHandler(event, lambdaContext('indexer')));
  expect(replay.stillFailing).toBe(0);

  const config = tableConfig();
  const repository = personaRepositoryFor(config);
  const personas: Persona[] = [];
  for await (const page of repository.scanAll()) personas.push(...page);
  const points: IndexedPoint[] = [];
  for await (const page of scrollPoints(env.qdrant, env.collection)) points.push(...page);
  const drift = findDrift(personas, points, modelLabel((await getEmbedder()).model));

  const stats = env.system.streamWorker.stats;
  console.log(
    `chaos: ${JSON.stringify(operations)}, ${outages} Qdrant outages, injected ${JSON.stringify(injected)}, ` +
      `${stats.invocations} invocations, ${stats.recordsDelivered} records delivered, ${stats.recordsFailed} to the failure file ` +
      `(${failedBatches} batches, ${replay.replayed} replayed), ${personas.length} personas, ${points.length} points, ${drift.length} differences ${JSON.stringify(drift.slice(0, 5))}`,
  );
  expect(operationCount()).toBeGreaterThanOrEqual(500);
  expect(outages).toBeGreaterThanOrEqual(3);
  expect(injected.before + injected.after + injected.partial).toBeGreaterThanOrEqual(5);
  expect(drift).toEqual([]);
  expect(points.length).toBe(personas.length);
  // Nothing unreported: each write's stream record was accepted by the indexer or sent to the failure file.
  expect(settled.size).toBe(successfulWrites);
}, 600_000);

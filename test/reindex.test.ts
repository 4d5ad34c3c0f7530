import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as indexerHandler } from '../functions/indexer/handler';
import { lambdaContext } from '../local/lambdaEvent';
import { replayFailures } from '../local/streamWorker';
import { createEmbedder, getEmbedder, type Embedder } from '../shared/embedding';
import { reindexCollection, type ReindexPhase } from '../shared/operations/collectionReindex';
import { compareIndex, readAllPoints, resolveCollection } from '../shared/operations/indexReconciler';
import type { Persona } from '../shared/persona/schema';
import { modelLabel, readIndexedModel } from '../shared/vectorIndex/personaCollection';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { routes } from '../shared/routes';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { runCli, testStage } from './support/operationsHelpers';
import { startQdrantProxy } from './support/qdrantProxy';

/**
 * Zero-downtime reindex against the whole local system: searches run the whole time (through
 * the alias with a vector query, and through POST /personas/search), writes go on while the new
 * collection fills, and the indexer keeps running with its own model.
 */
let env: Awaited<ReturnType<typeof startTestSystem>>;
let fp32: Embedder;

beforeAll(async () => {
  env = await startTestSystem();
  for (let start = 0; start < 400; start += 100) {
    const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 100 }, (_, n) => samplePersona(start + n)) } });
    expect(created.status).toBe(200);
  }
  await env.system.streamWorker.drain(60_000);
  fp32 = await createEmbedder({ modelDir: process.env.EMBEDDING_MODEL_DIR!, dtype: 'fp32' });
});
afterAll(async () => {
  await fp32?.dispose();
  await env.system.stop();
});

const mergePatch = { 'content-type': 'application/merge-patch+json' };
const searchRoute = routes.some((route) => route.path === '/personas/search');

/** Searches until stopped; every error or empty answer counts as a failed search. */
function searchLoop(queryVector: number[]) {
  const counts = { qdrant: 0, api: 0, failed: 0, failures: [] as string[] };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const hits = await env.qdrant.query(env.collection!, { query: queryVector, using: 'text', limit: 5 });
        if (hits.points.length === 0) throw new Error('no hits through the alias');
        counts.qdrant++;
        if (searchRoute) {
          const response = await env.api('POST', '/personas/search', { body: { query: 'a calm educator' } });
          if (response.status !== 200) throw new Error(`POST /personas/search ${response.status}: ${response.text.slice(0, 200)}`);
          counts.api++;
        }
      } catch (error) {
        counts.failed++;
        if (counts.failures.length < 5) counts.failures.push((error as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return { counts, stop: async () => ((running = false), await loop) };
}

/** Creates, patches and deletes personas until stopped; returns what the table must hold afterwards. */
function writeLoop(existing: string[]) {
  const created: string[] = [];
  const deleted: string[] = [];
  let patched = 0;
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      if (n % 3 === 0) {
        const response = await env.api('POST', '/personas', { body: samplePersona(10_000 + n) });
        expect(response.status).toBe(201);
        created.push(response.json.id);
      } else if (n % 3 === 1) {
        const response = await env.api('PATCH', `/personas/${existing[n % existing.length]}`, { body: { beliefs: [`changed during the reindex ${n}`] }, headers: mergePatch });
        expect(response.status).toBe(200);
        patched++;
      } else if (existing.length > 0 && n % 9 === 2) {
        const id = existing.pop()!;
        expect((await env.api('DELETE', `/personas/${id}`)).status).toBe(204);
        deleted.push(id);
      }
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
  })();
  return { created, deleted, patchedCount: () => patched, stop: async () => ((running = false), await loop) };
}

describe('personas reindex', () => {
  it('moves the alias to a new collection of another model with searches and writes running, and drops the old one', async () => {
    const stage = await testStage();
    const oldCollection = await resolveCollection(env.qdrant, env.collection!);
    const q8 = await getEmbedder();
    const ids = (await readAllPoints(env.qdrant, oldCollection)).map((point) => point.id);
    const searches = searchLoop(await q8.embedQuery('a calm educator'));
    const writes = writeLoop(ids.slice(0, 300));
    const phases: Array<[ReindexPhase, number]> = [];
    const started = Date.now();

    let report: Awaited<ReturnType<typeof reindexCollection>>;
    try {
      report = await reindexCollection(
        { repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder: fp32 },
        {
          onPhase: async (phase) => {
            phases.push([phase, Date.now() - started]);
            // Every write is acknowledged before the swap. (One acknowledged after it is the
            // indexer's, which refuses this new model: see the next test.)
            if (phase === 'verified') await writes.stop();
          },
        },
      );
    } finally {
      await writes.stop();
      await searches.stop();
    }
    console.log(
      `[reindex] ${JSON.stringify(report)}; phases ${phases.map(([phase, ms]) => `${phase}@${ms}ms`).join(' ')}; ` +
        `searches ${JSON.stringify(searches.counts)}; writes: ${writes.created.length} created, ${writes.patchedCount()} patched, ${writes.deleted.length} deleted`,
    );

    expect(phases.map(([phase]) => phase)).toEqual(['created', 'backfilled', 'verified', 'swapped', 'drained', 'dropped']);
    expect(searches.counts.failures).toEqual([]);
    expect(searches.counts.failed).toBe(0);
    expect(searches.counts.qdrant).toBeGreaterThan(20);
    if (searchRoute) expect(searches.counts.api).toBeGreaterThan(20);

    const newModel = modelLabel(fp32.model);
    expect(newModel).not.toBe(modelLabel(q8.model));
    expect(report).toMatchObject({ from: { collection: oldCollection, model: modelLabel(q8.model) }, to: { model: newModel }, oldCollectionDropped: true });
    expect(await resolveCollection(env.qdrant, env.collection!)).toBe(report.to.collection);
    expect((await env.qdrant.collectionExists(oldCollection)).exists).toBe(false);
    expect(await readIndexedModel(env.qdrant, report.to.collection)).toEqual(fp32.model);

    const points = await readAllPoints(env.qdrant, env.collection!);
    expect(points.every((point) => point.payload.embedding_model === newModel)).toBe(true);
    const { personas, drift } = await compareIndex(stage, report.to.collection, fp32.model);
    if (drift.length > 0) {
      // Both sides of each difference, with phase times, to tell a missed change from a late write.
      const rows = await stage.repository.getMany(drift.map((entry) => entry.id));
      const sides = await env.qdrant.retrieve(report.to.collection, { ids: drift.map((entry) => entry.id), with_payload: true });
      console.log(`[reindex] differences since ${new Date(started).toISOString()}: rows ${JSON.stringify([...rows.values()])} points ${JSON.stringify(sides.map((point) => point.payload))}`);
    }
    expect(drift, JSON.stringify(drift)).toEqual([]);
    expect(points).toHaveLength(personas);
    // The writes made while the new collection filled are in it, at their current version.
    expect(writes.created.length + writes.patchedCount() + writes.deleted.length).toBeGreaterThan(10);
    expect(report.liveChanges).toBeGreaterThan(0);
    const byId = new Map(points.map((point) => [point.id, point]));
    for (const id of writes.created) expect(byId.has(id), id).toBe(true);
    for (const id of writes.deleted) expect(byId.has(id), id).toBe(false);
    const patched = (await stage.repository.getMany(ids.slice(0, 300))).values();
    for (const persona of patched) expect(byId.get(persona.id)?.payload.version).toBe(persona.version);
  }, 300_000);

  it('the indexer, still on the old model, refuses to write into the new collection instead of mixing models', async () => {
    const created = await env.api('POST', '/personas', { body: samplePersona(77_777) });
    await env.system.streamWorker.drain(60_000);
    expect(await env.qdrant.retrieve(env.collection!, { ids: [created.json.id] })).toEqual([]);
    const failureFile = join(env.workDir, 'indexer-failures.jsonl');
    expect(existsSync(failureFile)).toBe(true);
    expect(readFileSync(failureFile, 'utf8')).toContain(created.json.id);
    expect(readFileSync(failureFile, 'utf8')).toMatch(/personas reindex/);
  });

  it('`personas reindex` back to the indexer\'s model picks up that persona; afterwards the indexer writes again', async () => {
    const previous = await resolveCollection(env.qdrant, env.collection!);
    const run = await runCli(['reindex', '--dtype', 'q8', '--segments', '2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    const q8 = await getEmbedder();
    expect(report).toMatchObject({ from: { collection: previous, model: modelLabel(fp32.model) }, to: { model: modelLabel(q8.model) }, oldCollectionDropped: true });
    expect(run.stderr).toMatch(/reindex: swapped/);
    const stage = await testStage();
    expect((await compareIndex(stage, report.to.collection, q8.model)).drift).toEqual([]);

    // The indexer resolves the alias again, finds its own model, and the failed batches replay cleanly.
    const replay = await replayFailures(join(env.workDir, 'indexer-failures.jsonl'), (event) => indexerHandler(event, lambdaContext('indexer')));
    expect(replay.stillFailing).toBe(0);
    const created = await env.api('POST', '/personas', { body: samplePersona(88_888) });
    await env.system.streamWorker.drain(60_000);
    const [point] = await env.qdrant.retrieve(env.collection!, { ids: [created.json.id], with_payload: true });
    expect((point?.payload as Partial<Persona> | undefined)?.version).toBe(1);
    expect(point?.payload?.embedding_model).toBe(modelLabel(q8.model));
  }, 300_000);

  it('recovers by itself when the swap breaks between delete_alias and create_alias: searches find the alias again', async () => {
    // Qdrant applies alias actions one by one and keeps those applied (update_aliases,
    // lib/storage/src/content_manager/toc/collection_meta_ops.rs): here the connection breaks after
    // the delete, so the alias is gone until the reindex notices and re-creates it.
    const stage = await testStage();
    const proxy = await startQdrantProxy(env.system.qdrantUrl);
    const q8 = await getEmbedder();
    const searches = searchLoop(await q8.embedQuery('a calm educator'));
    proxy.failNextAliasUpdate('connection-drops-after-first-action');
    let report: Awaited<ReturnType<typeof reindexCollection>>;
    try {
      report = await reindexCollection(
        { repository: stage.repository, qdrant: createQdrantClient({ url: proxy.url, apiKey: env.system.qdrantApiKey }), alias: stage.alias, tables: stage.tables, embedder: q8 },
        { segments: 2, graceMs: 1_000 },
      );
    } finally {
      await proxy.close();
    }
    const searchesDuringReindex = searches.counts.qdrant;
    // No manual step: the very next searches through the alias and the API succeed.
    const next = await env.qdrant.query(env.collection!, { query: await q8.embedQuery('a calm educator'), using: 'text', limit: 5 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await searches.stop();

    expect(proxy.faultPending).toBe(false);
    expect(report.aliasRecovery).toMatch(/left the alias missing .* pointed at '.*' again/);
    expect(await resolveCollection(env.qdrant, env.collection!)).toBe(report.to.collection);
    expect(next.points).toHaveLength(5);
    expect(searches.counts.qdrant).toBeGreaterThan(searchesDuringReindex);
    if (searchRoute) {
      const response = await env.api('POST', '/personas/search', { body: { query: 'a calm educator' } });
      expect(response.status).toBe(200);
      expect(response.json.items.length).toBeGreaterThan(0);
    }
    expect((await compareIndex(stage, report.to.collection, q8.model)).drift).toEqual([]);
  }, 300_000);
});

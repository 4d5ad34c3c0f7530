import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as reconcilerHandler } from '../functions/reconciler/handler';
import { lambdaContext } from '../local/lambdaEvent';
import { resolveCollection } from '../shared/operations/indexReconciler';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { indexDifferences, injectEveryDriftKind, runCli } from './support/operationsHelpers';

/**
 * Drift injected straight into Qdrant behind the indexer's back (deleted points, stale payloads,
 * points of another model, orphans); `personas reconcile` must find each kind and `--repair` must
 * leave no difference.
 */
let env: Awaited<ReturnType<typeof startTestSystem>>;
let ids: string[] = [];

beforeAll(async () => {
  env = await startTestSystem();
  const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 60 }, (_, n) => samplePersona(n)) } });
  ids = (created.json.results as { id: string }[]).map((result) => result.id);
  await env.system.streamWorker.drain(60_000);
});
afterAll(() => env.system.stop());

const reconcileJson = async (...flags: string[]) => {
  const run = await runCli(['reconcile', '--json', ...flags]);
  if (!run.stdout.trim().startsWith('{')) throw new Error(`reconcile failed (${run.code}): ${run.stderr}`);
  return { code: run.code, report: JSON.parse(run.stdout) };
};

describe('personas reconcile', () => {
  it('finds nothing when the index matches the table', async () => {
    const { code, report } = await reconcileJson();
    expect(code).toBe(0);
    expect(report).toMatchObject({ personas: 60, points: 60, drift: [] });
  });

  it('detects deleted points, stale payloads, wrong-model points and orphans, and --repair leaves zero differences', async () => {
    const collection = await resolveCollection(env.qdrant, env.collection!);
    const { orphans } = await injectEveryDriftKind(env.qdrant, collection, ids);

    const before = await runCli(['status', '--json']);
    expect(JSON.parse(before.stdout)).toMatchObject({ table: { personas: 60 }, index: { points: 58 }, pending: 9, pendingDeletes: 3 });

    const { code, report } = await reconcileJson();
    expect(code).toBe(3);
    expect(report.byKind).toEqual({ missing: 5, orphan: 3, 'stale-version': 4, 'stale-payload': 3, 'wrong-model': 2, 'missing-vector': 0 });
    expect(new Set(report.drift.filter((entry: { kind: string }) => entry.kind === 'orphan').map((entry: { id: string }) => entry.id))).toEqual(new Set(orphans));
    const text = await runCli(['reconcile']);
    expect(text.stdout).toMatch(/17 differences: 5 missing, 3 orphan, 4 stale-version, 3 stale-payload, 2 wrong-model/);
    expect(text.stdout).toMatch(/personas reconcile --repair/);

    const repaired = await reconcileJson('--repair');
    expect(repaired.code).toBe(0);
    expect(repaired.report.repair.remaining).toEqual([]);
    // Deleted and wrong-model points need new vectors; only-payload drift reuses the stored one.
    expect(repaired.report.repair.actions.embedded + repaired.report.repair.actions['payload-only']).toBe(14);
    expect(repaired.report.repair.actions.deleted).toBe(2);
    expect((await indexDifferences()).drift).toEqual([]);
    expect(await env.qdrant.retrieve(collection, { ids: orphans })).toEqual([]);

    const after = JSON.parse((await runCli(['status', '--json'])).stdout);
    expect(after).toMatchObject({ table: { personas: 60 }, index: { points: 60 }, pending: 0, pendingDeletes: 0, syncLagMs: 0 });
  });

  it('--repair also fixes points whose version is ahead of their row (a restored table, a hand-edited index)', async () => {
    const collection = await resolveCollection(env.qdrant, env.collection!);
    const ahead = ids.slice(40, 42);
    const points = await env.qdrant.retrieve(collection, { ids: ahead, with_payload: true, with_vector: true });
    await env.qdrant.upsert(collection, {
      wait: true,
      points: points.map((point) => ({
        id: String(point.id),
        vector: point.vector as Record<string, number[]>,
        // Ahead in version, same or later timestamp: what the indexer's guard treats as newer than the row.
        payload: { ...point.payload, version: Number(point.payload!.version) + 2, name: 'from the future' },
      })),
    });
    const { report } = await reconcileJson();
    expect(report.byKind['stale-version']).toBe(2);

    const repaired = await reconcileJson('--repair');
    expect(repaired.report.repair.remaining).toEqual([]);
    expect(repaired.code).toBe(0);
    const fixed = await env.qdrant.retrieve(collection, { ids: ahead, with_payload: true });
    expect(fixed.map((point) => point.payload!.version)).toEqual([1, 1]);
    expect((await indexDifferences()).drift).toEqual([]);
  });

  it('status counts the local failure file; repair refuses a model other than the collection\'s', async () => {
    const failureFile = join(env.workDir, 'failures.jsonl');
    writeFileSync(failureFile, [{ records: [{}, {}] }, { records: [{}] }].map((entry) => JSON.stringify(entry)).join('\n') + '\n');
    const status = await runCli(['status', '--failure-file', failureFile]);
    expect(status.stdout).toMatch(/failed: 2 batches \(3 records\)/);
    // How the collection's vectors were made, from its metadata: the conventions and the token limit.
    expect(status.stdout).toMatch(/^embedding: persona-db\/persona-test-model@sha256:[0-9a-f]{16} \(\d+ dims, q8, cls pooling, unit vectors, query prefix ".+", document prefix none, texts cut at 512 tokens\)$/m);

    const other = await runCli(['reconcile', '--repair'], { env: { EMBEDDING_DTYPE: 'fp32' } });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/holds vectors of .* but this function embeds with .*personas reindex/s);
  });

  it('the scheduled reconciler function repairs drift and publishes DriftFound, DriftRepaired and DriftRemaining', async () => {
    const collection = await resolveCollection(env.qdrant, env.collection!);
    await env.qdrant.delete(collection, { wait: true, points: ids.slice(20, 23) });
    const [template] = await env.qdrant.retrieve(collection, { ids: [ids[30]!], with_payload: true, with_vector: true });
    await env.qdrant.upsert(collection, { wait: true, points: [{ id: randomUUID(), vector: template!.vector as Record<string, number[]>, payload: template!.payload! }] });

    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    let result: unknown;
    try {
      // The reconciler's timeout: 15 minutes.
      result = await reconcilerHandler({}, lambdaContext('reconciler', 900_000));
    } finally {
      spy.mockRestore();
    }
    expect(result).toMatchObject({ collection, found: 4, remaining: 0 });
    expect((await indexDifferences()).drift).toEqual([]);
    const metrics = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('"DriftFound"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({ DriftFound: 4, DriftMissing: 3, DriftOrphan: 1, DriftStaleVersion: 0, DriftRepaired: 4, DriftRemaining: 0 });
  });
});

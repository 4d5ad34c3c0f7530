/**
 * The resumable reconcile on a stage with tenants (tenancy=claim): table keys are `<tenant>#<id>`,
 * point ids are derived from them and points carry `tenant_id`/`persona_id`
 * (shared/tenancy/tenantKeys.ts). The table phase must find each tenant's points by their derived
 * ids, and the index phase must map each scrolled point back to its table key, so that a run
 * interrupted every 2 pages still finds exactly what one full comparison finds, and nothing of one
 * tenant is taken for another's.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tableConfig } from '../shared/config';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { getEmbedder } from '../shared/embedding';
import { reconcileIndex, resolveCollection, type ReconcileReport } from '../shared/operations/indexReconciler';
import { checkpointKey, dynamoCheckpointStore } from '../shared/operations/reconcileCheckpoint';
import { personaKey, pointIdForKey } from '../shared/tenancy/tenantKeys';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { indexDifferences, testStage } from './support/operationsHelpers';
import { claimsClient } from './support/tenantRequests';

const TENANTS = ['acme', 'globex'] as const;
let env: Awaited<ReturnType<typeof startTestSystem>>;
const ids: Record<string, string[]> = {};

beforeAll(async () => {
  process.env.TENANCY = 'claim';
  delete process.env.TENANT_CLAIM;
  env = await startTestSystem();
  for (const tenant of TENANTS) {
    const created = await claimsClient({ iss: 'https://issuer.test/', sub: 'operator', tenant_id: tenant })('POST', '/personas/batch', {
      body: { personas: Array.from({ length: 12 }, (_, n) => ({ ...samplePersona(n), name: `${tenant} persona ${n}` })) },
    });
    expect(created.status).toBe(200);
    ids[tenant] = (created.json.results as { id: string }[]).map((result) => result.id);
  }
  await env.system.streamWorker.drain(60_000);
});
afterAll(async () => {
  await env?.system.stop();
  delete process.env.TENANCY;
});

it('an interrupted reconcile of a stage with tenants finds and repairs, across its runs, exactly what one full pass finds', async () => {
  const collection = await resolveCollection(env.qdrant, env.collection!);
  expect((await indexDifferences()).drift).toEqual([]);
  const acme = (n: number) => personaKey('acme', ids.acme![n]!);
  const globex = (n: number) => personaKey('globex', ids.globex![n]!);
  // acme's persona 0 loses its point; globex's persona 1 gets a tampered payload.
  await env.qdrant.delete(collection, { wait: true, points: [pointIdForKey(acme(0))] });
  const [tampered] = await env.qdrant.retrieve(collection, { ids: [pointIdForKey(globex(1))], with_payload: true, with_vector: true });
  const ghostKey = personaKey('acme', randomUUID());
  await env.qdrant.upsert(collection, {
    wait: true,
    points: [
      { id: pointIdForKey(globex(1)), vector: tampered!.vector as Record<string, number[]>, payload: { ...tampered!.payload, name: 'tampered' } },
      // A point of acme with no row (an orphan under its tenant's key) ...
      { id: pointIdForKey(ghostKey), vector: tampered!.vector as Record<string, number[]>, payload: { ...tampered!.payload, tenant_id: 'acme', persona_id: ghostKey.split('#')[1] } },
      // ... and one whose payload names globex's persona 2 but whose id is not derived from it: an orphan under its own id.
      { id: randomUUID(), vector: tampered!.vector as Record<string, number[]>, payload: { ...tampered!.payload, tenant_id: 'globex', persona_id: ids.globex![2] } },
    ],
  });
  const expected = (await indexDifferences()).drift.map((entry) => `${entry.kind} ${entry.id}`).sort();
  expect(expected).toHaveLength(4);
  expect(expected).toEqual(expect.arrayContaining([`missing ${acme(0)}`, `stale-payload ${globex(1)}`, `orphan ${ghostKey}`]));

  const stage = await testStage();
  const deps = { repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, embedder: await getEmbedder() };
  const store = dynamoCheckpointStore(createDocumentClient(tableConfig()), tableConfig().idempotencyTableName);
  const reports: ReconcileReport[] = [];
  for (let run = 0; run < 30 && !reports.at(-1)?.complete; run++) {
    let pages = 2;
    reports.push(await reconcileIndex(deps, { repair: true, pageSize: 5, checkpoint: { store, key: checkpointKey(stage.alias) }, shouldStop: () => pages-- <= 0 }));
  }
  const last = reports.at(-1)!;
  expect(last.complete).toBe(true);
  expect(reports.length).toBeGreaterThan(2);
  expect(reports.flatMap((report) => report.drift.map((entry) => `${entry.kind} ${entry.id}`)).sort()).toEqual(expected);
  expect(last).toMatchObject({ personas: 24, remaining: 0 });
  expect((await indexDifferences()).drift).toEqual([]);
  // globex's persona 2 kept its own point through the repair of the impostor.
  expect(await env.qdrant.retrieve(collection, { ids: [pointIdForKey(globex(2))] })).toHaveLength(1);
});

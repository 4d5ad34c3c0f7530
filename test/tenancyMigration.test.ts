/**
 * Moving a single-tenant stage to tenancy=claim, as the README's steps do it, on the whole local
 * system: personas written by a single-tenant API (a JWT stage without tenants), then
 * `personas migrate-tenancy --tenant acme` (the CLI, as an operator runs it), then the API with
 * TENANCY=claim: acme sees exactly the personas the stage had (same ids, versions and data, in
 * list, get, search and similar, and its Idempotency-Keys still replay), another tenant sees none,
 * and the index was rebuilt with the tenant index and agrees with the table. The reconciler's own
 * items in the Idempotency-Key table (its lease and checkpoint) stay where the reconciler looks.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureTables } from '../local/tables';
import { createDocumentClient, createDynamoDbClient } from '../shared/aws/dynamodb';
import { tableConfig } from '../shared/config';
import { resolveCollection } from '../shared/operations/indexReconciler';
import { checkpointKey, dynamoCheckpointStore, type ReconcileCheckpoint } from '../shared/operations/reconcileCheckpoint';
import { dynamoLeaseStore, leaseKey, ReconcileLeaseHeldError, takeLease } from '../shared/operations/reconcileLease';
import { IDEMPOTENT_OPERATIONS, idempotencyRecordKey, parseIdempotencyRecordKey, scopedIdempotencyKey } from '../shared/persona/idempotency';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { indexDifferences, runCli, tablePersonas } from './support/operationsHelpers';
import { claimsClient } from './support/tenantRequests';

const SUBJECT = { iss: 'https://issuer.test/', sub: 'operator' };
let env: Awaited<ReturnType<typeof startTestSystem>>;

beforeAll(async () => {
  delete process.env.TENANCY;
  env = await startTestSystem();
});
afterAll(async () => {
  await env?.system.stop();
  delete process.env.TENANCY;
});

it('migrate-tenancy moves every persona and Idempotency-Key into the tenant and rebuilds the index with the tenant index', { timeout: 120_000 }, async () => {
  const single = claimsClient(SUBJECT);
  const keyed = await single('POST', '/personas', { body: samplePersona(0), headers: { 'idempotency-key': 'before-migration' } });
  expect(keyed.status).toBe(201);
  const batch = await single('POST', '/personas/batch', { body: { personas: Array.from({ length: 11 }, (_, i) => samplePersona(i + 1)) } });
  expect(batch.json.created).toBe(11);
  const before = new Map((await tablePersonas()).map((persona) => [persona.id, persona]));
  expect(before.size).toBe(12);
  await env.system.streamWorker.drain(60_000);
  // A reconcile of another index is running (its lease is held) and one stopped midway (its checkpoint).
  const documents = createDocumentClient(tableConfig());
  const idempotencyTable = tableConfig().idempotencyTableName;
  const leases = dynamoLeaseStore(documents, idempotencyTable);
  const lease = { store: leases, key: leaseKey('personas-other'), holder: 'personas reconcile on ops (pid 7)', durationMs: () => 10 * 60_000 };
  const running = await takeLease(lease, Date.now);
  const checkpoints = dynamoCheckpointStore(documents, idempotencyTable);
  const checkpoint = { format: 1, runId: 'run-1', startedAt: new Date().toISOString(), invocations: 1, collection: 'personas-other-v1', model: 'm', phase: 'table', segments: [{ done: false }], totals: { personas: 3, points: 3, byKind: {}, remaining: 0, errors: [] } } as unknown as ReconcileCheckpoint;
  const checkpointExpiry = Math.floor(Date.now() / 1000) + 3600;
  await checkpoints.save(checkpointKey('personas-other'), checkpoint, checkpointExpiry);

  const run = await runCli(['migrate-tenancy', '--tenant', 'acme', '--segments', '2', '--grace-seconds', '1', '--json']);
  expect(run.code, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report).toMatchObject({ tenant: 'acme', moved: 12, alreadyTenants: 0, skipped: [], idempotencyKeysMoved: 1 });
  expect(report.reindex.personas).toBe(12);
  // The reconciler's items were not taken for Idempotency-Key records: the running reconcile still
  // holds its lease (another run is refused) and the stopped one resumes from its checkpoint.
  await expect(takeLease({ ...lease, holder: 'the scheduled reconciler' }, Date.now)).rejects.toBeInstanceOf(ReconcileLeaseHeldError);
  expect(await checkpoints.load(checkpointKey('personas-other'))).toEqual({ checkpoint, expiresAt: checkpointExpiry });
  await running.release();
  await (await takeLease({ ...lease, holder: 'the next run' }, Date.now)).release();
  documents.destroy();

  process.env.TENANCY = 'claim';
  const acme = claimsClient({ ...SUBJECT, tenant_id: 'acme' });
  const globex = claimsClient({ ...SUBJECT, tenant_id: 'globex' });
  // The table: only acme's keys, each persona unchanged but for its key and tenant.
  const rows = await tablePersonas();
  expect(rows.map((row) => row.id).sort()).toEqual([...before.keys()].map((id) => `acme#${id}`).sort());
  for (const [id, persona] of before) {
    const got = await acme('GET', `/personas/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(persona);
    expect((await globex('GET', `/personas/${id}`)).status).toBe(404);
  }
  const listed = await acme('GET', '/personas?limit=100');
  expect(listed.json.items.map((item: { id: string }) => item.id).sort()).toEqual([...before.keys()].sort());
  expect((await globex('GET', '/personas?limit=100')).json.items).toEqual([]);
  // The pre-migration key replays the same persona for the same caller, now acme's.
  const replay = await acme('POST', '/personas', { body: samplePersona(0), headers: { 'idempotency-key': 'before-migration' } });
  expect(replay.status).toBe(201);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.json.id).toBe(keyed.json.id);

  // The index: rebuilt behind the alias with the tenant index; every point is acme's; table and index agree.
  await env.system.streamWorker.drain(60_000);
  const collection = await resolveCollection(env.qdrant, env.collection!);
  expect(collection).toBe(`${env.collection}-v2`);
  const info = await env.qdrant.getCollection(collection);
  expect(info.payload_schema.tenant_id).toMatchObject({ data_type: 'keyword', params: { type: 'keyword', is_tenant: true } });
  const { points } = await env.qdrant.scroll(collection, { limit: 100, with_payload: ['tenant_id', 'persona_id'] });
  expect(points.map((point) => point.payload?.tenant_id)).toEqual(Array(12).fill('acme'));
  expect(points.map((point) => point.payload?.persona_id).sort()).toEqual([...before.keys()].sort());
  expect((await indexDifferences()).drift).toEqual([]);
  const found = await acme('POST', '/personas/search', { body: { query: 'belief 3 phrase 3', mode: 'keyword', limit: 3 } });
  expect(found.json.items[0]?.id).toBe(batch.json.results[2].id);
  expect((await globex('POST', '/personas/search', { body: { query: 'belief 3 phrase 3', mode: 'keyword' } })).json.items).toEqual([]);
  const similar = await acme('GET', `/personas/${keyed.json.id}/similar?limit=20`);
  expect(similar.status).toBe(200);
  expect(similar.json.items).toHaveLength(11);

  // Table exports carry the tenant: one tenant's personas with --tenant, every persona with its tenant_id without.
  const ofAcme = await runCli(['export', '--from', 'table', '--tenant', 'acme']);
  expect(ofAcme.code, ofAcme.stderr).toBe(0);
  const lines = ofAcme.stdout.trim().split('\n').map((line) => JSON.parse(line));
  expect(lines.map((line) => line.id).sort()).toEqual([...before.keys()].sort());
  expect(lines[0]).toEqual(before.get(lines[0].id));
  expect((await runCli(['export', '--from', 'table', '--tenant', 'globex'])).stdout).toBe('');
  const everything = (await runCli(['export', '--from', 'table'])).stdout.trim().split('\n').map((line) => JSON.parse(line));
  expect(everything.map((line) => [line.id, line.tenant_id]).sort()).toEqual([...before.keys()].map((id) => [id, 'acme']).sort());

  // A second run finds nothing left to move.
  const again = await runCli(['migrate-tenancy', '--tenant', 'acme', '--skip-reindex', '--json']);
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ moved: 0, alreadyTenants: 12, idempotencyKeysMoved: 0 });
});

it("the API's Idempotency-Key records are told apart from the other items of their table by the code that builds their keys", () => {
  for (const operation of IDEMPOTENT_OPERATIONS) {
    const stored = scopedIdempotencyKey(operation, { caller: 'jwt:https://issuer.test/:operator', key: 'retry-1' });
    expect(parseIdempotencyRecordKey(idempotencyRecordKey(undefined, stored))).toEqual({ tenant: undefined, operation });
    expect(parseIdempotencyRecordKey(idempotencyRecordKey('acme', stored))).toEqual({ tenant: 'acme', operation });
  }
  // The reconciler's items, whatever the alias, and anything else: not the API's records.
  for (const alias of ['personas', 'createPersona', 'a'.repeat(64)]) {
    expect(parseIdempotencyRecordKey(leaseKey(alias))).toBeUndefined();
    expect(parseIdempotencyRecordKey(checkpointKey(alias))).toBeUndefined();
  }
  expect(parseIdempotencyRecordKey('createPersona#not-a-digest')).toBeUndefined();
  expect(parseIdempotencyRecordKey(`a#b#createPersona#${'0'.repeat(64)}`)).toBeUndefined();
});

it('a persona table kept from before tenancy (npm start -- --persist) gets the tenant index at the next start', async () => {
  const config = { ...tableConfig(), personaTableName: `pre-tenancy-${randomUUID().slice(0, 8)}` };
  const client = createDynamoDbClient(config);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: config.personaTableName,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    await ensureTables(client, config);
    const { Table } = await client.send(new DescribeTableCommand({ TableName: config.personaTableName }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => [index.IndexName, index.KeySchema])).toEqual([
      ['tenant-index', [{ AttributeName: 'tenant_id', KeyType: 'HASH' }, { AttributeName: 'id', KeyType: 'RANGE' }]],
    ]);
    // A second start finds it and changes nothing.
    await ensureTables(client, config);
  } finally {
    client.destroy();
  }
});

/**
 * Tenant isolation (tenancy=claim) on the whole local system as `AUTH=jwt TENANCY=claim npm start`
 * runs it: DynamoDB Local with its stream, the local Qdrant server, the stream worker running the
 * real indexer, and the API over HTTP behind the local JWT authorizer, which puts a validated
 * token's claims where API Gateway's does: `requestContext.authorizer.jwt.claims` (payload format
 * 2.0, https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
 * Tokens come from the local issuer, as `personas token --tenant T` prints them.
 *
 * The property: random operations by three tenants (create and batch with Idempotency-Keys shared
 * across tenants, patch, replace, delete, get, list with cursors, search in every mode, similar in
 * every mode, `personas import` of the same file, `personas export`) on random ids and on other
 * tenants' real ids. Every tenant's token has the same subject, so nothing but the tenant keeps
 * them apart. Afterwards: no response named a persona or the data of another tenant, no write
 * changed another tenant's items, and the index agrees with the table tenant by tenant.
 *
 * Claims API Gateway would pass but the local issuer never signs (no authorizer context, a claim
 * that is not a string) go straight to the handlers (support/tenantRequests.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { tableConfig } from '../shared/config';
import { localIssuerSettings } from '../local/localIssuer';
import { resolveCollection } from '../shared/operations/indexReconciler';
import { exportPersonas } from '../shared/operations/personaExport';
import { importPersonas } from '../shared/operations/personaImport';
import { splitPersonaKey } from '../shared/tenancy/tenantKeys';
import { samplePersona, type ApiResponse } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { indexDifferences, runCli } from './support/operationsHelpers';
import { claimsClient, type TenantCall } from './support/tenantRequests';

const TENANTS = ['acme', 'globex', 'initech'] as const;
type Tenant = (typeof TENANTS)[number];
const SUBJECT = { iss: 'https://issuer.test/', sub: 'one-user-of-every-tenant' };
const SCOPES = ['personas:read', 'personas:write'] as const;
const workDir = mkdtempSync(join(tmpdir(), 'persona-tenants-'));

let env: Awaited<ReturnType<typeof startTestSystem>>;
let documents: DynamoDBDocumentClient;
/** Each tenant's caller over HTTP, and its token. */
const as = {} as Record<Tenant, TenantCall>;
const tokens = {} as Record<Tenant, string>;

/** A token of the local issuer (what `personas token --scope ... --tenant T` prints), with the same subject for every tenant. */
const tokenFor = (tenant: string | undefined) => env.system.issuer!.sign({ scopes: [...SCOPES], subject: SUBJECT.sub, ...(tenant === undefined ? {} : { tenant }) });
const bearer = (token: string): TenantCall => (method, path, request = {}) => env.api(method, path, { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } });

beforeAll(async () => {
  process.env.TENANCY = 'claim';
  delete process.env.TENANT_CLAIM;
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  env = await startTestSystem({ auth: 'jwt', jwtKeyFile: localIssuerSettings({ LOCAL_DATA_DIR: workDir }).keyFile });
  documents = createDocumentClient(tableConfig());
  for (const tenant of TENANTS) {
    tokens[tenant] = await tokenFor(tenant);
    as[tenant] = bearer(tokens[tenant]);
  }
});
afterAll(async () => {
  await env?.system.stop();
  delete process.env.TENANCY;
});

/** A persona whose text names its tenant, so a leak of its data shows in any response. */
const tenantPersona = (tenant: string, n: number) => ({
  ...samplePersona(n),
  name: `${tenant} persona ${n}`,
  beliefs: [`${tenant}-secret-${n}`],
});

/** Every item of the table, by key, as stored. */
async function tableItems(): Promise<Map<string, Record<string, unknown>>> {
  const items = new Map<string, Record<string, unknown>>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: tableConfig().personaTableName, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    for (const item of page.Items ?? []) items.set(String(item.id), item);
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

const itemsNotOf = (items: Map<string, Record<string, unknown>>, tenant: string) =>
  JSON.stringify([...items].filter(([key]) => splitPersonaKey(key).tenant !== tenant).sort(([a], [b]) => a.localeCompare(b)));

describe('requests without a valid tenant claim', () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/personas'],
    ['POST', '/personas', samplePersona(1)],
    ['POST', '/personas/batch', { personas: [samplePersona(1)] }],
    ['GET', `/personas/${randomUUID()}`],
    ['PATCH', `/personas/${randomUUID()}`, { name: 'x' }],
    ['PUT', `/personas/${randomUUID()}`, samplePersona(1)],
    ['DELETE', `/personas/${randomUUID()}`],
    ['POST', '/personas/search', { query: 'persona' }],
    ['GET', `/personas/${randomUUID()}/similar`],
  ];
  const badTokens: Array<[string, string | undefined]> = [
    ['no tenant claim', undefined],
    ['an empty tenant claim', ''],
    ["a tenant with '#'", 'acme#globex'],
    ['a tenant of 65 characters', 'a'.repeat(65)],
  ];
  // And what only a misconfigured gateway could send: no authorizer context, or a claim that is not a string (API Gateway passes strings).
  // (With no authorizer context at all, the functions' scope check, which runs first, already refuses it.)
  const badEvents: Array<[string, Record<string, unknown> | undefined, string]> = [
    ['no authorizer context', undefined, 'insufficient-scope'],
    ['a tenant claim that is not a string', { ...SUBJECT, tenant_id: 42 }, 'tenant-required'],
  ];
  type Case = [string, () => Promise<TenantCall>, string];
  const cases: Case[] = [
    ...badTokens.map(([name, tenant]): Case => [`a token with ${name}`, async () => bearer(await tokenFor(tenant)), 'tenant-required']),
    ...badEvents.map(([name, claims, problem]): Case => [`an event with ${name}`, async () => claimsClient(claims as never), problem]),
  ];
  it.each(cases)('%s: every data route answers 403 problem+json and touches nothing', async (_, client, problem) => {
    const before = await tableItems();
    const call = await client();
    for (const [method, path, body] of routes) {
      const response = await call(method, path, body === undefined ? {} : { body, headers: method === 'PATCH' ? { 'content-type': 'application/merge-patch+json', 'if-match': '*' } : { 'if-match': '*' } });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(response.json.type).toContain(problem);
    }
    expect(await tableItems()).toEqual(before);
  });

  it('the tenant comes from the configured claim only, never from the body', async () => {
    process.env.TENANT_CLAIM = 'https://example.com/tenant';
    try {
      const namespaced = claimsClient({ ...SUBJECT, 'https://example.com/tenant': 'acme', tenant_id: 'globex' }, [...SCOPES]);
      const created = await namespaced('POST', '/personas', { body: tenantPersona('acme', 900) });
      expect(created.status).toBe(201);
      expect((await tableItems()).has(`acme#${created.json.id}`)).toBe(true);
      // The default claim name is not read when another is configured.
      expect((await claimsClient({ ...SUBJECT, tenant_id: 'acme' }, [...SCOPES])('GET', '/personas')).status).toBe(403);
    } finally {
      delete process.env.TENANT_CLAIM;
    }
    const viaBody = await as.acme('POST', '/personas', { body: { ...tenantPersona('acme', 901), tenant_id: 'globex' } });
    expect(viaBody.status).toBe(400);
    expect(JSON.stringify(viaBody.json.errors)).toContain('tenant_id');
  });
});

describe('per-tenant keys', () => {
  it("a cursor of one tenant's listing is invalid for another tenant", async () => {
    for (let n = 0; n < 3; n++) expect((await as.acme('POST', '/personas', { body: tenantPersona('acme', 910 + n) })).status).toBe(201);
    const page = await as.acme('GET', '/personas?limit=1');
    expect(page.json.next_cursor).toEqual(expect.any(String));
    const stolen = await as.globex('GET', `/personas?limit=1&cursor=${encodeURIComponent(page.json.next_cursor)}`);
    expect(stolen.status).toBe(400);
    expect(stolen.json.type).toContain('invalid-cursor');
    expect((await as.acme('GET', `/personas?limit=1&cursor=${encodeURIComponent(page.json.next_cursor)}`)).status).toBe(200);
  });

  it("an Idempotency-Key one tenant used neither replays nor blocks another tenant's request", async () => {
    const body = samplePersona(920);
    const first = await as.acme('POST', '/personas', { body, headers: { 'idempotency-key': 'shared-key' } });
    const replay = await as.acme('POST', '/personas', { body, headers: { 'idempotency-key': 'shared-key' } });
    const other = await as.globex('POST', '/personas', { body, headers: { 'idempotency-key': 'shared-key' } });
    expect([first.status, replay.status, other.status]).toEqual([201, 201, 201]);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(other.json.id).not.toBe(first.json.id);
    // Another body under the same key is a mismatch only for the tenant that used it.
    expect((await as.acme('POST', '/personas', { body: samplePersona(921), headers: { 'idempotency-key': 'shared-key' } })).status).toBe(422);
    expect((await as.initech('POST', '/personas', { body: samplePersona(921), headers: { 'idempotency-key': 'shared-key' } })).status).toBe(201);
  });

  it("a tenant's list is a Query of its partition of the tenant index, not a scan of the table", async () => {
    const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
    const sent: string[] = [];
    const original = DynamoDBDocumentClient.prototype.send;
    const spy = vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: any, ...rest: any[]) {
      // Reads of the persona table only (the stream worker's indexer runs in this process too and reads by key).
      if (/^(Scan|Query)Command$/.test(command.constructor.name)) sent.push(`${command.constructor.name} ${command.input.IndexName ?? ''}`.trim());
      return (original as any).call(this, command, ...rest);
    } as any);
    try {
      expect((await as.acme('GET', '/personas?limit=2')).status).toBe(200);
    } finally {
      spy.mockRestore();
    }
    expect(sent).toEqual(['QueryCommand tenant-index']);
  });
});

type Target = { kind: 'random' } | { kind: 'known'; index: number };
type Op =
  | { kind: 'create'; tenant: Tenant; n: number; key: string | null }
  | { kind: 'batch'; tenant: Tenant; ns: number[]; key: string | null }
  | { kind: 'patch' | 'replace' | 'delete' | 'get'; tenant: Tenant; target: Target }
  | { kind: 'list'; tenant: Tenant; limit: number; cursorOf: Tenant | null }
  | { kind: 'search'; tenant: Tenant; mode: string; about: Tenant }
  | { kind: 'similar'; tenant: Tenant; target: Target; mode: string }
  | { kind: 'import'; tenant: Tenant; file: number }
  | { kind: 'export'; tenant: Tenant };

const tenant = fc.constantFrom(...TENANTS);
// Mostly real ids (of any tenant, deleted ones included), sometimes a fresh guess.
const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'random' as const }) },
  { weight: 4, arbitrary: fc.nat(1_000).map((index) => ({ kind: 'known' as const, index })) },
);
const MODES = ['hybrid', 'semantic', 'keyword', 'personality', 'blend'];
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), tenant, n: fc.nat(50), key: fc.option(fc.constantFrom('k1', 'k2'), { nil: null }) }),
  fc.record({ kind: fc.constant('batch' as const), tenant, ns: fc.array(fc.nat(50), { minLength: 1, maxLength: 3 }), key: fc.option(fc.constantFrom('b1', 'b2'), { nil: null }) }),
  fc.record({ kind: fc.constantFrom('patch' as const, 'replace' as const, 'delete' as const, 'get' as const), tenant, target }),
  fc.record({ kind: fc.constant('list' as const), tenant, limit: fc.integer({ min: 1, max: 5 }), cursorOf: fc.option(tenant, { nil: null }) }),
  fc.record({ kind: fc.constant('search' as const), tenant, mode: fc.constantFrom(...MODES), about: tenant }),
  fc.record({ kind: fc.constant('similar' as const), tenant, target, mode: fc.constantFrom(...MODES) }),
  fc.record({ kind: fc.constant('import' as const), tenant, file: fc.nat(2) }),
  fc.record({ kind: fc.constant('export' as const), tenant }),
);

/** Ids every tenant created, in order (the pool `known` targets pick from), and whose each is. */
const ids: string[] = [];
const owner = new Map<string, Tenant>();
const lastCursor = new Map<Tenant, string>();
let checkedResponses = 0;
let crossTenantAttempts = 0;

function remember(tenantOf: Tenant, id: unknown) {
  if (typeof id !== 'string') return;
  const previous = owner.get(id);
  if (previous !== undefined && previous !== tenantOf) throw new Error(`id ${id} was handed to ${previous} and to ${tenantOf}`);
  if (previous === undefined) ids.push(id);
  owner.set(id, tenantOf);
}

const resolve = (choice: Target) => (choice.kind === 'known' && ids.length > 0 ? ids[choice.index % ids.length]! : randomUUID());

/** No response to `tenantOf` names another tenant's persona id (other than one it sent itself) or another tenant's text. */
function assertOwnDataOnly(tenantOf: Tenant, text: string, sentIds: readonly string[] = []) {
  checkedResponses++;
  for (const other of TENANTS) {
    if (other === tenantOf) continue;
    expect(text, `a response to ${tenantOf} carries ${other}'s text`).not.toMatch(new RegExp(`${other} persona|${other}-secret`));
  }
  for (const id of text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? []) {
    const of = owner.get(id);
    if (of !== undefined && of !== tenantOf && !sentIds.includes(id)) throw new Error(`a response to ${tenantOf} names ${of}'s persona ${id}: ${text.slice(0, 300)}`);
  }
}

/** Three files that any tenant may import: the same content, so the same Idempotency-Keys, for every tenant. */
const IMPORT_FILES = [0, 1, 2].map((file) => {
  const path = join(workDir, `import-${file}.jsonl`);
  writeFileSync(path, Array.from({ length: 3 }, (_, i) => JSON.stringify(samplePersona(200 + file * 10 + i))).join('\n') + '\n');
  return path;
});
let importRuns = 0;

async function run(step: Op): Promise<void> {
  const call = as[step.tenant];
  const before = await tableItems();
  const ownKey = (id: string) => `${step.tenant}#${id}`;
  let sent: string[] = [];
  let response: ApiResponse;
  switch (step.kind) {
    case 'create': {
      response = await call('POST', '/personas', { body: tenantPersona(step.tenant, step.n), ...(step.key ? { headers: { 'idempotency-key': step.key } } : {}) });
      expect([201, 410, 422]).toContain(response.status);
      if (response.status === 201) remember(step.tenant, response.json.id);
      break;
    }
    case 'batch': {
      response = await call('POST', '/personas/batch', { body: { personas: step.ns.map((n) => tenantPersona(step.tenant, n)) }, ...(step.key ? { headers: { 'idempotency-key': step.key } } : {}) });
      expect([200, 422]).toContain(response.status);
      for (const item of response.json.results ?? []) remember(step.tenant, item.id);
      break;
    }
    case 'import': {
      // `personas import`: its Idempotency-Keys derive from the file alone, so every tenant sends the same ones.
      const run = importRuns++;
      const report = await importPersonas({
        apiUrl: env.system.apiUrl,
        headers: { authorization: `Bearer ${tokens[step.tenant]}` },
        retry: false,
        file: IMPORT_FILES[step.file]!,
        checkpointFile: join(workDir, `import-${run}.checkpoint.json`),
        reportFile: join(workDir, `import-${run}.rejected.jsonl`),
      });
      expect(report).toMatchObject({ completed: true, rows: 3, rejected: 0 });
      expect(report.personasWritten + report.personasReplayed).toBe(3);
      // What it created is the tenant's: the new keys in the table are all under this tenant.
      const after = await tableItems();
      for (const key of after.keys()) {
        if (before.has(key)) continue;
        expect(splitPersonaKey(key).tenant, `import by ${step.tenant} wrote ${key}`).toBe(step.tenant);
        remember(step.tenant, splitPersonaKey(key).id);
      }
      response = { status: 200, headers: new Headers(), text: JSON.stringify(report), json: report };
      break;
    }
    case 'get':
    case 'patch':
    case 'replace':
    case 'delete': {
      const id = resolve(step.target);
      sent = [id];
      const mine = before.has(ownKey(id));
      if (owner.get(id) !== undefined && owner.get(id) !== step.tenant) crossTenantAttempts++;
      if (step.kind === 'get') response = await call('GET', `/personas/${id}`);
      else if (step.kind === 'patch') {
        response = await call('PATCH', `/personas/${id}`, { body: { emotional_style: `patched by ${step.tenant}` }, headers: { 'content-type': 'application/merge-patch+json' } });
      } else if (step.kind === 'replace') {
        response = await call('PUT', `/personas/${id}`, { body: tenantPersona(step.tenant, 99), headers: { 'if-match': '*' } });
      } else response = await call('DELETE', `/personas/${id}`);
      expect(response.status, `${step.kind} ${id} by ${step.tenant}`).toBe(mine ? { get: 200, patch: 200, replace: 200, delete: 204 }[step.kind] : 404);
      break;
    }
    case 'similar': {
      const id = resolve(step.target);
      sent = [id];
      if (owner.get(id) !== undefined && owner.get(id) !== step.tenant) crossTenantAttempts++;
      response = await call('GET', `/personas/${id}/similar?mode=${step.mode}&limit=20`);
      if (!before.has(ownKey(id))) expect(response.status).toBe(404);
      else expect([200, 409]).toContain(response.status);
      for (const hit of response.json?.items ?? []) expect(owner.get(hit.id), `similar hit ${hit.id} for ${step.tenant}`).toBe(step.tenant);
      break;
    }
    case 'search': {
      const traits = { openness: 0.4, conscientiousness: 0.5, extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5 };
      const body = {
        mode: step.mode,
        limit: 20,
        ...(step.mode === 'personality' ? {} : { query: `${step.about} persona ${step.about}-secret` }),
        ...(step.mode === 'personality' || step.mode === 'blend' ? { traits } : {}),
        ...(step.mode === 'blend' ? { hydrate: true } : {}),
      };
      response = await call('POST', '/personas/search', { body });
      expect(response.status, response.text).toBe(200);
      for (const hit of response.json.items) expect(owner.get(hit.id), `search hit ${hit.id} for ${step.tenant}`).toBe(step.tenant);
      break;
    }
    case 'list': {
      const cursor = step.cursorOf === null ? undefined : lastCursor.get(step.cursorOf);
      response = await call('GET', `/personas?limit=${step.limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (cursor && step.cursorOf !== step.tenant) expect(response.status).toBe(400);
      else {
        expect(response.status).toBe(200);
        if (response.json.next_cursor) lastCursor.set(step.tenant, response.json.next_cursor);
      }
      break;
    }
    case 'export': {
      // `personas export` through the API: every page of the tenant's listing, as JSON lines.
      let text = '';
      const out = new Writable({ write: (chunk, _encoding, done) => ((text += String(chunk)), done()) });
      await exportPersonas({ kind: 'api', api: { apiUrl: env.system.apiUrl, headers: { authorization: `Bearer ${tokens[step.tenant]}` }, retry: false } }, out);
      const exported = text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id);
      const expected = [...before.keys()].flatMap((key) => (splitPersonaKey(key).tenant === step.tenant ? [splitPersonaKey(key).id] : []));
      expect(exported.sort()).toEqual(expected.sort());
      response = { status: 200, headers: new Headers(), text, json: undefined };
      break;
    }
  }
  assertOwnDataOnly(step.tenant, response.text, sent);
  // Whatever a tenant does, no other tenant's item changes.
  expect(itemsNotOf(await tableItems(), step.tenant)).toBe(itemsNotOf(before, step.tenant));
}

it('random operations by several tenants never reach another tenant; table and index agree per tenant', { timeout: 150_000 }, async () => {
  // The personas the tests above wrote count as their tenants' too.
  for (const key of (await tableItems()).keys()) {
    const { tenant: of, id } = splitPersonaKey(key);
    remember(of as Tenant, id);
  }
  // Idempotency-Keys are remembered per tenant: a key reused with another body is a 422, which the runs expect.
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 40 }), async (steps) => {
      for (const step of steps) await run(step);
    }),
    { numRuns: 30, seed: Number(process.env.TENANT_PROPERTY_SEED ?? 1729), endOnFailure: true },
  );
  expect(crossTenantAttempts, 'the runs aimed requests at other tenants\' real ids').toBeGreaterThan(5);

  await env.system.streamWorker.drain(60_000);
  const { drift } = await indexDifferences();
  expect(drift).toEqual([]);
  // Per tenant: the points carrying its tenant_id are exactly its personas, at their versions.
  const collection = await resolveCollection(env.qdrant, env.collection!);
  const table = await tableItems();
  for (const tenantOf of TENANTS) {
    const rows = [...table].filter(([key]) => splitPersonaKey(key).tenant === tenantOf).map(([key, item]) => `${splitPersonaKey(key).id}@${String(item.version)}`);
    const { points } = await env.qdrant.scroll(collection, { filter: { must: [{ key: 'tenant_id', match: { value: tenantOf } }] }, limit: 10_000, with_payload: ['persona_id', 'version'] });
    expect(points.map((point) => `${String(point.payload?.persona_id)}@${String(point.payload?.version)}`).sort(), tenantOf).toEqual(rows.sort());
    expect(rows.length, `${tenantOf} has personas`).toBeGreaterThan(0);
  }
  console.log(`tenant property: ${checkedResponses} responses checked, ${crossTenantAttempts} requests aimed at another tenant's id, ${table.size} personas`);
});

it('the CLI tells a token without a tenant, and one the gateway refuses, what to do (personas token --tenant, the scope)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-cli-'));
  const file = join(dir, 'one.jsonl');
  writeFileSync(file, `${JSON.stringify(tenantPersona('cli', 1))}\n`);
  const noTenant = await runCli(['export', '--api-url', env.system.apiUrl, '--token', await tokenFor(undefined)]);
  expect(noTenant.code).toBe(1);
  expect(noTenant.stderr).toContain(`GET ${env.system.apiUrl}/personas?limit=100 answered 403`);
  expect(noTenant.stderr).toMatch(/tenant-required/);
  expect(noTenant.stderr).toMatch(/npx personas token --scope personas:read,personas:write --tenant T/);
  // A read-only token importing: the gateway's JWT authorizer answers 403 {"message":"Forbidden"} itself, naming no scope.
  const readOnly = await env.system.issuer!.sign({ scopes: ['personas:read'], subject: SUBJECT.sub, tenant: TENANTS[0] });
  const refused = await runCli(['import', file, '--api-url', env.system.apiUrl, '--token', readOnly]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`POST ${env.system.apiUrl}/personas/batch answered 403: {"message":"Forbidden"}`);
  expect(refused.stderr).toMatch(/the token lacks the scope this call needs \(export and search need personas:read, import needs personas:write/);
  expect(refused.stderr).not.toMatch(/the problem above names it/);
});

describe("keyword statistics are each tenant's own", () => {
  // Qdrant's IDF is global unless a query names a corpus (Qdrant 1.19 `params.idf.corpus`): with a
  // global IDF, tenant B's keyword scores move when tenant A writes a word B searches for, so B
  // learns whether A holds that word and how many personas the index has (issue 24, item 1).
  const WORD = 'zxqvsecret';
  const SCORED_MODES = ['keyword', 'hybrid', 'blend'] as const;
  const traits = { openness: 0.6, conscientiousness: 0.5, extraversion: 0.4, agreeableness: 0.5, neuroticism: 0.5 };
  const withWord = (tenantOf: string, n: number) => ({ ...tenantPersona(tenantOf, n), beliefs: [`${WORD} ${tenantOf}-secret-${n}`] });

  /** Tenant B's answers in each scored mode, as (id, score) pairs, once the index has every write. */
  async function scoresOf(call: TenantCall) {
    await env.system.streamWorker.drain(60_000);
    const answers: Record<string, Array<[string, number]>> = {};
    for (const mode of SCORED_MODES) {
      const response = await call('POST', '/personas/search', { body: { mode, query: `${WORD} persona`, limit: 50, ...(mode === 'blend' ? { traits } : {}) } });
      expect(response.status, response.text).toBe(200);
      answers[mode] = response.json.items.map((hit: { id: string; score: number }) => [hit.id, hit.score]);
    }
    return answers;
  }

  type Write = { kind: 'create'; n: number; word: boolean } | { kind: 'batch'; ns: number[] } | { kind: 'replace' | 'patch' | 'delete'; index: number };
  const write: fc.Arbitrary<Write> = fc.oneof(
    fc.record({ kind: fc.constant('create' as const), n: fc.nat(50), word: fc.boolean() }),
    fc.record({ kind: fc.constant('batch' as const), ns: fc.array(fc.nat(50), { minLength: 1, maxLength: 4 }) }),
    fc.record({ kind: fc.constantFrom('replace' as const, 'patch' as const, 'delete' as const), index: fc.nat(100) }),
  );

  it("tenant B's keyword, hybrid and blend scores are unchanged by any writes of tenant A", { timeout: 240_000 }, async () => {
    for (let n = 0; n < 3; n++) expect((await as.globex('POST', '/personas', { body: withWord('globex', 700 + n) })).status).toBe(201);
    const baseline = await scoresOf(as.globex);
    expect(baseline.keyword!.length, 'B finds its own personas by the word').toBeGreaterThanOrEqual(3);
    const written: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 5 }), async (writes) => {
        for (const step of writes) {
          if (step.kind === 'create') {
            const created = await as.acme('POST', '/personas', { body: step.word ? withWord('acme', step.n) : tenantPersona('acme', step.n) });
            expect(created.status).toBe(201);
            written.push(created.json.id);
          } else if (step.kind === 'batch') {
            const batch = await as.acme('POST', '/personas/batch', { body: { personas: step.ns.map((n) => withWord('acme', n)) } });
            expect(batch.status).toBe(200);
            for (const item of batch.json.results) written.push(item.id);
          } else if (written.length > 0) {
            const id = written[step.index % written.length]!;
            if (step.kind === 'delete') await as.acme('DELETE', `/personas/${id}`);
            else if (step.kind === 'patch') await as.acme('PATCH', `/personas/${id}`, { body: { beliefs: [`${WORD} ${WORD} patched`] }, headers: { 'content-type': 'application/merge-patch+json' } });
            else await as.acme('PUT', `/personas/${id}`, { body: withWord('acme', 99), headers: { 'if-match': '*' } });
          }
        }
        expect(await scoresOf(as.globex)).toEqual(baseline);
      }),
      { numRuns: 6, seed: Number(process.env.TENANT_PROPERTY_SEED ?? 1729), endOnFailure: true },
    );
    expect(written.length, 'tenant A wrote personas with the word').toBeGreaterThan(3);
  });
});

/**
 * The built artifact, not the source: the dev stack is synthesized once (for this machine's
 * architecture, with the generated test model), and each function's bundled `index.mjs` from the
 * cloud assembly runs in its own fresh Node process (test/support/lambdaBundleRunner.mjs) with the
 * environment the template gives it, against DynamoDB Local, the local Qdrant server (with an API
 * key) and a Secrets Manager stand-in that can rotate values (test/support/secretsManagerStandIn.ts).
 *
 * What is imitated, and from where:
 * - Lambda's Node.js runtime: the asset is the task root, the module's top level is the init phase,
 *   only the AWS SDK v3 is provided besides the asset (https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html);
 *   a synchronous invocation's response is at most 6 MB (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
 * - API Gateway HTTP API events, payload format 2.0 (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
 *   version, routeKey, rawPath, rawQueryString, lower-case headers, queryStringParameters,
 *   pathParameters, requestContext.http, body, isBase64Encoded.
 * - DynamoDB Streams events (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html): Records with
 *   eventID, eventName, eventVersion, eventSource "aws:dynamodb", awsRegion, eventSourceARN and
 *   `dynamodb` {ApproximateCreationDateTime (epoch seconds), Keys, NewImage, OldImage, SequenceNumber,
 *   SizeBytes, StreamViewType}; here built from the real records DynamoDB Local's stream returns.
 * - EventBridge scheduled events (https://docs.aws.amazon.com/lambda/latest/dg/with-scheduled-events.html):
 *   version "0", id, detail-type "Scheduled Event", source "aws.events", account, time, region,
 *   resources (the rule's ARN), detail {}.
 * - Step Functions' Lambda integration hands a Distributed Map child the item its ItemSelector builds
 *   (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemselector.html) and retries
 *   by the error's name, which the Node.js runtime reports as errorType from `error.name`
 *   (aws-lambda-nodejs-runtime-interface-client, src/Errors.js).
 * - The SDK reaches the stand-ins through its service-specific endpoint variables (AWS_ENDPOINT_URL_DYNAMODB,
 *   AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL_S3: https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html);
 *   S3 is test/support/s3StandIn.ts, holding a table export written in DynamoDB's layout (test/support/tableExport.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { App } from 'aws-cdk-lib';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { generateTestModel } from '../lib/generatedModels/testModel';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';
import { toLambdaRecord } from '../local/streamWorker';
import { PROJECT_ROOT } from '../infra/bundling';
import { INDEXER_LOGICAL_ID, PersonaDbStack, RECONCILER_LOGICAL_ID } from '../infra/personaDbStack';
import { buildStageConfig, stackName } from '../infra/stageConfig';
import { tableConfig } from '../shared/config';
import { resolveCollection } from '../shared/operations/indexReconciler';
import { dynamoLeaseStore, leaseKey, takeLease } from '../shared/operations/reconcileLease';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { streamClients } from '../shared/operations/personaChangeTail';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { samplePersona } from './support/apiClient';
import { freePort } from './support/globalSetup';
import { startSecretsManagerStandIn, type SecretsManagerStandIn } from './support/secretsManagerStandIn';
import { startS3StandIn, type S3StandIn } from './support/s3StandIn';
import { writeTableExport } from './support/tableExport';
import { BACKFILL_LOGICAL_ID, PLAN_LOGICAL_ID, REINDEX_PREFIX } from '../infra/reindexAtScale';
import { compareIndex, readAllPoints } from '../shared/operations/indexReconciler';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import { createPersonaCollection, readIndexedModel } from '../shared/vectorIndex/personaCollection';
import { pointIdForKey } from '../shared/tenancy/tenantKeys';
import type { BackfillChunkReport } from '../shared/reindexAtScale/backfillChunk';
import type { BackfillPlan } from '../shared/reindexAtScale/exportFiles';
import { useFreshTables } from './support/tables';
import { startQdrantProxy } from './support/qdrantProxy';
import { INIT_LOAD_BUDGET_MS } from '../shared/lambdaInit';

const LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024;
const REGION = 'us-east-1';
const root = mkdtempSync(path.join(tmpdir(), 'persona-artifacts-'));

let template: { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
let outdir: string;
/** CloudFormation references in the template, mapped to what they are here. */
const references = new Map<string, string>();
let secrets: SecretsManagerStandIn;
let s3: S3StandIn;
let qdrant: QdrantServer;
let qdrantPort: number;
let qdrantKey = 'qdrant-key-1';
let qdrantSecretArn: string;
const qdrantDataDir = path.join(root, 'qdrant');
const running: ChildProcess[] = [];

async function startQdrant(apiKey: string): Promise<void> {
  qdrantKey = apiKey;
  qdrant = await startQdrantServer({ port: qdrantPort, apiKey, dataDir: qdrantDataDir });
}

// ---- functions as Lambda runs them -------------------------------------------------------------

interface BundledFunction {
  /** `timeoutMs`: the function's remaining time at the start (context.getRemainingTimeInMillis). */
  invoke<T = unknown>(event: unknown, timeoutMs?: number): Promise<T>;
  /** What the process wrote while its module loaded: Lambda's init phase, before any invocation. */
  initLogs: string;
  /** Everything the process wrote (logs) so far. */
  logs(): string;
}

function environmentOf(functionId: string, taskRoot: string): Record<string, string> {
  const variables = template.Resources[functionId]!.Properties.Environment.Variables as Record<string, unknown>;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(variables)) {
    const resolved = typeof value === 'string' ? value : references.get(JSON.stringify(value));
    if (resolved === undefined) throw new Error(`${functionId}: no stand-in for ${name} = ${JSON.stringify(value)}`);
    // Lambda unpacks the asset at /var/task (LAMBDA_TASK_ROOT).
    env[name] = resolved.replaceAll('/var/task', taskRoot);
  }
  return env;
}

async function startFunction(functionId: string, overrides: Record<string, string> = {}): Promise<BundledFunction> {
  const key = template.Resources[functionId]!.Properties.Code.S3Key as string;
  const taskRoot = path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
  const child = fork(path.join(PROJECT_ROOT, 'test/support/lambdaBundleRunner.mjs'), [taskRoot], {
    cwd: taskRoot,
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      PATH: process.env.PATH ?? '',
      ...environmentOf(functionId, taskRoot),
      // What the Lambda runtime sets, and the SDK's endpoints of the stand-ins.
      AWS_LAMBDA_FUNCTION_NAME: functionId,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(template.Resources[functionId]!.Properties.MemorySize),
      LAMBDA_TASK_ROOT: taskRoot,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'artifacttest', // DynamoDB Local accepts letters and digits only
      AWS_SECRET_ACCESS_KEY: 'artifacttest',
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamodbEndpoint'),
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...overrides,
    },
  });
  running.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const pending = new Map<string, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  let initLogs = '';
  await new Promise<void>((resolve, reject) => {
    child.on('message', (message: any) => {
      if (message.type === 'ready') {
        initLogs = output;
        resolve();
      }
      else if (message.type === 'init-error') reject(new Error(`${functionId} failed to initialise: ${message.error}\n${output}`));
      else if (message.id) {
        const waiter = pending.get(message.id)!;
        pending.delete(message.id);
        if (message.error) waiter.reject(new Error(`${functionId}: ${message.error}`));
        else waiter.resolve(message.result);
      }
    });
    child.on('exit', (code) => reject(new Error(`${functionId} exited (${code}) during init:\n${output}`)));
  });
  return {
    initLogs,
    invoke: (event, timeoutMs) =>
      new Promise((resolve, reject) => {
        const id = randomUUID();
        pending.set(id, {
          resolve: (result) => {
            expect(Buffer.byteLength(JSON.stringify(result)), `${functionId} response within Lambda's 6 MB`).toBeLessThan(LAMBDA_RESPONSE_LIMIT);
            resolve(result);
          },
          reject,
        });
        child.send({ id, event, ...(timeoutMs ? { timeoutMs } : {}) });
      }),
    logs: () => output,
  };
}

// ---- events shaped like AWS's --------------------------------------------------------------

function httpEvent(
  method: string,
  routeKey: string,
  rawPath: string,
  options: { body?: unknown; query?: string; pathParameters?: Record<string, string>; headers?: Record<string, string>; jwt?: { claims: Record<string, string>; scopes: string[] | null } } = {},
): APIGatewayProxyEventV2 {
  const now = new Date();
  const query = new URLSearchParams(options.query ?? '');
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: options.query ?? '',
    headers: {
      host: 'abc123.execute-api.us-east-1.amazonaws.com',
      'x-forwarded-proto': 'https',
      'user-agent': 'artifact-test',
      ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
      ...options.headers,
    },
    ...(query.size ? { queryStringParameters: Object.fromEntries(query) } : {}),
    ...(options.pathParameters ? { pathParameters: options.pathParameters } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      // What a JWT authorizer passes on (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
      // every claim a string, and the token's scopes.
      ...(options.jwt ? { authorizer: { jwt: options.jwt } } : {}),
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'artifact-test' },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body ? { body } : {}),
    isBase64Encoded: false,
  };
}

let streamArn: string;
let tables: Awaited<ReturnType<typeof useFreshTables>>;
const delivered = new Set<string>();

/** The stream records written since the last call, as the event source mapping hands them to the indexer. */
async function nextStreamBatch(): Promise<DynamoDBStreamEvent> {
  const { streams } = streamClients(tableConfig());
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const records: DynamoDBRecord[] = [];
  for (const shard of StreamDescription!.Shards ?? []) {
    let iterator = (await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let page = 0; iterator && page < 50; page++) {
      const result = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const record of result.Records ?? []) {
        if (delivered.has(record.eventID!)) continue;
        delivered.add(record.eventID!);
        records.push(toLambdaRecord(record, streamArn, REGION));
      }
      if (!result.Records?.length) break;
      iterator = result.NextShardIterator;
    }
  }
  return { Records: records };
}

const json = (response: APIGatewayProxyStructuredResultV2) => JSON.parse(response.body ?? 'null');

// ---- setup ---------------------------------------------------------------------------------

const fns = {} as Record<'createPersona' | 'getPersona' | 'listPersonas' | 'searchPersonas' | 'similarPersonas' | 'indexer' | 'reconciler', BundledFunction>;

beforeAll(async () => {
  // Only the AWS SDK is available beside the asset, as the nodejs22.x runtime provides it.
  mkdirSync(path.join(root, 'node_modules'), { recursive: true });
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules', '@aws-sdk'), path.join(root, 'node_modules', '@aws-sdk'));
  outdir = path.join(root, 'cdk.out');
  const { dir: modelDir } = await generateTestModel();
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ outdir, context: { ...cdkJson.context, stage: 'dev' } });
  const config = buildStageConfig('dev', { embeddingModelDir: modelDir, lambdaArchitecture: process.arch === 'arm64' ? 'arm64' : 'x86_64' });
  const stack = new PersonaDbStack(app, stackName('dev'), { config });
  app.synth();
  template = JSON.parse(readFileSync(path.join(outdir, `${stack.artifactId}.template.json`), 'utf8'));

  tables = await useFreshTables('persona-art');
  const description = await streamClients(tables).dynamodb.send(new DescribeTableCommand({ TableName: tables.personaTableName }));
  streamArn = description.Table!.LatestStreamArn!;
  secrets = await startSecretsManagerStandIn(REGION);
  s3 = await startS3StandIn();
  qdrantPort = await freePort();
  await startQdrant(qdrantKey);
  qdrantSecretArn = secrets.create('persona-db-dev-qdrant', { url: `http://127.0.0.1:${qdrantPort}`, apiKey: qdrantKey });
  const cursorKeyArn = secrets.create('persona-db-dev-cursor-key', randomUUID() + randomUUID());
  const ref = (token: string) => JSON.stringify(stack.resolve(token));
  references.set(ref(stack.table.tableName), tables.personaTableName);
  references.set(ref(stack.idempotencyTable.tableName), tables.idempotencyTableName);
  references.set(ref(stack.qdrantSecret.secretArn), qdrantSecretArn);
  references.set(ref(stack.cursorSigningKey.secretArn), cursorKeyArn);

  for (const id of Object.keys({ createPersona: 0, getPersona: 0, listPersonas: 0, searchPersonas: 0, similarPersonas: 0, [INDEXER_LOGICAL_ID]: 0, [RECONCILER_LOGICAL_ID]: 0 })) {
    fns[id as keyof typeof fns] = await startFunction(id);
  }
}, 300_000);

afterAll(async () => {
  for (const child of running) child.kill();
  await qdrant?.close().catch(() => undefined);
  await secrets?.close();
  await s3?.close();
  rmSync(root, { recursive: true, force: true });
});

// ---- the scenario, in order ------------------------------------------------------------------

const ids: string[] = [];

describe('bundled functions from cdk.out', () => {
  it('create, read and list through the API bundles (cursor signed with the key from Secrets Manager)', async () => {
    for (const n of [1, 2, 3]) {
      const created = await fns.createPersona.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas', '/personas', { body: samplePersona(n) }));
      expect(created.statusCode, fns.createPersona.logs().slice(-4000)).toBe(201);
      ids.push(json(created).id);
    }
    const read = await fns.getPersona.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('GET', 'GET /personas/{id}', `/personas/${ids[0]}`, { pathParameters: { id: ids[0]! } }));
    expect(read.statusCode).toBe(200);
    expect(json(read)).toMatchObject({ id: ids[0], name: samplePersona(1).name });
    const page = await fns.listPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('GET', 'GET /personas', '/personas', { query: 'limit=2' }));
    expect(page.statusCode).toBe(200);
    const first = json(page);
    expect(first.items).toHaveLength(2);
    const next = await fns.listPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('GET', 'GET /personas', '/personas', { query: `limit=2&cursor=${encodeURIComponent(first.next_cursor)}` }));
    expect(json(next).items.map((item: { id: string }) => item.id)).toEqual(ids.filter((id) => !first.items.some((item: { id: string }) => item.id === id)));
  });

  it('with AUTH=jwt the bundled function checks the scope from requestContext.authorizer.jwt: 403 problem naming it, else the answer', async () => {
    const guarded = await startFunction('getPersona', { AUTH: 'jwt' });
    const claims = { iss: 'https://issuer.example.com/', sub: 'user-1', aud: 'persona-api', exp: '1999999999', iat: '1700000000' };
    const event = (scope: string) => httpEvent('GET', 'GET /personas/{id}', `/personas/${ids[0]}`, { pathParameters: { id: ids[0]! }, jwt: { claims: { ...claims, scope }, scopes: scope.split(' ') } });
    const refused = await guarded.invoke<APIGatewayProxyStructuredResultV2>(event('personas:write'));
    expect(refused.statusCode).toBe(403);
    expect(String(refused.headers?.['content-type'])).toMatch(/^application\/problem\+json/);
    expect(json(refused)).toMatchObject({ type: 'https://persona-db.dev/problems/insufficient-scope', required_scope: 'personas:read' });
    expect((await guarded.invoke<APIGatewayProxyStructuredResultV2>(event('personas:read'))).statusCode).toBe(200);
    expect((await guarded.invoke<APIGatewayProxyStructuredResultV2>(event('openid personas:admin'))).statusCode).toBe(200);
    // The template gives every API function the stage's mode (dev: none, so the others above run open).
    expect(template.Resources.getPersona!.Properties.Environment.Variables.AUTH).toBe('none');
  });

  it('the indexer bundle syncs a real stream batch into Qdrant; search and similar bundles find it', async () => {
    const batch = await nextStreamBatch();
    expect(batch.Records).toHaveLength(3);
    // Lambda delivers whole epoch seconds (StreamRecord: "rounded down to the closest second"), as the local worker does.
    for (const record of batch.Records) expect(Number.isInteger(record.dynamodb!.ApproximateCreationDateTime)).toBe(true);
    expect(await fns.indexer.invoke(batch)).toEqual({ batchItemFailures: [] });
    const search = await fns.searchPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas/search', '/personas/search', { body: { query: samplePersona(2).name, limit: 3 } }));
    expect(search.statusCode).toBe(200);
    expect(json(search).items.map((item: { id: string }) => item.id).sort()).toEqual([...ids].sort());
    const similar = await fns.similarPersonas.invoke<APIGatewayProxyStructuredResultV2>(
      httpEvent('GET', 'GET /personas/{id}/similar', `/personas/${ids[0]}/similar`, { pathParameters: { id: ids[0]! } }),
    );
    expect(similar.statusCode).toBe(200);
    expect(json(similar).items.map((item: { id: string }) => item.id).sort()).toEqual(ids.slice(1).sort());
  });

  it('the functions that embed or read the index load the model and the Qdrant connection during init, before their first invocation', () => {
    for (const id of ['searchPersonas', 'similarPersonas', INDEXER_LOGICAL_ID, RECONCILER_LOGICAL_ID] as const) {
      expect(fns[id].initLogs, id).toContain('Loaded during init');
    }
    // Nothing to load for the others.
    expect(fns.createPersona.initLogs).not.toContain('Loaded during init');
  });

  it(`init waits at most ${INIT_LOAD_BUDGET_MS / 1000} s for a Qdrant that does not answer; the first invocation waits for the rest and joins the collection check init started`, async () => {
    // Lambda's init phase has 10 s in all (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html);
    // one unanswered Qdrant call alone takes the client's 10 s timeout.
    const proxy = await startQdrantProxy(`http://127.0.0.1:${qdrantPort}`);
    try {
      proxy.hold();
      const slowSecret = secrets.create(`persona-db-dev-qdrant-held-${randomUUID().slice(0, 8)}`, { url: proxy.url, apiKey: qdrantKey });
      const indexer = await startFunction(INDEXER_LOGICAL_ID, { QDRANT_SECRET_ARN: slowSecret });
      // Init ended on its budget, with the collection check still waiting on Qdrant.
      expect(indexer.initLogs).toContain('still running after its budget');
      expect(indexer.initLogs).not.toContain('Loading during init failed');
      const budgetLine = JSON.parse(indexer.initLogs.split('\n').find((line) => line.includes('still running after its budget'))!) as { budgetMs: number };
      expect(budgetLine.budgetMs).toBe(INIT_LOAD_BUDGET_MS);
      expect(proxy.held).toBeGreaterThan(0);
      const invocation = indexer.invoke({ Records: [] });
      proxy.release();
      expect(await invocation).toEqual({ batchItemFailures: [] });
      // One collection check in all: the invocation waited for init's instead of starting its own.
      const aliasReads = proxy.exchanges.filter((exchange) => exchange.method === 'GET' && exchange.path.includes('aliases'));
      expect(aliasReads.map((exchange) => exchange.status)).toEqual([200]);
    } finally {
      await proxy.close();
    }
  });

  it('the reconciler bundle (scheduled event) repairs a deleted point, its checkpoint and lease in the idempotency table of the template; it publishes ReconcilePassesCompleted; a held lease makes it skip', async () => {
    const client = createQdrantClient({ url: `http://127.0.0.1:${qdrantPort}`, apiKey: qdrantKey });
    const collection = await resolveCollection(client, template.Resources[RECONCILER_LOGICAL_ID]!.Properties.Environment.Variables.QDRANT_COLLECTION as string);
    await client.delete(collection, { wait: true, points: [ids[0]!] });
    const scheduled = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      region: REGION,
      resources: [`arn:aws:events:${REGION}:123456789012:rule/reconciler-schedule`],
      detail: {},
    };
    // Another run holds the lease (in the table the template names): the bundle skips, touching nothing.
    const leases = dynamoLeaseStore(createDocumentClient(tables), tables.idempotencyTableName);
    const alias = template.Resources[RECONCILER_LOGICAL_ID]!.Properties.Environment.Variables.QDRANT_COLLECTION as string;
    const held = await takeLease({ store: leases, key: leaseKey(alias), holder: 'personas reconcile on ops (pid 7)', durationMs: () => 60_000 }, Date.now);
    const skipped = await fns.reconciler.invoke(scheduled, 900_000);
    expect(skipped, fns.reconciler.logs().slice(-4000)).toMatchObject({ complete: false, skipped: 'lease-held', heldBy: 'personas reconcile on ops (pid 7)' });
    expect(await client.retrieve(collection, { ids: [ids[0]!] })).toHaveLength(0);
    await held.release();
    // Lambda's 15 minutes (the reconciler's timeout).
    const result = await fns.reconciler.invoke(scheduled, 900_000);
    expect(result, fns.reconciler.logs().slice(-4000)).toMatchObject({ complete: true, found: 1, remaining: 0 });
    expect(await client.retrieve(collection, { ids: [ids[0]!] })).toHaveLength(1);
    // One completed pass, one ReconcilePassesCompleted (the skipped invocation published none).
    expect(fns.reconciler.logs().match(/"ReconcilePassesCompleted":1\b/g)).toHaveLength(1);
  });

  it('a rotated Qdrant API key reaches the warm search function without a restart, and its version is logged', async () => {
    await qdrant.close();
    await startQdrant('qdrant-key-2');
    const version = secrets.rotate(qdrantSecretArn, { url: `http://127.0.0.1:${qdrantPort}`, apiKey: 'qdrant-key-2' });
    const search = await fns.searchPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas/search', '/personas/search', { body: { query: 'anything', limit: 3 } }));
    expect(search.statusCode).toBe(200);
    expect(json(search).items).toHaveLength(3);
    expect(fns.searchPersonas.logs()).toContain(version);
    expect(fns.searchPersonas.logs()).not.toContain('qdrant-key-2');
  });

  it('Qdrant down: search answers 503 with Retry-After; the indexer reports batch item failures and logs each persona id with the cause', async () => {
    await qdrant.close();
    const search = await fns.searchPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas/search', '/personas/search', { body: { query: 'anything' } }));
    expect(search.statusCode).toBe(503);
    expect(search.headers?.['Retry-After'] ?? search.headers?.['retry-after']).toBeDefined();

    const created = await fns.createPersona.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas', '/personas', { body: samplePersona(4) }));
    ids.push(json(created).id);
    const batch = await nextStreamBatch();
    expect(batch.Records).toHaveLength(1);
    const response = await fns.indexer.invoke<{ batchItemFailures: { itemIdentifier: string }[] }>(batch);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: batch.Records[0]!.dynamodb!.SequenceNumber }]);
    const failureLine = fns.indexer.logs().split('\n').find((line) => line.includes('persona not synced'));
    expect(failureLine).toBeDefined();
    expect(JSON.parse(failureLine!)).toMatchObject({ personaId: ids[3], cause: expect.stringMatching(/ECONNREFUSED/) });

    // Recovery: Qdrant is back (same data); the retried batch goes through, search answers again.
    await startQdrant(qdrantKey);
    expect(await fns.indexer.invoke(batch)).toEqual({ batchItemFailures: [] });
    const after = await fns.searchPersonas.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas/search', '/personas/search', { body: { query: samplePersona(4).name, limit: 10 } }));
    expect(after.statusCode).toBe(200);
    expect(json(after).items.map((item: { id: string }) => item.id)).toContain(ids[3]);
  });

  it('with TENANCY=claim the bundled functions serve only the tenant of the token: its own personas, 404 for another tenant\'s, 403 without a tenant claim', async () => {
    const env = { AUTH: 'jwt', TENANCY: 'claim' };
    const [create, get, list] = await Promise.all([startFunction('createPersona', env), startFunction('getPersona', env), startFunction('listPersonas', env)]);
    const jwt = (tenant?: string) => ({
      claims: { iss: 'https://issuer.example.com/', sub: 'user-1', scope: 'personas:read personas:write', ...(tenant ? { tenant_id: tenant } : {}) },
      scopes: ['personas:read', 'personas:write'],
    });
    // Last in the scenario: the steps above count the table's personas and stream records.
    const created = await create.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas', '/personas', { body: samplePersona(7), jwt: jwt('acme') }));
    expect(created.statusCode, create.logs().slice(-4000)).toBe(201);
    const id = json(created).id as string;
    const read = (tenant: string) => get.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('GET', 'GET /personas/{id}', `/personas/${id}`, { pathParameters: { id }, jwt: jwt(tenant) }));
    expect((await read('acme')).statusCode).toBe(200);
    expect((await read('globex')).statusCode).toBe(404);
    // The list is a Query of the tenant index, granted and present as the stack declares it.
    const listed = (tenant?: string) => list.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('GET', 'GET /personas', '/personas', { query: 'limit=100', jwt: jwt(tenant) }));
    expect(json(await listed('acme')).items.map((item: { id: string }) => item.id)).toEqual([id]);
    expect(json(await listed('globex')).items).toEqual([]);
    const refused = await listed(undefined);
    expect(refused.statusCode).toBe(403);
    expect(json(refused)).toMatchObject({ type: 'https://persona-db.dev/problems/tenant-required' });
    // The template sets the stage's tenancy on every API function (dev: single, so the others above run single-tenant).
    expect(template.Resources.listPersonas!.Properties.Environment.Variables).toMatchObject({ TENANCY: 'single', TENANT_CLAIM: 'tenant_id' });
  });
  it('the reindex bundles: the plan splits a table export (DynamoDB\'s layout) into chunks, and each backfill child embeds its chunk into the new collection, tenants mapped as the indexer maps them', async () => {
    // Last in the scenario: it exports the table as the steps above left it (a tenant's persona included).
    for (const n of [11, 12, 13, 14, 15, 16]) {
      const created = await fns.createPersona.invoke<APIGatewayProxyStructuredResultV2>(httpEvent('POST', 'POST /personas', '/personas', { body: samplePersona(n) }));
      expect(created.statusCode).toBe(201);
    }
    const client = createQdrantClient({ url: `http://127.0.0.1:${qdrantPort}`, apiKey: qdrantKey });
    const alias = template.Resources[BACKFILL_LOGICAL_ID]!.Properties.Environment.Variables.QDRANT_COLLECTION as string;
    const live = await resolveCollection(client, alias);
    const model = (await readIndexedModel(client, live))!;
    const collection = `${alias}-v${Number(/-v(\d+)$/.exec(live)![1]) + 1}`;
    await createPersonaCollection(client, collection, model);

    const bucket = 'persona-db-dev-reindex';
    const written = await writeTableExport(s3, tables, { bucket, prefix: `${REINDEX_PREFIX}/${collection}`, partitions: 3 });
    const repository = personaRepositoryFor(tables);
    const rows = (await compareIndex({ repository, qdrant: client }, live, model)).personas;
    expect(written.itemCount).toBe(rows);
    const [plan, backfill] = await Promise.all([startFunction(PLAN_LOGICAL_ID), startFunction(BACKFILL_LOGICAL_ID)]);
    expect(backfill.initLogs).toContain('Loaded during init');

    const workListKey = `${REINDEX_PREFIX}/${collection}/work-list.jsonl`;
    const planned = await plan.invoke<BackfillPlan>({ bucket, manifestSummaryKey: written.summaryKey, workListKey, chunkItems: 3 });
    expect(planned, plan.logs().slice(-3000)).toMatchObject({ exportArn: written.exportArn, files: 3, personas: rows, chunkItems: 3 });
    const chunks = s3.get(bucket, workListKey)!.toString('utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(chunks).toHaveLength(planned.chunks);
    expect(chunks.reduce((sum: number, chunk: { take: number }) => sum + chunk.take, 0)).toBe(rows);

    // Each child gets what the Map's ItemSelector builds: the collection, the bucket and one work-list line.
    const reports: BackfillChunkReport[] = [];
    for (const chunk of chunks) reports.push(await backfill.invoke<BackfillChunkReport>({ collection, bucket, chunk }, 900_000));
    expect(reports.reduce((sum, report) => sum + report.personas, 0)).toBe(rows);
    expect(reports.every((report) => report.actions.failed === 0 && report.failed.length === 0), backfill.logs().slice(-3000)).toBe(true);
    expect((await compareIndex({ repository, qdrant: client }, collection, model)).drift).toEqual([]);
    const points = await readAllPoints(client, collection);
    expect(points).toHaveLength(rows);
    // The tenant's persona (key acme#<id>) has the derived point id and its tenant in the payload.
    const tenantKey = (await repository.scanPage({ pageSize: 1000 })).items.find((row) => row.id.startsWith('acme#'))!.id;
    const [tenantPoint] = await client.retrieve(collection, { ids: [pointIdForKey(tenantKey)], with_payload: true });
    expect(tenantPoint?.payload).toMatchObject({ tenant_id: 'acme', persona_id: tenantKey.slice('acme#'.length) });

    // A retried chunk (Step Functions' Retry) writes nothing again.
    const again = await backfill.invoke<BackfillChunkReport>({ collection, bucket, chunk: chunks[0] }, 900_000);
    expect(again.actions).toMatchObject({ embedded: 0, 'payload-only': 0, skipped: chunks[0].take });

    // Refused, not retried: the collection behind the alias (a swapped reindex), or one that is not a reindex's.
    await expect(backfill.invoke({ collection: live, bucket, chunk: chunks[0] })).rejects.toThrow(/BackfillTargetRefused: .*already points at it/);
    await expect(backfill.invoke({ collection: 'other-v1', bucket, chunk: chunks[0] })).rejects.toThrow(/BackfillTargetRefused: .*writes only 'personas-v<n>'/);
    // Qdrant down: the error the state machine's Retry matches (QdrantUnavailable, with backoff).
    await qdrant.close();
    await expect(backfill.invoke({ collection, bucket, chunk: chunks[0] })).rejects.toThrow(/^[^\n]*QdrantUnavailable: Qdrant is unavailable/);
    await startQdrant(qdrantKey);
  }, 300_000);
});

/**
 * The route table's `tableActions` (which the stack grants, and nothing more: test/infra.test.ts)
 * must be exactly what each route's code calls. Every route is exercised through the local API on
 * its paths (with and without Idempotency-Key, replays, hydrated search), and every DynamoDB command
 * its handler sends is recorded and mapped to the IAM action AWS authorizes it by
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/api-permissions-reference.html:
 * a TransactWriteItems needs the actions of its items; BatchGetItem and BatchWriteItem are actions of their own).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { tableConfig } from '../shared/config';
import { routes, type TableAction } from '../shared/routes';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

const fromIndexer = new AsyncLocalStorage<true>();
let env: Awaited<ReturnType<typeof startTestSystem>>;
let calls: { command: string; input: Record<string, any> }[] = [];

const ACTION_OF: Record<string, TableAction> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  ScanCommand: 'Scan',
  QueryCommand: 'Query',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
};

/** `table -> actions` of the recorded calls, with table names mapped to the route table's keys. */
function recordedActions(): Record<string, string[]> {
  const { personaTableName, idempotencyTableName } = tableConfig();
  const tableKey = (name: string) => (name === personaTableName ? 'personas' : name === idempotencyTableName ? 'idempotency' : name);
  const out: Record<string, Set<string>> = {};
  const add = (table: string, action: string) => (out[tableKey(table)] ??= new Set()).add(action);
  for (const { command, input } of calls) {
    if (command === 'TransactWriteCommand') {
      for (const item of input.TransactItems as Array<Record<string, { TableName: string }>>) {
        const [kind, body] = Object.entries(item)[0]!;
        add(body.TableName, { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind]!);
      }
    } else if (input.RequestItems) {
      for (const table of Object.keys(input.RequestItems)) add(table, ACTION_OF[command] ?? command);
    } else {
      add(input.TableName, ACTION_OF[command] ?? command);
    }
  }
  return Object.fromEntries(Object.entries(out).map(([table, actions]) => [table, [...actions].sort()]));
}

beforeAll(async () => {
  env = await startTestSystem({ wrapIndexer: (handler) => (event) => fromIndexer.run(true, () => handler(event)) });
  const send = DynamoDBDocumentClient.prototype.send;
  vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: any, ...rest: any[]) {
    if (!fromIndexer.getStore()) calls.push({ command: command.constructor.name, input: command.input });
    return (send as any).call(this, command, ...rest);
  } as any);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await env?.system.stop();
});

it('each route calls exactly the DynamoDB actions its route-table entry declares', async () => {
  const created = await env.api('POST', '/personas', { body: samplePersona(1) });
  const id = created.json.id as string;
  const batchBody = { personas: [samplePersona(2), samplePersona(3)] };
  await env.system.streamWorker.drain(60_000);

  const scenarios: Record<string, Array<() => Promise<unknown>>> = {
    createPersona: [
      () => env.api('POST', '/personas', { body: samplePersona(4) }),
      () => env.api('POST', '/personas', { body: samplePersona(5), headers: { 'idempotency-key': 'perm-create' } }),
      () => env.api('POST', '/personas', { body: samplePersona(5), headers: { 'idempotency-key': 'perm-create' } }),
    ],
    listPersonas: [() => env.api('GET', '/personas?limit=1')],
    batchCreatePersonas: [
      () => env.api('POST', '/personas/batch', { body: batchBody }),
      () => env.api('POST', '/personas/batch', { body: batchBody, headers: { 'idempotency-key': 'perm-batch' } }),
      () => env.api('POST', '/personas/batch', { body: batchBody, headers: { 'idempotency-key': 'perm-batch' } }),
    ],
    getPersona: [() => env.api('GET', `/personas/${id}`)],
    replacePersona: [() => env.api('PUT', `/personas/${id}`, { body: samplePersona(6), headers: { 'if-match': '"1"' } })],
    patchPersona: [() => env.api('PATCH', `/personas/${id}`, { body: { name: 'Patched' }, headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"2"' } })],
    searchPersonas: [() => env.api('POST', '/personas/search', { body: { query: 'a physicist', hydrate: true } })],
    similarPersonas: [() => env.api('GET', `/personas/${id}/similar?hydrate=true`)],
    openApiDocument: [() => env.api('GET', '/openapi.json')],
    apiDocsPage: [() => env.api('GET', '/docs')],
    consolePage: [() => env.api('GET', '/console')],
    webAsset: [() => env.api('GET', '/assets/docs.js')],
    routeNotFound: [() => env.api('GET', '/nowhere')],
    deletePersona: [() => env.api('DELETE', `/personas/${id}`)],
  };
  expect(Object.keys(scenarios).sort()).toEqual(routes.map((route) => route.name).sort());
  // In the scenarios' order: the delete comes last.
  for (const route of Object.keys(scenarios).map((name) => routes.find((candidate) => candidate.name === name)!)) {
    calls = [];
    for (const step of scenarios[route.name]!) {
      const response = (await step()) as { status: number };
      // Every step takes its success path (routeNotFound's is the 404 it exists for).
      expect(response.status, `${route.name} answered ${response.status}`).toBeLessThan(route.name === 'routeNotFound' ? 405 : 300);
    }
    // This system is single-tenant: a list scans. Its Query is the tenancy=claim list (test/tenantIsolation.test.ts records it).
    const claimOnly = (action: TableAction) => route.name === 'listPersonas' && action === 'Query';
    const declared = Object.fromEntries(Object.entries(route.tableActions).map(([table, actions]) => [table, [...actions].filter((action) => !claimOnly(action)).sort()]));
    expect(recordedActions(), route.name).toEqual(declared);
    // Let the indexer catch up between routes, so search and similar find the personas.
    await env.system.streamWorker.drain(60_000);
  }
});

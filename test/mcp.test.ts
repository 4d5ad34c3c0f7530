/**
 * The MCP server (`personas mcp`) driven by the MCP TypeScript SDK's own client, against the local
 * system with AUTH=jwt (tokens of the local issuer, as `personas token` prints them):
 * - stdio: the client starts `personas mcp` as an MCP host would (StdioClientTransport), once with
 *   a read-only token and once with the write scope;
 * - Streamable HTTP: `startMcpHttpServer`, the server `personas mcp --http` runs, with each caller's
 *   own Authorization header (StreamableHTTPClientTransport).
 * A caller without the write scope is offered no write tool, and what a tool does is what the API
 * lets that caller do (an expired token is the API's 401, a stale version its 412). The SDK client
 * checks every structured result against the tool's output schema (MCP specification 2025-06-18,
 * "Tools": structured content must conform to the output schema).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localIssuerSettings } from '../local/localIssuer';
import { startMcpHttpServer, type McpHttpServer } from '../shared/mcp/mcpTransports';
import { SEARCH_MODES } from '../shared/search/searchRequest';
import type { Scope } from '../shared/routes';
import { einstein, samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

const READ_TOOLS = ['get_persona', 'list_personas', 'search_personas', 'similar_personas'];
const WRITE_TOOLS = ['create_persona', 'delete_persona', 'update_persona'];
const workDir = mkdtempSync(join(tmpdir(), 'persona-mcp-'));

let env: Awaited<ReturnType<typeof startTestSystem>>;
let http: McpHttpServer;
const clients: Client[] = [];
let einsteinId: string;

const token = (scopes: Scope[], expiresIn?: string) => env.system.issuer!.sign({ scopes, ...(expiresIn ? { expiresIn } : {}) });

/** `personas mcp` started by the SDK's client, as an MCP host starts a stdio server. */
async function overStdio(bearer: string): Promise<Client> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[0] !== 'PERSONAS_API_URL'));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['bin/personas.mjs', 'mcp', '--api-url', env.system.apiUrl],
    env: { ...inherited, PERSONAS_TOKEN: bearer },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'persona-db-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function overHttp(authorization?: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(http.url), authorization ? { requestInit: { headers: { authorization } } } : {});
  const client = new Client({ name: 'persona-db-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const toolNames = async (client: Client) => (await client.listTools()).tools.map((tool) => tool.name).sort();
const call = (client: Client, name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
const text = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  env = await startTestSystem({ auth: 'jwt', jwtKeyFile: localIssuerSettings({ LOCAL_DATA_DIR: workDir }).keyFile });
  const admin = { authorization: `Bearer ${await token(['personas:admin'])}` };
  einsteinId = (await env.api('POST', '/personas', { body: einstein, headers: admin })).json.id;
  await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 5 }, (_, i) => samplePersona(i)) }, headers: admin });
  await env.system.streamWorker.drain();
  http = await startMcpHttpServer({ apiUrl: env.system.apiUrl }, { port: 0 });
});
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await http?.close();
  await env?.system.stop();
});

describe('over stdio (personas mcp)', () => {
  it('offers a read-only caller the read tools and the personas as resources', async () => {
    const reader = await overStdio(await token(['personas:read']));
    expect(reader.getServerVersion()?.name).toBe('persona-db');
    expect(await toolNames(reader)).toEqual(READ_TOOLS);

    const search = (await reader.listTools()).tools.find((tool) => tool.name === 'search_personas')!;
    // The input schema is the API's SearchRequest schema.
    expect((search.inputSchema.properties as Record<string, { enum?: unknown }>).mode!.enum).toEqual([...SEARCH_MODES]);
    const found = await call(reader, 'search_personas', { query: 'physics philosophy imagination', mode: 'keyword', limit: 3 });
    expect(found.isError).toBeFalsy();
    expect((found.structuredContent as { items: Array<{ id: string }> }).items[0]!.id).toBe(einsteinId);
    expect(text(found)).toContain(`Albert Einstein  persona://${einsteinId}`);

    const resources = await reader.listResources();
    expect(resources.resources.map((resource) => resource.uri)).toContain(`persona://${einsteinId}`);
    const read = await reader.readResource({ uri: `persona://${einsteinId}` });
    expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({ id: einsteinId, name: 'Albert Einstein' });

    // A write tool is not there to call.
    const refused = await call(reader, 'create_persona', einstein).catch((error: Error) => ({ isError: true, content: [{ type: 'text', text: error.message }] }) as CallToolResult);
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/create_persona not found/);
  }, 120_000);

  it('lets a caller with the write scope create, change and delete, with the API\'s answers', async () => {
    const writer = await overStdio(await token(['personas:read', 'personas:write']));
    expect(await toolNames(writer)).toEqual([...WRITE_TOOLS, ...READ_TOOLS].sort());

    const created = await call(writer, 'create_persona', { ...einstein, name: 'Marie Curie', domain: ['chemistry'] });
    const persona = created.structuredContent as { id: string; version: number };
    expect(persona.version).toBe(1);

    const updated = await call(writer, 'update_persona', { id: persona.id, patch: { traits: { openness: 0.9 } }, expected_version: 1 });
    expect(updated.structuredContent).toMatchObject({ id: persona.id, version: 2, traits: { openness: 0.9 } });

    const stale = await call(writer, 'update_persona', { id: persona.id, patch: { name: 'Lost update' }, expected_version: 1 });
    expect(stale.isError).toBe(true);
    expect(text(stale)).toContain('answered 412 stale-version');

    const invalid = await call(writer, 'create_persona', { ...einstein, traits: { ...einstein.traits as object, openness: 2 } });
    expect(invalid.isError).toBe(true);
    expect(text(invalid)).toMatch(/openness/);

    expect((await call(writer, 'delete_persona', { id: persona.id, expected_version: 2 })).structuredContent).toEqual({ id: persona.id, deleted: true });
    const gone = await call(writer, 'get_persona', { id: persona.id });
    expect(gone.isError).toBe(true);
    expect(text(gone)).toContain('answered 404 persona-not-found');
  }, 120_000);
});

describe('over Streamable HTTP (personas mcp --http)', () => {
  it("answers each caller with its own token's tools and rights", async () => {
    const reader = await overHttp(`Bearer ${await token(['personas:read'])}`);
    const writer = await overHttp(`Bearer ${await token(['personas:write'])}`);
    expect(await toolNames(reader)).toEqual(READ_TOOLS);
    expect(await toolNames(writer)).toEqual([...WRITE_TOOLS, ...READ_TOOLS].sort());

    const similar = await call(reader, 'similar_personas', { id: einsteinId, mode: 'personality', limit: 3 });
    expect(similar.isError).toBeFalsy();
    expect((similar.structuredContent as { items: unknown[]; indexed_version: number }).items).toHaveLength(3);
    const page = await call(reader, 'list_personas', { limit: 2 });
    expect((page.structuredContent as { items: unknown[]; next_cursor: string | null }).next_cursor).toEqual(expect.any(String));

    // Only the token decides: the writer's token has no read scope, so the API refuses its reads.
    const created = await call(writer, 'create_persona', { ...einstein, name: 'Over HTTP' });
    expect(created.structuredContent).toMatchObject({ name: 'Over HTTP', version: 1 });
    const unreadable = await call(writer, 'get_persona', { id: (created.structuredContent as { id: string }).id });
    expect(unreadable.isError).toBe(true);
    expect(text(unreadable)).toMatch(/answered 403.*Forbidden/);
  });

  it('is what personas mcp --http serves, until Ctrl-C', async () => {
    const child = spawn(process.execPath, ['bin/personas.mjs', 'mcp', '--http', '--port', '0', '--api-url', env.system.apiUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const started = /MCP server \(Streamable HTTP\) on (\S+),/.exec(stderr);
        if (started) resolve(started[1]!);
      });
      child.once('exit', (code) => reject(new Error(`personas mcp --http exited ${code}: ${stderr}`)));
    });
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${await token(['personas:read'])}` } } });
    const client = new Client({ name: 'persona-db-test', version: '1.0.0' });
    await client.connect(transport);
    expect(await toolNames(client)).toEqual(READ_TOOLS);
    await client.close();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 120_000);

  it('passes a refused token on to the API, and refuses a Host header that is not this machine', async () => {
    const expired = await overHttp(`Bearer ${await token(['personas:admin'], '-1m')}`);
    const refused = await call(expired, 'list_personas', {});
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/answered 401.*Unauthorized/);

    // A page of another site that resolved its name to 127.0.0.1 (DNS rebinding) sends its own Host.
    const rebound = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const request = httpRequest(http.url, { method: 'POST', headers: { host: 'attacker.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.once('error', reject);
      request.end(body);
    });
    expect(rebound).toBe(403);
    expect((await fetch(http.url)).status).toBe(405);
  });
});

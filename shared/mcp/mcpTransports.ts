/**
 * The MCP server's two transports (MCP specification 2025-06-18, "Transports"):
 * - stdio, for an MCP client that starts `personas mcp` itself: one caller, whose token is the
 *   command's (--token / PERSONAS_TOKEN);
 * - Streamable HTTP (`personas mcp --http`), stateless: each POST /mcp is answered by a server made
 *   for that request with the caller's own `Authorization` header, passed on to the API, so every
 *   caller acts with its own scopes and tenant. Bound to loopback by default, with the SDK's Host
 *   header check against DNS rebinding (createMcpExpressApp).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { bearerAuth, createPersonaClient, type RequestAuth, type RetryOptions } from '../../packages/client/src/index';
import { canWriteWith, createPersonaMcpServer } from './personaMcpServer';

export interface McpApiTarget {
  apiUrl: string;
  /** Extra headers on every API request (--header). */
  headers?: Record<string, string>;
  /** Signs the API requests (SigV4, --iam) instead of a bearer token: stdio only, the credentials are this process's. */
  auth?: RequestAuth;
  retry?: RetryOptions;
}

const bearerOf = (authorization: string | undefined) => authorization?.replace(/^Bearer\s+/i, '').trim() || undefined;

function serverFor(target: McpApiTarget, token: string | undefined) {
  const auth = token ? bearerAuth(token) : target.auth;
  const client = createPersonaClient({
    baseUrl: target.apiUrl,
    ...(auth ? { auth } : {}),
    ...(target.headers ? { headers: target.headers } : {}),
    ...(target.retry ? { retry: target.retry } : {}),
  });
  return createPersonaMcpServer({ client, write: canWriteWith(token) });
}

/** Serves one MCP client over stdin/stdout until it closes them. Nothing else may write to stdout. */
export async function serveMcpOverStdio(target: McpApiTarget, token: string | undefined): Promise<void> {
  const server = serverFor(target, token);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  await server.connect(transport);
  // The SDK's stdio transport ends when stdin does (the MCP client closed it, or went away).
  await Promise.race([closed, new Promise<void>((resolve) => process.stdin.once('end', resolve))]);
  await server.close();
}

export interface McpHttpServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:3100/mcp. */
  url: string;
  close(): Promise<void>;
}

function jsonRpcError(response: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

export async function startMcpHttpServer(target: McpApiTarget, options: { host?: string; port?: number } = {}): Promise<McpHttpServer> {
  // The process's own credentials would then act for every caller.
  if (target.auth) throw new Error('the Streamable HTTP server passes each caller\'s Authorization on; it signs nothing itself (--iam is for stdio)');
  const host = options.host ?? '127.0.0.1';
  const app = createMcpExpressApp({ host });
  // Express's request and response are Node's, with the JSON body parsed by createMcpExpressApp.
  app.post('/mcp', async (request: IncomingMessage & { body?: unknown }, response: ServerResponse) => {
    const server = serverFor(target, bearerOf(request.headers.authorization));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    response.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(request, response, request.body);
    } catch (error) {
      if (!response.headersSent) jsonRpcError(response, 500, -32603, `internal error: ${(error as Error).message}`);
    }
  });
  // Stateless: no session to stream to or to end (the specification lets a server answer 405).
  const notAllowed = (_request: IncomingMessage, response: ServerResponse) =>
    jsonRpcError(response, 405, -32000, 'Method not allowed: this server is stateless, send each request as a POST.', { allow: 'POST' });
  app.get('/mcp', notAllowed);
  app.delete('/mcp', notAllowed);

  const listening: Server = await new Promise((resolve, reject) => {
    const server = app.listen(options.port ?? 3100, host, () => resolve(server));
    server.once('error', reject);
  });
  const { port } = listening.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        listening.closeAllConnections();
        listening.close(() => resolve());
      }),
  };
}

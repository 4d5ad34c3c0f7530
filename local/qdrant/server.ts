/**
 * A Qdrant-compatible REST server (the subset of Qdrant 1.19 this project uses) for local runs
 * and tests, where no Qdrant binary is available. The official `@qdrant/js-client-rest` client
 * works against it unchanged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkApiKey, readJsonBody, sendError, sendJson, sendResult, sendText } from './http';
import { allowedHostsFromEnv, localRequestRejection } from '../loopbackGuard';
import { QdrantError } from './errors';
import { routes, type Route } from './routes';
import { Storage } from './storage';

export interface QdrantServerOptions {
  /** 0 picks a free port; defaults to Qdrant's 6333. */
  port?: number;
  /** Defaults to 127.0.0.1: a local stand-in should not listen on every interface. */
  host?: string;
  /** When set, state is loaded from and saved to this directory. */
  dataDir?: string;
  /** When set, requests must carry it in `api-key` (or `Authorization: Bearer`). */
  apiKey?: string;
  /** Host names accepted besides loopback ones (see local/loopbackGuard.ts); LOCAL_ALLOWED_HOSTS by default. */
  allowedHosts?: readonly string[];
}

export interface QdrantServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface CompiledRoute {
  route: Route;
  names: string[];
  pattern: RegExp;
  literalSegments: number;
}

const compiled: CompiledRoute[] = routes
  .map((route) => ({
    route,
    names: [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!),
    pattern: new RegExp(`^${route.path.replace(/\{\w+\}/g, '([^/]+)')}/?$`),
    literalSegments: route.path.split('/').filter((segment) => segment && !segment.startsWith('{')).length,
  }))
  // A literal segment beats a parameter: `/points/scroll` is not the point with id "scroll".
  .sort((a, b) => b.literalSegments - a.literalSegments);

function matchRoute(method: string, path: string) {
  let pathMatched = false;
  for (const candidate of compiled) {
    const match = candidate.pattern.exec(path);
    if (!match) continue;
    pathMatched = true;
    if (candidate.route.method !== method) continue;
    const params = Object.fromEntries(candidate.names.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
    return { route: candidate.route, params };
  }
  return { pathMatched };
}

async function handle(storage: Storage, apiKey: string | undefined, allowedHosts: readonly string[], request: IncomingMessage, response: ServerResponse) {
  const startedAt = performance.now();
  const url = new URL(request.url ?? '/', 'http://localhost');
  const refused = localRequestRejection(request, allowedHosts);
  if (refused) {
    request.resume();
    sendError(response, new QdrantError(403, refused), startedAt);
    return;
  }
  const rejection = checkApiKey(request, url.pathname, apiKey);
  if (rejection) {
    request.resume();
    sendText(response, 401, rejection);
    return;
  }
  const found = matchRoute(request.method ?? 'GET', url.pathname);
  if (!('route' in found) || !found.route) {
    request.resume();
    sendText(response, found.pathMatched ? 405 : 404, '');
    return;
  }
  const { route, params } = found;
  try {
    const result = await route.handle({ params, query: url.searchParams, body: () => readJsonBody(request), storage });
    if (route.reply === 'text') sendText(response, 200, String(result));
    else if (route.reply === 'raw') sendJson(response, 200, result);
    else sendResult(response, result, startedAt);
  } catch (error) {
    request.resume();
    sendError(response, error, startedAt);
  }
}

export async function startQdrantServer(options: QdrantServerOptions = {}): Promise<QdrantServer> {
  const host = options.host ?? '127.0.0.1';
  const storage = await Storage.open(options.dataDir);
  const allowedHosts = options.allowedHosts ?? allowedHostsFromEnv();
  const server = createServer((request, response) => {
    void handle(storage, options.apiKey, allowedHosts, request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 6333, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      // Keep-alive connections from clients would otherwise hold `close` open indefinitely.
      server.closeAllConnections();
      await closed;
      await storage.flush();
    },
  };
}

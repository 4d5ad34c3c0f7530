import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { defaultRoute, matchRoute } from '../shared/routeMatching';
import type { RouteDefinition } from '../shared/routes';
import { ProblemError } from '../shared/http/problem';
import { problemResponse } from '../shared/http/response';
import { lambdaContext, requestUrl, toApiGatewayEvent } from './lambdaEvent';
import type { LocalJwtAuthorizer } from './jwtAuthorizer';
import { allowedHostsFromEnv, localRequestRejection } from './loopbackGuard';

type LambdaHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** API Gateway rejects payloads over 10 MB before any function runs. */
const API_GATEWAY_MAX_PAYLOAD = 10 * 1024 * 1024;

const handlerCache = new Map<string, Promise<LambdaHandler>>();

/** Imports the route's handler module once, as a warm Lambda container keeps it. */
function loadHandler(route: RouteDefinition): Promise<LambdaHandler> {
  let loading = handlerCache.get(route.entry);
  if (!loading) {
    loading = import(new URL(`../${route.entry}`, import.meta.url).href).then((module: { handler: LambdaHandler }) => module.handler);
    handlerCache.set(route.entry, loading);
  }
  return loading;
}

function readBody(request: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= API_GATEWAY_MAX_PAYLOAD) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > API_GATEWAY_MAX_PAYLOAD ? 'too-large' : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function writeResult(response: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body = result.body === undefined ? Buffer.alloc(0) : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  response.writeHead(result.statusCode ?? 200, headers);
  response.end(body);
}

/** Where the local issuer publishes its public keys (an OIDC issuer's jwks_uri), with AUTH=jwt. */
export const LOCAL_JWKS_PATH = '/.well-known/jwks.json';

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  log: (line: string) => void,
  allowedHosts: readonly string[],
  authorizer: LocalJwtAuthorizer | undefined,
  onEvent: ((event: APIGatewayProxyEventV2) => void) | undefined,
): Promise<void> {
  const started = performance.now();
  const rejection = localRequestRejection(request, allowedHosts);
  if (rejection) {
    request.resume();
    writeResult(response, problemResponse(new ProblemError(403, 'local-request-refused', rejection)));
    log(`${request.method} ${request.url} -> 403 (${rejection})`);
    return;
  }
  const body = await readBody(request);
  if (body === 'too-large') {
    response.writeHead(413, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ message: 'Request Entity Too Large' }));
    return;
  }
  const method = request.method ?? 'GET';
  const path = requestUrl(request).pathname;
  if (authorizer && path === LOCAL_JWKS_PATH && (method === 'GET' || method === 'HEAD')) {
    writeResult(response, { statusCode: 200, headers: { 'content-type': 'application/json' }, body: method === 'HEAD' ? '' : JSON.stringify(authorizer.issuer.jwks) });
    return;
  }
  const match = matchRoute(method, path);
  const route = match?.route ?? defaultRoute;
  const routeKey = match ? `${method} ${route.path}` : '$default';
  // The gateway's authorizer runs before any function; public routes have none.
  let jwt: Parameters<typeof toApiGatewayEvent>[4];
  if (authorizer && !route.public) {
    const decision = await authorizer.authorize(request.headers.authorization, route);
    if (!decision.allowed) {
      writeResult(response, decision.response);
      log(`${method} ${request.url} -> ${decision.response.statusCode} (JWT authorizer)`);
      return;
    }
    jwt = decision.jwt;
  }
  const event = toApiGatewayEvent(request, body, routeKey, match?.pathParameters ?? {}, jwt);
  onEvent?.(event);
  const handler = await loadHandler(route);
  const result = await handler(event, lambdaContext(route.name));
  writeResult(response, result);
  log(`${method} ${request.url} -> ${result.statusCode} (${route.name}, ${(performance.now() - started).toFixed(1)} ms)`);
}

export interface ApiServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * Serves the route table over HTTP: each request becomes the API Gateway v2 event that Lambda
 * receives and goes to the same handler module that the CDK stack deploys.
 */
export async function startApiServer(options: {
  port: number;
  host?: string;
  log?: (line: string) => void;
  allowedHosts?: readonly string[];
  /** With AUTH=jwt: API Gateway's JWT authorizer on every non-public route. */
  authorizer?: LocalJwtAuthorizer;
  /** Test hook: sees each Lambda event before its function does. */
  onEvent?: (event: APIGatewayProxyEventV2) => void;
}): Promise<ApiServer> {
  const log = options.log ?? (() => undefined);
  const allowedHosts = options.allowedHosts ?? allowedHostsFromEnv();
  const server = createServer((request, response) => {
    handle(request, response, log, allowedHosts, options.authorizer, options.onEvent).catch((error: unknown) => {
      log(`local API server error: ${(error as Error).stack ?? String(error)}`);
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Internal Server Error' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://localhost:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

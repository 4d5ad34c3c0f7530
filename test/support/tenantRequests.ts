/**
 * Requests as a tenant's caller makes them: the route's handler module (the one the stack deploys)
 * gets the API Gateway HTTP API event (payload format 2.0) with the claims of a validated JWT in
 * `requestContext.authorizer.jwt.claims` and its scopes in `.scopes`, which is where API Gateway's
 * JWT authorizer puts them for the integration
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { lambdaContext } from '../../local/lambdaEvent';
import { defaultRoute, matchRoute } from '../../shared/routeMatching';
import type { ApiRequest, ApiResponse } from './apiClient';

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
const handlers = new Map<string, Promise<Handler>>();

export type Claims = Record<string, string | number | boolean | string[]>;

/** Calls the API as the bearer of a token with these claims (undefined: a request with no authorizer context). */
export function claimsClient(claims: Claims | undefined, scopes: string[] = ['personas:read', 'personas:write', 'personas:admin']) {
  return async function call(method: string, path: string, request: ApiRequest = {}): Promise<ApiResponse> {
    const url = new URL(path, 'http://localhost');
    const match = matchRoute(method, url.pathname);
    const route = match?.route ?? defaultRoute;
    const routeKey = match ? `${route.method} ${route.path}` : '$default';
    let handler = handlers.get(route.entry);
    if (!handler) {
      handler = import(new URL(`../../${route.entry}`, import.meta.url).href).then((module: { handler: Handler }) => module.handler);
      handlers.set(route.entry, handler);
    }
    const headers: Record<string, string> = Object.fromEntries(Object.entries(request.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const query = Object.fromEntries(url.searchParams);
    const now = new Date();
    const event = {
      version: '2.0',
      routeKey,
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers,
      ...(url.searchParams.size > 0 ? { queryStringParameters: query } : {}),
      ...(match && Object.keys(match.pathParameters).length > 0 ? { pathParameters: match.pathParameters } : {}),
      requestContext: {
        accountId: '000000000000',
        apiId: 'test',
        domainName: 'localhost',
        domainPrefix: 'localhost',
        http: { method, path: url.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'tenant-test' },
        requestId: randomUUID(),
        routeKey,
        stage: '$default',
        time: now.toUTCString(),
        timeEpoch: now.getTime(),
        ...(claims ? { authorizer: { jwt: { claims, scopes } } } : {}),
      },
      ...(body !== undefined ? { body } : {}),
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEventV2;
    const result = await (await handler)(event, lambdaContext(route.name));
    const text = result.body ?? '';
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: result.statusCode ?? 200, headers: new Headers(result.headers as Record<string, string>), text, json };
  };
}

export type TenantCall = ReturnType<typeof claimsClient>;

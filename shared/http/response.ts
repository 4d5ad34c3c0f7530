import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ProblemError } from './problem';

/**
 * Lambda's limit on a synchronous response: 6 MB, 6,291,556 bytes of the JSON document the function
 * returns (`{"statusCode":…,"headers":…,"body":"…"}`), so the body counts with its string escaping.
 */
export const LAMBDA_RESPONSE_LIMIT_BYTES = 6_291_556;
/** What the items of one page may take of it: the rest is headroom for headers and the page's other members. */
export const PAGE_ITEMS_BUDGET_BYTES = 5 * 1024 * 1024;

/** Bytes `value` adds to a Lambda response when it is part of the JSON body: quotes and control characters escaped twice. */
export function encodedBodySize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(value))) - 2;
}

/**
 * How many of `items`, from the first, fit in the page budget as a Lambda response (at least one).
 * An undefined entry (a result left out of the page) takes no room.
 */
export function itemsWithinBudget(items: readonly unknown[], budget = PAGE_ITEMS_BUDGET_BYTES): number {
  let used = 0;
  for (let index = 0; index < items.length; index++) {
    if (items[index] === undefined) continue;
    used += encodedBodySize(items[index]) + 1;
    if (used > budget) return Math.max(index, 1);
  }
  return items.length;
}

export type HttpResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; headers: Record<string, string> };

/**
 * On every JSON and problem response (a route may override cache-control, as the public API
 * document does): personas are private data, so no browser or shared cache keeps a response
 * (RFC 9111 §5.2.2.5), and no browser reads one as anything but its declared type.
 */
const DATA_RESPONSE_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

export function jsonResponse(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...DATA_RESPONSE_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

export function emptyResponse(statusCode: number, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers, body: '' };
}

export function problemResponse(error: ProblemError, instance?: string): HttpResponse {
  return {
    statusCode: error.status,
    headers: { 'content-type': 'application/problem+json; charset=utf-8', ...DATA_RESPONSE_HEADERS, ...error.headers },
    body: JSON.stringify(error.toDocument(instance)),
  };
}

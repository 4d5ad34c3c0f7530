/**
 * HTTP plumbing shared by all routes: reading and parsing the body, Qdrant's response envelope
 * (`{result, status: "ok", time}` / `{status: {error}, time}`) and the api-key check.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatError, QdrantError } from './errors';
import { Float64, toQdrantJson } from './floatJson';

/** Qdrant's default `max_request_size_mb`. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new QdrantError(413, `JSON payload (${size} bytes) is larger than allowed (limit: ${MAX_BODY_BYTES} bytes).`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw formatError('EOF while parsing a value at line 1 column 0');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw formatError((error as Error).message);
  }
}

/** `time` is an f64 in Qdrant's response envelope, written as a float. */
const elapsedSeconds = (startedAt: number) => new Float64((performance.now() - startedAt) / 1000);

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

export const sendJson = (response: ServerResponse, status: number, body: unknown) =>
  send(response, status, 'application/json', toQdrantJson(body));

export const sendText = (response: ServerResponse, status: number, body: string) =>
  send(response, status, 'text/plain; charset=utf-8', body);

export const sendResult = (response: ServerResponse, result: unknown, startedAt: number) =>
  sendJson(response, 200, { result, status: 'ok', time: elapsedSeconds(startedAt) });

export function sendError(response: ServerResponse, error: unknown, startedAt: number): void {
  const qdrantError =
    error instanceof QdrantError
      ? error
      : new QdrantError(500, `Service internal error: ${error instanceof Error ? error.message : String(error)}`);
  sendJson(response, qdrantError.status, { status: { error: qdrantError.message }, time: elapsedSeconds(startedAt) });
}

/** Paths Qdrant serves without a key, so health probes work on a secured instance. */
const UNAUTHENTICATED_PATHS = new Set(['/', '/healthz', '/livez', '/readyz']);

/** Returns the rejection message, or `undefined` when the request may proceed. */
export function checkApiKey(request: IncomingMessage, path: string, apiKey: string | undefined): string | undefined {
  if (!apiKey || UNAUTHENTICATED_PATHS.has(path)) return undefined;
  const header = request.headers['api-key'];
  const bearer = request.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
  const given = (Array.isArray(header) ? header[0] : header) ?? bearer;
  if (given === undefined) return 'Must provide an API key or an Authorization bearer token';
  const expected = Buffer.from(apiKey);
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected) ? undefined : 'Invalid API key or JWT';
}

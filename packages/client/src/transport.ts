/**
 * What every request of the client goes through, below openapi-fetch: the Idempotency-Key of a POST
 * that takes one (set once, so every retry carries the same key), authentication (per attempt: a
 * SigV4 signature holds its time), and the retries of answers a retry can fix.
 */
import type { Middleware } from 'openapi-fetch';
import { retryAfterMs } from './errors.js';
import { IDEMPOTENCY_KEY_OPERATIONS } from './generated/apiFacts.js';

/** Adds credentials to one attempt of a request; called again for every retry. */
export type RequestAuth = (request: Request) => Request | Promise<Request>;

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). 1 turns retries off. */
  attempts?: number;
  /** First backoff step when the answer names no Retry-After; each retry doubles it (default 250 ms). */
  baseDelayMs?: number;
  /** The longest single wait (default 20 s). An answer whose Retry-After asks for longer is not retried: it is returned, Retry-After and all. */
  maxDelayMs?: number;
  /** Called before each wait, e.g. to log it. */
  onRetry?: (retry: { attempt: number; delayMs: number; method: string; url: string; status?: number; error?: unknown }) => void;
}

const DEFAULT_RETRY: Required<Omit<RetryOptions, 'onRetry'>> = { attempts: 4, baseDelayMs: 250, maxDelayMs: 20_000 };

/** Statuses that say "not now" rather than "no": throttled, unavailable, or (with Retry-After) a conflict that passes. */
const RETRY_STATUSES = new Set([429, 503]);
/** Statuses after which the request may or may not have been carried out: retried only when repeating it changes nothing. */
const MAYBE_DONE_STATUSES = new Set([408, 502, 504]);
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A bearer token, or a function giving the current one (asked again on every attempt; empty: no header). */
export function bearerAuth(token: string | (() => string | undefined | Promise<string | undefined>)): RequestAuth {
  return async (request) => {
    const value = (typeof token === 'function' ? await token() : token)?.trim().replace(/^Bearer\s+/i, '');
    if (value) request.headers.set('authorization', `Bearer ${value}`);
    return request;
  };
}

/** A random UUID (v4); crypto.randomUUID exists only in secure contexts, getRandomValues everywhere. */
export function randomKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** openapi-fetch middleware: an Idempotency-Key on each operation the API document says takes one, unless the caller set it. */
export const idempotencyKeys: Middleware = {
  onRequest({ request, schemaPath }) {
    const operation = `${request.method} ${schemaPath}`;
    if (!(IDEMPOTENCY_KEY_OPERATIONS as readonly string[]).includes(operation) || request.headers.has('idempotency-key')) return undefined;
    request.headers.set('idempotency-key', randomKey());
    return request;
  },
};

/** A refused connection: the request never reached the API, so any request may be sent again (Node's fetch names the code; browsers do not). */
const neverSent = (error: unknown) => (error as { cause?: { code?: unknown } } | undefined)?.cause?.code === 'ECONNREFUSED';

function sleep(ms: number, signal: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The wait before retry `attempt` (1 = the first retry): Retry-After when the answer has one (plus up
 * to 10% jitter, so that clients told the same second do not return together), else full-jitter
 * exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"). Undefined: do not
 * retry, the answer asks for a longer wait than maxDelayMs.
 */
export function retryDelayMs(attempt: number, retryAfter: string | null, options: Required<Omit<RetryOptions, 'onRetry'>>, random = Math.random): number | undefined {
  const asked = retryAfterMs(retryAfter);
  if (asked !== undefined) return asked > options.maxDelayMs ? undefined : Math.min(options.maxDelayMs, asked * (1 + random() / 10));
  return random() * Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
}

/**
 * A fetch for openapi-fetch that authenticates every attempt and retries: 429 and 503 always (the
 * API did nothing), 409 with Retry-After (a request with the same key still running, a persona not
 * indexed yet), and 408/502/504 and network errors when repeating the request changes nothing (GET,
 * PUT, DELETE, or a POST with an Idempotency-Key). A 500 is not retried: it is a fault to report.
 */
export function resilientFetch(options: { fetch?: typeof fetch; auth?: RequestAuth; retry?: RetryOptions | false } = {}): (request: Request) => Promise<Response> {
  const base = options.fetch ?? ((input: Request) => globalThis.fetch(input));
  const retry = options.retry === false ? { ...DEFAULT_RETRY, attempts: 1 } : { ...DEFAULT_RETRY, ...options.retry };
  const onRetry = options.retry === false ? undefined : options.retry?.onRetry;
  return async (request) => {
    // Read once: each attempt sends the same bytes (and a SigV4 signature covers their hash).
    const body = request.body === null ? undefined : await request.arrayBuffer();
    const repeatable = IDEMPOTENT_METHODS.has(request.method) || request.headers.has('idempotency-key');
    for (let attempt = 1; ; attempt++) {
      let attemptRequest = new Request(request.url, {
        method: request.method,
        headers: new Headers(request.headers),
        ...(body === undefined ? {} : { body }),
        signal: request.signal,
        redirect: request.redirect,
      });
      if (options.auth) attemptRequest = await options.auth(attemptRequest);
      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await base(attemptRequest);
      } catch (error) {
        if (request.signal.aborted) throw error;
        failure = error;
      }
      const retryable = response
        ? RETRY_STATUSES.has(response.status) || (response.status === 409 && response.headers.has('retry-after')) || (repeatable && MAYBE_DONE_STATUSES.has(response.status))
        : repeatable || neverSent(failure);
      const delay = attempt < retry.attempts && retryable ? retryDelayMs(attempt, response?.headers.get('retry-after') ?? null, retry) : undefined;
      if (delay === undefined) {
        if (response) return response;
        throw failure;
      }
      onRetry?.({ attempt, delayMs: delay, method: request.method, url: request.url, ...(response ? { status: response.status } : { error: failure }) });
      // The body of an answer we retry past is not read: free its connection.
      await response?.body?.cancel().catch(() => undefined);
      await sleep(delay, request.signal);
    }
  };
}

/**
 * The few HTTP calls the operator commands make to the persona API, with retries for the
 * failures a retry can fix (network errors, 429, 5xx) and a message that says what to do for
 * the ones it cannot.
 */
export interface ApiTarget {
  /** Base URL, e.g. http://localhost:3000 (npm start) or the stack's ApiUrl output. */
  apiUrl: string;
  /** Extra headers on every request, e.g. `authorization: Bearer …` for a JWT stage. */
  headers?: Record<string, string>;
  /** Delays between attempts; the defaults wait about a minute in total. */
  retryDelaysMs?: readonly number[];
  signal?: AbortSignal;
}

export const DEFAULT_API_URL = 'http://localhost:3000';

const DEFAULT_RETRY_DELAYS_MS = [200, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms * (0.75 + Math.random() / 2));
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
}

const LOCAL_TOKEN = 'locally (AUTH=jwt npm start): PERSONAS_TOKEN=$(npx personas token --scope personas:read,personas:write)';

/** What to do about an answer a retry cannot fix; `body` tells the gateway's own 403 from the API's problems. */
function advice(status: number, body: string): string {
  if (status === 401) {
    return `the API wants a valid token: for a stage with auth=jwt pass --token <token> or set PERSONAS_TOKEN (${LOCAL_TOKEN}); requests are not SigV4-signed, so a stage with auth=iam needs -c auth=jwt (or none) for bulk operations`;
  }
  if (status === 403) {
    let problem: { type?: string; required_scope?: string; message?: string } = {};
    try {
      problem = JSON.parse(body) as typeof problem;
    } catch {
      // not JSON: the generic advice below
    }
    if (problem.type?.endsWith('/tenant-required')) {
      return 'this stage keeps tenants apart (tenancy=claim) and the token names no valid tenant: get a token that carries your tenant claim (locally: PERSONAS_TOKEN=$(npx personas token --scope personas:read,personas:write --tenant T))';
    }
    if (problem.required_scope) return `the token lacks ${problem.required_scope} (or personas:admin); ${LOCAL_TOKEN}`;
    // API Gateway's JWT authorizer answers {"message":"Forbidden"} itself when the token has none of the route's scopes.
    return `the token lacks the scope this call needs (export and search need personas:read, import needs personas:write; personas:admin covers both): ${LOCAL_TOKEN}; with auth=iam, requests are not SigV4-signed`;
  }
  if (status === 404) return 'no such route: check --api-url (the stack output ApiUrl, or http://localhost:3000 for npm start)';
  return 'see the problem document above';
}

/** Sends one JSON request; retries transient failures and returns the parsed JSON body. */
export async function apiRequest<T>(
  target: ApiTarget,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; onResponseHeaders?: (headers: Headers) => void } = {},
): Promise<T> {
  const url = new URL(path, target.apiUrl.endsWith('/') ? target.apiUrl : `${target.apiUrl}/`).href;
  const delays = target.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  for (let attempt = 0; ; attempt++) {
    let failure: ApiRequestError;
    try {
      const response = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...target.headers, ...options.headers },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(target.signal ? { signal: target.signal } : {}),
      });
      const text = await response.text();
      if (response.ok) {
        options.onResponseHeaders?.(response.headers);
        return (text ? JSON.parse(text) : undefined) as T;
      }
      failure = new ApiRequestError(`${method} ${url} answered ${response.status}: ${text.slice(0, 500)}`, response.status);
      if (!retryable(response.status)) throw new ApiRequestError(`${failure.message}\n(${advice(response.status, text)})`, response.status);
    } catch (error) {
      if (error instanceof ApiRequestError || target.signal?.aborted) throw error;
      failure = new ApiRequestError(`${method} ${url} failed: ${(error as Error).message}${(error as Error).cause ? ` (${String((error as { cause: unknown }).cause)})` : ''}; is the API running at ${target.apiUrl}?`, undefined);
    }
    const delay = delays[attempt];
    if (delay === undefined) throw failure;
    await sleep(delay, target.signal);
  }
}

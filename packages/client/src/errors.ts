/**
 * Every answer that is not a success becomes an ApiError: an RFC 9457 problem document as the API
 * sends it (`type`, `status`, `detail`, `errors[].pointer`), or the gateway's own refusal
 * (`{"message":"Unauthorized"}`), or whatever else answered, read into the same fields. A 412
 * (If-Match named another version) is a StaleVersionError with the current version; no answer at all
 * is an ApiNetworkError.
 */
import type { Middleware } from 'openapi-fetch';
import { PROBLEM_TYPE_URIS } from './generated/apiFacts.js';
import type { components } from './generated/apiTypes.js';

export type ProblemDocument = components['schemas']['Problem'];
export interface FieldError {
  /** JSON Pointer (RFC 6901) into the request body, or `#/query/<name>`, `#/path/<name>`. */
  pointer: string;
  detail: string;
}

type SlugOf<Uri> = Uri extends `${string}/problems/${infer Slug}` ? Slug : never;
/** The problem types the API document names (`validation-error`, `stale-version`, …), by the last segment of their URI. */
export type ProblemType = SlugOf<(typeof PROBLEM_TYPE_URIS)[number]>;

/** `type` of an answer that carried no problem document (RFC 9457 §4.2.1: the status code says it all). */
export const BLANK_PROBLEM_TYPE = 'about:blank';

export interface RequestSummary {
  method: string;
  url: string;
  /** The client's base URL (the API it was pointed at). */
  baseUrl?: string;
}

export class ApiError extends Error {
  override readonly name: string = 'ApiError';
  readonly status: number;
  /** The problem type's URI, or about:blank when the answer was no problem document. */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** Field-level errors of a validation problem (empty otherwise). */
  readonly errors: FieldError[];
  /** The document as received, with any extension members (current_version, required_scope, …). */
  readonly problem: ProblemDocument;
  readonly headers: Headers;
  readonly request: RequestSummary;
  /** The body as received (at most 2,000 characters), for a message that shows what answered. */
  readonly body: string;

  constructor(request: RequestSummary, response: { status: number; statusText?: string; headers: Headers }, body: string) {
    const problem = readProblem(response, body);
    super(describe(request, problem));
    this.status = response.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
    this.headers = response.headers;
    this.request = request;
    this.body = body.slice(0, 2_000);
  }

  /** The problem type's last segment (`stale-version`), or '' for about:blank. */
  get slug(): string {
    return this.type === BLANK_PROBLEM_TYPE ? '' : (this.type.split('/').at(-1) ?? '');
  }

  /** True when the answer is a problem of this type: `error.is('persona-not-found')`. */
  is(type: ProblemType | (string & {})): boolean {
    return this.slug === type;
  }

  /** Seconds the API asked to wait (Retry-After), when it did. */
  get retryAfterSeconds(): number | undefined {
    const value = retryAfterMs(this.headers.get('retry-after'));
    return value === undefined ? undefined : value / 1000;
  }
}

/** 412: If-Match named a version other than the current one; read it again, reapply the change, save. */
export class StaleVersionError extends ApiError {
  override readonly name = 'StaleVersionError';
  /** The persona's version now (the problem's current_version). */
  get currentVersion(): number | undefined {
    const version = this.problem.current_version;
    return typeof version === 'number' ? version : undefined;
  }
  /** The current ETag, to send in If-Match. */
  get currentEtag(): string | undefined {
    return this.headers.get('etag') ?? (this.currentVersion === undefined ? undefined : `"${this.currentVersion}"`);
  }
}

/** The API did not answer (connection refused, reset, DNS, TLS) even after the retries. */
export class ApiNetworkError extends Error {
  override readonly name = 'ApiNetworkError';
  constructor(
    readonly request: RequestSummary,
    override readonly cause: unknown,
  ) {
    const reason = cause instanceof Error ? `${cause.message}${cause.cause instanceof Error ? ` (${cause.cause.message})` : ''}` : String(cause);
    super(`${request.method} ${request.url} failed: ${reason}`);
  }
}

/** An ApiError, or its StaleVersionError subclass for a 412. */
export function apiErrorFor(request: RequestSummary, response: { status: number; statusText?: string; headers: Headers }, body: string): ApiError {
  return response.status === 412 ? new StaleVersionError(request, response, body) : new ApiError(request, response, body);
}

/**
 * openapi-fetch middleware: a failed answer is thrown as an ApiError (so `api.GET(...)` resolves to
 * data only), a failure to connect as an ApiNetworkError. An abort stays the AbortError it is.
 */
export const apiErrors: Middleware = {
  async onResponse({ request, response, options }) {
    if (response.ok) return undefined;
    throw apiErrorFor({ method: request.method, url: request.url, baseUrl: options.baseUrl }, response, await response.text().catch(() => ''));
  },
  onError({ request, error, options }) {
    const name = (error as Error | undefined)?.name;
    if (name === 'AbortError' || name === 'TimeoutError' || error instanceof ApiError) return error as Error;
    return new ApiNetworkError({ method: request.method, url: request.url, baseUrl: options.baseUrl }, error);
  },
};

function readProblem(response: { status: number; statusText?: string }, body: string): ProblemDocument {
  let parsed: unknown;
  try {
    parsed = body ? JSON.parse(body) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed === 'object' && typeof (parsed as ProblemDocument).type === 'string' && typeof (parsed as ProblemDocument).status === 'number') {
    const problem = parsed as ProblemDocument;
    return { ...problem, title: String(problem.title ?? ''), detail: String(problem.detail ?? problem.title ?? '') };
  }
  // API Gateway's authorizer answers {"message":"Unauthorized"} / {"message":"Forbidden"}.
  const message = parsed && typeof parsed === 'object' && typeof (parsed as { message?: unknown }).message === 'string' ? (parsed as { message: string }).message : undefined;
  const title = message ?? response.statusText ?? '';
  return { type: BLANK_PROBLEM_TYPE, title, status: response.status, detail: message ?? body.slice(0, 300) };
}

function describe(request: RequestSummary, problem: ProblemDocument): string {
  const slug = problem.type === BLANK_PROBLEM_TYPE ? '' : ` ${problem.type.split('/').at(-1)}`;
  const fields = Array.isArray(problem.errors) ? problem.errors.slice(0, 5).map((error) => `\n  ${error.pointer}: ${error.detail}`).join('') : '';
  return `${request.method} ${request.url} answered ${problem.status}${slug}: ${problem.detail}${fields}`;
}

/** Retry-After as milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

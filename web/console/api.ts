/**
 * The console's only way out: the persona API of the origin that served the page. Problems
 * (application/problem+json) become ApiError with their field errors; ETags are kept for If-Match.
 */
import { TRAIT_NAMES, type TraitName } from '../../shared/persona/traitNames';
import { authorizationHeader } from './token';

export const TRAITS = TRAIT_NAMES;
export type Trait = TraitName;
export type Traits = Record<Trait, number>;

export interface PersonaInput {
  name: string;
  domain: string[];
  modes: string[];
  humor_usage?: string;
  emotional_style?: string;
  beliefs: string[];
  signature_phrases: string[];
  traits: Traits;
}

export interface Persona extends PersonaInput {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface SearchHit extends Partial<Persona> {
  id: string;
  name: string;
  score: number;
  traits: Traits;
  domain: string[];
}

export interface SearchResults {
  mode: string;
  score_type: string;
  items: SearchHit[];
  limit: number;
  offset: number;
  next_offset: number | null;
  [extra: string]: unknown;
}

export interface FieldError {
  pointer: string;
  detail: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  current_version?: number;
  [extra: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
    readonly headers: Headers,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }

  get slug(): string {
    return this.problem.type?.split('/').at(-1) ?? '';
  }
}

export interface ApiResponse<T> {
  status: number;
  data: T;
  etag: string | null;
  headers: Headers;
}

/** The API's root: the folder the console page was served from (`/console` → `/`). */
export const apiBase = (): URL => new URL('./', window.location.href);

export async function api<T>(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; contentType?: string; signal?: AbortSignal } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...options.headers };
  const authorization = authorizationHeader();
  if (authorization) headers.authorization = authorization;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  let response: Response;
  try {
    response = await fetch(new URL(path.replace(/^\//, ''), apiBase()), {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, { type: 'network-error', title: 'Network error', status: 0, detail: `The API did not answer (${(error as Error).message}); check that it is running.` }, new Headers());
  }
  const text = await response.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const problem: Problem =
      data && typeof data === 'object' && 'status' in (data as object)
        ? (data as Problem)
        : { type: `http-${response.status}`, title: response.statusText, status: response.status, detail: authHint(response.status) ?? (typeof data === 'string' ? data.slice(0, 300) : response.statusText) };
    throw new ApiError(response.status, problem, response.headers);
  }
  return { status: response.status, data: data as T, etag: response.headers.get('etag'), headers: response.headers };
}

function authHint(status: number): string | undefined {
  if (status === 401) return 'The API wants a valid token: enter the bearer token of this stage (auth=jwt) under "API token" (locally: npx personas token --scope personas:read,personas:write); an expired one needs replacing.';
  if (status === 403) {
    return 'The API refused the request: with auth=jwt the token under "API token" lacks the scope this needs (personas:read to browse and search, personas:write to edit); with auth=iam a browser cannot sign requests, run the console locally (npm start).';
  }
  return undefined;
}

export const getPersona = (id: string) => api<Persona>('GET', `/personas/${encodeURIComponent(id)}`);

/** A fresh idempotency key, so a retried write never creates twice. */
export const newIdempotencyKey = () => crypto.randomUUID();

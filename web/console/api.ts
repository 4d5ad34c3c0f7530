/**
 * The console's only way out: the typed client (packages/client) pointed at the persona API of the
 * origin that served the page, with the bearer token the user entered (if any). Its retries,
 * Idempotency-Keys and typed errors are the client's; what is the console's own is how a failure
 * reads in the page.
 */
import {
  ApiError,
  ApiNetworkError,
  BLANK_PROBLEM_TYPE,
  bearerAuth,
  createPersonaClient,
  etagOf,
  randomKey,
  type BatchResult,
  type HydratedSearchHit,
  type Persona,
  type PersonaInput,
  type SearchHit as IndexedSearchHit,
  type SearchRequest,
  type SearchResults,
  type SimilarResults,
} from '../../packages/client/src/index';
import { TRAIT_NAMES, type TraitName } from '../../shared/persona/traitNames';
import { bearerToken } from './token';

export { ApiError, ApiNetworkError, etagOf };
export type { BatchResult, Persona, PersonaInput, SearchRequest, SearchResults, SimilarResults };
/** A result as indexed, or (hydrate) the whole persona, each with its score. */
export type SearchHit = IndexedSearchHit | HydratedSearchHit;

export const TRAITS = TRAIT_NAMES;
export type Trait = TraitName;
export type Traits = Persona['traits'];

/** The API's root: the folder the console page was served from (`/console` → `/`, `/prod/console` → `/prod/`). */
export const apiBase = (): URL => new URL('./', window.location.href);

/** The token is read on every request, so one entered (or cleared) under "API token" applies at once. */
export const client = createPersonaClient({ baseUrl: apiBase(), auth: bearerAuth(bearerToken) });

/** A fresh Idempotency-Key for a create the console may send again (a save retried by the user). */
export const newIdempotencyKey = randomKey;

/** What the page says about a failed call: the problem's detail, or for the gateway's own refusal, what to do. */
export function problemText(error: unknown): string {
  if (error instanceof ApiError) return (error.type === BLANK_PROBLEM_TYPE ? authHint(error.status) : undefined) ?? (error.detail || error.title || `HTTP ${error.status}`);
  if (error instanceof ApiNetworkError) return `The API did not answer (${error.cause instanceof Error ? error.cause.message : String(error.cause)}); check that it is running.`;
  return error instanceof Error ? error.message : String(error);
}

function authHint(status: number): string | undefined {
  if (status === 401) return 'The API wants a valid token: enter the bearer token of this stage (auth=jwt) under "API token" (locally: npx personas token --scope personas:read,personas:write); an expired one needs replacing.';
  if (status === 403) {
    return 'The API refused the request: with auth=jwt the token under "API token" lacks the scope this needs (personas:read to browse and search, personas:write to edit); with auth=iam a browser cannot sign requests, run the console locally (npm start).';
  }
  return undefined;
}

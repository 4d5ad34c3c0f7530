/**
 * @persona-db/client: a typed client of the persona API, generated from its OpenAPI document.
 * SigV4 (auth=iam) is in `@persona-db/client/sigv4`. See docs/client.md.
 */
export {
  createPersonaClient,
  etagOf,
  MERGE_PATCH_MEDIA_TYPE,
  personaInputOf,
  similarQueryString,
  type BatchCreated,
  type BatchResult,
  type HydratedSearchHit,
  type IfMatch,
  type Persona,
  type PersonaClient,
  type PersonaClientOptions,
  type PersonaInput,
  type PersonaListPage,
  type PersonaMergePatch,
  type SearchFilter,
  type SearchHit,
  type SearchRequest,
  type SearchResults,
  type SimilarOptions,
  type SimilarResults,
  type TraitName,
} from './client.js';
export { ApiError, ApiNetworkError, BLANK_PROBLEM_TYPE, StaleVersionError, retryAfterMs, type FieldError, type ProblemDocument, type ProblemType } from './errors.js';
export { bearerAuth, idempotencyKeys, randomKey, resilientFetch, retryDelayMs, type RequestAuth, type RetryOptions } from './transport.js';
export { API_VERSION, IDEMPOTENCY_KEY_OPERATIONS, PROBLEM_TYPE_URIS } from './generated/apiFacts.js';
export type { components, operations, paths } from './generated/apiTypes.js';

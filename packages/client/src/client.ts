/**
 * The persona API's client: openapi-fetch over the types generated from the API document, with the
 * transport of transport.ts (Idempotency-Keys, authentication, retries), every failure thrown as an
 * ApiError, If-Match helpers, and async iterators over list, search and similar pages.
 */
import createClient, { type Client } from 'openapi-fetch';
import { apiErrors, StaleVersionError } from './errors.js';
import type { components, paths } from './generated/apiTypes.js';
import { idempotencyKeys, randomKey, resilientFetch, type RequestAuth, type RetryOptions } from './transport.js';

type Schemas = components['schemas'];
export type Persona = Schemas['Persona'];
export type PersonaInput = Schemas['PersonaInput'];
export type PersonaMergePatch = Schemas['PersonaMergePatch'];
export type PersonaListPage = Schemas['PersonaListPage'];
export type BatchResult = Schemas['BatchResult'];
export type SearchRequest = Schemas['SearchRequest'];
export type SearchFilter = Schemas['SearchFilter'];
export type SearchResults = Schemas['SearchResults'];
export type SimilarResults = Schemas['SimilarResults'];
export type SearchHit = Schemas['SearchHit'];
export type HydratedSearchHit = Schemas['HydratedSearchHit'];
/** The options of GET /personas/{id}/similar: those of a search, without its query and traits. */
export type SimilarOptions = Omit<SearchRequest, 'query' | 'traits'>;
export type TraitName = keyof Persona['traits'];

/** The merge-patch media type PATCH takes (RFC 7396). */
export const MERGE_PATCH_MEDIA_TYPE = 'application/merge-patch+json';

export interface PersonaClientOptions {
  /** The API's base URL: the stack's ApiUrl output, or http://localhost:3000 for npm start. */
  baseUrl: string | URL;
  /** bearerAuth(token) for auth=jwt, sigv4Auth(...) (`@persona-db/client/sigv4`) for auth=iam; none for an open stage. */
  auth?: RequestAuth;
  /** Retries of 429/503 and network errors; false for none. */
  retry?: RetryOptions | false;
  /** Headers on every request. */
  headers?: Record<string, string>;
  /** Another fetch (a test double, a proxy agent). */
  fetch?: typeof fetch;
}

/** A version to match: an ETag as the API sent it ("3", W/"3"), a version number, a persona read before, or * for any version. */
export type IfMatch = string | number | Pick<Persona, 'version'>;

export const etagOf = (version: IfMatch): string =>
  typeof version === 'string' ? version : `"${typeof version === 'number' ? version : version.version}"`;

interface RequestOptions {
  signal?: AbortSignal;
}
interface WriteOptions extends RequestOptions {
  /** Default: a new UUID, the same on every retry of this call. Pass your own to make a retry of the whole call (another process, a restart) replay. */
  idempotencyKey?: string;
}

export interface BatchCreated {
  result: BatchResult;
  /** True when the API answered from an earlier request with the same Idempotency-Key (Idempotent-Replayed). */
  replayed: boolean;
  idempotencyKey: string;
}

const SERVER_MANAGED = ['id', 'version', 'created_at', 'updated_at', 'tenant_id'] as const;

/** The writable fields of a persona (what PUT takes), without the server-managed ones. */
export function personaInputOf(persona: PersonaInput | Persona): PersonaInput {
  const input: Record<string, unknown> = { ...persona };
  for (const field of SERVER_MANAGED) delete input[field];
  return input as PersonaInput;
}

/**
 * The similar route's query string from search-shaped options (shared/search/similarQuery.ts reads it):
 * scalars by name, filter lists comma-separated with a comma inside a value as %2C, trait bounds as
 * `traits.<trait>.gte|lte`, RRF weights as `weights.<ranking>`.
 */
export function similarQueryString(options: SimilarOptions): string {
  const pairs: string[] = [];
  const add = (name: string, value: unknown) => pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  const { filter, weights, ...scalars } = options;
  for (const [name, value] of Object.entries(scalars)) if (value !== undefined) add(name, value);
  const { traits, ...lists } = filter ?? {};
  for (const [name, values] of Object.entries(lists)) {
    if (Array.isArray(values)) pairs.push(`${encodeURIComponent(name)}=${values.map((value) => encodeURIComponent(String(value))).join(',')}`);
  }
  for (const [trait, range] of Object.entries(traits ?? {})) {
    for (const [bound, value] of Object.entries(range ?? {})) if (value !== undefined) add(`traits.${trait}.${bound}`, value);
  }
  for (const [ranking, weight] of Object.entries(weights ?? {})) if (weight !== undefined) add(`weights.${ranking}`, weight);
  return pairs.join('&');
}

/** Pages of a ranking from `offset` on, each asking for the next_offset of the one before, until it is null. */
async function* offsetPages<Page extends { next_offset: number | null }>(offset: number | undefined, page: (offset: number | undefined) => Promise<Page>): AsyncGenerator<Page> {
  let next: number | null | undefined = offset;
  do {
    const current = await page(next ?? undefined);
    yield current;
    next = current.next_offset;
  } while (next !== null);
}

export type PersonaClient = ReturnType<typeof createPersonaClient>;

export function createPersonaClient(options: PersonaClientOptions) {
  const baseUrl = String(options.baseUrl).replace(/\/+$/, '');
  /** The typed openapi-fetch client, for requests the methods below do not cover; it goes through the same transport. */
  const api: Client<paths> = createClient<paths>({
    baseUrl,
    fetch: resilientFetch({ ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.auth ? { auth: options.auth } : {}), ...(options.retry !== undefined ? { retry: options.retry } : {}) }),
    headers: { accept: 'application/json, application/problem+json', ...options.headers },
  });
  api.use(idempotencyKeys, apiErrors);

  /** The data of a call; its failures were thrown by the apiErrors middleware. */
  async function call<T>(run: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<{ data: T; response: Response }> {
    const { data, response } = await run();
    return { data: data as T, response };
  }

  const signalOf = (opts: RequestOptions) => (opts.signal ? { signal: opts.signal } : {});

  const client = {
    api,
    baseUrl,

    async getPersona(id: string, opts: RequestOptions = {}): Promise<Persona> {
      const { data } = await call<Persona>(() => api.GET('/personas/{id}', { params: { path: { id } }, ...signalOf(opts) }));
      return data;
    },

    /** POST /personas with an Idempotency-Key (yours, or a new one kept across retries): one persona however often it is retried. */
    async createPersona(input: PersonaInput, opts: WriteOptions = {}): Promise<Persona> {
      const headers = { 'idempotency-key': opts.idempotencyKey ?? randomKey() };
      const { data } = await call<Persona>(() => api.POST('/personas', { body: input, headers, ...signalOf(opts) }));
      return data;
    },

    /** POST /personas/batch: up to 100, each validated and written on its own (see result.results). */
    async createPersonas(personas: PersonaInput[], opts: WriteOptions = {}): Promise<BatchCreated> {
      const idempotencyKey = opts.idempotencyKey ?? randomKey();
      const { data, response } = await call<BatchResult>(() =>
        api.POST('/personas/batch', { body: { personas }, headers: { 'idempotency-key': idempotencyKey }, ...signalOf(opts) }),
      );
      return { result: data, replayed: response.headers.get('idempotent-replayed') === 'true', idempotencyKey };
    },

    /** PUT: replaces the persona if it is still the version named (412 StaleVersionError otherwise). */
    async replacePersona(id: string, input: PersonaInput | Persona, opts: RequestOptions & { ifMatch: IfMatch }): Promise<Persona> {
      const { data } = await call<Persona>(() =>
        api.PUT('/personas/{id}', { params: { path: { id }, header: { 'If-Match': etagOf(opts.ifMatch) } }, body: personaInputOf(input), ...signalOf(opts) }),
      );
      return data;
    },

    /** PATCH (JSON Merge Patch); with ifMatch only onto that version. */
    async patchPersona(id: string, patch: PersonaMergePatch, opts: RequestOptions & { ifMatch?: IfMatch } = {}): Promise<Persona> {
      const { data } = await call<Persona>(() =>
        api.PATCH('/personas/{id}', {
          params: { path: { id }, ...(opts.ifMatch !== undefined ? { header: { 'If-Match': etagOf(opts.ifMatch) } } : {}) },
          body: patch,
          headers: { 'content-type': MERGE_PATCH_MEDIA_TYPE },
          ...signalOf(opts),
        }),
      );
      return data;
    },

    async deletePersona(id: string, opts: RequestOptions & { ifMatch?: IfMatch } = {}): Promise<void> {
      await call<unknown>(() =>
        api.DELETE('/personas/{id}', { params: { path: { id }, ...(opts.ifMatch !== undefined ? { header: { 'If-Match': etagOf(opts.ifMatch) } } : {}) }, ...signalOf(opts) }),
      );
    },

    /**
     * Read, change, save: reads the persona, hands it to `change`, and PUTs what it returns with
     * If-Match of the version read. When someone else saved in between, the whole round runs again
     * (up to `attempts`, default 3) from the new version; after that the StaleVersionError is thrown.
     */
    async updatePersona(id: string, change: (current: Persona) => PersonaInput | Persona | Promise<PersonaInput | Persona>, opts: RequestOptions & { attempts?: number } = {}): Promise<Persona> {
      const attempts = opts.attempts ?? 3;
      for (let attempt = 1; ; attempt++) {
        const current = await client.getPersona(id, opts);
        try {
          return await client.replacePersona(id, await change(structuredClone(current)), { ...opts, ifMatch: current });
        } catch (error) {
          if (!(error instanceof StaleVersionError) || attempt >= attempts) throw error;
        }
      }
    },

    async listPersonas(query: { limit?: number; cursor?: string } = {}, opts: RequestOptions = {}): Promise<PersonaListPage> {
      const { data } = await call<PersonaListPage>(() => api.GET('/personas', { params: { query }, ...signalOf(opts) }));
      return data;
    },

    /** Every page of GET /personas, following next_cursor. */
    async *listPages(query: { limit?: number; cursor?: string } = {}, opts: RequestOptions = {}): AsyncGenerator<PersonaListPage> {
      let cursor = query.cursor;
      do {
        const page = await client.listPersonas({ ...query, ...(cursor ? { cursor } : {}) }, opts);
        yield page;
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
    },

    /** Every persona, page after page (memory: one page). */
    async *allPersonas(query: { limit?: number } = {}, opts: RequestOptions = {}): AsyncGenerator<Persona> {
      for await (const page of client.listPages(query, opts)) yield* page.items;
    },

    async searchPersonas(request: SearchRequest, opts: RequestOptions = {}): Promise<SearchResults> {
      const { data } = await call<SearchResults>(() => api.POST('/personas/search', { body: request, ...signalOf(opts) }));
      return data;
    },

    /** The pages of one search, following next_offset until the ranking (or the API's offset limit) ends. */
    async *searchPages(request: SearchRequest, opts: RequestOptions = {}): AsyncGenerator<SearchResults> {
      yield* offsetPages(request.offset, (offset) => client.searchPersonas({ ...request, ...(offset ? { offset } : {}) }, opts));
    },

    async similarPersonas(id: string, options: SimilarOptions = {}, opts: RequestOptions = {}): Promise<SimilarResults> {
      const query = similarQueryString(options);
      const { data } = await call<SimilarResults>(() =>
        api.GET('/personas/{id}/similar', { params: { path: { id } }, querySerializer: () => query, ...signalOf(opts) }),
      );
      return data;
    },

    async *similarPages(id: string, options: SimilarOptions = {}, opts: RequestOptions = {}): AsyncGenerator<SimilarResults> {
      yield* offsetPages(options.offset, (offset) => client.similarPersonas(id, { ...options, ...(offset ? { offset } : {}) }, opts));
    },

    /** GET /openapi.json: the document these types were generated from (as the API serves it now). */
    async openApiDocument(opts: RequestOptions = {}): Promise<Record<string, unknown>> {
      const { data } = await call<Record<string, unknown>>(() => api.GET('/openapi.json', signalOf(opts)));
      return data;
    },
  };
  return client;
}


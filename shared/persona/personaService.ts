import { randomUUID } from 'node:crypto';
import { MAX_REPORTED_ERRORS, ProblemError, capFieldErrors, fieldErrorsFromZod, jsonTypeOf, toJsonPointer, unknownFieldDetail, validationProblem, type FieldError } from '../http/problem';
import { itemsWithinBudget } from '../http/response';
import { applyMergePatch, isPlainObject } from './mergePatch';
import { decodeCursor, encodeCursor } from './pageCursor';
import { stableUuid } from '../stableUuid';
import { requestHash, runIdempotent, scopedIdempotencyKey, type IdempotencyRequest } from './idempotency';
import { WriteConflictError, type PersonaRepository } from './personaRepository';
import { SERVER_MANAGED_FIELDS, TRAIT_NAMES, orderPersonaKeys, personaInputSchema, type Persona, type PersonaInput } from './schema';

export interface PersonaServiceDeps {
  repository: PersonaRepository;
  now?: () => Date;
  newId?: () => string;
}

export const listLimits = { default: 20, max: 100 } as const;
export const MAX_BATCH_ITEMS = 100;

const nowIso = (deps: PersonaServiceDeps) => (deps.now?.() ?? new Date()).toISOString();

/** Validates a client-written persona; every problem is reported at its JSON pointer. */
export function parsePersonaInput(body: unknown, pointerPrefix: readonly PropertyKey[] = []): PersonaInput {
  if (!isPlainObject(body)) {
    throw validationProblem([{ pointer: pointerPrefix.length ? `#/${pointerPrefix.join('/')}` : '#', detail: `must be a JSON object, not ${jsonTypeOf(body)}` }]);
  }
  const result = personaInputSchema.safeParse(body, { reportInput: true });
  if (!result.success) throw validationProblem(fieldErrorsFromZod(result.error, pointerPrefix));
  return result.data;
}

/**
 * What the ids of a keyed request derive from. A tenant's keyed requests (whose records the
 * repository keeps under the tenant's own keys) also name the tenant, so one user sending the same
 * key and body for two tenants creates two sets of ids.
 */
const idSeed = (deps: PersonaServiceDeps, storedKey: string) => (deps.repository.tenant === undefined ? storedKey : `${deps.repository.tenant}\0${storedKey}`);

function newPersona(deps: PersonaServiceDeps, input: PersonaInput, id: string): Persona {
  const timestamp = nowIso(deps);
  return orderPersonaKeys({ id, ...input, version: 1, created_at: timestamp, updated_at: timestamp });
}

export interface CreateResult {
  persona: Persona;
  /** True when an earlier request with the same Idempotency-Key produced this result. */
  replayed: boolean;
}

/**
 * POST /personas: creates a persona. With an Idempotency-Key the key is claimed first and the id
 * derives from the key and the body, so a retry replays the first result and never creates twice.
 */
export async function createPersona(deps: PersonaServiceDeps, body: unknown, idempotency?: IdempotencyRequest): Promise<CreateResult> {
  const input = parsePersonaInput(body);
  if (!idempotency) {
    const persona = newPersona(deps, input, deps.newId?.() ?? randomUUID());
    await deps.repository.create(persona);
    return { persona, replayed: false };
  }
  const hash = requestHash(body);
  const storedKey = scopedIdempotencyKey('createPersona', idempotency);
  const outcome = await runIdempotent(deps.repository, storedKey, hash, idempotency, async () => {
    const created = newPersona(deps, input, stableUuid(`${idSeed(deps, storedKey)}\0${hash}`));
    const written = (await deps.repository.createMany([created])).get(created.id);
    if (written?.kind === 'failed') {
      throw new ProblemError(503, 'throttled', 'DynamoDB is throttling writes; retry the same request with the same Idempotency-Key.', {
        headers: { 'Retry-After': '1' },
      });
    }
    // An earlier attempt of this same request wrote it before it could answer: that is the result.
    const persona = written?.kind === 'exists' ? orderPersonaKeys(written.current) : created;
    return { statusCode: 201, body: persona, final: true };
  });
  if (!outcome.replayed) return { persona: outcome.result, replayed: false };
  const persona = outcome.body as Persona;
  if (!(await deps.repository.get(persona.id))) throw deletedSinceCreated(persona.id);
  return { persona, replayed: true };
}

/** A replay must not present a persona that no longer exists as if it did. */
function deletedSinceCreated(id: string): ProblemError {
  return new ProblemError(
    410,
    'persona-deleted',
    `The first request with this Idempotency-Key created persona ${id}, which has since been deleted; to create it again, send the request with a new Idempotency-Key.`,
    { extensions: { id } },
  );
}

export async function getPersona(deps: PersonaServiceDeps, id: string): Promise<Persona> {
  const persona = await deps.repository.get(id);
  if (!persona) throw notFound(id);
  return orderPersonaKeys(persona);
}

function notFound(id: string): ProblemError {
  return new ProblemError(404, 'persona-not-found', `No persona has id ${id}; it was never created or has been deleted.`);
}

function staleVersion(current: Persona): ProblemError {
  return new ProblemError(
    412,
    'stale-version',
    `The persona has changed since you read it (it is now at version ${current.version}); GET it again, reapply your change and send the new ETag in If-Match.`,
    { headers: { ETag: `"${current.version}"` }, extensions: { current_version: current.version } },
  );
}

function conflictProblem(id: string, error: WriteConflictError): ProblemError {
  if (error.conflict.kind === 'version-mismatch') return staleVersion(error.conflict.current);
  return notFound(id);
}

function nextVersion(deps: PersonaServiceDeps, current: Persona, input: PersonaInput): Persona {
  return orderPersonaKeys({
    id: current.id,
    ...input,
    version: current.version + 1,
    created_at: current.created_at,
    updated_at: nowIso(deps),
  });
}

/** PUT /personas/{id}: full replace, only against the version named in If-Match. */
export async function replacePersona(
  deps: PersonaServiceDeps,
  id: string,
  body: unknown,
  expectedVersion: number | '*' | undefined,
): Promise<Persona> {
  if (expectedVersion === undefined) {
    throw new ProblemError(
      428,
      'precondition-required',
      'PUT requires If-Match with the ETag of the version you are replacing (from GET /personas/{id}), so that no update is lost.',
    );
  }
  const input = parsePersonaInput(body);
  const current = await deps.repository.get(id);
  if (!current) throw notFound(id);
  if (expectedVersion !== '*' && current.version !== expectedVersion) throw staleVersion(current);
  const replacement = nextVersion(deps, current, input);
  try {
    await deps.repository.replace(replacement, current.version);
  } catch (error) {
    if (error instanceof WriteConflictError) throw conflictProblem(id, error);
    throw error;
  }
  return replacement;
}

/**
 * How long a PATCH without If-Match keeps reapplying while other writes get in first: at most
 * `attempts` tries, and until `marginMs` before the function's timeout (`totalMs` when the caller
 * gives no deadline). Past either bound it answers 409 with Retry-After; nothing was written.
 */
export const PATCH_RETRY_BOUNDS = { attempts: 100, totalMs: 8_000, marginMs: 1_500 } as const;
const PATCH_RETRY_BACKOFF_MS = { base: 5, max: 200 } as const;

/** Full jitter: concurrent patchers spread out instead of colliding again in step. */
const patchRetryDelay = (attempt: number) => Math.random() * Math.min(PATCH_RETRY_BACKOFF_MS.max, PATCH_RETRY_BACKOFF_MS.base * 2 ** attempt);

function editConflict(attempts: number): ProblemError {
  // README: the PATCH row states these bounds.
  return new ProblemError(
    409,
    'edit-conflict',
    `Other writes to this persona kept getting in first; the patch was reapplied ${attempts} times and is not written. Retry it after the time in Retry-After.`,
    { headers: { 'Retry-After': '1' } },
  );
}

/**
 * A merge patch's null removes a member; removing one the schema does not have would pass
 * validation unnoticed (the merged result never shows it), so such names are rejected here, as
 * POST rejects them. Non-null unknown members reach the schema through the merge.
 */
function assertKnownNullMembers(patch: Record<string, unknown>): void {
  const known = new Set(Object.keys(personaInputSchema.shape));
  const traitNames = new Set<string>(TRAIT_NAMES);
  const errors: FieldError[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null && !known.has(key)) errors.push({ pointer: toJsonPointer([key]), detail: unknownFieldDetail(key) });
    if (key === 'traits' && isPlainObject(value)) {
      for (const [trait, score] of Object.entries(value)) {
        if (score === null && !traitNames.has(trait)) errors.push({ pointer: toJsonPointer([key, trait]), detail: unknownFieldDetail(trait) });
      }
    }
  }
  if (errors.length > 0) throw validationProblem(errors);
}

/** PATCH /personas/{id}: JSON Merge Patch. Without If-Match, a concurrent change makes it re-read and reapply. */
export async function patchPersona(
  deps: PersonaServiceDeps,
  id: string,
  patch: unknown,
  expectedVersion: number | '*' | undefined,
  /** Milliseconds the caller has left (Lambda's getRemainingTimeInMillis). */
  remainingMs?: number,
): Promise<Persona> {
  if (!isPlainObject(patch)) {
    throw validationProblem([{ pointer: '#', detail: `a merge patch must be a JSON object, not ${jsonTypeOf(patch)}` }]);
  }
  assertKnownNullMembers(patch);
  const deadline = Date.now() + (remainingMs === undefined ? PATCH_RETRY_BOUNDS.totalMs : remainingMs - PATCH_RETRY_BOUNDS.marginMs);
  let current = await deps.repository.get(id);
  for (let attempt = 1; ; attempt++) {
    if (!current) throw notFound(id);
    if (typeof expectedVersion === 'number' && current.version !== expectedVersion) throw staleVersion(current);
    const writable: Record<string, unknown> = { ...current };
    for (const field of SERVER_MANAGED_FIELDS) delete writable[field];
    const patched = nextVersion(deps, current, parsePersonaInput(applyMergePatch(writable, patch)));
    try {
      await deps.repository.replace(patched, current.version);
      return patched;
    } catch (error) {
      if (!(error instanceof WriteConflictError)) throw error;
      if (expectedVersion !== undefined || error.conflict.kind !== 'version-mismatch') throw conflictProblem(id, error);
      const delay = patchRetryDelay(attempt);
      if (attempt >= PATCH_RETRY_BOUNDS.attempts || Date.now() + delay > deadline) throw editConflict(attempt);
      await new Promise((resolve) => setTimeout(resolve, delay));
      // The failed condition returned the row as it is now (ALL_OLD): reapply onto that, no re-read.
      current = error.conflict.current;
    }
  }
}

/** DELETE /personas/{id}: 204 once; a second delete of the same id is a 404. */
export async function deletePersona(deps: PersonaServiceDeps, id: string, expectedVersion: number | '*' | undefined): Promise<void> {
  try {
    await deps.repository.delete(id, expectedVersion);
  } catch (error) {
    if (error instanceof WriteConflictError) throw conflictProblem(id, error);
    throw error;
  }
}

export interface PersonaListPage {
  items: Persona[];
  next_cursor: string | null;
}

/** `cursorKey` signs and checks the cursors (cursorSigningKey() in ./cursorSigningKey.ts). */
export async function listPersonas(deps: PersonaServiceDeps, limit: number, cursor: string | undefined, cursorKey: string): Promise<PersonaListPage> {
  const tenant = deps.repository.tenant;
  const startAfter = cursor === undefined ? undefined : decodeCursor(cursor, cursorKey, Date.now(), tenant);
  const page = await deps.repository.list(limit, startAfter);
  const items = page.items.map(orderPersonaKeys);
  // A page of large personas ends early, with a cursor after its last item, so it fits a Lambda response.
  const fitting = itemsWithinBudget(items);
  if (fitting < items.length) return { items: items.slice(0, fitting), next_cursor: encodeCursor(items[fitting - 1]!.id, cursorKey, Date.now(), tenant) };
  return { items, next_cursor: page.lastKey ? encodeCursor(page.lastKey, cursorKey, Date.now(), tenant) : null };
}

export type BatchItemResult =
  | { index: number; status: 201; id: string; version: number; deleted?: true }
  | { index: number; status: 400; errors: FieldError[]; more_errors?: number }
  | { index: number; status: 503; id: string; errors: FieldError[] };

export interface BatchResult {
  created: number;
  failed: number;
  results: BatchItemResult[];
}

function parseBatchBody(body: unknown): unknown[] {
  if (!isPlainObject(body)) throw validationProblem([{ pointer: '#', detail: `must be a JSON object {"personas": [...]}, not ${jsonTypeOf(body)}` }]);
  const unknownKeys = Object.keys(body).filter((key) => key !== 'personas');
  const errors: FieldError[] = unknownKeys.map((key) => ({ pointer: `#/${key}`, detail: `unknown field '${key}'; the body is {"personas": [...]}` }));
  const items = body.personas;
  if (!Array.isArray(items)) errors.push({ pointer: '#/personas', detail: items === undefined ? 'is required (an array of personas)' : `must be an array, not ${jsonTypeOf(items)}` });
  else if (items.length === 0) errors.push({ pointer: '#/personas', detail: 'must contain at least one persona' });
  else if (items.length > MAX_BATCH_ITEMS) errors.push({ pointer: '#/personas', detail: `must contain at most ${MAX_BATCH_ITEMS} personas, got ${items.length}; split the import into several requests` });
  if (errors.length > 0) throw validationProblem(errors);
  return items as unknown[];
}

/**
 * POST /personas/batch: validates each item on its own and writes the valid ones, each write
 * conditional on its id being free. With an Idempotency-Key the key is claimed first and item ids
 * derive from the key, the body and the item's position: a retry writes only what is missing, a
 * completed request is replayed, and another body with the same key is a 422.
 */
export async function batchCreatePersonas(
  deps: PersonaServiceDeps,
  body: unknown,
  idempotency?: IdempotencyRequest,
): Promise<{ result: BatchResult; replayed: boolean }> {
  const items = parseBatchBody(body);
  if (!idempotency) return { result: (await writeBatch(deps, items, () => deps.newId?.() ?? randomUUID())).result, replayed: false };
  const hash = requestHash(body);
  const storedKey = scopedIdempotencyKey('batchCreatePersonas', idempotency);
  const outcome = await runIdempotent(deps.repository, storedKey, hash, idempotency, async () => {
    const { result, complete } = await writeBatch(deps, items, (index) => stableUuid(`${idSeed(deps, storedKey)}\0${hash}\0${index}`));
    // An incomplete batch is not remembered as final, so its retry writes the missing items.
    return { statusCode: 200, body: result, final: complete };
  });
  if (!outcome.replayed) return { result: outcome.result, replayed: false };
  return { result: await markDeletedSince(deps, outcome.body as BatchResult), replayed: true };
}

async function writeBatch(deps: PersonaServiceDeps, items: unknown[], idFor: (index: number) => string) {
  const results: BatchItemResult[] = [];
  const toWrite: Persona[] = [];
  items.forEach((item, index) => {
    try {
      const persona = newPersona(deps, parsePersonaInput(item, ['personas', index]), idFor(index));
      toWrite.push(persona);
      results.push({ index, status: 201, id: persona.id, version: persona.version });
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      results.push({ index, status: 400, errors: error.errors ?? [] });
    }
  });
  reportAtMostMaxErrors(results);
  const outcomes = await deps.repository.createMany(toWrite);
  for (const [position, result] of results.entries()) {
    if (result.status !== 201) continue;
    const outcome = outcomes.get(result.id);
    if (outcome?.kind === 'exists') results[position] = { ...result, version: outcome.current.version };
    if (outcome?.kind === 'failed') {
      results[position] = {
        index: result.index,
        status: 503,
        id: result.id,
        errors: [{ pointer: `#/personas/${result.index}`, detail: 'not written: DynamoDB is throttling; retry the same request with the same Idempotency-Key' }],
      };
    }
  }
  const created = results.filter((result) => result.status === 201).length;
  return { result: { created, failed: results.length - created, results } satisfies BatchResult, complete: results.every((result) => result.status !== 503) };
}

/** A batch answer reports at most MAX_REPORTED_ERRORS field errors over all its items, in item order. */
function reportAtMostMaxErrors(results: BatchItemResult[]): void {
  let budget = MAX_REPORTED_ERRORS;
  for (const [position, result] of results.entries()) {
    if (result.status !== 400) continue;
    const capped = capFieldErrors(result.errors, budget);
    budget -= capped.errors.length;
    results[position] = { index: result.index, status: 400, ...capped };
  }
}

/** A replayed batch says which of the personas it created have since been deleted. */
async function markDeletedSince(deps: PersonaServiceDeps, result: BatchResult): Promise<BatchResult> {
  const ids = result.results.flatMap((item) => (item.status === 201 ? [item.id] : []));
  const existing = await deps.repository.getMany(ids);
  return {
    ...result,
    results: result.results.map((item) => (item.status === 201 && !existing.has(item.id) ? { ...item, deleted: true as const } : item)),
  };
}

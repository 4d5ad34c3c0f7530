import { createHash, randomUUID } from 'node:crypto';
import { IDEMPOTENCY_TTL_SECONDS } from '../config';
import { ProblemError, fieldErrorsFromZod, jsonTypeOf, validationProblem, type FieldError } from '../http/problem';
import { applyMergePatch, isPlainObject } from './mergePatch';
import { decodeCursor, encodeCursor } from './pageCursor';
import { IdempotencyRaceError, WriteConflictError, type PersonaRepository, type StoredIdempotencyRecord } from './personaRepository';
import { SERVER_MANAGED_FIELDS, orderPersonaKeys, personaInputSchema, type Persona, type PersonaInput } from './schema';

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

const requestHash = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');

function newPersona(deps: PersonaServiceDeps, input: PersonaInput, id: string): Persona {
  const timestamp = nowIso(deps);
  return orderPersonaKeys({ id, ...input, version: 1, created_at: timestamp, updated_at: timestamp });
}

function idempotencyMismatch(): ProblemError {
  return new ProblemError(
    422,
    'idempotency-key-reused',
    'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
  );
}

function idempotencyRecord(key: string, hash: string, statusCode: number, body: unknown): StoredIdempotencyRecord {
  return {
    key,
    request_hash: hash,
    status_code: statusCode,
    response_body: JSON.stringify(body),
    expires_at: Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS,
  };
}

async function replayIfKnown(repository: PersonaRepository, key: string, hash: string) {
  const record = await repository.getIdempotencyRecord(key);
  if (!record) return undefined;
  if (record.request_hash !== hash) throw idempotencyMismatch();
  return record;
}

export interface CreateResult {
  persona: Persona;
  /** True when an earlier request with the same Idempotency-Key produced this result. */
  replayed: boolean;
}

/** POST /personas: creates a persona; with an Idempotency-Key, a retry replays the first result. */
export async function createPersona(deps: PersonaServiceDeps, body: unknown, idempotencyKey?: string): Promise<CreateResult> {
  const key = idempotencyKey && `createPersona#${idempotencyKey}`;
  const hash = requestHash(body);
  if (key) {
    const known = await replayIfKnown(deps.repository, key, hash);
    if (known) return { persona: JSON.parse(known.response_body) as Persona, replayed: true };
  }
  const persona = newPersona(deps, parsePersonaInput(body), deps.newId?.() ?? randomUUID());
  try {
    await deps.repository.create(persona, key ? idempotencyRecord(key, hash, 201, persona) : undefined);
  } catch (error) {
    if (error instanceof IdempotencyRaceError && key) {
      const known = await replayIfKnown(deps.repository, key, hash);
      if (known) return { persona: JSON.parse(known.response_body) as Persona, replayed: true };
    }
    throw error;
  }
  return { persona, replayed: false };
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

const PATCH_ATTEMPTS = 3;

/** PATCH /personas/{id}: JSON Merge Patch. Without If-Match, a concurrent change makes it re-read and reapply. */
export async function patchPersona(
  deps: PersonaServiceDeps,
  id: string,
  patch: unknown,
  expectedVersion: number | '*' | undefined,
): Promise<Persona> {
  if (!isPlainObject(patch)) {
    throw validationProblem([{ pointer: '#', detail: `a merge patch must be a JSON object, not ${jsonTypeOf(patch)}` }]);
  }
  for (let attempt = 1; ; attempt++) {
    const current = await deps.repository.get(id);
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
      if (expectedVersion !== undefined || attempt >= PATCH_ATTEMPTS || error.conflict.kind === 'missing') {
        throw conflictProblem(id, error);
      }
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

export async function listPersonas(deps: PersonaServiceDeps, limit: number, cursor: string | undefined): Promise<PersonaListPage> {
  const startAfter = cursor === undefined ? undefined : decodeCursor(cursor);
  const page = await deps.repository.list(limit, startAfter);
  return {
    items: page.items.map(orderPersonaKeys),
    next_cursor: page.lastKey ? encodeCursor(page.lastKey) : null,
  };
}

export type BatchItemResult =
  | { index: number; status: 201; id: string; version: number }
  | { index: number; status: 400; errors: FieldError[] }
  | { index: number; status: 503; id: string; errors: FieldError[] };

export interface BatchResult {
  created: number;
  failed: number;
  results: BatchItemResult[];
}

/** A stable id per (Idempotency-Key, item position), so a retried batch rewrites nothing and duplicates nothing. */
function batchItemId(idempotencyKey: string, index: number): string {
  const bytes = createHash('sha256').update(`batch\0${idempotencyKey}\0${index}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
 * POST /personas/batch: validates each item on its own and writes the valid ones. With an
 * Idempotency-Key, item ids are derived from the key, items already written by an earlier attempt
 * are skipped, and a completed request is replayed.
 */
export async function batchCreatePersonas(deps: PersonaServiceDeps, body: unknown, idempotencyKey?: string): Promise<BatchResult> {
  const items = parseBatchBody(body);
  const key = idempotencyKey && `batchCreatePersonas#${idempotencyKey}`;
  const hash = requestHash(body);
  if (key) {
    const known = await replayIfKnown(deps.repository, key, hash);
    if (known) return JSON.parse(known.response_body) as BatchResult;
  }

  const results: BatchItemResult[] = [];
  const toWrite: Persona[] = [];
  items.forEach((item, index) => {
    try {
      const id = idempotencyKey ? batchItemId(idempotencyKey, index) : deps.newId?.() ?? randomUUID();
      const persona = newPersona(deps, parsePersonaInput(item, ['personas', index]), id);
      toWrite.push(persona);
      results.push({ index, status: 201, id: persona.id, version: persona.version });
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      results.push({ index, status: 400, errors: error.errors ?? [] });
    }
  });

  const alreadyWritten = key ? await deps.repository.getMany(toWrite.map((persona) => persona.id)) : new Map<string, Persona>();
  const failedIds = await deps.repository.putMany(toWrite.filter((persona) => !alreadyWritten.has(persona.id)));
  for (const [position, result] of results.entries()) {
    if (result.status === 201 && failedIds.has(result.id)) {
      results[position] = {
        index: result.index,
        status: 503,
        id: result.id,
        errors: [{ pointer: `#/personas/${result.index}`, detail: 'not written: DynamoDB is throttling; retry the same request with the same Idempotency-Key' }],
      };
    }
  }
  const created = results.filter((result) => result.status === 201).length;
  const batchResult: BatchResult = { created, failed: results.length - created, results };
  // An incomplete batch is not remembered, so its retry writes the missing items.
  if (key && failedIds.size === 0) await deps.repository.putIdempotencyRecord(idempotencyRecord(key, hash, 200, batchResult));
  return batchResult;
}

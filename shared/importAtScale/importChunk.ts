/**
 * The initial load at scale (`personas import --in-aws FILE`): the CLI validates the file's rows
 * locally with the API's schema (as `personas import` does), stages the valid ones in S3 as chunk
 * files of JSON lines and a work list, and starts the import state machine (infra/importAtScale.ts),
 * whose Distributed Map runs one writer Lambda per chunk. What one child does is here.
 *
 * Idempotent per row, as the API's `POST /personas/batch` is: every row becomes the item the API
 * would store (newPersona: version 1, both timestamps; the tenant's key `<tenant>#<id>` and its
 * `tenant_id` from the tenant-confined repository), with an id derived from the tenant, the file's
 * SHA-256 and the row's index (importRowId), and is written by the API's own conditional PutItem
 * (`attribute_not_exists(id)`, personaRepository.createMany). A retried chunk, a re-run of the
 * import or two imports of the same file therefore meet their own rows and write nothing again,
 * and a row a user has changed since (a newer version) is never overwritten.
 *
 * Why not BatchWriteItem: it "cannot update items. If you perform a BatchWriteItem operation on an
 * existing item, that item's values will be overwritten" and takes no condition per put
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html): a
 * retried chunk would reset every persona a user had edited in between to version 1. Why not
 * TransactWriteItems: its conditions are all-or-nothing over up to 100 items, so one row already
 * there cancels the whole transaction (TransactionCanceledException) and the retry must sort the
 * rows out itself, and a transactional write costs two write units per item instead of one
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
 * "Capacity management for transactions"). A conditional PutItem costs what an unconditional one
 * does and decides per row.
 *
 * Done markers: a chunk written completely leaves `import/<importId>/done/<n>.json` (its report);
 * a later attempt (a re-run after a failed execution) finds it and returns that report without
 * touching the table, so a persona deleted after its chunk was written is not created again.
 */
import { createHash } from 'node:crypto';
import { importRowId, newPersona } from '../persona/personaService';
import type { CreateOutcome } from '../persona/personaRepository';
import type { Persona } from '../persona/schema';
import type { FieldError } from '../http/problem';
import { validateRecord, type PersonaFileFormat } from '../operations/personaFileRecords';
import { isValidTenant, type TenancyMode } from '../tenancy/tenancy';
import type { ObjectStore } from '../reindexAtScale/exportFiles';
import { parseJsonLines } from '../jsonLines';

/** Where in the bucket an import keeps its staged chunks, work list, done markers and Map Run results. */
export const IMPORT_PREFIX = 'import';

/** The error names the state machine's Retry matches (infra/importAtScale.ts). */
export const IMPORT_THROTTLED = 'ImportThrottled';
export const IMPORT_REFUSED = 'ImportRefused';

/** DynamoDB kept throttling some rows of the chunk: the state machine retries the chunk with backoff. */
export class ImportThrottledError extends Error {
  constructor(rows: number, attempts: number) {
    super(`${rows} rows of the chunk were still throttled by DynamoDB after ${attempts} attempts; the chunk is retried`);
    this.name = IMPORT_THROTTLED;
  }
}

/** The event is not one this stage may write (tenancy, keys outside the import's own): not retried. */
export class ImportRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = IMPORT_REFUSED;
  }
}

/** One staged row: where it came from in the file (for the rejection report) and the persona as validated. */
export interface StagedRow {
  index: number;
  line: number;
  persona: unknown;
}

/** One line of the work list: one chunk file. */
export interface ImportChunkRef {
  n: number;
  key: string;
  rows: number;
}

/** One child's input (the Map's ItemSelector adds the import's fields to each work-list line). */
export interface ImportChunkEvent {
  importId: string;
  bucket: string;
  fileSha256: string;
  /** The tenant every row goes to (`claim` stages), null on a single-tenant stage. */
  tenant: string | null;
  chunk: ImportChunkRef;
}

/** A rejected row, as `personas import` reports one (FILE.rejected.jsonl). */
export interface RowRejection {
  index: number;
  line: number;
  errors: FieldError[];
}

export interface ImportChunkReport {
  importId: string;
  chunk: ImportChunkRef;
  rows: number;
  /** Rows this attempt wrote. */
  created: number;
  /** Rows whose id was already taken: written by an earlier attempt or run (never overwritten). */
  existing: number;
  /** Rows the writer's validation refused (the CLI validated them already: only a schema that differs between the CLI and the stack gets here). */
  rejected: number;
  /** At most MAX_LISTED_REJECTIONS of them, so that the child's output stays far below Step Functions' 256 KiB. */
  rejections: RowRejection[];
  /** True when an earlier attempt had finished the chunk (its done marker): nothing was written. */
  alreadyDone: boolean;
  durationMs: number;
  rowsPerSecond: number;
}

export interface ImportObjectStore extends ObjectStore {
  exists(bucket: string, key: string): Promise<boolean>;
}

export interface ImportChunkDeps {
  store: ImportObjectStore;
  /** The stage's table, confined to `tenant` (undefined: a single-tenant stage), as the API's repository is. */
  repositoryFor(tenant: string | undefined): { createMany(personas: readonly Persona[], options?: { concurrency?: number }): Promise<Map<string, CreateOutcome>> };
  /** The stage's tenancy (TENANCY): a `claim` stage's rows need a tenant, a single-tenant stage's must have none. */
  tenancy: TenancyMode;
  now?: () => Date;
  /** Conditional puts in flight (default 32). */
  concurrency?: number;
  /** The first backoff between two attempts at throttled rows, doubling (default 200 ms). */
  throttleBackoffMs?: number;
}

/** Rows per chunk (one child each): 2,000 conditional puts, 32 in flight, is well within the writer's 5-minute timeout (and Lambda's 15). */
export const DEFAULT_CHUNK_ROWS = 2_000;
export const MAX_LISTED_REJECTIONS = 50;
const THROTTLE_ATTEMPTS = 5;
const DEFAULT_WRITE_CONCURRENCY = 32;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An import's id: its file's content, the format the rows were read in and the tenant, so a file
 * imported into two tenants is two imports. 32 hex characters: fits S3 keys and execution names.
 */
export function importIdOf(fileSha256: string, format: PersonaFileFormat, tenant: string | undefined): string {
  return createHash('sha256').update(`${fileSha256}\0${format}\0${tenant ?? ''}`).digest('hex').slice(0, 32);
}

/** The import's objects under import/<importId>/. */
export function importKeys(importId: string) {
  const base = `${IMPORT_PREFIX}/${importId}`;
  const padded = (n: number) => String(n).padStart(6, '0');
  return {
    base,
    /** Written last by the CLI's staging: the staging is complete. */
    staged: `${base}/staged.json`,
    workList: `${base}/work-list.jsonl`,
    chunk: (n: number) => `${base}/chunks/${padded(n)}.jsonl`,
    done: (n: number) => `${base}/done/${padded(n)}.json`,
  };
}

export const stagedChunkText = (rows: readonly StagedRow[]): string => rows.map((row) => `${JSON.stringify(row)}\n`).join('');

export function parseStagedChunk(text: string): StagedRow[] {
  return parseJsonLines(text, 'staged', (value) => {
    const row = value as Partial<StagedRow>;
    return Number.isInteger(row.index) && Number.isInteger(row.line) && 'persona' in row ? (row as StagedRow) : 'is not {index, line, persona}';
  });
}

function checkEvent(deps: ImportChunkDeps, event: ImportChunkEvent): string | undefined {
  const tenant = event.tenant ?? undefined;
  if (deps.tenancy === 'claim' && !isValidTenant(tenant)) {
    throw new ImportRefusedError(`this stage keeps tenants apart (TENANCY=claim): an import names its tenant (personas import --in-aws --tenant T), got ${JSON.stringify(event.tenant)}`);
  }
  if (deps.tenancy === 'single' && tenant !== undefined) {
    throw new ImportRefusedError(`this stage has a single tenant (TENANCY=single): an import names none, got ${JSON.stringify(event.tenant)}`);
  }
  if (!/^[0-9a-f]{64}$/.test(event.fileSha256)) throw new ImportRefusedError(`fileSha256 must be 64 hex characters, got ${JSON.stringify(event.fileSha256)}`);
  if (!/^[0-9a-f]{32}$/.test(event.importId)) throw new ImportRefusedError(`importId must be 32 hex characters, got ${JSON.stringify(event.importId)}`);
  if (event.chunk.key !== importKeys(event.importId).chunk(event.chunk.n)) {
    throw new ImportRefusedError(`chunk ${event.chunk.n} of import ${event.importId} is staged at ${importKeys(event.importId).chunk(event.chunk.n)}, not ${event.chunk.key}`);
  }
  return tenant;
}

/**
 * Writes one staged chunk: each row validated again with the API's schema (the writer trusts no
 * file), made the item the API would store, written if its id is free. Rows DynamoDB throttles
 * are retried a few times here, then the chunk fails as ImportThrottled for the state machine's
 * Retry; anything else fails the chunk as it is.
 */
export async function writeImportChunk(deps: ImportChunkDeps, event: ImportChunkEvent): Promise<ImportChunkReport> {
  const started = performance.now();
  const tenant = checkEvent(deps, event);
  const doneKey = importKeys(event.importId).done(event.chunk.n);
  if (await deps.store.exists(event.bucket, doneKey)) {
    const earlier = JSON.parse(await deps.store.getText(event.bucket, doneKey)) as ImportChunkReport;
    return { ...earlier, created: 0, existing: earlier.created + earlier.existing, alreadyDone: true, durationMs: performance.now() - started, rowsPerSecond: 0 };
  }
  const rows = parseStagedChunk(await deps.store.getText(event.bucket, event.chunk.key));
  if (rows.length !== event.chunk.rows) throw new Error(`${event.chunk.key} holds ${rows.length} rows, the work list says ${event.chunk.rows}`);

  const rejections: RowRejection[] = [];
  let rejected = 0;
  const personas: Persona[] = [];
  for (const row of rows) {
    const outcome = validateRecord({ index: row.index, line: row.line, value: row.persona });
    if ('errors' in outcome) {
      rejected++;
      if (rejections.length < MAX_LISTED_REJECTIONS) rejections.push({ index: row.index, line: row.line, errors: outcome.errors.map((error) => ({ ...error, detail: `rejected by the writer: ${error.detail}` })) });
      continue;
    }
    personas.push(newPersona(deps, outcome.persona, importRowId(tenant, event.fileSha256, row.index)));
  }

  const repository = deps.repositoryFor(tenant);
  let pending = personas;
  let created = 0;
  let existing = 0;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > THROTTLE_ATTEMPTS) throw new ImportThrottledError(pending.length, THROTTLE_ATTEMPTS);
    if (attempt > 1) await sleep(Math.min(5_000, (deps.throttleBackoffMs ?? 200) * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
    const outcomes = await repository.createMany(pending, { concurrency: deps.concurrency ?? DEFAULT_WRITE_CONCURRENCY });
    const throttled: Persona[] = [];
    for (const persona of pending) {
      const outcome = outcomes.get(persona.id);
      if (outcome?.kind === 'created') created++;
      else if (outcome?.kind === 'exists') existing++;
      else throttled.push(persona);
    }
    pending = throttled;
  }

  const durationMs = performance.now() - started;
  const report: ImportChunkReport = {
    importId: event.importId,
    chunk: event.chunk,
    rows: rows.length,
    created,
    existing,
    rejected,
    rejections,
    alreadyDone: false,
    durationMs,
    rowsPerSecond: rows.length / Math.max(durationMs / 1000, 1e-3),
  };
  await deps.store.putText(event.bucket, doneKey, JSON.stringify(report), 'application/json');
  return report;
}

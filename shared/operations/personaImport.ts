/**
 * Bulk import of a persona file through `POST /personas/batch`.
 *
 * - Streamed: records are read one at a time and at most `concurrency` batches are held.
 * - Validated locally with the API's own schema (parsePersonaInput); rejected rows go to a JSON
 *   lines report with their line, index, JSON pointer and the reason.
 * - Safe to re-run: batch i of a file is always the same personas (file order), and is sent with
 *   the Idempotency-Key `personas-import:<file sha256>:<batch size>:<i>`, from which the API
 *   derives the item ids; a repeated batch rewrites and duplicates nothing.
 * - Resumable: a checkpoint file lists the finished batches, which a re-run does not send again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { ProblemError, type FieldError } from '../http/problem';
import { bodyLimits } from '../http/request';
import { MAX_BATCH_ITEMS, parsePersonaInput } from '../persona/personaService';
import { SERVER_MANAGED_FIELDS, type PersonaInput } from '../persona/schema';
import { personaClientFor, type ApiTarget } from './personaApiClient';
import { formatFromFileName, readPersonaFile, type FileRecord, type PersonaFileFormat, type ReadPosition } from './personaFileRecords';

export interface ImportOptions extends ApiTarget {
  file: string;
  /** Default: from the file's extension (.json, .jsonl/.ndjson, .csv). */
  format?: PersonaFileFormat;
  /** Personas per request (at most the API's 100). */
  batchSize?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Default `<file>.checkpoint.json`. */
  checkpointFile?: string;
  /** Default `<file>.rejected.jsonl`; written only when a row is rejected (a previous run's is removed). */
  reportFile?: string;
  onProgress?: (progress: ImportProgress) => void;
}

/** Progress counts only what the API has answered (or what was rejected before sending). */
export interface ImportProgress {
  bytesRead: number;
  totalBytes: number;
  /** Records in the file (counted before sending) and records read so far. */
  totalRows: number;
  rows: number;
  /** Rows finished: personas the API acknowledged (this run and earlier runs' checkpointed batches) plus rejected rows. */
  rowsDone: number;
  rejected: number;
  /** Personas the API has acknowledged as created (this run and, when resuming, earlier runs). */
  imported: number;
  elapsedMs: number;
}

export interface ImportReport {
  file: string;
  format: PersonaFileFormat;
  fileSha256: string;
  rows: number;
  valid: number;
  rejected: number;
  batches: number;
  /** Batches a previous run had finished, not sent again. */
  batchesSkipped: number;
  batchesSent: number;
  /** Personas sent in this run. */
  personasSent: number;
  /** Of those, personas this run wrote, and personas an earlier run had written (answered from its Idempotency-Key). */
  personasWritten: number;
  personasReplayed: number;
  /** False when the run was interrupted (signal); run it again to resume. */
  completed: boolean;
  durationMs: number;
  /** personasWritten per second of this run (replays are not writes). */
  personasPerSecond: number;
  /** The rejected rows with their reasons; null when none was rejected (no file is written). */
  reportFile: string | null;
  checkpointFile: string;
}

export interface Rejection {
  index: number;
  line: number;
  errors: FieldError[];
}

interface Checkpoint {
  file_sha256: string;
  batch_size: number;
  completed_batches: number[];
}

/** Headroom under the API's 1 MB body limit for the JSON envelope. */
const MAX_BATCH_BYTES = bodyLimits.batch - 16 * 1024;
const DEFAULT_CONCURRENCY = 4;
/** A batch whose items were throttled is retried as a whole (same key: the API writes only the missing items). */
const THROTTLED_BATCH_ATTEMPTS = 6;

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const importBatchKey = (fileSha256: string, batchSize: number, batchIndex: number) =>
  `personas-import:${fileSha256}:${batchSize}:${batchIndex}`;

async function loadCheckpoint(path: string, fileSha256: string, batchSize: number): Promise<Set<number>> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return new Set();
  const checkpoint = JSON.parse(text) as Checkpoint;
  // A checkpoint of another file version (or batch size) says nothing about this one.
  if (checkpoint.file_sha256 !== fileSha256 || checkpoint.batch_size !== batchSize) return new Set();
  return new Set(checkpoint.completed_batches);
}

/**
 * Validates one record as the API would; server-managed fields (as in an export) are dropped, and so
 * is an export's `tenant_id`: the API puts every imported persona in the caller's own tenant.
 */
export function validateRecord(record: FileRecord): { persona: PersonaInput } | { errors: FieldError[] } {
  if ('parseError' in record) return { errors: [{ pointer: '#', detail: record.parseError }] };
  let value = record.value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const copy = { ...(value as Record<string, unknown>) };
    for (const field of SERVER_MANAGED_FIELDS) delete copy[field];
    delete copy.tenant_id;
    value = copy;
  }
  try {
    return { persona: parsePersonaInput(value) };
  } catch (error) {
    if (error instanceof ProblemError) return { errors: error.errors ?? [{ pointer: '#', detail: error.message }] };
    throw error;
  }
}

/** Records in the file, for an honest progress fraction (one streamed pass, like the import's own). */
async function countRecords(file: string, format: PersonaFileFormat): Promise<number> {
  let records = 0;
  for await (const record of readPersonaFile(file, format)) records = record.index + 1;
  return records;
}

interface Batch {
  index: number;
  personas: PersonaInput[];
  /** Where each persona came from, to report an item the API rejects. */
  origins: Array<{ index: number; line: number }>;
  bytes: number;
}

export async function importPersonas(options: ImportOptions): Promise<ImportReport> {
  const started = performance.now();
  const format = options.format ?? formatFromFileName(options.file);
  const batchSize = options.batchSize ?? MAX_BATCH_ITEMS;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_ITEMS) {
    throw new Error(`the batch size must be a whole number from 1 to ${MAX_BATCH_ITEMS} (the API's limit per request)`);
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const checkpointFile = options.checkpointFile ?? `${options.file}.checkpoint.json`;
  const reportFile = options.reportFile ?? `${options.file}.rejected.jsonl`;
  const { size: totalBytes } = await stat(options.file).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? new Error(`no file ${options.file}; give the path of a .json, .jsonl or .csv file`) : error;
  });
  const fileSha256 = await sha256OfFile(options.file);
  const totalRows = await countRecords(options.file, format);
  const finished = await loadCheckpoint(checkpointFile, fileSha256, batchSize);

  const counts = { rows: 0, valid: 0, rejected: 0, imported: 0, batches: 0, batchesSkipped: 0, batchesSent: 0, personasSent: 0, personasWritten: 0, personasReplayed: 0 };
  const position: ReadPosition = { bytesRead: 0 };
  const progress = () =>
    options.onProgress?.({
      bytesRead: position.bytesRead,
      totalBytes,
      totalRows,
      rows: counts.rows,
      rowsDone: counts.imported + counts.rejected,
      rejected: counts.rejected,
      imported: counts.imported,
      elapsedMs: performance.now() - started,
    });

  // The report describes this run alone, and exists only when it rejected something.
  await mkdir(dirname(reportFile), { recursive: true });
  await rm(reportFile, { force: true });
  let report: WriteStream | undefined;
  const reject = (rejection: Rejection) => {
    counts.rejected++;
    report ??= createWriteStream(reportFile);
    report.write(JSON.stringify(rejection) + '\n');
  };

  let checkpointWrite = Promise.resolve();
  const saveCheckpoint = () => {
    const checkpoint: Checkpoint = { file_sha256: fileSha256, batch_size: batchSize, completed_batches: [...finished].sort((a, b) => a - b) };
    // Serialised and atomic (rename), so an interrupted run never leaves a torn checkpoint.
    checkpointWrite = checkpointWrite.then(async () => {
      await writeFile(`${checkpointFile}.tmp`, JSON.stringify(checkpoint));
      await rename(`${checkpointFile}.tmp`, checkpointFile);
    });
    return checkpointWrite;
  };

  const client = personaClientFor(options);
  const sendBatch = async (batch: Batch) => {
    const key = importBatchKey(fileSha256, batchSize, batch.index);
    let created = 0;
    for (let attempt = 1; ; attempt++) {
      const { result, replayed } = await client.createPersonas(batch.personas, { idempotencyKey: key, ...(options.signal ? { signal: options.signal } : {}) });
      const throttled = result.results.filter((item) => item.status === 503);
      if (throttled.length === 0) {
        created = result.created;
        if (replayed) counts.personasReplayed += created;
        else counts.personasWritten += created;
        for (const item of result.results) {
          if (item.status !== 400) continue;
          const origin = batch.origins[item.index]!;
          reject({ ...origin, errors: item.errors.map((error) => ({ ...error, pointer: error.pointer.replace(/^#\/personas\/\d+/, '#'), detail: `rejected by the API: ${error.detail}` })) });
        }
        break;
      }
      if (attempt >= THROTTLED_BATCH_ATTEMPTS) {
        throw new Error(`batch ${batch.index}: ${throttled.length} personas were still not written after ${attempt} attempts (DynamoDB throttling); run the same import again to resume`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
    finished.add(batch.index);
    counts.batchesSent++;
    counts.personasSent += batch.personas.length;
    counts.imported += created;
    await saveCheckpoint();
    progress();
  };

  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const dispatch = async (batch: Batch) => {
    counts.batches++;
    if (finished.has(batch.index)) {
      counts.batchesSkipped++;
      counts.imported += batch.personas.length;
      return;
    }
    const sending: Promise<void> = sendBatch(batch).catch((error: unknown) => {
      failure ??= error;
    });
    inFlight.add(sending);
    void sending.finally(() => inFlight.delete(sending));
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  let batch: Batch = { index: 0, personas: [], origins: [], bytes: 0 };
  let lastProgress = 0;
  try {
    for await (const record of readPersonaFile(options.file, format, position)) {
      if (failure || options.signal?.aborted) break;
      counts.rows++;
      const outcome = validateRecord(record);
      if ('errors' in outcome) {
        reject({ index: record.index, line: record.line, errors: outcome.errors });
        continue;
      }
      counts.valid++;
      const bytes = Buffer.byteLength(JSON.stringify(outcome.persona)) + 1;
      if (batch.personas.length > 0 && batch.bytes + bytes > MAX_BATCH_BYTES) {
        await dispatch(batch);
        batch = { index: batch.index + 1, personas: [], origins: [], bytes: 0 };
      }
      batch.personas.push(outcome.persona);
      batch.origins.push({ index: record.index, line: record.line });
      batch.bytes += bytes;
      if (batch.personas.length >= batchSize) {
        await dispatch(batch);
        batch = { index: batch.index + 1, personas: [], origins: [], bytes: 0 };
      }
      if (performance.now() - lastProgress > 100) {
        lastProgress = performance.now();
        progress();
      }
    }
    if (!failure && !options.signal?.aborted && batch.personas.length > 0) await dispatch(batch);
    await Promise.all(inFlight);
  } finally {
    await Promise.allSettled(inFlight);
    await checkpointWrite.catch(() => undefined);
    if (report) await new Promise<void>((resolve) => report!.end(resolve));
  }
  const aborted = options.signal?.aborted ?? false;
  if (failure && !aborted) throw failure;
  progress();
  const durationMs = performance.now() - started;
  return {
    file: options.file,
    format,
    fileSha256,
    rows: counts.rows,
    valid: counts.valid,
    rejected: counts.rejected,
    batches: counts.batches,
    batchesSkipped: counts.batchesSkipped,
    batchesSent: counts.batchesSent,
    personasSent: counts.personasSent,
    personasWritten: counts.personasWritten,
    personasReplayed: counts.personasReplayed,
    completed: !aborted,
    durationMs,
    personasPerSecond: counts.personasWritten / Math.max(durationMs / 1000, 1e-3),
    reportFile: counts.rejected > 0 ? reportFile : null,
    checkpointFile,
  };
}

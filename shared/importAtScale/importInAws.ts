/**
 * `personas import --in-aws FILE`: the CLI's side of the import in AWS (infra/importAtScale.ts).
 *
 * 1. Stage: the file is read as `personas import` reads it (streamed JSON array, JSON lines or CSV),
 *    every row validated with the API's schema (validateRecord); rejected rows go to the same report
 *    (FILE.rejected.jsonl, {index, line, errors}); valid rows go to chunk files of JSON lines
 *    (`import/<importId>/chunks/<n>.jsonl`), then the work list and, last, `staged.json`. The import
 *    id derives from the file's content, its format and the tenant, so a re-run finds its staging and
 *    does not stage again.
 * 2. Start: an execution named `import-<importId>-<attempt>`. The name makes the execution the
 *    import's state: a re-run describes attempt 1, 2, ... by name (DescribeExecution) and re-attaches
 *    to the one running, reports the one that succeeded, or starts the next attempt after a failed
 *    one (its finished chunks are skipped by their done markers, the others write only the rows
 *    still missing: shared/importAtScale/importChunk.ts).
 * 3. Follow: the Map Run's item counts (chunks) give rows done, rate and ETA since the execution's
 *    start. A CLI that dies leaves the execution running.
 * 4. Report: the Map Run's results (the ResultWriter's manifest.json and its SUCCEEDED_<n>.json
 *    files: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html)
 *    give the rows written, found and rejected by the writers.
 *
 * Step Functions API shapes used (AWS Step Functions API Reference): StartExecution (name, input ->
 * executionArn, startDate; the same name and input while it runs is the same execution),
 * DescribeExecution (status, startDate, output, error, cause; ExecutionDoesNotExist), ListMapRuns,
 * DescribeMapRun (itemCounts).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  ListMapRunsCommand,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { formatFromFileName, validatedRecords, type PersonaFileFormat, type ReadPosition } from '../operations/personaFileRecords';
import { sha256OfFile } from '../operations/personaImport';
import { DEFAULT_CHUNK_ROWS, importIdOf, importKeys, stagedChunkText, type ImportChunkRef, type ImportChunkReport, type ImportObjectStore, type RowRejection, type StagedRow } from './importChunk';

/** What staging left: written last, as staged.json, so that its presence means the staging is complete. */
export interface StagedImport {
  importId: string;
  file: string;
  format: PersonaFileFormat;
  fileSha256: string;
  tenant: string | null;
  rows: number;
  valid: number;
  rejected: number;
  chunks: number;
  chunkRows: number;
  workListKey: string;
  stagedAt: string;
}

/** The execution's input. */
export interface ImportExecutionInput {
  importId: string;
  fileSha256: string;
  tenant: string | null;
  workListKey: string;
  rows: number;
  chunks: number;
}

export type ImportPhase = 'staging' | 'staged' | 'started' | 'attached';

export interface ImportInAwsProgress {
  phase: 'staging' | 'writing';
  /** staging: bytes read of the file; writing: rows of finished chunks (an estimate until the end). */
  done: number;
  total: number;
  /** Rows staged or rows written so far. */
  rows: number;
  /** Since the staging started, or since the execution started (a re-attached run included). */
  elapsedMs: number;
  note?: string;
}

export interface ImportInAwsOptions {
  file: string;
  format?: PersonaFileFormat;
  /** The tenant every row goes to (`claim` stages). */
  tenant?: string;
  bucket: string;
  stateMachineArn: string;
  sfn: SFNClient;
  store: ImportObjectStore;
  chunkRows?: number;
  /** Default `<file>.rejected.jsonl`, as for `personas import`. */
  reportFile?: string;
  pollMs?: number;
  /** Chunk uploads in flight while staging. */
  uploadConcurrency?: number;
  onPhase?: (phase: ImportPhase, detail: string) => void;
  onProgress?: (progress: ImportInAwsProgress) => void;
}

export interface ImportInAwsReport {
  file: string;
  format: PersonaFileFormat;
  fileSha256: string;
  importId: string;
  tenant: string | null;
  rows: number;
  valid: number;
  /** Rejected by the CLI's validation, and (a stack whose schema differs) by the writers. */
  rejected: number;
  rejectedByWriters: number;
  chunks: number;
  /** Rows the writers wrote, and rows they found already there (an earlier attempt or run wrote them). */
  created: number;
  existing: number;
  /** Chunks an earlier attempt had finished (skipped by their done markers). */
  chunksAlreadyDone: number;
  executionArn: string;
  execution: string;
  attempt: number;
  /** True when this run found the execution already running or finished (the CLI had died, or the import was done before). */
  attached: boolean;
  /** From the execution's start to its end. */
  durationMs: number;
  rowsPerSecond: number;
  resultsManifest: string | null;
  reportFile: string | null;
}

/** The import failed in AWS: the execution's error, its Map Run's counts, where the failed chunks are told. */
export class ImportExecutionFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportExecutionFailed';
  }
}

const TERMINAL_FAILURES = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Execution names: 1-80 of A-Z a-z 0-9 - _ (StartExecution). */
export const importExecutionName = (importId: string, attempt: number) => `import-${importId}-${attempt}`;

/** An execution's ARN from its state machine's (arn:…:stateMachine:<name> -> arn:…:execution:<name>:<execution>). */
export function executionArnOf(stateMachineArn: string, name: string): string {
  const parts = stateMachineArn.split(':');
  if (parts[5] !== 'stateMachine' || parts.length !== 7) throw new Error(`not a state machine ARN: ${stateMachineArn}`);
  return [...parts.slice(0, 5), 'execution', parts[6], name].join(':');
}

/**
 * Stages the file: one streamed pass that validates every row and writes the chunks, then the
 * work list and staged.json. Rejected rows go to the report file, as `personas import` writes it.
 */
export async function stageImportFile(options: ImportInAwsOptions): Promise<StagedImport> {
  const started = performance.now();
  const format = options.format ?? formatFromFileName(options.file);
  const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
  const reportFile = options.reportFile ?? `${options.file}.rejected.jsonl`;
  const { size: totalBytes } = await stat(options.file);
  const fileSha256 = await sha256OfFile(options.file);
  const tenant = options.tenant ?? null;
  const importId = importIdOf(fileSha256, format, options.tenant);
  const keys = importKeys(importId);

  await mkdir(dirname(reportFile), { recursive: true });
  await rm(reportFile, { force: true });
  let report: WriteStream | undefined;
  const counts = { rows: 0, valid: 0, rejected: 0 };
  const reject = (rejection: RowRejection) => {
    counts.rejected++;
    report ??= createWriteStream(reportFile);
    report.write(`${JSON.stringify(rejection)}\n`);
  };

  const work: ImportChunkRef[] = [];
  const uploads = new Set<Promise<void>>();
  let failure: unknown;
  const upload = async (rows: StagedRow[]) => {
    const chunk: ImportChunkRef = { n: work.length, key: keys.chunk(work.length), rows: rows.length };
    work.push(chunk);
    const sending: Promise<void> = options.store.putText(options.bucket, chunk.key, stagedChunkText(rows), 'application/x-ndjson').catch((error: unknown) => {
      failure ??= error;
    });
    uploads.add(sending);
    void sending.finally(() => uploads.delete(sending));
    while (uploads.size >= (options.uploadConcurrency ?? 4)) await Promise.race(uploads);
  };

  const position: ReadPosition = { bytesRead: 0 };
  let rows: StagedRow[] = [];
  let lastProgress = 0;
  try {
    for await (const row of validatedRecords(options.file, format, position, counts, reject, () => Boolean(failure))) {
      rows.push(row);
      if (rows.length >= chunkRows) {
        await upload(rows);
        rows = [];
      }
      if (performance.now() - lastProgress > 100) {
        lastProgress = performance.now();
        options.onProgress?.({ phase: 'staging', done: position.bytesRead, total: totalBytes, rows: counts.valid, elapsedMs: performance.now() - started, ...(counts.rejected ? { note: `${counts.rejected} rejected` } : {}) });
      }
    }
    if (!failure && rows.length > 0) await upload(rows);
    await Promise.all(uploads);
  } finally {
    await Promise.allSettled(uploads);
    if (report) await new Promise<void>((resolve) => report!.end(resolve));
  }
  if (failure) throw failure;
  await options.store.putText(options.bucket, keys.workList, work.map((chunk) => `${JSON.stringify(chunk)}\n`).join(''), 'application/x-ndjson');
  const staged: StagedImport = {
    importId,
    file: options.file,
    format,
    fileSha256,
    tenant,
    rows: counts.rows,
    valid: counts.valid,
    rejected: counts.rejected,
    chunks: work.length,
    chunkRows,
    workListKey: keys.workList,
    stagedAt: new Date().toISOString(),
  };
  await options.store.putText(options.bucket, keys.staged, JSON.stringify(staged, null, 2), 'application/json');
  return staged;
}

interface ResultsManifest {
  DestinationBucket?: string;
  ResultFiles?: Record<string, Array<{ Key: string; Size?: number }>>;
}

/** The writers' reports from the Map Run's results: manifest.json names the SUCCEEDED_<n>.json files, each a JSON array of child executions with their Output as a JSON string. */
async function readChildReports(store: ImportObjectStore, bucket: string, manifestKey: string): Promise<ImportChunkReport[]> {
  const manifest = JSON.parse(await store.getText(bucket, manifestKey)) as ResultsManifest;
  const reports: ImportChunkReport[] = [];
  for (const file of manifest.ResultFiles?.SUCCEEDED ?? []) {
    const children = JSON.parse(await store.getText(manifest.DestinationBucket ?? bucket, file.Key)) as Array<{ Output?: string }>;
    for (const child of children) if (child.Output) reports.push(JSON.parse(child.Output) as ImportChunkReport);
  }
  return reports;
}

/**
 * The whole import: stage (unless staged.json says it is staged), start or re-attach, follow,
 * report. Throws ImportExecutionFailedError when the execution fails.
 */
export async function importInAws(options: ImportInAwsOptions): Promise<ImportInAwsReport> {
  const { sfn, store, bucket } = options;
  const format = options.format ?? formatFromFileName(options.file);
  const reportFile = options.reportFile ?? `${options.file}.rejected.jsonl`;
  await stat(options.file).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? new Error(`no file ${options.file}; give the path of a .json, .jsonl or .csv file`) : error;
  });
  const fileSha256 = await sha256OfFile(options.file);
  const importId = importIdOf(fileSha256, format, options.tenant);
  const keys = importKeys(importId);

  let staged: StagedImport;
  if (await store.exists(bucket, keys.staged)) {
    staged = JSON.parse(await store.getText(bucket, keys.staged)) as StagedImport;
    options.onPhase?.('staged', `already staged at s3://${bucket}/${keys.base}/ (${staged.stagedAt}): ${staged.valid} valid rows in ${staged.chunks} chunks, ${staged.rejected} rejected${staged.rejected ? ` (reasons in ${reportFile})` : ''}`);
  } else {
    options.onPhase?.('staging', `validating ${options.file} (${format}) and staging its rows at s3://${bucket}/${keys.base}/`);
    staged = await stageImportFile(options);
    options.onPhase?.('staged', `${staged.rows} rows: ${staged.valid} valid in ${staged.chunks} chunks of up to ${staged.chunkRows}, ${staged.rejected} rejected${staged.rejected ? ` (reasons in ${reportFile})` : ''}`);
  }

  if (staged.valid === 0) throw new Error(`${options.file} has no valid row to import (${staged.rejected} rejected${staged.rejected ? `, reasons in ${reportFile}` : ''})`);
  const input: ImportExecutionInput = { importId, fileSha256, tenant: staged.tenant, workListKey: staged.workListKey, rows: staged.valid, chunks: staged.chunks };
  let attempt = 1;
  let execution: DescribeExecutionCommandOutput | undefined;
  let attached = false;
  for (;; attempt++) {
    const executionArn = executionArnOf(options.stateMachineArn, importExecutionName(importId, attempt));
    execution = await sfn.send(new DescribeExecutionCommand({ executionArn })).catch((error: Error) => {
      if (error.name === 'ExecutionDoesNotExist') return undefined;
      throw error;
    });
    if (!execution) break;
    if (execution.status && TERMINAL_FAILURES.has(execution.status)) {
      options.onPhase?.('attached', `attempt ${attempt} (${execution.name}) ${execution.status.toLowerCase()}: ${execution.error ?? 'no error'}; starting attempt ${attempt + 1}`);
      continue;
    }
    attached = true;
    options.onPhase?.('attached', `execution ${execution.name} ${execution.status?.toLowerCase()}, started ${execution.startDate?.toISOString()}`);
    break;
  }
  const name = importExecutionName(importId, attempt);
  const executionArn = executionArnOf(options.stateMachineArn, name);
  /** Found finished: an earlier run reported it (and wrote the writers' rejections into the report). */
  const finishedBefore = execution?.status === 'SUCCEEDED';
  if (!execution) {
    // The same name and input while it runs is the same execution (StartExecution is idempotent then).
    await sfn.send(new StartExecutionCommand({ stateMachineArn: options.stateMachineArn, name, input: JSON.stringify(input) }));
    options.onPhase?.('started', `execution ${name}: ${staged.chunks} chunks, ${staged.valid} rows`);
  }

  for (;;) {
    execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    const startedAt = execution.startDate?.getTime() ?? Date.now();
    const { mapRuns } = await sfn.send(new ListMapRunsCommand({ executionArn }));
    const mapRunArn = mapRuns?.at(-1)?.mapRunArn;
    const counts = mapRunArn ? (await sfn.send(new DescribeMapRunCommand({ mapRunArn }))).itemCounts : undefined;
    const chunkNote = counts ? `${counts.succeeded}/${counts.total} chunks done, ${counts.running} running, ${counts.failed} failed` : 'the Map Run is starting';
    if (execution.status === 'SUCCEEDED') break;
    if (execution.status && TERMINAL_FAILURES.has(execution.status)) {
      throw new ImportExecutionFailedError(
        `the import execution ${name} ${execution.status.toLowerCase()}: ${execution.error ?? 'no error'}${execution.cause ? ` (${execution.cause.slice(0, 500)})` : ''}; Map Run: ${chunkNote}. ` +
          `The failed chunks and their errors are in the Map Run's results (FAILED_*.json under import/results/ of the bucket) and in the import writer's logs. ` +
          'Run the same command again to retry: finished chunks are skipped, the others write only the rows still missing ' +
          '(a chunk the writer refused, ImportRefused, fails again until its cause is fixed: --tenant on a stage with tenancy=claim, none on a single-tenant stage).',
      );
    }
    const rows = Math.min(staged.valid, (counts?.succeeded ?? 0) * staged.chunkRows);
    options.onProgress?.({ phase: 'writing', done: rows, total: staged.valid, rows, elapsedMs: Date.now() - startedAt, note: chunkNote });
    await sleep(options.pollMs ?? 5_000);
  }

  const output = JSON.parse(execution.output ?? '{}') as { write?: { ResultWriterDetails?: { Bucket: string; Key: string } } };
  const results = output.write?.ResultWriterDetails;
  const reports = results ? await readChildReports(store, results.Bucket, results.Key) : [];
  const writerRejections = reports.flatMap((report) => report.rejections);
  const rejectedByWriters = reports.reduce((sum, report) => sum + report.rejected, 0);
  if (writerRejections.length > 0 && !finishedBefore) {
    // Beside the CLI's own rejections, in the same report (the CLI's are there from the staging).
    const stream = createWriteStream(reportFile, { flags: 'a' });
    for (const rejection of writerRejections) stream.write(`${JSON.stringify(rejection)}\n`);
    await new Promise<void>((resolve) => stream.end(resolve));
  }
  const durationMs = (execution.stopDate?.getTime() ?? Date.now()) - (execution.startDate?.getTime() ?? Date.now());
  const created = reports.reduce((sum, report) => sum + report.created, 0);
  const rejected = staged.rejected + rejectedByWriters;
  return {
    file: options.file,
    format,
    fileSha256,
    importId,
    tenant: staged.tenant,
    rows: staged.rows,
    valid: staged.valid - rejectedByWriters,
    rejected,
    rejectedByWriters,
    chunks: staged.chunks,
    created,
    existing: reports.reduce((sum, report) => sum + report.existing, 0),
    chunksAlreadyDone: reports.filter((report) => report.alreadyDone).length,
    executionArn,
    execution: name,
    attempt,
    attached,
    durationMs,
    rowsPerSecond: created / Math.max(durationMs / 1000, 1e-3),
    resultsManifest: results ? `s3://${results.Bucket}/${results.Key}` : null,
    reportFile: rejected > 0 ? reportFile : null,
  };
}

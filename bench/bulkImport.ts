/**
 * Bulk import through the API, and the wait until the index has caught up with it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { importPersonas } from '../shared/operations/personaImport';
import type { PersonaInput } from '../shared/persona/schema';

export interface BulkImportResult {
  personas: number;
  method: string;
  batchSize: number;
  concurrency: number;
  /** Until the API had accepted every batch. */
  importSeconds: number;
  importPersonasPerSecond: number;
  /** From the start of the import until every persona was a point in Qdrant. */
  indexedSeconds: number;
  indexedPersonasPerSecond: number;
}

/** Points in the collection (or alias); 0 while it does not exist yet. */
export async function pointCount(qdrant: QdrantClient, collection: string): Promise<number> {
  try {
    return (await qdrant.count(collection, { exact: true })).count;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return 0;
    throw error;
  }
}

/** Waits until the collection holds at least `count` points; returns when that was first seen. */
export async function waitForPointCount(qdrant: QdrantClient, collection: string, count: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const current = await pointCount(qdrant, collection);
    if (current >= count) return performance.now();
    if (performance.now() > deadline) throw new Error(`the index holds ${current} of ${count} points after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Imports `personas` with the `personas import` command's function (streamed file, validated,
 * POST /personas/batch with bounded concurrency) and measures the import and the index catching up.
 * Writing the file beforehand is not timed; hashing and reading it is (the command does both).
 */
export async function measureBulkImport(
  apiUrl: string,
  qdrant: QdrantClient,
  collection: string,
  personas: readonly PersonaInput[],
  options: { batchSize: number; concurrency: number; workDir: string; runId: string; expectedPoints: number },
): Promise<BulkImportResult> {
  mkdirSync(options.workDir, { recursive: true });
  const file = path.join(options.workDir, `import-${options.runId}.jsonl`);
  const checkpointFile = `${file}.checkpoint.json`;
  // A checkpoint from an earlier run would make the import skip batches.
  rmSync(checkpointFile, { force: true });
  writeFileSync(file, personas.map((persona) => JSON.stringify(persona)).join('\n') + '\n');

  const started = performance.now();
  const report = await importPersonas({ apiUrl, file, batchSize: options.batchSize, concurrency: options.concurrency, checkpointFile, reportFile: `${file}.rejected.jsonl` });
  const imported = performance.now();
  if (report.rejected > 0 || report.personasSent !== personas.length) throw new Error(`import sent ${report.personasSent} of ${personas.length} personas, rejected ${report.rejected}`);
  const indexed = await waitForPointCount(qdrant, collection, options.expectedPoints, 600_000);
  const importSeconds = (imported - started) / 1000;
  const indexedSeconds = (indexed - started) / 1000;
  return {
    personas: personas.length,
    method: `importPersonas (personas import): POST /personas/batch, ${options.batchSize} a request, ${options.concurrency} in flight`,
    batchSize: options.batchSize,
    concurrency: options.concurrency,
    importSeconds: Math.round(importSeconds * 100) / 100,
    importPersonasPerSecond: Math.round(personas.length / importSeconds),
    indexedSeconds: Math.round(indexedSeconds * 100) / 100,
    indexedPersonasPerSecond: Math.round(personas.length / indexedSeconds),
  };
}

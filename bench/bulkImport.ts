/**
 * Bulk import, as the import engineer's benchmark runs it (scripts/importBenchmark.ts): N
 * generated personas in a JSON lines file, `importPersonas` (the `personas import` command's
 * function: streamed, validated, POST /personas/batch with 4 requests in flight), then a wait
 * until every persona is in the index at its version, and a table-to-index comparison.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runImportBenchmark } from '../scripts/importBenchmark';
import type { Dataset } from './benchSystem';

export interface BulkImportResult {
  personas: number;
  method: string;
  /** importPersonas from start to end (hashing and reading the file included; writing it not). */
  importSeconds: number;
  importPersonasPerSecond: number;
  /** From the start of the import until every persona was in the index at its version. */
  searchableSeconds: number;
  searchablePersonasPerSecond: number;
  /** Table rows and index points that still differed afterwards (should be 0). */
  differences: number;
}

export async function measureBulkImport(apiUrl: string, dataset: Dataset, count: number, workDir: string): Promise<BulkImportResult> {
  // runImportBenchmark reaches the table and the index through the environment (connectToStage).
  Object.assign(process.env, dataset.env);
  mkdirSync(workDir, { recursive: true });
  const dir = mkdtempSync(path.join(workDir, `import-${dataset.name}-`));
  const result = await runImportBenchmark({ apiUrl, count, dir }).finally(() => rmSync(dir, { recursive: true, force: true }));
  return {
    personas: result.import.personasSent,
    method: 'importPersonas: POST /personas/batch, 100 a request, 4 in flight',
    importSeconds: Math.round(result.import.durationMs / 10) / 100,
    importPersonasPerSecond: Math.round(result.import.personasPerSecond),
    searchableSeconds: Math.round(result.searchableAfterMs / 10) / 100,
    searchablePersonasPerSecond: Math.round(result.personasSearchablePerSecond),
    differences: result.differences,
  };
}

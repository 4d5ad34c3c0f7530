/**
 * What a bench run measured (written as JSON) and its markdown table, with the issue's targets
 * judged pass/fail (a failed target is reported, never an error).
 */
import type { EmbeddingModelInfo } from '../shared/embedding';
import type { BulkImportResult } from './bulkImport';
import type { ColdStartResult } from './coldStart';
import type { CeilingResult, IndexerComparison, NaiveResult } from './embeddingThroughput';
import type { LatencySummary } from './latencyStats';
import type { MachineInfo } from './machineInfo';
import type { SearchLatencyResult } from './searchLatency';
import type { LagRunResult } from './syncLag';

type MemoryMiB = number | undefined;

export interface BenchResults {
  machine: MachineInfo;
  quick: boolean;
  seed: number;
  model: EmbeddingModelInfo & { source: string; dir: string };
  notes: string[];
  embedding?: { texts: number; meanTextChars: number; ceiling: CeilingResult; comparison: IndexerComparison; naive: NaiveResult };
  seed1k?: BulkImportResult;
  lag?: LagRunResult[];
  bulkImport?: BulkImportResult;
  search?: Array<SearchLatencyResult & { seeding?: { seconds: number; embedded: number } }>;
  coldStart?: ColdStartResult[];
  memory?: {
    lagPhase?: { apiMiB: MemoryMiB; indexerMiB: MemoryMiB };
    importPhase?: { apiMiB: MemoryMiB; indexerMiB: MemoryMiB };
    search100kPhase?: { apiMiB: MemoryMiB };
    qdrantServerMiB?: MemoryMiB;
  };
  totalSeconds?: number;
  markdown?: string;
}

export const TARGETS = {
  indexerShareOfCeiling: 0.9,
  indexerOverNaive: 5,
  lagP99MsAt20: 1000,
  searchP99MsAt10k: 50,
} as const;

const verdict = (pass: boolean) => (pass ? '**pass**' : '**FAIL**');
const ms = (summary: LatencySummary) => `${summary.p50} / ${summary.p95} / ${summary.p99} ms`;
const thousands = (value: number) => value.toLocaleString('en-US');
const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;

export function markdownTable(results: BenchResults): string {
  const rows: Array<[string, string, string, string]> = [];
  const embedding = results.embedding;
  if (embedding) {
    const { ceiling, comparison, naive } = embedding;
    const indexer = comparison.embedDocuments.personasPerSecond;
    const share = comparison.shareOfCeiling.embedDocuments;
    const overNaive = indexer / naive.personasPerSecond;
    rows.push([
      `Embedding ceiling: raw ONNX session (tokenise + session.run + CLS + normalise; texts grouped by length), best of batch ${ceiling.batchSizes.map((size) => size.batchSize).join('/')}`,
      `${thousands(comparison.ceiling.personasPerSecond)} personas/s at batch ${comparison.ceilingBatchSize} (in the sweep: ${thousands(ceiling.best.personasPerSecond)})`,
      '',
      '',
    ]);
    rows.push([
      `Indexer path: embedDocuments, calls of ${comparison.streamBatchSize} texts (stream batch), ${comparison.maxBatchSize} per ONNX run`,
      `${thousands(indexer)} personas/s = ${percent(share)} of ceiling (median of per-round ratios)`,
      `≥ ${percent(TARGETS.indexerShareOfCeiling)} of ceiling`,
      verdict(share >= TARGETS.indexerShareOfCeiling),
    ]);
    rows.push([
      `Indexer path: syncPersonaChanges end to end, table and Qdrant answering from memory (no I/O)`,
      `${thousands(comparison.syncWithoutIo.personasPerSecond)} personas/s = ${percent(comparison.shareOfCeiling.syncWithoutIo)} of ceiling`,
      '',
      '',
    ]);
    rows.push([
      `Seed's naive approach: new pipeline + new Qdrant client + 1 upsert per persona (${naive.personas} personas)`,
      `${naive.personasPerSecond} personas/s (${naive.meanMsPerPersona} ms each); indexer is ${Math.round(overNaive)}×`,
      `indexer ≥ ${TARGETS.indexerOverNaive}× naive`,
      verdict(overNaive >= TARGETS.indexerOverNaive),
    ]);
  }
  for (const run of results.lag ?? []) {
    const via = run.visibility === 'search-api' ? 'seen through POST /personas/search' : 'seen in Qdrant (retrieve by id)';
    const judged = run.ratePerSecond === 20 && run.visibility === 'qdrant-retrieve';
    rows.push([
      `Write → searchable lag at ${run.ratePerSecond} writes/s, ${via} (${run.writes} writes, p50/p95/p99)`,
      `${ms(run.lagMs)}${run.unseen || run.failedWrites ? `; ${run.unseen} unseen, ${run.failedWrites} failed` : ''}${run.keptUp ? '' : '; did not keep up'}`,
      judged || (run.ratePerSecond === 20 && run.visibility === 'search-api') ? `p99 < ${TARGETS.lagP99MsAt20} ms` : '',
      judged || (run.ratePerSecond === 20 && run.visibility === 'search-api') ? verdict(run.lagMs.p99 < TARGETS.lagP99MsAt20 && run.unseen === 0) : '',
    ]);
  }
  const stepped = (results.lag ?? []).filter((run) => run.visibility === 'qdrant-retrieve');
  if (stepped.length > 0) {
    const kept = stepped.filter((run) => run.keptUp).map((run) => run.ratePerSecond);
    const firstFailure = stepped.find((run) => !run.keptUp);
    rows.push([
      'Highest write rate kept up (p99 ≤ 1 s, nothing unseen, no growing backlog)',
      `${kept.length > 0 ? `${Math.max(...kept)} writes/s` : 'none of the rates'}${
        firstFailure
          ? ` (not at ${firstFailure.ratePerSecond}/s: lag p99 ${firstFailure.lagMs.p99} ms, the write requests' own p99 ${firstFailure.writeLatencyMs.p99} ms)`
          : ' (highest rate tried)'
      }`,
      '',
      '',
    ]);
  }
  const bulk = results.bulkImport;
  if (bulk) {
    rows.push([
      `Bulk import of ${thousands(bulk.personas)} personas, ${bulk.method}`,
      `imported in ${bulk.importSeconds} s (${thousands(bulk.importPersonasPerSecond)}/s); all searchable after ${bulk.searchableSeconds} s (${thousands(bulk.searchablePersonasPerSecond)}/s); ${bulk.differences} differences table ↔ index`,
      '',
      '',
    ]);
  }
  for (const search of results.search ?? []) {
    const judged = search.points === 10_000;
    rows.push([
      `Search API latency at ${thousands(search.points)} personas${search.seededBy === 'direct-qdrant-upsert' ? ' (index seeded directly in Qdrant)' : ''}, p50/p95/p99`,
      `${ms(search.requestMs)}; embedQuery alone p50 ${search.embedQueryMs.p50} ms = ${percent(search.embeddingShareOfP50)} of p50; Qdrant query alone p50 ${search.qdrantQueryMs.p50} ms`,
      judged ? `p99 < ${TARGETS.searchP99MsAt10k} ms` : '',
      judged ? verdict(search.requestMs.p99 < TARGETS.searchP99MsAt10k) : '',
    ]);
  }
  for (const cold of results.coldStart ?? []) {
    rows.push([
      `Cold start ${cold.name} (esbuild bundle as deployed, fresh process, median of ${cold.runs})`,
      `import ${cold.importMs} ms + first invocation ${cold.firstInvokeMs} ms; spawn → answer ${cold.spawnToAnswerMs} ms; bundle ${thousands(cold.bundleKiB)} KiB, asset ${cold.assetMiB} MiB`,
      '',
      '',
    ]);
  }
  const memory = results.memory;
  if (memory) {
    const max = (...values: MemoryMiB[]) => Math.max(...values.filter((value): value is number => value !== undefined));
    const api = max(memory.lagPhase?.apiMiB, memory.importPhase?.apiMiB, memory.search100kPhase?.apiMiB);
    const indexer = max(memory.lagPhase?.indexerMiB, memory.importPhase?.indexerMiB);
    if (Number.isFinite(api)) rows.push(['Peak RSS (VmHWM), API server process (all routes, search model loaded)', `${api} MiB`, '', '']);
    if (Number.isFinite(indexer)) rows.push(['Peak RSS (VmHWM), stream worker + indexer process', `${indexer} MiB`, '', '']);
    if (memory.qdrantServerMiB !== undefined) rows.push(['Peak RSS (VmHWM), local Qdrant-compatible server (holding all data sets)', `${memory.qdrantServerMiB} MiB`, '', '']);
  }
  const lines = ['| measurement | result | target | verdict |', '| --- | --- | --- | --- |', ...rows.map((row) => `| ${row.join(' | ')} |`)];
  return lines.join('\n');
}

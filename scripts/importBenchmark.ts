/**
 * Measures a bulk import end to end: writes N generated personas (default 10,000) to a JSON lines
 * file, imports it with importPersonas() through POST /personas/batch, then waits until every
 * persona is in the index at its version ("searchable") and checks that nothing differs.
 *
 *   npx tsx scripts/importBenchmark.ts                   # starts its own local system on free ports
 *   npx tsx scripts/importBenchmark.ts --count 2000
 *   npx tsx scripts/importBenchmark.ts --api-url http://localhost:3000   # against `npm start`
 *
 * With --api-url, DynamoDB and Qdrant are reached through the usual environment variables
 * (defaults: http://127.0.0.1:8000 and http://127.0.0.1:6333, as `npm start`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { HUMOR_LEVELS } from '../shared/persona/schema';
import { compareIndex, resolveCollection, collectionModel } from '../shared/operations/indexReconciler';
import { indexStatus } from '../shared/operations/indexStatus';
import { importPersonas, type ImportReport } from '../shared/operations/personaImport';
import { connectToStage } from '../shared/operations/stageConnections';

export interface ImportBenchmarkResult {
  import: ImportReport;
  /** From the start of the import until every persona was in the index at its version. */
  searchableAfterMs: number;
  personasSearchablePerSecond: number;
  differences: number;
}

/** A varied, valid persona; `n` makes it unique. */
export function generatedPersona(n: number): Record<string, unknown> {
  const domains = ['physics', 'philosophy', 'music', 'history', 'biology', 'economics', 'poetry', 'law', 'chess', 'cooking'];
  const modes = ['Educator', 'Debater', 'Mentor', 'Critic', 'Storyteller', 'Coach'];
  const score = (salt: number) => Math.round(((n * 7919 + salt * 104729) % 1000) / 10) / 100;
  return {
    name: `Generated Persona ${n}`,
    domain: [domains[n % domains.length]!, domains[(n * 3 + 1) % domains.length]!],
    modes: [modes[n % modes.length]!],
    humor_usage: HUMOR_LEVELS[n % HUMOR_LEVELS.length],
    emotional_style: ['calm', 'passionate', 'reserved', 'warm'][n % 4],
    beliefs: [`Belief number ${n} about ${domains[n % domains.length]}`, 'Curiosity beats certainty'],
    signature_phrases: [`Phrase ${n}`],
    traits: { openness: score(1), conscientiousness: score(2), extraversion: score(3), agreeableness: score(4), neuroticism: score(5) },
  };
}

export async function runImportBenchmark(options: { apiUrl: string; count: number; dir: string; log?: (line: string) => void }): Promise<ImportBenchmarkResult> {
  const log = options.log ?? (() => undefined);
  const file = join(options.dir, `personas-${options.count}.jsonl`);
  writeFileSync(file, Array.from({ length: options.count }, (_, n) => JSON.stringify(generatedPersona(n))).join('\n') + '\n');
  const stage = await connectToStage();
  const started = performance.now();
  const report = await importPersonas({ apiUrl: options.apiUrl, file, concurrency: 4 });
  log(`imported ${report.personasSent} personas in ${(report.durationMs / 1000).toFixed(1)} s = ${report.personasPerSecond.toFixed(0)} personas/s`);
  for (;;) {
    const status = await indexStatus({ repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tableName: stage.tables.personaTableName });
    if (status.pending === 0 && status.pendingDeletes === 0) break;
    if (performance.now() - started > 30 * 60_000) throw new Error(`${status.pending} personas still not indexed after 30 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const searchableAfterMs = performance.now() - started;
  const collection = await resolveCollection(stage.qdrant, stage.alias);
  const { drift } = await compareIndex(stage, collection, await collectionModel(stage.qdrant, collection));
  return { import: report, searchableAfterMs, personasSearchablePerSecond: report.valid / (searchableAfterMs / 1000), differences: drift.length };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: 'string' }, 'api-url': { type: 'string' } } });
  const count = Number(values.count ?? 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'persona-import-bench-'));
  let apiUrl = values['api-url'];
  let stop = async () => undefined as void;
  if (!apiUrl) {
    // A private system on free ports, so the run needs nothing else started.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
    process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
    process.env.TABLE_NAME ??= `personas-bench-${Date.now()}`;
    process.env.QDRANT_COLLECTION ??= 'personas';
    const { generateTestModel } = await import('../lib/generatedModels/testModel');
    process.env.EMBEDDING_MODEL_DIR ??= (await generateTestModel()).dir;
    process.env.EMBEDDING_ALLOW_REMOTE ??= 'false';
    const { startLocalSystem } = await import('../local/system');
    const system = await startLocalSystem({ apiPort: 0, dynamodbPort: 18_000 + Math.floor(Math.random() * 1000), qdrantPort: 0, failureFile: join(dir, 'failures.jsonl') });
    apiUrl = system.apiUrl;
    stop = () => system.stop();
  }
  try {
    const result = await runImportBenchmark({ apiUrl, count, dir, log: (line) => console.error(line) });
    console.log(JSON.stringify({ count, ...result, import: { ...result.import, file: undefined } }, null, 2));
    console.error(
      `${count} personas: import ${result.import.personasPerSecond.toFixed(0)} personas/s; all searchable after ${(result.searchableAfterMs / 1000).toFixed(1)} s ` +
        `(${result.personasSearchablePerSecond.toFixed(0)} personas/s end to end); ${result.differences} differences`,
    );
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: Error) => {
    console.error(`import benchmark failed: ${error.message}`);
    process.exit(1);
  });
}

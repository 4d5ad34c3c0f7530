import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importPersonas, type ImportProgress } from '../shared/operations/personaImport';
import { CSV_COLUMNS } from '../shared/operations/personaCsv';
import { useFreshTables } from './support/tables';
import { startTestApi } from './support/apiClient';
import { filePersona, runCli, writeJsonLines } from './support/operationsHelpers';
import { freePort } from './support/globalSetup';

/** Issue 11 items 1 (CSV cascade), 12 (progress ahead of the API) and 13 (CLI target). */
let apiUrl: string;
let close: () => Promise<void>;
const workDir = mkdtempSync(join(tmpdir(), 'persona-import-'));

beforeAll(async () => {
  await useFreshTables('persona-import-hardening');
  const started = await startTestApi();
  apiUrl = started.server.url;
  close = started.server.close;
});
afterAll(() => close());

const csvRow = (n: number) => {
  const persona = filePersona('Csv', n) as Record<string, any>;
  const cells: Record<string, string> = {
    name: persona.name,
    humor_usage: persona.humor_usage,
    emotional_style: persona.emotional_style,
    domain: persona.domain.join(';'),
    modes: persona.modes.join(';'),
    beliefs: persona.beliefs.join(';'),
    signature_phrases: persona.signature_phrases.join(';'),
    ...Object.fromEntries(Object.entries(persona.traits).map(([trait, score]) => [trait, String(score)])),
  };
  return CSV_COLUMNS.map((column) => cells[column]).join(',');
};

describe('CSV import (item 1)', () => {
  it('a row with the wrong number of fields is rejected alone; every other row imports', async () => {
    const file = join(workDir, 'people.csv');
    const rows = Array.from({ length: 300 }, (_, n) => csvRow(n));
    rows[59] = rows[59]!.split(',').slice(0, 5).join(','); // line 61: too few fields
    rows[199] = `${rows[199]},extra`; // line 201: one too many
    writeFileSync(file, [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n');
    const report = await importPersonas({ apiUrl, file });
    expect(report).toMatchObject({ rows: 300, valid: 298, rejected: 2, completed: true });
    const rejections = (await import('node:fs')).readFileSync(report.reportFile!, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(rejections.map((rejection: { line: number }) => rejection.line)).toEqual([61, 201]);
    expect(rejections[0].errors[0].detail).toMatch(/5 fields; the header has 12/);
    expect(rejections[1].errors[0].detail).toMatch(/13 fields; the header has 12/);
  });
});

describe('import progress (item 12)', () => {
  it('counts only rows the API has acknowledged, and ends at 100% exactly when the last batch is answered', async () => {
    const file = join(workDir, 'progress.jsonl');
    writeJsonLines(file, [...Array.from({ length: 1_000 }, (_, n) => filePersona('Progress', n)), { name: 'bad' }]);
    // Personas in the batch responses received so far: the most progress may ever claim.
    let acknowledged = 0;
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (...args: Parameters<typeof fetch>) => {
      const response = await realFetch(...args);
      const body = (await response.clone().json()) as { created?: number };
      acknowledged += body.created ?? 0;
      return response;
    };
    const samples: Array<ImportProgress & { acknowledgedThen: number }> = [];
    try {
      await importPersonas({ apiUrl, file, batchSize: 10, concurrency: 4, onProgress: (progress) => samples.push({ ...progress, acknowledgedThen: acknowledged }) });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(samples.length).toBeGreaterThan(10);
    for (const sample of samples) {
      expect(sample.totalRows).toBe(1_001);
      expect(sample.imported).toBeLessThanOrEqual(sample.acknowledgedThen);
      // Rows done = acknowledged personas + rows rejected before sending: never ahead of the API.
      expect(sample.rowsDone).toBeLessThanOrEqual(sample.acknowledgedThen + sample.rejected);
    }
    const last = samples.at(-1)!;
    expect(last).toMatchObject({ rowsDone: 1_001, totalRows: 1_001, imported: 1_000, rejected: 1 });
  });

  it('a re-run without the checkpoint reports replays as replays, not as a write rate', async () => {
    const file = join(workDir, 'rerun.jsonl');
    writeJsonLines(file, Array.from({ length: 300 }, (_, n) => filePersona('Rerun', n)));
    const first = await importPersonas({ apiUrl, file, checkpointFile: join(workDir, 'first.checkpoint.json') });
    expect(first).toMatchObject({ personasWritten: 300, personasReplayed: 0 });
    const again = await runCli(['import', file, '--api-url', apiUrl, '--checkpoint', join(workDir, 'none.checkpoint.json')]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 personas written .* 300 already imported by an earlier run \(answered from its Idempotency-Key, not written again\)/);
    expect(again.stdout).not.toMatch(/[1-9]\d* personas\/s/);
  });
});

describe('CLI target (item 13)', () => {
  it('honours DYNAMODB_PORT and QDRANT_PORT as npm start does, and names the target it could not reach', async () => {
    const [dynamodbPort, qdrantPort] = [await freePort(), await freePort()];
    const env = { DYNAMODB_PORT: String(dynamodbPort), QDRANT_PORT: String(qdrantPort), DYNAMODB_ENDPOINT: '', QDRANT_URL: '', PERSONAS_API_URL: '' };
    const status = await runCli(['status'], { env });
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(new RegExp(`(DynamoDB at http://127\\.0\\.0\\.1:${dynamodbPort}|Qdrant at http://127\\.0\\.0\\.1:${qdrantPort})`));
    expect(status.stderr).not.toMatch(/^fetch failed$/m);
  });

  it('reaches the API on API_PORT when no --api-url is given', async () => {
    const exported = await runCli(['export'], { env: { API_PORT: new URL(apiUrl).port, PERSONAS_API_URL: '' } });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('"name":"Csv 0"');
  });
});

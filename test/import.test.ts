import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importPersonas } from '../shared/operations/personaImport';
import { routes } from '../shared/routes';
import { startTestSystem } from './support/localSystem';
import { filePersona, indexDifferences, runCli, tablePersonas, waitFor, writeJsonLines } from './support/operationsHelpers';

let env: Awaited<ReturnType<typeof startTestSystem>>;

beforeAll(async () => {
  env = await startTestSystem();
});
afterAll(() => env.system.stop());

const named = async (prefix: string) => (await tablePersonas()).filter((persona) => persona.name.startsWith(`${prefix} `));
const readLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);

describe('personas import', () => {
  it('imports 1,500 personas from a JSON array: all stored once, all indexed at their version, bad rows reported', async () => {
    const file = join(env.workDir, 'bulk.json');
    const rows: unknown[] = Array.from({ length: 1_500 }, (_, n) => filePersona('Bulk', n));
    // Bad rows at known positions (0-based record index), pretty-printed so lines differ from indexes.
    rows.splice(10, 0, { ...filePersona('Bulk', 9_001), traits: { openness: 2 } });
    rows.splice(500, 0, { name: 'Bulk 9002', domain: [] });
    rows.splice(900, 0, 'not a persona');
    writeFileSync(file, JSON.stringify(rows, null, 2));

    const report = await importPersonas({ apiUrl: env.system.apiUrl, file, concurrency: 4 });
    console.log(`[import] ${report.valid} personas in ${(report.durationMs / 1000).toFixed(2)} s = ${report.personasPerSecond.toFixed(0)} personas/s (${report.batches} batches)`);
    expect(report).toMatchObject({ format: 'json', rows: 1_503, valid: 1_500, rejected: 3, batches: 15, batchesSent: 15, batchesSkipped: 0, personasSent: 1_500, completed: true });
    expect(report.personasPerSecond).toBeGreaterThan(0);

    const rejections = readLines(report.reportFile!);
    expect(rejections.map((rejection) => rejection.index)).toEqual([10, 500, 900]);
    const text = readFileSync(file, 'utf8').split('\n');
    for (const rejection of rejections) expect(text[rejection.line - 1]!.trim()).toMatch(/^("not a persona"|\{)/);
    expect(rejections[0]!.errors).toEqual(expect.arrayContaining([expect.objectContaining({ pointer: '#/traits/openness', detail: 'must be between 0 and 1' })]));
    expect(rejections[1]!.errors).toEqual(expect.arrayContaining([expect.objectContaining({ pointer: '#/domain' }), expect.objectContaining({ pointer: '#/traits' })]));
    expect(rejections[2]!.errors).toEqual([{ pointer: '#', detail: 'must be a JSON object, not string' }]);

    expect(await named('Bulk')).toHaveLength(1_500);
    await env.system.streamWorker.drain(120_000);
    const { personas, points, drift } = await indexDifferences();
    expect(drift).toEqual([]);
    expect(points).toBe(personas);

    if (routes.some((route) => route.path === '/personas/search')) {
      const search = await env.api('POST', '/personas/search', { body: { query: 'Bulk 42' } });
      expect(search.status, search.text).toBe(200);
    }
  });

  it('resumes after an interrupt without duplicates, and a re-run (even without the checkpoint) writes nothing new', async () => {
    const file = join(env.workDir, 'resume.jsonl');
    writeJsonLines(file, Array.from({ length: 2_000 }, (_, n) => filePersona('Resume', n)));
    const checkpoint = `${file}.checkpoint.json`;
    const args = ['import', file, '--api-url', env.system.apiUrl, '--batch-size', '10', '--concurrency', '2'];

    const interrupted = await runCli(args, {
      whileRunning: (child) =>
        void waitFor(() => (existsSync(checkpoint) && JSON.parse(readFileSync(checkpoint, 'utf8')).completed_batches.length >= 5 ? true : undefined), 60_000, 'five batches').then(
          () => child.kill('SIGINT'),
        ),
    });
    expect(interrupted.code, interrupted.stderr).toBe(130);
    expect(interrupted.stdout).toMatch(/INTERRUPTED/);
    const done = JSON.parse(readFileSync(checkpoint, 'utf8')).completed_batches as number[];
    expect(done.length).toBeGreaterThanOrEqual(5);
    expect(done.length).toBeLessThan(200);
    const afterInterrupt = (await named('Resume')).length;
    expect(afterInterrupt).toBeGreaterThanOrEqual(done.length * 10);
    expect(afterInterrupt).toBeLessThan(2_000);

    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout);
    expect(report).toMatchObject({ rows: 2_000, valid: 2_000, batches: 200, completed: true });
    expect(report.batchesSkipped).toBe(done.length);
    expect(report.batchesSent).toBe(200 - done.length);
    // Nothing was rejected: no report file (and none left from an earlier run), and the report says so.
    expect(report.reportFile).toBeNull();
    expect(existsSync(`${file}.rejected.jsonl`)).toBe(false);

    const again = JSON.parse((await runCli([...args, '--json'])).stdout);
    expect(again).toMatchObject({ batchesSent: 0, batchesSkipped: 200, personasSent: 0 });

    // Without the checkpoint every batch is sent again; the Idempotency-Keys make each a replay.
    rmSync(checkpoint);
    const replayed = JSON.parse((await runCli([...args, '--json'])).stdout);
    expect(replayed).toMatchObject({ batchesSent: 200, completed: true });

    const stored = await named('Resume');
    expect(stored).toHaveLength(2_000);
    expect(new Set(stored.map((persona) => persona.name)).size).toBe(2_000);
    expect(stored.every((persona) => persona.version === 1)).toBe(true);
    await env.system.streamWorker.drain(120_000);
    expect((await indexDifferences()).drift).toEqual([]);
  });

  it('imports CSV with documented columns and reports each bad row by line and field', async () => {
    const file = join(env.workDir, 'people.csv');
    writeFileSync(
      file,
      [
        'name,domain,modes,humor_usage,emotional_style,beliefs,signature_phrases,openness,conscientiousness,extraversion,agreeableness,neuroticism',
        'Csv Ada,mathematics;computing,Educator,low,curious,"Machines can weave patterns; like looms",Note G,0.9,0.8,0.4,0.6,0.3',
        'Csv Blank,,Educator,low,calm,,,0.5,0.5,0.5,0.5,0.5',
        'Csv Loud,music,Performer,very high,calm,,,0.5,0.5,0.5,0.5,0.5',
        '"Csv Quote, Jr.",law,"[""Advocate"",""Judge; retired""]",medium,"dry, precise",,,0.1,0.2,0.3,0.4,0.5',
        'Csv Text,art,Critic,none,calm,,,high,0.5,0.5,0.5,0.5',
        'Csv Short,art',
      ].join('\n') + '\n',
    );
    const run = await runCli(['import', file, '--api-url', env.system.apiUrl, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ format: 'csv', rows: 6, valid: 2, rejected: 4 });
    const rejections = readLines(`${file}.rejected.jsonl`);
    expect(rejections.map((rejection) => [rejection.line, rejection.errors.map((error: { pointer: string }) => error.pointer)])).toEqual([
      [3, ['#/domain']],
      [4, ['#/humor_usage']],
      [6, ['#/traits/openness']],
      [7, ['#']],
    ]);
    expect(rejections[2]!.errors[0].detail).toBe('must be a number, not string');

    const stored = await named('Csv');
    expect(stored.map((persona) => persona.name).sort()).toEqual(['Csv Ada', 'Csv Quote, Jr.']);
    const ada = stored.find((persona) => persona.name === 'Csv Ada')!;
    expect(ada).toMatchObject({ domain: ['mathematics', 'computing'], beliefs: ['Machines can weave patterns', 'like looms'], traits: { openness: 0.9, neuroticism: 0.3 } });
    expect(stored.find((persona) => persona.name === 'Csv Quote, Jr.')).toMatchObject({ modes: ['Advocate', 'Judge; retired'], emotional_style: 'dry, precise' });
  });

  it('exports every persona as JSON lines that import takes back', async () => {
    const out = join(env.workDir, 'export.jsonl');
    const run = await runCli(['export', '--api-url', env.system.apiUrl, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const exported = readLines(out);
    const personas = await tablePersonas();
    expect(exported).toHaveLength(personas.length);
    expect(new Set(exported.map((persona) => persona.id))).toEqual(new Set(personas.map((persona) => persona.id)));

    const fromTable = await runCli(['export', '--from', 'table']);
    expect(fromTable.stdout.split('\n').filter(Boolean)).toHaveLength(personas.length);

    // Re-importing an export creates new personas (server fields are ignored), and nothing is rejected.
    const sample = join(env.workDir, 'export-sample.jsonl');
    writeJsonLines(sample, exported.filter((persona) => String(persona.name).startsWith('Csv ')));
    const reimport = await runCli(['import', sample, '--api-url', env.system.apiUrl, '--json']);
    expect(JSON.parse(reimport.stdout)).toMatchObject({ valid: 2, rejected: 0 });
    expect(await named('Csv')).toHaveLength(4);
  });
});

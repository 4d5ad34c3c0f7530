/**
 * What a script gets from the `personas` command, run as a user runs it (bin/personas.mjs in a child
 * process) against the whole local system: results alone on stdout (Powertools' log lines, progress
 * and errors on stderr), exactly one JSON document with --json, a quiet end when the reader closes
 * stdout early (`| head`), and errors that name the URL, the status and the fix.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/bundling';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { runCli } from './support/operationsHelpers';

const PERSONAS = 400; // ~190 KB of JSON lines: more than a pipe holds (64 KiB), so `| head` closes it mid-export

let env: Awaited<ReturnType<typeof startTestSystem>>;
/** As a user's shell has it: Powertools' default log level (the suite silences it), the test system's API. */
let CLI_ENV: NodeJS.ProcessEnv;
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...CLI_ENV, ...extra } });

beforeAll(async () => {
  env = await startTestSystem();
  for (let start = 0; start < PERSONAS; start += 100) {
    const batch = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 100 }, (_, n) => ({ ...samplePersona(start + n), beliefs: ['x'.repeat(300)] })) } });
    expect(batch.json.failed).toBe(0);
  }
  await env.system.streamWorker.drain(60_000);
  CLI_ENV = { POWERTOOLS_LOG_LEVEL: 'INFO', PERSONAS_API_URL: env.system.apiUrl };
});
afterAll(() => env?.system.stop());

const pipeline = (command: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { cwd: PROJECT_ROOT, env: { ...process.env, ...CLI_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });

describe('personas: stdout is for results', () => {
  it('logs go to stderr: status --json is one JSON document, export one line per persona and nothing else', async () => {
    const status = await cli(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ table: { personas: PERSONAS }, index: { points: PERSONAS }, pending: 0 });
    // The line that used to precede the report on stdout is still logged, on stderr.
    expect(status.stderr).toContain('"message":"Qdrant connection settings in use"');

    const exported = await cli(['export', '--from', 'table']);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = exported.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(PERSONAS);
    expect(lines.every((line) => typeof (JSON.parse(line) as { id?: unknown }).id === 'string')).toBe(true);
    expect(exported.stderr).toContain(`exported ${PERSONAS} personas from the table`);

    const search = await cli(['search', 'physics', '--json', '--limit', '3']);
    expect(search.code, search.stderr).toBe(0);
    expect(JSON.parse(search.stdout).items).toHaveLength(3);

    // export --json: its summary, when the personas go to a file; JSON lines and a report cannot share stdout.
    const out = join(mkdtempSync(join(tmpdir(), 'cli-output-')), 'all.jsonl');
    const summary = await cli(['export', '--json', '--out', out]);
    expect(summary.code, summary.stderr).toBe(0);
    expect(JSON.parse(summary.stdout)).toMatchObject({ personas: PERSONAS, from: 'api', out });
    const refused = await cli(['export', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/--json \(a summary as one JSON document\) needs --out FILE/);
  });

  it('a reader that stops early (| head) ends the export quietly, with exit code 0', async () => {
    for (const from of ['table', 'api']) {
      const run = await pipeline(`node bin/personas.mjs export --from ${from} | head -n 2`);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout.trimEnd().split('\n')).toHaveLength(2);
      expect(run.stderr).not.toMatch(/EPIPE|Error/);
    }
    const jq = await pipeline(`node bin/personas.mjs status --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).table.personas))'`);
    expect(jq.code, jq.stderr).toBe(0);
    expect(jq.stdout.trim()).toBe(String(PERSONAS));
  });
});

describe('personas: errors name the URL, the status and the fix', () => {
  it("Qdrant refusing a missing key: its URL, 401, and where npm start's key is", async () => {
    const run = await cli(['status'], { QDRANT_API_KEY: '' });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`Qdrant at ${new URL(env.system.qdrantUrl).origin} answered 401`);
    expect(run.stderr).toMatch(/set QDRANT_API_KEY to that Qdrant's API key \(npm start's own server makes one per run and writes it to \S+qdrant-api-key/);
  });

  it("an explicit QDRANT_URL naming npm start's own server (loopback, QDRANT_PORT) uses the key npm start wrote", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cli-data-'));
    writeFileSync(join(dataDir, 'qdrant-api-key'), `${env.system.qdrantApiKey}\n`, { mode: 0o600 });
    const port = new URL(env.system.qdrantUrl).port;
    const run = await cli(['status', '--json'], { QDRANT_URL: `http://localhost:${port}`, QDRANT_PORT: port, QDRANT_API_KEY: '', LOCAL_DATA_DIR: dataDir });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).index.points).toBe(PERSONAS);
  });

  it('DynamoDB without the table: the endpoint, the table and TABLE_NAME', async () => {
    const run = await cli(['status'], { TABLE_NAME: 'no-such-table' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`DynamoDB at ${env.system.dynamodbEndpoint} has no table no-such-table`);
    expect(run.stderr).toMatch(/TABLE_NAME names it/);
  });

  it('the API: method, URL, status and what to do', async () => {
    const run = await cli(['search', '--similar', '00000000-0000-4000-8000-000000000000']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`GET ${env.system.apiUrl}/personas/00000000-0000-4000-8000-000000000000/similar?limit=10 answered 404`);
    expect(run.stderr).toMatch(/persona-not-found/);
  });
});

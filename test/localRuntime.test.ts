import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertJavaAvailable } from '../local/dynamodbLocal';
import { freePort } from './support/globalSetup';
import { einstein } from './support/apiClient';
import { runCli } from './support/operationsHelpers';

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function childPids(pid: number): number[] {
  const result = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  const direct = result.stdout.split('\n').map((line) => Number(line.trim())).filter(Boolean);
  return direct.flatMap((child) => [child, ...childPids(child)]);
}

describe('local runtime (npm start)', () => {
  it('says what to install when Java is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => assertJavaAvailable()).toThrow(/Java 17 or newer.*not found/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('serves on the ports from the environment, keeps data with --persist, and Ctrl-C stops every child', async () => {
    const [apiPort, dynamodbPort, qdrantPort] = [await freePort(), await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), 'persona-start-'));
    const env: NodeJS.ProcessEnv = { ...process.env, API_PORT: String(apiPort), DYNAMODB_PORT: String(dynamodbPort), QDRANT_PORT: String(qdrantPort), LOCAL_DATA_DIR: dataDir };
    delete env.DYNAMODB_ENDPOINT;
    delete env.QDRANT_URL;
    delete env.TABLE_NAME;
    delete env.QDRANT_COLLECTION;

    async function start(extraEnv: NodeJS.ProcessEnv = {}) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts', '--persist'], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const deadline = Date.now() + 60_000;
      while (!output.includes('press Ctrl-C to stop')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return { child, output: () => output };
    }
    async function stop(child: ReturnType<typeof spawn>) {
      const children = childPids(child.pid!);
      const commands = new Map(children.map((pid) => [pid, spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim()]));
      expect([...commands.values()].some((command) => command.includes('DynamoDBLocal.jar'))).toBe(true);
      child.kill('SIGINT');
      await new Promise((resolve) => child.once('exit', resolve));
      // Children get a moment to finish exiting after their parent is gone.
      const deadline = Date.now() + 5_000;
      while (children.some(isRunning) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      for (const pid of children) expect(isRunning(pid), `child ${pid} (${commands.get(pid)}) still running after Ctrl-C`).toBe(false);
    }

    const first = await start();
    expect(first.output()).toContain(`API on http://localhost:${apiPort}`);
    const created = await fetch(`http://localhost:${apiPort}/personas`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(einstein) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    // The indexer mirrors it into the local Qdrant on QDRANT_PORT.
    // With the key this run generated (npm start leaves it in the data directory for the CLI).
    const firstKey = readFileSync(join(dataDir, 'qdrant-api-key'), 'utf8').trim();
    let indexed = false;
    for (let attempt = 0; attempt < 50 && !indexed; attempt++) {
      const response = await fetch(`http://127.0.0.1:${qdrantPort}/collections/personas/points/${id}`, { headers: { 'api-key': firstKey } });
      indexed = response.status === 200;
      if (!indexed) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(indexed).toBe(true);
    await stop(first.child);

    // Restarted with AUTH=jwt: a token printed before the start (its key generated then, in the data
    // directory) is accepted; no token is a 401, as from API Gateway's JWT authorizer.
    const printed = await runCli(['token', '--scope', 'personas:read'], { env });
    expect(printed.code, printed.stderr).toBe(0);
    const second = await start({ AUTH: 'jwt' });
    expect(second.output()).toContain('auth: jwt');
    expect((await fetch(`http://localhost:${apiPort}/personas/${id}`)).status).toBe(401);
    expect((await fetch(`http://localhost:${apiPort}/personas/${id}`, { headers: { authorization: `Bearer ${printed.stdout.trim()}` } })).status).toBe(200);
    const secondKey = readFileSync(join(dataDir, 'qdrant-api-key'), 'utf8').trim();
    expect(secondKey).not.toBe(firstKey);
    expect((await fetch(`http://127.0.0.1:${qdrantPort}/collections/personas/points/${id}`, { headers: { 'api-key': firstKey } })).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${qdrantPort}/collections/personas/points/${id}`, { headers: { 'api-key': secondKey } })).status).toBe(200);
    await stop(second.child);
  }, 180_000);
});

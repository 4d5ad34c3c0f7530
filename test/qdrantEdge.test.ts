/**
 * The local Qdrant-compatible server against Qdrant's own engine: test/python/edge_differential.py
 * sends seeded random sequences of the operations the product uses to this server over REST and to
 * Qdrant Edge (qdrant-edge-py, Qdrant's `segment` and `shard` crates as an in-process library,
 * pinned in test/python/requirements.txt), and compares every answer: ids, order, payloads, vectors
 * and scores (relative 1e-5; ties as sets). A difference fails the test with the shortest sequence
 * that still shows it. EDGE_OPERATIONS (default 5,000; `npm run test:edge` runs 100,000) and
 * EDGE_SEED (default: a new one, printed) choose the run.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { useLocalQdrant } from './support/localQdrant';

const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'python', 'edge_differential.py');
const OPERATIONS = Number(process.env.EDGE_OPERATIONS ?? 5000);
const local = useLocalQdrant();

function runHarness(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [HARNESS, ...args], { cwd: path.dirname(HARNESS), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += String(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

// About 30 ms an operation on a loaded 2-core machine; the timeout leaves room for shrinking a difference.
it(`answers as Qdrant Edge does, over ${OPERATIONS} random operations`, { timeout: 300_000 + OPERATIONS * 100 }, async () => {
  const { code: importable, output: importError } = await runHarness(['--check']);
  if (importable !== 0) throw new Error(`Qdrant Edge is not installed (python3 -m pip install -r test/python/requirements.txt):\n${importError}`);
  const args = ['--url', local.server.url, '--operations', String(OPERATIONS)];
  if (process.env.EDGE_SEED) args.push('--seed', process.env.EDGE_SEED);
  const { code, output } = await runHarness(args);
  console.log(output.slice(-4000));
  expect(code, output.slice(-20_000)).toBe(0);
  expect(output).toMatch(/, 0 differences/);
});

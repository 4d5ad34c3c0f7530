import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/bundling';
import { runCli } from './support/operationsHelpers';

describe('the personas command', () => {
  it('runs through npx from package.json "bin" (the tsx shim) and prints its usage', async () => {
    const { stdout } = await promisify(execFile)('npx', ['--no-install', 'personas', '--help'], { cwd: PROJECT_ROOT });
    for (const command of ['import FILE', 'export', 'reindex', 'reconcile', 'status']) expect(stdout).toContain(command);
    expect(stdout).toContain('http://localhost:3000');
  });

  it('answers usage mistakes with exit code 2 and what to do', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const noFile = await runCli(['import']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/import takes exactly one FILE/);
    const badFlag = await runCli(['reconcile', '--segments', 'many']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--segments takes a whole number/);
    const badWeights = await runCli(['search', 'saxophone', '--weights', 'keyword']);
    expect(badWeights.code).toBe(2);
    expect(badWeights.stderr).toMatch(/--weights takes RANKING=WEIGHT pairs/);
    const badFormat = await runCli(['import', 'people.xml']);
    expect(badFormat.code).toBe(1);
    expect(badFormat.stderr).toMatch(/Cannot tell the format of people.xml .* --format json\|jsonl\|csv/);
    const missing = await runCli(['import', 'missing.jsonl']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no file missing.jsonl; give the path of a .json, .jsonl or .csv file/);
  });
});

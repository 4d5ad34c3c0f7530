/**
 * The client package (packages/client) is what the API document says and what a browser can run:
 * - its generated files are exactly what `npm run client:generate` makes of the document the API
 *   serves (GET /openapi.json of the local API server), so a schema change without a regeneration fails here;
 * - it compiles with no Node types (packages/client/tsconfig.json), as the publishable build does;
 * - esbuild bundles it for the browser platform, where a `node:` import would fail the build, and
 *   the bundle imports nothing but the package's declared dependencies;
 * - no product code calls fetch (or XMLHttpRequest) on its own: the CLI, the console, the MCP server
 *   and the scripts reach the API through the client.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedClientFiles, GENERATED_DIR } from '../scripts/generateClientTypes';
import { startTestApi } from './support/apiClient';

const run = promisify(execFile);
let served: Record<string, unknown>;
let close: () => Promise<void>;

beforeAll(async () => {
  const { server, api } = await startTestApi();
  close = () => server.close();
  const answer = await api('GET', '/openapi.json');
  expect(answer.status).toBe(200);
  served = answer.json;
});
afterAll(() => close?.());

describe('the client package', () => {
  it('has the generated files the served API document gives (else: npm run client:generate)', async () => {
    const files = await generatedClientFiles(served);
    expect(Object.keys(files).sort()).toEqual(['apiFacts.ts', 'apiTypes.ts']);
    for (const [name, text] of Object.entries(files)) {
      expect(readFileSync(join(GENERATED_DIR, name), 'utf8'), `packages/client/src/generated/${name} is stale: run npm run client:generate`).toBe(text);
    }
  });

  it('compiles without Node types into ES modules and declarations', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'persona-client-build-'));
    await run('npx', ['tsc', '-p', 'packages/client/tsconfig.json', '--outDir', outDir], { timeout: 240_000 });
    for (const file of ['index.js', 'index.d.ts', 'sigv4.js', 'sigv4.d.ts']) expect(readFileSync(join(outDir, file), 'utf8').length).toBeGreaterThan(0);
  }, 300_000);

  it('bundles for browsers, with no import but its declared dependencies', async () => {
    const manifest = JSON.parse(readFileSync('packages/client/package.json', 'utf8')) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    const result = await build({
      entryPoints: ['packages/client/src/index.ts', 'packages/client/src/sigv4.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      outdir: 'out',
      logLevel: 'silent',
      plugins: [
        {
          name: 'record-packages',
          setup(builder) {
            builder.onResolve({ filter: /^[^./]/ }, (args) => {
              imported.add(args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0]!);
              return undefined;
            });
          },
        },
      ],
    });
    expect(result.errors).toEqual([]);
    expect([...imported].sort()).toEqual(Object.keys(manifest.dependencies).sort());
  });
});

describe('the API is called only through the client', () => {
  /** The one file that fetches something else: model files from the Hugging Face hub, not the API. */
  const FETCHES_OTHER_THINGS = new Set(['scripts/fetchModel.ts']);
  const PRODUCT_DIRS = ['bin', 'shared', 'web', 'local', 'functions', 'scripts', 'infra', 'lib', 'bench'];

  it('has no fetch or XMLHttpRequest in product code outside packages/client', () => {
    const files = PRODUCT_DIRS.flatMap((dir) =>
      (readdirSync(dir, { recursive: true }) as string[]).filter((file) => /\.(ts|tsx|mjs)$/.test(file)).map((file) => join(dir, file)),
    );
    expect(files.length).toBeGreaterThan(100);
    const calling = files.filter((file) => !FETCHES_OTHER_THINGS.has(file) && /\bfetch\s*\(|XMLHttpRequest/.test(readFileSync(file, 'utf8')));
    expect(calling).toEqual([]);
  });
});

/**
 * Builds the browser assets (the console and the /docs page) with esbuild into one folder that
 * the webAsset route serves: the local runtime builds it at start, the CDK stack at synth and
 * copies it into that function's asset. Nothing is fetched from a CDN at run time.
 */
import { buildSync } from 'esbuild';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Entry points, by the name the pages load them under (`/assets/<name>.js`, `/assets/<name>.css`). */
const ENTRY_POINTS = {
  console: path.join(WEB_DIR, 'console', 'main.tsx'),
  docs: path.join(WEB_DIR, 'docs', 'main.ts'),
};

/** Builds every asset into `outDir` (emptied first) and returns the file names written. */
export function buildWebAssets(outDir: string): string[] {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  buildSync({
    entryPoints: ENTRY_POINTS,
    outdir: outDir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.svg': 'dataurl', '.png': 'dataurl' },
    legalComments: 'linked',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  return readdirSync(outDir).sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(WEB_DIR, '..', '.cache', 'web-assets'));
  console.log(`built ${buildWebAssets(outDir).join(', ')} into ${outDir}`);
}

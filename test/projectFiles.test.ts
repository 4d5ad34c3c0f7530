/**
 * Project files outside the code. How installs skip onnxruntime-node's CUDA download: npm's own
 * install-script policy (`allowScripts` in package.json, npm 11.16+, enforcing in npm 12) denies its
 * install script, so `npm ci` needs no variable and warns of nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/bundling';

const read = (file: string) => readFileSync(path.join(PROJECT_ROOT, file), 'utf8');

it("npm's allowScripts policy denies onnxruntime-node's install script (its CUDA download) and covers every install script", () => {
  const manifest = JSON.parse(read('package.json')) as { allowScripts?: Record<string, boolean>; engines?: Record<string, string> };
  // onnxruntime-node/script/install.js: on linux/x64 it downloads the CUDA libraries from NuGet (fails offline).
  expect(read('node_modules/onnxruntime-node/package.json')).toMatch(/"postinstall":\s*"node \.\/script\/install"/);
  expect(manifest.allowScripts?.['onnxruntime-node']).toBe(false);
  // npm 11.16 is where allowScripts arrived (npm/cli "Phase 1 of allowScripts opt-in install-script policy").
  expect(manifest.engines?.npm).toBe('>=11.16');
  // `npm install-scripts ls` lists every installed package whose install script allowScripts does not cover.
  const uncovered = execFileSync('npm', ['install-scripts', 'ls'], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(uncovered).not.toMatch(/not yet covered/);
  // The .npmrc key would make npm 11 warn "Unknown project config" on every command.
  expect(read('.npmrc')).not.toMatch(/onnxruntime/);
  const ci = read('.ci/run');
  expect(ci).not.toMatch(/ONNXRUNTIME_NODE_INSTALL/);
  expect(ci).toMatch(/pip install[^\n]*-r test\/python\/requirements\.txt/);
  expect(ci.indexOf('requirements.txt')).toBeLessThan(ci.indexOf('npm ci && npm test'));
  expect(read('docs/local-runtime.md')).not.toMatch(/export ONNXRUNTIME_NODE_INSTALL/);
});

it('every installed package runs on the oldest Node.js the project claims (package.json engines, the README)', () => {
  const claimed = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  const oldest = semver.minVersion(claimed)!;
  expect(read('README.md')).toContain(`Node.js ${oldest.major}.${oldest.minor}`);
  // npm copies each package's engines into the lockfile (lockfileVersion 3); npm ci warns EBADENGINE for a miss.
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }> };
  const refusing = Object.entries(lock.packages)
    .filter(([, entry]) => !Array.isArray(entry.engines) && entry.engines?.node !== undefined)
    .filter(([, entry]) => !semver.satisfies(oldest, (entry.engines as { node: string }).node))
    .map(([name, entry]) => `${name} (node ${(entry.engines as { node: string }).node})`);
  expect(refusing).toEqual([]);
});

it('the LocalStack compose setup: an image whose plan has HTTP APIs, and a Qdrant host port that does not clash with npm start', () => {
  const compose = read('docker-compose.yml');
  // API Gateway v2 is only in LocalStack's pro image (https://docs.localstack.cloud/references/coverage/coverage_apigatewayv2/).
  expect(compose).toMatch(/image: localstack\/localstack-pro:/);
  expect(compose).toMatch(/LOCALSTACK_AUTH_TOKEN: \$\{LOCALSTACK_AUTH_TOKEN:\?/);
  const qdrantPorts = [...compose.matchAll(/"127\.0\.0\.1:(\d+):6333"/g)].map((match) => Number(match[1]));
  expect(qdrantPorts).toHaveLength(1);
  expect(qdrantPorts[0]).not.toBe(6333); // local/localConfig.ts: QDRANT_PORT defaults to 6333
  // The plain-http URL on the compose network carries the explicit opt-out.
  expect(read('scripts/localstack-deploy.sh')).toMatch(/allowInsecureHttp\\":true/);
});

/**
 * Project files outside the code. How installs skip onnxruntime-node's CUDA download: with the environment variable its install
 * script reads (node_modules/onnxruntime-node/script/install-utils.js), set where installs happen,
 * not with an `.npmrc` key npm 11 warns about on every command.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/bundling';

const read = (file: string) => readFileSync(path.join(PROJECT_ROOT, file), 'utf8');

it('the skip is ONNXRUNTIME_NODE_INSTALL=skip, which the installed script honours, exported by CI and the README before npm ci', () => {
  const installUtils = read('node_modules/onnxruntime-node/script/install-utils.js');
  expect(installUtils).toContain('process.env.ONNXRUNTIME_NODE_INSTALL');
  expect(installUtils).toMatch(/'skip'/);
  expect(read('.npmrc')).not.toMatch(/onnxruntime/);
  const ci = read('.ci/run');
  expect(ci.indexOf('export ONNXRUNTIME_NODE_INSTALL=skip')).toBeGreaterThan(-1);
  expect(ci.indexOf('export ONNXRUNTIME_NODE_INSTALL=skip')).toBeLessThan(ci.indexOf('npm ci && npm test'));
  const readme = read('README.md');
  expect(readme.indexOf('export ONNXRUNTIME_NODE_INSTALL=skip')).toBeGreaterThan(-1);
  expect(readme.indexOf('export ONNXRUNTIME_NODE_INSTALL=skip')).toBeLessThan(readme.indexOf('npm ci && npm test'));
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

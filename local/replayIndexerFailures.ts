import { join, resolve } from 'node:path';
import { handler } from '../functions/indexer/handler';
import { lambdaContext } from './lambdaEvent';
import { localRuntimeConfig } from './localConfig';
import { replayFailures } from './streamWorker';

/**
 * `npm run indexer:replay [FILE]`: sends the batches in the local on-failure destination through
 * the indexer again, against the running local system (or QDRANT_URL / DYNAMODB_ENDPOINT), and
 * keeps in the file only what still fails.
 */
const config = localRuntimeConfig();
const failureFile = resolve(process.argv[2] ?? join(config.dataDir, 'indexer-failures.jsonl'));
process.env.DYNAMODB_ENDPOINT ??= `http://127.0.0.1:${config.dynamodbPort}`;
process.env.QDRANT_URL ??= `http://127.0.0.1:${config.qdrantPort}`;
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
if (!process.env.EMBEDDING_MODEL_DIR) {
  const { generateTestModel } = await import('../lib/generatedModels/testModel');
  process.env.EMBEDDING_MODEL_DIR = (await generateTestModel()).dir;
  process.env.EMBEDDING_ALLOW_REMOTE ??= 'false';
}

const result = await replayFailures(failureFile, (event) => handler(event, lambdaContext('indexer')));
console.log(`replayed ${result.replayed} record(s) from ${failureFile}; ${result.stillFailing} batch(es) still failing and kept in the file`);
process.exit(result.stillFailing > 0 ? 1 : 0);

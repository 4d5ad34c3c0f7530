import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateTestModel } from '../lib/generatedModels/testModel';
import { describeConventions, getEmbedder } from '../shared/embedding';
import { tenancyConfig } from '../shared/tenancy/tenancy';
import { authMode } from '../shared/http/accessControl';
import { localRuntimeConfig } from './localConfig';
import { startLocalSystem } from './system';

/**
 * `npm start`: the whole system on a laptop, with no Docker and no AWS account: DynamoDB Local
 * (with Streams), the Qdrant-compatible server, the HTTP API running the Lambda handler modules,
 * and the stream worker feeding the indexer.
 */
const log = (line: string) => console.log(`[local] ${line}`);

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  // EMF metrics are for CloudWatch; locally the stream worker logs the sync lag instead.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const config = localRuntimeConfig();
  if (authMode() === 'iam') throw new Error('AUTH=iam (SigV4) is not emulated locally: start with AUTH=jwt (tokens and scopes, as API Gateway checks them) or without AUTH (open)');
  // As the stack refuses it: a tenant can only come from a validated token.
  const tenancy = tenancyConfig();
  if (tenancy.mode === 'claim' && process.env.AUTH !== 'jwt') {
    throw new Error('TENANCY=claim takes each request\'s tenant from a JWT claim: start with AUTH=jwt TENANCY=claim npm start');
  }

  if (!process.env.EMBEDDING_MODEL_DIR) {
    // No model configured: use the generated test model, so the system runs offline out of the box.
    const { dir } = await generateTestModel();
    process.env.EMBEDDING_MODEL_DIR = dir;
    process.env.EMBEDDING_ALLOW_REMOTE ??= 'false';
    log(`embedding model: generated test model in ${dir}: not a semantic model (for one: npm run model:fetch, then EMBEDDING_MODEL_DIR=.cache/models/BAAI/bge-small-en-v1.5 npm start)`);
  } else {
    log(`embedding model: ${process.env.EMBEDDING_MODEL_DIR}`);
  }
  // Loaded now (the API and the indexer share it in this process): a bad model fails the start, and
  // the log says how texts are embedded.
  const embedder = await getEmbedder();
  log(
    `embedding: ${embedder.model.id} (${embedder.model.dimension} dims, ${embedder.model.dtype}), ` +
      describeConventions(embedder.conventions),
  );

  const system = await startLocalSystem({
    apiPort: config.apiPort,
    host: config.host,
    dynamodbEndpoint: config.dynamodbEndpoint,
    dynamodbPort: config.dynamodbPort,
    dynamodbDataDir: config.dynamodbDataDir,
    qdrantUrl: config.qdrantUrl,
    qdrantPort: config.qdrantPort,
    qdrantDataDir: config.qdrantDataDir,
    failureFile: join(config.dataDir, 'indexer-failures.jsonl'),
    // Data that outlives this process (--persist, or another DynamoDB) keeps the stream position too.
    ...(config.persist || config.dynamodbEndpoint ? { streamCheckpointFile: join(config.dataDir, 'stream-checkpoints.json') } : {}),
    log,
  });

  if (system.qdrant && system.qdrantApiKey) {
    // The CLI (another process of this user) reads the per-run key from here; nobody else can.
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(config.qdrantApiKeyFile, `${system.qdrantApiKey}\n`, { mode: 0o600 });
    chmodSync(config.qdrantApiKeyFile, 0o600);
  }

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    await system.stop();
    if (system.qdrant) rmSync(config.qdrantApiKeyFile, { force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  system.dynamodb?.process.once('exit', (code) => {
    if (!stopping) {
      log(`DynamoDB Local exited unexpectedly (code ${code}); stopping.`);
      void stop(1);
    }
  });

  log(`DynamoDB ${config.dynamodbEndpoint ? 'at' : 'Local on'} ${system.dynamodbEndpoint}${config.persist ? ` (data in ${config.dataDir})` : ' (in memory; `npm start -- --persist` keeps data)'}`);
  log(`Qdrant ${config.qdrantUrl ? 'at' : '(local server) on'} ${system.qdrantUrl}${system.qdrant ? ` (API key for this run in ${config.qdrantApiKeyFile})` : ''}`);
  log(`indexer failures go to ${join(config.dataDir, 'indexer-failures.jsonl')}`);
  if (system.issuer) {
    log(`auth: jwt, tokens of issuer ${system.issuer.issuer}, audience ${system.issuer.audience} (keys at ${system.apiUrl}/.well-known/jwks.json)`);
    log(`API on ${system.apiUrl}  (try: curl -H "authorization: Bearer $(npx personas token --scope personas:read)" ${system.apiUrl}/personas)`);
  } else {
    log(`API on ${system.apiUrl}  (open: no auth; AUTH=jwt npm start checks tokens and scopes)  (try: curl ${system.apiUrl}/personas)`);
  }
  if (tenancy.mode === 'claim') log(`tenancy: claim (each request's tenant is its token's '${tenancy.claim}' claim)`);
  log('press Ctrl-C to stop');
}

main().catch((error: Error) => {
  console.error(`[local] failed to start: ${error.message}`);
  process.exit(1);
});

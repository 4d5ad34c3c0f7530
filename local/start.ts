import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { tableConfig } from '../shared/config';
import { startApiServer } from './apiServer';
import { startDynamoDbLocal, type DynamoDbLocal } from './dynamodbLocal';
import { localRuntimeConfig } from './localConfig';
import { ensureTables } from './tables';

/**
 * `npm start`: the whole system on a laptop, no Docker and no AWS account. DynamoDB Local
 * (with Streams) and the HTTP API that runs the Lambda handler modules.
 */
const log = (line: string) => console.log(`[local] ${line}`);
const stops: Array<() => Promise<void>> = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping…');
    for (const stop of stops.reverse()) await stop().catch((error: Error) => log(`stop failed: ${error.message}`));
  }
  process.exit(code);
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const config = localRuntimeConfig();
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  let dynamodb: DynamoDbLocal | undefined;
  if (!config.dynamodbEndpoint) {
    dynamodb = await startDynamoDbLocal({ port: config.dynamodbPort, quiet: true, ...(config.dynamodbDataDir ? { dataDir: config.dynamodbDataDir } : {}) });
    stops.push(() => dynamodb!.stop());
    dynamodb.process.once('exit', (code) => {
      if (!stopping) {
        log(`DynamoDB Local exited unexpectedly (code ${code}); stopping.`);
        void stopAll(1);
      }
    });
    process.env.DYNAMODB_ENDPOINT = dynamodb.endpoint;
    log(`DynamoDB Local on ${dynamodb.endpoint}${config.persist ? ` (data in ${config.dynamodbDataDir})` : ' (in memory; --persist keeps data)'}`);
  } else {
    process.env.DYNAMODB_ENDPOINT = config.dynamodbEndpoint;
    log(`using DynamoDB at ${config.dynamodbEndpoint}`);
  }

  const tables = tableConfig();
  const client = new DynamoDBClient({
    region: tables.region,
    endpoint: tables.dynamodbEndpoint!,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local' },
  });
  await ensureTables(client, tables);
  log(`tables ready: ${tables.personaTableName} (stream NEW_AND_OLD_IMAGES), ${tables.idempotencyTableName}`);

  const api = await startApiServer({ port: config.apiPort, host: config.host, log: (line) => log(line) });
  stops.push(() => api.close());
  log(`API on http://localhost:${api.port}  (try: curl http://localhost:${api.port}/personas)`);
  log('press Ctrl-C to stop');
}

main().catch(async (error: Error) => {
  console.error(`[local] failed to start: ${error.message}`);
  await stopAll(1);
});

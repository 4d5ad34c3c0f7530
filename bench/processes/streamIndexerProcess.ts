/**
 * The stream worker and the indexer handler alone in their own process, as the local runtime
 * runs them (local/system.ts) but apart from the API. Ready once the model is loaded and the
 * collection exists, like a provisioned container.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { handler } from '../../functions/indexer/handler';
import { lambdaContext } from '../../local/lambdaEvent';
import { startStreamWorker } from '../../local/streamWorker';
import { tableConfig } from '../../shared/config';
import { indexerDeps } from '../../shared/vectorIndex/indexerDeps';

await indexerDeps();
const tables = tableConfig();
const worker = await startStreamWorker({
  endpoint: tables.dynamodbEndpoint!,
  region: tables.region,
  tableName: tables.personaTableName,
  handler: (event) => handler(event, lambdaContext('indexer')),
  failureFile: join(tmpdir(), `persona-db-bench-${process.pid}-failures.jsonl`),
  log: (line) => {
    if (!line.startsWith('indexer: synced')) process.stderr.write(`${line}\n`);
  },
});
process.stdout.write('indexer ready\n');
process.once('SIGTERM', () => void worker.stop().then(() => process.exit(0)));

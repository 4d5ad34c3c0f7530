import { randomBytes } from 'node:crypto';
import { createDynamoDbClient } from '../shared/aws/dynamodb';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WEB_ASSETS_DIR_VARIABLE } from '../shared/http/webAssets';
import { buildWebAssets } from '../web/build';
import { tableConfig } from '../shared/config';
import { startApiServer, type ApiServer } from './apiServer';
import { startDynamoDbLocal, type DynamoDbLocal } from './dynamodbLocal';
import { startQdrantServer } from './qdrant/server';
import { startStreamWorker, type StreamHandler, type StreamWorker, type StreamWorkerOptions } from './streamWorker';
import { ensureTables } from './tables';
import { lambdaContext as lambdaContextFor } from './lambdaEvent';
import { localJwtAuthorizer, type LocalJwtAuthorizerOptions } from './jwtAuthorizer';
import { localIssuer, localIssuerSettings, type LocalIssuer } from './localIssuer';
import { authMode } from '../shared/http/accessControl';

export interface LocalSystemOptions {
  apiPort: number;
  host?: string;
  /** Use this DynamoDB; otherwise DynamoDB Local is started on `dynamodbPort`. */
  dynamodbEndpoint?: string | undefined;
  dynamodbPort?: number;
  dynamodbDataDir?: string | undefined;
  /** Use this Qdrant; otherwise the local Qdrant-compatible server is started on `qdrantPort`. */
  qdrantUrl?: string | undefined;
  qdrantPort?: number;
  qdrantDataDir?: string | undefined;
  /** Batches the indexer gives up on are appended here (JSON lines). */
  failureFile: string;
  /** The stream worker's position per shard, kept across restarts (see StreamWorkerOptions.checkpointFile). */
  streamCheckpointFile?: string;
  /** Wraps the indexer handler, e.g. to inject faults in tests. */
  wrapIndexer?: (handler: StreamHandler) => StreamHandler;
  onStreamRecordsSettled?: StreamWorkerOptions['onSettled'];
  /** Event source mapping settings; the CDK stack's (shared/streamSettings.ts) by default. */
  streamSettings?: StreamWorkerOptions['settings'];
  /**
   * `jwt`: API Gateway's JWT authorizer in front of the API, with the local issuer (AUTH=jwt), and
   * the functions' own scope checks on. Default: the AUTH variable, else `none` (open, for dev).
   */
  auth?: 'none' | 'jwt';
  /** The local issuer's key file (default: in the data dir, see local/localIssuer.ts). */
  jwtKeyFile?: string;
  /** Test hook: see LocalJwtAuthorizerOptions.enforceScopes. */
  jwtAuthorizerOptions?: LocalJwtAuthorizerOptions;
  log?: (line: string) => void;
}

export interface LocalSystem {
  apiUrl: string;
  dynamodbEndpoint: string;
  qdrantUrl: string;
  /** The key the local Qdrant server requires (generated per start), or the given QDRANT_API_KEY. */
  qdrantApiKey: string | undefined;
  /** The token issuer the API trusts, with auth=jwt. */
  issuer: LocalIssuer | undefined;
  api: ApiServer;
  streamWorker: StreamWorker;
  qdrant: { url: string; port: number; close(): Promise<void> } | undefined;
  dynamodb: DynamoDbLocal | undefined;
  stop(): Promise<void>;
}

/**
 * The whole system in one process: DynamoDB Local (or a given endpoint), the Qdrant-compatible
 * server (or a given Qdrant), the HTTP API running the Lambda handler modules, and the stream
 * worker feeding the indexer handler. `npm start` and the integration tests both use it.
 */
export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const log = options.log ?? (() => undefined);
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error: Error) => log(`stop failed: ${error.message}`));
    stops.length = 0;
  };
  try {
    let dynamodb: DynamoDbLocal | undefined;
    if (!options.dynamodbEndpoint) {
      dynamodb = await startDynamoDbLocal({ port: options.dynamodbPort ?? 8000, quiet: true, ...(options.dynamodbDataDir ? { dataDir: options.dynamodbDataDir } : {}) });
      stops.push(() => dynamodb!.stop());
    }
    const dynamodbEndpoint = options.dynamodbEndpoint ?? dynamodb!.endpoint;
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint;

    const tables = tableConfig();
    const client = createDynamoDbClient(tables);
    await ensureTables(client, tables);
    client.destroy();

    let qdrant: LocalSystem['qdrant'];
    let qdrantApiKey = process.env.QDRANT_API_KEY || undefined;
    if (!options.qdrantUrl) {
      // A new key every run: only processes of this user (which can read it) reach the local index.
      qdrantApiKey = randomBytes(32).toString('base64url');
      qdrant = await startQdrantServer({
        port: options.qdrantPort ?? 6333,
        apiKey: qdrantApiKey,
        ...(options.qdrantDataDir ? { dataDir: options.qdrantDataDir } : {}),
      });
      stops.push(() => qdrant!.close());
    }
    const qdrantUrl = options.qdrantUrl ?? qdrant!.url;
    process.env.QDRANT_URL = qdrantUrl;
    if (qdrantApiKey) process.env.QDRANT_API_KEY = qdrantApiKey;
    else delete process.env.QDRANT_API_KEY;

    // The console's and /docs' scripts, built as the stack builds them for the webAsset function.
    process.env[WEB_ASSETS_DIR_VARIABLE] ??= mkdtempSync(join(tmpdir(), 'persona-web-assets-'));
    buildWebAssets(process.env[WEB_ASSETS_DIR_VARIABLE]);

    const auth = options.auth ?? (authMode() === 'jwt' ? 'jwt' : 'none');
    // The functions read AUTH for their own scope check, as they do in AWS (set by the stack).
    process.env.AUTH = auth;
    const issuer = auth === 'jwt' ? await localIssuer({ ...localIssuerSettings(), ...(options.jwtKeyFile ? { keyFile: options.jwtKeyFile } : {}) }) : undefined;
    const authorizer = issuer ? localJwtAuthorizer(issuer, options.jwtAuthorizerOptions) : undefined;
    const api = await startApiServer({ port: options.apiPort, ...(options.host ? { host: options.host } : {}), log, ...(authorizer ? { authorizer } : {}) });
    stops.push(() => api.close());

    // Like a provisioned warm container: load the model and make sure the collection exists
    // before the first write, so that searches work from the start.
    const { indexerDeps } = await import('../shared/vectorIndex/indexerDeps');
    await indexerDeps();
    const { handler } = await import('../functions/indexer/handler');
    const indexer: StreamHandler = (event) => handler(event, lambdaContextFor('indexer'));
    const streamWorker = await startStreamWorker({
      endpoint: dynamodbEndpoint,
      region: tables.region,
      tableName: tables.personaTableName,
      handler: options.wrapIndexer ? options.wrapIndexer(indexer) : indexer,
      failureFile: resolve(options.failureFile),
      ...(options.streamCheckpointFile ? { checkpointFile: resolve(options.streamCheckpointFile) } : {}),
      log,
      ...(options.onStreamRecordsSettled ? { onSettled: options.onStreamRecordsSettled } : {}),
      ...(options.streamSettings ? { settings: options.streamSettings } : {}),
    });
    stops.push(() => streamWorker.stop());

    return { apiUrl: api.url, dynamodbEndpoint, qdrantUrl, qdrantApiKey, issuer, api, streamWorker, qdrant, dynamodb, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

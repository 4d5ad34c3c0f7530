import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isLoopbackHostname } from '../shared/http/loopbackHost';

const readKeyFile = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

/** Whether a Qdrant URL is the address npm start's own server listens on. */
function namesLocalServer(url: string, port: number): boolean {
  try {
    const parsed = new URL(url);
    return isLoopbackHostname(parsed.hostname) && Number(parsed.port || 80) === port;
  } catch {
    return false;
  }
}

/** Local runtime settings: every port and endpoint can be overridden by environment. */
export function localRuntimeConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)) {
  const persist = argv.includes('--persist') || env.LOCAL_PERSIST === 'true';
  const dataDir = resolve(env.LOCAL_DATA_DIR ?? '.data');
  return {
    apiPort: Number(env.API_PORT ?? 3000),
    host: env.API_HOST ?? '127.0.0.1',
    dynamodbPort: Number(env.DYNAMODB_PORT ?? 8000),
    /** When set, that DynamoDB is used and no DynamoDB Local is started. */
    dynamodbEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    qdrantPort: Number(env.QDRANT_PORT ?? 6333),
    /** When set, that Qdrant is used and no local Qdrant server is started. */
    qdrantUrl: env.QDRANT_URL || undefined,
    /** Keep DynamoDB and Qdrant data on disk across restarts (`npm start -- --persist`). */
    persist,
    dataDir,
    dynamodbDataDir: persist ? resolve(dataDir, 'dynamodb') : undefined,
    qdrantDataDir: persist ? resolve(dataDir, 'qdrant') : undefined,
    /** Where `npm start` leaves the local Qdrant server's per-run API key (mode 0600) for the CLI. */
    qdrantApiKeyFile: resolve(dataDir, 'qdrant-api-key'),
  };
}

export type LocalRuntimeConfig = ReturnType<typeof localRuntimeConfig>;

/**
 * Where `npm start` serves, from the same variables (API_PORT, DYNAMODB_PORT, QDRANT_PORT), unless
 * DYNAMODB_ENDPOINT / QDRANT_URL name another DynamoDB / Qdrant: the CLI's default targets.
 */
export function localEndpoints(env: NodeJS.ProcessEnv = process.env) {
  const config = localRuntimeConfig(env, []);
  return {
    apiUrl: `http://localhost:${config.apiPort}`,
    dynamodbEndpoint: config.dynamodbEndpoint ?? `http://127.0.0.1:${config.dynamodbPort}`,
    qdrantUrl: config.qdrantUrl ?? `http://127.0.0.1:${config.qdrantPort}`,
    /**
     * QDRANT_API_KEY, else for the local Qdrant server (QDRANT_URL unset, or naming it: loopback on
     * QDRANT_PORT) the key the running `npm start` generated.
     */
    qdrantApiKey: env.QDRANT_API_KEY || (!config.qdrantUrl || namesLocalServer(config.qdrantUrl, config.qdrantPort) ? readKeyFile(config.qdrantApiKeyFile) : undefined),
  };
}

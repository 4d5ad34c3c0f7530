/**
 * Standalone entry: `npm run qdrant`. QDRANT_PORT (default 6333), QDRANT_HOST (default 127.0.0.1),
 * QDRANT_DATA_DIR (persist when set) and QDRANT_API_KEY (require a key when set).
 */
import { startQdrantServer } from './server';

const port = Number(process.env.QDRANT_PORT ?? 6333);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`QDRANT_PORT must be a port number, got ${process.env.QDRANT_PORT}`);
  process.exit(1);
}

const dataDir = process.env.QDRANT_DATA_DIR || undefined;
const server = await startQdrantServer({
  port,
  host: process.env.QDRANT_HOST || undefined,
  dataDir,
  apiKey: process.env.QDRANT_API_KEY || undefined,
});
console.log(`Qdrant-compatible server listening on ${server.url}${dataDir ? ` (data in ${dataDir})` : ' (in memory)'}`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`Received ${signal}, shutting down`);
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('Shutdown failed', error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

/**
 * The API server alone in its own process (TABLE_NAME, DYNAMODB_ENDPOINT, QDRANT_URL,
 * QDRANT_COLLECTION and EMBEDDING_* come from the environment), on a free port. Handlers load
 * on their first request, as a Lambda container initialises on its first invocation.
 */
import { startApiServer } from '../../local/apiServer';

const server = await startApiServer({ port: 0 });
process.stdout.write(`api ready ${server.url}\n`);
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));

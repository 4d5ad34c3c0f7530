import { personaServiceDeps } from '../persona/personaServiceDeps';
import { qdrantDeps } from '../vectorIndex/qdrantDeps';
import type { IndexReadDeps } from './personaSearch';

/**
 * GET /personas/{id}/similar: the table and Qdrant, without the embedding model (its own module,
 * so the function's bundle carries no ML code).
 */
export async function indexReadDeps(): Promise<IndexReadDeps> {
  const { qdrant, collection } = await qdrantDeps();
  return { repository: personaServiceDeps().repository, qdrant, collection };
}

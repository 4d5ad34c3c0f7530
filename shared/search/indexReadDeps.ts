import type { PersonaRepository } from '../persona/personaRepository';
import { qdrantDeps } from '../vectorIndex/qdrantDeps';
import { tenantScopedIndex } from '../vectorIndex/tenantScopedIndex';
import type { IndexReadDeps } from './personaSearch';

/**
 * GET /personas/{id}/similar: the table and Qdrant, without the embedding model (its own module,
 * so the function's bundle carries no ML code), confined to the tenant of the request's repository.
 */
export async function indexReadDeps(repository: PersonaRepository): Promise<IndexReadDeps> {
  const { qdrant, collection } = await qdrantDeps();
  return { repository, qdrant: tenantScopedIndex(qdrant, repository.tenant), collection };
}

import type { PersonaRepository } from '../persona/personaRepository';
import { tenantScopedIndex } from '../vectorIndex/tenantScopedIndex';
import { vectorIndexDeps } from '../vectorIndex/vectorIndexDeps';
import type { SearchDeps } from './personaSearch';

/**
 * The search functions' deps for one request: the vector index (built once per warm container),
 * confined to the tenant of the request's repository (personaServiceDeps resolved it).
 */
export async function searchDeps(repository: PersonaRepository): Promise<SearchDeps> {
  const { qdrant, collection, embedder } = await vectorIndexDeps();
  return { repository, qdrant: tenantScopedIndex(qdrant, repository.tenant), collection, embedder };
}

import { personaServiceDeps } from '../persona/personaServiceDeps';
import { vectorIndexDeps } from '../vectorIndex/vectorIndexDeps';
import type { SearchDeps } from './personaSearch';

/** The search functions' deps: the table's repository and the vector index, both built once per warm container. */
export async function searchDeps(): Promise<SearchDeps> {
  const { qdrant, collection, embedder } = await vectorIndexDeps();
  return { repository: personaServiceDeps().repository, qdrant, collection, embedder };
}

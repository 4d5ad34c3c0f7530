import { httpHandler } from '../../shared/http/httpHandler';
import { personaIdFromPath } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { findSimilarPersonas } from '../../shared/search/personaSearch';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';
import { indexReadDeps } from '../../shared/search/indexReadDeps';
import { qdrantDeps } from '../../shared/vectorIndex/qdrantDeps';
import { parseSimilarQuery } from '../../shared/search/similarQuery';
import { loadDuringInit } from '../../shared/lambdaInit';

// The Qdrant secret, during Lambda's init phase.
await loadDuringInit(qdrantDeps);

export const handler = httpHandler(async (event) => {
  const { repository } = personaServiceDeps(event);
  const id = personaIdFromPath(event);
  const options = parseSimilarQuery(event.rawQueryString);
  return jsonResponse(200, await findSimilarPersonas(await indexReadDeps(repository), id, options));
});

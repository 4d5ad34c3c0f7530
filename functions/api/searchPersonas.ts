import { httpHandler } from '../../shared/http/httpHandler';
import { bodyLimits, readJsonBody } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { searchPersonas } from '../../shared/search/personaSearch';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';
import { searchDeps } from '../../shared/search/searchDeps';
import { vectorIndexDeps } from '../../shared/vectorIndex/vectorIndexDeps';
import { parseSearchRequest } from '../../shared/search/searchRequest';
import { loadDuringInit } from '../../shared/lambdaInit';

// The model and the Qdrant secret, during Lambda's init phase.
await loadDuringInit(vectorIndexDeps);

export const handler = httpHandler(async (event) => {
  const { repository } = personaServiceDeps(event);
  const request = parseSearchRequest(readJsonBody(event, { maxBytes: bodyLimits.single }));
  return jsonResponse(200, await searchPersonas(await searchDeps(repository), request));
});

import { httpHandler } from '../../shared/http/httpHandler';
import { personaIdFromPath } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { findSimilarPersonas } from '../../shared/search/personaSearch';
import { searchDeps } from '../../shared/search/searchDeps';
import { parseSimilarQuery } from '../../shared/search/similarQuery';

export const handler = httpHandler(async (event) => {
  const id = personaIdFromPath(event);
  const options = parseSimilarQuery(event.rawQueryString);
  return jsonResponse(200, await findSimilarPersonas(await searchDeps(), id, options));
});

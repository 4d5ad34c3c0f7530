import { httpHandler } from '../../shared/http/httpHandler';
import { integerQueryParameter } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { cursorSigningKey } from '../../shared/persona/cursorSigningKey';
import { listLimits, listPersonas } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

// Read during init: a missing or short key fails the cold start, not a user's request.
await cursorSigningKey();

export const handler = httpHandler(async (event) => {
  const deps = personaServiceDeps(event);
  const limit = integerQueryParameter(event, 'limit', { min: 1, max: listLimits.max, default: listLimits.default });
  // An empty cursor counts as absent, as every optional query parameter's empty value does.
  const page = await listPersonas(deps, limit, event.queryStringParameters?.cursor || undefined, await cursorSigningKey());
  return jsonResponse(200, page);
});

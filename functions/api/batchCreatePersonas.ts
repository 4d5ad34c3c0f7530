import { httpHandler } from '../../shared/http/httpHandler';
import { bodyLimits, idempotencyKey, readJsonBody } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { batchCreatePersonas } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event) => {
  const key = idempotencyKey(event);
  const body = readJsonBody(event, { maxBytes: bodyLimits.batch });
  return jsonResponse(200, await batchCreatePersonas(personaServiceDeps(), body, key));
});

import { httpHandler } from '../../shared/http/httpHandler';
import { bodyLimits, idempotencyRequest, readJsonBody } from '../../shared/http/request';
import { jsonResponse } from '../../shared/http/response';
import { batchCreatePersonas } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event, context) => {
  const deps = personaServiceDeps(event);
  const idempotency = idempotencyRequest(event, context);
  const body = readJsonBody(event, { maxBytes: bodyLimits.batch });
  const { result, replayed } = await batchCreatePersonas(deps, body, idempotency);
  return jsonResponse(200, result, replayed ? { 'Idempotent-Replayed': 'true' } : {});
});

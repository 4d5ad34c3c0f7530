import { httpHandler } from '../../shared/http/httpHandler';
import { personaResponse } from '../../shared/http/personaResponses';
import { bodyLimits, idempotencyRequest, readJsonBody } from '../../shared/http/request';
import { createPersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event, context) => {
  const deps = personaServiceDeps(event);
  const idempotency = idempotencyRequest(event, context);
  const body = readJsonBody(event, { maxBytes: bodyLimits.single });
  const { persona, replayed } = await createPersona(deps, body, idempotency);
  return personaResponse(201, persona, {
    Location: `/personas/${persona.id}`,
    ...(replayed ? { 'Idempotent-Replayed': 'true' } : {}),
  });
});

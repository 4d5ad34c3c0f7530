import { httpHandler } from '../../shared/http/httpHandler';
import { personaResponse } from '../../shared/http/personaResponses';
import { bodyLimits, idempotencyKey, readJsonBody } from '../../shared/http/request';
import { createPersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event) => {
  const key = idempotencyKey(event);
  const body = readJsonBody(event, { maxBytes: bodyLimits.single });
  const { persona, replayed } = await createPersona(personaServiceDeps(), body, key);
  return personaResponse(201, persona, {
    Location: `/personas/${persona.id}`,
    ...(replayed ? { 'Idempotent-Replayed': 'true' } : {}),
  });
});

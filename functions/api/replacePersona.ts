import { httpHandler } from '../../shared/http/httpHandler';
import { personaResponse } from '../../shared/http/personaResponses';
import { bodyLimits, ifMatchVersion, personaIdFromPath, readJsonBody } from '../../shared/http/request';
import { replacePersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event) => {
  const deps = personaServiceDeps(event);
  const id = personaIdFromPath(event);
  const expectedVersion = ifMatchVersion(event);
  const body = readJsonBody(event, { maxBytes: bodyLimits.single });
  const persona = await replacePersona(deps, id, body, expectedVersion);
  return personaResponse(200, persona);
});

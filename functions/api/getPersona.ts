import { httpHandler } from '../../shared/http/httpHandler';
import { personaResponse } from '../../shared/http/personaResponses';
import { personaIdFromPath } from '../../shared/http/request';
import { getPersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event) => {
  const persona = await getPersona(personaServiceDeps(event), personaIdFromPath(event));
  return personaResponse(200, persona);
});

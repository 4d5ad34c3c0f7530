import { httpHandler } from '../../shared/http/httpHandler';
import { ifMatchVersion, personaIdFromPath } from '../../shared/http/request';
import { emptyResponse } from '../../shared/http/response';
import { deletePersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event) => {
  await deletePersona(personaServiceDeps(event), personaIdFromPath(event), ifMatchVersion(event));
  return emptyResponse(204);
});

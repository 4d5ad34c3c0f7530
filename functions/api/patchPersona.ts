import { httpHandler } from '../../shared/http/httpHandler';
import { personaResponse } from '../../shared/http/personaResponses';
import { MERGE_PATCH_MEDIA_TYPE, bodyLimits, ifMatchVersion, personaIdFromPath, readJsonBody } from '../../shared/http/request';
import { patchPersona } from '../../shared/persona/personaService';
import { personaServiceDeps } from '../../shared/persona/personaServiceDeps';

export const handler = httpHandler(async (event, context) => {
  const deps = personaServiceDeps(event);
  const id = personaIdFromPath(event);
  const expectedVersion = ifMatchVersion(event);
  const patch = readJsonBody(event, { maxBytes: bodyLimits.single, mediaTypes: [MERGE_PATCH_MEDIA_TYPE] });
  const persona = await patchPersona(deps, id, patch, expectedVersion, context.getRemainingTimeInMillis());
  return personaResponse(200, persona);
});

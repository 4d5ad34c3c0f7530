import type { Persona } from '../persona/schema';
import { etagForVersion } from './request';
import { jsonResponse, type HttpResponse } from './response';

/** A persona response always carries its version as the ETag, ready for If-Match. */
export function personaResponse(statusCode: number, persona: Persona, headers: Record<string, string> = {}): HttpResponse {
  return jsonResponse(statusCode, persona, { ETag: etagForVersion(persona.version), ...headers });
}

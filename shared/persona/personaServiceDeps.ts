import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig } from '../config';
import { personaRepository } from './personaRepository';
import type { PersonaServiceDeps } from './personaService';

let deps: PersonaServiceDeps | undefined;

/** Built once per warm container (and per local process) from the environment. */
export function personaServiceDeps(): PersonaServiceDeps {
  if (!deps) {
    const config = tableConfig();
    deps = {
      repository: personaRepository(createDocumentClient(config), {
        personas: config.personaTableName,
        idempotency: config.idempotencyTableName,
      }),
    };
  }
  return deps;
}

import { personaRepositoryFor } from './personaRepository';
import type { PersonaServiceDeps } from './personaService';

let deps: PersonaServiceDeps | undefined;

/** Built once per warm container (and per local process) from the environment. */
export function personaServiceDeps(): PersonaServiceDeps {
  deps ??= { repository: personaRepositoryFor() };
  return deps;
}

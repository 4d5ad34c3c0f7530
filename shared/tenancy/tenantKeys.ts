/**
 * How a persona of a tenant is addressed in the table and in the index. One table and one
 * collection hold every tenant; the tenant is part of every address, so that no key or point id
 * built for one tenant can name another tenant's persona, whatever id a caller guesses.
 *
 * | tenancy | table key (`id` attribute)   | Qdrant point id                    | extra payload            |
 * | ------- | ---------------------------- | ---------------------------------- | ------------------------ |
 * | single  | `<id>`                       | `<id>`                             | none                     |
 * | claim   | `<tenant>#<id>`              | UUID derived from `<tenant>#<id>`  | `tenant_id`, `persona_id` |
 *
 * Persona ids are UUIDs and tenants never contain `#`, so a key splits one way only. A bare key is
 * a single-tenant persona: single-tenant stages keep their keys and points unchanged.
 */
import { stableUuid } from '../stableUuid';

export const TENANT_KEY_SEPARATOR = '#';

/** The table key of persona `id` of `tenant` (undefined: a single-tenant stage). */
export const personaKey = (tenant: string | undefined, id: string): string => (tenant === undefined ? id : `${tenant}${TENANT_KEY_SEPARATOR}${id}`);

export function splitPersonaKey(key: string): { tenant: string | undefined; id: string } {
  const at = key.indexOf(TENANT_KEY_SEPARATOR);
  return at < 0 ? { tenant: undefined, id: key } : { tenant: key.slice(0, at), id: key.slice(at + 1) };
}

/**
 * The point id of the persona stored under `key`: the id itself for a bare key, else a UUID derived
 * from tenant and id (two tenants' personas never share a point, even with equal ids).
 */
export const pointIdForKey = (key: string): string => (key.includes(TENANT_KEY_SEPARATOR) ? stableUuid(`persona-point\0${key}`) : key);

/** The payload fields that tie a tenant's point to its tenant and persona (none for a bare key). */
export function tenantPayload(key: string): { tenant_id: string; persona_id: string } | Record<string, never> {
  const { tenant, id } = splitPersonaKey(key);
  return tenant === undefined ? {} : { tenant_id: tenant, persona_id: id };
}

/**
 * The table key a point belongs to, from its payload, checked against its id: a point whose payload
 * names a key that does not derive its id is reported under its own id (so a comparison with the
 * table sees it as an orphan rather than trusting the payload).
 */
export function keyOfPoint(pointId: string, payload: Record<string, unknown> | null | undefined): string {
  const tenant = payload?.tenant_id;
  const id = payload?.persona_id;
  if (typeof tenant !== 'string' || typeof id !== 'string') return pointId;
  const key = personaKey(tenant, id);
  return pointIdForKey(key) === pointId ? key : pointId;
}

/**
 * `personas export`: every persona as one JSON line, read page by page (GET /personas) or by a
 * table scan, and written as it is read, so memory stays at one page whatever the table's size.
 * `personas import` takes the output back (it ignores the server-managed fields).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { listLimits } from '../persona/personaService';
import type { PersonaRepository } from '../persona/personaRepository';
import { orderPersonaKeys, type Persona } from '../persona/schema';
import { splitPersonaKey } from '../tenancy/tenantKeys';
import { personaClientFor, type ApiTarget } from './personaApiClient';

export type ExportSource = { kind: 'api'; api: ApiTarget } | { kind: 'table'; repository: Pick<PersonaRepository, 'scanAll'> };

async function* pagesFromApi(api: ApiTarget): AsyncGenerator<Persona[]> {
  for await (const page of personaClientFor(api).listPages({ limit: listLimits.max })) yield page.items as Persona[];
}

/**
 * A table export through a tenant's repository holds that tenant's personas; through the whole
 * table's, every persona, a tenant's with its bare id and its `tenant_id` (which import ignores).
 */
async function* pagesFromTable(repository: Pick<PersonaRepository, 'scanAll'>): AsyncGenerator<Persona[]> {
  for await (const page of repository.scanAll({ pageSize: 500 })) {
    yield page.map((item) => {
      const { tenant, id } = splitPersonaKey(item.id);
      return { ...orderPersonaKeys({ ...item, id }), ...(tenant === undefined ? {} : { tenant_id: tenant }) };
    });
  }
}

export async function exportPersonas(source: ExportSource, out: Writable): Promise<{ personas: number; durationMs: number }> {
  const started = performance.now();
  let personas = 0;
  const pages = source.kind === 'api' ? pagesFromApi(source.api) : pagesFromTable(source.repository);
  for await (const page of pages) {
    for (const persona of page) {
      personas++;
      // Respect the destination's backpressure (a pipe, a slow disk).
      if (!out.write(JSON.stringify(persona) + '\n')) await once(out, 'drain');
    }
  }
  return { personas, durationMs: performance.now() - started };
}

import type { QdrantClient } from '@qdrant/js-client-rest';
import type { Persona } from '../persona/schema';
import { keyOfPoint } from '../tenancy/tenantKeys';
import { TEXT_VECTOR, TRAITS_VECTOR } from './personaCollection';
import { jsonEqual, personaPayload } from './personaPoint';

export type DriftKind = 'missing' | 'orphan' | 'stale-version' | 'stale-payload' | 'wrong-model' | 'missing-vector';

export interface Drift {
  id: string;
  kind: DriftKind;
  detail: string;
}

export interface IndexedPoint {
  /** The table key the point belongs to (keyOfPoint: its id, or a tenant's key from its payload). */
  id: string;
  payload: Record<string, unknown>;
  hasTextVector: boolean;
  hasTraitsVector: boolean;
}

/** What drift checks of a point read by retrieve or scroll (with payload and vectors), under its table key. */
export function indexedPoint(point: { id: string | number; payload?: Record<string, unknown> | null; vector?: unknown }): IndexedPoint {
  const vectors = (point.vector ?? {}) as Record<string, unknown>;
  return { id: keyOfPoint(String(point.id), point.payload), payload: point.payload ?? {}, hasTextVector: Array.isArray(vectors[TEXT_VECTOR]), hasTraitsVector: Array.isArray(vectors[TRAITS_VECTOR]) };
}

/** Every point of a collection, page by page (payloads only; vectors are just checked for presence). */
export async function* scrollPoints(qdrant: QdrantClient, collection: string, pageSize = 256): AsyncGenerator<IndexedPoint[]> {
  let offset: string | number | undefined | null = undefined;
  do {
    const page: Awaited<ReturnType<QdrantClient['scroll']>> = await qdrant.scroll(collection, {
      limit: pageSize,
      with_payload: true,
      with_vector: true,
      ...(offset !== undefined && offset !== null ? { offset } : {}),
    });
    yield page.points.map(indexedPoint);
    offset = page.next_page_offset as string | number | null | undefined;
  } while (offset !== undefined && offset !== null);
}

/** A point whose id has no row in the table. */
export const orphanDrift = (id: string): Drift => ({ id, kind: 'orphan', detail: 'point has no persona in the table' });

/**
 * Differences between the table (the truth) and the index: personas with no point, points
 * with no persona, points behind the row's version or with a payload that is not the row's,
 * and points embedded by another model than `modelLabel`.
 */
export function findDrift(personas: Iterable<Persona>, points: Iterable<IndexedPoint>, modelLabel: string): Drift[] {
  const pointsById = new Map<string, IndexedPoint>();
  for (const point of points) pointsById.set(point.id, point);
  const drift: Drift[] = [];
  const seen = new Set<string>();
  for (const persona of personas) {
    seen.add(persona.id);
    const point = pointsById.get(persona.id);
    if (!point) {
      drift.push({ id: persona.id, kind: 'missing', detail: `persona v${persona.version} has no point` });
      continue;
    }
    const expected = personaPayload(persona, modelLabel);
    if (point.payload.version !== persona.version) {
      drift.push({ id: persona.id, kind: 'stale-version', detail: `point v${String(point.payload.version)}, persona v${persona.version}` });
    } else if (point.payload.embedding_model !== modelLabel) {
      drift.push({ id: persona.id, kind: 'wrong-model', detail: `embedded by ${String(point.payload.embedding_model)}, expected ${modelLabel}` });
    } else if (!jsonEqual(point.payload, expected)) {
      drift.push({ id: persona.id, kind: 'stale-payload', detail: 'payload differs from the row' });
    } else if (!point.hasTextVector || !point.hasTraitsVector) {
      drift.push({ id: persona.id, kind: 'missing-vector', detail: 'point lacks its text or traits vector' });
    }
  }
  for (const id of pointsById.keys()) {
    if (!seen.has(id)) drift.push(orphanDrift(id));
  }
  return drift;
}

import type { QdrantClient } from '@qdrant/js-client-rest';
import { UnembeddableTextError } from '../embedding/config';
import type { Persona } from '../persona/schema';
import { personaEmbeddingText } from '../persona/personaText';
import { keywordDocumentVector } from './keywordVector';
import { hasKeywordsVector, KEYWORDS_VECTOR, modelLabel, TEXT_VECTOR, TRAITS_VECTOR, type IndexedModel } from './personaCollection';
import { jsonEqual, personaPayload, traitsVector, type PersonaPayload } from './personaPoint';
import { withRetries } from './retry';
import { pointIdForKey, splitPersonaKey } from '../tenancy/tenantKeys';

/**
 * The point of the persona stored under table key `key`, as filter conditions: its point id
 * (tenantKeys.ts) and, for a tenant's key, its tenant too, so no guard or delete of one tenant's
 * change can match another tenant's point.
 */
function pointConditions(key: string): Array<Record<string, unknown>> {
  const { tenant } = splitPersonaKey(key);
  return [{ has_id: [pointIdForKey(key)] }, ...(tenant === undefined ? [] : [{ key: 'tenant_id', match: { value: tenant } }])];
}

/** A persona whose text has no usable embedding: its own fault, answered rather than retried. */
export class UnembeddablePersonaError extends Error {
  constructor(readonly personaId: string) {
    super(`persona ${personaId}: its text cannot be embedded (a zero vector: the model knows none of its words); change the text`);
    this.name = 'UnembeddablePersonaError';
  }
}

/** One change from the table's stream, reduced to what syncing needs. */
export interface PersonaChange {
  /** The stream record's id (eventID), used to report failures per record. */
  recordId: string;
  /** The persona's table key (a tenant's key is `<tenant>#<id>`, shared/tenancy/tenantKeys.ts). */
  personaId: string;
  kind: 'INSERT' | 'MODIFY' | 'REMOVE';
  /** When DynamoDB wrote the change (ms since epoch), for the sync lag. */
  changedAt: number;
}

export interface SyncDeps {
  /** Reads the current state of personas from the source of truth. */
  readPersonas(ids: readonly string[]): Promise<Map<string, Persona>>;
  qdrant: QdrantClient;
  /** Collection or alias to write. */
  collection: string;
  embedder: { readonly model: IndexedModel; embedDocuments(texts: readonly string[]): Promise<number[][]> };
  retryDelaysMs?: readonly number[];
  /**
   * A point ahead of its row is normally left alone: the row just read may be older than the one
   * another invocation indexed. A repair (reconcile) has found the difference by comparing both
   * sides, so it sets this and the row wins; the write is still guarded by the exact version seen,
   * and a live write racing it is caught by the repair's next comparison.
   */
  overwriteNewerPoints?: boolean;
}

export type SyncAction = 'embedded' | 'payload-only' | 'deleted' | 'skipped' | 'failed';

export interface SyncReport {
  /** Outcome per persona id. */
  actions: Map<string, SyncAction>;
  /** Record ids whose change could not be applied; the caller reports them as batch item failures. */
  failedRecordIds: Set<string>;
  errors: Map<string, Error>;
  counts: Record<SyncAction, number>;
}

interface ExistingPoint {
  payload: Partial<PersonaPayload>;
  textVector: number[] | undefined;
  hasKeywords: boolean;
}

interface UpsertPlan {
  action: 'embedded' | 'payload-only';
  persona: Persona;
  payload: PersonaPayload;
  text: string;
  vector?: number[];
  guard: Record<string, unknown>;
}
interface DeletePlan {
  action: 'deleted';
  observedVersion: number;
}
type Plan = { action: 'skipped' } | DeletePlan | UpsertPlan;

/**
 * Makes the index agree with the table for every persona a batch of changes touched. It syncs
 * the *current* row, not the record's image, so a replayed, duplicated or out-of-order record
 * can only ever write the latest state; each write is also guarded by the version it expects,
 * so a concurrent newer write is never overwritten.
 */
export async function syncPersonaChanges(deps: SyncDeps, changes: readonly PersonaChange[]): Promise<SyncReport> {
  const retry = <T>(operation: () => Promise<T>) => withRetries(operation, deps.retryDelaysMs);
  const ids = [...new Set(changes.map((change) => change.personaId))];
  const actions = new Map<string, SyncAction>();
  const errors = new Map<string, Error>();
  const fail = (personaIds: readonly string[], error: Error) => {
    for (const id of personaIds) {
      actions.set(id, 'failed');
      errors.set(id, error);
    }
  };

  try {
    // A collection created before the keywords vector existed gets text and traits only, until a reindex.
    const [current, existing] = await Promise.all([
      retry(() => deps.readPersonas(ids)),
      retry(() => hasKeywordsVector(deps.qdrant, deps.collection)).then((keywords) => retry(() => retrievePoints(deps, ids, keywords))),
    ]);
    const label = modelLabel(deps.embedder.model);
    const plans = new Map(ids.map((id) => [id, planChange(current.get(id), existing.points.get(id), label, existing.keywords, deps.overwriteNewerPoints ?? false)]));

    const toEmbed = [...plans.entries()].filter((entry): entry is [string, UpsertPlan] => entry[1].action === 'embedded');
    if (toEmbed.length > 0) {
      try {
        // A text with no usable embedding is not a blip: it is answered, not retried.
        const embedded = await retry(() =>
          deps.embedder.embedDocuments(toEmbed.map(([, plan]) => plan.text)).catch((error: unknown) => {
            if (error instanceof UnembeddableTextError) return error;
            throw error;
          }),
        );
        const unembeddable = new Set(embedded instanceof UnembeddableTextError ? embedded.indices : []);
        const vectors = embedded instanceof UnembeddableTextError ? embedded.vectors : embedded;
        // Only the personas whose text has no usable embedding fail; the others sync.
        toEmbed.forEach(([id, plan], index) => {
          if (unembeddable.has(index)) {
            fail([id], new UnembeddablePersonaError(id));
          } else plan.vector = vectors[index];
        });
      } catch (error) {
        fail(toEmbed.map(([id]) => id), error as Error);
      }
    }

    const upserts = [...plans.entries()].filter(
      (entry): entry is [string, UpsertPlan] =>
        (entry[1].action === 'embedded' || entry[1].action === 'payload-only') && !actions.has(entry[0]),
    );
    const deletes = [...plans.entries()].filter((entry): entry is [string, DeletePlan] => entry[1].action === 'deleted');

    await Promise.all([
      upserts.length === 0
        ? undefined
        : retry(() =>
            deps.qdrant.upsert(deps.collection, {
              wait: true,
              // All vectors of a point in one write: the keywords are recomputed from the text (cheap, no model).
              points: upserts.map(([id, plan]) => ({
                id: pointIdForKey(id),
                vector: {
                  [TEXT_VECTOR]: plan.vector!,
                  [TRAITS_VECTOR]: traitsVector(plan.persona),
                  ...(existing.keywords ? { [KEYWORDS_VECTOR]: keywordDocumentVector(plan.text) } : {}),
                },
                payload: plan.payload as unknown as Record<string, unknown>,
              })),
              // One request for the batch; each existing point is only overwritten when its own guard holds.
              update_filter: { should: upserts.map(([id, plan]) => ({ must: [...pointConditions(id), plan.guard] })) },
            }),
          ).then(
            () => upserts.forEach(([id, plan]) => actions.set(id, plan.action)),
            (error: Error) => fail(upserts.map(([id]) => id), error),
          ),
      deletes.length === 0
        ? undefined
        : retry(() =>
            deps.qdrant.delete(deps.collection, {
              wait: true,
              filter: {
                should: deletes.map(([id, plan]) => ({ must: [...pointConditions(id), { key: 'version', match: { value: plan.observedVersion } }] })),
              },
            }),
          ).then(
            () => deletes.forEach(([id]) => actions.set(id, 'deleted')),
            (error: Error) => fail(deletes.map(([id]) => id), error),
          ),
    ]);
    for (const [id, plan] of plans) if (!actions.has(id)) actions.set(id, plan.action);
  } catch (error) {
    fail(ids, error as Error);
  }

  const failedRecordIds = new Set(changes.filter((change) => actions.get(change.personaId) === 'failed').map((change) => change.recordId));
  const counts: Record<SyncAction, number> = { embedded: 0, 'payload-only': 0, deleted: 0, skipped: 0, failed: 0 };
  for (const action of actions.values()) counts[action]++;
  return { actions, failedRecordIds, errors, counts };
}

/**
 * Backfill: writes these rows, as read (a table scan's page, an export file's chunk), into the
 * collection. They are taken as the source of truth of their own read; the version guards of
 * syncPersonaChanges keep a newer point that a live change wrote meanwhile. A row deleted since it
 * was read is the caller's to remove: Qdrant applies `update_filter` only to points that exist, so
 * the guarded upsert of a missing point inserts it (a reindex's change tail re-syncs deleted ids).
 */
export function syncPersonaRows(deps: Omit<SyncDeps, 'readPersonas'>, rows: readonly Persona[]): Promise<SyncReport> {
  const byKey = new Map(rows.map((row) => [row.id, row]));
  return syncPersonaChanges(
    { ...deps, readPersonas: async (ids) => new Map(ids.flatMap((id) => (byKey.has(id) ? [[id, byKey.get(id)!] as const] : []))) },
    rows.map((row) => ({ recordId: row.id, personaId: row.id, kind: 'INSERT' as const, changedAt: Date.now() })),
  );
}

async function retrievePoints(deps: SyncDeps, ids: readonly string[], keywords: boolean) {
  const keyOfPointId = new Map(ids.map((key) => [pointIdForKey(key), key]));
  const points = await deps.qdrant.retrieve(deps.collection, {
    ids: [...keyOfPointId.keys()],
    with_payload: true,
    with_vector: keywords ? [TEXT_VECTOR, KEYWORDS_VECTOR] : [TEXT_VECTOR],
  });
  return {
    keywords,
    points: new Map<string, ExistingPoint>(
      points.map((point) => {
        const vectors = point.vector as Record<string, unknown> | undefined;
        const vector = vectors?.[TEXT_VECTOR];
        return [
          keyOfPointId.get(String(point.id)) ?? String(point.id),
          {
            payload: (point.payload ?? {}) as Partial<PersonaPayload>,
            textVector: Array.isArray(vector) ? (vector as number[]) : undefined,
            hasKeywords: vectors?.[KEYWORDS_VECTOR] !== undefined,
          },
        ];
      }),
    ),
  };
}

function planChange(persona: Persona | undefined, point: ExistingPoint | undefined, label: string, keywords: boolean, overwriteNewerPoints: boolean): Plan {
  const pointVersion = typeof point?.payload.version === 'number' ? point.payload.version : undefined;
  if (!persona) {
    return point && pointVersion !== undefined ? { action: 'deleted', observedVersion: pointVersion } : { action: 'skipped' };
  }
  const payload = personaPayload(persona, label);
  if (point && pointVersion !== undefined) {
    const pointIsNewer = !overwriteNewerPoints && pointVersion > persona.version && String(point.payload.updated_at ?? '') >= persona.updated_at;
    const complete = point.textVector && (point.hasKeywords || !keywords);
    if (pointIsNewer || (jsonEqual(point.payload, payload) && complete)) return { action: 'skipped' };
  }
  // A persona deleted and created again restarts at version 1: then replace exactly the version seen.
  const guard =
    pointVersion !== undefined && pointVersion > persona.version
      ? { key: 'version', match: { value: pointVersion } }
      : { key: 'version', range: { lte: persona.version } };
  const text = personaEmbeddingText(persona);
  const reusable = point?.textVector && point.payload.text_hash === payload.text_hash && point.payload.embedding_model === label;
  return reusable
    ? { action: 'payload-only', persona, payload, text, vector: point.textVector!, guard }
    : { action: 'embedded', persona, payload, text, guard };
}

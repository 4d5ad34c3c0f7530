/**
 * The vector index as one tenant's request sees it. On a `claim` stage every request the API
 * sends to Qdrant on behalf of a tenant goes through this wrapper, which:
 *
 * - adds `tenant_id = <tenant>` to the filter of every query (and of each of its prefetches, at
 *   any depth), scroll, count, retrieve and delete: Qdrant's payload partitioning, served by the
 *   `tenant_id` keyword index with `is_tenant: true` (personaCollection.ts;
 *   https://qdrant.tech/documentation/manage-data/multitenancy/);
 * - turns persona ids into the tenant's point ids (tenantKeys.ts) wherever a request names a point
 *   (a query by a point's vectors, `has_id`, retrieve, delete), so a guessed id of another tenant's
 *   persona names a point that does not exist;
 * - answers with persona ids again (from the point's `persona_id`), and drops any point whose
 *   payload is not this tenant's.
 *
 * - gives every stage that ranks by the sparse `keywords` vector (a query or a prefetch, by a sparse
 *   vector or by a point's) the tenant's points as its IDF corpus (Qdrant 1.19
 *   `params.idf = {"corpus": <filter>}`): Qdrant's IDF is otherwise computed over the whole
 *   collection, so a tenant's keyword scores would move with other tenants' writes and tell it
 *   which words they hold and how many personas there are;
 *
 * Retrieve is sent as a filtered scroll (`has_id` and the tenant), since Qdrant's retrieve takes no
 * filter. Query forms that could read other points or collections unmapped (lookup_from, discover,
 * context) are refused. On a single-tenant stage the client is used as it is.
 */
import type { QdrantClient, Schemas } from '@qdrant/js-client-rest';
import { personaKey, pointIdForKey } from '../tenancy/tenantKeys';
import { KEYWORDS_VECTOR } from './personaCollection';

/** What the API's requests use of the index. */
export type IndexClient = Pick<QdrantClient, 'query' | 'queryBatch' | 'retrieve' | 'scroll' | 'count' | 'delete'>;

type Filter = Schemas['Filter'];
type Condition = Schemas['Condition'];
type PointId = string | number;
/** A request's `with_payload`, as any request type spells it. */
type WithPayload = unknown;

const TENANT_FIELDS = ['tenant_id', 'persona_id'] as const;

const asList = <T>(value: T | T[] | null | undefined): T[] => (value === undefined || value === null ? [] : Array.isArray(value) ? value : [value]);

export class TenantScopeError extends Error {
  constructor(what: string) {
    super(`${what} is not available to a tenant's request (it could reach other tenants' points).`);
    this.name = 'TenantScopeError';
  }
}

export function tenantScopedIndex(client: IndexClient, tenant: string | undefined): IndexClient {
  if (tenant === undefined) return client;
  const pointId = (id: PointId): PointId => (typeof id === 'string' ? pointIdForKey(personaKey(tenant, id)) : id);
  const tenantCondition: Condition = { key: 'tenant_id', match: { value: tenant } };

  const mapCondition = (condition: Condition): Condition => {
    const record = condition as Record<string, unknown>;
    if ('has_id' in record) return { has_id: (record.has_id as PointId[]).map(pointId) } as Condition;
    if ('nested' in record) {
      const nested = record.nested as { key: string; filter: Filter };
      return { nested: { ...nested, filter: mapFilter(nested.filter) } } as Condition;
    }
    if ('must' in record || 'should' in record || 'must_not' in record || 'min_should' in record) return mapFilter(condition as Filter) as Condition;
    return condition;
  };
  const mapFilter = (filter: Filter): Filter => {
    const minShould = filter.min_should as { conditions: Condition[]; min_count: number } | null | undefined;
    return {
      ...(filter.must !== undefined && filter.must !== null ? { must: asList(filter.must).map(mapCondition) } : {}),
      ...(filter.should !== undefined && filter.should !== null ? { should: asList(filter.should).map(mapCondition) } : {}),
      ...(filter.must_not !== undefined && filter.must_not !== null ? { must_not: asList(filter.must_not).map(mapCondition) } : {}),
      ...(minShould ? { min_should: { ...minShould, conditions: minShould.conditions.map(mapCondition) } } : {}),
    };
  };
  /** The caller's filter (ids mapped), and the tenant, which every match must also satisfy. */
  const scoped = (filter: Filter | null | undefined): Filter => {
    const mapped = filter ? mapFilter(filter) : {};
    return { ...mapped, must: [tenantCondition, ...asList(mapped.must)] };
  };

  const withTenantFields = (selector: WithPayload): Schemas['WithPayloadInterface'] => {
    if (selector === true) return true;
    if (Array.isArray(selector)) return [...new Set([...(selector as string[]), ...TENANT_FIELDS])];
    if (selector === false || selector === undefined || selector === null) return [...TENANT_FIELDS];
    // { include } / { exclude } forms
    const include = (selector as { include?: string[] | string }).include;
    if (include !== undefined) return { include: [...new Set([...asList(include), ...TENANT_FIELDS])] };
    const exclude = asList((selector as { exclude?: string[] | string }).exclude).filter((field) => !(TENANT_FIELDS as readonly string[]).includes(field));
    return { exclude };
  };

  /** A point as the caller asked for it, with its persona id; undefined for any point that is not this tenant's. */
  const toCallerPoint = <P extends { id: PointId; payload?: Record<string, unknown> | null }>(point: P, requested: WithPayload): P | undefined => {
    const payload = point.payload ?? {};
    const personaId = payload.persona_id;
    if (payload.tenant_id !== tenant || typeof personaId !== 'string' || pointId(personaId) !== point.id) return undefined;
    const kept = Object.fromEntries(Object.entries(payload).filter(([field]) => !(TENANT_FIELDS as readonly string[]).includes(field)));
    const wanted = requested === false || requested === undefined || requested === null ? undefined : kept;
    return { ...point, id: personaId, payload: wanted ?? null };
  };

  const mapQuery = (query: unknown): unknown => {
    if (typeof query === 'string' || typeof query === 'number') return pointId(query);
    if (query === null || typeof query !== 'object' || Array.isArray(query)) return query;
    const record = query as Record<string, unknown>;
    if ('nearest' in record) return { ...record, nearest: mapQuery(record.nearest) };
    if ('recommend' in record) {
      const recommend = record.recommend as { positive?: unknown[]; negative?: unknown[] };
      return {
        ...record,
        recommend: {
          ...recommend,
          ...(recommend.positive ? { positive: recommend.positive.map(mapQuery) } : {}),
          ...(recommend.negative ? { negative: recommend.negative.map(mapQuery) } : {}),
        },
      };
    }
    if ('discover' in record || 'context' in record) throw new TenantScopeError('A discover or context query');
    // Dense and sparse vectors, fusion, order_by, sample, formula: no point is named.
    return query;
  };
  /** A stage ranked by sparse IDF scores: by the keywords vector, or by any sparse vector given. */
  const ranksBySparse = (stage: { query?: unknown; using?: string | null }) => {
    const query = stage.query as Record<string, unknown> | null | undefined;
    const vector = query && typeof query === 'object' && 'nearest' in query ? query.nearest : query;
    return stage.using === KEYWORDS_VECTOR || (vector !== null && typeof vector === 'object' && 'indices' in vector);
  };
  const tenantCorpus = <S extends { query?: unknown; using?: string | null; params?: Schemas['SearchParams'] | null }>(stage: S): S =>
    ranksBySparse(stage) ? { ...stage, params: { ...stage.params, idf: { corpus: { must: [tenantCondition] } } } as Schemas['SearchParams'] } : stage;
  const mapPrefetch = (prefetch: Schemas['Prefetch']): Schemas['Prefetch'] => {
    if ((prefetch as { lookup_from?: unknown }).lookup_from) throw new TenantScopeError('lookup_from');
    return tenantCorpus({
      ...prefetch,
      ...(prefetch.query !== undefined ? { query: mapQuery(prefetch.query) as Schemas['Prefetch']['query'] } : {}),
      ...(prefetch.prefetch ? { prefetch: asList(prefetch.prefetch).map(mapPrefetch) } : {}),
      filter: scoped(prefetch.filter),
    });
  };
  const mapQueryRequest = (request: Schemas['QueryRequest']): Schemas['QueryRequest'] => {
    if (request.lookup_from) throw new TenantScopeError('lookup_from');
    return tenantCorpus({
      ...request,
      ...(request.query !== undefined ? { query: mapQuery(request.query) as Schemas['QueryRequest']['query'] } : {}),
      ...(request.prefetch ? { prefetch: asList(request.prefetch).map(mapPrefetch) } : {}),
      filter: scoped(request.filter),
      with_payload: withTenantFields(request.with_payload),
    });
  };
  const answer = (points: Schemas['ScoredPoint'][], requested: WithPayload) => points.flatMap((point) => toCallerPoint(point, requested) ?? []);

  return {
    async query(collection, request) {
      const result = await client.query(collection, mapQueryRequest(request));
      return { ...result, points: answer(result.points, request.with_payload) };
    },
    async queryBatch(collection, batch) {
      const results = await client.queryBatch(collection, { ...batch, searches: batch.searches.map(mapQueryRequest) });
      return results.map((result, index) => ({ ...result, points: answer(result.points, batch.searches[index]!.with_payload) }));
    },
    async retrieve(collection, request) {
      const ids = request.ids.map(pointId);
      const { points } = await client.scroll(collection, {
        filter: { must: [tenantCondition, { has_id: ids }] },
        limit: Math.max(1, ids.length),
        with_payload: withTenantFields(request.with_payload),
        with_vector: request.with_vector ?? false,
      });
      return points.flatMap((point) => toCallerPoint(point, request.with_payload) ?? []);
    },
    async scroll(collection, request = {}) {
      // Scroll returns payloads unless told otherwise.
      const requested = request.with_payload ?? true;
      const result = await client.scroll(collection, { ...request, filter: scoped(request.filter), with_payload: withTenantFields(requested) });
      return { ...result, points: result.points.flatMap((point) => toCallerPoint(point, requested) ?? []) };
    },
    count(collection, request = {}) {
      return client.count(collection, { ...request, filter: scoped(request.filter) });
    },
    delete(collection, request) {
      // By ids or by filter, the delete becomes a filter that also names the tenant.
      const { points, filter, ...rest } = request as { points?: PointId[]; filter?: Filter } & Record<string, unknown>;
      const selection: Filter = points ? { must: [{ has_id: points } as Condition] } : filter ?? {};
      return client.delete(collection, { ...rest, filter: scoped(selection) } as Parameters<QdrantClient['delete']>[1]);
    },
  };
}

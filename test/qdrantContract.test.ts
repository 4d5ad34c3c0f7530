/**
 * The product's contract with Qdrant: every request shape the product sends, through the product's
 * own functions where they exist, and the answers it relies on.
 *
 * Runs against any Qdrant: `QDRANT_URL=http://localhost:6333 npm run test:qdrant` (with
 * QDRANT_API_KEY for a secured one, e.g. Qdrant Cloud, or the official container:
 * `docker run -p 6333:6333 qdrant/qdrant:v1.19.0`). Without QDRANT_URL it starts the project's
 * local Qdrant-compatible server, which is how `npm test` (and CI) runs it. Everything it creates
 * is named `contract-<random>-…` and deleted afterwards.
 *
 * Every answer goes through a recording proxy and is checked against Qdrant's OpenAPI document
 * (../shared/qdrant/openapi-v1.19.json) by the last test.
 */
import { randomUUID } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';
import { swapAlias } from '../shared/operations/aliasSwap';
import { compareIndex, readAllPoints, resolveCollection } from '../shared/operations/indexReconciler';
import type { Persona } from '../shared/persona/schema';
import { findSimilarPersonas, searchPersonas, type SearchDeps } from '../shared/search/personaSearch';
import { searchRequestSchema, similarRequestSchema } from '../shared/search/searchRequest';
import {
  createPersonaCollection,
  ensurePersonaCollection,
  PAYLOAD_INDEXES,
  readIndexedModel,
  type IndexedModel,
} from '../shared/vectorIndex/personaCollection';
import { syncPersonaChanges, type PersonaChange, type SyncDeps } from '../shared/vectorIndex/syncPersonaChanges';
import { tenantScopedIndex } from '../shared/vectorIndex/tenantScopedIndex';
import { samplePersona } from './support/apiClient';
import { QdrantOpenApi } from './support/qdrantOpenApi';
import { startQdrantProxy, type QdrantProxy } from './support/qdrantProxy';

const target = process.env.QDRANT_URL;
const prefix = `contract-${randomUUID().slice(0, 8)}`;
const alias = `${prefix}-personas`;

let local: QdrantServer | undefined;
let proxy: QdrantProxy;
let qdrant: QdrantClient;

/** A small deterministic embedder (hashed words): the contract is about Qdrant, not the model. */
const model: IndexedModel = { id: 'contract/hashed-words', revision: '1', dimension: 16, dtype: 'fp32', pooling: 'mean', normalize: true, queryPrefix: '', documentPrefix: '' };
function embed(text: string): number[] {
  const vector = new Array<number>(model.dimension).fill(0);
  for (const word of text.toLowerCase().split(/\W+/).filter(Boolean)) {
    let hash = 0;
    for (const char of word) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    vector[hash % model.dimension]! += 1;
  }
  const length = Math.hypot(...vector) || 1;
  return vector.map((x) => x / length);
}
const embedder = { model, embedDocuments: async (texts: readonly string[]) => texts.map(embed), embedQuery: async (text: string) => embed(text) };

/** The table, in memory: the product's source-of-truth reads, for the sync and the comparisons. */
const table = new Map<string, Persona>();
const repository = {
  get: async (id: string) => table.get(id),
  getMany: async (ids: readonly string[]) => new Map(ids.flatMap((id) => (table.has(id) ? [[id, table.get(id)!] as const] : []))),
  async *scanAll(options: { segment?: number } = {}) {
    if ((options.segment ?? 0) === 0) yield [...table.values()];
  },
};

function persona(n: number, version = 1): Persona {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, n + version)).toISOString();
  return { ...(samplePersona(n) as Omit<Persona, 'id' | 'version' | 'created_at' | 'updated_at'>), id: ids[n]!, version, created_at: at, updated_at: at };
}
const ids = Array.from({ length: 6 }, () => randomUUID());
const change = (id: string, kind: PersonaChange['kind'] = 'MODIFY'): PersonaChange => ({ recordId: `${id}-${kind}`, personaId: id, kind, changedAt: Date.now() });

let physical: string;
const syncDeps = (): SyncDeps => ({ readPersonas: (batch) => repository.getMany(batch), qdrant, collection: alias, embedder, retryDelaysMs: [] });
const searchDeps = (): SearchDeps => ({ repository: repository as unknown as SearchDeps['repository'], qdrant, collection: alias, embedder });

beforeAll(async () => {
  if (!target) local = await startQdrantServer({ port: 0 });
  proxy = await startQdrantProxy(target ?? local!.url);
  const apiKey = process.env.QDRANT_API_KEY || undefined;
  qdrant = new QdrantClient({ url: proxy.url, ...(apiKey ? { apiKey } : {}), checkCompatibility: false });
}, 60_000);

afterAll(async () => {
  if (qdrant) {
    const { collections } = await qdrant.getCollections().catch(() => ({ collections: [] as { name: string }[] }));
    for (const { name } of collections) if (name.startsWith(prefix)) await qdrant.deleteCollection(name).catch(() => undefined);
  }
  await proxy?.close();
  await local?.close();
});

describe(`Qdrant contract (${target ?? 'local Qdrant-compatible server'})`, () => {
  it('creates the persona collection behind an alias, with its model in the metadata and its payload indexes', async () => {
    physical = await ensurePersonaCollection(qdrant, alias, model);
    expect(physical).toBe(`${alias}-v1`);
    expect(await resolveCollection(qdrant, alias)).toBe(physical);
    expect(await readIndexedModel(qdrant, alias)).toEqual(model);
    const info = await qdrant.getCollection(physical);
    for (const [field, schema] of PAYLOAD_INDEXES) expect(info.payload_schema[field]?.data_type, field).toBe(typeof schema === 'string' ? schema : schema.type);
    // The tenant field's index keeps its parameters (multitenancy: https://qdrant.tech/documentation/manage-data/multitenancy/).
    expect(info.payload_schema.tenant_id?.params, 'tenant_id').toMatchObject({ type: 'keyword', is_tenant: true });
    // A second cold start finds it and creates nothing.
    expect(await ensurePersonaCollection(qdrant, alias, model)).toBe(physical);
  });

  it('inserts personas through guarded upserts: a guarded upsert of a missing id inserts', async () => {
    for (let n = 0; n < ids.length; n++) table.set(ids[n]!, persona(n));
    const report = await syncPersonaChanges(syncDeps(), ids.map((id) => change(id, 'INSERT')));
    expect(report.counts).toMatchObject({ embedded: ids.length, failed: 0 });
    const points = await qdrant.retrieve(alias, { ids, with_payload: ['version', 'name'], with_vector: ['text'] });
    expect(points).toHaveLength(ids.length);
    expect((points[0]!.vector as Record<string, number[]>).text).toHaveLength(model.dimension);
  });

  it('overwrites a point only when its version guard holds', async () => {
    table.set(ids[0]!, { ...persona(0, 2), name: 'Changed name' });
    expect((await syncPersonaChanges(syncDeps(), [change(ids[0]!)])).counts.failed).toBe(0);
    // The product's guard for a write of version 1 over the stored version 2 does not hold: no change.
    const stale = persona(0, 1);
    await qdrant.upsert(alias, {
      wait: true,
      points: [{ id: stale.id, vector: { text: embed('stale'), traits: [0, 0, 0, 0, 0] }, payload: { version: 1 } }],
      update_filter: { should: [{ must: [{ has_id: [stale.id] }, { key: 'version', range: { lte: 1 } }] }] },
    } as Parameters<QdrantClient['upsert']>[1]);
    const [point] = await qdrant.retrieve(alias, { ids: [ids[0]!], with_payload: ['version', 'name'] });
    expect(point?.payload).toEqual({ version: 2, name: 'Changed name' });
  });

  it('deletes a removed persona by a filter on id and observed version', async () => {
    table.delete(ids[5]!);
    const report = await syncPersonaChanges(syncDeps(), [change(ids[5]!, 'REMOVE')]);
    expect(report.counts).toMatchObject({ deleted: 1, failed: 0 });
    expect(await qdrant.retrieve(alias, { ids: [ids[5]!] })).toEqual([]);
  });

  it('searches by text, by traits and blended (prefetch + RRF), with filters, threshold and paging', async () => {
    const request = (body: unknown) => searchRequestSchema.parse(body);
    const semantic = await searchPersonas(searchDeps(), request({ query: 'belief 3 phrase 3', mode: 'semantic', limit: 2 }));
    expect(semantic.items[0]?.id).toBe(ids[3]);
    const traits = await searchPersonas(
      searchDeps(),
      request({ traits: { openness: 0.4, conscientiousness: 0.5, extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5 }, mode: 'personality', limit: 1 }),
    );
    expect(traits.items.map((item) => item.id)).toEqual([ids[4]]);
    const blended = await searchPersonas(
      searchDeps(),
      request({
        query: 'belief 2',
        traits: { openness: 0.2, conscientiousness: 0.5, extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5 },
        mode: 'blend',
        limit: 2,
        filter: { humor_usage: ['medium', 'high'] },
      }),
    );
    expect(blended.items[0]?.id).toBe(ids[2]);
    expect(blended.items.every((item) => ['medium', 'high'].includes(item.humor_usage!))).toBe(true);
    const page2 = await searchPersonas(searchDeps(), request({ query: 'persona', mode: 'semantic', limit: 2, offset: 2, score_threshold: -1 }));
    expect(page2).toMatchObject({ offset: 2, limit: 2 });
    expect(page2.items).toHaveLength(2);
  });

  it('finds similar personas by point id, never the persona itself', async () => {
    const similar = await findSimilarPersonas(searchDeps(), ids[1]!, similarRequestSchema.parse({ mode: 'blend', limit: 10 }));
    expect(similar.items.length).toBeGreaterThan(0);
    expect(similar.items.map((item) => item.id)).not.toContain(ids[1]);
  });

  it('fuses with reciprocal rank fusion: k = 2 by default, and `rrf.k` and `rrf.weights` as Qdrant 1.19 scores them', async () => {
    // Qdrant's RRF scores a point 1 / (rank + k) per list, rank from 0, k = 2 by default
    // (DEFAULT_RRF_K in lib/segment/src/common/reciprocal_rank_fusion.rs). Qdrant 1.19's
    // `{"rrf": {"k", "weights"}}` (OpenAPI `Rrf`: "Weights for each prefetch source") is scored by
    // `position_score` in the same file: 1.0 / ((position + 1) / weight + k − 1); a weight ≤ 0 scores 0
    // (the point stays in the union); `rrf_scoring` refuses a number of weights other than the prefetches'.
    const name = `${prefix}-rrf`;
    await qdrant.createCollection(name, { vectors: { a: { size: 2, distance: 'Dot' }, b: { size: 2, distance: 'Dot' } } });
    await qdrant.upsert(name, {
      wait: true,
      points: [
        { id: 1, vector: { a: [3, 0], b: [0, 0] } },
        { id: 2, vector: { a: [2, 0], b: [0, 2] } },
        { id: 3, vector: { a: [1, 0], b: [0, 3] } },
      ],
    });
    const prefetch = [
      { query: [1, 0], using: 'a', limit: 3 },
      { query: [0, 1], using: 'b', limit: 2 },
    ];
    const { points } = await qdrant.query(name, { prefetch, query: { fusion: 'rrf' } });
    // a ranks 1, 2, 3; b ranks 3, 2 (limit 2).
    expect(points.map((point) => point.id)).toEqual([3, 2, 1]);
    expect(points[0]!.score).toBeCloseTo(1 / 4 + 1 / 2, 6);
    expect(points[1]!.score).toBeCloseTo(1 / 3 + 1 / 3, 6);
    expect(points[2]!.score).toBeCloseTo(1 / 2, 6);

    const fused = async (rrf: { k?: number; weights?: number[] }) =>
      (await qdrant.query(name, { prefetch, query: { rrf } })).points.map((point) => [point.id, point.score]);
    // Weights [4, 1], k = 1: a's positions count a quarter: 1 → 1/(1/4) = 4; 2 → 1/(2/4) + 1/(2/1) = 2.5;
    // 3 → 1/(3/4) + 1/(1/1) = 7/3. The order turns around.
    expect(await fused({ k: 1, weights: [4, 1] })).toEqual([
      [1, expect.closeTo(4, 5)],
      [2, expect.closeTo(2.5, 5)],
      [3, expect.closeTo(7 / 3, 5)],
    ]);
    // Weights [3, 1] with the default k = 2: 1 → 1/(1/3 + 1) = 0.75; 2 → 1/(2/3 + 1) + 1/(2 + 1) = 0.9333;
    // 3 → 1/(3/3 + 1) + 1/(1 + 1) = 1.
    expect(await fused({ weights: [3, 1] })).toEqual([
      [3, expect.closeTo(1, 5)],
      [2, expect.closeTo(0.6 + 1 / 3, 5)],
      [1, expect.closeTo(0.75, 5)],
    ]);
    // A zero weight: that source adds nothing, its points stay in the union with score 0.
    expect(await fused({ weights: [0, 1] })).toEqual([
      [3, expect.closeTo(0.5, 5)],
      [2, expect.closeTo(1 / 3, 5)],
      [1, 0],
    ]);
    await expect(qdrant.query(name, { prefetch, query: { rrf: { weights: [1, 2, 3] } } })).rejects.toMatchObject({ status: 400 });
  });

  it('scrolls every point and counts with a filter', async () => {
    const points = await readAllPoints(qdrant, alias);
    expect(points.map((point) => point.id).sort()).toEqual(ids.slice(0, 5).sort());
    const page = await qdrant.scroll(alias, { limit: 2, with_payload: ['version', 'updated_at'], with_vector: false });
    expect(page.points).toHaveLength(2);
    expect(page.next_page_offset).not.toBeNull();
    expect((await qdrant.count(alias, { filter: { must: [{ key: 'version', range: { gte: 2 } }] }, exact: true })).count).toBe(1);
    const { drift } = await compareIndex({ repository, qdrant }, alias, model);
    expect(drift).toEqual([]);
  });

  it("keeps tenants apart: a tenant's requests (filtered query, prefetch, scroll as retrieve, count) see only its points", async () => {
    // Two tenants' personas with the same bare id: the table keys and point ids differ (shared/tenancy/tenantKeys.ts).
    const shared = randomUUID();
    const rowOf = (tenant: string, n: number): Persona => ({ ...persona(n), id: `${tenant}#${shared}`, name: `${tenant} persona` });
    table.set(`acme#${shared}`, rowOf('acme', 1));
    table.set(`globex#${shared}`, rowOf('globex', 1));
    const report = await syncPersonaChanges(syncDeps(), [change(`acme#${shared}`, 'INSERT'), change(`globex#${shared}`, 'INSERT')]);
    expect(report.counts).toMatchObject({ embedded: 2, failed: 0 });
    const tenantDeps = (tenant: string): SearchDeps => ({
      ...searchDeps(),
      qdrant: tenantScopedIndex(qdrant, tenant),
      repository: { get: async (id: string) => (table.has(`${tenant}#${id}`) ? { ...table.get(`${tenant}#${id}`)!, id } : undefined) } as unknown as SearchDeps['repository'],
    });
    const found = await searchPersonas(tenantDeps('acme'), searchRequestSchema.parse({ query: 'persona', mode: 'blend', traits: persona(1).traits, limit: 10 }));
    expect(found.items.map((item) => [item.id, item.name])).toEqual([[shared, 'acme persona']]);
    const similar = await findSimilarPersonas(tenantDeps('globex'), shared, similarRequestSchema.parse({ mode: 'semantic', limit: 10 }));
    expect(similar).toMatchObject({ items: [], indexed_version: 1 });
    expect((await tenantScopedIndex(qdrant, 'acme').count(alias, { exact: true })).count).toBe(1);
    const { points } = await tenantScopedIndex(qdrant, 'initech').scroll(alias, { limit: 100 });
    expect(points).toEqual([]);
    expect(await tenantScopedIndex(qdrant, 'initech').retrieve(alias, { ids: [shared] })).toEqual([]);
    // A delete on another tenant's behalf, by id or by filter, removes none of these points.
    await tenantScopedIndex(qdrant, 'initech').delete(alias, { wait: true, points: [shared] });
    await tenantScopedIndex(qdrant, 'initech').delete(alias, { wait: true, filter: { must: [{ has_id: [shared] }] } });
    expect((await tenantScopedIndex(qdrant, 'acme').retrieve(alias, { ids: [shared], with_payload: ['name'] })).map((point) => [point.id, point.payload])).toEqual([[shared, { name: 'acme persona' }]]);
    const { drift } = await compareIndex({ repository, qdrant }, alias, model);
    expect(drift).toEqual([]);
    // Gone again, through the sync, for the tests that count every point.
    table.delete(`acme#${shared}`);
    table.delete(`globex#${shared}`);
    expect((await syncPersonaChanges(syncDeps(), [change(`acme#${shared}`, 'REMOVE'), change(`globex#${shared}`, 'REMOVE')])).counts.deleted).toBe(2);
  });

  it('deletes points by id that carry no version (the repair of orphans)', async () => {
    const orphan = randomUUID();
    await qdrant.upsert(alias, { wait: true, points: [{ id: orphan, vector: { text: embed('orphan'), traits: [0, 0, 0, 0, 0] }, payload: {} }] });
    await qdrant.delete(alias, { wait: true, filter: { must: [{ has_id: [orphan, ids[0]!] }, { is_empty: { key: 'version' } }] } });
    expect(await qdrant.retrieve(alias, { ids: [orphan, ids[0]!] })).toHaveLength(1);
  });

  it('moves the alias to a new collection and drops the old one (the reindex swap)', async () => {
    const next = `${alias}-v2`;
    await createPersonaCollection(qdrant, next, model);
    expect(await swapAlias(qdrant, alias, physical, next)).toEqual({ aliasTarget: next });
    expect(await resolveCollection(qdrant, alias)).toBe(next);
    expect(await qdrant.deleteCollection(physical)).toBe(true);
    expect((await qdrant.query(alias, { query: embed('x'), using: 'text' })).points).toEqual([]);
  });

  it.skipIf(!QdrantOpenApi.available())('every answer matches Qdrant 1.19\'s OpenAPI document', () => {
    const openApi = new QdrantOpenApi();
    expect(proxy.exchanges.length).toBeGreaterThan(40);
    expect(proxy.exchanges.flatMap((exchange) => openApi.check(exchange))).toEqual([]);
  });
});

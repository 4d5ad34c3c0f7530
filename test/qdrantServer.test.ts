import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';

let server: QdrantServer;
let client: QdrantClient;

beforeAll(async () => {
  server = await startQdrantServer({ port: 0 });
  // The version check is a fire-and-forget request made at construction; not needed here.
  client = new QdrantClient({ url: server.url, checkCompatibility: false });
});

afterAll(async () => {
  await server?.close();
});

interface RawResponse {
  status: number;
  text: string;
  json: any;
}

async function raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, base = server.url): Promise<RawResponse> {
  const response = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** The client throws an ApiError carrying the HTTP status and Qdrant's error body. */
async function expectQdrantError(promise: Promise<unknown>, status: number, message: string | RegExp) {
  const error: any = await promise.then(
    () => expect.fail('expected the request to fail'),
    (caught: unknown) => caught,
  );
  expect(error.status).toBe(status);
  expect(error.data.status.error).toMatch(message);
}

const ids = (points: { id: string | number }[]) => points.map((point) => point.id);

describe('service endpoints', () => {
  it('reports its version at / and passes health checks', async () => {
    const root = await raw('GET', '/');
    expect(root.status).toBe(200);
    expect(root.json).toMatchObject({ title: 'qdrant - vector search engine', version: '1.19.0' });
    expect((await raw('GET', '/healthz')).text).toBe('healthz check passed');
  });

  it('rejects malformed JSON with 400 and unknown paths with 404', async () => {
    await client.createCollection('malformed', { vectors: { size: 2, distance: 'Dot' } });
    const bad = await raw('PUT', '/collections/malformed/points?wait=true', '{"points": [');
    expect(bad.status).toBe(400);
    expect(bad.json.status.error).toMatch(/^Format error in JSON body/);
    expect(typeof bad.json.time).toBe('number');
    expect((await raw('GET', '/no/such/path')).status).toBe(404);
  });
});

describe('collections', () => {
  it('creates, describes, lists, updates and deletes a collection', async () => {
    expect(
      await client.createCollection('lifecycle', {
        vectors: { text: { size: 4, distance: 'Cosine' }, traits: { size: 3, distance: 'Euclid' } },
        sparse_vectors: { keywords: {} },
      }),
    ).toBe(true);
    await expectQdrantError(
      client.createCollection('lifecycle', { vectors: { size: 4, distance: 'Cosine' } }),
      409,
      'Collection `lifecycle` already exists!',
    );

    const info = await client.getCollection('lifecycle');
    expect(info).toMatchObject({
      status: 'green',
      optimizer_status: 'ok',
      points_count: 0,
      indexed_vectors_count: 0,
      payload_schema: {},
      config: {
        params: {
          vectors: { text: { size: 4, distance: 'Cosine' }, traits: { size: 3, distance: 'Euclid' } },
          sparse_vectors: { keywords: {} },
          shard_number: 1,
          replication_factor: 1,
        },
        hnsw_config: { m: 16, ef_construct: 100 },
        optimizer_config: { default_segment_number: 0 },
        wal_config: { wal_capacity_mb: 32 },
        quantization_config: null,
      },
    });
    expect(info.segments_count).toBeGreaterThan(0);

    expect((await client.getCollections()).collections).toContainEqual({ name: 'lifecycle' });
    expect(await client.collectionExists('lifecycle')).toEqual({ exists: true });
    expect(await client.collectionExists('never-created')).toEqual({ exists: false });
    await expectQdrantError(client.getCollection('never-created'), 404, 'Not found: Collection `never-created` doesn\'t exist!');

    expect(await client.updateCollection('lifecycle', { optimizers_config: { indexing_threshold: 5000 } })).toBe(true);
    expect((await client.getCollection('lifecycle')).config.optimizer_config.indexing_threshold).toBe(5000);

    expect(await client.deleteCollection('lifecycle')).toBe(true);
    expect(await client.deleteCollection('lifecycle')).toBe(false);
    await expectQdrantError(client.getCollection('lifecycle'), 404, 'doesn\'t exist');
  });

  it('reports payload indexes with the number of points they cover', async () => {
    await client.createCollection('indexed', { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert('indexed', {
      points: [
        { id: 1, vector: [1, 0], payload: { city: 'Berlin', age: 30 } },
        { id: 2, vector: [0, 1], payload: { city: ['Paris', 'Rome'] } },
        { id: 3, vector: [1, 1], payload: { city: 7 } },
      ],
    });
    const result = await client.createPayloadIndex('indexed', { field_name: 'city', field_schema: 'keyword', wait: true });
    expect(result.status).toBe('completed');
    await client.createPayloadIndex('indexed', { field_name: 'age', field_schema: { type: 'integer', range: true }, wait: true });

    const schema = (await client.getCollection('indexed')).payload_schema;
    expect(schema.city).toEqual({ data_type: 'keyword', points: 2 });
    expect(schema.age).toEqual({ data_type: 'integer', params: { type: 'integer', range: true }, points: 1 });

    await client.deletePayloadIndex('indexed', 'city', { wait: true });
    expect(Object.keys((await client.getCollection('indexed')).payload_schema)).toEqual(['age']);
  });
});

describe('aliases', () => {
  beforeAll(async () => {
    for (const [name, generation] of [['people_v1', 1], ['people_v2', 2]] as const) {
      await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
      await client.upsert(name, { points: [{ id: 1, vector: [1, 0], payload: { generation } }] });
    }
  });

  const generationVia = async (alias: string) =>
    (await client.query(alias, { query: [1, 0], with_payload: true })).points[0]?.payload?.generation;

  it('resolves aliases everywhere a collection name is taken and switches them atomically', async () => {
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'people_v1', alias_name: 'people' } }] });
    expect(await generationVia('people')).toBe(1);
    expect((await client.retrieve('people', { ids: [1] }))[0]?.payload).toEqual({ generation: 1 });
    expect((await client.getCollection('people')).points_count).toBe(1);
    expect(await client.collectionExists('people')).toEqual({ exists: true });

    await client.updateCollectionAliases({
      actions: [
        { delete_alias: { alias_name: 'people' } },
        { create_alias: { collection_name: 'people_v2', alias_name: 'people' } },
      ],
    });
    expect(await generationVia('people')).toBe(2);
    expect((await client.getAliases()).aliases).toContainEqual({ alias_name: 'people', collection_name: 'people_v2' });
    expect((await client.getCollectionAliases('people_v2')).aliases).toEqual([{ alias_name: 'people', collection_name: 'people_v2' }]);
    expect((await client.getCollectionAliases('people_v1')).aliases).toEqual([]);
  });

  it('applies actions in order and keeps the earlier ones when a later one fails, as Qdrant does', async () => {
    // Qdrant's update_aliases (lib/storage/src/content_manager/toc/collection_meta_ops.rs) applies
    // and saves each action before checking the next: the delete stays applied.
    await expectQdrantError(
      client.updateCollectionAliases({
        actions: [
          { delete_alias: { alias_name: 'people' } },
          { create_alias: { collection_name: 'no_such_collection', alias_name: 'people' } },
        ],
      }),
      404,
      'Collection `no_such_collection` doesn\'t exist!',
    );
    await expectQdrantError(generationVia('people'), 404, 'Collection `people` doesn\'t exist!');
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'people_v2', alias_name: 'people' } }] });
    expect(await generationVia('people')).toBe(2);
  });

  it('renames aliases and drops them with their collection', async () => {
    await client.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: 'people', new_alias_name: 'persons' } }] });
    expect(await generationVia('persons')).toBe(2);
    await expectQdrantError(generationVia('people'), 404, 'Collection `people` doesn\'t exist!');
    await expectQdrantError(
      client.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: 'people', new_alias_name: 'x' } }] }),
      404,
      'Alias people does not exists!',
    );
    await client.deleteCollection('people_v2');
    expect((await client.getAliases()).aliases.map((alias) => alias.alias_name)).not.toContain('persons');
  });
});

describe('points', () => {
  beforeAll(async () => {
    await client.createCollection('crud', { vectors: { size: 3, distance: 'Cosine' } });
  });

  it('upserts (list and batch form), retrieves, normalises ids and Cosine vectors', async () => {
    const result = await client.upsert('crud', {
      wait: true,
      points: [
        { id: 'F9E6A1C8-3B2D-4F5E-8A7B-1C2D3E4F5A6B', vector: [3, 0, 4], payload: { name: 'uuid point' } },
        { id: 1, vector: [1, 0, 0], payload: { name: 'one' } },
      ],
    });
    expect(result).toEqual({ operation_id: expect.any(Number), status: 'completed' });
    await client.upsert('crud', { batch: { ids: [2, 3], vectors: [[0, 1, 0], [0, 0, 2]], payloads: [{ name: 'two' }, { name: 'three' }] } });

    const [record] = await client.retrieve('crud', { ids: ['f9e6a1c83b2d4f5e8a7b1c2d3e4f5a6b'], with_vector: true });
    expect(record?.id).toBe('f9e6a1c8-3b2d-4f5e-8a7b-1c2d3e4f5a6b');
    expect(record?.payload).toEqual({ name: 'uuid point' });
    const vector = record?.vector as number[];
    expect(vector[0]).toBeCloseTo(0.6);
    expect(vector[2]).toBeCloseTo(0.8);

    const records = await client.retrieve('crud', { ids: [3, 2, 404], with_payload: ['name'] });
    // Qdrant leaves out the vector that was not asked for (see qdrantFidelity.test.ts).
    expect(records.map((r) => [r.id, r.payload, r.vector])).toEqual([
      [3, { name: 'three' }, undefined],
      [2, { name: 'two' }, undefined],
    ]);
    expect((await client.count('crud')).count).toBe(4);
  });

  it('serves single points by id and rejects ids that are neither integers nor UUIDs', async () => {
    const found = await raw('GET', '/collections/crud/points/1');
    expect(found.status).toBe(200);
    expect(found.json.result).toEqual({ id: 1, payload: { name: 'one' }, vector: [1, 0, 0] });
    const missing = await raw('GET', '/collections/crud/points/99');
    expect(missing.status).toBe(404);
    expect(missing.json.status.error).toBe('Not found: No point with id 99 found');
    await expectQdrantError(
      client.upsert('crud', { points: [{ id: 'not-an-id', vector: [1, 1, 1] }] }),
      400,
      /not a valid point ID, valid values are either an unsigned integer or a UUID/,
    );
    await expectQdrantError(client.upsert('crud', { points: [{ id: '12', vector: [1, 1, 1] }] }), 400, /not a valid point ID/);
  });

  it('rejects vectors of the wrong dimension and unknown vector names with 400', async () => {
    await expectQdrantError(
      client.upsert('crud', { points: [{ id: 7, vector: [1, 2] }] }),
      400,
      'Wrong input: Vector dimension error: expected dim: 3, got 2',
    );
    await expectQdrantError(
      client.upsert('crud', { points: [{ id: 7, vector: { other: [1, 2, 3] } }] }),
      400,
      'Wrong input: Not existing vector name error: other',
    );
    expect((await client.count('crud')).count).toBe(4);
  });

  it('edits payloads: merge, merge at a key, overwrite, delete keys, clear', async () => {
    await client.setPayload('crud', { points: [1], payload: { tier: 'gold', profile: { age: 40 } } });
    await client.setPayload('crud', { points: [1], key: 'profile', payload: { city: 'Oslo' } });
    expect((await client.retrieve('crud', { ids: [1] }))[0]?.payload).toEqual({
      name: 'one',
      tier: 'gold',
      profile: { age: 40, city: 'Oslo' },
    });
    await client.deletePayload('crud', { points: [1], keys: ['tier', 'profile.age'] });
    expect((await client.retrieve('crud', { ids: [1] }))[0]?.payload).toEqual({ name: 'one', profile: { city: 'Oslo' } });
    await client.overwritePayload('crud', { points: [1], payload: { only: true } });
    expect((await client.retrieve('crud', { ids: [1] }))[0]?.payload).toEqual({ only: true });
    await client.setPayload('crud', { filter: { must: [{ key: 'name', match: { any: ['two', 'three'] } }] }, payload: { batch: 'x' } });
    expect((await client.count('crud', { filter: { must: [{ key: 'batch', match: { value: 'x' } }] } })).count).toBe(2);
    await client.clearPayload('crud', { points: [2] });
    expect((await client.retrieve('crud', { ids: [2] }))[0]?.payload).toEqual({});
    await expectQdrantError(client.setPayload('crud', { points: [12345], payload: { a: 1 } }), 404, 'No point with id 12345 found');
  });

  it('updates and deletes named vectors and runs batch operations in order', async () => {
    await client.createCollection('partial', {
      vectors: { text: { size: 2, distance: 'Dot' }, traits: { size: 2, distance: 'Dot' } },
    });
    await client.upsert('partial', { points: [{ id: 1, vector: { text: [1, 0] }, payload: { n: 1 } }] });
    await client.updateVectors('partial', { points: [{ id: 1, vector: { traits: [0, 1] } }] });
    expect((await client.retrieve('partial', { ids: [1], with_vector: true }))[0]?.vector).toEqual({ text: [1, 0], traits: [0, 1] });
    await client.deleteVectors('partial', { points: [1], vector: ['text'] });
    expect((await client.retrieve('partial', { ids: [1], with_vector: true }))[0]?.vector).toEqual({ traits: [0, 1] });
    expect((await client.query('partial', { query: [1, 1], using: 'text' })).points).toEqual([]);

    const results = await client.batchUpdate('partial', {
      operations: [
        { upsert: { points: [{ id: 2, vector: { text: [0, 1] }, payload: { n: 2 } }] } },
        { set_payload: { points: [1, 2], payload: { batch: true } } },
        { delete: { points: [1] } },
      ],
    });
    expect(results.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    const left = await client.scroll('partial', {});
    expect(left.points.map((p) => [p.id, p.payload])).toEqual([[2, { n: 2, batch: true }]]);
  });

  it('filters and searches see a replaced point as it is now, after an earlier scroll', async () => {
    await client.createCollection('replaced', { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert('replaced', { wait: true, points: [1, 2, 3].map((id) => ({ id, vector: [1, 0], payload: { tag: 'old' } })) });
    // The first scroll builds the sorted view that later filters and searches read.
    expect(ids((await client.scroll('replaced', { filter: { must: [{ key: 'tag', match: { value: 'old' } }] } })).points)).toEqual([1, 2, 3]);
    await client.upsert('replaced', { wait: true, points: [{ id: 2, vector: [0, 1], payload: { tag: 'new' } }] });
    const filter = { must: [{ key: 'tag', match: { value: 'new' } }] };
    expect(ids((await client.scroll('replaced', { filter })).points)).toEqual([2]);
    const found = await client.query('replaced', { query: [0, 1], filter, with_vector: true });
    expect(found.points.map((point) => [point.id, point.vector])).toEqual([[2, [0, 1]]]);
  });

  it('deletes by ids and by filter; without wait the result is only acknowledged', async () => {
    const byFilter = await raw('POST', '/collections/crud/points/delete', {
      filter: { must: [{ key: 'name', match: { value: 'three' } }] },
    });
    expect(byFilter.json.result.status).toBe('acknowledged');
    await client.delete('crud', { points: [1], wait: true });
    const left = await client.scroll('crud', { with_payload: false });
    expect(ids(left.points)).toEqual([2, 'f9e6a1c8-3b2d-4f5e-8a7b-1c2d3e4f5a6b']);
  });
});

describe('conditional upsert (update_filter)', () => {
  it('overwrites an existing point only when it matches the filter, and always inserts new points', async () => {
    await client.createCollection('versions', { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert('versions', { points: [{ id: 1, vector: [1, 0], payload: { version: 7, name: 'current' } }] });

    await client.upsert('versions', {
      wait: true,
      update_filter: { must: [{ key: 'version', range: { lt: 5 } }] },
      points: [
        { id: 1, vector: [0, 1], payload: { version: 4, name: 'stale' } },
        { id: 2, vector: [0, 1], payload: { version: 1, name: 'new' } },
      ],
    } as any);
    const records = await client.retrieve('versions', { ids: [1, 2], with_vector: true });
    expect(records.map((r) => [r.id, r.payload, r.vector])).toEqual([
      [1, { version: 7, name: 'current' }, [1, 0]],
      [2, { version: 1, name: 'new' }, [0, 1]],
    ]);

    await client.upsert('versions', {
      update_filter: { must: [{ key: 'version', range: { lt: 8 } }] },
      points: [{ id: 1, vector: [1, 1], payload: { version: 8, name: 'newer' } }],
    } as any);
    expect((await client.retrieve('versions', { ids: [1] }))[0]?.payload).toEqual({ version: 8, name: 'newer' });
  });

  it('honours update_mode insert_only and update_only', async () => {
    await raw('PUT', '/collections/versions/points?wait=true', {
      update_mode: 'insert_only',
      points: [
        { id: 1, vector: [0, 0], payload: { name: 'ignored' } },
        { id: 3, vector: [0, 0], payload: { name: 'inserted' } },
      ],
    });
    await raw('PUT', '/collections/versions/points?wait=true', {
      update_mode: 'update_only',
      points: [{ id: 4, vector: [0, 0], payload: { name: 'never' } }],
    });
    const records = await client.retrieve('versions', { ids: [1, 3, 4] });
    expect(records.map((r) => [r.id, r.payload?.name])).toEqual([
      [1, 'newer'],
      [3, 'inserted'],
    ]);
  });
});

describe('filters', () => {
  beforeAll(async () => {
    await client.createCollection('filters', { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert('filters', {
      points: [
        {
          id: 1,
          vector: [1, 0],
          payload: {
            tags: ['a', 'b'],
            traits: { openness: 0.8 },
            city: 'Berlin',
            kids: [{ name: 'x', age: 3 }, { name: 'y', age: 10 }],
            note: null,
            bio: 'Enjoys hiking and chess',
          },
        },
        { id: 2, vector: [0, 1], payload: { tags: ['c'], traits: { openness: 0.2 }, city: 'London', kids: [], note: 'hi' } },
        { id: 3, vector: [1, 1], payload: { tags: [], city: 'Paris' } },
        { id: 4, vector: [0, 0], payload: {} },
      ],
    });
  });

  const matching = async (filter: Record<string, unknown>) =>
    ids((await client.scroll('filters', { filter, with_payload: false, limit: 100 })).points);

  it('matches a field holding an array when any element matches', async () => {
    expect(await matching({ must: [{ key: 'tags', match: { value: 'b' } }] })).toEqual([1]);
    expect(await matching({ must: [{ key: 'tags', match: { any: ['c', 'z'] } }] })).toEqual([2]);
    // `except` needs some element outside the list: [] and a missing field have none.
    expect(await matching({ must: [{ key: 'tags', match: { except: ['a'] } }] })).toEqual([1, 2]);
  });

  it('reads nested keys with dots and projects arrays of objects with []', async () => {
    expect(await matching({ must: [{ key: 'traits.openness', range: { gte: 0.5 } }] })).toEqual([1]);
    expect(await matching({ must: [{ key: 'kids[].age', range: { gt: 5 } }] })).toEqual([1]);
    // Flat conditions may be met by different array elements; `nested` requires the same element.
    expect(
      await matching({ must: [{ key: 'kids[].name', match: { value: 'x' } }, { key: 'kids[].age', range: { gt: 5 } }] }),
    ).toEqual([1]);
    expect(
      await matching({
        must: [{ nested: { key: 'kids', filter: { must: [{ key: 'name', match: { value: 'x' } }, { key: 'age', range: { gt: 5 } }] } } }],
      }),
    ).toEqual([]);
  });

  it('never matches a missing key, so must_not keeps points without it', async () => {
    expect(await matching({ must_not: [{ key: 'traits.openness', range: { gte: 0.5 } }] })).toEqual([2, 3, 4]);
    expect(await matching({ must_not: [{ key: 'city', match: { value: 'Berlin' } }] })).toEqual([2, 3, 4]);
  });

  it('treats is_empty as missing, null or [] and is_null as explicit null only', async () => {
    expect(await matching({ must: [{ is_empty: { key: 'tags' } }] })).toEqual([3, 4]);
    expect(await matching({ must: [{ is_empty: { key: 'note' } }] })).toEqual([1, 3, 4]);
    expect(await matching({ must: [{ is_null: { key: 'note' } }] })).toEqual([1]);
    expect(await matching({ must_not: [{ is_empty: { key: 'kids' } }] })).toEqual([1]);
  });

  it('supports should, min_should, has_id, nested filters and text match', async () => {
    const conditions = [
      { key: 'city', match: { any: ['Berlin', 'London'] } },
      { key: 'tags', match: { any: ['b', 'c'] } },
      { key: 'traits.openness', range: { gt: 0.5 } },
    ];
    expect(await matching({ min_should: { conditions, min_count: 2 } })).toEqual([1, 2]);
    expect(await matching({ min_should: { conditions, min_count: 3 } })).toEqual([1]);
    expect(
      await matching({
        should: [{ must: [{ key: 'city', match: { value: 'Paris' } }] }, { key: 'note', match: { value: 'hi' } }],
      }),
    ).toEqual([2, 3]);
    expect(await matching({ must: [{ has_id: [2, 3, 4] }], must_not: [{ key: 'city', match: { value: 'Paris' } }] })).toEqual([2, 4]);
    expect(await matching({ must: [{ key: 'bio', match: { text: 'hiking and' } }] })).toEqual([1]);
    expect((await client.count('filters', { filter: { must: [{ key: 'tags', match: { value: 'b' } }] } })).count).toBe(1);
  });

  it('compares datetime ranges as instants and counts values with values_count', async () => {
    await client.setPayload('filters', { points: [1], payload: { seen: '2024-03-01T10:00:00Z' }, wait: true });
    await client.setPayload('filters', { points: [2], payload: { seen: '2024-03-01 12:30:00+02:00' }, wait: true });
    // 12:30+02:00 is 10:30Z: after 10:15Z, before 10:45Z.
    expect(await matching({ must: [{ key: 'seen', range: { gt: '2024-03-01T10:15:00Z' } }] })).toEqual([2]);
    expect(await matching({ must: [{ key: 'seen', range: { gt: '2024-03-01T10:45:00Z' } }] })).toEqual([]);
    expect(await matching({ must: [{ key: 'seen', range: { gte: '2024-03-01T10:00:00Z', lt: '2024-03-01T10:31:00Z' } }] })).toEqual([1, 2]);
    expect(await matching({ must: [{ key: 'tags', values_count: { gte: 2 } }] })).toEqual([1]);
    expect(await matching({ must: [{ key: 'tags', values_count: { lt: 1 } }] })).toEqual([3, 4]);
  });

  it('rejects malformed filters with 400', async () => {
    await expectQdrantError(client.scroll('filters', { filter: { must: [{ unknown: 1 }] } as any }), 400, /Expected some form of condition/);
    await expectQdrantError(client.scroll('filters', { filter: { mustt: [] } as any }), 400, /unknown field `mustt`/);
  });
});

describe('query', () => {
  const uuid = '0b6e2b9e-7b1c-4c4f-9a55-3d2f2a1c9e10';

  beforeAll(async () => {
    await client.createCollection('search', {
      vectors: { text: { size: 4, distance: 'Cosine' }, traits: { size: 3, distance: 'Euclid' } },
      sparse_vectors: { keywords: {} },
    });
    await client.upsert('search', {
      points: [
        { id: 1, vector: { text: [1, 0, 0, 0], traits: [0, 0, 0], keywords: { indices: [5, 1], values: [0.5, 1] } }, payload: { group: 'a' } },
        { id: 2, vector: { text: [0.9, 0.1, 0, 0], traits: [1, 1, 1], keywords: { indices: [5], values: [2] } }, payload: { group: 'b' } },
        { id: 3, vector: { text: [0, 1, 0, 0], keywords: { indices: [7], values: [1] } }, payload: { group: 'b' } },
        { id: 4, vector: { traits: [0.1, 0, 0] }, payload: { group: 'b' } },
        { id: 5, vector: { text: [0, 0, 1, 0], traits: [5, 5, 5] }, payload: { group: 'c' } },
        { id: uuid, vector: { text: [0, 0, 0.2, 1] }, payload: { group: 'c' } },
      ],
    });
  });

  it('ranks by Cosine similarity and skips points without the named vector', async () => {
    const { points } = await client.query('search', { query: [1, 0, 0, 0], using: 'text', limit: 10 });
    expect(ids(points).slice(0, 2)).toEqual([1, 2]);
    expect(ids(points)).not.toContain(4);
    expect(points).toHaveLength(5);
    expect(points[0]?.score).toBeCloseTo(1);
    expect(points[1]?.score).toBeCloseTo(0.9 / Math.sqrt(0.82));
    expect(points[0]).toEqual({ id: 1, score: 1, version: expect.any(Number) });

    const nearest = await client.query('search', { query: { nearest: [1, 0, 0, 0] }, using: 'text', limit: 2 });
    expect(ids(nearest.points)).toEqual([1, 2]);
  });

  it('queries by point id (integer or UUID), leaving that point out as Qdrant does', async () => {
    // Qdrant excludes referenced ids (`exclude_referenced_ids`, collection_query.rs; see qdrantFidelity.test.ts).
    expect(ids((await client.query('search', { query: 2, using: 'text', limit: 2 })).points)).toEqual([1, 3]);
    const byUuid = await client.query('search', { query: uuid, using: 'text', limit: 2 });
    expect(ids(byUuid.points)).toEqual([5, 1]);
    expect(byUuid.points[0]?.score).toBeCloseTo(0.2 / Math.sqrt(1.04));
    await expectQdrantError(client.query('search', { query: 999, using: 'text' }), 404, 'No point with id 999 found');
  });

  it('orders Euclid results by ascending distance', async () => {
    const { points } = await client.query('search', { query: [0, 0, 0], using: 'traits' });
    expect(ids(points)).toEqual([1, 4, 2, 5]);
    expect(points.map((p) => p.score)).toEqual([0, expect.closeTo(0.1), expect.closeTo(Math.sqrt(3)), expect.closeTo(Math.sqrt(75))]);
  });

  it('scores Dot as the raw product and Manhattan as ascending L1 distance', async () => {
    await client.createCollection('metrics', {
      vectors: { dot: { size: 2, distance: 'Dot' }, l1: { size: 2, distance: 'Manhattan' } },
    });
    await client.upsert('metrics', {
      points: [
        { id: 1, vector: { dot: [2, 0], l1: [3, 4] } },
        { id: 2, vector: { dot: [1, 3], l1: [1, 1] } },
      ],
    });
    const dot = await client.query('metrics', { query: [1, 1], using: 'dot' });
    expect(dot.points.map((p) => [p.id, p.score])).toEqual([
      [2, 4],
      [1, 2],
    ]);
    const l1 = await client.query('metrics', { query: [0, 0], using: 'l1', score_threshold: 5 });
    expect(l1.points.map((p) => [p.id, p.score])).toEqual([[2, 2]]);
  });

  it('searches sparse vectors by dot product over shared indices', async () => {
    const { points } = await client.query('search', { query: { indices: [5], values: [1] }, using: 'keywords' });
    expect(points.map((p) => [p.id, p.score])).toEqual([
      [2, 2],
      [1, 0.5],
    ]);
  });

  it('fuses prefetches with rrf into the ranked union', async () => {
    const { points } = await client.query('search', {
      prefetch: [
        { query: [1, 0, 0, 0], using: 'text', limit: 2 },
        { query: { indices: [7, 5], values: [1, 0.1] }, using: 'keywords', limit: 2 },
      ],
      query: { fusion: 'rrf' },
    });
    // text: [1, 2]; keywords: [3 (1.0), 2 (0.2)]. RRF with k=2: 1/(rank+2) per list.
    expect(points.map((p) => [p.id, p.score])).toEqual([
      [2, expect.closeTo(1 / 3 + 1 / 3)],
      [1, expect.closeTo(1 / 2)],
      [3, expect.closeTo(1 / 2)],
    ]);
    const dbsf = await client.query('search', {
      prefetch: [
        { query: [1, 0, 0, 0], using: 'text', limit: 2 },
        { query: { indices: [7], values: [1] }, using: 'keywords', limit: 2 },
      ],
      query: { fusion: 'dbsf' },
    });
    expect(new Set(ids(dbsf.points))).toEqual(new Set([1, 2, 3]));
  });

  it('re-scores only the prefetched points, with the parent filter pushed into prefetches', async () => {
    const rescored = await client.query('search', {
      prefetch: { query: { indices: [5], values: [1] }, using: 'keywords', limit: 10 },
      query: [0, 1, 0, 0],
      using: 'text',
    });
    expect(ids(rescored.points)).toEqual([2, 1]);
    const filtered = await client.query('search', {
      prefetch: { query: [1, 0, 0, 0], using: 'text', limit: 10 },
      query: { fusion: 'rrf' },
      filter: { must: [{ key: 'group', match: { value: 'b' } }] },
    });
    expect(ids(filtered.points)).toEqual([2, 3]);
  });

  it('applies filter, score_threshold, offset and payload/vector selection', async () => {
    const filtered = await client.query('search', {
      query: [1, 0, 0, 0],
      using: 'text',
      filter: { must: [{ key: 'group', match: { value: 'a' } }] },
    });
    expect(ids(filtered.points)).toEqual([1]);

    const above = await client.query('search', { query: [1, 0, 0, 0], using: 'text', score_threshold: 0.5 });
    expect(ids(above.points)).toEqual([1, 2]);

    const all = ids((await client.query('search', { query: [1, 0.2, 0.3, 0.4], using: 'text', limit: 4 })).points);
    const first = ids((await client.query('search', { query: [1, 0.2, 0.3, 0.4], using: 'text', limit: 2 })).points);
    const second = ids((await client.query('search', { query: [1, 0.2, 0.3, 0.4], using: 'text', limit: 2, offset: 2 })).points);
    expect(first).toHaveLength(2);
    expect(second).toHaveLength(2);
    expect(first.filter((id) => second.includes(id))).toEqual([]);
    expect([...first, ...second]).toEqual(all);

    const selected = await client.query('search', {
      query: [1, 0, 0, 0],
      using: 'text',
      limit: 1,
      with_payload: { exclude: ['group'] },
      with_vector: ['traits'],
    });
    expect(selected.points[0]).toMatchObject({ id: 1, payload: {}, vector: { traits: [0, 0, 0] } });
  });

  it('rejects a query vector of the wrong dimension or an unknown vector name', async () => {
    await expectQdrantError(
      client.query('search', { query: [1, 0, 0], using: 'text' }),
      400,
      'Wrong input: Vector dimension error: expected dim: 4, got 3',
    );
    await expectQdrantError(client.query('search', { query: [1, 0, 0, 0], using: 'nope' }), 400, 'Not existing vector name error: nope');
    await expectQdrantError(client.query('search', { query: [1, 0, 0, 0] }), 400, 'Not existing vector name error');
  });

  it('answers query batches and the legacy search endpoint', async () => {
    const batch = await client.queryBatch('search', {
      searches: [
        { query: [1, 0, 0, 0], using: 'text', limit: 1 },
        { query: [0, 0, 0], using: 'traits', limit: 1 },
      ],
    });
    expect(batch.map((response) => ids(response.points))).toEqual([[1], [1]]);
    const legacy = await client.search('search', { vector: { name: 'text', vector: [0, 1, 0, 0] }, limit: 1 });
    expect(legacy.map((p) => [p.id, p.payload])).toEqual([[3, { group: 'b' }]]);
  });
});

describe('scroll and count', () => {
  beforeAll(async () => {
    await client.createCollection('pages', { vectors: { size: 1, distance: 'Dot' } });
    const order = [17, 3, 25, 1, 9, 12, 20, 5, 8, 2, 24, 11, 14, 6, 19, 22, 4, 13, 7, 16, 10, 23, 15, 21, 18];
    await client.upsert('pages', { points: order.map((id) => ({ id, vector: [id], payload: { even: id % 2 === 0 } })) });
  });

  it('pages through points in id order with next_page_offset', async () => {
    const seen: (string | number)[] = [];
    let offset: string | number | null | undefined = undefined;
    const offsets: unknown[] = [];
    do {
      const page: Awaited<ReturnType<QdrantClient['scroll']>> = await client.scroll('pages', { limit: 10, offset, with_payload: false });
      seen.push(...ids(page.points));
      offset = page.next_page_offset as string | number | null | undefined;
      offsets.push(offset);
    } while (offset !== null && offset !== undefined);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(offsets).toEqual([11, 21, null]);
  });

  it('filters scroll pages and counts exactly', async () => {
    const evens = await client.scroll('pages', { filter: { must: [{ key: 'even', match: { value: true } }] }, limit: 5 });
    expect(ids(evens.points)).toEqual([2, 4, 6, 8, 10]);
    expect(evens.next_page_offset).toBe(12);
    expect((await client.count('pages', { filter: { must: [{ key: 'even', match: { value: true } }] }, exact: true })).count).toBe(12);
    expect((await client.count('pages')).count).toBe(25);
  });
});

describe('api key', () => {
  let secured: QdrantServer;

  beforeAll(async () => {
    secured = await startQdrantServer({ port: 0, apiKey: 'sesame' });
  });

  afterAll(async () => {
    await secured?.close();
  });

  it('rejects requests without the key or with a wrong one, and serves health checks without it', async () => {
    const missing = await raw('GET', '/collections', undefined, {}, secured.url);
    expect(missing.status).toBe(401);
    expect(missing.text).toBe('Must provide an API key or an Authorization bearer token');
    const wrong = await raw('GET', '/collections', undefined, { 'api-key': 'open' }, secured.url);
    expect(wrong.status).toBe(401);
    expect(wrong.text).toBe('Invalid API key or JWT');
    expect((await raw('GET', '/healthz', undefined, {}, secured.url)).status).toBe(200);

    const keyed = new QdrantClient({ url: secured.url, checkCompatibility: false, headers: { 'api-key': 'sesame' } });
    expect((await keyed.getCollections()).collections).toEqual([]);
    const bearer = await raw('GET', '/collections', undefined, { authorization: 'Bearer sesame' }, secured.url);
    expect(bearer.status).toBe(200);
    const unkeyed = new QdrantClient({ url: secured.url, checkCompatibility: false });
    await expect(unkeyed.getCollections()).rejects.toMatchObject({ status: 401 });
  });
});

describe('persistence', () => {
  it('restores collections, points, indexes and aliases after a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'qdrant-local-'));
    try {
      const first = await startQdrantServer({ port: 0, dataDir });
      const before = new QdrantClient({ url: first.url, checkCompatibility: false });
      await before.createCollection('kept', { vectors: { size: 2, distance: 'Cosine' }, sparse_vectors: { words: {} } });
      await before.createCollection('dropped', { vectors: { size: 2, distance: 'Dot' } });
      await before.upsert('kept', {
        points: [
          { id: 1, vector: { '': [3, 4], words: { indices: [2], values: [1] } } as any, payload: { name: 'a' } },
          { id: 2, vector: [0, 1], payload: { name: 'b' } },
        ],
      });
      await before.createPayloadIndex('kept', { field_name: 'name', field_schema: 'keyword', wait: true });
      await before.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'kept', alias_name: 'kept_alias' } }] });
      await before.deleteCollection('dropped');
      await first.close();

      const second = await startQdrantServer({ port: 0, dataDir });
      try {
        const after = new QdrantClient({ url: second.url, checkCompatibility: false });
        expect((await after.getCollections()).collections).toEqual([{ name: 'kept' }]);
        const info = await after.getCollection('kept_alias');
        expect(info.points_count).toBe(2);
        expect(info.payload_schema).toEqual({ name: { data_type: 'keyword', points: 2 } });
        const { points } = await after.query('kept', { query: [0.6, 0.8], with_payload: true, with_vector: true });
        expect(points[0]).toMatchObject({ id: 1, payload: { name: 'a' }, vector: { '': [0.6, 0.8], words: { indices: [2], values: [1] } } });
        expect(points[0]?.score).toBeCloseTo(1);
        // Operation ids continue after the last one (upsert 0, index 1) instead of restarting at 0.
        const next = await after.upsert('kept', { points: [{ id: 3, vector: [1, 0] }] });
        expect(next.operation_id).toBe(2);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

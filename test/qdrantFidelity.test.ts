/**
 * Where the local Qdrant-compatible server once differed from Qdrant 1.19: each test states what
 * Qdrant does and cites the Qdrant source it comes from (paths in github.com/qdrant/qdrant).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePersonaCollection } from '../shared/vectorIndex/personaCollection';
import { useLocalQdrant } from './support/localQdrant';

const local = useLocalQdrant();
const raw = (method: string, path: string, body?: unknown) => local.raw(method, path, body);

describe('number and field output', () => {
  beforeAll(async () => {
    await local.client.createCollection('floats', {
      vectors: { dense: { size: 3, distance: 'Dot' } },
      sparse_vectors: { words: {} },
    });
    await local.client.upsert('floats', {
      wait: true,
      points: [
        { id: 1, vector: { dense: [1, 0, 0], words: { indices: [9, 2, 5], values: [3, 1, 2] } }, payload: { n: 1 } },
        { id: 2, vector: { dense: [0.1, 0.2, 0.3] }, payload: { n: 2 } },
      ],
    });
  });

  it('writes vectors and scores as floats (item 5)', async () => {
    // Qdrant: vectors (`VectorElementType = f32`) and scores (`ScoreType = f32`, lib/common/common/src/types.rs)
    // go through serde_json, which prints floats with ryu: `1.0`, never `1` (ryu src/pretty/mod.rs, format32).
    const retrieved = await raw('POST', '/collections/floats/points', { ids: [1], with_vector: true });
    expect(retrieved.text).toContain('"dense":[1.0,0.0,0.0]');
    expect(retrieved.text).toContain('"words":{"indices":[2,5,9],"values":[1.0,2.0,3.0]}');
    const scrolled = await raw('POST', '/collections/floats/points/scroll', { with_vector: ['dense'], limit: 1 });
    expect(scrolled.text).toContain('"vector":{"dense":[1.0,0.0,0.0]}');
    const queried = await raw('POST', '/collections/floats/points/query', { query: [1, 0, 0], using: 'dense', limit: 1 });
    expect(queried.text).toMatch(/"score":1\.0[,}]/);
    // `time` is an f64 and a float too, even when it rounds to zero.
    expect(queried.text).toMatch(/"time":\d+\.\d+(e-\d+)?[,}]|"time":\d(\.\d+)?e-\d+[,}]/);
  });

  it('rounds vectors and scores to f32 and prints their shortest f32 digits (item 12)', async () => {
    // Qdrant stores f32 and scores in f32 (lib/common/common/src/types.rs: `ScoreType = f32`), so 0.1
    // comes back as ryu's shortest f32 text "0.1" and a dot product of f32 values is an f32.
    const retrieved = await raw('POST', '/collections/floats/points', { ids: [2], with_vector: true });
    expect(retrieved.text).toContain('"dense":[0.1,0.2,0.3]');
    const queried = await raw('POST', '/collections/floats/points/query', { query: [0.1, 0.2, 0.3], using: 'dense', limit: 1 });
    // 0.1² + 0.2² + 0.3² = 0.14 in f64 (0.14000000000000001); as an f32 it prints as 0.14.
    expect(queried.text).toMatch(/"score":0\.14[,}]/);
  });

  it('leaves payload and vector out of points when they were not asked for (item 6)', async () => {
    // Qdrant: `ScoredPoint` and `Record` mark `payload` and `vector` with
    // `#[serde(skip_serializing_if = "Option::is_none")]` (lib/api/src/rest/schema.rs).
    const queried = await raw('POST', '/collections/floats/points/query', { query: [1, 0, 0], using: 'dense', limit: 1 });
    expect(Object.keys(queried.json.result.points[0]).sort()).toEqual(['id', 'score', 'version']);
    const retrieved = await raw('POST', '/collections/floats/points', { ids: [1], with_payload: false });
    expect(retrieved.json.result).toEqual([{ id: 1 }]);
    const scrolled = await raw('POST', '/collections/floats/points/scroll', { limit: 1 });
    expect(scrolled.json.result.points).toEqual([{ id: 1, payload: { n: 1 } }]);
  });

  it('sorts sparse vectors given with unsorted indices instead of rejecting them (item 11)', async () => {
    // Qdrant sorts a sparse vector by index when it is stored (`SparseVector::sort_by_indices`, called
    // from the sparse vector storage in lib/sparse/src/common/sparse_vector.rs) and answers queries
    // with unsorted indices the same as sorted ones.
    const stored = await raw('POST', '/collections/floats/points', { ids: [1], with_vector: ['words'] });
    expect(stored.json.result[0].vector.words).toEqual({ indices: [2, 5, 9], values: [1, 2, 3] });
    const unsorted = await local.client.query('floats', { query: { indices: [9, 2], values: [1, 1] }, using: 'words' });
    const sorted = await local.client.query('floats', { query: { indices: [2, 9], values: [1, 1] }, using: 'words' });
    expect(unsorted.points.map((point) => [point.id, point.score])).toEqual([[1, 4]]);
    expect(unsorted.points).toEqual(sorted.points);
  });

  it('reports a 40-character commit hash at / (item 12)', async () => {
    // Qdrant: `VersionInfo::commit` comes from the build's GIT_COMMIT_ID (lib/api/src/grpc/models.rs).
    const root = await raw('GET', '/');
    expect(root.json).toEqual({ title: 'qdrant - vector search engine', version: '1.19.0', commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });
});

describe('aliases', () => {
  beforeAll(async () => {
    for (const name of ['alias-a', 'alias-b']) await local.client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
  });

  const aliasesNamed = async (name: string) => (await local.client.getAliases()).aliases.filter((alias) => alias.alias_name === name);

  it('applies alias actions in order and keeps the earlier ones when a later one fails (item 2)', async () => {
    // Qdrant: `update_aliases` (lib/storage/src/content_manager/toc/collection_meta_ops.rs) loops over
    // the actions, saving each one (`AliasPersistence::insert/remove` in alias_mapping.rs) before
    // checking the next with `validate_collection_exists` (404 for a missing collection).
    await local.client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'alias-a', alias_name: 'current' } }] });
    const failed = await raw('POST', '/collections/aliases', {
      actions: [
        { create_alias: { collection_name: 'alias-b', alias_name: 'kept' } },
        { delete_alias: { alias_name: 'current' } },
        { create_alias: { collection_name: 'missing', alias_name: 'current' } },
        { create_alias: { collection_name: 'alias-b', alias_name: 'never' } },
      ],
    });
    expect(failed.status).toBe(404);
    expect(failed.json.status.error).toBe("Not found: Collection `missing` doesn't exist!");
    expect(await aliasesNamed('kept')).toEqual([{ alias_name: 'kept', collection_name: 'alias-b' }]);
    expect(await aliasesNamed('current')).toEqual([]);
    expect(await aliasesNamed('never')).toEqual([]);
    // create_alias re-points an alias that exists (AliasPersistence::insert overwrites), and deleting
    // an alias that does not exist is no error (AliasPersistence::remove returns Ok(None)).
    await local.client.updateCollectionAliases({
      actions: [{ delete_alias: { alias_name: 'no-such-alias' } }, { create_alias: { collection_name: 'alias-a', alias_name: 'kept' } }],
    });
    expect(await aliasesNamed('kept')).toEqual([{ alias_name: 'kept', collection_name: 'alias-a' }]);
  });

  it('answers 400 to creating a collection under an alias name (item 3)', async () => {
    // Qdrant: create_collection (lib/storage/src/content_manager/toc/create_collection.rs) checks
    // `check_alias_exists` and returns `StorageError::bad_input` (400), not "already exists" (409).
    await local.client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'alias-a', alias_name: 'taken' } }] });
    const created = await raw('PUT', '/collections/taken', { vectors: { size: 2, distance: 'Dot' } });
    expect(created.status).toBe(400);
    expect(created.json.status.error).toBe("Wrong input: Can't create collection with name taken. Alias with the same name already exists");
  });

  it('the product explains that 400 instead of treating it as "already created" (item 3)', async () => {
    // ensurePersonaCollection would create 'shop-v1' behind the alias 'shop'; here 'shop-v1' is an alias.
    await local.client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'alias-b', alias_name: 'shop-v1' } }] });
    const model = { id: 'test/model', revision: 'r1', dimension: 2, dtype: 'fp32' };
    await expect(ensurePersonaCollection(local.client, 'shop', model)).rejects.toThrow(
      "Cannot create the collection 'shop-v1' for 'shop': 'shop-v1' is an alias of 'alias-b'",
    );
    expect(await aliasesNamed('shop')).toEqual([]);
  });
});

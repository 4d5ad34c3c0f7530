/**
 * Where the local Qdrant-compatible server once differed from Qdrant 1.19: each test states what
 * Qdrant does and cites the Qdrant source it comes from (paths in github.com/qdrant/qdrant).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { formatF32 } from '../local/qdrant/floatJson';
import { ensurePersonaCollection } from '../shared/vectorIndex/personaCollection';
import { useLocalQdrant } from './support/localQdrant';
import { QdrantOpenApi } from './support/qdrantOpenApi';

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

  it('prints f32 values the way ryu does (item 5)', () => {
    // ryu's format32 (ryu src/pretty/mod.rs), which serde_json uses for f32: shortest round-trip
    // digits; plain notation with a ".0" for whole numbers up to 13 integer digits, "0.000dd" down
    // to 1e-6, scientific notation ("1e-7", "1.5e20") outside; halves round up.
    const cases: Array<[number, string]> = [
      [1, '1.0'], [0, '0.0'], [-0, '-0.0'], [0.1, '0.1'], [0.3, '0.3'], [-2.5, '-2.5'], [1 / 3, '0.33333334'],
      [16777216, '16777216.0'], [123456789, '123456790.0'], [1e12, '1000000000000.0'], [1e13, '1e13'],
      [1.5e20, '1.5e20'], [3.4028234663852886e38, '3.4028235e38'], [0.000001, '0.000001'], [1e-7, '1e-7'],
      [-1630933.75, '-1630933.8'], [Number.NaN, 'null'],
    ];
    for (const [value, text] of cases) expect(formatF32(value), String(value)).toBe(text);
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
    const model = { id: 'test/model', revision: 'r1', dimension: 2, dtype: 'fp32', pooling: 'cls', normalize: true, queryPrefix: '', documentPrefix: '' };
    await expect(ensurePersonaCollection(local.client, 'shop', model)).rejects.toThrow(
      "Cannot create the collection 'shop-v1' for 'shop': 'shop-v1' is an alias of 'alias-b'",
    );
    expect(await aliasesNamed('shop')).toEqual([]);
  });
});

describe('collection configuration', () => {
  it('keeps the default where a config diff says null, so GET answers the spec\'s integer (item 4)', async () => {
    // Qdrant: diff fields are `Option`s (`WalConfigDiff`, `HnswConfigDiff`, ... in
    // lib/collection/src/operations/config_diff.rs); `null` is `None` and keeps the default (32 MB WAL).
    const created = await raw('PUT', '/collections/nulls', {
      vectors: { size: 2, distance: 'Dot' },
      wal_config: { wal_capacity_mb: null },
      hnsw_config: { m: null, ef_construct: 64 },
    });
    expect(created.status).toBe(200);
    const info = (await raw('GET', '/collections/nulls')).json.result;
    expect(info.config.wal_config.wal_capacity_mb).toBe(32);
    expect(info.config.hnsw_config).toMatchObject({ m: 16, ef_construct: 64 });
    await raw('PATCH', '/collections/nulls', { optimizers_config: { indexing_threshold: null, deleted_threshold: 0.5 } });
    expect((await raw('GET', '/collections/nulls')).json.result.config.optimizer_config).toMatchObject({ indexing_threshold: 10000, deleted_threshold: 0.5 });
  });

  it('removes a metadata key that a PATCH sets to null (item 9)', async () => {
    // Qdrant: `UpdateCollection::metadata` (lib/storage/src/content_manager/collection_meta_ops.rs, as
    // published in openapi-v1.19.json): "merge with existing metadata. Individual keys can be removed
    // by setting their value to `null`".
    await raw('PUT', '/collections/meta', { vectors: { size: 2, distance: 'Dot' }, metadata: { keep: 1, drop: 'x' } });
    await raw('PATCH', '/collections/meta', { metadata: { drop: null, added: true } });
    expect((await raw('GET', '/collections/meta')).json.result.config.metadata).toEqual({ keep: 1, added: true });
  });

  it('refuses a shard_number of 0 (422) or below (400) (item 8)', async () => {
    // Qdrant: `CreateCollection::shard_number` is `Option<u32>` with `#[validate(range(min = 1))]`
    // (lib/storage/src/content_manager/collection_meta_ops.rs); validation errors are 422 and
    // deserialization errors 400 (`validation_error_handler` in src/actix/mod.rs).
    const zero = await raw('PUT', '/collections/shards', { vectors: { size: 2, distance: 'Dot' }, shard_number: 0 });
    expect(zero.status).toBe(422);
    expect(zero.json.status.error).toBe('Validation error in JSON body: [shard_number: value 0 invalid, must be 1 or larger]');
    const negative = await raw('PUT', '/collections/shards', { vectors: { size: 2, distance: 'Dot' }, shard_number: -1 });
    expect(negative.status).toBe(400);
    expect(negative.json.status.error).toMatch(/^Format error in JSON body: invalid value: integer `-1`, expected u32/);
    expect((await raw('GET', '/collections/shards/exists')).json.result.exists).toBe(false);
  });

  it('refuses an integer index with both lookup and range disabled (item 8)', async () => {
    // Qdrant: `validate_integer_index_params` (lib/segment/src/data_types/index.rs).
    await raw('PUT', '/collections/idx', { vectors: { size: 2, distance: 'Dot' } });
    const index = await raw('PUT', '/collections/idx/index?wait=true', { field_name: 'n', field_schema: { type: 'integer', lookup: false, range: false } });
    expect(index.status).toBe(422);
    expect(index.json.status.error).toContain("the 'lookup' and 'range' capabilities can't be both disabled");
    expect((await raw('GET', '/collections/idx')).json.result.payload_schema).toEqual({});
  });
});

describe('query and scroll requests', () => {
  beforeAll(async () => {
    await local.client.createCollection('ranked', {
      vectors: { text: { size: 2, distance: 'Cosine' }, traits: { size: 2, distance: 'Euclid' } },
    });
    await local.client.createPayloadIndex('ranked', { field_name: 'year', field_schema: 'integer', wait: true });
    await local.client.createPayloadIndex('ranked', { field_name: 'weight', field_schema: 'float', wait: true });
    await local.client.upsert('ranked', {
      wait: true,
      points: [
        { id: 1, vector: { text: [1, 0], traits: [0, 0] }, payload: { year: [2001, 2010], weight: 1 } },
        { id: 2, vector: { text: [0.9, 0.1], traits: [1, 1] }, payload: { year: 2005, weight: 2.5 } },
        { id: 3, vector: { text: [0, 1], traits: [2, 2] }, payload: { year: 1999 } },
      ],
    });
  });

  it('leaves the referenced point out of a query by id, also when the id is in a prefetch (item 1)', async () => {
    // Qdrant: `exclude_referenced_ids` adds `must_not: has_id` for every id used as a query, root or
    // nested (lib/collection/src/operations/universal_query/collection_query.rs).
    const byId = await local.client.query('ranked', { query: 1, using: 'text', limit: 3 });
    expect(byId.points.map((point) => point.id)).toEqual([2, 3]);
    const fused = await local.client.query('ranked', {
      prefetch: [
        { query: 1, using: 'text', limit: 3 },
        { query: [0, 0], using: 'traits', limit: 3 },
      ],
      query: { fusion: 'rrf' },
    });
    expect(fused.points.map((point) => point.id).sort()).toEqual([2, 3]);
  });

  it('refuses an unknown with_vector name and accepts the with_vectors spelling (item 7)', async () => {
    // Qdrant: a selected vector name the collection lacks is `VectorNameNotExists` (400, "Not existing
    // vector name error", lib/segment/src/common/operation_error.rs); `with_vector` carries
    // `#[serde(alias = "with_vectors")]` (lib/api/src/rest/schema.rs).
    for (const [path, body] of [
      ['/collections/ranked/points/query', { query: [1, 0], using: 'text', with_vector: ['nope'] }],
      ['/collections/ranked/points', { ids: [1], with_vector: ['nope'] }],
      ['/collections/ranked/points/scroll', { with_vector: ['nope'] }],
    ] as const) {
      const answer = await raw('POST', path, body);
      expect(answer.status, path).toBe(400);
      expect(answer.json.status.error).toBe('Wrong input: Not existing vector name error: nope');
    }
    const spelled = await raw('POST', '/collections/ranked/points/query', { query: [1, 0], using: 'text', limit: 1, with_vectors: ['traits'] });
    expect(spelled.json.result.points[0].vector).toEqual({ traits: [0, 0] });
    const scrolled = await raw('POST', '/collections/ranked/points/scroll', { limit: 1, with_vectors: true, with_payload: false });
    expect(scrolled.json.result.points[0].vector).toEqual({ text: [1, 0], traits: [0, 0] });
  });

  it('refuses prefetches or a score_threshold without a query, and fusion with `using` (item 8)', async () => {
    // Qdrant: `CollectionQueryRequest::validation` (lib/collection/src/operations/universal_query/collection_query.rs),
    // run for the root and each prefetch; `CollectionError::bad_request` is a 400 "Bad request".
    const cases: Array<[unknown, string]> = [
      [{ prefetch: [{ query: [1, 0], using: 'text' }] }, "A query is needed to merge the prefetches. Can't have prefetches without defining a query."],
      [{ prefetch: { prefetch: { query: [1, 0], using: 'text' } }, query: { fusion: 'rrf' } }, 'A query is needed to merge the prefetches.'],
      [{ score_threshold: 0.5 }, "A query is needed to use the score_threshold. Can't have score_threshold without defining a query."],
      [{ prefetch: { query: [1, 0], using: 'text' }, query: { fusion: 'rrf' }, using: 'text' }, "Fusion queries cannot be combined with the 'using' field."],
    ];
    for (const [body, message] of cases) {
      const answer = await raw('POST', '/collections/ranked/points/query', body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json.status.error).toContain(`Bad request: ${message}`);
    }
  });

  it('refuses a field condition with only a key (422) and accepts a limit of 2^64 − 1 (item 8)', async () => {
    // Qdrant: `FieldCondition` validation needs one condition besides `key` (lib/segment/src/types.rs),
    // a validator error, so 422; `limit` is a `usize`, so u64::MAX deserializes.
    const keyOnly = await raw('POST', '/collections/ranked/points/scroll', { filter: { must: [{ key: 'year' }] } });
    expect(keyOnly.status).toBe(422);
    expect(keyOnly.json.status.error).toContain('At least one field condition must be specified');
    const response = await fetch(`${local.server.url}/collections/ranked/points/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": [1, 0], "using": "text", "limit": 18446744073709551615}',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as any).result.points).toHaveLength(3);
  });

  it('lists a point once per value when scrolling with order_by on a multi-valued key (item 10)', async () => {
    // Qdrant: `Segment::filtered_read_by_index_ordered` (lib/segment/src/segment/order_by.rs) streams
    // the range index's (value, point) pairs, so point 1 ([2001, 2010]) comes twice.
    const ordered = await raw('POST', '/collections/ranked/points/scroll', { order_by: 'year', with_payload: false });
    expect(ordered.json.result.points.map((point: any) => [point.id, point.order_value])).toEqual([
      [3, 1999],
      [1, 2001],
      [2, 2005],
      [1, 2010],
    ]);
    const descending = await raw('POST', '/collections/ranked/points/scroll', { order_by: { key: 'year', direction: 'desc', start_from: 2005 }, with_payload: false });
    expect(descending.json.result.points.map((point: any) => [point.id, point.order_value])).toEqual([
      [2, 2005],
      [1, 2001],
      [3, 1999],
    ]);
    // A float index's order value is an f64, written as a float.
    const byWeight = await raw('POST', '/collections/ranked/points/scroll', { order_by: 'weight', with_payload: false });
    expect(byWeight.text).toContain('"order_value":1.0');
  });
});

/**
 * Differences the differential test against Qdrant Edge found (test/python/edge_differential.py,
 * run by test/qdrantEdge.test.ts). Edge is Qdrant's engine as a library, built from the same
 * `segment` and `shard` crates as the server; the figures quoted are Edge 0.9.0's answers.
 */
describe('found by the differential test against Qdrant Edge', () => {
  const idf = (n: number, df: number) => Math.log((n - df + 0.5) / (df + 0.5) + 1);

  beforeAll(async () => {
    await local.client.createCollection('corpus', {
      vectors: { d: { size: 2, distance: 'Dot' } },
      sparse_vectors: { kw: { modifier: 'idf' } },
    });
    await local.client.createPayloadIndex('corpus', { field_name: 't', field_schema: { type: 'keyword', is_tenant: true }, wait: true });
    await local.client.upsert('corpus', {
      wait: true,
      points: [
        { id: 1, vector: { kw: { indices: [1], values: [1] } }, payload: { t: 'a' } },
        { id: 2, vector: { kw: { indices: [], values: [] } }, payload: { t: 'a' } },
        { id: 3, vector: { kw: { indices: [1, 2], values: [1, 1] } }, payload: { t: 'b' } },
        { id: 4, vector: { d: [1, 0] }, payload: { t: 'a' } },
        { id: 5, vector: { kw: { indices: [2], values: [2] } }, payload: { t: 'a' } },
        { id: 6, vector: { kw: { indices: [1], values: [1] } }, payload: { t: 'b' } },
      ],
    });
  });

  const tenantA = { must: [{ key: 't', match: { value: 'a' } }] };
  const scores = async (body: object) =>
    Object.fromEntries(((await raw('POST', '/collections/corpus/points/query', { query: { indices: [1], values: [1] }, using: 'kw', ...body })).json.result.points as any[]).map((point) => [point.id, point.score]));

  it('computes IDF over the corpus filter given in params.idf (Qdrant 1.19)', async () => {
    // Qdrant: `fill_corpus_idf_statistics` and `collect_corpus_points`
    // (lib/segment/src/index/sparse_index/sparse_vector_index/read_view/idf.rs): N counts the corpus
    // points that have the vector, an empty one included (2, not 4), df the corpus points in the
    // term's posting list. Globally N leaves the empty vector out: N = 4, df(1) = 3.
    expect(await scores({})).toEqual({ 1: expect.closeTo(idf(4, 3), 5), 3: expect.closeTo(idf(4, 3), 5), 6: expect.closeTo(idf(4, 3), 5) });
    expect(await scores({ params: { idf: 'global' } })).toEqual(await scores({}));
    // Edge: 0.980829 = idf(3, 1) for every hit; the corpus does not filter the results.
    const corpus = await scores({ params: { idf: { corpus: tenantA } } });
    expect(corpus).toEqual({ 1: expect.closeTo(idf(3, 1), 5), 3: expect.closeTo(idf(3, 1), 5), 6: expect.closeTo(idf(3, 1), 5) });
    // With the same filter as its corpus, a tenant's scores do not move when another tenant writes.
    const own = { filter: tenantA, params: { idf: { corpus: tenantA } } };
    expect(await scores(own)).toEqual({ 1: expect.closeTo(idf(3, 1), 5) });
    await local.client.upsert('corpus', { wait: true, points: [{ id: 7, vector: { kw: { indices: [1], values: [1] } }, payload: { t: 'b' } }] });
    expect(await scores(own)).toEqual({ 1: expect.closeTo(idf(3, 1), 5) });
    expect(await scores({ filter: tenantA })).toEqual({ 1: expect.closeTo(idf(5, 4), 5) });
  });

  it('refuses params.idf on a vector without the IDF modifier instead of ignoring it', async () => {
    // Qdrant: `init_query_context` (lib/shard/src/query/query_context.rs) returns a validation error,
    // "search param `idf` requires a sparse vector with the `idf` modifier" (Edge raises the same text).
    const answer = await raw('POST', '/collections/corpus/points/query', { query: [1, 0], using: 'd', params: { idf: { corpus: tenantA } } });
    expect(answer.status).toBe(400);
    expect(answer.json.status.error).toContain('search param `idf` requires a sparse vector with the `idf` modifier, which vector "d" is not');
    const malformed = await raw('POST', '/collections/corpus/points/query', { query: { indices: [1], values: [1] }, using: 'kw', params: { idf: 'tenant' } });
    expect(malformed.status).toBe(400);
  });

  it('applies a payload update to the listed points that exist, then answers 404 for the first missing one', async () => {
    // Qdrant: `set_payload` and the other payload updates apply to the points found and then fail with
    // `check_unprocessed_points` (lib/collection/src/collection_manager/segments_updater.rs): "No point
    // with id 99 found", 404, and point 1 has the new key (Edge: the same, for [99, 1, 98]).
    await raw('PUT', '/collections/partial', { vectors: { size: 2, distance: 'Dot' } });
    await raw('PUT', '/collections/partial/points?wait=true', { points: [{ id: 1, vector: [1, 0], payload: { a: 1 } }] });
    const answer = await raw('POST', '/collections/partial/points/payload?wait=true', { points: [99, 1, 98], payload: { b: 2 } });
    expect(answer.status).toBe(404);
    expect(answer.json.status.error).toBe('Not found: No point with id 99 found');
    expect((await raw('POST', '/collections/partial/points', { ids: [1] })).json.result).toEqual([{ id: 1, payload: { a: 1, b: 2 } }]);
  });

  it('pushes a query\'s filter into its prefetches by merging clause lists, as Qdrant\'s planner does', async () => {
    // Qdrant: `recurse_prefetches` (lib/shard/src/query/planned_query.rs) pushes the root filter into
    // each prefetch with `Filter::merge_opts`, and `Filter::merge_owned` (lib/segment/src/types.rs)
    // appends clause lists: `must`/`must_not` stay an AND, but two `should` lists become one, and two
    // `min_should` one union of conditions with the larger `min_count` (qdrant/qdrant#10594, open).
    // Found by seed 3867187999: root `min_should: 1 of [{}]` (`{}` is an empty Filter condition, which
    // every point passes) let a prefetch's `min_should` on a tenant through. Edge 0.9.0 gives the ids below.
    await raw('PUT', '/collections/merged', { vectors: { d: { size: 2, distance: 'Dot' } } });
    await raw('PUT', '/collections/merged/points?wait=true', {
      points: [
        { id: 1, vector: { d: [1, 0] }, payload: { t: 'a', g: 'x' } },
        { id: 2, vector: { d: [0.9, 0.1] }, payload: { t: 'b', g: 'x' } },
        { id: 3, vector: { d: [0.8, 0.2] }, payload: { t: 'b', g: 'y' } },
      ],
    });
    const t = (value: string) => ({ key: 't', match: { value } });
    const g = (value: string) => ({ key: 'g', match: { value } });
    const ids = async (root: object, prefetch: object) => {
      const body = { prefetch: [{ query: [1, 0], using: 'd', limit: 10, filter: prefetch }], query: { fusion: 'rrf' }, filter: root };
      const answer = await raw('POST', '/collections/merged/points/query', body);
      expect(answer.status, answer.text).toBe(200);
      return (answer.json.result.points as Array<{ id: number }>).map((point) => point.id).sort();
    };
    expect(await ids({ should: [g('x')] }, { should: [t('a')] })).toEqual([1, 2]);
    expect(await ids({ min_should: { conditions: [{}], min_count: 1 } }, { min_should: { conditions: [t('a')], min_count: 1 } })).toEqual([1, 2, 3]);
    expect(await ids({ min_should: { conditions: [g('x'), t('a')], min_count: 2 } }, { min_should: { conditions: [t('b')], min_count: 1 } })).toEqual([1, 2]);
    expect(await ids({ must: [g('x')] }, { must: [t('a')] })).toEqual([1]);
    expect(await ids({ must_not: [g('y')] }, { should: [t('a')] })).toEqual([1]);
  });

  it('gives a datetime order_by value in microseconds', async () => {
    // Qdrant's datetime index keys are i64 microseconds since the epoch, and `order_value` is that key
    // (Edge: 1704067200000000 for 2024-01-01T00:00:00Z; 1704067200250000 with .250).
    await raw('PUT', '/collections/dated', { vectors: { size: 2, distance: 'Dot' } });
    await raw('PUT', '/collections/dated/index?wait=true', { field_name: 'at', field_schema: 'datetime' });
    await raw('PUT', '/collections/dated/points?wait=true', {
      points: [
        { id: 1, vector: [1, 0], payload: { at: '2024-01-01T00:00:00.250Z' } },
        { id: 2, vector: [1, 0], payload: { at: '2024-01-01T00:00:00Z' } },
      ],
    });
    const ordered = await raw('POST', '/collections/dated/points/scroll', { order_by: 'at', with_payload: false });
    expect(ordered.json.result.points).toEqual([
      { id: 2, order_value: 1704067200000000 },
      { id: 1, order_value: 1704067200250000 },
    ]);
  });
});

describe.skipIf(!QdrantOpenApi.available())('the OpenAPI check the contract suite applies', () => {
  it('resolves the document\'s refs and flags an answer Qdrant would never give (item 4)', async () => {
    // openapi-v1.19.json: `WalConfig.wal_capacity_mb` is an integer (format uint, minimum 1), reached
    // from the collection answer through #/components/schemas refs.
    const openApi = new QdrantOpenApi();
    const answer = await raw('GET', '/collections/nulls');
    const exchange = { method: 'GET', path: '/collections/nulls', status: 200, contentType: 'application/json', body: answer.text };
    expect(openApi.check(exchange)).toEqual([]);
    const broken = structuredClone(answer.json);
    broken.result.config.wal_config.wal_capacity_mb = null;
    expect(openApi.check({ ...exchange, body: JSON.stringify(broken) })).toContainEqual(
      expect.stringContaining('/result/config/wal_config/wal_capacity_mb must be integer'),
    );
    const scored = { method: 'POST', path: '/collections/c/points/query', status: 200, contentType: 'application/json' };
    const point = { id: 1, version: 0, score: 1 };
    expect(openApi.check({ ...scored, body: JSON.stringify({ result: { points: [point] }, status: 'ok', time: 0.1 }) })).toEqual([]);
    expect(openApi.check({ ...scored, body: JSON.stringify({ result: { points: [{ ...point, score: 'high' }] }, status: 'ok', time: 0.1 }) })).not.toEqual([]);
  });
});

describe('features the local server does not emulate', () => {
  it('answers a 400 that names the feature', async () => {
    // Qdrant itself supports these; the local server refuses them clearly instead of answering wrongly.
    await raw('PUT', '/collections/limits', { vectors: { size: 2, distance: 'Dot' } });
    const cases: Array<[string, unknown, string]> = [
      ['/collections/limits/points/query', { query: { recommend: { positive: [1] } } }, 'Recommend query'],
      ['/collections/limits/points/query', { query: { discover: { target: [1, 0], context: [] } } }, 'Discover query'],
      ['/collections/limits/points/query', { query: { formula: { sum: ['$score'] } }, prefetch: { query: [1, 0] } }, 'Formula query'],
      ['/collections/limits/points/query', { query: [[1, 0], [0, 1]] }, 'Multivector query'],
    ];
    for (const [path, body, feature] of cases) {
      const answer = await raw('POST', path, body);
      expect(answer.status, feature).toBe(400);
      expect(answer.json.status.error).toBe(`Bad request: ${feature} is not supported by the local Qdrant-compatible server`);
    }
  });
});

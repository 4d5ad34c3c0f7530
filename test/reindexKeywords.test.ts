import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEmbedder } from '../shared/embedding';
import { reindexCollection } from '../shared/operations/collectionReindex';
import { readAllPoints, resolveCollection } from '../shared/operations/indexReconciler';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { TRAIT_NAMES, type Persona } from '../shared/persona/schema';
import { keywordDocumentVector } from '../shared/vectorIndex/keywordVector';
import { KEYWORDS_VECTOR, PAYLOAD_INDEXES, TEXT_VECTOR, TRAITS_VECTOR } from '../shared/vectorIndex/personaCollection';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';
import { runCli, testStage } from './support/operationsHelpers';

/**
 * A collection built before the keywords vector existed gains it through the zero-downtime
 * reindex: searches through the API run the whole time and none fails; before the swap a search
 * without a mode runs as semantic, after it as hybrid.
 */
let env: Awaited<ReturnType<typeof startTestSystem>>;
let alias: string;

beforeAll(async () => {
  env = await startTestSystem();
  alias = env.collection!;
  // The collection as the indexer created it before: text and traits, no sparse vector (in place
  // of the empty one the system made at start).
  if ((await env.qdrant.collectionExists(alias)).exists) await env.qdrant.deleteCollection(await resolveCollection(env.qdrant, alias));
  const { model } = await getEmbedder();
  await env.qdrant.api().createCollection({
    collection_name: `${alias}-v1`,
    vectors: { [TEXT_VECTOR]: { size: model.dimension, distance: 'Cosine' }, [TRAITS_VECTOR]: { size: TRAIT_NAMES.length, distance: 'Euclid' } },
    metadata: { embedding_model: { ...model } },
  });
  for (const [field, schema] of PAYLOAD_INDEXES) await env.qdrant.createPayloadIndex(`${alias}-v1`, { field_name: field, field_schema: schema, wait: true });
  await env.qdrant.updateCollectionAliases({ actions: [{ create_alias: { collection_name: `${alias}-v1`, alias_name: alias } }] });
  for (const start of [0, 60]) {
    const created = await env.api('POST', '/personas/batch', { body: { personas: Array.from({ length: 60 }, (_, n) => samplePersona(start + n)) } });
    expect(created.status).toBe(200);
  }
  await env.system.streamWorker.drain(60_000);
});
afterAll(async () => {
  await env?.system.stop();
});

/** Default-mode searches, blend searches and similar requests until stopped; any non-200 or empty answer fails. */
function searchLoop(similarId: string) {
  const counts = { searches: 0, failed: 0, modes: new Set<string>(), failures: [] as string[] };
  let running = true;
  const requests: Array<() => Promise<{ status: number; json: any; text: string }>> = [
    () => env.api('POST', '/personas/search', { body: { query: 'a calm educator who loves physics' } }),
    () => env.api('POST', '/personas/search', { body: { mode: 'blend', query: 'a calm educator', traits: samplePersona(1).traits } }),
    () => env.api('GET', `/personas/${similarId}/similar?mode=blend&limit=5`),
  ];
  const loop = (async () => {
    for (let n = 0; running; n++) {
      try {
        const response = await requests[n % requests.length]!();
        if (response.status !== 200) throw new Error(`${response.status}: ${response.text.slice(0, 200)}`);
        if (response.json.items.length === 0) throw new Error('no results');
        counts.searches++;
        if (n % requests.length === 0) counts.modes.add(response.json.mode);
      } catch (error) {
        counts.failed++;
        if (counts.failures.length < 5) counts.failures.push((error as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return { counts, stop: async () => ((running = false), await loop) };
}

const search = (body: object) => env.api('POST', '/personas/search', { body });

describe('adding the keywords vector by reindex', () => {
  it('before the reindex: a search without mode runs as semantic, an explicit keyword search is a 409 that says to reindex', async () => {
    expect((await search({ query: 'a calm educator' })).json).toMatchObject({ mode: 'semantic', score_type: 'cosine_similarity' });
    const keyword = await search({ mode: 'keyword', query: 'educator' });
    expect(keyword.status).toBe(409);
    expect(keyword.json.type).toBe('https://persona-db.dev/problems/keywords-not-indexed');
    expect(keyword.json.detail).toContain('personas reindex');
    const points = await readAllPoints(env.qdrant, alias);
    expect(points).toHaveLength(120);
  });

  it('builds a collection with keywords while searches run (0 failed), then searches are hybrid and keyword works', async () => {
    const stage = await testStage();
    const from = await resolveCollection(env.qdrant, alias);
    const [first] = await readAllPoints(env.qdrant, alias);
    const searches = searchLoop(String(first!.id));
    let report: Awaited<ReturnType<typeof reindexCollection>>;
    try {
      report = await reindexCollection({ repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder: await getEmbedder() });
      // Searches go on a little after the swap too.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    } finally {
      await searches.stop();
    }
    console.log(`[reindex keywords] ${JSON.stringify(report)}; searches ${JSON.stringify({ ...searches.counts, modes: [...searches.counts.modes] })}`);
    expect(searches.counts.failures).toEqual([]);
    expect(searches.counts.failed).toBe(0);
    expect(searches.counts.searches).toBeGreaterThan(20);
    expect([...searches.counts.modes].sort()).toEqual(['hybrid', 'semantic']);
    expect(report.from.collection).toBe(from);
    expect(await resolveCollection(env.qdrant, alias)).toBe(report.to.collection);

    // Every point of the new collection carries the keywords of its persona's current text.
    const info = await env.qdrant.getCollection(alias);
    expect(info.config.params.sparse_vectors).toEqual({ [KEYWORDS_VECTOR]: { modifier: 'idf' } });
    const personas = new Map((await stage.repository.getMany((await readAllPoints(env.qdrant, alias)).map((point) => String(point.id)))).entries());
    const stored = await env.qdrant.scroll(alias, { limit: 1000, with_vector: [KEYWORDS_VECTOR] });
    expect(stored.points).toHaveLength(120);
    for (const point of stored.points) {
      const expected = keywordDocumentVector(personaEmbeddingText(personas.get(String(point.id)) as Persona));
      const actual = (point.vector as Record<string, { indices: number[]; values: number[] }>)[KEYWORDS_VECTOR]!;
      expect(actual.indices).toEqual(expected.indices);
      actual.values.forEach((value, i) => expect(value).toBeCloseTo(expected.values[i]!, 5));
    }

    expect((await search({ query: 'a calm educator' })).json).toMatchObject({ mode: 'hybrid', score_type: 'rrf' });
    const keyword = await search({ mode: 'keyword', query: samplePersona(7).name });
    expect(keyword.status).toBe(200);
    expect(keyword.json.items[0].name).toBe(samplePersona(7).name);
  }, 240_000);

  it('the indexer then writes all three vectors: a traits-only change keeps text and keywords without embedding, a text change renews both', async () => {
    const [point] = (await env.qdrant.scroll(alias, { limit: 1, with_payload: true })).points;
    const id = String(point!.id);
    const vectorsOf = async () => (await env.qdrant.retrieve(alias, { ids: [id], with_vector: true }))[0]!.vector as Record<string, any>;
    const before = await vectorsOf();
    const embedder = await getEmbedder();
    const calls = embedder.stats.calls;

    const traits = await env.api('PATCH', `/personas/${id}`, { body: { traits: { openness: 0.01 } }, headers: { 'content-type': 'application/merge-patch+json' } });
    expect(traits.status).toBe(200);
    await env.system.streamWorker.drain(30_000);
    const afterTraits = await vectorsOf();
    expect(embedder.stats.calls).toBe(calls);
    expect(afterTraits[TRAITS_VECTOR][0]).toBeCloseTo(0.01, 5);
    // Kept, not recomputed by the model (equal up to the f32 round trip of the stored values).
    const close = (a: number[], b: number[]) => a.length === b.length && a.every((value, i) => Math.abs(value - b[i]!) < 1e-6);
    expect(afterTraits[KEYWORDS_VECTOR].indices).toEqual(before[KEYWORDS_VECTOR].indices);
    expect(close(afterTraits[KEYWORDS_VECTOR].values, before[KEYWORDS_VECTOR].values)).toBe(true);
    expect(close(afterTraits[TEXT_VECTOR], before[TEXT_VECTOR])).toBe(true);

    const text = await env.api('PATCH', `/personas/${id}`, { body: { beliefs: ['Saxophone solos at midnight'] }, headers: { 'content-type': 'application/merge-patch+json' } });
    expect(text.status).toBe(200);
    await env.system.streamWorker.drain(30_000);
    const afterText = await vectorsOf();
    expect(embedder.stats.calls).toBe(calls + 1);
    expect(close(afterText[TEXT_VECTOR], before[TEXT_VECTOR])).toBe(false);
    const renewed = keywordDocumentVector(personaEmbeddingText(text.json));
    expect(afterText[KEYWORDS_VECTOR].indices).toEqual(renewed.indices);
    expect(close(afterText[KEYWORDS_VECTOR].values, renewed.values)).toBe(true);
    const found = await search({ mode: 'keyword', query: 'saxophone' });
    expect(found.json.items.map((item: { id: string }) => item.id)).toEqual([id]);
  }, 120_000);

  it('`personas search` prints the ranking of each mode, with explain and RRF weights, and the neighbours of a persona', async () => {
    const api = ['--api-url', env.system.apiUrl];
    const keyword = await runCli(['search', samplePersona(7).name as string, '--mode', 'keyword', '--explain', ...api]);
    expect(keyword.code, keyword.stderr).toBe(0);
    const lines = keyword.stdout.trim().split('\n');
    expect(lines[0]).toBe('mode keyword, score bm25');
    expect(lines[1]).toMatch(new RegExp(`^  1\\. \\d+\\.\\d{4}  ${samplePersona(7).name}  [0-9a-f-]{36}  \\(keyword #1 \\d+\\.\\d{4}\\)$`));

    const hybrid = await runCli(['search', 'a calm educator', '--fusion', 'dbsf', '--limit', '3', '--json', ...api]);
    expect(hybrid.code, hybrid.stderr).toBe(0);
    expect(JSON.parse(hybrid.stdout)).toMatchObject({ mode: 'hybrid', score_type: 'dbsf', items: [{}, {}, {}] });

    const [point] = (await env.qdrant.scroll(alias, { limit: 1 })).points;
    const similar = await runCli(['search', '--similar', String(point!.id), '--mode', 'blend', '--limit', '2', '--json', ...api]);
    expect(similar.code, similar.stderr).toBe(0);
    expect(JSON.parse(similar.stdout)).toMatchObject({ mode: 'blend', score_type: 'rrf', items: [{}, {}] });

    // RRF weights: the fused score of each hit is Qdrant's weighted RRF of the ranks explain reports
    // (1 / (rank / w + k − 1), k = 2; lib/segment/src/common/reciprocal_rank_fusion.rs).
    const weights = { semantic: 2, keyword: 0.5 };
    for (const args of [['a calm educator'], ['--similar', String(point!.id)]]) {
      const weighted = await runCli(['search', ...args, '--weights', 'semantic=2,keyword=0.5', '--explain', '--limit', '5', '--json', ...api]);
      expect(weighted.code, weighted.stderr).toBe(0);
      const answer = JSON.parse(weighted.stdout) as { mode: string; items: Array<{ score: number; explain: Record<'semantic' | 'keyword', { rank: number | null }> }> };
      expect(answer.mode).toBe('hybrid');
      for (const item of answer.items) {
        const expected = (['semantic', 'keyword'] as const).reduce((sum, ranking) => {
          const rank = item.explain[ranking].rank;
          return sum + (rank === null ? 0 : 1 / (rank / weights[ranking] + 1));
        }, 0);
        expect(item.score).toBeCloseTo(expected, 6);
      }
    }

    const bad = await runCli(['search', '--traits', '0.5,0.5', ...api]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--traits takes 5 numbers');
  }, 120_000);
});

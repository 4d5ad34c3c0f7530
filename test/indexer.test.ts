import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DynamoDBRecord } from 'aws-lambda';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import type { Persona } from '../shared/persona/schema';
import { findDrift, scrollPoints, type IndexedPoint } from '../shared/vectorIndex/indexDrift';
import { ensurePersonaCollection, modelLabel } from '../shared/vectorIndex/personaCollection';
import { personaPayload } from '../shared/vectorIndex/personaPoint';
import { handler as indexerHandler } from '../functions/indexer/handler';
import { lambdaContext } from '../local/lambdaEvent';
import { einstein, samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

let env: Awaited<ReturnType<typeof startTestSystem>>;
/** Every stream record the indexer was given, for replays. */
const seenRecords: DynamoDBRecord[] = [];

beforeAll(async () => {
  env = await startTestSystem({
    wrapIndexer: (handler) => async (event) => {
      seenRecords.push(...event.Records);
      return handler(event);
    },
  });
});
afterAll(() => env.system.stop());

const mergePatch = { 'content-type': 'application/merge-patch+json' };

async function tableState(): Promise<Persona[]> {
  const config = tableConfig();
  const repository = personaRepositoryFor(config);
  const personas: Persona[] = [];
  for await (const page of repository.scanAll()) personas.push(...page);
  return personas;
}

async function indexState(): Promise<IndexedPoint[]> {
  const points: IndexedPoint[] = [];
  for await (const page of scrollPoints(env.qdrant, env.collection)) points.push(...page);
  return points;
}

async function drift() {
  const embedder = await getEmbedder();
  return findDrift(await tableState(), await indexState(), modelLabel(embedder.model));
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<{ value: T; elapsedMs: number }> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return { value, elapsedMs: Date.now() - started };
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The stored text vector may be renormalised on write; same vector means cosine 1. */
function expectSameDirection(a: number[], b: number[]) {
  const dot = a.reduce((sum, value, index) => sum + value * b[index]!, 0);
  expect(dot).toBeCloseTo(1, 6);
}

const pointOf = async (id: string) => (await env.qdrant.retrieve(env.collection, { ids: [id], with_payload: true, with_vector: true }))[0];

describe('indexer through the local runtime', () => {
  it('mirrors a created persona into Qdrant with the same version and payload, and removes it after DELETE', async () => {
    await getEmbedder(); // the warm container: the model is loaded once, before the timed write
    await env.system.streamWorker.drain();
    const created = await env.api('POST', '/personas', { body: einstein });
    const persona = created.json as Persona;
    const { value: point, elapsedMs } = await waitFor(async () => {
      const found = await pointOf(persona.id);
      return found?.payload?.version === persona.version ? found : undefined;
    }, 5_000);
    expect(elapsedMs).toBeLessThan(1_000);
    const embedder = await getEmbedder();
    expect(point.payload).toEqual(personaPayload(persona, modelLabel(embedder.model)));
    const vectors = point.vector as Record<string, number[]>;
    expect(vectors.text).toHaveLength(embedder.model.dimension);
    expect(vectors.traits).toEqual([0.95, 0.72, 0.3, 0.7, 0.25]);

    expect((await env.api('DELETE', `/personas/${persona.id}`)).status).toBe(204);
    await waitFor(async () => ((await pointOf(persona.id)) ? undefined : true), 5_000);
  });

  it('re-embeds on a text change, but a change to traits only makes no embedding call', async () => {
    const embedder = await getEmbedder();
    const persona = (await env.api('POST', '/personas', { body: samplePersona(7) })).json as Persona;
    await env.system.streamWorker.drain();
    const before = (await pointOf(persona.id))!;
    const callsBefore = embedder.stats.calls;
    const textsBefore = embedder.stats.texts;

    const patched = await env.api('PATCH', `/personas/${persona.id}`, { body: { traits: { openness: 0.01 } }, headers: mergePatch });
    expect(patched.status).toBe(200);
    await env.system.streamWorker.drain();
    const after = (await pointOf(persona.id))!;
    expect(after.payload?.version).toBe(2);
    expect((after.payload?.traits as Record<string, number>).openness).toBe(0.01);
    expect((after.vector as Record<string, number[]>).traits?.[0]).toBe(0.01);
    expectSameDirection((after.vector as Record<string, number[]>).text!, (before.vector as Record<string, number[]>).text!);
    expect(embedder.stats.calls).toBe(callsBefore);
    expect(embedder.stats.texts).toBe(textsBefore);

    await env.api('PATCH', `/personas/${persona.id}`, { body: { beliefs: ['entirely new conviction'] }, headers: mergePatch });
    await env.system.streamWorker.drain();
    expect(embedder.stats.texts).toBe(textsBefore + 1);
    expect((await pointOf(persona.id))!.payload?.version).toBe(3);
  });

  it('ends with the point present when a persona is deleted and a batch re-creates the same id', async () => {
    const key = `recreate-${Date.now()}`;
    const body = { personas: [samplePersona(42)] };
    const first = await env.api('POST', '/personas/batch', { body, headers: { 'idempotency-key': key } });
    const id = first.json.results[0].id as string;
    await env.api('PATCH', `/personas/${id}`, { body: { name: 'bumped' }, headers: mergePatch });
    await env.api('PATCH', `/personas/${id}`, { body: { name: 'bumped again' }, headers: mergePatch });
    await env.api('DELETE', `/personas/${id}`);
    await env.system.streamWorker.drain();
    expect(await pointOf(id)).toBeUndefined();
    // The idempotency record of the first batch still replays; a new key with the same derivation is not possible,
    // so re-create through the repository as an operator restore would, at version 1.
    const config = tableConfig();
    const repository = personaRepositoryFor(config);
    const now = new Date().toISOString();
    await repository.create({ ...(samplePersona(42) as Omit<Persona, 'id' | 'version' | 'created_at' | 'updated_at'>), id, version: 1, created_at: now, updated_at: now } as Persona);
    await env.system.streamWorker.drain();
    expect((await pointOf(id))?.payload?.version).toBe(1);
    expect(await drift()).toEqual([]);
  });

  it('leaves Qdrant equal to DynamoDB after replaying random subsets of old records in random order', async () => {
    for (let n = 0; n < 12; n++) {
      const persona = (await env.api('POST', '/personas', { body: samplePersona(100 + n) })).json as Persona;
      if (n % 3 === 0) await env.api('PATCH', `/personas/${persona.id}`, { body: { name: `renamed ${n}` }, headers: mergePatch });
      if (n % 4 === 0) await env.api('PATCH', `/personas/${persona.id}`, { body: { traits: { neuroticism: 0.9 } }, headers: mergePatch });
      if (n % 5 === 0) await env.api('DELETE', `/personas/${persona.id}`);
    }
    await env.system.streamWorker.drain();
    expect(await drift()).toEqual([]);
    expect(seenRecords.length).toBeGreaterThan(20);

    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 10; round++) {
      const subset = seenRecords.filter(() => random() < 0.4).sort(() => random() - 0.5);
      for (let start = 0; start < subset.length; start += 7) {
        const response = await indexerHandler({ Records: subset.slice(start, start + 7) }, lambdaContext('indexer'));
        expect(response.batchItemFailures).toEqual([]);
      }
      expect(await drift()).toEqual([]);
    }
  });

  it('publishes the sync lag and per-outcome counts as CloudWatch EMF metrics', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const persona = (await env.api('POST', '/personas', { body: samplePersona(300) })).json as Persona;
      await env.system.streamWorker.drain();
      await env.api('PATCH', `/personas/${persona.id}`, { body: { traits: { agreeableness: 0.11 } }, headers: mergePatch });
      await env.system.streamWorker.drain();
    } finally {
      spy.mockRestore();
    }
    const documents = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const total = (name: string) => documents.reduce((sum, document) => sum + [document[name] ?? []].flat().reduce((a: number, b) => a + Number(b), 0), 0);
    expect(documents.length).toBeGreaterThanOrEqual(2);
    const metricNames = documents.flatMap((document) => (document._aws as { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> }).CloudWatchMetrics[0]!.Metrics.map((metric) => metric.Name));
    expect(new Set(metricNames)).toEqual(new Set(['SyncLag', 'RecordsEmbedded', 'RecordsPayloadOnly', 'RecordsDeleted', 'RecordsSkippedStale', 'RecordsFailed']));
    expect(total('RecordsEmbedded')).toBeGreaterThanOrEqual(1);
    expect(total('RecordsPayloadOnly')).toBeGreaterThanOrEqual(1);
    const lags = documents.flatMap((document) => [document.SyncLag ?? []].flat().map(Number));
    expect(lags.length).toBeGreaterThanOrEqual(2);
    for (const lag of lags) expect(lag).toBeLessThan(5_000);
  });

  it('keeps one collection behind the alias: named vectors, payload indexes, model metadata; never recreated', async () => {
    const embedder = await getEmbedder();
    const before = await env.qdrant.getCollection(env.collection);
    expect(before.points_count).toBeGreaterThan(0);
    const vectors = before.config.params.vectors as Record<string, { size: number; distance: string }>;
    expect(vectors.text).toMatchObject({ size: embedder.model.dimension, distance: 'Cosine' });
    expect(vectors.traits).toMatchObject({ size: 5, distance: 'Euclid' });
    expect(Object.keys(before.payload_schema).sort()).toEqual(
      ['domain', 'emotional_style', 'humor_usage', 'modes', 'tenant_id', 'traits.agreeableness', 'traits.conscientiousness', 'traits.extraversion', 'traits.neuroticism', 'traits.openness', 'version'].sort(),
    );
    // The tenant field is indexed for Qdrant's payload-based multitenancy (https://qdrant.tech/documentation/manage-data/multitenancy/).
    expect(before.payload_schema.tenant_id).toMatchObject({ data_type: 'keyword', params: { type: 'keyword', is_tenant: true } });
    expect((before.config as { metadata?: { embedding_model?: unknown } }).metadata?.embedding_model).toMatchObject({ id: embedder.model.id, dimension: embedder.model.dimension });

    // A new cold start finds the collection and keeps every point.
    const physical = await ensurePersonaCollection(env.qdrant, env.collection, embedder.model);
    expect(physical).toBe(`${env.collection}-v1`);
    expect((await env.qdrant.getCollection(env.collection)).points_count).toBe(before.points_count);
    // The collection records how its vectors were made, pooling and prompts included.
    expect((before.config as { metadata?: { embedding_model?: unknown } }).metadata?.embedding_model).toEqual({ ...embedder.model });
    // A different model is refused instead of being mixed in; so is the same model pooled, normalised or prompted otherwise.
    for (const other of [
      { id: 'another/model' },
      { pooling: 'mean' },
      { normalize: false },
      { queryPrefix: '' },
      { documentPrefix: 'passage: ' },
    ]) {
      await expect(ensurePersonaCollection(env.qdrant, env.collection, { ...embedder.model, ...other }), JSON.stringify(other)).rejects.toThrow(/reindex/);
    }
  });
});

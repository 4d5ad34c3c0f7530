import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEmbedder, type Embedder } from '../shared/embedding';
import { personaInputSchema, type Persona } from '../shared/persona/schema';
import { ensurePersonaCollection } from '../shared/vectorIndex/personaCollection';
import { syncPersonaChanges } from '../shared/vectorIndex/syncPersonaChanges';
import { startTestSystem } from './support/localSystem';
import { pastryChef } from './support/searchFixtures';
import { GLOVE_MODEL_DIR, sharedReason } from './support/sharedAssets';

/**
 * What a word-level model does that a sentence encoder never does: a text of only words it does not
 * know has a zero embedding. ../shared/models/glove-sif-50d (GloVe + SIF, mean pooling, no prompts)
 * is the point here, through the whole local system: such a query is the client's to rephrase (422),
 * and such a persona fails alone in the indexer. Meaning itself is judged with a sentence encoder
 * (test/searchRealModel.test.ts, test/searchQuality.test.ts).
 */

let env: Awaited<ReturnType<typeof startTestSystem>>;
let embedder: Embedder;
beforeAll(async () => {
  if (!GLOVE_MODEL_DIR) return;
  env = await startTestSystem({}, { modelDir: GLOVE_MODEL_DIR });
  embedder = await getEmbedder();
});
afterAll(() => env?.system.stop());

describe.skipIf(!GLOVE_MODEL_DIR)(`zero embeddings of a word model through the API ${sharedReason(GLOVE_MODEL_DIR, 'models/glove-sif-50d')}`, () => {
  it('answers a query of only unknown words with a 422 problem at #/query, and a blank query with a 400', async () => {
    const unknown = await env.api('POST', '/personas/search', { body: { query: 'qwzxv blorftish zzyzzx' } });
    expect(unknown.status, unknown.text).toBe(422);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(unknown.json).toMatchObject({ type: expect.stringMatching(/\/query-not-embeddable$/), status: 422, errors: [{ pointer: '#/query' }] });
    for (const blank of ['   ', '\t\n', '\u3000\u00a0']) {
      const response = await env.api('POST', '/personas/search', { body: { query: blank } });
      expect(response.status, JSON.stringify(blank)).toBe(400);
      expect(response.json).toMatchObject({ errors: [{ pointer: '#/query' }] });
    }
  });

  it('fails only the persona whose text has a zero embedding; the others of the indexer batch sync', async () => {
    // Every persona text carries words this model knows ("expertise", "."), so the zero vector is
    // brought about by turning one persona's text into unknown words on its way to the real model.
    // A collection of its own, out of the stream worker's way.
    const collection = await ensurePersonaCollection(env.qdrant, `${env.collection}-poison`, embedder.model);
    const now = new Date().toISOString();
    const batch: Persona[] = ['Poisoned', 'Healthy One', 'Healthy Two'].map((name, index) => ({
      id: `00000000-0000-4000-8000-0000000001${index}0`,
      ...personaInputSchema.parse({ ...pastryChef, name }),
      version: 1,
      created_at: now,
      updated_at: now,
    }));
    const poisoned = batch[0]!;
    const report = await syncPersonaChanges(
      {
        readPersonas: async (ids) => new Map(batch.filter((persona) => ids.includes(persona.id)).map((persona) => [persona.id, persona])),
        qdrant: env.qdrant,
        collection,
        embedder: {
          model: embedder.model,
          embedDocuments: (texts) => embedder.embedDocuments(texts.map((text) => (text.startsWith('Poisoned') ? 'qwzxv blorftish' : text))),
        },
      },
      batch.map((persona) => ({ recordId: `record-${persona.id}`, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
    );
    expect(Object.fromEntries(report.actions)).toEqual({ [poisoned.id]: 'failed', [batch[1]!.id]: 'embedded', [batch[2]!.id]: 'embedded' });
    expect([...report.failedRecordIds]).toEqual([`record-${poisoned.id}`]);
    expect(report.errors.get(poisoned.id)?.message).toMatch(/cannot be embedded/);
    const points = await env.qdrant.retrieve(collection, { ids: batch.map((persona) => persona.id) });
    expect(points.map((point) => String(point.id)).sort()).toEqual([batch[1]!.id, batch[2]!.id].sort());
  });
});

/**
 * POST /personas/search latency at a given index size, and the query embedding's share of it.
 */
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { Embedder } from '../shared/embedding';
import { ensurePersonaCollection, modelLabel, TEXT_VECTOR, TRAITS_VECTOR } from '../shared/vectorIndex/personaCollection';
import { personaPayload, traitsVector } from '../shared/vectorIndex/personaPoint';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { apiClient } from '../test/support/apiClient';
import { summarize, type LatencySummary } from './latencyStats';
import { benchQueries, benchStoredPersona } from './personaCorpus';

export interface SearchLatencyResult {
  points: number;
  /** How the index was filled. */
  seededBy: 'api-import' | 'direct-qdrant-upsert';
  requests: number;
  /** Whole request, as the client sees it (sequential requests, limit 10, semantic mode). */
  requestMs: LatencySummary;
  /** embedQuery alone on the same queries, in the bench process (same model and settings). */
  embedQueryMs: LatencySummary;
  /** p50 embedQuery / p50 request. */
  embeddingShareOfP50: number;
  /** The vector search alone, straight to Qdrant from the bench process (same query vectors, limit 11, full payload). */
  qdrantQueryMs: LatencySummary;
}

export async function measureSearchLatency(
  apiUrl: string,
  embedder: Embedder,
  qdrant: QdrantClient,
  collection: string,
  options: { points: number; seededBy: SearchLatencyResult['seededBy']; requests: number; warmup: number },
): Promise<SearchLatencyResult> {
  const api = apiClient(apiUrl);
  const queries = benchQueries(options.requests);
  // Warm-up: the first request loads the search handler and its model, which is cold start, not latency.
  for (const query of queries.slice(0, options.warmup)) await api('POST', '/personas/search', { body: { query } });
  const requestMs: number[] = [];
  for (const query of queries) {
    const started = performance.now();
    const response = await api('POST', '/personas/search', { body: { query, limit: 10 } });
    requestMs.push(performance.now() - started);
    if (response.status !== 200 || response.json.items.length === 0) throw new Error(`search answered ${response.status} with ${response.json?.items?.length} items: ${response.text.slice(0, 300)}`);
  }
  const embedMs: number[] = [];
  const vectors: number[][] = [];
  for (const query of queries.slice(0, options.warmup)) await embedder.embedQuery(query);
  for (const query of queries) {
    const started = performance.now();
    vectors.push(await embedder.embedQuery(query));
    embedMs.push(performance.now() - started);
  }
  const qdrantMs: number[] = [];
  for (const vector of vectors) {
    const started = performance.now();
    await qdrant.query(collection, { query: vector, using: TEXT_VECTOR, limit: 11, with_payload: true });
    qdrantMs.push(performance.now() - started);
  }
  const request = summarize(requestMs);
  const embed = summarize(embedMs);
  return {
    points: options.points,
    seededBy: options.seededBy,
    requests: queries.length,
    requestMs: request,
    embedQueryMs: embed,
    embeddingShareOfP50: Math.round((embed.p50 / request.p50) * 1000) / 1000,
    qdrantQueryMs: summarize(qdrantMs),
  };
}

/**
 * Fills the collection behind `alias` with `count` personas without going through the API (too
 * slow for 100k): points built by the production code (personaPayload, traitsVector and
 * embedDocuments), `batchSize` points an upsert. Only the first `embedLimit` personas are
 * embedded; later ones reuse those vectors in turn (a slow real model would need an hour for
 * 100k; the local server's exact search costs the same whatever the vectors are).
 */
export async function seedIndexDirectly(
  qdrant: QdrantClient,
  alias: string,
  embedder: Embedder,
  options: { count: number; embedLimit: number; batchSize?: number; vectors?: number[][] },
): Promise<{ seconds: number; embedded: number }> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 500;
  await ensurePersonaCollection(qdrant, alias, embedder.model);
  const label = modelLabel(embedder.model);
  // Vectors of an earlier seeding of the same personas are reused, not embedded again.
  const embedded: number[][] = options.vectors ?? [];
  for (let from = 0; from < options.count; from += batchSize) {
    const personas = Array.from({ length: Math.min(batchSize, options.count - from) }, (_, i) => benchStoredPersona(from + i));
    const toEmbed = personas.filter((_, i) => from + i < options.embedLimit && from + i >= embedded.length);
    if (toEmbed.length > 0) embedded.push(...(await embedder.embedDocuments(toEmbed.map(personaEmbeddingText))));
    await qdrant.upsert(alias, {
      wait: true,
      points: personas.map((persona, i) => ({
        id: persona.id,
        vector: { [TEXT_VECTOR]: embedded[(from + i) % embedded.length]!, [TRAITS_VECTOR]: traitsVector(persona) },
        payload: { ...personaPayload(persona, label) },
      })),
    });
  }
  return { seconds: Math.round((performance.now() - started) / 100) / 10, embedded: embedded.length };
}

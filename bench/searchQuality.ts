/**
 * Retrieval quality of the search modes on real personas (../shared/data/personas) with a real
 * (small) model (../shared/models/glove-sif-50d): every persona indexed by the indexer's own sync
 * into the local Qdrant server, then for each dev pair (a, b) the product's search (query = a's
 * text) and similar (of a) are asked for the top 100, and the rank of b is recorded (a itself is
 * ignored). Keyword, semantic and hybrid with RRF and with DBSF, the same index for all. A persona
 * that is `a` of several pairs is asked once per variant: the rank of each of its `b` is read off
 * the same answer.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startQdrantServer } from '../local/qdrant/server';
import { PROJECT_ROOT } from '../infra/bundling';
import { createEmbedder } from '../shared/embedding';
import type { PersonaRepository } from '../shared/persona/personaRepository';
import type { Persona } from '../shared/persona/schema';
import { findSimilarPersonas, searchPersonas, type SearchDeps } from '../shared/search/personaSearch';
import { DEFAULT_RRF_WEIGHTS, type Fusion, type Ranking, type SearchMode } from '../shared/search/searchRequest';
import type { SearchResults } from '../shared/search/searchResults';
import { createPersonaCollection } from '../shared/vectorIndex/personaCollection';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { syncPersonaChanges } from '../shared/vectorIndex/syncPersonaChanges';
import { loadPersonaDataset, personaDataAvailable, samplePairs, type DevPair } from './personaDataset';
import { retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics';

export const QUALITY_MODEL_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'models', 'glove-sif-50d');

export const qualityDataAvailable = () => personaDataAvailable() && existsSync(path.join(QUALITY_MODEL_DIR, 'tokenizer.json'));

export interface QualityVariant {
  label: string;
  mode: SearchMode;
  fusion: Fusion;
  /** RRF weights sent with the request; without, the API's defaults. */
  weights?: Partial<Record<Ranking, number>>;
}

export const QUALITY_VARIANTS: readonly QualityVariant[] = [
  { label: 'keyword', mode: 'keyword', fusion: 'rrf' },
  { label: 'semantic', mode: 'semantic', fusion: 'rrf' },
  { label: `hybrid RRF (default, ${DEFAULT_RRF_WEIGHTS.semantic}:${DEFAULT_RRF_WEIGHTS.keyword})`, mode: 'hybrid', fusion: 'rrf' },
  { label: 'hybrid RRF 1:1', mode: 'hybrid', fusion: 'rrf', weights: { semantic: 1, keyword: 1 } },
  { label: 'hybrid DBSF', mode: 'hybrid', fusion: 'dbsf' },
];

export interface QualityRow {
  variant: string;
  task: 'search' | 'similar';
  metrics: RetrievalMetrics;
}

export interface QualityReport {
  personas: number;
  pairs: number;
  model: string;
  indexSeconds: number;
  querySeconds: number;
  /** Distinct query personas among the pairs (each asked once per variant and task). */
  queries: number;
  rows: QualityRow[];
}

/** Depth of every ranking asked for; a pair whose target is not within it counts as not found. */
export const QUALITY_DEPTH = 100;

/** Runs `work` over `items` with at most `concurrency` in flight. */
async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export async function measureSearchQuality(options: { pairs?: number; log?: (line: string) => void } = {}): Promise<QualityReport> {
  const log = options.log ?? (() => undefined);
  const dataset = loadPersonaDataset();
  const pairs: DevPair[] = options.pairs ? samplePairs(dataset.pairs, options.pairs) : dataset.pairs;
  const byId = new Map<string, Persona>(dataset.personas.map((entry) => [entry.persona.id, entry.persona]));
  // The glove model needs mean pooling and no query prefix (its README).
  const embedder = await createEmbedder({ modelDir: QUALITY_MODEL_DIR, allowRemote: false, pooling: 'mean', queryPrefix: '' });
  const server = await startQdrantServer({ port: 0 });
  try {
    const qdrant = createQdrantClient({ url: server.url, apiKey: undefined });
    const collection = 'personas-quality';
    await createPersonaCollection(qdrant, collection, embedder.model);

    const indexStarted = performance.now();
    const readPersonas = async (ids: readonly string[]) => new Map(ids.flatMap((id) => (byId.has(id) ? [[id, byId.get(id)!] as const] : [])));
    const chunks: Persona[][] = [];
    for (let i = 0; i < dataset.personas.length; i += 256) chunks.push(dataset.personas.slice(i, i + 256).map((entry) => entry.persona));
    for (const chunk of chunks) {
      const report = await syncPersonaChanges(
        { readPersonas, qdrant, collection, embedder },
        chunk.map((persona) => ({ recordId: persona.id, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
      );
      if (report.counts.failed > 0) throw new Error(`indexing failed: ${[...report.errors.values()][0]?.message}`);
    }
    const indexSeconds = (performance.now() - indexStarted) / 1000;
    log(`indexed ${dataset.personas.length} personas in ${indexSeconds.toFixed(1)} s; ${pairs.length} pairs`);

    // The table is only read by similar (does the persona exist?): an in-memory stand-in does.
    const repository = { get: async (id: string) => byId.get(id), getMany: readPersonas } as unknown as PersonaRepository;
    const deps: SearchDeps = { repository, qdrant, collection, embedder };
    const page = { limit: QUALITY_DEPTH, offset: 0, hydrate: false, explain: false };
    const rankOf = (results: SearchResults, target: string, self: string) => {
      const ids = results.items.map((item) => item.id).filter((id) => id !== self);
      const at = ids.indexOf(target);
      return at < 0 ? Infinity : at + 1;
    };

    // Each query persona is asked once: its pairs' targets are all read off the same two rankings.
    const targetsOf = new Map<string, string[]>();
    for (const pair of pairs) targetsOf.set(pair.a, [...(targetsOf.get(pair.a) ?? []), pair.b]);
    const queries = [...targetsOf.keys()];
    const queryStarted = performance.now();
    const rows: QualityRow[] = [];
    for (const variant of QUALITY_VARIANTS) {
      const ranks = { search: [] as number[], similar: [] as number[] };
      await inParallel(queries, 4, async (sourceId) => {
        const a = dataset.bySourceId.get(sourceId)!;
        const options = { ...page, mode: variant.mode, fusion: variant.fusion, ...(variant.weights ? { weights: variant.weights } : {}) };
        const [search, similar] = await Promise.all([
          searchPersonas(deps, { ...options, query: a.text }),
          findSimilarPersonas(deps, a.persona.id, options),
        ]);
        for (const target of targetsOf.get(sourceId)!) {
          const b = dataset.bySourceId.get(target)!;
          ranks.search.push(rankOf(search, b.persona.id, a.persona.id));
          ranks.similar.push(rankOf(similar, b.persona.id, a.persona.id));
        }
      });
      rows.push({ variant: variant.label, task: 'search', metrics: retrievalMetrics(ranks.search) });
      rows.push({ variant: variant.label, task: 'similar', metrics: retrievalMetrics(ranks.similar) });
      log(`${variant.label}: done`);
    }
    return {
      personas: dataset.personas.length,
      pairs: pairs.length,
      queries: queries.length,
      model: `${embedder.model.id} (${embedder.model.dtype})`,
      indexSeconds,
      querySeconds: (performance.now() - queryStarted) / 1000,
      rows,
    };
  } finally {
    await server.close();
    await embedder.dispose();
  }
}

const figure = (value: number) => (Number.isFinite(value) ? value.toFixed(3) : `>${QUALITY_DEPTH}`);

export function qualityTable(report: QualityReport): string {
  const lines = ['| task | mode | recall@1 | recall@10 | MRR | median rank |', '|---|---|---|---|---|---|'];
  for (const task of ['search', 'similar'] as const) {
    for (const row of report.rows.filter((candidate) => candidate.task === task)) {
      const { recallAt1, recallAt10, mrr, medianRank } = row.metrics;
      lines.push(`| ${task} | ${row.variant} | ${figure(recallAt1)} | ${figure(recallAt10)} | ${figure(mrr)} | ${Number.isFinite(medianRank) ? medianRank : `>${QUALITY_DEPTH}`} |`);
    }
  }
  return lines.join('\n');
}

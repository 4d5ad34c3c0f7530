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
import { bootstrapDifference, QUALITY_DEPTH, retrievalMetrics, type MetricDifference, type RetrievalMetrics } from './retrievalMetrics';


export const QUALITY_MODEL_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'models', 'glove-sif-50d');

export const qualityDataAvailable = () => personaDataAvailable() && existsSync(path.join(QUALITY_MODEL_DIR, 'tokenizer.json'));

export interface QualityVariant {
  label: string;
  mode: SearchMode;
  fusion: Fusion;
  /** RRF weights sent with the request; without, the API's defaults. */
  weights?: Partial<Record<Ranking, number>>;
}

/** Index in QUALITY_VARIANTS of the API's default hybrid. */
const DEFAULT_HYBRID_VARIANT = 2;

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
  /** The default hybrid against each single ranking, pair by pair, with 95% bootstrap intervals. */
  comparisons: QualityComparison[];
}

export interface QualityComparison {
  variant: string;
  baseline: string;
  task: QualityRow['task'];
  recallAt10: MetricDifference;
  mrr: MetricDifference;
}


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
    // Each variant's ranks per query persona, in `queries` order, so variants can be compared pair by pair.
    const ranksOf = new Map<string, Record<QualityRow['task'], number[][]>>();
    for (const variant of QUALITY_VARIANTS) {
      const ranks = { search: new Map<string, number[]>(), similar: new Map<string, number[]>() };
      await inParallel(queries, 4, async (sourceId) => {
        const a = dataset.bySourceId.get(sourceId)!;
        const options = { ...page, mode: variant.mode, fusion: variant.fusion, ...(variant.weights ? { weights: variant.weights } : {}) };
        const [search, similar] = await Promise.all([
          searchPersonas(deps, { ...options, query: a.text }),
          findSimilarPersonas(deps, a.persona.id, options),
        ]);
        const targets = targetsOf.get(sourceId)!.map((target) => dataset.bySourceId.get(target)!.persona.id);
        ranks.search.set(sourceId, targets.map((target) => rankOf(search, target, a.persona.id)));
        ranks.similar.set(sourceId, targets.map((target) => rankOf(similar, target, a.persona.id)));
      });
      const inOrder = { search: queries.map((query) => ranks.search.get(query)!), similar: queries.map((query) => ranks.similar.get(query)!) };
      ranksOf.set(variant.label, inOrder);
      rows.push({ variant: variant.label, task: 'search', metrics: retrievalMetrics(inOrder.search.flat()) });
      rows.push({ variant: variant.label, task: 'similar', metrics: retrievalMetrics(inOrder.similar.flat()) });
      log(`${variant.label}: done`);
    }
    const comparisons: QualityComparison[] = [];
    const hybrid = QUALITY_VARIANTS[DEFAULT_HYBRID_VARIANT]!.label;
    for (const baseline of ['keyword', 'semantic']) {
      for (const task of ['search', 'similar'] as const) {
        const [ours, theirs] = [ranksOf.get(hybrid)![task], ranksOf.get(baseline)![task]];
        comparisons.push({
          variant: hybrid,
          baseline,
          task,
          recallAt10: bootstrapDifference(ours, theirs, 'recallAt10'),
          mrr: bootstrapDifference(ours, theirs, 'mrr'),
        });
      }
    }
    return {
      personas: dataset.personas.length,
      pairs: pairs.length,
      queries: queries.length,
      model: `${embedder.model.id} (${embedder.model.dtype})`,
      indexSeconds,
      querySeconds: (performance.now() - queryStarted) / 1000,
      rows,
      comparisons,
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

const signed = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(4)}`;
const interval = (difference: MetricDifference) => `${signed(difference.difference)} [${signed(difference.low)}, ${signed(difference.high)}]`;

/** The default hybrid minus each single ranking, with 95% bootstrap intervals (query personas resampled). */
export function comparisonTable(report: QualityReport): string {
  const lines = ['| task | hybrid (default) minus | recall@10 [95% interval] | MRR [95% interval] |', '|---|---|---|---|'];
  for (const row of report.comparisons) lines.push(`| ${row.task} | ${row.baseline} | ${interval(row.recallAt10)} | ${interval(row.mrr)} |`);
  return lines.join('\n');
}

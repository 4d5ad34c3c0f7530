/**
 * Retrieval quality of the search modes on real personas (../shared/data/personas) with a real
 * sentence encoder (../shared/models/all-MiniLM-L6-v2, bench/qualityModel.ts), through the product:
 * every persona (the dataset's and one per paraphrase pair) is indexed by the indexer's own sync into
 * the local Qdrant server, then for each query of both retrieval sets the product's search (query =
 * the query persona's text) and similar (of the query persona) are asked for the top 100, and the
 * rank of each target is recorded (the query persona itself is ignored). The sets: the dataset's dev
 * pairs (near-duplicates) and our paraphrase pairs (bench/PARAPHRASES.md), each with a `tune` part
 * (what the defaults were chosen on) and a `held-out` part (never tuned on), reported apart.
 */
import { startQdrantServer } from '../local/qdrant/server';
import { createEmbedder, type Embedder } from '../shared/embedding';
import type { PersonaRepository } from '../shared/persona/personaRepository';
import type { Persona } from '../shared/persona/schema';
import { findSimilarPersonas, searchPersonas, type SearchDeps } from '../shared/search/personaSearch';
import { KEYWORD_WEIGHT_POLICY, type Fusion, type Ranking, type SearchMode } from '../shared/search/searchRequest';
import type { SearchResults } from '../shared/search/searchResults';
import { createPersonaCollection } from '../shared/vectorIndex/personaCollection';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { syncPersonaChanges } from '../shared/vectorIndex/syncPersonaChanges';
import type { QuerySplit } from './paraphraseSet';
import { loadPersonaDataset, nearDuplicateSet, paraphraseSet, samplePairs, type RetrievalSet, type RetrievalSetName } from './personaDataset';
import { qualityEmbedderOptions } from './qualityModel';
import { bootstrapDifference, QUALITY_DEPTH, retrievalMetrics, type MetricDifference, type RetrievalMetrics } from './retrievalMetrics';

export interface QualityVariant {
  label: string;
  mode: SearchMode;
  fusion: Fusion;
  /** RRF weights sent with the request; without, the API's defaults. */
  weights?: Partial<Record<Ranking, number>>;
}

export const DEFAULT_VARIANT = `hybrid (default: RRF, keyword ${KEYWORD_WEIGHT_POLICY.weak} or ${KEYWORD_WEIGHT_POLICY.strong} by its evidence)`;

export const QUALITY_VARIANTS: readonly QualityVariant[] = [
  { label: 'keyword', mode: 'keyword', fusion: 'rrf' },
  { label: 'semantic', mode: 'semantic', fusion: 'rrf' },
  { label: DEFAULT_VARIANT, mode: 'hybrid', fusion: 'rrf' },
  { label: `hybrid RRF 1:${KEYWORD_WEIGHT_POLICY.weak}`, mode: 'hybrid', fusion: 'rrf', weights: { semantic: 1, keyword: KEYWORD_WEIGHT_POLICY.weak } },
  { label: 'hybrid RRF 1:1', mode: 'hybrid', fusion: 'rrf', weights: { semantic: 1, keyword: 1 } },
  { label: 'hybrid RRF 1:3 (the default before)', mode: 'hybrid', fusion: 'rrf', weights: { semantic: 1, keyword: 3 } },
  { label: 'hybrid DBSF', mode: 'hybrid', fusion: 'dbsf' },
];

export const TASKS = ['search', 'similar'] as const;
export type Task = (typeof TASKS)[number];
export const SPLITS = ['tune', 'held-out'] as const satisfies readonly QuerySplit[];

export interface QualityRow {
  set: RetrievalSetName;
  split: QuerySplit;
  variant: string;
  task: Task;
  metrics: RetrievalMetrics;
}

/** The default minus a single ranking, pair by pair, with its 95% bootstrap interval. */
export interface QualityComparison {
  set: RetrievalSetName;
  split: QuerySplit;
  task: Task;
  baseline: string;
  recallAt10: MetricDifference;
  mrr: MetricDifference;
}

export interface QualityReport {
  /** Personas indexed (the dataset's, the paraphrase personas, and in a sample run only some distractors). */
  personas: number;
  model: string;
  indexSeconds: number;
  querySeconds: number;
  /** Pairs and distinct query personas per set. */
  sets: Record<RetrievalSetName, { pairs: number; queries: number }>;
  rows: QualityRow[];
  comparisons: QualityComparison[];
}

export interface QualityOptions {
  /** A fixed sample of the near-duplicate pairs (default: all 7,559). */
  nearDuplicatePairs?: number;
  /** A fixed sample of the paraphrase pairs (default: all). */
  paraphrasePairs?: number;
  /** Personas indexed besides the queries' own and their targets (default: all of them). */
  distractors?: number;
  variants?: readonly QualityVariant[];
  log?: (line: string) => void;
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

/**
 * The embedder with each query text embedded once: the variants ask the same texts, and a query's
 * vector depends on nothing but its text (it is embedded alone).
 */
function rememberingQueries(embedder: Embedder): Pick<Embedder, 'embedQuery'> {
  const known = new Map<string, Promise<number[]>>();
  return {
    embedQuery: (text) => {
      if (!known.has(text)) known.set(text, embedder.embedQuery(text));
      return known.get(text)!;
    },
  };
}

export async function measureSearchQuality(options: QualityOptions = {}): Promise<QualityReport> {
  const log = options.log ?? (() => undefined);
  const variants = options.variants ?? QUALITY_VARIANTS;
  const dataset = loadPersonaDataset();
  const pairs = options.nearDuplicatePairs ? samplePairs(dataset.pairs, options.nearDuplicatePairs) : dataset.pairs;
  const paraphrases = options.paraphrasePairs ? samplePairs(dataset.paraphrases, options.paraphrasePairs) : dataset.paraphrases;
  const sets: RetrievalSet[] = [nearDuplicateSet(dataset, pairs), paraphraseSet(dataset, paraphrases)];

  // The queries' own personas and targets always; the others (distractors) all, or a fixed spread of them.
  const needed = new Set(sets.flatMap((set) => set.queries.flatMap((query) => [query.self, ...query.targets])));
  const others = dataset.personas.map((_, i) => i).filter((i) => !needed.has(i));
  const indexed = [...needed, ...(options.distractors === undefined ? others : samplePairs(others, options.distractors))].sort((a, b) => a - b);
  const personas = indexed.map((i) => dataset.personas[i]!.persona);
  const byId = new Map<string, Persona>(personas.map((persona) => [persona.id, persona]));

  const embedder = await createEmbedder(qualityEmbedderOptions());
  const server = await startQdrantServer({ port: 0 });
  try {
    const qdrant = createQdrantClient({ url: server.url, apiKey: undefined });
    const collection = 'personas-quality';
    await createPersonaCollection(qdrant, collection, embedder.model);

    const indexStarted = performance.now();
    const readPersonas = async (ids: readonly string[]) => new Map(ids.flatMap((id) => (byId.has(id) ? [[id, byId.get(id)!] as const] : [])));
    for (let i = 0; i < personas.length; i += 256) {
      const chunk = personas.slice(i, i + 256);
      const report = await syncPersonaChanges(
        { readPersonas, qdrant, collection, embedder },
        chunk.map((persona) => ({ recordId: persona.id, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
      );
      if (report.counts.failed > 0) throw new Error(`indexing failed: ${[...report.errors.values()][0]?.message}`);
      if ((i / 256) % 8 === 0) log(`indexed ${Math.min(i + 256, personas.length)} of ${personas.length}`);
    }
    const indexSeconds = (performance.now() - indexStarted) / 1000;
    log(`indexed ${personas.length} personas in ${indexSeconds.toFixed(1)} s (${embedder.model.id}, ${embedder.model.dtype})`);

    // The table is only read by similar (does the persona exist?): an in-memory stand-in does.
    const repository = { get: async (id: string) => byId.get(id), getMany: readPersonas } as unknown as PersonaRepository;
    const deps: SearchDeps = { repository, qdrant, collection, embedder: rememberingQueries(embedder) };
    const page = { limit: QUALITY_DEPTH, offset: 0, hydrate: false, explain: false };
    const rankOf = (results: SearchResults, target: string, self: string) => {
      const at = results.items.map((item) => item.id).filter((id) => id !== self).indexOf(target);
      return at < 0 ? Infinity : at + 1;
    };

    const queryStarted = performance.now();
    const rows: QualityRow[] = [];
    const comparisons: QualityComparison[] = [];
    for (const set of sets) {
      // Each variant's target ranks per query, in query order, so variants compare pair by pair.
      const ranksOf = new Map<string, Record<Task, number[][]>>();
      for (const variant of variants) {
        const ranks: Record<Task, number[][]> = { search: new Array(set.queries.length), similar: new Array(set.queries.length) };
        await inParallel([...set.queries.keys()], 4, async (q) => {
          const query = set.queries[q]!;
          const self = dataset.personas[query.self]!;
          const request = { ...page, mode: variant.mode, fusion: variant.fusion, ...(variant.weights ? { weights: variant.weights } : {}) };
          const [search, similar] = await Promise.all([searchPersonas(deps, { ...request, query: self.text }), findSimilarPersonas(deps, self.persona.id, request)]);
          const targets = query.targets.map((target) => dataset.personas[target]!.persona.id);
          ranks.search[q] = targets.map((target) => rankOf(search, target, self.persona.id));
          ranks.similar[q] = targets.map((target) => rankOf(similar, target, self.persona.id));
        });
        ranksOf.set(variant.label, ranks);
        log(`${set.name}, ${variant.label}: done`);
      }
      for (const split of SPLITS) {
        const inSplit = set.queries.map((query) => query.split === split);
        const part = (ranks: number[][]) => ranks.filter((_, q) => inSplit[q]);
        for (const variant of variants) {
          for (const task of TASKS) rows.push({ set: set.name, split, variant: variant.label, task, metrics: retrievalMetrics(part(ranksOf.get(variant.label)![task]).flat()) });
        }
        if (!ranksOf.has(DEFAULT_VARIANT)) continue;
        for (const baseline of ['keyword', 'semantic'].filter((label) => ranksOf.has(label))) {
          for (const task of TASKS) {
            const [ours, theirs] = [part(ranksOf.get(DEFAULT_VARIANT)![task]), part(ranksOf.get(baseline)![task])];
            comparisons.push({ set: set.name, split, task, baseline, recallAt10: bootstrapDifference(ours, theirs, 'recallAt10'), mrr: bootstrapDifference(ours, theirs, 'mrr') });
          }
        }
      }
    }
    return {
      personas: personas.length,
      model: `${embedder.model.id} (${embedder.model.dtype})`,
      indexSeconds,
      querySeconds: (performance.now() - queryStarted) / 1000,
      sets: Object.fromEntries(sets.map((set) => [set.name, { pairs: set.queries.reduce((sum, query) => sum + query.targets.length, 0), queries: set.queries.length }])) as QualityReport['sets'],
      rows,
      comparisons,
    };
  } finally {
    await server.close();
    await embedder.dispose();
  }
}

const figure = (value: number) => (Number.isFinite(value) ? value.toFixed(3) : `>${QUALITY_DEPTH}`);

export function qualityTable(report: QualityReport, set: RetrievalSetName, split: QuerySplit): string {
  const lines = ['| task | mode | recall@1 | recall@10 | MRR | median rank |', '|---|---|---|---|---|---|'];
  for (const task of TASKS) {
    for (const row of report.rows.filter((candidate) => candidate.set === set && candidate.split === split && candidate.task === task)) {
      const { recallAt1, recallAt10, mrr, medianRank } = row.metrics;
      lines.push(`| ${task} | ${row.variant} | ${figure(recallAt1)} | ${figure(recallAt10)} | ${figure(mrr)} | ${Number.isFinite(medianRank) ? medianRank : `>${QUALITY_DEPTH}`} |`);
    }
  }
  return lines.join('\n');
}

const signed = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(4)}`;
const interval = (difference: MetricDifference) => `${signed(difference.difference)} [${signed(difference.low)}, ${signed(difference.high)}]`;

/** The default minus each single ranking, with 95% bootstrap intervals (query personas resampled). */
export function comparisonTable(report: QualityReport): string {
  const lines = ['| set | part | task | default minus | recall@10 [95% interval] | MRR [95% interval] |', '|---|---|---|---|---|---|'];
  for (const row of report.comparisons) lines.push(`| ${row.set} | ${row.split} | ${row.task} | ${row.baseline} | ${interval(row.recallAt10)} | ${interval(row.mrr)} |`);
  return lines.join('\n');
}

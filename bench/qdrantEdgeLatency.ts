/**
 * The local Qdrant-compatible server's query latency against Qdrant Edge's on the same machine, in
 * one run: for each size, the same collection shape (text 384 cosine, traits 5 Euclid, keywords
 * sparse with IDF, a tenant_id index with is_tenant) and the same three queries the product sends
 * (semantic; keyword filtered to one tenant with that tenant as IDF corpus; hybrid RRF of both with
 * 100-point prefetches). Both sides run in-process (the local engine's runQuery, Edge's
 * EdgeShard.query through bench/edge_latency.py), so the ratio compares engines, not HTTP. Edge is
 * timed exact and after optimize() (its HNSW index); the local server always scans exactly.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Collection, settingsFromCreateRequest } from '../local/qdrant/collection';
import { runQuery } from '../local/qdrant/query';
import { parseQueryRequest } from '../local/qdrant/queryParse';
import { parseVectorSchema, prepareVector } from '../local/qdrant/vectors';
import { PROJECT_ROOT } from '../infra/bundling';
import { mulberry32 } from '../lib/seededRandom';
import { summarize, type LatencySummary } from './latencyStats';

const TEXT = 384;
const TRAITS = 5;
const VOCABULARY = 5000;
const TENANTS = 4;
const QUERIES = ['semantic', 'keyword-tenant', 'hybrid-rrf'] as const;
type QueryName = (typeof QUERIES)[number];

export interface EdgeComparison {
  points: number;
  queries: Record<QueryName, { local: LatencySummary; edgeExact: LatencySummary; edgeHnsw: LatencySummary; localOverEdgeExact: number; localOverEdgeHnsw: number }>;
  edgeOptimizeSeconds: number;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function sample(random: () => number, count: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(random() * VOCABULARY));
  return [...chosen].sort((a, b) => a - b);
}

function localCollection(size: number, random: () => number): Collection {
  const schema = parseVectorSchema(
    { text: { size: TEXT, distance: 'Cosine' }, traits: { size: TRAITS, distance: 'Euclid' } },
    { keywords: { modifier: 'idf' } },
  );
  const collection = new Collection('bench', schema, settingsFromCreateRequest({}));
  for (let id = 0; id < size; id++) {
    const terms = sample(random, 20);
    collection.put({
      id,
      version: 0,
      vectors: {
        text: prepareVector(schema, 'text', Array.from({ length: TEXT }, () => gaussian(random)), 'text'),
        traits: Array.from({ length: TRAITS }, random),
        keywords: { indices: terms, values: terms.map(() => random() + 0.1) },
      },
      payload: { tenant_id: `tenant-${id % TENANTS}` },
    });
  }
  return collection;
}

function localQueries(random: () => number): Record<QueryName, unknown> {
  const tenant = { must: [{ key: 'tenant_id', match: { value: 'tenant-0' } }] };
  const text = Array.from({ length: TEXT }, () => gaussian(random));
  const words = sample(random, 4);
  const sparse = { indices: words, values: words.map(() => 1) };
  return {
    semantic: { query: text, using: 'text', limit: 10 },
    'keyword-tenant': { query: sparse, using: 'keywords', limit: 10, filter: tenant, params: { idf: { corpus: tenant } } },
    'hybrid-rrf': {
      prefetch: [
        { query: text, using: 'text', limit: 100 },
        { query: sparse, using: 'keywords', limit: 100 },
      ],
      query: { rrf: { k: 2, weights: [1, 1] } },
      limit: 10,
    },
  };
}

function timeLocal(collection: Collection, random: () => number, rounds: number): Record<QueryName, number[]> {
  const times = Object.fromEntries(QUERIES.map((name) => [name, [] as number[]])) as Record<QueryName, number[]>;
  for (let round = 0; round < rounds; round++) {
    for (const [name, body] of Object.entries(localQueries(random)) as [QueryName, unknown][]) {
      const started = performance.now();
      runQuery(collection, parseQueryRequest(body));
      times[name].push(performance.now() - started);
    }
  }
  return times;
}

type EdgeTimes = Record<string, { exact: Record<QueryName, number[]>; hnsw: Record<QueryName, number[]>; optimizeSeconds: number }>;

export async function measureEdgeComparison(sizes: readonly number[], rounds: number): Promise<EdgeComparison[]> {
  const { stdout } = await promisify(execFile)('python3', [path.join(PROJECT_ROOT, 'bench', 'edge_latency.py'), '--sizes', sizes.join(','), '--queries', String(rounds)], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const edge = JSON.parse(stdout) as EdgeTimes;
  return sizes.map((points) => {
    const random = mulberry32(points);
    const collection = localCollection(points, random);
    timeLocal(collection, random, 5);
    const local = timeLocal(collection, random, rounds);
    const measured = edge[String(points)]!;
    const queries = Object.fromEntries(
      QUERIES.map((name) => {
        const summaries = { local: summarize(local[name]), edgeExact: summarize(measured.exact[name]), edgeHnsw: summarize(measured.hnsw[name]) };
        const ratio = (other: LatencySummary) => Math.round((summaries.local.p50 / Math.max(other.p50, 0.01)) * 10) / 10;
        return [name, { ...summaries, localOverEdgeExact: ratio(summaries.edgeExact), localOverEdgeHnsw: ratio(summaries.edgeHnsw) }];
      }),
    ) as EdgeComparison['queries'];
    return { points, queries, edgeOptimizeSeconds: measured.optimizeSeconds };
  });
}

export function edgeComparisonMarkdown(comparisons: readonly EdgeComparison[]): string {
  const rows = comparisons.flatMap((comparison) =>
    QUERIES.map((name) => {
      const entry = comparison.queries[name];
      return `| ${comparison.points.toLocaleString('en-US')} | ${name} | ${entry.local.p50} / ${entry.local.p99} | ${entry.edgeExact.p50} / ${entry.edgeExact.p99} | ${entry.edgeHnsw.p50} / ${entry.edgeHnsw.p99} | ${entry.localOverEdgeExact}x | ${entry.localOverEdgeHnsw}x |`;
    }),
  );
  return [
    '| points | query | local p50 / p99 ms | Edge exact p50 / p99 ms | Edge HNSW p50 / p99 ms | local / Edge exact (p50) | local / Edge HNSW (p50) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

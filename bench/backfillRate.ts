/**
 * The reindex in AWS, per child: what one backfill Lambda (shared/reindexAtScale/backfillChunk.ts)
 * does with one chunk of a real export data file (gzipped DynamoDB JSON lines, read as a stream,
 * unmarshalled, embedded in pages of 128, upserted version-guarded into the local Qdrant server),
 * against the indexer's path over the same personas (syncPersonaChanges on stream-sized batches,
 * rows from memory, the same Qdrant). Both embed with the intra-op threads of the backfill
 * function's memory (infra/lambdaCpu.ts), in interleaved rounds into fresh collections, so the
 * machine's load of the moment hits both alike.
 *
 * The figure that carries to Lambda is CPU time per persona (this process's user + system time:
 * parsing, embedding, the client's work; Qdrant's own work runs in its process, as it runs on its
 * own cluster in AWS). A child at M MB gets M / 1,769 vCPU, so its rate is that share / CPU time
 * per persona, as long as Qdrant keeps up: the sizing table caps the Map's rate at Qdrant's ingest
 * rate, an ASSUMPTION (BENCH_QDRANT_POINTS_PER_SECOND, default below), not a measurement.
 */
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { marshall } from '@aws-sdk/util-dynamodb';
import { lambdaIntraOpThreads, lambdaVcpuShare } from '../infra/lambdaCpu';
import { createEmbedder, type Embedder } from '../shared/embedding';
import type { Persona } from '../shared/persona/schema';
import { backfillChunk } from '../shared/reindexAtScale/backfillChunk';
import { exportLineOf } from '../shared/reindexAtScale/exportFiles';
import { indexerStreamSettings } from '../shared/streamSettings';
import { createPersonaCollection } from '../shared/vectorIndex/personaCollection';
import { syncPersonaChanges } from '../shared/vectorIndex/syncPersonaChanges';
import { median } from './latencyStats';

/**
 * Qdrant's sustained ingest of persona points (a 384-d dense, a 5-d and a sparse vector, payload,
 * upserted with wait=true in batches of 128) assumed for the sizing table: a cluster sized for the
 * reindex. Not measured here (the local server is a stand-in, not Qdrant); measure your cluster and
 * set BENCH_QDRANT_POINTS_PER_SECOND.
 */
export const ASSUMED_QDRANT_POINTS_PER_SECOND = 10_000;

export interface PathSample {
  personas: number;
  wallMs: number;
  cpuMs: number;
}

export interface BackfillRateResult {
  memoryMb: number;
  threads: number;
  chunkPersonas: number;
  rounds: number;
  backfill: { samples: PathSample[]; cpuMsPerPersona: number; wallPersonasPerSecond: number };
  indexer: { samples: PathSample[]; cpuMsPerPersona: number; wallPersonasPerSecond: number };
  /** Median of each round's indexer CPU per persona / backfill CPU per persona: 1 = the same cost. */
  backfillRateShareOfIndexer: number;
  /** The child's rate at its memory (vCPU share / CPU per persona). */
  perChildPersonasPerSecond: number;
  perIndexerInvocationPersonasPerSecond: number;
}

async function timed(work: () => Promise<number>): Promise<PathSample> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const personas = await work();
  const used = process.cpuUsage(cpu);
  return { personas, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
}

const summary = (samples: PathSample[]) => ({
  samples,
  cpuMsPerPersona: Math.round(median(samples.map((sample) => sample.cpuMs / sample.personas)) * 100) / 100,
  wallPersonasPerSecond: Math.round(median(samples.map((sample) => (sample.personas * 1000) / sample.wallMs))),
});

export async function measureBackfillRate(
  personas: readonly Persona[],
  qdrant: QdrantClient,
  options: { memoryMb: number; rounds: number; alias: string },
): Promise<BackfillRateResult> {
  const threads = lambdaIntraOpThreads(options.memoryMb);
  const embedder: Embedder = await createEmbedder({ threads });
  // One export data file holding the chunk, as DynamoDB writes it.
  const file = gzipSync(personas.map((persona) => `${exportLineOf(marshall(persona, { removeUndefinedValues: true }))}\n`).join(''));
  const chunk = { dataFileS3Key: 'bench/AWSDynamoDB/0-bench/data/bench.json.gz', skip: 0, take: personas.length };
  let version = 0;
  const freshCollection = async () => {
    const name = `${options.alias}-v${++version}`;
    await createPersonaCollection(qdrant, name, embedder.model);
    return name;
  };
  const backfillOnce = async () => {
    const collection = await freshCollection();
    return timed(async () => {
      const report = await backfillChunk({ qdrant, embedder, alias: options.alias, openObject: async () => Readable.from([file]) }, { collection, bucket: 'bench', chunk });
      if (report.actions.failed > 0) throw new Error(`backfill failed for ${report.actions.failed} personas`);
      return report.personas;
    }).finally(() => qdrant.deleteCollection(collection));
  };
  const indexerOnce = async () => {
    const collection = await freshCollection();
    const rows = new Map(personas.map((persona) => [persona.id, persona]));
    return timed(async () => {
      for (let start = 0; start < personas.length; start += indexerStreamSettings.batchSize) {
        const batch = personas.slice(start, start + indexerStreamSettings.batchSize);
        const report = await syncPersonaChanges(
          { readPersonas: async (ids) => new Map(ids.map((id) => [id, rows.get(id)!])), qdrant, collection, embedder },
          batch.map((persona) => ({ recordId: persona.id, personaId: persona.id, kind: 'INSERT' as const, changedAt: Date.now() })),
        );
        if (report.counts.failed > 0) throw new Error(`indexer path failed for ${report.counts.failed} personas`);
      }
      return personas.length;
    }).finally(() => qdrant.deleteCollection(collection));
  };
  try {
    // Warm-up: the model's first runs, the client's connections.
    await backfillOnce();
    await indexerOnce();
    const backfill: PathSample[] = [];
    const indexer: PathSample[] = [];
    for (let round = 0; round < options.rounds; round++) {
      backfill.push(await backfillOnce());
      indexer.push(await indexerOnce());
    }
    const b = summary(backfill);
    const i = summary(indexer);
    const vcpu = lambdaVcpuShare(options.memoryMb);
    return {
      memoryMb: options.memoryMb,
      threads,
      chunkPersonas: personas.length,
      rounds: options.rounds,
      backfill: b,
      indexer: i,
      backfillRateShareOfIndexer: Math.round(median(backfill.map((sample, round) => indexer[round]!.cpuMs / indexer[round]!.personas / (sample.cpuMs / sample.personas))) * 1000) / 1000,
      perChildPersonasPerSecond: Math.round((vcpu * 1000) / b.cpuMsPerPersona),
      perIndexerInvocationPersonasPerSecond: Math.round((vcpu * 1000) / i.cpuMsPerPersona),
    };
  } finally {
    await embedder.dispose();
  }
}

export interface BackfillSizing {
  perChildPersonasPerSecond: number;
  qdrantPointsPerSecond: number;
  qdrantAssumed: boolean;
  personas: number[];
  concurrency: number[];
  /** minutes[personas][concurrency]: the backfill alone (the export and the verification come on top). */
  minutes: number[][];
  /** Where Qdrant, not the children, sets the pace. */
  qdrantBound: boolean[][];
}

export const SIZING_PERSONAS = [1_000_000, 10_000_000, 50_000_000];
export const SIZING_CONCURRENCY = [10, 25, 50, 100, 500, 1_000];

/** personas x concurrency -> minutes of backfill: personas / min(concurrency x per-child rate, Qdrant's ingest). */
export function backfillSizing(perChildPersonasPerSecond: number, qdrantPointsPerSecond = ASSUMED_QDRANT_POINTS_PER_SECOND, qdrantAssumed = true): BackfillSizing {
  const rate = (concurrency: number) => Math.min(concurrency * perChildPersonasPerSecond, qdrantPointsPerSecond);
  return {
    perChildPersonasPerSecond,
    qdrantPointsPerSecond,
    qdrantAssumed,
    personas: SIZING_PERSONAS,
    concurrency: SIZING_CONCURRENCY,
    minutes: SIZING_PERSONAS.map((personas) => SIZING_CONCURRENCY.map((concurrency) => Math.round((personas / rate(concurrency) / 60) * 10) / 10)),
    qdrantBound: SIZING_PERSONAS.map(() => SIZING_CONCURRENCY.map((concurrency) => concurrency * perChildPersonasPerSecond > qdrantPointsPerSecond)),
  };
}

export function backfillSizingMarkdown(sizing: BackfillSizing): string {
  const header = `| personas | ${sizing.concurrency.map((c) => `${c.toLocaleString('en-US')} children`).join(' | ')} |`;
  const rows = sizing.personas.map(
    (personas, i) => `| ${personas.toLocaleString('en-US')} | ${sizing.minutes[i]!.map((minutes, j) => `${minutes} min${sizing.qdrantBound[i]![j] ? ' (Qdrant-bound)' : ''}`).join(' | ')} |`,
  );
  return [
    `Backfill minutes at ${sizing.perChildPersonasPerSecond} personas/s per child, capped at Qdrant's ${sizing.qdrantPointsPerSecond.toLocaleString('en-US')} points/s (${sizing.qdrantAssumed ? 'ASSUMED' : 'measured'}); the export and the verification come on top.`,
    '',
    header,
    `| --- | ${sizing.concurrency.map(() => '---').join(' | ')} |`,
    ...rows,
  ].join('\n');
}

/**
 * Embedding throughput in personas per second, three ways over the same persona texts:
 *
 * - ceiling: the model's ONNX file in an onnxruntime-node InferenceSession of its own, fed by the
 *   model's tokenizer. Per batch: tokenise (padding to the batch's longest text), wrap the ids as
 *   int64 tensors, session.run, take each row's CLS vector and L2-normalise it. That is the least
 *   work that turns texts into unit vectors; the texts come grouped by length (windows of 128
 *   sorted), so batches pad little, and swept over batch sizes, the best one counts.
 * - Both run with the deployed indexer's intra-op thread count (EMBEDDING_THREADS as the stack sets
 *   it for the indexer's memory, infra/lambdaCpu.ts). With ONNX Runtime's default (a pool of one
 *   thread per core) two sessions in one process slow each other down: in the 2026-11-29 quiet run
 *   the raw session's rate fell from 256 to ~175 personas/s once the indexer's session had run, and
 *   the "ceiling" ended below the indexer (110%). One thread per session has no worker pool to
 *   contend, and it is what the indexer runs on Lambda.
 * - indexer: the production code. `embedDocuments` called with the indexer's stream batches (the
 *   event source mapping's batch size), and `syncPersonaChanges` end to end with the table read
 *   from memory and a Qdrant stand-in that answers at once (so it counts everything but I/O).
 * - naive: the seed prototype's approach, per persona a new feature-extraction pipeline (model
 *   load), a new Qdrant client, one embedding and one upsert of one point (through real HTTP).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { findPackageDir, PROJECT_ROOT } from '../infra/bundling';
import { createEmbedder, type Embedder } from '../shared/embedding';
import { onnxFileFor, resolveEmbedderSettings } from '../shared/embedding/config';
import type { Persona } from '../shared/persona/schema';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { indexerStreamSettings } from '../shared/streamSettings';
import { createPersonaCollection, KEYWORDS_VECTOR, modelLabel, TEXT_VECTOR, TRAITS_VECTOR } from '../shared/vectorIndex/personaCollection';
import { personaPayload, traitsVector } from '../shared/vectorIndex/personaPoint';
import { syncPersonaChanges, type PersonaChange } from '../shared/vectorIndex/syncPersonaChanges';
import { median } from './latencyStats';

type Ort = typeof import('onnxruntime-node');

/** The onnxruntime-node that transformers.js itself loads (the same binary, not merely the same version). */
export function transformersOrt(): Ort {
  const transformersDir = findPackageDir('@huggingface/transformers', PROJECT_ROOT);
  return createRequire(path.join(transformersDir, 'package.json'))('onnxruntime-node') as Ort;
}

export interface RateMeasurement {
  /** Median of the samples. */
  personasPerSecond: number;
  /** Each timed sample's rate (whole batches until the time budget had passed). */
  samples: number[];
}

type EmbedBatch = (batch: string[]) => Promise<unknown>;

/** Texts in a fixed cycle, so every contender embeds the same mix of lengths. */
function textCycle(texts: readonly string[]) {
  let cursor = 0;
  return (count: number) => Array.from({ length: count }, () => texts[cursor++ % texts.length]!);
}

/** Windows of texts sorted by length: consecutive batches then pad little, as any batcher can arrange. */
export const CEILING_SORT_WINDOW = 128;
function groupedByLength(texts: readonly string[]): string[] {
  const grouped: string[] = [];
  for (let start = 0; start < texts.length; start += CEILING_SORT_WINDOW) {
    grouped.push(...texts.slice(start, start + CEILING_SORT_WINDOW).sort((a, b) => a.length - b.length));
  }
  return grouped;
}

/** One timed sample: whole batches until `budgetMs` has passed; personas per second. */
async function sampleRate(next: (count: number) => string[], batchSize: number, embedBatch: EmbedBatch, budgetMs: number): Promise<number> {
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < budgetMs) {
    await embedBatch(next(batchSize));
    done += batchSize;
  }
  return done / ((performance.now() - started) / 1000);
}

const roundShare = (ratio: number) => Math.round(ratio * 1000) / 1000;
const rate = (samples: number[]): RateMeasurement => ({ personasPerSecond: Math.round(median(samples)), samples: samples.map(Math.round) });

/** The least work from texts to unit vectors on the model's ONNX file (see the file comment). */
async function rawOnnxEmbedder(threads: number): Promise<{ embedBatch: (batch: string[]) => Promise<Float32Array[]>; release(): Promise<void> }> {
  const settings = resolveEmbedderSettings();
  if (!settings.modelDir) throw new Error('the ceiling needs EMBEDDING_MODEL_DIR (a model directory)');
  const ort = transformersOrt();
  const { AutoTokenizer } = await import('@huggingface/transformers');
  const tokenizer = await AutoTokenizer.from_pretrained(settings.modelDir, { local_files_only: true });
  // transformers.js's session options on Node (CPU execution provider), with the indexer's threads.
  const session = await ort.InferenceSession.create(path.join(settings.modelDir, onnxFileFor(settings.dtype)), { intraOpNumThreads: threads });
  const embedBatch = async (batch: string[]): Promise<Float32Array[]> => {
    const encoded = tokenizer(batch, { padding: true, truncation: true }) as unknown as Record<string, { data: BigInt64Array; dims: number[] }>;
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
    for (const name of session.inputNames) {
      const input = encoded[name];
      if (!input) throw new Error(`the tokenizer gave no ${name}`);
      feeds[name] = new ort.Tensor('int64', input.data, input.dims);
    }
    const output = (await session.run(feeds))[session.outputNames[0]!]!;
    const [rows, sequence, width] = output.dims as [number, number, number];
    const data = output.data as Float32Array;
    const vectors: Float32Array[] = [];
    for (let row = 0; row < rows; row++) {
      const cls = data.slice(row * sequence * width, row * sequence * width + width);
      let norm = 0;
      for (const value of cls) norm += value * value;
      norm = Math.sqrt(norm) || 1;
      for (let i = 0; i < width; i++) cls[i]! /= norm;
      vectors.push(cls);
    }
    return vectors;
  };
  return { embedBatch, release: () => session.release() };
}

export interface CeilingResult {
  /** Intra-op threads of the raw session (the deployed indexer's). */
  threads: number;
  batchSizes: Array<{ batchSize: number } & RateMeasurement>;
  best: { batchSize: number; personasPerSecond: number };
}

/** The raw session swept over batch sizes; the best median rate is the ceiling. */
export async function measureCeiling(texts: readonly string[], batchSizes: readonly number[], timing: { budgetMs: number; repetitions: number }, threads: number): Promise<CeilingResult> {
  const raw = await rawOnnxEmbedder(threads);
  const next = textCycle(groupedByLength(texts));
  const results: CeilingResult['batchSizes'] = [];
  for (const batchSize of batchSizes) {
    await raw.embedBatch(next(batchSize)); // warm-up: the first run of a shape allocates
    const samples: number[] = [];
    for (let i = 0; i < timing.repetitions; i++) samples.push(await sampleRate(next, batchSize, raw.embedBatch, timing.budgetMs));
    results.push({ batchSize, ...rate(samples) });
  }
  await raw.release();
  const best = results.reduce((a, b) => (b.personasPerSecond > a.personasPerSecond ? b : a));
  return { threads, batchSizes: results, best: { batchSize: best.batchSize, personasPerSecond: best.personasPerSecond } };
}

export interface IndexerComparison {
  /** Intra-op threads of both the raw session and the indexer's embedder (the deployed indexer's). */
  threads: number;
  /** Texts per embedDocuments call: the stream batch size the indexer is invoked with. */
  streamBatchSize: number;
  /** Texts per ONNX run inside embedDocuments (EMBEDDING_MAX_BATCH). */
  maxBatchSize: number;
  ceilingBatchSize: number;
  /** The raw session at its best batch size, sampled in the same rounds as the indexer's path. */
  ceiling: RateMeasurement;
  embedDocuments: RateMeasurement;
  /** syncPersonaChanges with the table read from memory and Qdrant answering at once. */
  syncWithoutIo: RateMeasurement;
  /**
   * Median over the rounds of each round's rate / that round's ceiling: neighbours in time share
   * the machine's load of the moment, so this holds up better than a ratio of medians when that
   * load drifts.
   */
  shareOfCeiling: { embedDocuments: number; syncWithoutIo: number };
}

/** A Qdrant stand-in for syncPersonaChanges: a collection with every vector (keywords too), no point yet, and every write succeeds at once. */
const instantQdrant = {
  getCollection: async () => ({ config: { params: { sparse_vectors: { [KEYWORDS_VECTOR]: {} } }, metadata: {} } }),
  retrieve: async () => [],
  upsert: async () => ({ operation_id: 0, status: 'completed' }),
  delete: async () => ({ operation_id: 0, status: 'completed' }),
} as unknown as QdrantClient;

/**
 * The ceiling and the indexer's path sampled in interleaved rounds (ceiling, embedDocuments,
 * sync, ceiling, …), so that load from elsewhere on the machine hits all of them alike. The
 * indexer's embedder is a new one with `threads` intra-op threads, like the raw session's.
 */
export async function measureIndexerComparison(
  personas: readonly Persona[],
  ceilingBatchSize: number,
  timing: { budgetMs: number; rounds: number },
  threads: number,
): Promise<IndexerComparison> {
  const embedder = await createEmbedder({ threads });
  try {
    return await compareWithCeiling(personas, embedder, ceilingBatchSize, timing, threads);
  } finally {
    await embedder.dispose();
  }
}

async function compareWithCeiling(
  personas: readonly Persona[],
  embedder: Embedder,
  ceilingBatchSize: number,
  timing: { budgetMs: number; rounds: number },
  threads: number,
): Promise<IndexerComparison> {
  const streamBatchSize = indexerStreamSettings.batchSize;
  const texts = personas.map(personaEmbeddingText);
  const byText = new Map(personas.map((persona, i) => [texts[i]!, persona]));
  const sync: EmbedBatch = async (batch) => {
    const batchPersonas = batch.map((text) => byText.get(text)!);
    const changes: PersonaChange[] = batchPersonas.map((persona, i) => ({ recordId: `r${i}`, personaId: persona.id, kind: 'MODIFY', changedAt: Date.now() }));
    const report = await syncPersonaChanges(
      {
        readPersonas: async (ids) => new Map(batchPersonas.filter((persona) => ids.includes(persona.id)).map((persona) => [persona.id, persona])),
        qdrant: instantQdrant,
        collection: 'bench',
        embedder,
      },
      changes,
    );
    if (report.counts.failed > 0) throw new Error(`sync failed: ${[...report.errors.values()][0]?.message}`);
  };
  const raw = await rawOnnxEmbedder(threads);
  // Each contender walks its own cycle over the same texts; the ceiling's is grouped by length, while
  // the indexer's path gets them as they come (embedDocuments sorts each call itself).
  const contenders: Array<[keyof Pick<IndexerComparison, 'ceiling' | 'embedDocuments' | 'syncWithoutIo'>, number, EmbedBatch, (count: number) => string[]]> = [
    ['ceiling', ceilingBatchSize, raw.embedBatch, textCycle(groupedByLength(texts))],
    ['embedDocuments', streamBatchSize, (batch) => embedder.embedDocuments(batch), textCycle(texts)],
    ['syncWithoutIo', streamBatchSize, sync, textCycle(texts)],
  ];
  const samples = { ceiling: [] as number[], embedDocuments: [] as number[], syncWithoutIo: [] as number[] };
  for (const [, batchSize, embedBatch, next] of contenders) await embedBatch(next(batchSize));
  for (let round = 0; round < timing.rounds; round++) {
    for (const [name, batchSize, embedBatch, next] of contenders) samples[name].push(await sampleRate(next, batchSize, embedBatch, timing.budgetMs));
  }
  await raw.release();
  return {
    threads,
    streamBatchSize,
    maxBatchSize: resolveEmbedderSettings().maxBatchSize,
    ceilingBatchSize,
    ceiling: rate(samples.ceiling),
    embedDocuments: rate(samples.embedDocuments),
    syncWithoutIo: rate(samples.syncWithoutIo),
    shareOfCeiling: {
      embedDocuments: roundShare(median(samples.embedDocuments.map((value, round) => value / samples.ceiling[round]!))),
      syncWithoutIo: roundShare(median(samples.syncWithoutIo.map((value, round) => value / samples.ceiling[round]!))),
    },
  };
}

export interface NaiveResult {
  personasPerSecond: number;
  personas: number;
  /** Mean milliseconds per persona (pipeline load + client + embed + upsert). */
  meanMsPerPersona: number;
}

/** The seed's approach, reproduced: nothing is reused between personas. */
export async function measureNaive(personas: readonly Persona[], qdrantUrl: string, embedder: Embedder, options: { maxPersonas: number; budgetMs: number }): Promise<NaiveResult> {
  const settings = resolveEmbedderSettings();
  const { pipeline } = await import('@huggingface/transformers');
  const { QdrantClient } = await import('@qdrant/js-client-rest');
  const collection = `bench-naive-${Date.now()}`;
  await createPersonaCollection(new QdrantClient({ url: qdrantUrl, checkCompatibility: false }), collection, embedder.model);
  const label = modelLabel(embedder.model);

  let done = 0;
  const started = performance.now();
  while (done < options.maxPersonas && (done < 3 || performance.now() - started < options.budgetMs)) {
    const persona = personas[done % personas.length]!;
    const extractor = await pipeline('feature-extraction', settings.modelDir ?? settings.modelId!, { dtype: settings.dtype, local_files_only: settings.modelDir !== undefined });
    // The client as a script would make it: default options, including its version check.
    const client = new QdrantClient({ url: qdrantUrl });
    const output = await extractor(embedder.model.documentPrefix + personaEmbeddingText(persona), { pooling: embedder.model.pooling, normalize: true });
    await client.upsert(collection, {
      wait: true,
      points: [{ id: persona.id, vector: { [TEXT_VECTOR]: Array.from(output.data as Float32Array), [TRAITS_VECTOR]: traitsVector(persona) }, payload: { ...personaPayload(persona, label) } }],
    });
    // Python's garbage collector would free the session; here it must be released explicitly.
    await extractor.dispose();
    done++;
  }
  const seconds = (performance.now() - started) / 1000;
  return { personas: done, personasPerSecond: Math.round((done / seconds) * 100) / 100, meanMsPerPersona: Math.round((seconds * 1000) / done) };
}

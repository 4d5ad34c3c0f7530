/**
 * Embedding throughput in personas per second, three ways over the same persona texts:
 *
 * - raw session: the model's ONNX file in an onnxruntime-node InferenceSession of its own, fed by the
 *   model's tokenizer. Per batch: tokenise (padding to the batch's longest text), wrap the ids as
 *   int64 tensors, session.run, pool each row as the model says (CLS or the mean over its attended
 *   tokens) and L2-normalise it. That is the least work that turns texts into unit vectors; the
 *   texts come grouped by length (windows of 128 sorted), so batches pad little, swept over batch
 *   sizes. Two rates count: one text per run (how the indexer runs, so that a text's vector does
 *   not depend on its batch: see shared/embedding/embedder.ts) and the best batch size (what
 *   batching would buy, at the price of batch-dependent int8 vectors).
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
import { createEmbedder, type Embedder, type EmbeddingModelInfo, type EmbeddingPooling } from '../shared/embedding';
import { onnxFileFor, resolveEmbedderSettings, type EmbeddingDtype } from '../shared/embedding/config';
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

/** What the raw session needs to know of the model: its file and how it pools. */
export interface RawModel {
  dir: string;
  dtype: EmbeddingDtype;
  pooling: EmbeddingPooling;
  maxTokens: number;
}

/** The model the bench's embedder loaded, for the raw session (EMBEDDING_MODEL_DIR). */
export function rawModelOf(model: EmbeddingModelInfo): RawModel {
  const { modelDir } = resolveEmbedderSettings();
  if (!modelDir) throw new Error('the raw session needs EMBEDDING_MODEL_DIR (a model directory)');
  return { dir: modelDir, dtype: model.dtype, pooling: model.pooling, maxTokens: model.maxTokens };
}

/** The least work from texts to unit vectors on the model's ONNX file (see the file comment). */
export async function rawOnnxEmbedder(model: RawModel, threads: number): Promise<{ embedBatch: (batch: string[]) => Promise<Float32Array[]>; release(): Promise<void> }> {
  const ort = transformersOrt();
  const { AutoTokenizer } = await import('@huggingface/transformers');
  const tokenizer = await AutoTokenizer.from_pretrained(model.dir, { local_files_only: true });
  // transformers.js's session options on Node (CPU execution provider), with the indexer's threads.
  const session = await ort.InferenceSession.create(path.join(model.dir, onnxFileFor(model.dtype)), { intraOpNumThreads: threads });
  const embedBatch = async (batch: string[]): Promise<Float32Array[]> => {
    const encoded = tokenizer(batch, { padding: true, truncation: true, max_length: model.maxTokens }) as unknown as Record<string, { data: BigInt64Array; dims: number[] }>;
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
    for (const name of session.inputNames) {
      const input = encoded[name];
      if (!input) throw new Error(`the tokenizer gave no ${name}`);
      feeds[name] = new ort.Tensor('int64', input.data, input.dims);
    }
    const output = (await session.run(feeds))[session.outputNames[0]!]!;
    const [rows, sequence, width] = output.dims as [number, number, number];
    const data = output.data as Float32Array;
    const mask = encoded.attention_mask!.data;
    const vectors: Float32Array[] = [];
    for (let row = 0; row < rows; row++) {
      const vector = new Float32Array(width);
      if (model.pooling === 'cls') vector.set(data.subarray(row * sequence * width, row * sequence * width + width));
      else {
        let count = 0;
        for (let position = 0; position < sequence; position++) {
          if (mask[row * sequence + position] === 0n) continue;
          count++;
          const offset = (row * sequence + position) * width;
          for (let i = 0; i < width; i++) vector[i]! += data[offset + i]!;
        }
        for (let i = 0; i < width; i++) vector[i]! /= count;
      }
      let norm = 0;
      for (const value of vector) norm += value * value;
      norm = Math.sqrt(norm) || 1;
      for (let i = 0; i < width; i++) vector[i]! /= norm;
      vectors.push(vector);
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
export async function measureCeiling(model: RawModel, texts: readonly string[], batchSizes: readonly number[], timing: { budgetMs: number; repetitions: number }, threads: number): Promise<CeilingResult> {
  const raw = await rawOnnxEmbedder(model, threads);
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
  /** Texts per embedDocuments call: the stream batch size the indexer is invoked with (each text one ONNX run). */
  streamBatchSize: number;
  /** The raw session one text per run, sampled in the same rounds as the indexer's path. */
  rawSingleText: RateMeasurement;
  /** The raw session at its best batch size of the sweep (the same as rawSingleText when that is 1). */
  rawBestBatch: RateMeasurement & { batchSize: number };
  embedDocuments: RateMeasurement;
  /** syncPersonaChanges with the table read from memory and Qdrant answering at once. */
  syncWithoutIo: RateMeasurement;
  /**
   * Median over the rounds of each round's rate / that round's raw rate: neighbours in time share
   * the machine's load of the moment, so this holds up better than a ratio of medians when that
   * load drifts.
   */
  shareOfSingleText: { embedDocuments: number; syncWithoutIo: number };
  shareOfBestBatch: { embedDocuments: number; syncWithoutIo: number };
}

/** A Qdrant stand-in for syncPersonaChanges: a collection with every vector (keywords too), no point yet, and every write succeeds at once. */
const instantQdrant = {
  getCollection: async () => ({ config: { params: { sparse_vectors: { [KEYWORDS_VECTOR]: {} } }, metadata: {} } }),
  retrieve: async () => [],
  upsert: async () => ({ operation_id: 0, status: 'completed' }),
  delete: async () => ({ operation_id: 0, status: 'completed' }),
} as unknown as QdrantClient;

/**
 * The raw session (one text per run, and at its best batch size) and the indexer's path sampled in
 * interleaved rounds (raw single, raw best batch, embedDocuments, sync, raw single, …), so that load
 * from elsewhere on the machine hits all of them alike. The indexer's embedder is a new one with
 * `threads` intra-op threads, like the raw session's.
 */
export async function measureIndexerComparison(
  personas: readonly Persona[],
  bestBatchSize: number,
  timing: { budgetMs: number; rounds: number },
  threads: number,
): Promise<IndexerComparison> {
  const embedder = await createEmbedder({ threads });
  try {
    return await compareWithRawSession(personas, embedder, bestBatchSize, timing, threads);
  } finally {
    await embedder.dispose();
  }
}

async function compareWithRawSession(
  personas: readonly Persona[],
  embedder: Embedder,
  bestBatchSize: number,
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
  const raw = await rawOnnxEmbedder(rawModelOf(embedder.model), threads);
  // Each contender walks its own cycle over the same texts; the raw session's batches are grouped by
  // length, while the indexer's path gets them as they come (one run per text pads nothing).
  type Contender = 'rawSingleText' | 'rawBestBatch' | 'embedDocuments' | 'syncWithoutIo';
  const contenders: Array<[Contender, number, EmbedBatch, (count: number) => string[]]> = [
    ['rawSingleText', 1, raw.embedBatch, textCycle(texts)],
    ...(bestBatchSize > 1 ? [['rawBestBatch', bestBatchSize, raw.embedBatch, textCycle(groupedByLength(texts))] as [Contender, number, EmbedBatch, (count: number) => string[]]] : []),
    ['embedDocuments', streamBatchSize, (batch) => embedder.embedDocuments(batch), textCycle(texts)],
    ['syncWithoutIo', streamBatchSize, sync, textCycle(texts)],
  ];
  const samples: Record<Contender, number[]> = { rawSingleText: [], rawBestBatch: [], embedDocuments: [], syncWithoutIo: [] };
  for (const [, batchSize, embedBatch, next] of contenders) await embedBatch(next(batchSize));
  for (let round = 0; round < timing.rounds; round++) {
    for (const [name, batchSize, embedBatch, next] of contenders) samples[name].push(await sampleRate(next, batchSize, embedBatch, timing.budgetMs));
  }
  await raw.release();
  if (bestBatchSize === 1) samples.rawBestBatch = samples.rawSingleText;
  const shareOf = (reference: number[]) => ({
    embedDocuments: roundShare(median(samples.embedDocuments.map((value, round) => value / reference[round]!))),
    syncWithoutIo: roundShare(median(samples.syncWithoutIo.map((value, round) => value / reference[round]!))),
  });
  return {
    threads,
    streamBatchSize,
    rawSingleText: rate(samples.rawSingleText),
    rawBestBatch: { batchSize: bestBatchSize, ...rate(samples.rawBestBatch) },
    embedDocuments: rate(samples.embedDocuments),
    syncWithoutIo: rate(samples.syncWithoutIo),
    shareOfSingleText: shareOf(samples.rawSingleText),
    shareOfBestBatch: shareOf(samples.rawBestBatch),
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

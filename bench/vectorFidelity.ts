/**
 * How faithful and how batch-independent the embedder's vectors are, for the two dtypes it offers:
 *
 * - q8 against fp32: each persona text through the production embedder in both dtypes (one text per
 *   ONNX run), the cosine of the two vectors;
 * - batch independence: each text embedded alone and inside one mixed call with the other texts,
 *   their longer copies and the empty text, per dtype: how many vectors are bit-equal, the least
 *   cosine;
 * - what batching would do: the raw session (bench/embeddingThroughput.ts) running the same texts in
 *   padded batches as they come, against each text alone in it; with dynamic int8 (DynamicQuantizeLinear,
 *   one activation scale per run) a text's vector then depends on its batch;
 * - the reference: where the model directory has `reference_vectors.json` (../shared/models/all-MiniLM-L6-v2:
 *   texts with their fp32 and q8 vectors from onnxruntime in Python), the embedder's least cosine to it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createEmbedder, type Embedder, type EmbeddingDtype } from '../shared/embedding';
import { rawOnnxEmbedder, type RawModel } from './embeddingThroughput';

export interface CosineSummary {
  texts: number;
  min: number;
  median: number;
}

export interface FidelityResult {
  /** Texts compared (persona texts of the bench's corpus). */
  texts: number;
  q8VsFp32: CosineSummary;
  /** Per dtype: embedded alone vs in one mixed call. */
  batchIndependence: Array<{ dtype: EmbeddingDtype; bitEqual: number; minCosine: number }>;
  /** Per dtype: the raw session in padded batches of `batch` as the texts come, vs alone. */
  batchedRawSession: Array<{ dtype: EmbeddingDtype; batch: number } & CosineSummary>;
  /** The embedder's vectors of reference_vectors.json's texts against its vectors, per dtype (each text alone). */
  reference?: Array<{ dtype: EmbeddingDtype } & CosineSummary>;
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return dot / Math.sqrt(aa * bb);
};

const round7 = (value: number) => Math.round(value * 1e7) / 1e7;
function summary(cosines: number[]): CosineSummary {
  const sorted = [...cosines].sort((a, b) => a - b);
  return { texts: sorted.length, min: round7(sorted[0] ?? Number.NaN), median: round7(sorted[sorted.length >> 1] ?? Number.NaN) };
}

async function alone(embedder: Embedder, texts: readonly string[]): Promise<number[][]> {
  const vectors: number[][] = [];
  for (const text of texts) vectors.push((await embedder.embedDocuments([text]))[0]!);
  return vectors;
}

export async function measureVectorFidelity(modelDir: string, texts: readonly string[], threads: number, batch = 8): Promise<FidelityResult> {
  const embedders = {
    q8: await createEmbedder({ modelDir, dtype: 'q8', threads }),
    fp32: await createEmbedder({ modelDir, dtype: 'fp32', threads }),
  };
  try {
    const vectors = { q8: await alone(embedders.q8, texts), fp32: await alone(embedders.fp32, texts) };
    const result: FidelityResult = { texts: texts.length, q8VsFp32: summary(vectors.q8.map((v, i) => cosine(v, vectors.fp32[i]!))), batchIndependence: [], batchedRawSession: [] };
    // The texts among copies four times as long and the empty text, in one call.
    const mixed = [...texts.map((text) => text.repeat(4)), '', ...texts];
    for (const dtype of ['q8', 'fp32'] as const) {
      const inMixed = (await embedders[dtype].embedDocuments(mixed)).slice(texts.length + 1);
      result.batchIndependence.push({
        dtype,
        bitEqual: inMixed.filter((v, i) => v.every((x, j) => x === vectors[dtype][i]![j])).length,
        minCosine: round7(Math.min(...inMixed.map((v, i) => cosine(v, vectors[dtype][i]!)))),
      });
      const model: RawModel = { dir: modelDir, dtype, pooling: embedders[dtype].model.pooling, maxTokens: embedders[dtype].model.maxTokens };
      const raw = await rawOnnxEmbedder(model, threads);
      const batched: Float32Array[] = [];
      for (let start = 0; start < texts.length; start += batch) batched.push(...(await raw.embedBatch(texts.slice(start, start + batch))));
      const single: Float32Array[] = [];
      for (const text of texts) single.push(...(await raw.embedBatch([text])));
      await raw.release();
      result.batchedRawSession.push({ dtype, batch, ...summary(batched.map((v, i) => cosine(v, single[i]!))) });
    }
    const referenceFile = path.join(modelDir, 'reference_vectors.json');
    if (existsSync(referenceFile)) {
      const reference = JSON.parse(readFileSync(referenceFile, 'utf8')) as { texts: string[] } & Record<EmbeddingDtype, number[][]>;
      result.reference = [];
      for (const dtype of ['q8', 'fp32'] as const) {
        const embedded = await alone(embedders[dtype], reference.texts);
        result.reference.push({ dtype, ...summary(embedded.map((v, i) => cosine(v, reference[dtype][i]!))) });
      }
    }
    return result;
  } finally {
    await embedders.q8.dispose();
    await embedders.fp32.dispose();
  }
}

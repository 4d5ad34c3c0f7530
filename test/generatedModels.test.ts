/**
 * The MEANINGLESS bge-small-shaped benchmark model (lib/generatedModels/bgeShapedModel.ts): that it
 * has bge-small-en-v1.5's shape and size, loads in ONNX Runtime and through the production embedder,
 * and that its q8 file is quantized the way onnxruntime's quantize_dynamic writes it. Its speed is
 * the bench's business (`npm run bench`), not a test's.
 *
 * What it is compared with: bge-small-en-v1.5's config.json (12 layers, hidden 384, 12 heads,
 * intermediate 1536, vocabulary 30,522, 512 positions), its model card ("33.4M" parameters, which
 * counts BertModel's pooler), the hub's ONNX files (~133 MB fp32, ~34 MB q8), and quantize_dynamic in
 * onnxruntime/python/tools/quantization/quantize.py, which quantizes only MatMuls with a constant B
 * ("MatMulConstBOnly" defaults to True) and Gathers from constant tables, with uint8 activations
 * ("dynamic activation only supports uint8") through DynamicQuantizeLinear.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto } from 'onnx-buf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findPackageDir, PROJECT_ROOT } from '../infra/bundling';
import {
  BGE_SHAPED_MODEL_ID,
  BGE_SMALL_ARCHITECTURE,
  BGE_SMALL_PUBLISHED,
  buildBgeShapedVocab,
  buildBgeShapedWeights,
  generateBgeShapedModel,
} from '../lib/generatedModels/bgeShapedModel';
import { BGE_QUERY_PREFIX, createEmbedder } from '../shared/embedding';
import { expectBatchIndependent, mixedLengthTexts } from './support/batchIndependence';

type Ort = typeof import('onnxruntime-node');
/** The onnxruntime-node that transformers.js loads. */
const ort = createRequire(path.join(findPackageDir('@huggingface/transformers', PROJECT_ROOT), 'package.json'))('onnxruntime-node') as Ort;

const within = (actual: number, expected: number, share: number) => Math.abs(actual - expected) / expected <= share;

function opCounts(model: ModelProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of model.graph?.node ?? []) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
  return counts;
}

describe('the bge-small-shaped benchmark model', () => {
  let dir: string;
  let summary: Awaited<ReturnType<typeof generateBgeShapedModel>>['summary'];
  let fp32: ModelProto;
  let q8: ModelProto;

  beforeAll(async () => {
    // Named as the model names itself, so that its id is BGE_SHAPED_MODEL_ID (see directoryModelId).
    dir = path.join(await mkdtemp(path.join(tmpdir(), 'bge-shaped-')), 'bge-small-shaped-random');
    const started = performance.now();
    const result = await generateBgeShapedModel(dir);
    // "In seconds": about 6 s on a loaded 2-core machine.
    expect(performance.now() - started).toBeLessThan(60_000);
    summary = result.summary;
    fp32 = fromBinary(ModelProtoSchema, await readFile(path.join(dir, 'onnx/model.onnx')));
    q8 = fromBinary(ModelProtoSchema, await readFile(path.join(dir, 'onnx/model_quantized.onnx')));
  });

  afterAll(async () => {
    await rm(path.dirname(dir), { recursive: true, force: true });
  });

  it("has bge-small-en-v1.5's parameter count and file sizes within 5%", async () => {
    // 33,212,160 in the graph; BertModel's pooler (384 x 384 + 384) makes the model card's 33.4M.
    expect(summary.parameters).toBe(33_212_160);
    expect(summary.parametersWithPooler).toBe(33_212_160 + 147_840);
    expect(within(summary.parametersWithPooler, BGE_SMALL_PUBLISHED.parameters, 0.05)).toBe(true);
    expect(within(summary.fp32Bytes, BGE_SMALL_PUBLISHED.fp32Bytes, 0.05)).toBe(true);
    expect(within(summary.q8Bytes, BGE_SMALL_PUBLISHED.q8Bytes, 0.05)).toBe(true);
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      hidden_size: 384,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      intermediate_size: 1536,
      vocab_size: 30_522,
      max_position_embeddings: 512,
      layer_norm_eps: 1e-12,
      hidden_act: 'gelu',
    });
    expect(config.persona_db_generated_model.note).toMatch(/MEANINGLESS/);
  });

  it('has a WordPiece vocabulary of 30,522 tokens with BERT-uncased special token ids', async () => {
    const vocab = buildBgeShapedVocab();
    expect(vocab).toHaveLength(BGE_SMALL_ARCHITECTURE.vocabSize);
    expect(new Set(vocab).size).toBe(vocab.length);
    expect([vocab[0], vocab[100], vocab[101], vocab[102], vocab[103]]).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    const tokenizer = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(tokenizer.model.type).toBe('WordPiece');
    expect(Object.keys(tokenizer.model.vocab)).toHaveLength(30_522);
  });

  it('is described like bge-small: CLS pooling, normalised, the bge query prompt', async () => {
    const read = async (file: string) => JSON.parse(await readFile(path.join(dir, file), 'utf8'));
    expect(await read('1_Pooling/config.json')).toMatchObject({ word_embedding_dimension: 384, pooling_mode_cls_token: true, pooling_mode_mean_tokens: false });
    expect((await read('modules.json')).map((m: { type: string }) => m.type)).toEqual([
      'sentence_transformers.models.Transformer',
      'sentence_transformers.models.Pooling',
      'sentence_transformers.models.Normalize',
    ]);
    expect((await read('config_sentence_transformers.json')).prompts.query).toBe(BGE_QUERY_PREFIX);
  });

  it('writes the fp32 graph with float MatMuls only and the q8 graph with dynamic quantization', () => {
    const float = opCounts(fp32);
    // Per layer: Q, K, V, attention output, intermediate, output (6 with constant B) + 2 attention-score MatMuls.
    expect(float.get('MatMul')).toBe(12 * 8);
    expect(float.get('LayerNormalization')).toBe(1 + 12 * 2);
    expect(float.get('Erf')).toBe(12);
    expect(float.has('MatMulInteger')).toBe(false);

    const quantized = opCounts(q8);
    expect(quantized.get('MatMulInteger')).toBe(12 * 6);
    expect(quantized.get('MatMul')).toBe(12 * 2);
    // One DynamicQuantizeLinear per quantized activation: Q/K/V share theirs, then context, attended, GELU output.
    expect(quantized.get('DynamicQuantizeLinear')).toBe(12 * 4);
    // Word, position and token type tables gathered as int8 and dequantized.
    expect(quantized.get('DequantizeLinear')).toBe(3);
    const int8Weights = q8.graph!.initializer.filter((t) => t.dataType === 3 && t.dims.length > 0);
    expect(int8Weights).toHaveLength(12 * 6 + 3);
    const int8Elements = int8Weights.reduce((n, t) => n + t.dims.reduce((m, d) => m * Number(d), 1), 0);
    // All but the LayerNorm parameters and biases are int8.
    expect(int8Elements).toBe(33_212_160 - (25 * 2 * 384 + 12 * (4 * 384 + 1536 + 384)));
  });

  it('runs in ONNX Runtime, both dtypes, giving [batch, sequence, 384], with masked padding ignored', async () => {
    for (const file of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
      const session = await ort.InferenceSession.create(path.join(dir, file));
      try {
        const run = async (ids: bigint[], mask: bigint[]) => {
          const shape = [1, ids.length];
          const out = (
            await session.run({
              input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), shape),
              attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask), shape),
              token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), shape),
            })
          ).last_hidden_state!;
          expect(out.dims).toEqual([1, ids.length, 384]);
          const data = out.data as Float32Array;
          expect(data.every(Number.isFinite)).toBe(true);
          return data.slice(0, 384);
        };
        const text = [101n, 2000n, 3000n, 4000n, 102n];
        const alone = await run(text, [1n, 1n, 1n, 1n, 1n]);
        const padded = await run([...text, 0n, 0n], [1n, 1n, 1n, 1n, 1n, 0n, 0n]);
        const attendingPadding = await run([...text, 0n, 0n], [1n, 1n, 1n, 1n, 1n, 1n, 1n]);
        const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
        // fp32 ignores masked positions exactly (to rounding); q8's activation scales see the padded rows too.
        expect(maxDiff(alone, padded)).toBeLessThan(file.endsWith('quantized.onnx') ? 0.05 : 1e-4);
        expect(maxDiff(alone, attendingPadding)).toBeGreaterThan(1e-3);
      } finally {
        await session.release();
      }
    }
  });

  it('gives a text the same bits whatever it is embedded with through the production embedder, q8 (dynamic int8) and fp32', async () => {
    const texts = mixedLengthTexts('A physicist who explains relativity with trains and clocks, and a pastry chef on weekends.');
    for (const dtype of ['q8', 'fp32'] as const) {
      const embedder = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: dir, EMBEDDING_DTYPE: dtype } });
      try {
        await expectBatchIndependent(embedder, texts);
      } finally {
        await embedder.dispose();
      }
    }
  });

  it('loads through the production embedder as a 384-dimension model', async () => {
    const embedder = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: dir } });
    try {
      expect(embedder.model).toMatchObject({ id: BGE_SHAPED_MODEL_ID, dimension: 384, dtype: 'q8', pooling: 'cls' });
      const [vector] = await embedder.embedDocuments(['A physicist who explains relativity with trains and clocks.']);
      expect(Math.hypot(...vector!)).toBeCloseTo(1, 5);
    } finally {
      await embedder.dispose();
    }
  });

  it('has the same weights on every build', () => {
    const digest = (values: Float32Array) => createHash('sha256').update(new Uint8Array(values.buffer)).digest('hex');
    const a = buildBgeShapedWeights().get('encoder.layer.11.output.dense.weight')!;
    const b = buildBgeShapedWeights().get('encoder.layer.11.output.dense.weight')!;
    expect(digest(a.values)).toBe(digest(b.values));
  });
});

/**
 * A MEANINGLESS model that costs what BAAI/bge-small-en-v1.5 costs, for benchmarks only.
 *
 * BERT with bge-small-en-v1.5's architecture exactly (12 layers, hidden 384, 12 heads of 32,
 * intermediate 1536, exact (erf) GELU, LayerNorm eps 1e-12, vocabulary 30,522, 512 positions, 2 token
 * types) and deterministic pseudo-random weights (uniform with BERT's initializer standard deviation
 * 0.02; LayerNorm scales 1, shifts 0). Same FLOPs, same memory, same file sizes; its vectors mean
 * nothing, so it must never stand in for a real model in a test of search quality, and it is never
 * the default of `npm start`.
 *
 *   <dir>/config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json
 *   <dir>/modules.json, 1_Pooling/config.json, config_sentence_transformers.json  (CLS pooling, bge's query prompt)
 *   <dir>/onnx/model.onnx             fp32, the graph torch.onnx/Optimum export for BertModel
 *   <dir>/onnx/model_quantized.onnx   int8 weights, dynamically quantized as onnxruntime's
 *                                     quantize_dynamic (which Optimum's ORTQuantizer runs) writes it
 *
 * The quantized file follows quantize_dynamic's defaults: every MatMul whose B is a constant
 * (MatMulConstBOnly) becomes DynamicQuantizeLinear (uint8 activations, shared by the consumers of
 * one tensor) -> MatMulInteger (int8 symmetric weights, one scale per tensor) -> Cast -> Mul by
 * activation scale x weight scale, the bias Add staying float; every Gather from a constant table
 * (word, position, token type embeddings) gathers int8 rows and DequantizeLinear's them. The
 * attention-score MatMuls (both inputs computed) stay float, as quantize_dynamic leaves them.
 *
 * The tokenizer is bge's kind (uncased BERT WordPiece, [CLS] ... [SEP]) with 30,522 entries in
 * bert-base-uncased's layout (ids 0-103 are [PAD], [unused0-98], [UNK], [CLS], [SEP], [MASK]): real
 * English words (the test model's ~2,000 and some 250 more common words and first names), the
 * numbers 0-2030, every letter and two-letter word piece, then pronounceable pseudo-words to fill
 * the table. English text outside those words splits into more pieces than bge's real vocabulary
 * would give; the bench reports tokens per text beside the least any WordPiece tokenizer could give
 * (one per word and punctuation mark), so the difference can be seen.
 */
import { seededRandom } from '../seededRandom';
import { bertTokenizerFiles, jsonFile, sentenceTransformersFiles, writeModelDirectory, type GenerateResult, type ModelFiles } from './modelDirectory';
import { bertFeatureExtractionIo, encodeOnnxModel, floatTensor, GraphBuilder, int64Tensor, int8Tensor, OnnxDataType } from './onnxWriter';
import { buildTestVocab, DIGITS, LETTERS, PUNCTUATION } from './testModel';

export const BGE_SHAPED_MODEL_ID = 'persona-db/bge-small-shaped-random';
export const DEFAULT_BGE_SHAPED_MODEL_DIR = '.cache/models/bge-small-shaped-random';
const SEED = 'bge-small-shaped-random/v1';

/** BAAI/bge-small-en-v1.5's config.json. */
export const BGE_SMALL_ARCHITECTURE = {
  hiddenSize: 384,
  layers: 12,
  heads: 12,
  intermediateSize: 1536,
  vocabSize: 30_522,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  initializerRange: 0.02,
} as const;

/**
 * bge-small-en-v1.5's published figures, for the generator's comparison: "33.4M" parameters on the
 * model card (BertModel with its pooler), and the hub's onnx/model.onnx ~133 MB and
 * onnx/model_quantized.onnx ~34 MB (as its file listing rounds them).
 */
export const BGE_SMALL_PUBLISHED = {
  parameters: 33_400_000,
  fp32Bytes: 133_000_000,
  q8Bytes: 34_000_000,
} as const;

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

const ONSETS = 'b c d f g h j k l m n p r s t v w z br cr dr fr gr pr tr bl cl fl gl pl sl st sp sk ch sh th'.split(' ');
const VOWELS = 'a e i o u ai ea ee ia io oa ou'.split(' ');
const CODAS = ['', 'n', 'r', 'l', 's', 'm', 't', 'nd', 'st', 'rk'];

/**
 * Common English words and first names beyond the test model's, which bert-base-uncased's
 * vocabulary (bge's) keeps whole, so that ordinary English splits into about as many tokens as
 * with bge's tokenizer (rare names such as Lovelace or Khayyam still split, in both).
 */
const MORE_WORDS = `expertise conversational conversation mode modes signature phrase phrases root roots discovery
  discoveries matter matters anything everything nothing something taught teach teaches teaching
  talent talents need needs needed practise practised practice daily weekly none medium interviewer
  measure measured simplicity simple simpler principle principles humility honesty imagination
  discipline beauty doubt doubts silence courage rigor rigour exuberant reserved intense intensity
  linguistics linguist oceanography geology geologist sociology sociologist architecture architect
  dance dancer dancing anthropology economics economist engineering engineer robotics climate
  journalism journalist finance design designer photography photographer archaeology archaeologist
  theatre theater film films cooking cook chef music musician painting painter poetry poet law
  lawyer chess gardening garden sports athlete nutrition education educator debater debate coach
  critic mentor comedian counselor explorer skeptic sceptic advocate storyteller passionate playful
  stoic gentle witty curious curiosity kindness evidence patience tradition wonder craft community
  play memory fast slow young old think through thing try show first simple mistake data question
  twice beautiful stay leo franklin omar grace isaac alan marie julia carl richard maya sofia priya
  rosalind nikola emmy frida ada yuki tariq hopper patel rossi tanaka turing curie tesla child`;

/** 30,522 tokens in id order (see the file comment). */
export function buildBgeShapedVocab(): string[] {
  const { vocabSize } = BGE_SMALL_ARCHITECTURE;
  const vocab: string[] = ['[PAD]'];
  for (let i = 0; i <= 98; i++) vocab.push(`[unused${i}]`);
  vocab.push('[UNK]', '[CLS]', '[SEP]', '[MASK]');
  for (let i = 99; i <= 993; i++) vocab.push(`[unused${i}]`);
  const seen = new Set(vocab);
  const add = (token: string) => {
    if (vocab.length < vocabSize && !seen.has(token)) {
      seen.add(token);
      vocab.push(token);
    }
  };
  for (const c of PUNCTUATION + DIGITS + LETTERS) add(c);
  for (const entry of buildTestVocab()) if (!entry.token.startsWith('[')) add(entry.token);
  for (const word of MORE_WORDS.split(/\s+/)) add(word);
  // Numbers: bert-base-uncased holds 0-2030 or so whole (years, counts).
  for (let n = 0; n <= 2030; n++) add(String(n));
  for (const c of DIGITS + LETTERS) add(`##${c}`);
  for (const a of LETTERS) for (const b of LETTERS) add(`##${a}${b}`);
  const random = seededRandom(`${SEED}:vocab`);
  const pick = (items: readonly string[]) => items[Math.floor(random() * items.length)]!;
  while (vocab.length < vocabSize) {
    const syllables = 1 + Math.floor(random() * 3);
    let word = '';
    for (let i = 0; i < syllables; i++) word += pick(ONSETS) + pick(VOWELS) + pick(CODAS);
    add(random() < 0.25 ? `##${word}` : word);
  }
  return vocab;
}

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/** One trained tensor of BertModel (without the pooler, which the ONNX export drops). */
interface Weight {
  name: string;
  dims: number[];
  values: Float32Array;
}

/** Uniform in [-a, a) with a = sqrt(3) * 0.02: the standard deviation of BERT's initializer. */
function randomWeight(name: string, dims: number[]): Weight {
  const values = new Float32Array(dims.reduce((n, d) => n * d, 1));
  const next = seededRandom(`${SEED}:${name}`);
  const a = Math.sqrt(3) * BGE_SMALL_ARCHITECTURE.initializerRange;
  for (let i = 0; i < values.length; i++) values[i] = (2 * next() - 1) * a;
  return { name, dims, values };
}

const filled = (name: string, dims: number[], value: number): Weight => ({ name, dims, values: new Float32Array(dims.reduce((n, d) => n * d, 1)).fill(value) });

/** Every weight, in the order of BertModel's state dict (pooler excluded). */
export function buildBgeShapedWeights(): Map<string, Weight> {
  const { hiddenSize: h, layers, intermediateSize: ff, vocabSize, maxPositions, typeVocabSize } = BGE_SMALL_ARCHITECTURE;
  const weights: Weight[] = [
    randomWeight('embeddings.word_embeddings.weight', [vocabSize, h]),
    randomWeight('embeddings.position_embeddings.weight', [maxPositions, h]),
    randomWeight('embeddings.token_type_embeddings.weight', [typeVocabSize, h]),
    filled('embeddings.LayerNorm.weight', [h], 1),
    filled('embeddings.LayerNorm.bias', [h], 0),
  ];
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    // MatMul weights are stored [in, out], as the exporter writes the transposed nn.Linear weight.
    for (const part of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      weights.push(randomWeight(`${p}.${part}.weight`, [h, h]), randomWeight(`${p}.${part}.bias`, [h]));
    }
    weights.push(filled(`${p}.attention.output.LayerNorm.weight`, [h], 1), filled(`${p}.attention.output.LayerNorm.bias`, [h], 0));
    weights.push(randomWeight(`${p}.intermediate.dense.weight`, [h, ff]), randomWeight(`${p}.intermediate.dense.bias`, [ff]));
    weights.push(randomWeight(`${p}.output.dense.weight`, [ff, h]), randomWeight(`${p}.output.dense.bias`, [h]));
    weights.push(filled(`${p}.output.LayerNorm.weight`, [h], 1), filled(`${p}.output.LayerNorm.bias`, [h], 0));
  }
  return new Map(weights.map((w) => [w.name, w]));
}

/** BertModel's pooler (dense 384x384 + bias): in the published parameter count, not in the ONNX graph. */
export const POOLER_PARAMETERS = BGE_SMALL_ARCHITECTURE.hiddenSize * BGE_SMALL_ARCHITECTURE.hiddenSize + BGE_SMALL_ARCHITECTURE.hiddenSize;

// ---------------------------------------------------------------------------------------------
// Graph
// ---------------------------------------------------------------------------------------------

/** Symmetric int8 with one scale for the tensor (quantize_dynamic's QInt8 default). */
function quantizeSymmetric(values: Float32Array): { q: Int8Array; scale: number } {
  let maxAbs = 0;
  for (const x of values) maxAbs = Math.max(maxAbs, Math.abs(x));
  const scale = Math.fround(maxAbs / 127 || 1);
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i]! / scale)));
  return { q, scale };
}

class BertGraph {
  readonly g = new GraphBuilder();
  /** DynamicQuantizeLinear outputs per tensor, shared by its consumers as quantize_dynamic does. */
  private readonly quantizedActivations = new Map<string, [string, string, string]>();

  constructor(
    private readonly weights: Map<string, Weight>,
    private readonly quantized: boolean,
  ) {}

  private weight(name: string): Weight {
    const w = this.weights.get(name);
    if (!w) throw new Error(`no weight ${name}`);
    return w;
  }

  /** A float initializer from a weight. */
  float(name: string): string {
    const w = this.weight(name);
    return this.g.initializer(floatTensor(name, w.dims, w.values));
  }

  constant(name: string, value: number): string {
    return this.g.initializer(floatTensor(name, [], Float32Array.of(value)));
  }

  ints(name: string, values: number[]): string {
    return this.g.initializer(int64Tensor(name, [values.length], values));
  }

  /** Gather rows of a constant table; int8 rows + DequantizeLinear when quantized. */
  gather(table: string, indices: string, output: string): string {
    if (!this.quantized) return this.g.node('Gather', [this.float(table), indices], [output], { axis: 0 })[0]!;
    const { q, scale } = quantizeSymmetric(this.weight(table).values);
    const qName = this.g.initializer(int8Tensor(`${table}_quantized`, this.weight(table).dims, q));
    const scaleName = this.g.initializer(floatTensor(`${table}_scale`, [], Float32Array.of(scale)));
    const zeroName = this.g.initializer(int8Tensor(`${table}_zero_point`, [], Int8Array.of(0)));
    const [gathered] = this.g.node('Gather', [qName, indices], [`${output}_quantized`], { axis: 0 });
    return this.g.node('DequantizeLinear', [gathered!, scaleName, zeroName], [output])[0]!;
  }

  /** x @ W + b for a constant W [in, out]: float MatMul, or the dynamic-quantization pattern. */
  linear(x: string, prefix: string, output: string): string {
    const bias = this.float(`${prefix}.bias`);
    if (!this.quantized) {
      const [product] = this.g.node('MatMul', [x, this.float(`${prefix}.weight`)], [`${output}_matmul`]);
      return this.g.node('Add', [bias, product!], [output])[0]!;
    }
    let activation = this.quantizedActivations.get(x);
    if (!activation) {
      activation = [`${x}_quantized`, `${x}_scale`, `${x}_zero_point`];
      this.g.node('DynamicQuantizeLinear', [x], activation);
      this.quantizedActivations.set(x, activation);
    }
    const [xq, xScale, xZero] = activation;
    const w = this.weight(`${prefix}.weight`);
    const { q, scale } = quantizeSymmetric(w.values);
    const wq = this.g.initializer(int8Tensor(`${w.name}_quantized`, w.dims, q));
    const wScale = this.g.initializer(floatTensor(`${w.name}_scale`, [], Float32Array.of(scale)));
    const wZero = this.g.initializer(int8Tensor(`${w.name}_zero_point`, [], Int8Array.of(0)));
    const [integer] = this.g.node('MatMulInteger', [xq, wq, xZero, wZero], [`${output}_matmul_quantized`]);
    const [asFloat] = this.g.node('Cast', [integer!], [`${output}_matmul_quantized_cast`], { to: OnnxDataType.FLOAT });
    const [scales] = this.g.node('Mul', [xScale, wScale], [`${output}_matmul_quant_scales_mul`]);
    const [product] = this.g.node('Mul', [asFloat!, scales!], [`${output}_matmul`]);
    return this.g.node('Add', [bias, product!], [output])[0]!;
  }

  layerNorm(x: string, prefix: string, output: string): string {
    return this.g.node('LayerNormalization', [x, this.float(`${prefix}.weight`), this.float(`${prefix}.bias`)], [output], {
      axis: -1,
      epsilon: { float: BGE_SMALL_ARCHITECTURE.layerNormEps },
    })[0]!;
  }
}

/** The ONNX file: BertModel's forward pass as the exporter writes it, output last_hidden_state. */
export function buildBgeShapedOnnx(weights: Map<string, Weight>, quantized: boolean): Uint8Array {
  const { hiddenSize: h, layers, heads, maxPositions } = BGE_SMALL_ARCHITECTURE;
  const headSize = h / heads;
  const b = new BertGraph(weights, quantized);
  const { g } = b;

  // Embeddings: word + position (0..seq-1) + token type, then LayerNorm.
  g.initializer(int64Tensor('position_ids', [1, maxPositions], Array.from({ length: maxPositions }, (_, i) => i)));
  g.node('Shape', ['input_ids'], ['input_shape']);
  g.node('Slice', ['input_shape', b.ints('one_index', [1]), b.ints('two_index', [2])], ['sequence_length']);
  g.node('Slice', ['position_ids', b.ints('zero_index', [0]), 'sequence_length', b.ints('one_index_axis', [1])], ['sliced_position_ids']);
  const words = b.gather('embeddings.word_embeddings.weight', 'input_ids', 'word_embeds');
  const positions = b.gather('embeddings.position_embeddings.weight', 'sliced_position_ids', 'position_embeds');
  const types = b.gather('embeddings.token_type_embeddings.weight', 'token_type_ids', 'token_type_embeds');
  g.node('Add', [words, types], ['embeddings_sum']);
  g.node('Add', ['embeddings_sum', positions], ['embeddings_all']);
  let hidden = b.layerNorm('embeddings_all', 'embeddings.LayerNorm', 'embeddings_output');

  // Extended attention mask: 0 where attended, the float32 minimum where padded, [batch, 1, 1, seq].
  g.node('Unsqueeze', ['attention_mask', b.ints('mask_axes', [1, 2])], ['mask_4d']);
  g.node('Cast', ['mask_4d'], ['mask_float'], { to: OnnxDataType.FLOAT });
  g.node('Sub', [b.constant('one', 1), 'mask_float'], ['mask_inverted']);
  g.node('Mul', ['mask_inverted', b.constant('float_min', -3.4028234663852886e38)], ['attention_bias']);

  const headsShape = b.ints('heads_shape', [0, 0, heads, headSize]);
  const hiddenShape = b.ints('hidden_shape', [0, 0, h]);
  const scale = b.constant('attention_scale', Math.sqrt(headSize));
  const sqrt2 = b.constant('sqrt_two', Math.SQRT2);
  const half = b.constant('half', 0.5);
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    const n = (name: string) => `/layer.${l}/${name}`;
    const split = (name: string, perm: number[]) => {
      const projected = b.linear(hidden, `${p}.attention.self.${name}`, n(`${name}`));
      g.node('Reshape', [projected, headsShape], [n(`${name}_heads`)]);
      return g.node('Transpose', [n(`${name}_heads`)], [n(`${name}_transposed`)], { perm })[0]!;
    };
    const query = split('query', [0, 2, 1, 3]);
    const keyT = split('key', [0, 2, 3, 1]);
    const value = split('value', [0, 2, 1, 3]);
    g.node('MatMul', [query, keyT], [n('scores')]);
    g.node('Div', [n('scores'), scale], [n('scores_scaled')]);
    g.node('Add', [n('scores_scaled'), 'attention_bias'], [n('scores_masked')]);
    g.node('Softmax', [n('scores_masked')], [n('probabilities')], { axis: -1 });
    g.node('MatMul', [n('probabilities'), value], [n('context_heads')]);
    g.node('Transpose', [n('context_heads')], [n('context_transposed')], { perm: [0, 2, 1, 3] });
    g.node('Reshape', [n('context_transposed'), hiddenShape], [n('context')]);
    const attention = b.linear(n('context'), `${p}.attention.output.dense`, n('attention_dense'));
    g.node('Add', [attention, hidden], [n('attention_residual')]);
    const attended = b.layerNorm(n('attention_residual'), `${p}.attention.output.LayerNorm`, n('attention_output'));
    // Exact GELU as the exporter writes it: x * 0.5 * (1 + erf(x / sqrt(2))).
    const intermediate = b.linear(attended, `${p}.intermediate.dense`, n('intermediate'));
    g.node('Div', [intermediate, sqrt2], [n('gelu_div')]);
    g.node('Erf', [n('gelu_div')], [n('gelu_erf')]);
    g.node('Add', [n('gelu_erf'), 'one'], [n('gelu_add')]);
    g.node('Mul', [intermediate, n('gelu_add')], [n('gelu_mul')]);
    g.node('Mul', [n('gelu_mul'), half], [n('gelu')]);
    const output = b.linear(n('gelu'), `${p}.output.dense`, n('output_dense'));
    g.node('Add', [output, attended], [n('output_residual')]);
    hidden = b.layerNorm(n('output_residual'), `${p}.output.LayerNorm`, l === layers - 1 ? 'last_hidden_state' : n('output'));
  }

  return encodeOnnxModel({
    graphName: 'bge_small_shaped_random',
    graph: g,
    ...bertFeatureExtractionIo(h),
    producerName: 'persona-db lib/generatedModels/bgeShapedModel.ts',
    producerVersion: SEED,
    docString:
      `MEANINGLESS benchmark model: bge-small-en-v1.5's architecture with pseudo-random weights (${quantized ? 'int8 dynamic quantization' : 'fp32'}). ` +
      'It costs what bge-small costs; its vectors mean nothing.',
  });
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

function configJson(): unknown {
  const a = BGE_SMALL_ARCHITECTURE;
  return {
    _name_or_path: BGE_SHAPED_MODEL_ID,
    architectures: ['BertModel'],
    attention_probs_dropout_prob: 0.1,
    classifier_dropout: null,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: a.hiddenSize,
    initializer_range: a.initializerRange,
    intermediate_size: a.intermediateSize,
    layer_norm_eps: a.layerNormEps,
    max_position_embeddings: a.maxPositions,
    model_type: 'bert',
    num_attention_heads: a.heads,
    num_hidden_layers: a.layers,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    torch_dtype: 'float32',
    type_vocab_size: a.typeVocabSize,
    vocab_size: a.vocabSize,
    persona_db_generated_model: {
      generator: 'lib/generatedModels/bgeShapedModel.ts',
      seed: SEED,
      note: 'MEANINGLESS: bge-small-en-v1.5 architecture with pseudo-random weights, for benchmarks only. Its vectors mean nothing.',
    },
  };
}

export interface BgeShapedModelSummary {
  /** Parameters in the ONNX graph (BertModel without the pooler). */
  parameters: number;
  /** With BertModel's pooler, as the model card counts. */
  parametersWithPooler: number;
  fp32Bytes: number;
  q8Bytes: number;
}

export function buildBgeShapedModelFiles(): { files: ModelFiles; summary: BgeShapedModelSummary } {
  const weights = buildBgeShapedWeights();
  const parameters = [...weights.values()].reduce((n, w) => n + w.values.length, 0);
  const fp32 = buildBgeShapedOnnx(weights, false);
  const q8 = buildBgeShapedOnnx(weights, true);
  const files: ModelFiles = new Map([
    ['config.json', jsonFile(configJson())],
    ...bertTokenizerFiles(buildBgeShapedVocab()),
    ...sentenceTransformersFiles(BGE_SMALL_ARCHITECTURE.hiddenSize),
    [
      'README.md',
      new TextEncoder().encode(
        '# bge-small-shaped-random: MEANINGLESS benchmark model\n\n' +
          "BAAI/bge-small-en-v1.5's architecture with deterministic pseudo-random weights, generated by\n" +
          '`npm run model:bge-shaped` (lib/generatedModels/bgeShapedModel.ts). It costs what bge-small costs\n' +
          '(FLOPs, memory, file sizes); its vectors mean nothing. For benchmarks only.\n',
      ),
    ],
    ['onnx/model.onnx', fp32],
    ['onnx/model_quantized.onnx', q8],
  ]);
  return { files, summary: { parameters, parametersWithPooler: parameters + POOLER_PARAMETERS, fp32Bytes: fp32.length, q8Bytes: q8.length } };
}

/** Writes the model into `dir` (default BGE_SHAPED_MODEL_DIR or .cache/models/bge-small-shaped-random). */
export async function generateBgeShapedModel(dir?: string): Promise<GenerateResult & { summary: BgeShapedModelSummary }> {
  const { files, summary } = buildBgeShapedModelFiles();
  return { ...(await writeModelDirectory(dir ?? process.env.BGE_SHAPED_MODEL_DIR ?? DEFAULT_BGE_SHAPED_MODEL_DIR, files)), summary };
}

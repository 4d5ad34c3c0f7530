/**
 * Sentence embeddings with @huggingface/transformers' tokenizer and model on onnxruntime-node, as
 * the indexer Lambda, the search Lambda, the local runtime and the benchmarks use them: tokenise (cut
 * at the model's max_seq_length), run the ONNX session, pool and normalise here. See config.ts for
 * how the model is found and modelConventions.ts for how it is used.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { PreTrainedModel, PreTrainedTokenizer, Tensor } from '@huggingface/transformers';

import {
  type EmbedderSettings,
  type EmbedderSettingsInput,
  type EmbeddingDtype,
  type EmbeddingPooling,
  type ModelLocation,
  EmbeddingModelUnavailableError,
  UnembeddableTextError,
  locateModel,
  modelUnavailable,
  onnxFileFor,
  requiredModelFiles,
  resolveEmbedderSettings,
} from './config';
import { directoryModelId, readDescribedConventions, resolveConventions, type ModelConventions } from './modelConventions';

/** What the vectors are; the indexer stores it with the collection to notice a model change. */
export interface EmbeddingModelInfo {
  /** Hub id, or for a model directory EMBEDDING_MODEL_ID, else its folder name (see directoryModelId). */
  readonly id: string;
  /** Hub revision, or for a model directory EMBEDDING_MODEL_REVISION / "sha256:" + a hash of its files. */
  readonly revision: string;
  /** Length of every vector (the model's output width). */
  readonly dimension: number;
  readonly dtype: EmbeddingDtype;
  readonly pooling: EmbeddingPooling;
  /** Whether vectors are unit length. */
  readonly normalize: boolean;
  /** Put before every query; part of what the vectors mean, so recorded with the collection. */
  readonly queryPrefix: string;
  /** Put before every document. */
  readonly documentPrefix: string;
  /** Tokens a text (with its prefix and special tokens) is cut to. */
  readonly maxTokens: number;
}

/** Counters of the work done, for tests and metrics. */
export interface EmbeddingStats {
  /** embedDocuments/embedQuery calls that embedded at least one text. */
  calls: number;
  /** Texts embedded. */
  texts: number;
  /** ONNX runs (one per text). */
  runs: number;
}

export interface EmbedEvent {
  kind: 'documents' | 'query';
  texts: number;
  /** ONNX runs (one per text). */
  runs: number;
  durationMs: number;
}

export interface EmbedderOptions extends EmbedderSettingsInput {
  /** Called after every call that embedded texts. */
  onEmbed?: (event: EmbedEvent) => void;
}

export interface Embedder {
  readonly model: EmbeddingModelInfo;
  /** Live counters; compare before and after to count embedding work. */
  readonly stats: Readonly<EmbeddingStats>;
  /** Query prefix in use (model.queryPrefix). */
  readonly queryPrefix: string;
  /** Pooling, normalisation and prompts, with where each came from. */
  readonly conventions: ModelConventions;
  /**
   * Vectors (unit vectors unless the model says otherwise) of the document prefix + each text, in
   * input order; each text in an ONNX run of its own, so its vector is the same whatever it is
   * embedded with (see createEmbedder). Throws UnembeddableTextError, with the other texts'
   * vectors, when some texts have a zero embedding.
   */
  embedDocuments(texts: readonly string[]): Promise<number[][]>;
  /** Vector of the query prefix + text; UnembeddableTextError when it is a zero vector. */
  embedQuery(text: string): Promise<number[]>;
  /** Releases the ONNX session. */
  dispose(): Promise<void>;
}

type Transformers = typeof import('@huggingface/transformers');

let transformersModule: Promise<Transformers> | undefined;
/** Loaded on first use: importing it loads ONNX Runtime, which modules that only need types should not pay. */
function loadTransformers(): Promise<Transformers> {
  transformersModule ??= import('@huggingface/transformers');
  return transformersModule;
}

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** "sha256:" + 16 hex digits over the files that decide the vectors. */
async function directoryRevision(dir: string, dtype: EmbeddingDtype): Promise<string> {
  const hash = createHash('sha256');
  for (const file of requiredModelFiles(dtype)) {
    hash.update(`${file}\0`);
    hash.update(await readFile(path.join(dir, file)));
  }
  return `sha256:${hash.digest('hex').slice(0, 16)}`;
}

interface LoadedModel {
  tokenizer: PreTrainedTokenizer;
  model: PreTrainedModel;
}

/** The model's tokenizer and ONNX model, through transformers.js (file layout, dtype file, hub and cache). */
async function loadModel(transformers: Transformers, settings: EmbedderSettings, location: ModelLocation): Promise<LoadedModel> {
  const { env, AutoModel, AutoTokenizer } = transformers;
  const session_options = settings.threads === undefined ? {} : { session_options: { intraOpNumThreads: settings.threads } };
  if (location.kind === 'remote') {
    try {
      const hub = { revision: location.revision, cache_dir: location.cacheDir };
      const [tokenizer, model] = await Promise.all([
        AutoTokenizer.from_pretrained(location.modelId, hub),
        AutoModel.from_pretrained(location.modelId, { ...hub, dtype: settings.dtype, ...session_options }),
      ]);
      return { tokenizer, model };
    } catch (error) {
      throw modelUnavailable(
        `${location.modelId}@${location.revision} (dtype ${settings.dtype}) is not in the cache ${location.cacheDir} ` +
          `and could not be downloaded from ${env.remoteHost} (${describe(error)})`,
      );
    }
  }
  env.allowLocalModels = true;
  try {
    // An absolute path is not a hub id, so transformers.js reads the files from it and never asks the hub.
    const [tokenizer, model] = await Promise.all([
      AutoTokenizer.from_pretrained(location.dir, { local_files_only: true }),
      AutoModel.from_pretrained(location.dir, { dtype: settings.dtype, local_files_only: true, ...session_options }),
    ]);
    return { tokenizer, model };
  } catch (error) {
    throw new EmbeddingModelUnavailableError(
      `Could not load the embedding model from ${location.dir} (${onnxFileFor(settings.dtype)}): ${describe(error)}`,
    );
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

/**
 * Token ids of a text the way sentence-transformers (Hugging Face tokenizers) encodes it with
 * `max_seq_length`: a text longer than `maxTokens` loses tokens from its end but keeps the special
 * tokens around it ([CLS] ... [SEP] for BERT). transformers.js's own `truncation` cuts the encoded
 * ids, special tokens included, so a long text lost its [SEP] (the reference vector of
 * all-MiniLM-L6-v2's long text differs from that at cosine 0.9988, and matches with [SEP] kept).
 */
function tokenEncoder(tokenizer: PreTrainedTokenizer, maxTokens: number): (text: string) => BigInt64Array {
  // How many special tokens the tokenizer's template puts after a text: a probe with and without them.
  const probe = tokenizer.encode('a');
  const bare = tokenizer.encode('a', { add_special_tokens: false });
  const start = probe.findIndex((_, i) => bare.every((id, j) => probe[i + j] === id));
  const suffixLength = start < 0 ? 0 : probe.length - start - bare.length;
  if (maxTokens <= probe.length - bare.length) throw new Error(`a token limit of ${maxTokens} leaves no room for text beside the special tokens`);
  return (text) => {
    const ids = tokenizer.encode(text);
    const kept = ids.length <= maxTokens ? ids : [...ids.slice(0, maxTokens - suffixLength), ...ids.slice(ids.length - suffixLength)];
    return BigInt64Array.from(kept, BigInt);
  };
}

/**
 * The sentence vector of one text from its token vectors [1, sequence, width]: the first token's
 * (CLS pooling) or the mean over its tokens (mean pooling; one text has no padding). The mean
 * repeats transformers.js's mean_pooling arithmetic (a float64 sum per dimension over the positions
 * in order, divided by the count, stored as float32).
 */
function poolTokens(hidden: Float32Array, sequence: number, width: number, pooling: EmbeddingPooling): Float32Array {
  if (pooling === 'cls') return hidden.subarray(0, width);
  const sum = new Float64Array(width);
  for (let position = 0; position < sequence; position++) {
    const offset = position * width;
    for (let i = 0; i < width; i++) sum[i]! += hidden[offset + i]!;
  }
  const pooled = new Float32Array(width);
  for (let i = 0; i < width; i++) pooled[i] = sum[i]! / sequence;
  return pooled;
}

/**
 * A float32 vector as an L2-normalised plain array (undefined for zero or non-finite norm, which has
 * no direction). transformers.js's own `normalize` (Tensor.normalize) took about a tenth of the CPU
 * time of embedding persona texts with a small model, computing each element's index through a
 * Proxy (bench/, `npm run bench`). This repeats its float32 arithmetic step for step (the sum of
 * squares rounded to float32 after each addition, its `** (1 / 2)` rounded, each quotient
 * rounded), so the vectors are bit-identical.
 */
function unitVector(data: Float32Array, normalize: boolean): number[] | undefined {
  let sumOfSquares = 0;
  for (let i = 0; i < data.length; i++) sumOfSquares = Math.fround(sumOfSquares + data[i]! ** 2);
  const norm = Math.fround(sumOfSquares ** (1 / 2));
  if (!(norm > 0 && Number.isFinite(norm))) return undefined;
  const vector = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) vector[i] = normalize ? Math.fround(data[i]! / norm) : data[i]!;
  return vector;
}

/** Loads the model once and returns an Embedder over it. Fails at once when no model is available. */
export async function createEmbedder(options: EmbedderOptions = {}): Promise<Embedder> {
  const settings = resolveEmbedderSettings(options);
  const transformers = await loadTransformers();
  const { env } = transformers;
  if (settings.cacheDir !== undefined) env.cacheDir = settings.cacheDir;
  // Process-wide in transformers.js; follows the latest embedder's setting.
  env.allowRemoteModels = settings.allowRemote;

  const location = await locateModel(settings, env.cacheDir ?? '.cache');
  let id: string;
  let revision: Promise<string>;
  if (location.kind === 'dir') {
    id = directoryModelId(location.dir, await readConfig(location.dir), settings.modelId);
    revision = settings.revision !== undefined ? Promise.resolve(settings.revision) : directoryRevision(location.dir, settings.dtype);
  } else {
    id = location.modelId;
    revision = Promise.resolve(location.revision);
  }
  // A hub model loaded straight from the hub has no sentence-transformers files in the cache
  // (transformers.js fetches only what it runs): settings, else the conventions its id implies.
  const describedDir = location.kind === 'remote' ? undefined : location.dir;
  const [described, { tokenizer, model: onnxModel }, resolvedRevision] = await Promise.all([
    describedDir ? readDescribedConventions(describedDir) : {},
    loadModel(transformers, settings, location),
    revision,
  ]);
  const positions = (onnxModel.config as { max_position_embeddings?: unknown }).max_position_embeddings;
  const conventions = resolveConventions(settings, described, {
    modelId: id,
    dir: describedDir,
    limits: {
      tokenizerMaxLength: Number.isFinite(tokenizer.model_max_length) ? Number(tokenizer.model_max_length) : undefined,
      maxPositionEmbeddings: typeof positions === 'number' ? positions : undefined,
    },
  });

  const encode = tokenEncoder(tokenizer, conventions.maxTokens);
  const { Tensor } = transformers;
  /**
   * One text per ONNX run, never a batch: an int8 graph (q8; the hub's `model_quantized.onnx`, made
   * by onnxruntime's quantize_dynamic) quantizes activations with DynamicQuantizeLinear, one scale
   * over its whole input, so in a batch a text's vector depends on the texts padded beside it
   * (all-MiniLM-L6-v2: cosine 0.96-0.99 to itself embedded alone). Alone, the same text gives the
   * same bits whatever else is embedded, query or document, fp32 or q8; and no run pads. What
   * batching bought is measured in `npm run bench` (bench/embeddingThroughput.ts).
   */
  const run = async (text: string): Promise<{ width: number; vector: number[] | undefined }> => {
    const ids = encode(text);
    const dims = [1, ids.length];
    const outputs = (await onnxModel({
      input_ids: new Tensor('int64', ids, dims),
      attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), dims),
      // One text: every token of segment 0 (what the tokenizer's template gives a single sequence).
      token_type_ids: new Tensor('int64', new BigInt64Array(ids.length), dims),
    })) as Record<string, Tensor | undefined>;
    const hidden = outputs.last_hidden_state ?? outputs.token_embeddings;
    if (!hidden || hidden.dims.length !== 3 || hidden.dims[0] !== 1 || hidden.dims[1] !== ids.length || !(hidden.data instanceof Float32Array)) {
      throw new Error(`unexpected model output: ${Object.keys(outputs).join(', ')} [${hidden?.dims.join(', ') ?? ''}] for ${ids.length} tokens`);
    }
    const width = hidden.dims[2]!;
    return { width, vector: unitVector(poolTokens(hidden.data, ids.length, width, conventions.pooling), conventions.normalize) };
  };

  // One warm-up run: fixes the dimension from the real output and moves the first-run cost to load time.
  const { width: dimension } = await run('warm-up');
  if (dimension === 0) throw new Error(`embedding model ${id} produced vectors of no dimension`);

  const model: EmbeddingModelInfo = Object.freeze({
    id,
    revision: resolvedRevision,
    dimension,
    dtype: settings.dtype,
    pooling: conventions.pooling,
    normalize: conventions.normalize,
    queryPrefix: conventions.queryPrefix,
    documentPrefix: conventions.documentPrefix,
    maxTokens: conventions.maxTokens,
  });
  const stats: EmbeddingStats = { calls: 0, texts: 0, runs: 0 };

  const embed = async (kind: EmbedEvent['kind'], texts: readonly string[]): Promise<number[][]> => {
    if (texts.length === 0) return [];
    for (const text of texts) {
      if (typeof text !== 'string') throw new TypeError(`texts to embed must be strings, got ${typeof text}`);
    }
    const started = performance.now();
    const prefix = kind === 'query' ? conventions.queryPrefix : conventions.documentPrefix;
    const vectors = new Array<number[] | undefined>(texts.length);
    const unembeddable: number[] = [];
    for (const [index, text] of texts.entries()) {
      const { vector } = await run(prefix + text);
      if (vector === undefined) unembeddable.push(index);
      else if (vector.length !== dimension || !vector.every(Number.isFinite)) {
        throw new Error(`embedding model ${id} produced an invalid vector for text ${index}`);
      }
      vectors[index] = vector;
    }
    stats.calls++;
    stats.texts += texts.length;
    stats.runs += texts.length;
    options.onEmbed?.({ kind, texts: texts.length, runs: texts.length, durationMs: performance.now() - started });
    if (unembeddable.length > 0) throw new UnembeddableTextError(unembeddable, vectors);
    return vectors as number[][];
  };

  return {
    model,
    stats,
    queryPrefix: conventions.queryPrefix,
    conventions,
    embedDocuments: (texts) => embed('documents', texts),
    embedQuery: async (text) => {
      const [vector] = await embed('query', [text]);
      if (vector === undefined) throw new Error('no query vector');
      return vector;
    },
    dispose: async () => {
      await onnxModel.dispose();
    },
  };
}

let shared: Promise<Embedder> | undefined;

/**
 * The process-wide embedder, configured from the environment and loaded on first call, so a warm
 * Lambda container loads the model once. A failed load is not kept: the next call tries again.
 */
export function getEmbedder(): Promise<Embedder> {
  if (shared === undefined) {
    const loading = createEmbedder();
    shared = loading;
    loading.catch(() => {
      if (shared === loading) shared = undefined;
    });
  }
  return shared;
}

/** Forgets (and disposes) the process-wide embedder, for tests that change the environment. */
export async function resetEmbedder(): Promise<void> {
  const current = shared;
  shared = undefined;
  const embedder = await current?.catch(() => undefined);
  await embedder?.dispose();
}

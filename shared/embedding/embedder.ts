/**
 * Sentence embeddings through @huggingface/transformers' feature-extraction pipeline on
 * onnxruntime-node, as the indexer Lambda, the search Lambda, the local runtime and the benchmarks
 * use them. See config.ts for how the model is found.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { FeatureExtractionPipeline } from '@huggingface/transformers';

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
import { readDescribedConventions, resolveConventions, type ModelConventions } from './modelConventions';

/** What the vectors are; the indexer stores it with the collection to notice a model change. */
export interface EmbeddingModelInfo {
  /** Hub id, or for a model directory EMBEDDING_MODEL_ID / config `_name_or_path` / the folder name. */
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
}

/** Counters of the work done, for tests and metrics. */
export interface EmbeddingStats {
  /** embedDocuments/embedQuery calls that embedded at least one text. */
  calls: number;
  /** Texts embedded. */
  texts: number;
  /** ONNX runs (one per batch). */
  batches: number;
}

export interface EmbedEvent {
  kind: 'documents' | 'query';
  texts: number;
  batches: number;
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
   * input order; at most maxBatchSize texts per ONNX run. Throws UnembeddableTextError, with the
   * other texts' vectors, when some texts have a zero embedding.
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

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** Id of a model loaded from a directory: explicit id, else config `_name_or_path` if a hub id, else the folder name. */
function directoryModelId(settings: EmbedderSettings, dir: string, config: Record<string, unknown>): string {
  if (settings.modelId !== undefined) return settings.modelId;
  const named = config._name_or_path;
  if (typeof named === 'string' && HUB_ID.test(named)) return named;
  return path.basename(dir);
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

async function loadPipeline(
  transformers: Transformers,
  settings: EmbedderSettings,
  location: ModelLocation,
): Promise<FeatureExtractionPipeline> {
  const { env, pipeline } = transformers;
  const session_options = settings.threads === undefined ? {} : { session_options: { intraOpNumThreads: settings.threads } };
  if (location.kind === 'remote') {
    try {
      return await pipeline('feature-extraction', location.modelId, {
        dtype: settings.dtype,
        revision: location.revision,
        cache_dir: location.cacheDir,
        ...session_options,
      });
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
    return await pipeline('feature-extraction', location.dir, { dtype: settings.dtype, local_files_only: true, ...session_options });
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
 * The rows of a [rows, width] float32 matrix as L2-normalised plain arrays (undefined for a row of
 * zero or non-finite norm, which has no direction). The pipeline's own
 * `normalize` (Tensor.normalize) took about a tenth of the CPU time of embedding persona texts
 * with a small model, computing each element's index through a Proxy (bench/, `npm run bench`).
 * This repeats its float32 arithmetic step for step (the sum of squares rounded to float32 after
 * each addition, its `** (1 / 2)` rounded, each quotient rounded), so the vectors are bit-identical.
 */
function pooledRows(data: Float32Array, rows: number, width: number, normalize: boolean): Array<number[] | undefined> {
  const vectors: Array<number[] | undefined> = [];
  for (let row = 0; row < rows; row++) {
    const offset = row * width;
    let sumOfSquares = 0;
    for (let i = 0; i < width; i++) sumOfSquares = Math.fround(sumOfSquares + data[offset + i]! ** 2);
    const norm = Math.fround(sumOfSquares ** (1 / 2));
    if (!(norm > 0 && Number.isFinite(norm))) {
      vectors.push(undefined);
      continue;
    }
    const vector = new Array<number>(width);
    for (let i = 0; i < width; i++) vector[i] = normalize ? Math.fround(data[offset + i]! / norm) : data[offset + i]!;
    vectors.push(vector);
  }
  return vectors;
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
  // A hub model loaded straight from the hub has no sentence-transformers files in the cache (the
  // pipeline fetches only what it runs): bge's conventions then, unless settings say otherwise.
  const describedDir = location.kind === 'remote' ? undefined : location.dir;
  const conventions = resolveConventions(settings, describedDir ? await readDescribedConventions(describedDir) : {}, describedDir);
  let id: string;
  let revision: Promise<string>;
  if (location.kind === 'dir') {
    id = directoryModelId(settings, location.dir, await readConfig(location.dir));
    revision = settings.revision !== undefined ? Promise.resolve(settings.revision) : directoryRevision(location.dir, settings.dtype);
  } else {
    id = location.modelId;
    revision = Promise.resolve(location.revision);
  }
  const [extractor, resolvedRevision] = await Promise.all([loadPipeline(transformers, settings, location), revision]);

  const run = async (texts: string[]): Promise<{ width: number; vectors: Array<number[] | undefined> }> => {
    // Normalised here, not by the pipeline (see pooledRows).
    const output = await extractor(texts, { pooling: conventions.pooling, normalize: false });
    const [rows, width] = output.dims;
    const data = output.data;
    if (output.dims.length !== 2 || rows !== texts.length || width === undefined || !(data instanceof Float32Array)) {
      throw new Error(`unexpected embedding output: ${output.type} [${output.dims.join(', ')}] for ${texts.length} texts`);
    }
    return { width, vectors: pooledRows(data, rows, width, conventions.normalize) };
  };

  // One warm-up run: fixes the dimension from the real output and moves the first-run cost to load time.
  const { width: dimension } = await run(['warm-up']);
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
  });
  const stats: EmbeddingStats = { calls: 0, texts: 0, batches: 0 };

  const embed = async (kind: EmbedEvent['kind'], texts: readonly string[]): Promise<number[][]> => {
    if (texts.length === 0) return [];
    for (const text of texts) {
      if (typeof text !== 'string') throw new TypeError(`texts to embed must be strings, got ${typeof text}`);
    }
    const started = performance.now();
    // Batches of similar length waste less work on padding; results go back in input order.
    const order = texts.map((_, i) => i).sort((a, b) => (texts[a]?.length ?? 0) - (texts[b]?.length ?? 0));
    const prefix = kind === 'query' ? conventions.queryPrefix : conventions.documentPrefix;
    const vectors = new Array<number[] | undefined>(texts.length);
    const unembeddable: number[] = [];
    let batches = 0;
    for (let start = 0; start < order.length; start += settings.maxBatchSize) {
      const indices = order.slice(start, start + settings.maxBatchSize);
      const batch = await run(indices.map((i) => prefix + (texts[i] ?? '')));
      batches++;
      indices.forEach((textIndex, row) => {
        const vector = batch.vectors[row];
        if (vector === undefined) unembeddable.push(textIndex);
        else if (vector.length !== dimension || !vector.every(Number.isFinite)) {
          throw new Error(`embedding model ${id} produced an invalid vector for text ${textIndex}`);
        }
        vectors[textIndex] = vector;
      });
    }
    stats.calls++;
    stats.texts += texts.length;
    stats.batches += batches;
    options.onEmbed?.({ kind, texts: texts.length, batches, durationMs: performance.now() - started });
    if (unembeddable.length > 0) throw new UnembeddableTextError(unembeddable.sort((a, b) => a - b), vectors);
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
    dispose: () => extractor.dispose(),
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

/**
 * Embedding settings (options over environment variables) and model location. Cheap and free of
 * heavy imports, so it can run at module load or in tests without loading ONNX Runtime.
 *
 * Environment variables:
 * - EMBEDDING_MODEL_DIR      a local model directory in the transformers.js layout; used as is, never
 *                            falls back to the cache or the hub
 * - EMBEDDING_MODEL_ID       hub model id (default BAAI/bge-small-en-v1.5); with EMBEDDING_MODEL_DIR,
 *                            the id recorded in `model.id` (default: the folder's, see
 *                            modelConventions.ts directoryModelId), which also decides the fallback
 *                            conventions (bge's for the bge English v1.5 ids)
 * - EMBEDDING_MODEL_REVISION hub revision (default "main"); with EMBEDDING_MODEL_DIR, the revision
 *                            recorded in `model.revision` (default: a hash of the directory's files)
 * - EMBEDDING_CACHE_DIR      transformers.js file cache (default: transformers.js's own, env.cacheDir)
 * - EMBEDDING_ALLOW_REMOTE   "false" (or 0/no/off) forbids downloads from the Hugging Face hub
 * - EMBEDDING_DTYPE          "q8" (int8 weights, onnx/model_quantized.onnx; default) or "fp32"
 *                            (onnx/model.onnx)
 * - EMBEDDING_POOLING        "cls" or "mean"
 * - EMBEDDING_NORMALIZE      "true" (unit vectors) or "false"
 * - EMBEDDING_QUERY_PREFIX   text put before queries ("" for none)
 * - EMBEDDING_DOCUMENT_PREFIX text put before documents ("" for none)
 *   These four override what the model directory says about itself in its sentence-transformers
 *   files (see modelConventions.ts); what neither says comes from the model's id: the bge English
 *   v1.5 models' card (CLS pooling, unit vectors, the retrieval instruction before queries), else
 *   mean pooling, unit vectors and no prompts.
 * - EMBEDDING_THREADS        ONNX Runtime intra-op threads (default: ONNX Runtime's, one per core it
 *                            sees; Lambda shows 2 cores below 3,009 MB whatever CPU share it grants)
 */
import { access, stat } from 'node:fs/promises';
import path from 'node:path';

export const DEFAULT_MODEL_ID = 'BAAI/bge-small-en-v1.5';
export const DEFAULT_REVISION = 'main';
/** The query instruction of the bge English v1.5 models' card, for short-query-to-passage retrieval (only their ids get it by default). */
export const BGE_QUERY_PREFIX = 'Represent this sentence for searching relevant passages: ';
/** Where `npm run model:fetch` puts hub models (`<dir>/<model id>`), relative to the project root; synth looks there too. */
export const FETCHED_MODELS_DIR = '.cache/models';
/** Where `npm run model:test` writes the generated test model, relative to the project root. */
export const TEST_MODEL_HINT_DIR = '.cache/models/persona-test-model';

export type EmbeddingDtype = 'q8' | 'fp32';
export type EmbeddingPooling = 'cls' | 'mean';
export type EnvSource = Readonly<Record<string, string | undefined>>;

export interface EmbedderSettingsInput {
  /** Hub model id; with modelDir only a label. Env EMBEDDING_MODEL_ID. */
  modelId?: string;
  /** Local model directory. Env EMBEDDING_MODEL_DIR. */
  modelDir?: string;
  /** Hub revision, or with modelDir the recorded revision. Env EMBEDDING_MODEL_REVISION. */
  revision?: string;
  /** transformers.js file cache directory. Env EMBEDDING_CACHE_DIR. */
  cacheDir?: string;
  /** Whether the Hugging Face hub may be asked. Env EMBEDDING_ALLOW_REMOTE (default true). */
  allowRemote?: boolean;
  /** Env EMBEDDING_DTYPE (default q8). */
  dtype?: EmbeddingDtype;
  /** Env EMBEDDING_POOLING (default: the model directory's, else cls for bge English v1.5 ids, mean for others). */
  pooling?: EmbeddingPooling;
  /** Env EMBEDDING_NORMALIZE (default: the model directory's, else true). */
  normalize?: boolean;
  /** Env EMBEDDING_QUERY_PREFIX (default: the model directory's query prompt, else BGE_QUERY_PREFIX for bge English v1.5 ids, none for others). */
  queryPrefix?: string;
  /** Env EMBEDDING_DOCUMENT_PREFIX (default: the model directory's document prompt, else none). */
  documentPrefix?: string;
  /** ONNX Runtime intra-op threads. Env EMBEDDING_THREADS (default: ONNX Runtime's choice). */
  threads?: number;
  /** Where the EMBEDDING_* variables are read from (default process.env). */
  env?: EnvSource;
}

export interface EmbedderSettings {
  /** Explicit model id (option or EMBEDDING_MODEL_ID), if any. */
  modelId: string | undefined;
  /** Absolute model directory, if any. */
  modelDir: string | undefined;
  /** Explicit revision, if any. */
  revision: string | undefined;
  /** Absolute cache directory, if any (else transformers.js's default). */
  cacheDir: string | undefined;
  allowRemote: boolean;
  dtype: EmbeddingDtype;
  /** Explicit conventions (option or env); undefined ones come from the model directory or bge's defaults. */
  pooling: EmbeddingPooling | undefined;
  normalize: boolean | undefined;
  queryPrefix: string | undefined;
  documentPrefix: string | undefined;
  /** Intra-op threads, or undefined for ONNX Runtime's default. */
  threads: number | undefined;
}

export class EmbeddingConfigError extends Error {
  override readonly name = 'EmbeddingConfigError';
}

/** No model could be found or loaded. The message says what to set. */
export class EmbeddingModelUnavailableError extends Error {
  override readonly name = 'EmbeddingModelUnavailableError';
}

/**
 * Texts whose embedding is unusable: a zero vector (with a word-level model, a text of only words
 * it does not know) has no direction, so cosine similarity is undefined for it. Carries the vectors
 * of the other texts of the call, so one bad text fails alone.
 */
export class UnembeddableTextError extends Error {
  override readonly name = 'UnembeddableTextError';
  constructor(
    /** Input indices of the texts that could not be embedded. */
    readonly indices: readonly number[],
    /** One entry per input text: its vector, or undefined for the indices above. */
    readonly vectors: ReadonlyArray<number[] | undefined>,
  ) {
    super(
      `${indices.length} of ${vectors.length} text(s) (input ${indices.join(', ')}) have a zero embedding: ` +
        'the model finds nothing it knows in them (with a word-level model, every word is unknown to it)',
    );
  }
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value !== undefined && value.trim() !== '' ? value.trim() : undefined;

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new EmbeddingConfigError(`${name}=${value} is not one of: ${allowed.join(', ')}`);
}

function parseBoolean(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new EmbeddingConfigError(`${name}=${value} is not one of: true, false`);
}

export function parseAllowRemote(value: string | undefined): boolean {
  return !/^(false|0|no|off)$/i.test(value?.trim() ?? '');
}

/** Merges options over EMBEDDING_* environment variables and defaults. */
export function resolveEmbedderSettings(input: EmbedderSettingsInput = {}): EmbedderSettings {
  const env = input.env ?? process.env;
  const modelDir = input.modelDir ?? nonEmpty(env.EMBEDDING_MODEL_DIR);
  const cacheDir = input.cacheDir ?? nonEmpty(env.EMBEDDING_CACHE_DIR);
  const threadsText = nonEmpty(env.EMBEDDING_THREADS);
  const threads = input.threads ?? (threadsText === undefined ? undefined : Number(threadsText));
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new EmbeddingConfigError(`EMBEDDING_THREADS must be a positive integer, got ${threadsText ?? threads}`);
  }
  return {
    modelId: input.modelId ?? nonEmpty(env.EMBEDDING_MODEL_ID),
    modelDir: modelDir === undefined ? undefined : path.resolve(modelDir),
    revision: input.revision ?? nonEmpty(env.EMBEDDING_MODEL_REVISION),
    cacheDir: cacheDir === undefined ? undefined : path.resolve(cacheDir),
    allowRemote: input.allowRemote ?? parseAllowRemote(env.EMBEDDING_ALLOW_REMOTE),
    dtype: input.dtype ?? oneOf('EMBEDDING_DTYPE', nonEmpty(env.EMBEDDING_DTYPE), ['q8', 'fp32'] as const) ?? 'q8',
    pooling: input.pooling ?? oneOf('EMBEDDING_POOLING', nonEmpty(env.EMBEDDING_POOLING), ['cls', 'mean'] as const),
    normalize: input.normalize ?? parseBoolean('EMBEDDING_NORMALIZE', nonEmpty(env.EMBEDDING_NORMALIZE)),
    // An empty prefix variable is meaningful (no prefix), so it is not folded to undefined.
    queryPrefix: input.queryPrefix ?? env.EMBEDDING_QUERY_PREFIX,
    documentPrefix: input.documentPrefix ?? env.EMBEDDING_DOCUMENT_PREFIX,
    threads,
  };
}

/** The ONNX file that transformers.js loads for a dtype (its DEFAULT_DTYPE_SUFFIX_MAPPING). */
export function onnxFileFor(dtype: EmbeddingDtype): string {
  return dtype === 'q8' ? 'onnx/model_quantized.onnx' : 'onnx/model.onnx';
}

export function requiredModelFiles(dtype: EmbeddingDtype): string[] {
  return ['config.json', 'tokenizer.json', 'tokenizer_config.json', onnxFileFor(dtype)];
}

export async function missingModelFiles(dir: string, dtype: EmbeddingDtype): Promise<string[]> {
  const files = requiredModelFiles(dtype);
  const present = await Promise.all(
    files.map((file) =>
      access(path.join(dir, file)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return files.filter((_, i) => !present[i]);
}

/** Where the model comes from: a directory read as is, or the hub id (downloads into the cache). */
export type ModelLocation =
  | { kind: 'dir'; dir: string }
  | { kind: 'cache'; dir: string; modelId: string; revision: string }
  | { kind: 'remote'; modelId: string; revision: string; cacheDir: string };

/** The directory transformers.js's file cache keeps a hub model's files in. */
export function cachedModelDir(cacheDir: string, modelId: string, revision: string): string {
  // transformers.js FileCache keys: "<id>/<file>" for main, "<id>/<revision>/<file>" otherwise.
  return revision === DEFAULT_REVISION ? path.join(cacheDir, modelId) : path.join(cacheDir, modelId, revision);
}

const HOW_TO_FIX =
  'Set EMBEDDING_MODEL_DIR to a model directory in the transformers.js layout (config.json, tokenizer.json, ' +
  'tokenizer_config.json, onnx/model_quantized.onnx for q8 or onnx/model.onnx for fp32), or run ' +
  `\`npm run model:test\` and set EMBEDDING_MODEL_DIR=${TEST_MODEL_HINT_DIR} to use the small generated test model.`;

export function modelUnavailable(reason: string): EmbeddingModelUnavailableError {
  return new EmbeddingModelUnavailableError(`No embedding model available: ${reason}. ${HOW_TO_FIX}`);
}

/**
 * Decides where to load the model from, using only file-system checks (no network):
 * EMBEDDING_MODEL_DIR, else the file cache, else the hub when allowed. Throws
 * EmbeddingModelUnavailableError at once when none of them can serve.
 */
export async function locateModel(settings: EmbedderSettings, defaultCacheDir: string): Promise<ModelLocation> {
  if (settings.modelDir !== undefined) {
    const found = await stat(settings.modelDir).catch(() => undefined);
    if (!found?.isDirectory()) {
      throw modelUnavailable(`EMBEDDING_MODEL_DIR=${settings.modelDir} ${found ? 'is not a directory' : 'does not exist'} (${path.resolve(settings.modelDir)})`);
    }
    const missing = await missingModelFiles(settings.modelDir, settings.dtype);
    if (missing.length > 0) {
      throw modelUnavailable(
        `EMBEDDING_MODEL_DIR=${settings.modelDir} lacks ${missing.join(', ')} (dtype ${settings.dtype})`,
      );
    }
    return { kind: 'dir', dir: settings.modelDir };
  }
  const modelId = settings.modelId ?? DEFAULT_MODEL_ID;
  const revision = settings.revision ?? DEFAULT_REVISION;
  const cacheDir = settings.cacheDir ?? defaultCacheDir;
  const cached = cachedModelDir(cacheDir, modelId, revision);
  const missing = await missingModelFiles(cached, settings.dtype);
  if (missing.length === 0) return { kind: 'cache', dir: cached, modelId, revision };
  if (settings.allowRemote) return { kind: 'remote', modelId, revision, cacheDir };
  throw modelUnavailable(
    `EMBEDDING_MODEL_DIR is not set, ${modelId}@${revision} (dtype ${settings.dtype}) is not in the cache ` +
      `${cached} (lacks ${missing.join(', ')}), and downloads are disabled (EMBEDDING_ALLOW_REMOTE=false)`,
  );
}

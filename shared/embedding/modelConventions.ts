/**
 * How a model turns its token vectors into a sentence vector, which prompts it wants, how many
 * tokens it reads and what it is called: read from the model directory's sentence-transformers files,
 * the convention models on the Hugging Face hub follow (sentence-transformers' SentenceTransformer
 * loads them the same way):
 *
 * - `modules.json`: the module pipeline; a `sentence_transformers.models.Pooling` module names the
 *   folder of its config (`1_Pooling`), a `sentence_transformers.models.Normalize` module means unit
 *   vectors (no Normalize module: the pooled vector as is);
 * - `<pooling folder>/config.json`: `pooling_mode_cls_token`, `pooling_mode_mean_tokens`, ... (one true);
 * - `config_sentence_transformers.json`: `prompts` (name -> text put before the input, e.g.
 *   `{"query": "..."}`) and `default_prompt_name` (the prompt for inputs that name none). A file
 *   without `prompts` (what sentence-transformers before 2.4 wrote: only `__version__`) names none;
 * - `sentence_bert_config.json`: `max_seq_length`, the tokens a text is cut to (prompt and special
 *   tokens included), often less than the tokenizer's `model_max_length` (all-MiniLM-L6-v2: 256 of 512).
 *
 * Settings (options, EMBEDDING_* variables) override what the directory says. What neither says:
 * for the bge English v1.5 models (bge-small/base/large-en-v1.5, any owner: conversions keep the
 * name), their model card's conventions (CLS pooling, unit vectors, the retrieval instruction before
 * queries); for any other model what sentence-transformers does with a bare transformer (mean
 * pooling), unit vectors and no prompts. Without `max_seq_length`, texts are cut where
 * sentence-transformers cuts them: the smaller of the tokenizer's `model_max_length` and the model's
 * `max_position_embeddings`. Cheap: file reads only, no ONNX Runtime.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { BGE_QUERY_PREFIX, EmbeddingConfigError, type EmbeddingPooling } from './config';

export const SUPPORTED_POOLING: readonly EmbeddingPooling[] = ['cls', 'mean'];

/** sentence-transformers' Pooling config keys, and the pooling each stands for. */
const POOLING_MODES: ReadonlyArray<readonly [string, string]> = [
  ['pooling_mode_cls_token', 'cls'],
  ['pooling_mode_mean_tokens', 'mean'],
  ['pooling_mode_max_tokens', 'max'],
  ['pooling_mode_mean_sqrt_len_tokens', 'mean_sqrt_len'],
  ['pooling_mode_weightedmean_tokens', 'weightedmean'],
  ['pooling_mode_lasttoken', 'lasttoken'],
];

/** What a model directory says about itself; a field it does not mention is absent. */
export interface DescribedConventions {
  /** The Pooling module's mode(s), e.g. "mean", or "max+mean" (several are concatenated in sentence-transformers). */
  pooling?: string;
  normalize?: boolean;
  queryPrefix?: string;
  documentPrefix?: string;
  /** sentence_bert_config.json `max_seq_length`. */
  maxTokens?: number;
}

/** Where a convention came from: a setting, the directory, the bge card (bge English v1.5 ids only), or the defaults. */
export type ConventionSource = 'setting' | 'model directory' | 'bge model card' | 'default';

export interface ModelConventions {
  pooling: EmbeddingPooling;
  /** Whether vectors are scaled to unit length (a Normalize module). */
  normalize: boolean;
  /** Put before every query text. */
  queryPrefix: string;
  /** Put before every document text. */
  documentPrefix: string;
  /** Tokens a text (with its prefix, [CLS] and [SEP]) is cut to. */
  maxTokens: number;
  /** Where each value came from, for the start-up log. */
  sources: Record<'pooling' | 'normalize' | 'queryPrefix' | 'documentPrefix' | 'maxTokens', ConventionSource>;
}

/** Conventions given explicitly (options or EMBEDDING_* variables); they win over the directory. */
export interface ConventionSettings {
  pooling: EmbeddingPooling | undefined;
  normalize: boolean | undefined;
  queryPrefix: string | undefined;
  documentPrefix: string | undefined;
}

/** How many tokens the model itself can take: its tokenizer's `model_max_length` and its `max_position_embeddings`. */
export interface TokenLimits {
  tokenizerMaxLength: number | undefined;
  maxPositionEmbeddings: number | undefined;
}

async function readJson(dir: string, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path.join(dir, file), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new EmbeddingConfigError(`${path.join(dir, file)} is not valid JSON: ${(error as Error).message}`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const moduleType = (module: unknown, kind: string): boolean =>
  isObject(module) && typeof module.type === 'string' && (module.type === kind || module.type.endsWith(`.${kind}`));
const positiveInteger = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined);

/** Reads modules.json, the Pooling module's config, config_sentence_transformers.json and sentence_bert_config.json from `dir`. */
export async function readDescribedConventions(dir: string): Promise<DescribedConventions> {
  const described: DescribedConventions = {};
  const modules = await readJson(dir, 'modules.json');
  if (modules !== undefined) {
    if (!Array.isArray(modules)) throw new EmbeddingConfigError(`${path.join(dir, 'modules.json')} must be a JSON array of modules`);
    described.normalize = modules.some((module) => moduleType(module, 'Normalize'));
    const pooling = modules.find((module) => moduleType(module, 'Pooling')) as { path?: unknown } | undefined;
    if (pooling !== undefined) {
      const file = path.join(typeof pooling.path === 'string' ? pooling.path : '', 'config.json');
      const config = await readJson(dir, file);
      if (!isObject(config)) throw new EmbeddingConfigError(`${path.join(dir, file)} (the Pooling module's config, from modules.json) is missing or not a JSON object`);
      const modes = POOLING_MODES.filter(([key]) => config[key] === true).map(([, mode]) => mode);
      if (modes.length === 0) throw new EmbeddingConfigError(`${path.join(dir, file)} enables no pooling mode (pooling_mode_cls_token, pooling_mode_mean_tokens, ...)`);
      described.pooling = modes.join('+');
    }
  }
  const st = await readJson(dir, 'config_sentence_transformers.json');
  if (isObject(st) && isObject(st.prompts)) {
    const prompts = st.prompts;
    const prompt = (name: unknown): string | undefined => (typeof name === 'string' && typeof prompts[name] === 'string' ? prompts[name] : undefined);
    // sentence-transformers puts the default prompt before every input that names no prompt; "document" and
    // "passage" are the names retrieval models use for the indexed side.
    const fallback = prompt(st.default_prompt_name) ?? '';
    described.queryPrefix = prompt('query') ?? fallback;
    described.documentPrefix = prompt('document') ?? prompt('passage') ?? fallback;
  }
  const sbert = await readJson(dir, 'sentence_bert_config.json');
  if (isObject(sbert) && sbert.max_seq_length !== undefined && sbert.max_seq_length !== null) {
    const maxTokens = positiveInteger(sbert.max_seq_length);
    if (maxTokens === undefined) throw new EmbeddingConfigError(`${path.join(dir, 'sentence_bert_config.json')}: max_seq_length must be a positive integer, got ${JSON.stringify(sbert.max_seq_length)}`);
    described.maxTokens = maxTokens;
  }
  return described;
}

/** The bge English v1.5 models, by the last part of the id (BAAI/bge-small-en-v1.5, Xenova/bge-base-en-v1.5, a folder bge-large-en-v1.5). */
const BGE_ENGLISH_V15 = /^bge-(small|base|large)-en-v1\.5$/i;
export const isBgeEnglishV15 = (modelId: string): boolean => BGE_ENGLISH_V15.test(modelId.slice(modelId.lastIndexOf('/') + 1));

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * The id of a model read from a directory (`model.id`, recorded with the collection): the explicit
 * one (EMBEDDING_MODEL_ID), else config.json's `_name_or_path` when it is a hub id naming this
 * folder (`<owner>/<folder name>`), else the folder's name. `_name_or_path` is where the weights were
 * loaded from when the config was saved, which for a model trained with sentence-transformers is its
 * base model (all-MiniLM-L6-v2's says nreimers/MiniLM-L6-H384-uncased), so it counts only when it
 * agrees with the folder the user named or fetched.
 */
export function directoryModelId(dir: string, config: Record<string, unknown> | undefined, explicit?: string): string {
  if (explicit !== undefined && explicit.trim() !== '') return explicit.trim();
  const folder = path.basename(path.resolve(dir));
  const named = config?._name_or_path;
  if (typeof named === 'string' && HUB_ID.test(named) && named.slice(named.indexOf('/') + 1).toLowerCase() === folder.toLowerCase()) return named;
  return folder;
}

/**
 * Settings first, then what the directory says, then the bge card's conventions for a bge English
 * v1.5 id or the defaults for any other (see the file comment). Pooling the embedder cannot do (max,
 * weighted mean, several modes) is refused unless a setting overrides it.
 */
export function resolveConventions(
  settings: ConventionSettings,
  described: DescribedConventions,
  context: { modelId: string; dir: string | undefined; limits: TokenLimits },
): ModelConventions {
  const bge = isBgeEnglishV15(context.modelId);
  const fallbackSource: ConventionSource = bge ? 'bge model card' : 'default';
  const pick = <T>(setting: T | undefined, fromDir: T | undefined, fallback: T): [T, ConventionSource] =>
    setting !== undefined ? [setting, 'setting'] : fromDir !== undefined ? [fromDir, 'model directory'] : [fallback, fallbackSource];
  const [describedPooling, poolingUnsupported] =
    described.pooling === undefined || (SUPPORTED_POOLING as readonly string[]).includes(described.pooling)
      ? [described.pooling as EmbeddingPooling | undefined, false]
      : [undefined, true];
  if (poolingUnsupported && settings.pooling === undefined) {
    throw new EmbeddingConfigError(
      `The model in ${context.dir} asks for ${described.pooling} pooling (its sentence-transformers Pooling config), which the embedder ` +
        `does not do (it does ${SUPPORTED_POOLING.join(', ')}); set EMBEDDING_POOLING to override, or use another model.`,
    );
  }
  const [pooling, poolingSource] = pick(settings.pooling, describedPooling, (bge ? 'cls' : 'mean') as EmbeddingPooling);
  const [normalize, normalizeSource] = pick(settings.normalize, described.normalize, true);
  const [queryPrefix, querySource] = pick(settings.queryPrefix, described.queryPrefix, bge ? BGE_QUERY_PREFIX : '');
  const [documentPrefix, documentSource] = pick(settings.documentPrefix, described.documentPrefix, '');
  // Never past the position embeddings: the ONNX graph has no positions beyond them.
  const { tokenizerMaxLength, maxPositionEmbeddings } = context.limits;
  const modelLimit = Math.min(tokenizerMaxLength ?? Infinity, maxPositionEmbeddings ?? Infinity);
  const maxTokens = Math.min(described.maxTokens ?? Infinity, modelLimit);
  if (!Number.isFinite(maxTokens)) {
    throw new EmbeddingConfigError(
      `The model in ${context.dir ?? context.modelId} says no token limit (no sentence_bert_config.json max_seq_length, tokenizer_config.json ` +
        'model_max_length or config.json max_position_embeddings); add sentence_bert_config.json with {"max_seq_length": N}.',
    );
  }
  return {
    pooling,
    normalize,
    queryPrefix,
    documentPrefix,
    maxTokens,
    sources: {
      pooling: poolingSource,
      normalize: normalizeSource,
      queryPrefix: querySource,
      documentPrefix: documentSource,
      maxTokens: described.maxTokens !== undefined && described.maxTokens <= modelLimit ? 'model directory' : 'default',
    },
  };
}

/** One line for logs: "mean pooling (model directory), unit vectors (model directory), no query prefix (model directory), ...". */
export function describeConventions(conventions: ModelConventions): string {
  const prefix = (value: string) => (value === '' ? 'none' : JSON.stringify(value));
  return (
    `${conventions.pooling} pooling (${conventions.sources.pooling}), ` +
    `${conventions.normalize ? 'unit vectors' : 'vectors not normalised'} (${conventions.sources.normalize}), ` +
    `query prefix ${prefix(conventions.queryPrefix)} (${conventions.sources.queryPrefix}), ` +
    `document prefix ${prefix(conventions.documentPrefix)} (${conventions.sources.documentPrefix}), ` +
    `texts cut at ${conventions.maxTokens} tokens (${conventions.sources.maxTokens})`
  );
}

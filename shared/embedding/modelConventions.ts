/**
 * How a model turns its token vectors into a sentence vector, and which prompts it wants: read from
 * the model directory's sentence-transformers files, the convention models on the Hugging Face hub
 * follow (sentence-transformers' SentenceTransformer loads them the same way):
 *
 * - `modules.json`: the module pipeline; a `sentence_transformers.models.Pooling` module names the
 *   folder of its config (`1_Pooling`), a `sentence_transformers.models.Normalize` module means unit
 *   vectors (no Normalize module: the pooled vector as is);
 * - `<pooling folder>/config.json`: `pooling_mode_cls_token`, `pooling_mode_mean_tokens`, ... (one true);
 * - `config_sentence_transformers.json`: `prompts` (name -> text put before the input, e.g.
 *   `{"query": "..."}`) and `default_prompt_name` (the prompt for inputs that name none).
 *
 * Settings (options, EMBEDDING_* variables) override what the directory says; bge-small-en-v1.5's
 * conventions (CLS pooling, unit vectors, its retrieval instruction before queries) apply only to
 * what the directory does not say. Cheap: file reads only, no ONNX Runtime.
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
}

export type ConventionSource = 'setting' | 'model directory' | 'bge default';

export interface ModelConventions {
  pooling: EmbeddingPooling;
  /** Whether vectors are scaled to unit length (a Normalize module). */
  normalize: boolean;
  /** Put before every query text. */
  queryPrefix: string;
  /** Put before every document text. */
  documentPrefix: string;
  /** Where each value came from, for the start-up log. */
  sources: Record<'pooling' | 'normalize' | 'queryPrefix' | 'documentPrefix', ConventionSource>;
}

/** Conventions given explicitly (options or EMBEDDING_* variables); they win over the directory. */
export interface ConventionSettings {
  pooling: EmbeddingPooling | undefined;
  normalize: boolean | undefined;
  queryPrefix: string | undefined;
  documentPrefix: string | undefined;
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

/** Reads modules.json, the Pooling module's config and config_sentence_transformers.json from `dir`. */
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
  return described;
}

/**
 * Settings first, then what the directory says, then bge-small's conventions. Pooling the embedder
 * cannot do (max, weighted mean, several modes) is refused unless a setting overrides it.
 */
export function resolveConventions(settings: ConventionSettings, described: DescribedConventions, dir: string | undefined): ModelConventions {
  const pick = <T>(setting: T | undefined, fromDir: T | undefined, fallback: T): [T, ConventionSource] =>
    setting !== undefined ? [setting, 'setting'] : fromDir !== undefined ? [fromDir, 'model directory'] : [fallback, 'bge default'];
  const [describedPooling, poolingUnsupported] =
    described.pooling === undefined || (SUPPORTED_POOLING as readonly string[]).includes(described.pooling)
      ? [described.pooling as EmbeddingPooling | undefined, false]
      : [undefined, true];
  if (poolingUnsupported && settings.pooling === undefined) {
    throw new EmbeddingConfigError(
      `The model in ${dir} asks for ${described.pooling} pooling (its sentence-transformers Pooling config), which the embedder ` +
        `does not do (it does ${SUPPORTED_POOLING.join(', ')}); set EMBEDDING_POOLING to override, or use another model.`,
    );
  }
  const [pooling, poolingSource] = pick(settings.pooling, describedPooling, 'cls' as EmbeddingPooling);
  const [normalize, normalizeSource] = pick(settings.normalize, described.normalize, true);
  const [queryPrefix, querySource] = pick(settings.queryPrefix, described.queryPrefix, BGE_QUERY_PREFIX);
  const [documentPrefix, documentSource] = pick(settings.documentPrefix, described.documentPrefix, '');
  return {
    pooling,
    normalize,
    queryPrefix,
    documentPrefix,
    sources: { pooling: poolingSource, normalize: normalizeSource, queryPrefix: querySource, documentPrefix: documentSource },
  };
}

/** One line for logs: "mean pooling (model directory), unit vectors (model directory), no query prefix (model directory), ...". */
export function describeConventions(conventions: ModelConventions): string {
  const prefix = (value: string) => (value === '' ? 'none' : JSON.stringify(value));
  return (
    `${conventions.pooling} pooling (${conventions.sources.pooling}), ` +
    `${conventions.normalize ? 'unit vectors' : 'vectors not normalised'} (${conventions.sources.normalize}), ` +
    `query prefix ${prefix(conventions.queryPrefix)} (${conventions.sources.queryPrefix}), ` +
    `document prefix ${prefix(conventions.documentPrefix)} (${conventions.sources.documentPrefix})`
  );
}

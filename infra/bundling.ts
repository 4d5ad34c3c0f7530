/**
 * esbuild bundling for the Lambda functions, local only (never Docker: this repo must synth offline).
 *
 * - Plain API functions: one minified ESM file plus its source map; the AWS SDK v3 stays external
 *   (the nodejs22.x runtime ships it). Nothing else is copied, so they carry no ML code.
 * - Embedding functions (the indexer and routes with `embeds: true`): the same bundle, with
 *   @huggingface/transformers bundled in, plus, copied after bundling (no npm install, no network):
 *   `node_modules/onnxruntime-node` with only the native binding of the target Linux architecture,
 *   `node_modules/onnxruntime-common`, and the embedding model under `model/`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogLevel, OutputFormat, type BundlingOptions, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import {
  DEFAULT_MODEL_ID,
  DEFAULT_REVISION,
  FETCHED_MODELS_DIR,
  TEST_MODEL_HINT_DIR,
  cachedModelDir,
  onnxFileFor,
  requiredModelFiles,
  type EmbeddingDtype,
} from '../shared/embedding/config';
import { directoryModelId } from '../shared/embedding/modelConventions';
import { buildWebAssets } from '../web/build';
import type { LambdaArchitectureName, StageConfig } from './stageConfig';

/** The repository root (the folder with package.json and package-lock.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where embedding functions find the model inside their asset (Lambda unpacks the asset at /var/task). */
export const MODEL_ASSET_DIR = 'model';
export const LAMBDA_TASK_ROOT = '/var/task';

/**
 * ESM bundles of CommonJS dependencies call `require` for Node built-ins; ESM has none, so the
 * banner defines one. The imported name is unusual so it cannot clash with a bundled import.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __personaDbCreateRequire } from 'node:module'; const require = __personaDbCreateRequire(import.meta.url);";

/** Packages that are never bundled into a plain API function (the infra test greps the bundles for them too). */
export const ML_PACKAGES = ['@huggingface/transformers', 'onnxruntime-node', 'onnxruntime-common', 'onnxruntime-web', 'sharp'] as const;

const baseBundling = {
  format: OutputFormat.ESM,
  target: 'node22',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  // The map keeps line mapping for stack traces (NODE_OPTIONS=--enable-source-maps) but not the
  // sources themselves, which would double the asset size.
  sourcesContent: false,
  forceDockerBundling: false,
  logLevel: LogLevel.WARNING,
} satisfies BundlingOptions;

/** Bundling for functions that do not embed: AWS SDK external, ML packages forbidden. */
export function apiBundling(): BundlingOptions {
  return {
    ...baseBundling,
    externalModules: ['@aws-sdk/*'],
    // An accidental import of the ML stack then fails the bundle loudly instead of growing it
    // by hundreds of megabytes: esbuild cannot resolve a package aliased to a missing file.
    esbuildArgs: Object.fromEntries(
      ML_PACKAGES.map((name) => [`--alias:${name}`, path.join(PROJECT_ROOT, 'infra', 'stubs', 'ml-not-allowed-in-api-functions')]),
    ),
  };
}

/** Where the function serving the console's scripts finds them inside its asset (WEB_ASSETS_DIR). */
export const WEB_ASSET_DIR = 'web';

/**
 * Bundling for the function that serves the browser assets: the plain API bundle plus the files
 * web/build.ts writes (built once per synth), copied under `web/`.
 */
export function webAssetBundling(): BundlingOptions {
  const builtDir = mkdtempSync(path.join(tmpdir(), 'persona-web-assets-'));
  const files = buildWebAssets(builtDir);
  const api = apiBundling();
  return {
    ...api,
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (_inputDir: string, outputDir: string) => [
        `mkdir -p ${quote(path.join(outputDir, WEB_ASSET_DIR))}`,
        ...files.map((file) => `cp ${quote(path.join(builtDir, file))} ${quote(path.join(outputDir, WEB_ASSET_DIR, file))}`),
      ],
    },
  };
}

/** The Linux folder name onnxruntime-node uses for each Lambda architecture. */
const ORT_ARCH: Record<LambdaArchitectureName, string> = { arm64: 'arm64', x86_64: 'x64' };

/** Finds an installed package by walking up node_modules folders from `fromDir`, as Node does. */
export function findPackageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`Cannot find package ${name} (looked up from ${fromDir}); run npm ci`);
  }
}

export interface ResolvedModel {
  /** Absolute model directory in the transformers.js layout. */
  readonly dir: string;
  /** Where it came from, for the synth-time message. */
  readonly source: 'config' | 'EMBEDDING_MODEL_DIR' | 'transformers-cache' | 'model:fetch' | 'test-model';
  /** The model's id (EMBEDDING_MODEL_ID in Lambda, where the bundled folder has another name): hub id, else shared/embedding's directoryModelId. */
  readonly id: string;
  readonly dtype: EmbeddingDtype;
  /** A model the project generates (test model, benchmark models): wiring only, its vectors mean nothing. */
  readonly generated: boolean;
}

/**
 * Which model goes into embedding functions, first match wins:
 * 1. `embedding.modelDir` of the stage config (`-c embeddingModelDir=...`);
 * 2. the `EMBEDDING_MODEL_DIR` environment variable at synth time;
 * 3. `EMBEDDING_MODEL_ID` (default BAAI/bge-small-en-v1.5) in the transformers.js file cache
 *    (`EMBEDDING_CACHE_DIR`, else node_modules/@huggingface/transformers/.cache), when complete;
 * 4. the same model where `npm run model:fetch` puts it (.cache/models/<model id>);
 * 5. dev only: the generated test model (.cache/models/persona-test-model), with a synth warning.
 * Otherwise synth fails: functions never download a model at cold start.
 * The directory must hold the files shared/embedding/config.ts requires for the dtype. Stage prod
 * refuses a generated model (the test model, benchmark models) whichever way it came.
 */
export function resolveEmbeddingModel(config: StageConfig, env: NodeJS.ProcessEnv = process.env): ResolvedModel {
  const dtype = config.embedding.dtype;
  const resolve = (dir: string, source: ResolvedModel['source'], id?: string): ResolvedModel => {
    const absolute = path.resolve(PROJECT_ROOT, dir);
    const missing = requiredModelFiles(dtype).filter((file) => !existsSync(path.join(absolute, file)));
    if (missing.length > 0) {
      throw new Error(`Embedding model directory ${absolute} (from ${source}) lacks ${missing.join(', ')} for dtype ${dtype}`);
    }
    const generated = generatedModelNote(absolute);
    if (generated !== undefined && config.stage === 'prod') {
      throw new Error(
        `Stage prod refuses the embedding model in ${absolute} (from ${source}): it is a model this project generates ` +
          `(${generated}), whose vectors mean nothing. Run \`npm run model:fetch\` (BAAI/bge-small-en-v1.5) and synth again, ` +
          'or set EMBEDDING_MODEL_DIR to a real model.',
      );
    }
    return { dir: absolute, source, dtype, id: directoryModelId(absolute, readConfig(absolute), env.EMBEDDING_MODEL_ID || id), generated: generated !== undefined };
  };
  if (config.embedding.modelDir) return resolve(config.embedding.modelDir, 'config');
  if (env.EMBEDDING_MODEL_DIR) return resolve(env.EMBEDDING_MODEL_DIR, 'EMBEDDING_MODEL_DIR');
  const modelId = env.EMBEDDING_MODEL_ID || DEFAULT_MODEL_ID;
  const cacheDir = env.EMBEDDING_CACHE_DIR || path.join(findPackageDir('@huggingface/transformers', PROJECT_ROOT), '.cache');
  const cached = cachedModelDir(path.resolve(PROJECT_ROOT, cacheDir), modelId, env.EMBEDDING_MODEL_REVISION || DEFAULT_REVISION);
  if (requiredModelFiles(dtype).every((file) => existsSync(path.join(cached, file)))) return resolve(cached, 'transformers-cache', modelId);
  const fetched = cachedModelDir(path.join(PROJECT_ROOT, FETCHED_MODELS_DIR), modelId, env.EMBEDDING_MODEL_REVISION || DEFAULT_REVISION);
  if (requiredModelFiles(dtype).every((file) => existsSync(path.join(fetched, file)))) return resolve(fetched, 'model:fetch', modelId);
  const testModel = path.join(PROJECT_ROOT, TEST_MODEL_HINT_DIR);
  if (config.stage === 'dev' && existsSync(path.join(testModel, 'config.json'))) return resolve(testModel, 'test-model');
  throw new Error(
    `No embedding model for stage ${config.stage}: set EMBEDDING_MODEL_DIR (or -c embeddingModelDir=...) to a model directory ` +
      `with ${requiredModelFiles(dtype).join(', ')}, or run \`npm run model:fetch${modelId === DEFAULT_MODEL_ID ? '' : ` -- ${modelId}`}\` (it writes ${fetched})` +
      (config.stage === 'dev' ? ', or run `npm run model:test` to bundle the small generated test model. ' : '. ') +
      'Lambda functions never download a model at cold start.',
  );
}

const readConfig = (dir: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // An unreadable config.json is reported by the embedder at run time.
    return undefined;
  }
};

/** What config.json says of a model the project generated (lib/generatedModels), else undefined. */
function generatedModelNote(dir: string): string | undefined {
  const config = readConfig(dir);
  const marker = (config?.persona_test_model ?? config?.persona_db_generated_model) as { generator?: unknown } | undefined;
  if (marker !== undefined) return `config.json names its generator, ${String(marker.generator ?? 'lib/generatedModels')}`;
  return undefined;
}

const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/**
 * Shell commands (POSIX sh, run with the project root as working directory) that copy the ONNX
 * runtime for one Linux architecture and the model into the bundled asset. Of the model's ONNX
 * files only the one for the dtype (and its external-data file, if any) is copied.
 */
export function embeddingAssetCommands(outputDir: string, architecture: LambdaArchitectureName, model: ResolvedModel): string[] {
  const transformersDir = findPackageDir('@huggingface/transformers', PROJECT_ROOT);
  const ortNode = findPackageDir('onnxruntime-node', transformersDir);
  const ortCommon = findPackageDir('onnxruntime-common', ortNode);
  const binding = path.join(ortNode, 'bin', 'napi-v6', 'linux', ORT_ARCH[architecture]);
  if (!existsSync(path.join(binding, 'onnxruntime_binding.node'))) {
    throw new Error(`onnxruntime-node has no native binding for linux/${ORT_ARCH[architecture]} at ${binding}`);
  }
  const out = (...parts: string[]) => quote(path.join(outputDir, ...parts));
  const ortNodeOut = ['node_modules', 'onnxruntime-node'];
  const bindingOut = [...ortNodeOut, 'bin', 'napi-v6', 'linux', ORT_ARCH[architecture]];
  const ortCommonOut = ['node_modules', 'onnxruntime-common'];
  const onnxFile = onnxFileFor(model.dtype);
  const modelCopies = readdirSync(model.dir, { withFileTypes: true })
    .filter((entry) => entry.name !== path.dirname(onnxFile))
    .map((entry) => `cp -R ${quote(path.join(model.dir, entry.name))} ${out(MODEL_ASSET_DIR, entry.name)}`);
  const onnxCopies = readdirSync(path.join(model.dir, path.dirname(onnxFile)))
    .filter((name) => name === path.basename(onnxFile) || name.startsWith(`${path.basename(onnxFile)}_data`))
    .map((name) => `cp ${quote(path.join(model.dir, path.dirname(onnxFile), name))} ${out(MODEL_ASSET_DIR, path.dirname(onnxFile), name)}`);
  return [
    `mkdir -p ${out(...bindingOut)} ${out(...ortCommonOut)} ${out(MODEL_ASSET_DIR, path.dirname(onnxFile))}`,
    `cp ${quote(path.join(ortNode, 'package.json'))} ${out(...ortNodeOut, 'package.json')}`,
    `cp -R ${quote(path.join(ortNode, 'dist'))} ${out(...ortNodeOut, 'dist')}`,
    `cp ${quote(path.join(binding, 'onnxruntime_binding.node'))} ${quote(path.join(binding, 'libonnxruntime.so.1'))} ${out(...bindingOut)}`,
    `cp ${quote(path.join(ortCommon, 'package.json'))} ${out(...ortCommonOut, 'package.json')}`,
    `cp -R ${quote(path.join(ortCommon, 'dist'))} ${out(...ortCommonOut, 'dist')}`,
    // Type declarations and source maps of the copied packages are dead weight at run time.
    `find ${out('node_modules')} -type f \\( -name '*.d.ts' -o -name '*.map' \\) -delete`,
    ...modelCopies,
    ...onnxCopies,
  ];
}

/** Bundling for functions that embed text (see the file comment). */
export function embeddingBundling(architecture: LambdaArchitectureName, model: ResolvedModel): BundlingOptions {
  const commandHooks: ICommandHooks = {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_inputDir: string, outputDir: string) => embeddingAssetCommands(outputDir, architecture, model),
  };
  return {
    ...baseBundling,
    // Loaded from the asset's node_modules at run time: the native binding cannot be bundled, and
    // onnxruntime-common must be the single instance onnxruntime-node also loads.
    externalModules: ['@aws-sdk/*', 'onnxruntime-node', 'onnxruntime-common'],
    // transformers.js imports sharp (images) at load time; text embedding never calls it, and
    // sharp's native libvips for Linux is not installed here. The stub keeps the import working.
    esbuildArgs: { '--alias:sharp': path.join(PROJECT_ROOT, 'infra', 'stubs', 'sharp.mjs') },
    commandHooks,
  };
}

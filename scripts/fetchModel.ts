/**
 * `npm run model:fetch [-- MODEL_ID] [--revision REV] [--dtype q8|fp32] [--dir DIR]`: downloads what
 * the embedder, `npm start` and `npm run synth` need of a Hugging Face hub model into a model
 * directory, and prints the EMBEDDING_MODEL_DIR to use. Default model BAAI/bge-small-en-v1.5, dtype
 * EMBEDDING_DTYPE (default q8), directory `.cache/models/<model id>` (synth finds it there).
 *
 * The hub, as transformers.js and huggingface_hub use it:
 * - URLs: transformers.js's own `env.remoteHost` + `env.remotePathTemplate` ("{model}/resolve/{revision}/",
 *   utils/hub.js buildResourcePaths; HF_ENDPOINT, huggingface_hub's variable, sets remoteHost for a
 *   mirror), the layout huggingface_hub's HUGGINGFACE_CO_URL_TEMPLATE names; requests go through
 *   `env.fetch`. Which ONNX file (and external-data files) a dtype needs comes from transformers.js's
 *   `ModelRegistry.get_model_files`, given the downloaded config.json.
 * - Metadata: a HEAD request that does not follow redirects (huggingface_hub file_download.py
 *   get_hf_file_metadata): a Git LFS file answers 302 to its storage with `X-Linked-Etag` (its
 *   sha256) and `X-Linked-Size`; a plain git file answers 200 with `ETag` (its git blob sha1) and
 *   `Content-Length`. A missing file or revision is 404, a missing or private repository 401.
 * - Resume: a file is written to `<file>.incomplete` and continued with `Range: bytes=<have>-`
 *   (huggingface_hub http_get's resume_size); a 206 answer appends, a 200 starts over.
 * - Verification: the size, and the sha256 (LFS) or git blob sha1 (plain files) the hub announced;
 *   a file that does not match is deleted and the fetch fails. Files already present and matching
 *   are not downloaded again.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

import { cachedModelDir, DEFAULT_MODEL_ID, DEFAULT_REVISION, FETCHED_MODELS_DIR, requiredModelFiles, type EmbeddingDtype } from '../shared/embedding/config';
/** Files the embedder reads when present: sentence-transformers conventions (modelConventions.ts) and the tokenizer's special tokens. */
const OPTIONAL_FILES = ['special_tokens_map.json', 'modules.json', 'config_sentence_transformers.json', 'sentence_bert_config.json'];

export interface FetchProgress {
  file: string;
  loaded: number;
  total: number | undefined;
  state: 'present' | 'download' | 'resume' | 'progress' | 'done' | 'absent';
}

export interface FetchModelOptions {
  modelId?: string;
  revision?: string;
  dtype?: EmbeddingDtype;
  /** Target directory (default `.cache/models/<model id>`, plus `/<revision>` when not main). */
  dir?: string;
  /**
   * The hub's address (default HF_ENDPOINT, huggingface_hub's variable for a mirror or a private hub;
   * else transformers.js's env.remoteHost, https://huggingface.co/). Sets env.remoteHost.
   */
  endpoint?: string;
  onProgress?: (event: FetchProgress) => void;
}

export interface FetchedFile {
  file: string;
  size: number;
  /** "sha256:<hex>" or "git-sha1:<hex>" when the hub announced one (and it was checked). */
  checksum: string | undefined;
  state: 'present' | 'downloaded' | 'resumed';
}

export interface FetchModelResult {
  modelId: string;
  revision: string;
  dtype: EmbeddingDtype;
  dir: string;
  files: FetchedFile[];
  /** The commit the hub resolved the revision to (X-Repo-Commit), when it said. */
  commit: string | undefined;
}

export class ModelFetchError extends Error {
  override readonly name = 'ModelFetchError';
}

interface RemoteFile {
  url: string;
  /** Where to GET the bytes (the LFS storage URL of a redirect, else the resolve URL). */
  location: string;
  size: number | undefined;
  checksum: { algorithm: 'sha256' | 'git-sha1'; hex: string } | undefined;
  commit: string | undefined;
}

type Transformers = typeof import('@huggingface/transformers');

function resolveUrl(env: Transformers['env'], modelId: string, revision: string, file: string): string {
  // As transformers.js's buildResourcePaths: remoteHost + remotePathTemplate({model}, {revision}) + file.
  const template = env.remotePathTemplate.replaceAll('{model}', modelId).replaceAll('{revision}', encodeURIComponent(revision));
  const join = (a: string, b: string) => `${a.replace(/\/$/, '')}/${b.replace(/^\//, '')}`;
  return join(join(env.remoteHost, template), file);
}

function requestHeaders(env: Transformers['env'], url: string): Record<string, string> {
  const headers: Record<string, string> = { 'User-Agent': `transformers.js/${env.version}; persona-db model:fetch` };
  // Like transformers.js: a token goes to the Hugging Face hub only, never to a mirror.
  const token = process.env.HF_TOKEN ?? process.env.HF_ACCESS_TOKEN;
  if (token && ['huggingface.co', 'hf.co'].includes(new URL(url).hostname)) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function parseChecksum(etag: string | null): RemoteFile['checksum'] {
  const value = etag?.replace(/^W\//, '').replace(/"/g, '').trim() ?? '';
  if (/^[0-9a-f]{64}$/i.test(value)) return { algorithm: 'sha256', hex: value.toLowerCase() };
  if (/^[0-9a-f]{40}$/i.test(value)) return { algorithm: 'git-sha1', hex: value.toLowerCase() };
  return undefined;
}

const describeFailure = (error: unknown) =>
  error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}` : String(error);

/** HEAD without following redirects; undefined for a 404 (the file is not in that revision). */
async function remoteFile(env: Transformers['env'], modelId: string, revision: string, file: string): Promise<RemoteFile | undefined> {
  const url = resolveUrl(env, modelId, revision, file);
  let response: Response;
  try {
    response = await env.fetch(url, { method: 'HEAD', redirect: 'manual', headers: { ...requestHeaders(env, url), 'Accept-Encoding': 'identity' } });
  } catch (error) {
    throw new ModelFetchError(
      `Could not reach ${url} (${describeFailure(error)}). Check the network, or set HF_ENDPOINT to a Hugging Face mirror you can reach (HF_ENDPOINT=https://hf-mirror.example npm run model:fetch).`,
    );
  }
  if (response.status === 404) return undefined;
  if (response.status === 401 || response.status === 403) {
    throw new ModelFetchError(
      `${url} answered ${response.status}: the repository ${modelId} does not exist, or it is private or gated (set HF_TOKEN to a token with access).`,
    );
  }
  const redirected = response.status >= 300 && response.status < 400;
  if (!redirected && response.status !== 200) throw new ModelFetchError(`${url} answered ${response.status} ${response.statusText}; try again later.`);
  const header = (name: string) => response.headers.get(name);
  const size = Number(header('x-linked-size') ?? header('content-length') ?? Number.NaN);
  const location = redirected && header('location') ? new URL(header('location')!, url).href : url;
  return {
    url,
    location,
    size: Number.isFinite(size) ? size : undefined,
    checksum: parseChecksum(header('x-linked-etag') ?? header('etag')),
    commit: header('x-repo-commit') ?? undefined,
  };
}

async function checksumOf(file: string, algorithm: 'sha256' | 'git-sha1', size: number): Promise<string> {
  const hash = createHash(algorithm === 'sha256' ? 'sha256' : 'sha1');
  // A git blob's id is the sha1 of "blob <size>\0" followed by the content.
  if (algorithm === 'git-sha1') hash.update(`blob ${size}\0`);
  await streamPipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function sizeOf(file: string): Promise<number | undefined> {
  return stat(file).then(
    (info) => info.size,
    () => undefined,
  );
}

/** Whether `file` on disk has the size and checksum the hub announced. */
async function matches(file: string, remote: RemoteFile): Promise<boolean> {
  const size = await sizeOf(file);
  if (size === undefined || (remote.size !== undefined && size !== remote.size)) return false;
  return remote.checksum === undefined || (await checksumOf(file, remote.checksum.algorithm, size)) === remote.checksum.hex;
}

async function download(env: Transformers['env'], name: string, target: string, remote: RemoteFile, onProgress: (event: FetchProgress) => void): Promise<FetchedFile> {
  const checksum = remote.checksum && `${remote.checksum.algorithm}:${remote.checksum.hex}`;
  if (await matches(target, remote)) {
    const size = (await sizeOf(target))!;
    onProgress({ file: name, loaded: size, total: size, state: 'present' });
    return { file: name, size, checksum, state: 'present' };
  }
  const partial = `${target}.incomplete`;
  await mkdir(path.dirname(target), { recursive: true });
  let have = (await sizeOf(partial)) ?? 0;
  if (remote.size !== undefined && have > remote.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  const headers = requestHeaders(env, remote.location);
  if (have > 0) headers.Range = `bytes=${have}-`;
  let response: Response;
  try {
    response = await env.fetch(remote.location, { headers });
  } catch (error) {
    throw new ModelFetchError(`Downloading ${remote.url} failed (${describeFailure(error)}); run the fetch again to resume.`);
  }
  if (response.status === 416) {
    // The partial file is not a prefix the server can continue: start over.
    await rm(partial, { force: true });
    return download(env, name, target, remote, onProgress);
  }
  if (response.status !== 200 && response.status !== 206) throw new ModelFetchError(`Downloading ${remote.url} answered ${response.status} ${response.statusText}; try again later.`);
  const resumed = response.status === 206 && have > 0;
  if (!resumed) have = 0;
  onProgress({ file: name, loaded: have, total: remote.size, state: resumed ? 'resume' : 'download' });
  let loaded = have;
  const counting = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      loaded += chunk.byteLength;
      onProgress({ file: name, loaded, total: remote.size, state: 'progress' });
      controller.enqueue(chunk);
    },
  });
  try {
    await streamPipeline(response.body!.pipeThrough(counting), createWriteStream(partial, { flags: resumed ? 'a' : 'w' }));
  } catch (error) {
    throw new ModelFetchError(
      `Downloading ${remote.url} broke off after ${loaded} of ${remote.size ?? '?'} bytes (${describeFailure(error)}); ` +
        'run the same command again to resume from there.',
    );
  }
  const size = (await sizeOf(partial))!;
  if (!(await matches(partial, remote))) {
    await rm(partial, { force: true });
    throw new ModelFetchError(
      `${remote.url}: the downloaded file (${size} bytes) does not match the hub's ${remote.size ?? '?'} bytes` +
        `${checksum ? ` and ${checksum}` : ''}; it was deleted. Run the fetch again.`,
    );
  }
  await rename(partial, target);
  onProgress({ file: name, loaded: size, total: size, state: 'done' });
  return { file: name, size, checksum, state: resumed ? 'resumed' : 'downloaded' };
}

/** Downloads the model's files (see the file comment); throws ModelFetchError with what to do. */
export async function fetchModel(options: FetchModelOptions = {}): Promise<FetchModelResult> {
  const modelId = options.modelId ?? DEFAULT_MODEL_ID;
  const revision = options.revision ?? DEFAULT_REVISION;
  const dtype = options.dtype ?? 'q8';
  const dir = path.resolve(options.dir ?? cachedModelDir(FETCHED_MODELS_DIR, modelId, revision));
  const onProgress = options.onProgress ?? (() => undefined);
  const transformers = await import('@huggingface/transformers');
  const { env, ModelRegistry } = transformers;
  const endpoint = options.endpoint ?? process.env.HF_ENDPOINT?.trim();
  if (endpoint) env.remoteHost = endpoint.endsWith('/') ? endpoint : `${endpoint}/`;

  const files: FetchedFile[] = [];
  let commit: string | undefined;
  const fetchOne = async (name: string, required: boolean): Promise<boolean> => {
    const remote = await remoteFile(env, modelId, revision, name);
    if (!remote) {
      if (required) {
        throw new ModelFetchError(
          `${resolveUrl(env, modelId, revision, name)} was not found (404): ${modelId}@${revision} has no ${name}. ` +
            `Check the model id and the revision; the model must be in the transformers.js layout (ONNX weights under onnx/, e.g. the Xenova/ or onnx-community/ conversions).`,
        );
      }
      onProgress({ file: name, loaded: 0, total: undefined, state: 'absent' });
      return false;
    }
    commit ??= remote.commit;
    files.push(await download(env, name, path.join(dir, name), remote, onProgress));
    return true;
  };

  await fetchOne('config.json', true);
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  // transformers.js's own list of the model files for this dtype (ONNX file, external data chunks).
  const modelFiles = await ModelRegistry.get_model_files(modelId, { config: config as never, dtype });
  const required = [...new Set([...modelFiles, ...requiredModelFiles(dtype)])].filter((file) => file !== 'config.json');
  for (const file of required) await fetchOne(file, true);
  for (const file of OPTIONAL_FILES) await fetchOne(file, false);
  // The Pooling module's config lives where modules.json says (1_Pooling/ by convention).
  const modules = JSON.parse(await readFile(path.join(dir, 'modules.json'), 'utf8').catch(() => '[]')) as Array<{ type?: string; path?: string }>;
  for (const module of Array.isArray(modules) ? modules : []) {
    if (typeof module.type === 'string' && module.type.endsWith('Pooling') && typeof module.path === 'string') await fetchOne(`${module.path}/config.json`, false);
  }
  return { modelId, revision, dtype, dir, files, commit };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function parseArgs(argv: readonly string[]): FetchModelOptions {
  const options: FetchModelOptions = {};
  const envDtype = process.env.EMBEDDING_DTYPE?.trim();
  if (envDtype === 'q8' || envDtype === 'fp32') options.dtype = envDtype;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new ModelFetchError(`${arg} needs a value`);
      return next;
    };
    if (arg === '--revision') options.revision = value();
    else if (arg === '--dir') options.dir = value();
    else if (arg === '--dtype') {
      const dtype = value();
      if (dtype !== 'q8' && dtype !== 'fp32') throw new ModelFetchError(`--dtype must be q8 or fp32, not ${dtype}`);
      options.dtype = dtype;
    } else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run model:fetch [-- MODEL_ID] [--revision REV] [--dtype q8|fp32] [--dir DIR]');
      process.exit(0);
    } else if (arg.startsWith('-')) throw new ModelFetchError(`unknown option ${arg} (see --help)`);
    else options.modelId = arg;
  }
  return options;
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  let lastLine = 0;
  const onProgress = (event: FetchProgress) => {
    const total = event.total === undefined ? '' : ` of ${mb(event.total)}`;
    if (event.state === 'progress') {
      // At most a line a second per download; progress is for people watching.
      if (Date.now() - lastLine < 1000) return;
      lastLine = Date.now();
      const percent = event.total ? ` (${Math.floor((event.loaded / event.total) * 100)}%)` : '';
      console.error(`  ${event.file}: ${mb(event.loaded)}${total}${percent}`);
    } else if (event.state === 'present') console.error(`  ${event.file}: already here and verified (${mb(event.loaded)})`);
    else if (event.state === 'absent') console.error(`  ${event.file}: not in the model (optional)`);
    else if (event.state === 'resume') console.error(`  ${event.file}: resuming at ${mb(event.loaded)}${total}`);
    else if (event.state === 'download') console.error(`  ${event.file}: downloading${total}`);
    else console.error(`  ${event.file}: done, verified (${mb(event.loaded)})`);
  };
  (async () => {
    const options = parseArgs(process.argv.slice(2));
    console.error(`fetching ${options.modelId ?? DEFAULT_MODEL_ID}@${options.revision ?? DEFAULT_REVISION} (${options.dtype ?? 'q8'}) …`);
    const result = await fetchModel({ ...options, onProgress });
    const total = result.files.reduce((sum, file) => sum + file.size, 0);
    console.error(`${result.modelId}@${result.revision}${result.commit ? ` (commit ${result.commit})` : ''}: ${result.files.length} files, ${mb(total)} in ${result.dir}`);
    console.log(`EMBEDDING_MODEL_DIR=${path.relative(process.cwd(), result.dir) || '.'}`);
    if (result.dtype !== 'q8') console.log(`EMBEDDING_DTYPE=${result.dtype}`);
  })().catch((error: unknown) => {
    console.error(error instanceof ModelFetchError ? `model:fetch: ${error.message}` : error);
    process.exitCode = 1;
  });
}

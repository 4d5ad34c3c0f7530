import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTestModel } from '../lib/generatedModels/testModel';
import { createEmbedder } from '../shared/embedding';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/**
 * A stand-in for the Hugging Face hub's file endpoint, serving one model directory the way
 * huggingface.co does (huggingface_hub constants.py HUGGINGFACE_CO_URL_TEMPLATE
 * "{endpoint}/{repo_id}/resolve/{revision}/{filename}"; file_download.py get_hf_file_metadata):
 * - a Git LFS file (here the ONNX files) answers HEAD and GET on its resolve URL with 302 to its
 *   storage URL, carrying `X-Linked-Etag` (the file's sha256, quoted), `X-Linked-Size` and
 *   `X-Repo-Commit`; the storage answers Range requests with 206 and `Content-Range`;
 * - a plain git file answers 200 with `ETag` (its git blob sha1, quoted), `Content-Length`, `X-Repo-Commit`;
 * - a file that is not in the revision answers 404 (`X-Error-Code: EntryNotFound`); an unknown
 *   repository 401 (`X-Error-Code: RepoNotFound`): the hub does not tell a missing repository from a
 *   private one (transformers.js utils/hub/utils.js ModelFileNotFoundError says the same).
 */
interface FakeHub {
  url: string;
  /** Request lines seen, e.g. "GET /lfs/ab12… bytes=100-". */
  requests: string[];
  /** The next GET of this file's bytes sends half of them, then drops the connection. */
  breakNextDownload(file: string): void;
  close(): Promise<void>;
}

const COMMIT = 'a'.repeat(40);
const LFS = (file: string) => file.endsWith('.onnx');

async function startFakeHub(repoId: string, modelDir: string): Promise<FakeHub> {
  const files = new Map<string, Buffer>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else files.set(path.relative(modelDir, full).split(path.sep).join('/'), await readFile(full));
    }
  };
  await walk(modelDir);
  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  const gitSha1 = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const byHash = new Map([...files].filter(([file]) => LFS(file)).map(([file, bytes]) => [sha256(bytes), file]));
  const breaking = new Set<string>();
  const requests: string[] = [];

  const sendBytes = (req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>) => {
    const bytes = files.get(file)!;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.length && bytes.length > 0) return res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Length': String(body.length),
      ...(range ? { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    if (breaking.delete(file)) {
      // A graceful close (FIN, not RST), so the half that was sent arrives before the break.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.end());
      return;
    }
    res.end(body);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const lfs = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname);
    if (lfs && byHash.has(lfs[1]!)) return sendBytes(req, res, byHash.get(lfs[1]!)!, { 'Content-Type': 'application/octet-stream' });
    const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return res.writeHead(404).end();
    const [, repo, revision, file] = resolve as unknown as [string, string, string, string];
    if (repo !== repoId) return res.writeHead(401, { 'X-Error-Code': 'RepoNotFound' }).end();
    if (revision !== 'main' || !files.has(file)) return res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end();
    const bytes = files.get(file)!;
    if (LFS(file)) {
      return res
        .writeHead(302, {
          Location: `/lfs/${sha256(bytes)}`,
          'X-Linked-Etag': `"${sha256(bytes)}"`,
          'X-Linked-Size': String(bytes.length),
          'X-Repo-Commit': COMMIT,
          'Content-Length': '0',
        })
        .end();
    }
    sendBytes(req, res, file, { ETag: `"${gitSha1(bytes)}"`, 'X-Repo-Commit': COMMIT, 'Content-Type': 'text/plain; charset=utf-8' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    breakNextDownload: (file) => breaking.add(file),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `npm run model:fetch -- ...` as a user runs it, with HF_ENDPOINT pointing at the fake hub. */
async function modelFetch(args: string[], endpoint: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npm', ['run', '--silent', 'model:fetch', '--', ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, HF_ENDPOINT: endpoint },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('npm run model:fetch against a local hub', () => {
  const REPO = 'persona-db-test/hub-model';
  let workDir: string;
  let sourceDir: string;
  let hub: FakeHub;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'model-fetch-'));
    sourceDir = path.join(workDir, 'source');
    await generateTestModel(sourceDir);
    hub = await startFakeHub(REPO, sourceDir);
  });
  afterAll(async () => {
    await hub?.close();
    await rm(workDir, { recursive: true, force: true });
  });

  it('downloads the files the embedder needs (sentence-transformers files too), verifies them, prints EMBEDDING_MODEL_DIR, and the embedder loads them', async () => {
    const target = path.join(workDir, 'fetched');
    const result = await modelFetch([REPO, '--dir', target], hub.url);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(`EMBEDDING_MODEL_DIR=${path.relative(PROJECT_ROOT, target)}`);
    expect(result.stderr).toMatch(/onnx\/model_quantized\.onnx: done, verified/);
    expect(result.stderr).toContain(`commit ${COMMIT}`);
    const expected = ['config.json', 'onnx/model_quantized.onnx', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'modules.json', 'config_sentence_transformers.json', 'sentence_bert_config.json', '1_Pooling/config.json'];
    for (const file of expected) {
      expect(Buffer.compare(await readFile(path.join(target, file)), await readFile(path.join(sourceDir, file))), file).toBe(0);
    }
    // Only the ONNX file of the dtype: fp32 weights are not fetched for q8.
    await expect(stat(path.join(target, 'onnx/model.onnx'))).rejects.toThrow();
    // Metadata by HEAD without following the redirect, bytes from the storage URL.
    expect(hub.requests).toContain(`HEAD /${REPO}/resolve/main/onnx/model_quantized.onnx`);
    expect(hub.requests.some((line) => /^GET \/lfs\/[0-9a-f]{64}$/.test(line))).toBe(true);

    const embedder = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: target } });
    try {
      // The folder's name: the config's `_name_or_path` (persona-db/persona-test-model) names another folder.
      expect(embedder.model).toMatchObject({ id: 'fetched', pooling: 'cls', maxTokens: 512 });
      expect(embedder.conventions.sources.pooling).toBe('model directory');
    } finally {
      await embedder.dispose();
    }

    // A second run finds every file present and verified, and downloads nothing.
    const seen = hub.requests.length;
    const again = await modelFetch([REPO, '--dir', target], hub.url);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/onnx\/model_quantized\.onnx: already here and verified/);
    expect(hub.requests.slice(seen).filter((line) => line.startsWith('GET'))).toEqual([]);
  });

  it('resumes a download that broke off halfway, with a Range request, and ends with the exact file', async () => {
    const target = path.join(workDir, 'resumed');
    const onnx = await readFile(path.join(sourceDir, 'onnx/model.onnx'));
    hub.breakNextDownload('onnx/model.onnx');
    const broken = await modelFetch([REPO, '--dir', target, '--dtype', 'fp32'], hub.url);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/onnx\/model\.onnx.*broke off after \d+ of \d+ bytes.*run the same command again to resume/s);
    const partial = await stat(path.join(target, 'onnx/model.onnx.incomplete'));
    // What reached the disk before the break (at most the half the hub sent) is kept for the resume.
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThanOrEqual(Math.floor(onnx.length / 2));
    await expect(stat(path.join(target, 'onnx/model.onnx'))).rejects.toThrow();

    const resumed = await modelFetch([REPO, '--dir', target, '--dtype', 'fp32'], hub.url);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('EMBEDDING_DTYPE=fp32');
    expect(resumed.stderr).toMatch(/onnx\/model\.onnx: resuming at/);
    expect(hub.requests).toContain(`GET /lfs/${createHash('sha256').update(onnx).digest('hex')} bytes=${partial.size}-`);
    expect(Buffer.compare(await readFile(path.join(target, 'onnx/model.onnx')), onnx)).toBe(0);
    await expect(stat(path.join(target, 'onnx/model.onnx.incomplete'))).rejects.toThrow();
  });

  it('fails clearly on a 404 (a file or revision the model does not have) and on an unknown repository', async () => {
    const missingRevision = await modelFetch([REPO, '--revision', 'v9', '--dir', path.join(workDir, 'v9')], hub.url);
    expect(missingRevision.code).not.toBe(0);
    expect(missingRevision.stderr).toContain(`${hub.url}/${REPO}/resolve/v9/config.json was not found (404)`);
    expect(missingRevision.stderr).toMatch(/Check the model id and the revision/);
    expect(missingRevision.stdout).toBe('');

    const unknown = await modelFetch(['someone/no-such-model', '--dir', path.join(workDir, 'unknown')], hub.url);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/answered 401: the repository someone\/no-such-model does not exist, or it is private or gated \(set HF_TOKEN/);
  });

  it('offline (no hub answers) says which URL failed and that HF_ENDPOINT picks a mirror', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const offline = await modelFetch([REPO, '--dir', path.join(workDir, 'offline')], `http://127.0.0.1:${port}`);
    expect(offline.code).not.toBe(0);
    expect(offline.stderr).toContain(`Could not reach http://127.0.0.1:${port}/${REPO}/resolve/main/config.json`);
    expect(offline.stderr).toMatch(/ECONNREFUSED/);
    expect(offline.stderr).toMatch(/set HF_ENDPOINT to a Hugging Face mirror/);
    expect(offline.stderr).not.toMatch(/remoteHost/);
  });
});

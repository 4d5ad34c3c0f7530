import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ProblemError } from './problem';
import type { HttpResponse } from './response';

/**
 * The browser assets (web/build.ts) as HTTP responses: the console's and the /docs page's scripts
 * and styles. Served with an ETag and `no-cache`, so a browser revalidates (a 304 without body)
 * and never runs a script older than the page; gzipped when the browser accepts it, which makes
 * Swagger UI's 1.7 MB script about 0.5 MB on the wire.
 */

/** Where the built assets are: set by the local runtime, and by the stack to the folder in the function's asset. */
export const WEB_ASSETS_DIR_VARIABLE = 'WEB_ASSETS_DIR';

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Only names that web/build.ts writes: one segment, no dot files, a known type, short (never a file system's ENAMETOOLONG). */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

interface LoadedAsset {
  body: Buffer;
  gzipped: Buffer;
  etag: string;
  contentType: string;
}

/**
 * Loaded assets by directory and name. Only names that resolved are kept: the route is public, so
 * a remembered miss would let anonymous requests for random names grow the function's memory.
 * The cache is bounded by the files web/build.ts wrote.
 */
const cache = new Map<string, LoadedAsset>();

function loadAsset(name: string): LoadedAsset | undefined {
  const dir = process.env[WEB_ASSETS_DIR_VARIABLE];
  if (!dir) throw new Error(`${WEB_ASSETS_DIR_VARIABLE} is not set: the function cannot find the console's built assets`);
  const key = `${dir}\0${name}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const contentType = CONTENT_TYPES[path.extname(name)];
  if (!ASSET_NAME.test(name) || !contentType) return undefined;
  let body: Buffer;
  try {
    body = readFileSync(path.join(dir, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  const asset = { body, gzipped: gzipSync(body, { level: 9 }), etag, contentType };
  cache.set(key, asset);
  return asset;
}

const acceptsGzip = (acceptEncoding: string | undefined) =>
  (acceptEncoding ?? '').split(',').some((part) => {
    const [coding, ...params] = part.trim().split(';');
    return coding?.trim().toLowerCase() === 'gzip' && !params.some((param) => /^\s*q=0(\.0*)?\s*$/.test(param));
  });

export function webAssetResponse(name: string, request: { ifNoneMatch?: string | undefined; acceptEncoding?: string | undefined }): HttpResponse {
  const asset = loadAsset(name);
  if (!asset) throw new ProblemError(404, 'route-not-found', `No asset ${name}; the console loads /assets/console.js and /assets/console.css.`);
  const headers: Record<string, string> = { etag: asset.etag, 'cache-control': 'no-cache', vary: 'accept-encoding', 'x-content-type-options': 'nosniff' };
  if (request.ifNoneMatch?.split(',').some((tag) => tag.trim().replace(/^W\//, '') === asset.etag)) {
    return { statusCode: 304, headers, body: '' };
  }
  const gzip = acceptsGzip(request.acceptEncoding);
  return {
    statusCode: 200,
    headers: { ...headers, 'content-type': asset.contentType, ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
    body: (gzip ? asset.gzipped : asset.body).toString('base64'),
    isBase64Encoded: true,
  };
}

/** Pages are this HTML shell around one script and one stylesheet; the policy allows nothing else. */
export function webPageResponse(options: { title: string; asset: string; body: string; styleSrc?: string }): HttpResponse {
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${options.title}</title>`,
    '<link rel="icon" href="data:,">',
    `<link rel="stylesheet" href="assets/${options.asset}.css">`,
    `<script type="module" src="assets/${options.asset}.js"></script>`,
    '</head>',
    '<body>',
    options.body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'",
        "script-src 'self'",
        `style-src ${options.styleSrc ?? "'self'"}`,
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    },
    body: html,
  };
}

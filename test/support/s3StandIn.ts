/**
 * A local stand-in for Amazon S3's object API, enough for the reindex's Lambdas and state machine
 * stand-in: the real SDK client talks to it when AWS_ENDPOINT_URL_S3 points here (service-specific
 * endpoints: https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), path-style
 * (`/<bucket>/<key>`), as shared/aws/s3.ts sets for a custom endpoint.
 *
 * Protocol, as the S3 API Reference documents it: GetObject is `GET /<bucket>/<key>` answering the
 * bytes with Content-Length, Content-Type, ETag and Last-Modified
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html); a missing key is a 404 with
 * an XML `<Error><Code>NoSuchKey</Code>…` (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html);
 * PutObject is `PUT /<bucket>/<key>` answering 200 with an ETag
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html); a body the SDK sends with
 * `Content-Encoding: aws-chunked` (its flexible checksums) is decoded from its chunks
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html). Signatures are not checked.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3StandIn {
  readonly endpoint: string;
  put(bucket: string, key: string, body: Buffer | string): void;
  get(bucket: string, key: string): Buffer | undefined;
  keys(bucket: string, prefix?: string): string[];
  /** GetObject requests answered, per key. */
  readonly reads: Map<string, number>;
  close(): Promise<void>;
}

/** The payload of an `aws-chunked` body: `<hex size>[;extensions]\r\n<bytes>\r\n`… up to a 0-size chunk and trailers. */
function decodeAwsChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (!(size > 0)) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export async function startS3StandIn(): Promise<S3StandIn> {
  const objects = new Map<string, { body: Buffer; etag: string; modified: Date }>();
  const reads = new Map<string, number>();
  const id = (bucket: string, key: string) => `${bucket}/${key}`;
  const store = (bucket: string, key: string, body: Buffer) => objects.set(id(bucket, key), { body, etag: `"${createHash('md5').update(body).digest('hex')}"`, modified: new Date() });

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const fail = (status: number, code: string, message: string) => {
        response.writeHead(status, { 'content-type': 'application/xml' });
        response.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Key>${key}</Key></Error>`);
      };
      if (request.method === 'PUT' && key) {
        const raw = Buffer.concat(chunks);
        const chunked = String(request.headers['content-encoding'] ?? '').includes('aws-chunked') || String(request.headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-');
        store(bucket, key, chunked ? decodeAwsChunked(raw) : raw);
        response.writeHead(200, { etag: objects.get(id(bucket, key))!.etag });
        response.end();
        return;
      }
      if ((request.method === 'GET' || request.method === 'HEAD') && key) {
        const object = objects.get(id(bucket, key));
        if (!object) return fail(404, 'NoSuchKey', 'The specified key does not exist.');
        if (request.method === 'GET') reads.set(key, (reads.get(key) ?? 0) + 1);
        response.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(object.body.length),
          etag: object.etag,
          'last-modified': object.modified.toUTCString(),
        });
        response.end(request.method === 'GET' ? object.body : undefined);
        return;
      }
      fail(501, 'NotImplemented', `${request.method} ${url.pathname} is not part of this stand-in`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    put: (bucket, key, body) => void store(bucket, key, Buffer.isBuffer(body) ? body : Buffer.from(body)),
    get: (bucket, key) => objects.get(id(bucket, key))?.body,
    keys: (bucket, prefix = '') => [...objects.keys()].filter((name) => name.startsWith(`${bucket}/${prefix}`)).map((name) => name.slice(bucket.length + 1)),
    reads,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

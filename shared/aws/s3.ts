import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { tracer } from '../observability';
import type { ImportObjectStore } from '../importAtScale/importChunk';

/**
 * An S3 client for the region of the function. With a custom endpoint (AWS_ENDPOINT_URL_S3: an
 * S3-compatible store, the tests' stand-in) requests are path-style, since such an endpoint has no
 * per-bucket host names.
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env, region?: string): S3Client {
  return tracer.captureAWSv3Client(new S3Client({ forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3), maxAttempts: 5, ...(region ? { region } : {}) }));
}

/** An object's body as a stream (Node.js: the SDK's body is a Readable). */
export async function openObject(client: S3Client, bucket: string, key: string): Promise<Readable> {
  const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!Body) throw new Error(`s3://${bucket}/${key} has no body`);
  return Body as Readable;
}

export function s3ObjectStore(client: S3Client): ImportObjectStore {
  return {
    /**
     * Whether the key exists, by a ListObjectsV2 of that key as prefix: without s3:ListBucket a
     * GetObject of a missing key answers 403, not 404 (S3 API Reference, GetObject: "Permissions"),
     * and ListBucket can be granted for one prefix (the s3:prefix condition key).
     */
    async exists(bucket, key) {
      const { Contents } = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }));
      return Contents?.[0]?.Key === key;
    },
    async getText(bucket, key) {
      const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!Body) throw new Error(`s3://${bucket}/${key} has no body`);
      return Body.transformToString('utf8');
    },
    async putText(bucket, key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    },
  };
}

import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { tracer } from '../observability';
import type { ObjectStore } from '../reindexAtScale/exportFiles';

/**
 * An S3 client for the region of the function. With a custom endpoint (AWS_ENDPOINT_URL_S3: an
 * S3-compatible store, the tests' stand-in) requests are path-style, since such an endpoint has no
 * per-bucket host names.
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  return tracer.captureAWSv3Client(new S3Client({ forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3), maxAttempts: 5 }));
}

/** An object's body as a stream (Node.js: the SDK's body is a Readable). */
export async function openObject(client: S3Client, bucket: string, key: string): Promise<Readable> {
  const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!Body) throw new Error(`s3://${bucket}/${key} has no body`);
  return Body as Readable;
}

export function s3ObjectStore(client: S3Client): ObjectStore {
  return {
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

/**
 * A local stand-in for one Amazon SQS queue, speaking the AWS JSON 1.0 protocol the SDK v3 client
 * uses (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html:
 * `POST /` with `X-Amz-Target: AmazonSQS.<Action>`, `Content-Type: application/x-amz-json-1.0`).
 * Point a client at it with `endpoint`. Semantics kept from the API reference: ReceiveMessage returns
 * at most MaxNumberOfMessages (≤ 10) visible messages and hides them for VisibilityTimeout seconds,
 * each receive gets a new ReceiptHandle, and each message carries MD5OfBody (the SDK checks it); DeleteMessageBatch and ChangeMessageVisibilityBatch act
 * by receipt handle and answer {Successful, Failed} per entry Id.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredMessage {
  id: string;
  body: string;
  visibleAt: number;
  receiptHandle: string | undefined;
}

export interface SqsStandIn {
  readonly endpoint: string;
  readonly queueUrl: string;
  send(body: string): string;
  /** Bodies of the messages still in the queue (visible or not). */
  bodies(): string[];
  close(): Promise<void>;
}

export async function startSqsStandIn(): Promise<SqsStandIn> {
  const messages: StoredMessage[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: object) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify(body));
      };
      const action = String(request.headers['x-amz-target'] ?? '').replace(/^AmazonSQS\./, '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, any>;
      const now = Date.now();
      const byHandle = (handle: string) => messages.find((message) => message.receiptHandle === handle);
      switch (action) {
        case 'ReceiveMessage': {
          const max = Math.min(Number(input.MaxNumberOfMessages ?? 1), 10);
          const visible = messages.filter((message) => message.visibleAt <= now).slice(0, max);
          for (const message of visible) {
            message.visibleAt = now + Number(input.VisibilityTimeout ?? 30) * 1000;
            message.receiptHandle = randomUUID();
          }
          answer(200, visible.length ? { Messages: visible.map((message) => ({ MessageId: message.id, ReceiptHandle: message.receiptHandle, Body: message.body, MD5OfBody: createHash('md5').update(message.body).digest('hex') })) } : {});
          return;
        }
        case 'DeleteMessageBatch':
        case 'ChangeMessageVisibilityBatch': {
          const successful: object[] = [];
          const failed: object[] = [];
          for (const entry of input.Entries as Array<{ Id: string; ReceiptHandle: string; VisibilityTimeout?: number }>) {
            const message = byHandle(entry.ReceiptHandle);
            if (!message) {
              failed.push({ Id: entry.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'unknown receipt handle' });
              continue;
            }
            if (action === 'DeleteMessageBatch') messages.splice(messages.indexOf(message), 1);
            else message.visibleAt = now + Number(entry.VisibilityTimeout ?? 0) * 1000;
            successful.push({ Id: entry.Id });
          }
          answer(200, { Successful: successful, Failed: failed });
          return;
        }
        default:
          answer(400, { __type: 'com.amazonaws.sqs#UnsupportedOperation', message: `unsupported ${action}` });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    queueUrl: `${endpoint}/123456789012/persona-db-indexer-failures`,
    send(body) {
      const id = randomUUID();
      messages.push({ id, body, visibleAt: 0, receiptHandle: undefined });
      return id;
    },
    bodies: () => messages.map((message) => message.body),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

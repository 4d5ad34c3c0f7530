/**
 * The two places failed indexer batches wait (see failureRedrive.ts): the SQS on-failure queue of
 * the deployed stack, and the local runtime's failure file (JSON lines with the records).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBRecord } from 'aws-lambda';
import { parseOnFailureRecord, personaIdsOfRecords, type FailedBatch, type FailureSource } from './failureRedrive';

/** SQS batch calls take at most 10 entries (ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch). */
const SQS_BATCH = 10;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * The on-failure queue. Received messages stay invisible to other readers for `visibilitySeconds`
 * while the redrive runs; kept ones are made visible again at once.
 */
export function sqsFailureSource(queueUrl: string, options: { client?: SQSClient; visibilitySeconds?: number; maxMessages?: number } = {}): FailureSource {
  const client = options.client ?? new SQSClient({});
  const maxMessages = options.maxMessages ?? 1000;
  return {
    description: queueUrl,
    async receive() {
      const batches: FailedBatch[] = [];
      while (batches.length < maxMessages) {
        const { Messages } = await client.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: SQS_BATCH, VisibilityTimeout: options.visibilitySeconds ?? 900, WaitTimeSeconds: 1 }),
        );
        if (!Messages?.length) break;
        for (const message of Messages) {
          const info = parseOnFailureRecord(message.Body ?? '');
          // A message that is not an on-failure record is kept (and reported), never deleted.
          batches.push({ handle: message.ReceiptHandle!, label: `message ${message.MessageId}`, ...(info ?? { unrecognised: true }) });
        }
      }
      return batches;
    },
    async remove(batches) {
      for (const chunk of chunks(batches, SQS_BATCH)) {
        const result = await client.send(
          new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((batch, index) => ({ Id: String(index), ReceiptHandle: batch.handle })) }),
        );
        if (result.Failed?.length) throw new Error(`SQS did not delete ${result.Failed.length} message(s): ${result.Failed.map((entry) => entry.Message).join('; ')}`);
      }
    },
    async release(batches) {
      for (const chunk of chunks(batches, SQS_BATCH)) {
        await client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((batch, index) => ({ Id: String(index), ReceiptHandle: batch.handle, VisibilityTimeout: 0 })),
          }),
        );
      }
    },
  };
}

interface FailureFileEntry {
  streamArn?: string;
  firstSequenceNumber?: string;
  lastSequenceNumber?: string;
  records?: DynamoDBRecord[];
}

/** The local stream worker's failure file: each line a batch with its records. */
export function fileFailureSource(failureFile: string): FailureSource {
  return {
    description: failureFile,
    async receive() {
      const text = await readFile(failureFile, 'utf8').catch(() => '');
      return text
        .split('\n')
        .map((line, index) => ({ line, index }))
        .filter(({ line }) => line.trim() !== '')
        .map(({ line, index }) => {
          const entry = JSON.parse(line) as FailureFileEntry;
          return {
            handle: line,
            label: `line ${index + 1}`,
            streamArn: entry.streamArn,
            startSequenceNumber: entry.firstSequenceNumber,
            endSequenceNumber: entry.lastSequenceNumber,
            personaIds: personaIdsOfRecords(entry.records ?? []),
          };
        });
    },
    async remove(batches) {
      // Re-read: the stream worker may have appended batches meanwhile; only the redriven lines go.
      const removed = new Set(batches.map((batch) => batch.handle));
      const text = await readFile(failureFile, 'utf8').catch(() => '');
      const lines = text.split('\n').filter((line) => line.trim() !== '' && !removed.has(line));
      await writeFile(failureFile, lines.map((line) => `${line}\n`).join(''));
    },
    async release() {
      // Kept lines simply stay in the file.
    },
  };
}

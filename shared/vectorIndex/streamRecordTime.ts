import type { DynamoDBRecord } from 'aws-lambda';

/**
 * When a change was written, in ms since epoch. ApproximateCreationDateTime is only
 * second-precise in AWS and minute-truncated in DynamoDB Local, so a write's own `updated_at`
 * (set by the API just before the write) is used when it is later. A REMOVE has only the stream time.
 */
export function changeWrittenAt(record: DynamoDBRecord): number {
  const streamTime = (record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000;
  const updatedAt = record.eventName === 'REMOVE' ? undefined : record.dynamodb?.NewImage?.updated_at?.S;
  const writeTime = updatedAt ? Date.parse(updatedAt) : Number.NaN;
  return Number.isNaN(writeTime) ? streamTime : Math.max(streamTime, writeTime);
}

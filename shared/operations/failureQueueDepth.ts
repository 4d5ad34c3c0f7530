import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

/** Messages (failed stream batches) in the indexer's on-failure queue: waiting plus in flight. */
export async function failureQueueDepth(queueUrl: string, region: string): Promise<number> {
  const client = new SQSClient({ region });
  try {
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  } finally {
    client.destroy();
  }
}

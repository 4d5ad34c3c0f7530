/**
 * Event source mapping settings for the indexer. The CDK stack declares them on the DynamoDB
 * Streams event source and the local stream worker applies the same values, so local runs
 * behave like Lambda's poller.
 */
export interface IndexerStreamSettings {
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly bisectBatchOnError: boolean;
  readonly retryAttempts: number;
  readonly maxRecordAgeSeconds: number;
  readonly reportBatchItemFailures: boolean;
  readonly startingPosition: 'TRIM_HORIZON' | 'LATEST';
}

export const indexerStreamSettings: IndexerStreamSettings = {
  /** Records per invocation. */
  batchSize: 50,
  /**
   * Longest wait to fill a batch, in seconds. 0 invokes as soon as records arrive: a window
   * would add up to its length to every record's write-to-searchable lag at low write rates.
   */
  maxBatchingWindowSeconds: 0,
  /** On a failed batch, split it in two and retry each half. */
  bisectBatchOnError: true,
  /** Retries of a failing batch before its records go to the on-failure destination. */
  retryAttempts: 5,
  /** Records older than this, in seconds, go to the on-failure destination unprocessed. */
  maxRecordAgeSeconds: 3600,
  /** The handler answers with `batchItemFailures` (partial batch response). */
  reportBatchItemFailures: true,
  /** Shard iterator start for a new consumer. */
  startingPosition: 'TRIM_HORIZON',
  // Concurrent batches per shard: a stage setting (infra/stageConfig.ts indexerStream.parallelizationFactor).
};

import middy from '@middy/core';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { DynamoDBRecord, DynamoDBStreamEvent, DynamoDBBatchResponse } from 'aws-lambda';
import { errorChain, logger, metrics, tracer } from '../../shared/observability';
import { indexerDeps } from '../../shared/vectorIndex/indexerDeps';
import { loadDuringInit } from '../../shared/lambdaInit';
import { changeWrittenAt } from '../../shared/vectorIndex/streamRecordTime';
import { syncPersonaChanges, type PersonaChange } from '../../shared/vectorIndex/syncPersonaChanges';

const processor = new BatchProcessor(EventType.DynamoDBStreams);

// The model, the Qdrant secret and the collection check, during Lambda's init phase.
await loadDuringInit(indexerDeps);

function toChange(record: DynamoDBRecord): PersonaChange | undefined {
  const id = record.dynamodb?.Keys?.id?.S;
  if (!id || !record.eventID || !record.eventName) return undefined;
  return {
    recordId: record.eventID,
    personaId: id,
    kind: record.eventName,
    changedAt: changeWrittenAt(record),
  };
}

/**
 * DynamoDB Streams → Qdrant. The whole batch is synced together (one DynamoDB read, one
 * embedding call, one upsert); records whose persona could not be synced are reported as
 * batch item failures, so Lambda retries from there and nothing is skipped.
 */
export const handler = middy(async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  const changes = event.Records.map(toChange);
  const valid = changes.filter((change): change is PersonaChange => change !== undefined);
  const report = await syncPersonaChanges(await indexerDeps(), valid);
  const acknowledgedAt = Date.now();

  const lags: number[] = [];
  for (const change of valid) {
    if (report.failedRecordIds.has(change.recordId)) continue;
    const lag = Math.max(0, acknowledgedAt - change.changedAt);
    lags.push(lag);
    metrics.addMetric('SyncLag', MetricUnit.Milliseconds, lag);
  }
  metrics.addMetric('RecordsEmbedded', MetricUnit.Count, report.counts.embedded);
  metrics.addMetric('RecordsPayloadOnly', MetricUnit.Count, report.counts['payload-only']);
  metrics.addMetric('RecordsDeleted', MetricUnit.Count, report.counts.deleted);
  metrics.addMetric('RecordsSkippedStale', MetricUnit.Count, report.counts.skipped);
  metrics.addMetric('RecordsFailed', MetricUnit.Count, report.counts.failed + (changes.length - valid.length));
  logger.info('synced batch', {
    records: event.Records.length,
    ...report.counts,
    maxSyncLagMs: lags.length ? Math.max(...lags) : undefined,
  });
  // One line per record that is not synced: which persona, and why (with the error's causes).
  for (const change of valid) {
    if (!report.failedRecordIds.has(change.recordId)) continue;
    logger.error('persona not synced; the record is retried', {
      personaId: change.personaId,
      recordId: change.recordId,
      eventName: change.kind,
      cause: errorChain(report.errors.get(change.personaId) ?? 'no error recorded'),
    });
  }
  for (const record of event.Records) {
    if (!toChange(record)) logger.error('stream record without a persona id; it cannot be synced', { recordId: record.eventID, eventName: record.eventName });
  }

  return processPartialResponse(
    event,
    async (record: DynamoDBRecord) => {
      const change = toChange(record);
      if (!change) throw new Error(`stream record ${record.eventID ?? '?'} has no persona id; it cannot be synced`);
      if (report.failedRecordIds.has(change.recordId)) {
        throw report.errors.get(change.personaId) ?? new Error(`sync of persona ${change.personaId} failed`);
      }
    },
    processor,
    // All records failing is reported as such too (not thrown): the same retry, and each failure logged above.
    { processInParallel: false, throwOnFullBatchFailure: false },
  );
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics));

import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { createS3Client, openObject } from '../../shared/aws/s3';
import { loadDuringInit } from '../../shared/lambdaInit';
import { logger, metrics, tracer } from '../../shared/observability';
import { backfillChunk, type BackfillChunkEvent } from '../../shared/reindexAtScale/backfillChunk';
import { vectorIndexDeps } from '../../shared/vectorIndex/vectorIndexDeps';

const s3 = createS3Client();

// The model and the Qdrant secret, during Lambda's init phase.
await loadDuringInit(vectorIndexDeps);

/**
 * One child of the reindex's Distributed Map (infra/reindexAtScale.ts): embeds one chunk of a
 * DynamoDB export data file into the reindex's new collection (shared/reindexAtScale/backfillChunk.ts).
 * Its result is the chunk's report; errors are thrown by name for the state machine's Retry and
 * Catch (QdrantUnavailable: retried with backoff; BackfillTargetRefused: not).
 */
export const handler = middy(async (event: BackfillChunkEvent) => {
  const { qdrant, collection: alias, embedder } = await vectorIndexDeps();
  const report = await backfillChunk({ qdrant, alias, embedder, openObject: (bucket, key) => openObject(s3, bucket, key) }, event);
  metrics.addMetric('BackfillPersonas', MetricUnit.Count, report.personas);
  metrics.addMetric('BackfillEmbedded', MetricUnit.Count, report.actions.embedded);
  metrics.addMetric('BackfillFailed', MetricUnit.Count, report.actions.failed);
  logger.info('backfilled chunk', { ...report, durationMs: Math.round(report.durationMs), personasPerSecond: Math.round(report.personasPerSecond) });
  for (const failure of report.failed) logger.error('persona not backfilled; the reindex verification finds it', failure);
  return report;
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics));

import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { createS3Client, s3ObjectStore } from '../../shared/aws/s3';
import { logger, tracer } from '../../shared/observability';
import { planBackfill, type PlanBackfillEvent } from '../../shared/reindexAtScale/exportFiles';

const store = s3ObjectStore(createS3Client());

/**
 * The reindex state machine's plan step: reads a finished export's manifests and writes the work
 * list its Distributed Map reads, one chunk of a data file per line (shared/reindexAtScale/exportFiles.ts).
 */
export const handler = middy(async (event: PlanBackfillEvent) => {
  const plan = await planBackfill(store, event);
  logger.info('planned backfill', { ...plan });
  return plan;
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }));

import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { createDocumentClient } from '../../shared/aws/dynamodb';
import { createS3Client, s3ObjectStore } from '../../shared/aws/s3';
import { tableConfig } from '../../shared/config';
import { writeImportChunk, type ImportChunkEvent } from '../../shared/importAtScale/importChunk';
import { logger, metrics, tracer } from '../../shared/observability';
import { personaRepository } from '../../shared/persona/personaRepository';
import { tenancyConfig } from '../../shared/tenancy/tenancy';

const store = s3ObjectStore(createS3Client());
const config = tableConfig();
const documents = createDocumentClient(config);
const tables = { personas: config.personaTableName, idempotency: config.idempotencyTableName };
const { mode: tenancy } = tenancyConfig();

/**
 * One child of the import's Distributed Map (infra/importAtScale.ts): writes one staged chunk into
 * the table, each row as the API would store it and only where its id is free
 * (shared/importAtScale/importChunk.ts). The stream indexer embeds the new rows as it embeds any
 * write. Errors are thrown by name for the state machine's Retry (ImportThrottled: retried with
 * backoff; ImportRefused: not).
 */
export const handler = middy(async (event: ImportChunkEvent) => {
  const report = await writeImportChunk({ store, tenancy, repositoryFor: (tenant) => personaRepository(documents, tables, tenant) }, event);
  metrics.addMetric('ImportRowsWritten', MetricUnit.Count, report.created);
  metrics.addMetric('ImportRowsExisting', MetricUnit.Count, report.existing);
  metrics.addMetric('ImportRowsRejected', MetricUnit.Count, report.rejected);
  logger.info('imported chunk', { ...report, rejections: report.rejections.length, durationMs: Math.round(report.durationMs), rowsPerSecond: Math.round(report.rowsPerSecond) });
  return report;
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics));

import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { getEmbedder } from '../../shared/embedding';
import { logger, metrics, tracer } from '../../shared/observability';
import { DRIFT_KINDS, reconcileIndex } from '../../shared/operations/indexReconciler';
import { connectToStage } from '../../shared/operations/stageConnections';
import { loadDuringInit } from '../../shared/lambdaInit';

// The model, during Lambda's init phase.
await loadDuringInit(getEmbedder);

/** Metric name per drift kind: DriftMissing, DriftOrphan, DriftStaleVersion, … */
const kindMetric = (kind: string) => `Drift${kind.replace(/(^|-)(\w)/g, (_, __, letter: string) => letter.toUpperCase())}`;

/**
 * Scheduled (EventBridge): compares the table with the index and repairs every difference, the
 * same code as `personas reconcile --repair`. A collection built with another model than the one
 * bundled here is an error, never a re-embedding.
 */
export const handler = middy(async () => {
  const [stage, embedder] = await Promise.all([connectToStage(), getEmbedder()]);
  const report = await reconcileIndex({ repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, embedder }, { repair: true });
  const remaining = report.repair?.remaining.length ?? report.drift.length;
  metrics.addMetric('DriftFound', MetricUnit.Count, report.drift.length);
  for (const kind of DRIFT_KINDS) metrics.addMetric(kindMetric(kind), MetricUnit.Count, report.byKind[kind]);
  metrics.addMetric('DriftRepaired', MetricUnit.Count, report.drift.length - remaining);
  metrics.addMetric('DriftRemaining', MetricUnit.Count, remaining);
  logger.info('reconciled', {
    collection: report.collection,
    model: report.model,
    personas: report.personas,
    points: report.points,
    byKind: report.byKind,
    repair: report.repair && { actions: report.repair.actions, errors: report.repair.errors, remaining: report.repair.remaining.slice(0, 20) },
    durationMs: Math.round(report.durationMs),
  });
  return { collection: report.collection, found: report.drift.length, remaining };
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics));

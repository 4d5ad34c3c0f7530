import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { getEmbedder } from '../../shared/embedding';
import { logger, metrics, tracer } from '../../shared/observability';
import { DRIFT_KINDS, reconcileIndex } from '../../shared/operations/indexReconciler';
import { checkpointKey, dynamoCheckpointStore } from '../../shared/operations/reconcileCheckpoint';
import { dynamoLeaseStore, leaseKey, ReconcileLeaseHeldError } from '../../shared/operations/reconcileLease';
import { createDocumentClient } from '../../shared/aws/dynamodb';
import { connectToStage } from '../../shared/operations/stageConnections';
import { loadDuringInit } from '../../shared/lambdaInit';

// The model, during Lambda's init phase.
await loadDuringInit(getEmbedder);

/** Kept back at the end of an invocation: in-flight pages finish, the position is saved, metrics flush. */
const RESERVE_MS = 20_000;

/** Added to the remaining time for the lease: covers the clock skew between this function and a CLI run. */
const LEASE_MARGIN_MS = 60_000;

/** Metric name per drift kind: DriftMissing, DriftOrphan, DriftStaleVersion, … */
const kindMetric = (kind: string) => `Drift${kind.replace(/(^|-)(\w)/g, (_, __, letter: string) => letter.toUpperCase())}`;

/**
 * Scheduled (EventBridge): compares the table with the index page by page and repairs every
 * difference, the same code as `personas reconcile --repair`. Its position is checkpointed in the
 * idempotency table: an invocation stops cleanly before Lambda's timeout (twice the slowest page
 * plus a reserve) and the next scheduled one resumes the pass; the pass's drift metrics are
 * published once, by the invocation that finishes it, with ReconcilePassesCompleted = 1 (an alarm
 * fires when none comes for a day). It works only while it holds the alias's reconcile lease: when
 * another run (an overlapping invocation, `personas reconcile`) holds it, it logs who and returns
 * `skipped: 'lease-held'`. A collection built with another model than the one bundled here is an
 * error, never a re-embedding.
 */
export const handler = middy(async (_event: unknown, context: Context) => {
  const [stage, embedder] = await Promise.all([connectToStage(), getEmbedder()]);
  const documents = createDocumentClient(stage.tables);
  let report;
  try {
    report = await reconcileIndex(
      { repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, embedder },
      {
        repair: true,
        ...(process.env.RECONCILER_PAGE_SIZE ? { pageSize: Number(process.env.RECONCILER_PAGE_SIZE) } : {}),
        // In the idempotency table (IDEMPOTENCY_TABLE_NAME), with a TTL.
        checkpoint: { store: dynamoCheckpointStore(documents, stage.tables.idempotencyTableName), key: checkpointKey(stage.alias) },
        // One run at a time (another invocation, or `personas reconcile`); held until this invocation's end.
        lease: {
          store: dynamoLeaseStore(documents, stage.tables.idempotencyTableName),
          key: leaseKey(stage.alias),
          holder: `scheduled reconciler ${context.functionName} (request ${context.awsRequestId})`,
          durationMs: () => context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
        },
        shouldStop: ({ longestPageMs }) => context.getRemainingTimeInMillis() < RESERVE_MS + 2 * longestPageMs,
      },
    );
  } catch (error) {
    if (!(error instanceof ReconcileLeaseHeldError)) throw error;
    // Not a failure: the run that holds the lease carries the pass on; the next schedule tries again.
    logger.warn('reconcile skipped: another run holds the lease', { heldBy: error.current.holder, since: error.current.acquiredAt, until: new Date(error.current.expiresAt * 1000).toISOString() });
    return { collection: stage.alias, complete: false, skipped: 'lease-held', heldBy: error.current.holder, leaseExpiresAt: new Date(error.current.expiresAt * 1000).toISOString() };
  }
  const found = DRIFT_KINDS.reduce((sum, kind) => sum + report.byKind[kind], 0);
  const summary = {
    collection: report.collection,
    model: report.model,
    runId: report.runId,
    invocations: report.invocations,
    pages: report.pages,
    personas: report.personas,
    points: report.points,
    byKind: report.byKind,
    ...(report.discardedCheckpoint ? { discardedCheckpoint: report.discardedCheckpoint } : {}),
    repair: report.repair && { actions: report.repair.actions, errors: report.repair.errors, remaining: report.repair.remaining.slice(0, 20) },
    durationMs: Math.round(report.durationMs),
  };
  if (!report.complete) {
    logger.info('reconcile paused before the timeout; the next scheduled run resumes it', summary);
    return { collection: report.collection, runId: report.runId, complete: false, pages: report.pages };
  }
  // The ReconcilerPassesStalled alarm: no completed pass for a day, whatever the cause, alarms.
  metrics.addMetric('ReconcilePassesCompleted', MetricUnit.Count, 1);
  metrics.addMetric('DriftFound', MetricUnit.Count, found);
  for (const kind of DRIFT_KINDS) metrics.addMetric(kindMetric(kind), MetricUnit.Count, report.byKind[kind]);
  metrics.addMetric('DriftRepaired', MetricUnit.Count, found - report.remaining);
  metrics.addMetric('DriftRemaining', MetricUnit.Count, report.remaining);
  logger.info('reconciled', summary);
  return { collection: report.collection, runId: report.runId, complete: true, pages: report.pages, found, remaining: report.remaining };
})
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer, { captureResponse: false }))
  .use(logMetrics(metrics));

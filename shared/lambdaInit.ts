import { logger } from './observability';

/**
 * For a handler module's top level: in Lambda, loads `what` (the model, the Qdrant secret) during
 * the function's init phase instead of on the first request. A failure is logged and the first
 * invocation tries again; outside Lambda (local runtime, tests) nothing is loaded early.
 */
export async function loadDuringInit(what: () => Promise<unknown>): Promise<void> {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return;
  const started = performance.now();
  await what().then(
    () => logger.info('Loaded during init', { durationMs: Math.round(performance.now() - started) }),
    (error: unknown) => logger.warn('Loading during init failed; the first invocation retries', { error: error as Error }),
  );
}

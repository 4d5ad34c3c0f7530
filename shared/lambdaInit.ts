import { logger } from './observability';

/**
 * How long a handler module's top level waits for what it loads early. Lambda gives the whole init
 * phase (runtime start, the module's own import, this) 10 seconds; past that it stops the
 * environment and starts init again inside the first invocation
 * (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html: "The Init phase
 * is limited to 10 seconds. If all three tasks do not complete within 10 seconds, Lambda retries
 * the Init phase at the time of the first function invocation with the configured function
 * timeout"). The model loads from the asset in well under a second and a reachable Secrets
 * Manager and Qdrant answer in milliseconds; an unreachable Qdrant takes the client's 10 s timeout
 * per call. 4 s leaves more than half of the limit to the runtime and the bundle's import.
 */
export const INIT_LOAD_BUDGET_MS = 4_000;

/**
 * For a handler module's top level: in Lambda, starts loading `what` (the model, the Qdrant secret,
 * the collection check) during the init phase and waits for it at most `budgetMs`. What is not done
 * by then goes on in the background and the first invocation waits for the rest: `what` must be
 * the same memoised loader the handler calls (a second call joins the first). A failure is logged
 * and the first invocation tries again. Outside Lambda (local runtime, tests) nothing is loaded early.
 */
export async function loadDuringInit(what: () => Promise<unknown>, budgetMs = INIT_LOAD_BUDGET_MS): Promise<void> {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return;
  const started = performance.now();
  const loading = what().then(
    () => ({ done: true as const }),
    (error: unknown) => ({ done: true as const, error }),
  );
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), budgetMs);
  });
  const outcome = await Promise.race([loading, budget]);
  clearTimeout(timer);
  const durationMs = Math.round(performance.now() - started);
  if (!outcome.done) {
    logger.warn('Loading during init is still running after its budget; the first invocation waits for the rest', { budgetMs, durationMs });
    // Its outcome still reaches the logs; the invocation that needs it retries a failure.
    void loading.then((late) => 'error' in late && logger.warn('Loading after init failed; the next invocation retries', { error: late.error as Error }));
  } else if ('error' in outcome) {
    logger.warn('Loading during init failed; the first invocation retries', { error: outcome.error as Error, durationMs });
  } else {
    logger.info('Loaded during init', { durationMs });
  }
}

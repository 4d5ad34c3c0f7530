import { Logger, type LogItem } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'persona-db';

let logsToStderr = false;

/**
 * Powertools' Logger writes INFO and DEBUG lines to stdout (Lambda sends both streams to CloudWatch).
 * A command whose stdout is its output (the personas CLI: `--json | jq`, `export > file`) sends every
 * log line to stderr instead.
 */
class ProcessLogger extends Logger {
  protected override printLog(logLevel: number, log: LogItem): void {
    if (!logsToStderr) return super.printLog(logLevel, log);
    log.prepareForPrint();
    process.stderr.write(`${JSON.stringify(log.getAttributes(), this.getJsonReplacer())}\n`);
  }
}

/** From now on this process logs to stderr only (see ProcessLogger). */
export function sendLogsToStderr(): void {
  logsToStderr = true;
}

/** One logger, one metrics and one tracer instance per process, shared by every module of a function. */
export const logger: Logger = new ProcessLogger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'PersonaDb' });
/**
 * X-Ray segments for each invocation, the AWS SDK clients and outgoing fetch calls (Qdrant). The
 * Tracer turns itself off outside Lambda (no AWS_EXECUTION_ENV), so the local runtime is untouched.
 */
export const tracer = new Tracer({ serviceName });

/**
 * The error's message with its causes, e.g. "fetch failed: connect ECONNREFUSED 10.0.0.5:6333": a
 * bare "fetch failed" says nothing about what failed.
 */
export function errorChain(error: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.includes(message)) parts.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}

/**
 * A local stand-in for the AWS Step Functions API, for the CLI's side of `personas reindex --in-aws`.
 * No emulator runs a Distributed Map, so this does not interpret ASL: the test gives it the work an
 * execution does (`run`), and it keeps the executions and Map Runs the API reports, with the
 * settings of the real state machine's Map state (MaxConcurrency, the chunk's Retry,
 * ToleratedFailurePercentage) read from its ASL.
 *
 * Wire protocol and shapes, as the AWS Step Functions API Reference documents them: AWS JSON 1.0,
 * `POST /` with `X-Amz-Target: AWSStepFunctions.<Action>` (https://docs.aws.amazon.com/step-functions/latest/apireference/CommonParameters.html);
 * timestamps are epoch seconds.
 * - StartExecution {stateMachineArn, name, input} -> {executionArn, startDate}; the same name and
 *   input while it runs answers the same execution, another input ExecutionAlreadyExists (API_StartExecution.html).
 * - DescribeExecution {executionArn} -> {executionArn, stateMachineArn, name, status (RUNNING |
 *   SUCCEEDED | FAILED | TIMED_OUT | ABORTED), startDate, stopDate?, input, output?, error?, cause?} (API_DescribeExecution.html).
 * - ListExecutions {stateMachineArn, statusFilter?, maxResults?, nextToken?} -> {executions: [{executionArn,
 *   stateMachineArn, name, status, startDate, stopDate?}], nextToken?}, newest first (API_ListExecutions.html).
 * - ListMapRuns {executionArn} -> {mapRuns: [{executionArn, mapRunArn, stateMachineArn, startDate, stopDate?}]} (API_ListMapRuns.html).
 * - DescribeMapRun {mapRunArn} -> {mapRunArn, executionArn, status, startDate, stopDate?, maxConcurrency,
 *   toleratedFailurePercentage, toleratedFailureCount, itemCounts {pending, running, succeeded, failed,
 *   timedOut, aborted, total, resultsWritten}, executionCounts {the same}} (API_DescribeMapRun.html).
 * - StopExecution {executionArn, error?, cause?} -> {stopDate}: the execution ends ABORTED (API_StopExecution.html).
 * Unknown ARNs answer 400 ExecutionDoesNotExist / ResourceNotFound.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MapStateSettings {
  maxConcurrency: number;
  toleratedFailurePercentage: number;
  /** The child task's Retry entries (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds). */
  retry: Array<{ ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number; MaxDelaySeconds?: number }>;
}

/** What `run` gets to do an execution's work. */
export interface ExecutionContext {
  readonly input: Record<string, unknown>;
  readonly stopped: () => boolean;
  /** Runs items as a Distributed Map's children: MaxConcurrency at once, each retried as the Retry says, failing the Map past the tolerated failures. */
  distributedMap<T>(items: readonly unknown[], child: (item: unknown) => Promise<T>): Promise<{ MapRunArn: string; results: T[] }>;
}

export class ExecutionFailure extends Error {
  constructor(readonly error: string, readonly causeText: string) {
    super(`${error}: ${causeText}`);
  }
}

interface ItemCounts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  aborted: number;
  total: number;
  resultsWritten: number;
}

interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  input: string;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  mapRuns: MapRun[];
  finished: Promise<void>;
}

interface MapRun {
  mapRunArn: string;
  executionArn: string;
  startDate: number;
  stopDate?: number;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  itemCounts: ItemCounts;
}

export interface StepFunctionsStandIn {
  readonly endpoint: string;
  readonly stateMachineArn: string;
  readonly executions: ReadonlyMap<string, Execution>;
  /** Resolves when every execution has ended. */
  settled(): Promise<void>;
  /** Requests answered, per action. */
  readonly calls: Map<string, number>;
  close(): Promise<void>;
}

const seconds = (ms: number) => ms / 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startStepFunctionsStandIn(options: {
  stateMachineName: string;
  mapState: MapStateSettings;
  run: (context: ExecutionContext) => Promise<Record<string, unknown>>;
  /** Scales Retry intervals (seconds in the ASL) down for a test; 1 = as written. */
  retryTimeScale?: number;
  region?: string;
  account?: string;
}): Promise<StepFunctionsStandIn> {
  const region = options.region ?? 'us-east-1';
  const account = options.account ?? '123456789012';
  const stateMachineArn = `arn:aws:states:${region}:${account}:stateMachine:${options.stateMachineName}`;
  const executions = new Map<string, Execution>();
  const calls = new Map<string, number>();
  const scale = options.retryTimeScale ?? 1;

  const withRetry = async <T>(child: () => Promise<T>): Promise<T> => {
    const attempts = new Map<number, number>();
    for (;;) {
      try {
        return await child();
      } catch (error) {
        const name = (error as Error).name;
        // The first Retry entry whose ErrorEquals names the error (or States.ALL) applies.
        const index = options.mapState.retry.findIndex((entry) => entry.ErrorEquals.includes(name) || entry.ErrorEquals.includes('States.ALL'));
        const rule = options.mapState.retry[index];
        const made = attempts.get(index) ?? 0;
        if (!rule || made >= (rule.MaxAttempts ?? 3)) throw error;
        attempts.set(index, made + 1);
        const delay = Math.min((rule.IntervalSeconds ?? 1) * (rule.BackoffRate ?? 2) ** made, rule.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
        await sleep(delay * 1000 * scale);
      }
    }
  };

  const start = (execution: Execution) => {
    const context: ExecutionContext = {
      input: JSON.parse(execution.input) as Record<string, unknown>,
      stopped: () => execution.status !== 'RUNNING',
      async distributedMap(items, child) {
        const mapRun: MapRun = {
          // arn:…:mapRun:<state machine>/<Map label>:<Map Run id>
          mapRunArn: `arn:aws:states:${region}:${account}:mapRun:${options.stateMachineName}/Backfill:${randomUUID()}`,
          executionArn: execution.executionArn,
          startDate: Date.now(),
          status: 'RUNNING',
          itemCounts: { pending: items.length, running: 0, succeeded: 0, failed: 0, timedOut: 0, aborted: 0, total: items.length, resultsWritten: 0 },
        };
        execution.mapRuns.push(mapRun);
        const results: unknown[] = new Array(items.length);
        const tolerated = Math.floor((options.mapState.toleratedFailurePercentage / 100) * items.length);
        let next = 0;
        let failure: Error | undefined;
        const worker = async () => {
          while (next < items.length && !failure && execution.status === 'RUNNING') {
            const index = next++;
            mapRun.itemCounts.pending--;
            mapRun.itemCounts.running++;
            try {
              results[index] = await withRetry(() => child(items[index]));
              mapRun.itemCounts.succeeded++;
            } catch (error) {
              mapRun.itemCounts.failed++;
              if (mapRun.itemCounts.failed > tolerated) failure = error as Error;
            } finally {
              mapRun.itemCounts.running--;
              mapRun.itemCounts.resultsWritten++;
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(options.mapState.maxConcurrency, items.length) }, worker));
        mapRun.stopDate = Date.now();
        if (execution.status !== 'RUNNING') {
          mapRun.status = 'ABORTED';
          mapRun.itemCounts.aborted = mapRun.itemCounts.pending;
          throw new ExecutionFailure('States.Aborted', 'the execution was stopped');
        }
        if (failure) {
          mapRun.status = 'FAILED';
          // The Map state fails with States.ExceedToleratedFailureThreshold (Step Functions Developer Guide, Distributed Map: failure threshold).
          throw new ExecutionFailure('States.ExceedToleratedFailureThreshold', `The specified tolerated failure threshold was exceeded: ${failure.name}: ${failure.message}`);
        }
        mapRun.status = 'SUCCEEDED';
        return { MapRunArn: mapRun.mapRunArn, results: results as never[] };
      },
    };
    execution.finished = options.run(context).then(
      (output) => {
        if (execution.status !== 'RUNNING') return;
        execution.status = 'SUCCEEDED';
        execution.output = JSON.stringify(output);
        execution.stopDate = Date.now();
      },
      (error: Error) => {
        if (execution.status !== 'RUNNING') return;
        execution.status = 'FAILED';
        execution.error = error instanceof ExecutionFailure ? error.error : error.name;
        execution.cause = error instanceof ExecutionFailure ? error.causeText : error.message;
        execution.stopDate = Date.now();
      },
    );
  };

  type Handler = (input: Record<string, any>) => { status?: number; body: Record<string, unknown> };
  const notFound = (type: string, what: string) => ({ status: 400, body: { __type: type, message: `${what} does not exist` } });
  const summary = (execution: Execution) => ({
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: seconds(execution.startDate),
    ...(execution.stopDate ? { stopDate: seconds(execution.stopDate) } : {}),
  });
  const handlers: Record<string, Handler> = {
    StartExecution(input) {
      if (input.stateMachineArn !== stateMachineArn) return notFound('StateMachineDoesNotExist', String(input.stateMachineArn));
      const name = String(input.name);
      const executionArn = `arn:aws:states:${region}:${account}:execution:${options.stateMachineName}:${name}`;
      const existing = executions.get(executionArn);
      if (existing) {
        if (existing.status === 'RUNNING' && existing.input === input.input) return { body: { executionArn, startDate: seconds(existing.startDate) } };
        return { status: 400, body: { __type: 'ExecutionAlreadyExists', message: `Execution Already Exists: '${executionArn}'` } };
      }
      const execution: Execution = { executionArn, stateMachineArn, name, status: 'RUNNING', input: String(input.input ?? '{}'), startDate: Date.now(), mapRuns: [], finished: Promise.resolve() };
      executions.set(executionArn, execution);
      start(execution);
      return { body: { executionArn, startDate: seconds(execution.startDate) } };
    },
    DescribeExecution(input) {
      const execution = executions.get(String(input.executionArn));
      if (!execution) return notFound('ExecutionDoesNotExist', String(input.executionArn));
      return {
        body: {
          ...summary(execution),
          input: execution.input,
          ...(execution.output !== undefined ? { output: execution.output } : {}),
          ...(execution.error ? { error: execution.error, cause: execution.cause } : {}),
        },
      };
    },
    ListExecutions(input) {
      if (input.stateMachineArn !== stateMachineArn) return notFound('StateMachineDoesNotExist', String(input.stateMachineArn));
      const all = [...executions.values()].filter((execution) => !input.statusFilter || execution.status === input.statusFilter).reverse();
      const from = Number(input.nextToken ?? 0);
      const size = Number(input.maxResults || 100);
      const page = all.slice(from, from + size);
      return { body: { executions: page.map(summary), ...(from + size < all.length ? { nextToken: String(from + size) } : {}) } };
    },
    ListMapRuns(input) {
      const execution = executions.get(String(input.executionArn));
      if (!execution) return notFound('ExecutionDoesNotExist', String(input.executionArn));
      return {
        body: {
          mapRuns: execution.mapRuns.map((run) => ({ executionArn: run.executionArn, mapRunArn: run.mapRunArn, stateMachineArn, startDate: seconds(run.startDate), ...(run.stopDate ? { stopDate: seconds(run.stopDate) } : {}) })),
        },
      };
    },
    DescribeMapRun(input) {
      const run = [...executions.values()].flatMap((execution) => execution.mapRuns).find((candidate) => candidate.mapRunArn === input.mapRunArn);
      if (!run) return notFound('ResourceNotFound', String(input.mapRunArn));
      return {
        body: {
          mapRunArn: run.mapRunArn,
          executionArn: run.executionArn,
          status: run.status,
          startDate: seconds(run.startDate),
          ...(run.stopDate ? { stopDate: seconds(run.stopDate) } : {}),
          maxConcurrency: options.mapState.maxConcurrency,
          toleratedFailurePercentage: options.mapState.toleratedFailurePercentage,
          toleratedFailureCount: 0,
          itemCounts: run.itemCounts,
          executionCounts: run.itemCounts,
        },
      };
    },
    StopExecution(input) {
      const execution = executions.get(String(input.executionArn));
      if (!execution) return notFound('ExecutionDoesNotExist', String(input.executionArn));
      if (execution.status === 'RUNNING') {
        execution.status = 'ABORTED';
        execution.error = input.error;
        execution.cause = input.cause;
        execution.stopDate = Date.now();
      }
      return { body: { stopDate: seconds(execution.stopDate ?? Date.now()) } };
    },
  };

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const action = String(request.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
      calls.set(action, (calls.get(action) ?? 0) + 1);
      const handler = handlers[action];
      const answer = handler ? handler(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')) : { status: 400, body: { __type: 'UnknownOperationException', message: action } };
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stateMachineArn,
    executions,
    calls,
    settled: async () => void (await Promise.all([...executions.values()].map((execution) => execution.finished))),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

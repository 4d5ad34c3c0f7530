/**
 * The reindex's backfill in AWS: one execution of the reindex state machine (infra/reindexAtScale.ts:
 * export, plan, Distributed Map of embedding Lambdas) fills the new collection, and this process
 * follows it through the Step Functions API. The execution is the reindex's state: its input names
 * the alias and the collection, its start is the cut the change tail must cover. A CLI that dies
 * leaves it running; the next `personas reindex --in-aws` finds it (ListExecutions), opens the tail
 * at its start again and carries on with the phases after the backfill.
 *
 * Step Functions API shapes used (AWS Step Functions API Reference): StartExecution (name, input ->
 * executionArn, startDate), DescribeExecution (status RUNNING | SUCCEEDED | FAILED | TIMED_OUT |
 * ABORTED | PENDING_REDRIVE, input, output, error, cause, startDate), ListExecutions
 * (statusFilter, executions[]), ListMapRuns (executionArn -> mapRuns[].mapRunArn), DescribeMapRun
 * (itemCounts: pending, running, succeeded, failed, timedOut, aborted, total), StopExecution.
 */
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  ListExecutionsCommand,
  ListMapRunsCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  type DescribeMapRunCommandOutput,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { ReindexBackfill, ResumableBackfill } from '../operations/collectionReindex';
import { STREAM_RETENTION_MS } from '../operations/personaChangeTail';

/** `personas reindex --aws` backfills in AWS by default above this many personas (about 25 minutes on 4 cores at the in-process rate). */
export const IN_AWS_ABOVE_PERSONAS = 1_000_000;

/** The execution's input: what a re-attaching run needs to know. */
export interface ReindexExecutionInput {
  alias: string;
  collection: string;
  /** When the reindex's change tail started (ms since epoch). */
  since: number;
}

/** The execution's output (the Succeed state passes its state through): the plan step's counts and the Map Run's results. */
interface ReindexExecutionOutput {
  plan?: { personas: number; chunks: number; files: number; chunkItems: number; exportArn: string };
  backfill?: { MapRunArn?: string; ResultWriterDetails?: { Bucket: string; Key: string } };
}

export interface StepFunctionsBackfillOptions {
  sfn: SFNClient;
  stateMachineArn: string;
  /** To tell a pending reindex's collection (still there, not behind the alias) from a finished or dropped one. */
  qdrant: QdrantClient;
  /** An estimate of the table's size for the progress display (DescribeTable's ItemCount). */
  tablePersonas?: () => Promise<number | undefined>;
  pollMs?: number;
}

const TERMINAL_FAILURES = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Execution names: 1-80 of A-Z a-z 0-9 - _ (StartExecution). */
const executionName = (collection: string, since: number) => `${collection.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60)}-${since}`;

function describeMapRun(run: DescribeMapRunCommandOutput | undefined): string {
  const counts = run?.itemCounts;
  if (!counts) return 'no Map Run started';
  return `${counts.succeeded}/${counts.total} chunks done, ${counts.running} running, ${counts.failed} failed, ${counts.timedOut} timed out, ${counts.aborted} aborted`;
}

export function stepFunctionsBackfill(options: StepFunctionsBackfillOptions): ReindexBackfill {
  const { sfn, stateMachineArn } = options;
  const pollMs = options.pollMs ?? 5_000;
  let executionArn: string | undefined;

  const latestMapRun = async (arn: string) => {
    const { mapRuns } = await sfn.send(new ListMapRunsCommand({ executionArn: arn }));
    const mapRunArn = mapRuns?.at(-1)?.mapRunArn;
    return mapRunArn ? sfn.send(new DescribeMapRunCommand({ mapRunArn })) : undefined;
  };

  const pendingCollection = async (collection: string): Promise<boolean> => {
    if (!(await options.qdrant.collectionExists(collection)).exists) return false;
    const { aliases } = await options.qdrant.getAliases();
    return !aliases.some((entry) => entry.collection_name === collection);
  };

  return {
    name: `the Step Functions state machine ${stateMachineArn.split(':').at(-1)}`,

    async resume(alias): Promise<ResumableBackfill | undefined> {
      // A running backfill first; else one that finished without its swap (the CLI died after it), within the stream's retention.
      for (const statusFilter of ['RUNNING', 'SUCCEEDED'] as const) {
        let nextToken: string | undefined;
        do {
          const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter, maxResults: 50, ...(nextToken ? { nextToken } : {}) }));
          for (const execution of page.executions ?? []) {
            if (Date.now() - (execution.startDate?.getTime() ?? 0) > STREAM_RETENTION_MS) continue;
            const described = await sfn.send(new DescribeExecutionCommand({ executionArn: execution.executionArn }));
            const input = JSON.parse(described.input ?? '{}') as Partial<ReindexExecutionInput>;
            if (input.alias !== alias || typeof input.collection !== 'string' || typeof input.since !== 'number') continue;
            if (!(await pendingCollection(input.collection))) continue;
            executionArn = execution.executionArn;
            return {
              collection: input.collection,
              since: input.since,
              detail: `execution ${execution.name} ${described.status?.toLowerCase()}, started ${described.startDate?.toISOString()}`,
            };
          }
          nextToken = page.nextToken;
        } while (nextToken);
      }
      return undefined;
    },

    async run({ alias, collection, since, resumed }, onProgress) {
      if (!resumed || !executionArn) {
        const input: ReindexExecutionInput = { alias, collection, since };
        // StartExecution with the same name and input is idempotent while the execution runs.
        ({ executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: executionName(collection, since), input: JSON.stringify(input) })));
      }
      const arn = executionArn!;
      const total = await options.tablePersonas?.().catch(() => undefined);
      for (;;) {
        const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
        const mapRun = await latestMapRun(arn);
        const counts = mapRun?.itemCounts;
        if (execution.status === 'SUCCEEDED') {
          const output = JSON.parse(execution.output ?? '{}') as ReindexExecutionOutput;
          const personas = output.plan?.personas ?? 0;
          onProgress({ personas, totalPersonas: personas, note: describeMapRun(mapRun) });
          const results = output.backfill?.ResultWriterDetails;
          return {
            personas,
            detail: `${output.plan?.chunks ?? counts?.succeeded ?? 0} chunks of ${output.plan?.files ?? '?'} export files${results ? `; results in s3://${results.Bucket}/${results.Key}` : ''}`,
          };
        }
        if (execution.status && TERMINAL_FAILURES.has(execution.status)) {
          throw new Error(
            `the backfill execution ${execution.name} ${execution.status.toLowerCase()}: ${execution.error ?? 'no error'}${execution.cause ? ` (${execution.cause.slice(0, 500)})` : ''}; ` +
              `Map Run: ${describeMapRun(mapRun)}. The failed chunks and their errors are in the Map Run's results (FAILED_*.json under reindex/results/ of the reindex bucket) and in the backfill function's logs.`,
          );
        }
        if (counts && (counts.total ?? 0) > 0) {
          const fraction = (counts.succeeded ?? 0) / counts.total!;
          onProgress({ personas: Math.round(fraction * (total ?? 0)), ...(total ? { totalPersonas: total } : {}), note: describeMapRun(mapRun) });
        } else {
          onProgress({ personas: 0, ...(total ? { totalPersonas: total } : {}), note: mapRun ? describeMapRun(mapRun) : 'exporting the table' });
        }
        await sleep(pollMs);
      }
    },

    async abort() {
      if (!executionArn) return;
      const { status } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      if (status === 'RUNNING') {
        await sfn.send(new StopExecutionCommand({ executionArn, error: 'ReindexFailed', cause: 'the reindex failed before its alias swap; its collection is dropped' }));
      }
    },
  };
}

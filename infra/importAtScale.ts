/**
 * The initial load at scale (`personas import --in-aws FILE`): the CLI validates the file locally
 * and stages its valid rows under import/<importId>/ of the reindex bucket (chunk files of JSON lines
 * and a work list, shared/importAtScale/), then starts an execution of this state machine:
 *
 *   WriteChunks   Distributed Map over the work list (JSONL ItemReader), MaxConcurrency from the
 *                 stage (importAtScale.maxConcurrency), each child one writer Lambda invocation that
 *                 writes one chunk with the API's conditional PutItem (retried with backoff on
 *                 ImportThrottled: DynamoDB kept throttling rows), no failure tolerated, results
 *                 (failures included) written to s3://<bucket>/import/results/
 *   Imported      Succeed (the state with the Map Run's ARN and its results' manifest)
 *
 * The stream indexer embeds the new rows as it embeds any write: its pace is the stage's
 * indexerParallelizationFactor (docs/performance.md's sizing table says what each value buys).
 * Step Functions: ItemReader (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html),
 * ResultWriter (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
 */
import { CfnOutput, Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { DefinitionBody, DistributedMap, JitterType, JsonPath, LogLevel, ResultWriterV2, S3JsonLItemReader, StateMachine, StateMachineType, Succeed } from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { IMPORT_PREFIX, IMPORT_THROTTLED } from '../shared/importAtScale/importChunk';
import { acknowledgeAdminExecutions, acknowledgeBucketObjects, acknowledgeDistributedMapRole, stateMachineAdminTargets } from './distributedMap';
import type { FunctionFactory } from './reindexAtScale';
import type { StageConfig } from './stageConfig';

export const IMPORT_WRITER_LOGICAL_ID = 'importWriter';
export const IMPORT_WRITER_ENTRY = 'functions/import/writer.ts';
export const IMPORT_SERVICE = 'persona-db-import';
export const IMPORT_MAP_LABEL = 'WriteChunks';

/** Retry of a chunk on ImportThrottled: 2 s, doubling, full jitter, at most a minute apart, 8 attempts (~5 minutes in all). */
export const THROTTLE_RETRY = { interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 8, maxDelay: Duration.minutes(1) } as const;

export interface ImportAtScaleProps {
  readonly config: StageConfig;
  readonly table: Table;
  /** The reindex's bucket (encrypted, TLS only, objects expire): the import stages under import/ of it. */
  readonly bucket: Bucket;
  readonly environment: Record<string, string>;
  readonly removalPolicy: RemovalPolicy;
  readonly createFunction: FunctionFactory;
}

export class ImportAtScale extends Construct {
  readonly stateMachine: StateMachine;
  readonly writerFunction: LambdaFunction;
  private readonly bucket: Bucket;

  constructor(scope: Construct, id: string, props: ImportAtScaleProps) {
    super(scope, id);
    const { config, table, bucket } = props;
    this.bucket = bucket;

    this.writerFunction = props.createFunction({
      id: IMPORT_WRITER_LOGICAL_ID,
      entry: IMPORT_WRITER_ENTRY,
      description: `${config.namePrefix} import in AWS: writes one staged chunk into the table`,
      embeds: false,
      memoryMb: config.functions.importWriter.memoryMb,
      timeoutSeconds: config.functions.importWriter.timeoutSeconds,
      serviceName: IMPORT_SERVICE,
      environment: props.environment,
    });
    // The API's create (a conditional PutItem), and nothing else on the table; no Qdrant (the stream indexer embeds).
    this.writerFunction.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:PutItem'], resources: [table.tableArn] }));
    const chunks = `${IMPORT_PREFIX}/*/chunks/*`;
    const done = `${IMPORT_PREFIX}/*/done/*`;
    this.writerFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects(chunks), bucket.arnForObjects(done)] }));
    this.writerFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(done)] }));
    // Whether a chunk's done marker exists: a ListObjectsV2 of that key, for done markers only.
    this.writerFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [done] } } }));
    acknowledgeBucketObjects(this.writerFunction.role!, bucket, chunks, 'A child reads the chunk files the CLI staged under import/<importId>/chunks/ (read-only); the import ids are chosen at run time.');
    acknowledgeBucketObjects(this.writerFunction.role!, bucket, done, "A child reads and writes the done markers of its import's chunks, under import/<importId>/done/ only.");

    const writeChunks = new DistributedMap(this, IMPORT_MAP_LABEL, {
      label: IMPORT_MAP_LABEL,
      itemReader: new S3JsonLItemReader({ bucket, key: JsonPath.stringAt('$.workListKey') }),
      itemSelector: {
        importId: JsonPath.stringAt('$.importId'),
        fileSha256: JsonPath.stringAt('$.fileSha256'),
        tenant: JsonPath.stringAt('$.tenant'),
        bucket: bucket.bucketName,
        chunk: JsonPath.objectAt('$$.Map.Item.Value'),
      },
      maxConcurrency: config.importAtScale.maxConcurrency,
      toleratedFailurePercentage: 0,
      mapExecutionType: StateMachineType.STANDARD,
      resultWriterV2: new ResultWriterV2({ bucket, prefix: `${IMPORT_PREFIX}/results` }),
      resultPath: '$.write',
    });
    const writeChunk = new LambdaInvoke(this, 'WriteChunk', { lambdaFunction: this.writerFunction, payloadResponseOnly: true, retryOnServiceExceptions: true });
    writeChunk.addRetry({ errors: [IMPORT_THROTTLED], ...THROTTLE_RETRY, jitterStrategy: JitterType.FULL });
    writeChunks.itemProcessor(writeChunk);

    const logs = new LogGroup(this, 'StateMachineLogs', { retention: config.logRetentionDays, removalPolicy: props.removalPolicy });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName: `${config.namePrefix}-import`,
      definitionBody: DefinitionBody.fromChainable(writeChunks.next(new Succeed(this, 'Imported'))),
      tracingEnabled: true,
      logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: false },
      timeout: Duration.hours(24),
    });
    this.writerFunction.grantInvoke(this.stateMachine);
    acknowledgeDistributedMapRole(this.stateMachine, {
      bucket,
      mapLabel: IMPORT_MAP_LABEL,
      functions: [[IMPORT_WRITER_LOGICAL_ID, 'import writer']],
      bucketUse: "The Distributed Map's ItemReader reads the import's work list and its ResultWriter writes the Map Run's results, in the reindex bucket only",
    });
    new CfnOutput(this, 'StateMachineArn', { key: 'ImportStateMachineArn', value: this.stateMachine.stateMachineArn, description: 'IMPORT_STATE_MACHINE_ARN for `personas import --in-aws`' });
    new CfnOutput(this, 'BucketName', { key: 'ImportBucketName', value: bucket.bucketName, description: 'IMPORT_BUCKET for `personas import --in-aws` (it stages under import/)' });
  }

  /** What the admin policy names for `personas import --in-aws` (infra/accessPolicies.ts). */
  adminTargets() {
    return { ...stateMachineAdminTargets(this.stateMachine), bucketArn: this.bucket.bucketArn, objectsArn: this.bucket.arnForObjects(`${IMPORT_PREFIX}/*`), prefix: `${IMPORT_PREFIX}/*` };
  }

  acknowledgeAdminWildcards(policy: Construct): void {
    acknowledgeAdminExecutions(policy, this.stateMachine, 'The executions and Map Runs of the import state machine only (names chosen at run time): `personas import --in-aws` starts and follows them.');
    acknowledgeBucketObjects(policy, this.bucket, `${IMPORT_PREFIX}/*`, '`personas import --in-aws` stages its chunks and reads its results under import/ of the reindex bucket only (keys chosen at run time).');
  }

  /** The functions by logical id, for the stack's per-function alarms. */
  functions(): Array<readonly [string, LambdaFunction]> {
    return [[IMPORT_WRITER_LOGICAL_ID, this.writerFunction]];
  }
}

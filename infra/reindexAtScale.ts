/**
 * The reindex beyond one machine (`personas reindex --in-aws`): a point-in-time export of the table
 * to S3 (no read capacity, a consistent cut), planned into chunks and embedded by a Step Functions
 * Distributed Map of Lambda children into the reindex's new collection. The CLI creates the
 * collection, opens the change tail, starts an execution of this state machine and, when it has
 * succeeded, verifies, swaps the alias, drains and drops (shared/operations/collectionReindex.ts).
 *
 *   StartExport     dynamodb:ExportTableToPointInTime to s3://<bucket>/reindex/<collection>/ (ClientToken:
 *                   the execution's name, so a retried request starts no second export)
 *   WaitForExport / DescribeExport / ExportFinished?   poll until COMPLETED (FAILED fails the execution)
 *   PlanChunks      the plan Lambda reads manifest-summary.json and manifest-files.json and writes the
 *                   work list (JSON lines, one chunk of a data file each: an export has as few as one
 *                   file per partition, and a Lambda invocation lasts at most 15 minutes)
 *   Backfill        Distributed Map over the work list (JSONL ItemReader), MaxConcurrency from the
 *                   stage, each child one backfill Lambda invocation (retried with backoff on
 *                   QdrantUnavailable: Qdrant answered 429/5xx or could not be reached), no failure
 *                   tolerated, results (failures included) written to s3://<bucket>/reindex/results/
 *
 * Step Functions: Distributed Map runs up to 10,000 child executions in parallel; the ItemReader
 * reads JSONL from S3 (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html);
 * ResultWriter writes the Map Run's results to S3
 * (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
 */
import { ArnFormat, CfnOutput, Duration, Fn, Stack, type CfnElement, type RemovalPolicy } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  ResultWriterV2,
  S3JsonLItemReader,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { CallAwsService, LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { QDRANT_UNAVAILABLE } from '../shared/reindexAtScale/backfillChunk';
import { acknowledgeNagRule, nagResourceFinding } from './nag';
import type { StageConfig } from './stageConfig';

/** Where in the bucket a reindex keeps its export, work list and Map Run results. */
export const REINDEX_PREFIX = 'reindex';
export const BACKFILL_LOGICAL_ID = 'reindexBackfill';
export const BACKFILL_ENTRY = 'functions/backfill/handler.ts';
export const PLAN_LOGICAL_ID = 'reindexPlan';
export const PLAN_ENTRY = 'functions/backfill/plan.ts';
export const BACKFILL_SERVICE = 'persona-db-backfill';

/** Retry of a chunk on QdrantUnavailable: 5 s, doubling, full jitter, at most 2 minutes apart, 8 attempts (~10 minutes in all). */
export const QDRANT_RETRY = { interval: Duration.seconds(5), backoffRate: 2, maxAttempts: 8, maxDelay: Duration.minutes(2) } as const;

/** What the stack hands the construct: its function factory keeps one role, log group and bundling rule per function. */
export interface ReindexAtScaleProps {
  readonly config: StageConfig;
  readonly table: Table;
  /** The stack's one way to let a function read the Qdrant secret (partial ARNs, a customer managed key). */
  readonly grantQdrantSecretRead: (grantee: IGrantable) => void;
  /** The stack's common function environment, and what a function that writes Qdrant adds to it. */
  readonly environment: Record<string, string>;
  readonly qdrantEnvironment: Record<string, string>;
  readonly removalPolicy: RemovalPolicy;
  readonly createFunction: (spec: {
    id: string;
    entry: string;
    description: string;
    embeds: boolean;
    memoryMb: number;
    timeoutSeconds: number;
    serviceName: string;
    environment: Record<string, string>;
  }) => LambdaFunction;
}

export class ReindexAtScale extends Construct {
  readonly bucket: Bucket;
  readonly stateMachine: StateMachine;
  readonly backfillFunction: LambdaFunction;
  readonly planFunction: LambdaFunction;

  constructor(scope: Construct, id: string, props: ReindexAtScaleProps) {
    super(scope, id);
    const { config, table } = props;
    const settings = config.reindexAtScale;

    this.bucket = new Bucket(this, 'ExportBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Exports are copies of the table: kept only as long as a reindex needs them.
      lifecycleRules: [{ expiration: Duration.days(settings.exportRetentionDays), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: props.removalPolicy,
    });
    acknowledgeNagRule(
      this.bucket,
      'AwsSolutions-S1',
      `Holds the reindex's transient table exports (expired after ${settings.exportRetentionDays} days), written by DynamoDB for the state machine and read only by it and its Lambdas; who reads what is in CloudTrail (enable S3 data events for an object-level trail). Access logs would need a second bucket for no reader.`,
    );

    const prefixObjects = this.bucket.arnForObjects(`${REINDEX_PREFIX}/*`);
    this.planFunction = props.createFunction({
      id: PLAN_LOGICAL_ID,
      entry: PLAN_ENTRY,
      description: `${config.namePrefix} reindex in AWS: plans the export's chunks`,
      embeds: false,
      memoryMb: 512,
      timeoutSeconds: 300,
      serviceName: BACKFILL_SERVICE,
      environment: props.environment,
    });
    // Reads the manifests, writes the work list: both under reindex/.
    this.planFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [prefixObjects] }));
    this.acknowledgeObjects(this.planFunction.role!, `${REINDEX_PREFIX}/*`, 'The plan reads the manifests of an export and writes its work list, at keys DynamoDB and the execution choose under reindex/ of the reindex bucket, nothing else.');

    this.backfillFunction = props.createFunction({
      id: BACKFILL_LOGICAL_ID,
      entry: BACKFILL_ENTRY,
      description: `${config.namePrefix} reindex in AWS: embeds one chunk of the export into the new collection`,
      embeds: true,
      memoryMb: config.functions.backfill.memoryMb,
      timeoutSeconds: config.functions.backfill.timeoutSeconds,
      serviceName: BACKFILL_SERVICE,
      environment: { ...props.environment, ...props.qdrantEnvironment },
    });
    // Reads data files only; no table access (the export is its input), Qdrant through the secret.
    const dataFiles = `${REINDEX_PREFIX}/*/AWSDynamoDB/*/data/*`;
    this.backfillFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [this.bucket.arnForObjects(dataFiles)] }));
    this.acknowledgeObjects(this.backfillFunction.role!, dataFiles, "A child reads the export's data files only (their names are chosen by DynamoDB), read-only.");
    props.grantQdrantSecretRead(this.backfillFunction);

    // ---- the state machine ----------------------------------------------------------------
    const exportPrefix = JsonPath.format(`${REINDEX_PREFIX}/{}`, JsonPath.stringAt('$.collection'));
    const startExport = new CallAwsService(this, 'StartExport', {
      service: 'dynamodb',
      action: 'exportTableToPointInTime',
      parameters: {
        TableArn: table.tableArn,
        S3Bucket: this.bucket.bucketName,
        S3Prefix: exportPrefix,
        S3SseAlgorithm: 'AES256',
        ExportFormat: 'DYNAMODB_JSON',
        ExportType: 'FULL_EXPORT',
        ClientToken: JsonPath.stringAt('$$.Execution.Name'),
      },
      iamResources: [table.tableArn],
      iamAction: 'dynamodb:ExportTableToPointInTime',
      // The export writes to S3 with the caller's permissions (DynamoDB Developer Guide, "Requesting a table export").
      additionalIamStatements: [new PolicyStatement({ actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:PutObjectAcl'], resources: [prefixObjects] })],
      resultSelector: { exportArn: JsonPath.stringAt('$.ExportDescription.ExportArn') },
      resultPath: '$.export',
    });
    const waitForExport = new Wait(this, 'WaitForExport', { time: WaitTime.duration(Duration.seconds(settings.exportPollSeconds)) });
    const describeExport = new CallAwsService(this, 'DescribeExport', {
      service: 'dynamodb',
      action: 'describeExport',
      parameters: { ExportArn: JsonPath.stringAt('$.export.exportArn') },
      iamResources: [`${table.tableArn}/export/*`],
      iamAction: 'dynamodb:DescribeExport',
      resultSelector: { status: JsonPath.stringAt('$.ExportDescription.ExportStatus'), description: JsonPath.objectAt('$.ExportDescription') },
      resultPath: '$.exportStatus',
    });
    const plan = new LambdaInvoke(this, 'PlanChunks', {
      lambdaFunction: this.planFunction,
      payload: TaskInput.fromObject({
        bucket: this.bucket.bucketName,
        manifestSummaryKey: JsonPath.stringAt('$.exportStatus.description.ExportManifest'),
        workListKey: JsonPath.format(`${REINDEX_PREFIX}/{}/work-list.jsonl`, JsonPath.stringAt('$.collection')),
        chunkItems: settings.chunkItems,
      }),
      payloadResponseOnly: true,
      resultPath: '$.plan',
      retryOnServiceExceptions: true,
    });
    const backfill = new DistributedMap(this, 'Backfill', {
      label: 'Backfill',
      itemReader: new S3JsonLItemReader({ bucket: this.bucket, key: JsonPath.stringAt('$.plan.workListKey') }),
      itemSelector: {
        collection: JsonPath.stringAt('$.collection'),
        bucket: this.bucket.bucketName,
        chunk: JsonPath.objectAt('$$.Map.Item.Value'),
      },
      maxConcurrency: settings.maxConcurrency,
      toleratedFailurePercentage: 0,
      mapExecutionType: StateMachineType.STANDARD,
      resultWriterV2: new ResultWriterV2({ bucket: this.bucket, prefix: `${REINDEX_PREFIX}/results` }),
      resultPath: '$.backfill',
    });
    const chunk = new LambdaInvoke(this, 'BackfillChunk', {
      lambdaFunction: this.backfillFunction,
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    chunk.addRetry({ errors: [QDRANT_UNAVAILABLE], ...QDRANT_RETRY, jitterStrategy: JitterType.FULL });
    backfill.itemProcessor(chunk);

    const definition = startExport
      .next(waitForExport)
      .next(describeExport)
      .next(
        new Choice(this, 'ExportFinished?')
          .when(Condition.stringEquals('$.exportStatus.status', 'COMPLETED'), plan.next(backfill).next(new Succeed(this, 'Backfilled')))
          .when(Condition.stringEquals('$.exportStatus.status', 'IN_PROGRESS'), waitForExport)
          .otherwise(new Fail(this, 'ExportFailed', { error: 'ExportFailed', causePath: JsonPath.stringAt('$.exportStatus.description.FailureMessage') })),
      );

    const logs = new LogGroup(this, 'StateMachineLogs', { retention: config.logRetentionDays, removalPolicy: props.removalPolicy });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName: `${config.namePrefix}-reindex`,
      definitionBody: DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: false },
      // A backfill of 10M personas takes tens of minutes; a day is a stuck one.
      timeout: Duration.hours(24),
    });
    for (const fn of [this.planFunction, this.backfillFunction]) fn.grantInvoke(this.stateMachine);
    new CfnOutput(this, 'StateMachineArn', {
      key: 'ReindexStateMachineArn',
      value: this.stateMachine.stateMachineArn,
      description: 'REINDEX_STATE_MACHINE_ARN for `personas reindex --aws --in-aws`',
    });
    new CfnOutput(this, 'BucketName', { key: 'ReindexBucketName', value: this.bucket.bucketName, description: "The reindex's exports, work lists and Map Run results (reindex/)" });
    this.acknowledgeWildcards(table);
  }

  private logicalId(construct: Construct): string {
    return Stack.of(this).getLogicalId(construct.node.defaultChild as CfnElement);
  }

  /** cdk-nag names each wildcard resource (tokens as <LogicalId>, <LogicalId.Arn>): one acknowledgement per finding. */
  private acknowledgeObjects(scope: Construct, keys: string, reason: string): void {
    acknowledgeNagRule(scope, `AwsSolutions-IAM5[Resource::<${this.logicalId(this.bucket)}.Arn>/${keys}]`, reason);
  }

  private acknowledgeWildcards(table: Table): void {
    const role = this.stateMachine.role;
    const findings: Array<[string, string]> = [
      [`<${this.logicalId(table)}.Arn>/export/*`, 'DescribeExport of the exports of this table only: their ids (table/<name>/export/<ExportId>) are assigned by DynamoDB.'],
      [`<${this.logicalId(this.bucket)}.Arn>/${REINDEX_PREFIX}/*`, 'The export writes (with the caller\'s permissions) under reindex/ of the reindex bucket, at keys DynamoDB chooses.'],
      [`arn:<AWS::Partition>:s3:::<${this.logicalId(this.bucket)}>/*`, "The Distributed Map's ItemReader reads the work list and its ResultWriter writes the Map Run's results, in the reindex bucket only (CDK's grants for both)."],
      [`<${BACKFILL_LOGICAL_ID}.Arn>:*`, "Invoking the backfill function's versions (what LambdaInvoke grants); the function is fixed."],
      [`<${PLAN_LOGICAL_ID}.Arn>:*`, "Invoking the plan function's versions (what LambdaInvoke grants); the function is fixed."],
      ['*', 'CloudWatch Logs delivery (logs:CreateLogDelivery and the others) and X-Ray (xray:PutTraceSegments...) accept no resource but "*" (Step Functions Developer Guide, IAM policies for logging and X-Ray).'],
    ];
    for (const [resource, reason] of findings) acknowledgeNagRule(role, `AwsSolutions-IAM5[Resource::${resource}]`, reason);
    // CDK's Distributed Map grant names the child executions by the state machine's name, taken from its
    // ARN at deploy time; built here the same way, so the finding matches with a concrete account and region too.
    const stack = Stack.of(this);
    const executions = stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: Fn.select(6, Fn.split(':', this.stateMachine.stateMachineArn)),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    for (const resource of [`${executions}:*`, `${executions}/Backfill:*`]) {
      acknowledgeNagRule(
        this.stateMachine,
        `AwsSolutions-IAM5[${nagResourceFinding(this.stateMachine, resource)}]`,
        "The Distributed Map starts, describes, stops and redrives its own child executions (names chosen by Step Functions); CDK's grant for the Distributed Map.",
      );
    }
  }

  /** The ARNs the admin policy names for `personas reindex --in-aws` (infra/accessPolicies.ts). */
  adminTargets() {
    const stack = Stack.of(this);
    const name = this.stateMachine.stateMachineName;
    return {
      stateMachineArn: this.stateMachine.stateMachineArn,
      executionsArn: stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${name}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      mapRunsArn: stack.formatArn({ service: 'states', resource: 'mapRun', resourceName: `${name}/*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    };
  }

  acknowledgeAdminWildcards(policy: Construct): void {
    // Built from the very ARNs the policy holds, so the finding matches with a concrete account and region too.
    const { executionsArn, mapRunsArn } = this.adminTargets();
    for (const arn of [executionsArn, mapRunsArn]) {
      acknowledgeNagRule(
        policy,
        `AwsSolutions-IAM5[${nagResourceFinding(policy, arn)}]`,
        `The executions and Map Runs of the reindex state machine only (names chosen at run time): \`personas reindex --in-aws\` follows and, on failure, stops them.`,
      );
    }
  }

  /** The functions by logical id, for the stack's per-function alarms. */
  functions(): Array<readonly [string, LambdaFunction]> {
    return [
      [BACKFILL_LOGICAL_ID, this.backfillFunction],
      [PLAN_LOGICAL_ID, this.planFunction],
    ];
  }
}

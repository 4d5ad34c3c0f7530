/**
 * The persona-db stack of one stage: the DynamoDB table (source of truth) and its stream, the
 * indexer that syncs the stream into Qdrant, the HTTP API with one Lambda function per entry of
 * shared/routes.ts, and the alarms. See infra/README.md for deploying it.
 */
import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, Token, type StackProps } from 'aws-cdk-lib';
import { lambdaIntraOpThreads } from './lambdaCpu';
import { acknowledgeNagRule, nagResourceFinding } from './nag';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  HttpRoute,
  HttpRouteKey,
  LogGroupLogDestination,
  PayloadFormatVersion,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Alarm, AlarmStatusWidget, ComparisonOperator, type AlarmProps, Dashboard, GraphWidget, MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, StreamViewType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, ManagedPolicy, PolicyStatement, Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { ACCESS_ROLES, accessPolicyStatements, routeArnsOfRole, type ExecuteApiArn } from './accessPolicies';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime, StartingPosition, Tracing, type CfnFunction, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, LogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { indexerEntry as defaultIndexerEntry, routeMethods, routes as defaultRoutes, scopesGranting, type RouteDefinition } from '../shared/routes';
import { indexerStreamSettings } from '../shared/streamSettings';
import { tenantIndexDesign } from '../shared/tableDesign';
import { RECONCILER_IDEMPOTENCY_KEYS, RECONCILER_TABLE_ACTIONS } from '../shared/operations/reconcileCheckpoint';
import { WEB_ASSETS_DIR_VARIABLE } from '../shared/http/webAssets';
import {
  LAMBDA_TASK_ROOT,
  MODEL_ASSET_DIR,
  PROJECT_ROOT,
  WEB_ASSET_DIR,
  apiBundling,
  embeddingBundling,
  webAssetBundling,
  resolveEmbeddingModel,
  type ResolvedModel,
} from './bundling';
import type { ImportedSecret, StageConfig } from './stageConfig';
import { ReindexAtScale } from './reindexAtScale';

export interface PersonaDbStackProps extends StackProps {
  readonly config: StageConfig;
  /** The route table; tests may add routes (e.g. one with `embeds: true`). */
  readonly routes?: readonly RouteDefinition[];
  readonly indexerEntry?: string;
  readonly reconcilerEntry?: string;
}

/** The Lambda runtime of every function (nodejs22.x). */
export const LAMBDA_RUNTIME = Runtime.NODEJS_22_X;

/** Logical id of the indexer function, next to the route names (which are the API functions' logical ids). */
export const INDEXER_LOGICAL_ID = 'indexer';

/** The scheduled reconciler: the same code as `personas reconcile --repair`. */
export const RECONCILER_LOGICAL_ID = 'reconciler';
export const RECONCILER_ENTRY = 'functions/reconciler/handler.ts';
/** Powertools service name of the reconciler: the dimension of its drift metrics. */
export const RECONCILER_SERVICE = 'persona-db-reconciler';
/**
 * The ReconcilerPassesStalled alarm fires when no reconcile pass completed for this long. A pass may
 * take several scheduled invocations (each stops before Lambda's 15 minutes and the next resumes),
 * so a few schedule periods would alarm on a large table's normal pass; a day leaves an hourly
 * schedule 24 invocations (about 6 hours of work) per pass, is as long as the pass's checkpoint
 * lives without progress, and is the longest range a CloudWatch alarm evaluates (period times
 * evaluation periods at most 86,400 s). A schedule with fewer than 3 runs in it is refused.
 */
export const RECONCILE_PASS_WINDOW_HOURS = 24;

/** The passes-stalled window for a schedule: RECONCILE_PASS_WINDOW_HOURS, when it holds at least 3 scheduled runs. */
export function passesStalledWindowHours(intervalMinutes: number): number {
  if (3 * intervalMinutes > RECONCILE_PASS_WINDOW_HOURS * 60) {
    throw new Error(
      `reconciler.intervalMinutes ${intervalMinutes} leaves fewer than 3 runs in the ${RECONCILE_PASS_WINDOW_HOURS} h the passes-stalled alarm waits for a completed pass; schedule it at most every ${(RECONCILE_PASS_WINDOW_HOURS * 60) / 3} minutes.`,
    );
  }
  return RECONCILE_PASS_WINDOW_HOURS;
}
/** Powertools service name of the indexer: the dimension of its SyncLag metric. */
export const INDEXER_SERVICE = 'persona-db-indexer';
/** Namespace of the functions' own metrics (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'PersonaDb';

const XRAY_WILDCARD_REASON =
  'Active tracing grants xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level permissions (IAM only accepts "*" for them); they only write trace data.';

interface FunctionSpec {
  readonly id: string;
  readonly entry: string;
  readonly description: string;
  readonly embeds: boolean;
  /** Serves the built browser assets (shared/routes.ts `webAssets`). */
  readonly webAssets?: boolean;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly serviceName: string;
  readonly environment: Record<string, string>;
  readonly reservedConcurrency?: number | undefined;
  /** Lambda's retries of a failed asynchronous invocation (Lambda's default: 2). */
  readonly asyncRetryAttempts?: number;
}

/**
 * Exactly `actions` on the table itself, and a Query only on the tenant index. (Table.grant would add
 * `<table>/index/*` to every statement of a table that has an index: every role could read every
 * index, and the wildcard is what AwsSolutions-IAM5 flags.)
 */
function grantTableActions(table: Table, grantee: IGrantable, actions: readonly string[]): void {
  const onTable = actions.filter((action) => action !== 'Query');
  if (onTable.length > 0) Grant.addToPrincipal({ grantee, actions: onTable.map((action) => `dynamodb:${action}`), resourceArns: [table.tableArn] });
  if (actions.includes('Query')) {
    Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query'], resourceArns: [`${table.tableArn}/index/${tenantIndexDesign.indexName}`] });
  }
}

export class PersonaDbStack extends Stack {
  readonly config: StageConfig;
  readonly table: Table;
  readonly idempotencyTable: Table;
  readonly api: HttpApi;
  readonly apiFunctions: ReadonlyMap<string, NodejsFunction>;
  readonly indexer: NodejsFunction;
  readonly reconciler: NodejsFunction;
  readonly reconcilerSchedule: Rule;
  readonly reindexAtScale: ReindexAtScale;
  readonly failureQueue: Queue;
  readonly qdrantSecret: ISecret;
  readonly cursorSigningKey: Secret;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;
  private accessLogs!: LogGroup;
  private readonly retain: RemovalPolicy;
  private model: ResolvedModel | undefined;

  constructor(scope: Construct, id: string, props: PersonaDbStackProps) {
    super(scope, id, props);
    const config = (this.config = props.config);
    const routeTable = props.routes ?? defaultRoutes;
    this.retain = config.table.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // ---- Data -------------------------------------------------------------------------------
    this.table = new Table(this, 'PersonaTable', {
      partitionKey: { name: 'id', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      deletionProtection: config.table.deletionProtection,
      removalPolicy: this.retain,
    });
    // A tenant's personas (tenancy=claim) are one partition of this index: listing them is a Query.
    this.table.addGlobalSecondaryIndex({
      indexName: tenantIndexDesign.indexName,
      partitionKey: { name: tenantIndexDesign.partitionKey, type: AttributeType.STRING },
      sortKey: { name: tenantIndexDesign.sortKey, type: AttributeType.STRING },
    });
    // Idempotency-Key records of the writing routes (shared/persona/personaRepository.ts):
    // key `key`, expiry `expires_at` (epoch seconds) removed by DynamoDB TTL.
    this.idempotencyTable = new Table(this, 'IdempotencyTable', {
      partitionKey: { name: 'key', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_at',
      deletionProtection: config.table.deletionProtection,
      removalPolicy: this.retain,
    });

    // ---- Secrets ----------------------------------------------------------------------------
    const imported = config.qdrant.importedSecret;
    this.qdrantSecret = imported
      ? this.importQdrantSecret(imported)
      : new Secret(this, 'QdrantSecret', {
          description: `Qdrant connection of ${config.namePrefix}: JSON {"url": "...", "apiKey": "..."}; replace url and apiKey after the first deploy.`,
          generateSecretString: {
            secretStringTemplate: JSON.stringify({ url: config.qdrant.initialUrl }),
            generateStringKey: 'apiKey',
            excludePunctuation: true,
            passwordLength: 48,
          },
          removalPolicy: this.retain,
        });
    const cursorSigningKey = (this.cursorSigningKey = new Secret(this, 'CursorSigningKey', {
      description: `HMAC key that signs list cursors of ${config.namePrefix} (read by the list function via CURSOR_SIGNING_KEY_SECRET_ARN).`,
      generateSecretString: { excludePunctuation: true, passwordLength: 64 },
      removalPolicy: this.retain,
    }));
    acknowledgeNagRule(cursorSigningKey, 'AwsSolutions-SMG4', 'The cursor signing key only authenticates short-lived pagination cursors (24 h expiry); a scheduled rotation would invalidate open cursors for no gain. Rotate with put-secret-value: functions pick the new key up within the 5-minute secret cache.');
    if (this.qdrantSecret instanceof Secret) {
      acknowledgeNagRule(this.qdrantSecret, 'AwsSolutions-SMG4', 'The Qdrant API key is issued by the Qdrant cluster (Qdrant Cloud console or the server config), not by AWS; Secrets Manager cannot rotate it without a Qdrant-specific rotation function. Operators rotate it in Qdrant and update the secret value.');
    }

    // ---- Alarm topic ------------------------------------------------------------------------
    const alarmKey = new Key(this, 'AlarmTopicKey', {
      description: `Encrypts the alarm topic of ${config.namePrefix}`,
      enableKeyRotation: true,
      removalPolicy: this.retain,
    });
    // CloudWatch alarms publish to an encrypted topic only when the key lets CloudWatch use it.
    alarmKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    this.alarmTopic = new Topic(this, 'AlarmTopic', { masterKey: alarmKey, enforceSSL: true, displayName: `${config.namePrefix} alarms` });
    if (config.alarms.email) this.alarmTopic.addSubscription(new EmailSubscription(config.alarms.email));

    // ---- API functions ----------------------------------------------------------------------
    const commonEnvironment = {
      NODE_OPTIONS: '--enable-source-maps',
      STAGE: config.stage,
      TABLE_NAME: this.table.tableName,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: config.logLevel,
      // Where each request's tenant comes from (shared/tenancy/tenancy.ts).
      TENANCY: config.tenancy.mode,
      TENANT_CLAIM: config.tenancy.claim,
    };
    const qdrantEnvironment = {
      QDRANT_SECRET_ARN: this.qdrantSecret.secretArn,
      QDRANT_COLLECTION: config.qdrant.collection,
    };
    const apiFunctions = new Map<string, NodejsFunction>();
    for (const route of routeTable) {
      const sizing = route.embeds ? config.functions.embeddingApi : config.functions.api;
      const fn = this.createFunction({
        id: route.name,
        entry: route.entry,
        description: `${config.namePrefix} ${route.method} ${route.path}`,
        embeds: route.embeds,
        webAssets: route.webAssets,
        memoryMb: sizing.memoryMb,
        timeoutSeconds: sizing.timeoutSeconds,
        serviceName: 'persona-db-api',
        environment: {
          ...commonEnvironment,
          // The functions check the route's scope again with auth=jwt (shared/http/accessControl.ts).
          AUTH: config.api.auth,
          ...(route.tableActions.idempotency ? { IDEMPOTENCY_TABLE_NAME: this.idempotencyTable.tableName } : {}),
          // An ARN only: the function reads the key from Secrets Manager at init (never a plaintext value).
          ...(route.signsCursors ? { CURSOR_SIGNING_KEY_SECRET_ARN: cursorSigningKey.secretArn } : {}),
          ...(route.readsIndex ? qdrantEnvironment : {}),
        },
      });
      // Exactly the actions the route's code calls (shared/routes.ts), each on its own table.
      const grantActions = (table: Table, actions: readonly string[] | undefined) => {
        if (actions?.length) grantTableActions(table, fn, actions);
      };
      grantActions(this.table, route.tableActions.personas);
      grantActions(this.idempotencyTable, route.tableActions.idempotency);
      if (route.readsIndex) this.grantQdrantSecretRead(fn);
      if (route.signsCursors) cursorSigningKey.grantRead(fn);
      apiFunctions.set(route.name, fn);
    }
    this.apiFunctions = apiFunctions;

    // ---- HTTP API ---------------------------------------------------------------------------
    this.api = this.createHttpApi(routeTable, apiFunctions);

    // ---- Indexer ----------------------------------------------------------------------------
    this.failureQueue = new Queue(this, 'IndexerFailureQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: this.retain,
    });
    acknowledgeNagRule(this.failureQueue, 'AwsSolutions-SQS3', "This queue is itself the dead-letter (on-failure) destination of the indexer's DynamoDB stream event source mapping; it holds batch metadata for replay and needs no DLQ of its own.");
    const indexer = (this.indexer = this.createFunction({
      id: INDEXER_LOGICAL_ID,
      entry: props.indexerEntry ?? defaultIndexerEntry,
      description: `${config.namePrefix} DynamoDB stream to Qdrant indexer`,
      embeds: true,
      memoryMb: config.functions.indexer.memoryMb,
      timeoutSeconds: config.functions.indexer.timeoutSeconds,
      serviceName: INDEXER_SERVICE,
      environment: { ...commonEnvironment, ...qdrantEnvironment },
      reservedConcurrency: config.functions.indexer.reservedConcurrency,
    }));
    this.grantQdrantSecretRead(indexer);
    // The indexer re-reads the changed personas (one consistent BatchGetItem per batch, see
    // shared/vectorIndex/indexerDeps.ts) instead of trusting stream images: that action only.
    grantTableActions(this.table, indexer, ['BatchGetItem']);
    const settings = indexerStreamSettings;
    indexer.addEventSource(
      new DynamoEventSource(this.table, {
        startingPosition: StartingPosition[settings.startingPosition],
        batchSize: settings.batchSize,
        maxBatchingWindow: Duration.seconds(settings.maxBatchingWindowSeconds),
        bisectBatchOnError: settings.bisectBatchOnError,
        retryAttempts: settings.retryAttempts,
        maxRecordAge: Duration.seconds(settings.maxRecordAgeSeconds),
        reportBatchItemFailures: settings.reportBatchItemFailures,
        parallelizationFactor: config.indexerStream.parallelizationFactor,
        onFailure: new SqsDlq(this.failureQueue),
      }),
    );
    // Replaces the X-Ray acknowledgement of createFunction on this role: the same finding, two causes.
    acknowledgeNagRule(indexer.role!, 'AwsSolutions-IAM5[Resource::*]', `${XRAY_WILDCARD_REASON} dynamodb:ListStreams has no resource-level permissions either; the event source mapping grant adds it. The stream read actions themselves are scoped to this table's stream ARN.`);

    // ---- Reconciler -------------------------------------------------------------------------
    const reconciler = (this.reconciler = this.createFunction({
      id: RECONCILER_LOGICAL_ID,
      entry: props.reconcilerEntry ?? RECONCILER_ENTRY,
      description: `${config.namePrefix} scheduled table/index reconciliation and repair`,
      embeds: true,
      memoryMb: config.functions.reconciler.memoryMb,
      timeoutSeconds: config.functions.reconciler.timeoutSeconds,
      serviceName: RECONCILER_SERVICE,
      environment: { ...commonEnvironment, ...qdrantEnvironment, IDEMPOTENCY_TABLE_NAME: this.idempotencyTable.tableName },
      // EventBridge invokes it asynchronously, and Lambda retries a failed asynchronous invocation
      // twice by default (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
      // a failed pass would run three times back to back. The checkpoint, the lease and the next
      // scheduled run already carry a failed pass on.
      asyncRetryAttempts: 0,
    }));
    this.grantQdrantSecretRead(reconciler);
    // Exactly what its code calls (shared/operations/reconcileCheckpoint.ts): a paged Scan of the
    // table and consistent BatchGetItems (it never writes to the table nor reads its stream), and
    // its checkpoint and lease items in the idempotency table, those items only (LeadingKeys: the
    // partition key of every item a request touches must match, so the API's Idempotency-Key
    // records stay out of its reach).
    grantTableActions(this.table, reconciler, RECONCILER_TABLE_ACTIONS.personas);
    Grant.addToPrincipal({
      grantee: reconciler,
      actions: RECONCILER_TABLE_ACTIONS.idempotency.map((action) => `dynamodb:${action}`),
      resourceArns: [this.idempotencyTable.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...RECONCILER_IDEMPOTENCY_KEYS] } },
    });
    this.reconcilerSchedule = new Rule(this, 'ReconcilerSchedule', {
      description: `Runs the ${config.namePrefix} reconciler every ${config.reconciler.intervalMinutes} minutes`,
      schedule: Schedule.rate(Duration.minutes(config.reconciler.intervalMinutes)),
      // The next scheduled run retries a failed one; repairs are idempotent. (This covers EventBridge's
      // delivery to Lambda; the function's own asynchronous retries are off above.)
      targets: [new LambdaFunction(reconciler, { retryAttempts: 0 })],
    });

    // ---- Reindex in AWS (infra/reindexAtScale.ts) -------------------------------------------
    this.reindexAtScale = new ReindexAtScale(this, 'ReindexAtScale', {
      config,
      table: this.table,
      grantQdrantSecretRead: (grantee) => this.grantQdrantSecretRead(grantee),
      environment: commonEnvironment,
      qdrantEnvironment,
      removalPolicy: this.retain,
      createFunction: (spec) => this.createFunction(spec),
    });

    // ---- Alarms -----------------------------------------------------------------------------
    this.createAlarms([...apiFunctions.entries(), [INDEXER_LOGICAL_ID, indexer], [RECONCILER_LOGICAL_ID, reconciler], ...this.reindexAtScale.functions()], routeTable);
    this.dashboard = this.createDashboard();
    if (!config.alarms.email) {
      Annotations.of(this).addWarningV2(
        'persona-db:alarms-without-subscriber',
        `No -c alarmEmail: the ${this.alarms.length} alarms publish to the SNS topic (output AlarmTopicArn) with no subscriber. They still show on the dashboard (output DashboardUrl) and in the CloudWatch console; subscribe with -c alarmEmail=you@example.com or aws sns subscribe.`,
      );
    }

    // ---- Outputs ----------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint, description: 'Base URL of the HTTP API ($default stage)' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'IdempotencyTableName', { value: this.idempotencyTable.tableName, description: 'IDEMPOTENCY_TABLE_NAME for `personas reconcile --aws` (the reconciler lease)' });
    new CfnOutput(this, 'QdrantSecretArn', { value: this.qdrantSecret.secretArn, description: 'Put {"url","apiKey"} of the Qdrant cluster here' });
    new CfnOutput(this, 'IndexerFailureQueueUrl', { value: this.failureQueue.queueUrl });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards/dashboard/${config.namePrefix}`,
      description: 'The service dashboard: requests, errors, latency, sync lag, iterator age, failure queue, drift, alarms',
    });
    if (config.api.auth === 'iam') this.createAccessPolicies(routeTable);
  }

  /** An existing Qdrant secret, as its ARN form says (a partial ARN's grants add `-??????`). */
  private importQdrantSecret(imported: ImportedSecret): ISecret {
    const secretRegion = imported.arn.split(':')[3];
    if (!Token.isUnresolved(this.region) && secretRegion !== this.region) {
      throw new Error(`The Qdrant secret ${imported.arn} is in ${secretRegion}, the stack in ${this.region}: the functions read it from Secrets Manager in their own region. Replicate the secret to ${this.region} and pass that ARN.`);
    }
    return Secret.fromSecretAttributes(this, 'QdrantSecret', imported.arnForm === 'complete' ? { secretCompleteArn: imported.arn } : { secretPartialArn: imported.arn });
  }

  /**
   * GetSecretValue and DescribeSecret on the Qdrant secret and, when an imported secret has a
   * customer managed KMS key, kms:Decrypt on that key through Secrets Manager in this region only
   * (kms:ViaService), which reading such a secret needs
   * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html). Written
   * out because Secret.grantRead's key grant adds nothing to the role for an imported key.
   */
  private grantQdrantSecretRead(grantee: IGrantable): void {
    this.qdrantSecret.grantRead(grantee);
    const kmsKeyArn = this.config.qdrant.importedSecret?.kmsKeyArn;
    if (kmsKeyArn) {
      Grant.addToPrincipal({ grantee, actions: ['kms:Decrypt'], resourceArns: [kmsKeyArn], conditions: { StringEquals: { 'kms:ViaService': this.secretsManagerEndpoint() } } });
    }
  }

  private secretsManagerEndpoint(): string {
    return `secretsmanager.${this.region}.amazonaws.com`;
  }

  /** The Qdrant secret's ARN as IAM policies name it (a partial ARN matches its versions through `-??????`). */
  private qdrantSecretPolicyArn(): string {
    return this.config.qdrant.importedSecret?.arnForm === 'partial' ? `${this.qdrantSecret.secretArn}-??????` : this.qdrantSecret.secretArn;
  }

  /** auth=iam: the reader, writer and admin policies (infra/accessPolicies.ts), to attach to callers' roles. */
  private createAccessPolicies(routeTable: readonly RouteDefinition[]): void {
    const executeApiArn: ExecuteApiArn = (method, path) => this.api.arnForExecuteApi(method, path, '$default');
    for (const role of ACCESS_ROLES) {
      const id = `${role[0]!.toUpperCase()}${role.slice(1)}`;
      const policy = new ManagedPolicy(this, `${id}AccessPolicy`, {
        description: `${this.config.namePrefix} API ${role}: the routes of the ${role} role${role === 'admin' ? ' and the CLI bulk operations' : ''}`,
        statements: accessPolicyStatements(role, routeTable, executeApiArn, {
          tableArn: this.table.tableArn,
          tenantIndexArn: `${this.table.tableArn}/index/${tenantIndexDesign.indexName}`,
          tableStreamArn: this.table.tableStreamArn!,
          qdrantSecretArn: this.qdrantSecretPolicyArn(),
          ...(this.config.qdrant.importedSecret?.kmsKeyArn ? { qdrantSecretKmsKeyArn: this.config.qdrant.importedSecret.kmsKeyArn } : {}),
          secretsManagerEndpoint: this.secretsManagerEndpoint(),
          failureQueueArn: this.failureQueue.queueArn,
          idempotencyTableArn: this.idempotencyTable.tableArn,
          reindexStateMachine: this.reindexAtScale.adminTargets(),
        }),
      });
      if (role === 'admin') this.reindexAtScale.acknowledgeAdminWildcards(policy);
      // cdk-nag names each wildcard resource: one acknowledgement per parameterised route, built
      // from the very ARN the policy holds (concrete or deploy-time account and region alike).
      for (const { arn } of routeArnsOfRole(role, routeTable, executeApiArn).filter(({ resource }) => resource.includes('*'))) {
        acknowledgeNagRule(
          policy,
          `AwsSolutions-IAM5[${nagResourceFinding(policy, arn)}]`,
          'The wildcard is the route\'s path parameter (/personas/* for /personas/{id}), the only way an execute-api ARN names a parameterised route; the ARN is fixed to this API, its $default stage and one method.',
        );
      }
      new CfnOutput(this, `${id}PolicyArn`, { value: policy.managedPolicyArn, description: `Attach to the IAM roles that may act as API ${role} (auth=iam)` });
    }
  }

  /** One function with its own role (no managed policies) and its own log group (public for the stack's constructs, e.g. ReindexAtScale). */
  createFunction(spec: FunctionSpec): NodejsFunction {
    const architecture = this.config.lambdaArchitecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64;
    const logGroup = new LogGroup(this, `${spec.id}Logs`, {
      retention: this.config.logRetentionDays,
      removalPolicy: this.retain,
    });
    const role = new Role(this, `${spec.id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${spec.description}`,
    });
    logGroup.grantWrite(role);
    const embedding: { bundling: BundlingOptions; environment: Record<string, string> } = spec.embeds
      ? {
          bundling: embeddingBundling(this.config.lambdaArchitecture, this.embeddingModel()),
          environment: {
            EMBEDDING_MODEL_DIR: `${LAMBDA_TASK_ROOT}/${MODEL_ASSET_DIR}`,
            EMBEDDING_ALLOW_REMOTE: 'false',
            EMBEDDING_DTYPE: this.embeddingModel().dtype,
            EMBEDDING_MODEL_ID: this.embeddingModel().id,
            // One ONNX Runtime thread per whole vCPU of the function's share (bench: the Lambda sizing table).
            EMBEDDING_THREADS: String(lambdaIntraOpThreads(spec.memoryMb)),
          },
        }
      : spec.webAssets
        ? { bundling: webAssetBundling(), environment: { [WEB_ASSETS_DIR_VARIABLE]: `${LAMBDA_TASK_ROOT}/${WEB_ASSET_DIR}` } }
        : { bundling: apiBundling(), environment: {} };
    const fn = new NodejsFunction(this, spec.id, {
      entry: `${PROJECT_ROOT}/${spec.entry}`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}/package-lock.json`,
      runtime: LAMBDA_RUNTIME,
      architecture,
      memorySize: spec.memoryMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      description: spec.description,
      role,
      logGroup,
      // X-Ray, with the Powertools Tracer in the code (shared/observability.ts).
      tracing: Tracing.ACTIVE,
      ...(spec.reservedConcurrency !== undefined ? { reservedConcurrentExecutions: spec.reservedConcurrency } : {}),
      ...(spec.asyncRetryAttempts !== undefined ? { retryAttempts: spec.asyncRetryAttempts } : {}),
      bundling: embedding.bundling,
      environment: { ...spec.environment, POWERTOOLS_SERVICE_NAME: spec.serviceName, ...embedding.environment },
    });
    acknowledgeNagRule(role, 'AwsSolutions-IAM5[Resource::*]', XRAY_WILDCARD_REASON);
    // Stable logical ids: the route name (shared/routes.ts) or `indexer`.
    (fn.node.defaultChild as CfnFunction).overrideLogicalId(spec.id);
    acknowledgeNagRule(fn, 'AwsSolutions-L1', 'The project pins nodejs22.x (Node 22 LTS, the version the code and its native onnxruntime binding are tested against); moving to a newer runtime is a deliberate upgrade, not a side effect of a CDK bump.');
    return fn;
  }

  /** The embedding model, resolved once per stack (only when a function embeds). */
  private embeddingModel(): ResolvedModel {
    if (!this.model) {
      this.model = resolveEmbeddingModel(this.config);
      if (this.model.generated) {
        Annotations.of(this).addWarningV2(
          'persona-db:embedding-test-model',
          `Embedding functions bundle the generated test model (${this.model.dir}): fine for tests and wiring, useless for real search. Run \`npm run model:fetch\` (or set EMBEDDING_MODEL_DIR to a real model) before deploying; stage prod refuses it.`,
        );
      }
    }
    return this.model;
  }

  private createHttpApi(routeTable: readonly RouteDefinition[], functions: ReadonlyMap<string, NodejsFunction>): HttpApi {
    const { api: apiConfig, namePrefix } = this.config;
    let authorizer: IHttpRouteAuthorizer | undefined;
    if (apiConfig.auth === 'iam') authorizer = new HttpIamAuthorizer();
    if (apiConfig.auth === 'jwt') {
      authorizer = new HttpJwtAuthorizer('JwtAuthorizer', apiConfig.jwt!.issuer, { jwtAudience: [...apiConfig.jwt!.audience] });
    }
    const methods = [...new Set(routeTable.flatMap(routeMethods))];
    const api = new HttpApi(this, 'HttpApi', {
      apiName: namePrefix,
      description: `persona-db HTTP API (${this.config.stage})`,
      createDefaultStage: false,
      ...(authorizer ? { defaultAuthorizer: authorizer } : {}),
      ...(apiConfig.cors
        ? {
            corsPreflight: {
              allowOrigins: [...apiConfig.cors.allowOrigins],
              allowHeaders: [...apiConfig.cors.allowHeaders],
              allowMethods: [...methods.filter((method) => method !== 'ANY').map((method) => CorsHttpMethod[method]), CorsHttpMethod.OPTIONS],
              // Headers a browser client must read: versions, created resources, retry hints, replays, 405/415 hints.
              exposeHeaders: ['etag', 'location', 'retry-after', 'idempotent-replayed', 'allow', 'accept-patch'],
              maxAge: Duration.seconds(apiConfig.cors.maxAgeSeconds),
            },
          }
        : {}),
    });
    const accessLogs = (this.accessLogs = new LogGroup(this, 'ApiAccessLogs', {
      retention: this.config.logRetentionDays,
      removalPolicy: this.retain,
    }));
    api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: apiConfig.throttle.rateLimit, burstLimit: apiConfig.throttle.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            httpMethod: '$context.httpMethod',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            protocol: '$context.protocol',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });
    for (const route of routeTable) {
      const integration = new HttpLambdaIntegration(`${route.name}Integration`, functions.get(route.name)!, {
        payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
      });
      // `$default` catches every request no other route matches (any method); it takes the API's
      // default authorizer like the others.
      const created =
        route.path === '$default'
          ? [new HttpRoute(this, `${route.name}Route`, { httpApi: api, routeKey: HttpRouteKey.DEFAULT, integration, ...(authorizer ? { authorizer } : {}) })]
          : api.addRoutes({
              path: route.path,
              methods: routeMethods(route).map((method) => HttpMethod[method]),
              integration,
              // The console's pages and scripts hold no data; their API calls carry the user's token.
              ...(route.public && authorizer ? { authorizer: new HttpNoneAuthorizer() } : {}),
              // auth=jwt: the token must carry one of the route's scopes (its own or personas:admin).
              ...(apiConfig.auth === 'jwt' && scopesGranting(route).length > 0 ? { authorizationScopes: scopesGranting(route) } : {}),
            });
      for (const routeResource of apiConfig.auth === 'none' ? created : []) {
        acknowledgeNagRule(routeResource, 'AwsSolutions-APIG4', `Stage ${this.config.stage} is configured with auth=none (a development stage, throttled); prod defaults to IAM and any stage can switch with -c auth=iam|jwt.`);
      }
      for (const routeResource of apiConfig.auth !== 'none' && route.public ? created : []) {
        acknowledgeNagRule(routeResource, 'AwsSolutions-APIG4', `${route.method} ${route.path} serves a static page or script of the console or /docs (no data); a browser cannot sign or add a token to a page load, and the page's API calls go through the stage's authorizer.`);
      }
    }
    return api;
  }

  /**
   * Requests per route answered 503 by the functions that query Qdrant (from the access logs). The
   * access log writes `"status":"503"`, a JSON string, so the filter compares it with the quoted
   * string "503": CloudWatch Logs matches a quoted value as a string, exactly; an unquoted 503
   * is a numeric comparison, and the filter-pattern syntax does not say it matches a string value
   * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html, JSON
   * log events; test/support/cloudWatchFilterPattern.ts implements those rules for the test).
   */
  private searchUnavailableMetric(routeTable: readonly RouteDefinition[]): Metric {
    const routeKeys = routeTable.filter((route) => route.readsIndex).map((route) => `$.routeKey = "${route.method} ${route.path}"`);
    new MetricFilter(this, 'SearchUnavailableFilter', {
      logGroup: this.accessLogs,
      metricNamespace: METRICS_NAMESPACE,
      metricName: 'SearchUnavailable',
      filterPattern: FilterPattern.literal(`{ $.status = "503" && (${routeKeys.join(' || ')}) }`),
      metricValue: '1',
      defaultValue: 0,
    });
    return new Metric({ namespace: METRICS_NAMESPACE, metricName: 'SearchUnavailable', statistic: 'Sum', period: Duration.minutes(5) });
  }

  private apiMetrics() {
    const period = Duration.minutes(5);
    const count = this.api.metricCount({ statistic: 'Sum', period });
    const serverErrors = this.api.metricServerError({ statistic: 'Sum', period });
    return {
      count,
      serverErrors,
      clientErrors: this.api.metricClientError({ statistic: 'Sum', period }),
      serverErrorPercent: new MathExpression({
        expression: '100 * errors / IF(requests > 0, requests, 1)',
        usingMetrics: { errors: serverErrors, requests: count },
        label: '5xx % of requests',
        period,
      }),
      latency: (statistic: string) => this.api.metricLatency({ statistic, period }),
    };
  }

  private syncLag(statistic: string): Metric {
    return new Metric({ namespace: METRICS_NAMESPACE, metricName: 'SyncLag', dimensionsMap: { service: INDEXER_SERVICE }, statistic, period: Duration.minutes(5) });
  }

  private createAlarms(functions: ReadonlyArray<readonly [string, IFunction]>, routeTable: readonly RouteDefinition[]): void {
    const action = new SnsAction(this.alarmTopic);
    const alarm = (id: string, metric: IMetric, threshold: number, description: string, evaluationPeriods = 1, rule: Pick<AlarmProps, 'comparisonOperator' | 'treatMissingData'> = {}) => {
      const created = new Alarm(this, id, {
        alarmName: `${this.config.namePrefix}-${id}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        ...rule,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
      return created;
    };
    const { alarms } = this.config;
    const api = this.apiMetrics();
    // Handled 500s and 503s are responses, not Lambda errors: only the API's own metrics see them.
    alarm('ApiServerErrorRate', api.serverErrorPercent, alarms.apiServerErrorPercent, `At least ${alarms.apiServerErrorPercent}% of API requests answered 5xx over 5 minutes: open the dashboard, then the function logs of the failing route.`);
    alarm('ApiLatencyP99', api.latency('p99'), alarms.apiLatencyP99Ms, `The API's p99 latency reached ${alarms.apiLatencyP99Ms} ms over 5 minutes.`);
    alarm('SearchUnavailable', this.searchUnavailableMetric(routeTable), 1, 'Search answered 503 (Qdrant unreachable or refusing the key): check the Qdrant cluster and the Qdrant secret (the functions log the secret version they use).');
    alarm('SyncLagP99', this.syncLag('p99'), alarms.syncLagP99Ms, `The p99 time from a write to its index update reached ${alarms.syncLagP99Ms} ms: search results lag behind the table.`);
    alarm(
      'IndexerIteratorAge',
      this.indexer.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      alarms.iteratorAgeMs,
      'The indexer lags behind the table stream (IteratorAge max): Qdrant search results are stale.',
      3,
    );
    alarm(
      'IndexerFailureQueueDepth',
      this.failureQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1) }),
      1,
      'Stream batches the indexer gave up on are waiting in the on-failure queue: run `personas redrive` (re-syncs their personas, then deletes the messages).',
    );
    alarm(
      'ReconcilerDriftRemaining',
      this.driftMetric('DriftRemaining'),
      1,
      'The reconciler could not repair every difference between the table and the index: run `personas reconcile` and read the reconciler logs.',
    );
    // Paused invocations publish nothing, so only a completed pass proves the reconciler works: no
    // data (always timing out, always failing, schedule disabled) is what this alarm is for.
    const passWindowHours = passesStalledWindowHours(this.config.reconciler.intervalMinutes);
    alarm(
      'ReconcilerPassesStalled',
      this.reconcilePassesMetric(),
      1,
      `No reconcile pass completed in ${passWindowHours} h (the reconciler runs every ${this.config.reconciler.intervalMinutes} minutes; a pass may span several runs): read the reconciler logs (errors, 'paused', 'lease') and check its schedule rule is enabled; then run \`personas reconcile --repair\`.`,
      passWindowHours,
      { comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD, treatMissingData: TreatMissingData.BREACHING },
    );
    for (const [name, fn] of functions) {
      alarm(`${name}Errors`, fn.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 1, `${name} invocations failed.`);
      alarm(`${name}Throttles`, fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }), 1, `${name} invocations were throttled.`);
    }
  }

  private driftMetric(metricName: string): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: RECONCILER_SERVICE },
      statistic: 'Maximum',
      period: Duration.minutes(this.config.reconciler.intervalMinutes),
    });
  }

  /** Completed reconcile passes per hour (the reconciler publishes 1 when it finishes one). */
  private reconcilePassesMetric(): Metric {
    return new Metric({ namespace: METRICS_NAMESPACE, metricName: 'ReconcilePassesCompleted', dimensionsMap: { service: RECONCILER_SERVICE }, statistic: 'Sum', period: Duration.hours(1) });
  }

  /** One dashboard for the service: what the first-incident runbook (README) starts from. */
  private createDashboard(): Dashboard {
    const api = this.apiMetrics();
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) => new GraphWidget({ title, left, right, width: 8, height: 6 });
    return new Dashboard(this, 'ServiceDashboard', {
      dashboardName: this.config.namePrefix,
      defaultInterval: Duration.hours(3),
      widgets: [
        [new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 })],
        [
          graph('API requests', [api.count]),
          graph('API errors', [api.serverErrors, api.clientErrors, this.alarmMetric('SearchUnavailable')], [api.serverErrorPercent]),
          graph('API latency (ms)', [api.latency('p50'), api.latency('p99')]),
        ],
        [
          graph('Sync lag: write to index (ms)', [this.syncLag('p50'), this.syncLag('p99')]),
          graph('Indexer iterator age (ms)', [this.indexer.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) })]),
          graph('Indexer failure queue depth', [this.failureQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1) })]),
        ],
        [
          graph('Reconciler drift', [this.driftMetric('DriftFound'), this.driftMetric('DriftRepaired'), this.driftMetric('DriftRemaining')]),
          graph('Reconcile passes completed (per hour)', [this.reconcilePassesMetric()]),
        ],
      ],
    });
  }

  private alarmMetric(id: string): IMetric {
    return this.alarms.find((alarm) => alarm.node.id === id)!.metric;
  }
}

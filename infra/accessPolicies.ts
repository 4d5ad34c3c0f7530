/**
 * With auth=iam there are no scopes: who may call which route is an IAM policy on the caller.
 * These are the policies of the three roles, built from the route table with the same rule as
 * the JWT scopes (shared/routes.ts `scopesGranting`), so the two modes cannot drift apart:
 *  - reader: execute-api:Invoke on the routes personas:read grants (get, list, search, similar, the API document);
 *  - writer: on the routes personas:write grants (create, batch, replace, patch, delete);
 *  - admin:  on every route with a scope, plus what the CLI's bulk operations (reconcile, reindex,
 *            status, redrive, `export --from table`) read directly: the table, its tenant index, its
 *            stream, the Qdrant secret and the indexer's failure queue. (`migrate-tenancy` also
 *            writes the table: a one-off run with the deployer's own credentials.)
 * The stack creates them as managed policies (outputs ReaderPolicyArn, WriterPolicyArn,
 * AdminPolicyArn) to attach to the callers' roles. Public routes (console, docs, assets) need none;
 * `$default` (404/405 answers) is in no policy: an IAM caller gets API Gateway's 403 for an unknown path.
 *
 * execute-api resources are `arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH`, a path
 * parameter written `*` (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-iam-policy-examples-for-api-execution.html).
 */
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { routeMethods, scopesGranting, type RouteDefinition, type Scope } from '../shared/routes';
import { LEASE_TABLE_ACTIONS, leaseKey } from '../shared/operations/reconcileLease';

export const ACCESS_ROLES = ['reader', 'writer', 'admin'] as const;
export type AccessRole = (typeof ACCESS_ROLES)[number];

export const ROLE_SCOPE: Record<AccessRole, Scope> = { reader: 'personas:read', writer: 'personas:write', admin: 'personas:admin' };

/** The routes a role may invoke: those its scope grants, as with a JWT carrying that scope. */
export const routesOfRole = (role: AccessRole, table: readonly RouteDefinition[]): RouteDefinition[] =>
  table.filter((route) => !route.public && scopesGranting(route).includes(ROLE_SCOPE[role]));

/** `METHOD/path` of each method of a route, path parameters as `*`: the end of its execute-api ARN. */
export const executeApiResources = (route: RouteDefinition): string[] => routeMethods(route).map((method) => `${method}${route.path.replace(/\{\w+\}/g, '*')}`);

/** Where the CLI's bulk operations read, for the admin role. */
export interface AdminTargets {
  tableArn: string;
  tenantIndexArn: string;
  tableStreamArn: string;
  /** As policies name it (a partial ARN with its `-??????`). */
  qdrantSecretArn: string;
  /** The secret's customer managed KMS key, when it has one. */
  qdrantSecretKmsKeyArn?: string;
  /** `secretsmanager.<region>.amazonaws.com`: the only way the admin may use that key (kms:ViaService). */
  secretsManagerEndpoint: string;
  failureQueueArn: string;
  idempotencyTableArn: string;
  /** `reindex --in-aws`: the reindex state machine, its executions and its Map Runs (infra/reindexAtScale.ts). */
  reindexStateMachine?: { stateMachineArn: string; executionsArn: string; mapRunsArn: string };
}

/** The ARN of one route of the stage's API for `METHOD` and `path` (HttpApi.arnForExecuteApi in the stack). */
export type ExecuteApiArn = (method: string, path: string) => string;

/** Each route resource a role may invoke (`METHOD/path`) with its execute-api ARN. */
export const routeArnsOfRole = (role: AccessRole, table: readonly RouteDefinition[], executeApiArn: ExecuteApiArn): { resource: string; arn: string }[] =>
  routesOfRole(role, table).flatMap((route) =>
    executeApiResources(route).map((resource) => {
      const slash = resource.indexOf('/');
      return { resource, arn: executeApiArn(resource.slice(0, slash), resource.slice(slash)) };
    }),
  );

/** The statements of one role. */
export function accessPolicyStatements(role: AccessRole, table: readonly RouteDefinition[], executeApiArn: ExecuteApiArn, admin?: AdminTargets): PolicyStatement[] {
  const resources = routeArnsOfRole(role, table, executeApiArn).map(({ arn }) => arn);
  const statements = [new PolicyStatement({ sid: 'InvokeRoutes', effect: Effect.ALLOW, actions: ['execute-api:Invoke'], resources })];
  if (role === 'admin' && admin) {
    statements.push(
      // Full-table scans (reconcile, reindex, status, export --from table) and consistent re-reads.
      new PolicyStatement({ sid: 'ReadTable', actions: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:DescribeTable'], resources: [admin.tableArn] }),
      // export --from table --tenant T reads one tenant's partition of the tenant index.
      new PolicyStatement({ sid: 'QueryTenantIndex', actions: ['dynamodb:Query'], resources: [admin.tenantIndexArn] }),
      // reindex follows live changes and redrive reads failed batches back from the stream (24 h).
      new PolicyStatement({ sid: 'ReadStream', actions: ['dynamodb:DescribeStream', 'dynamodb:GetShardIterator', 'dynamodb:GetRecords'], resources: [admin.tableStreamArn] }),
      // reconcile takes the scheduled reconciler's lease (one run at a time): the lease items only.
      new PolicyStatement({
        sid: 'ReconcileLease',
        actions: LEASE_TABLE_ACTIONS.map((action) => `dynamodb:${action}`),
        resources: [admin.idempotencyTableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [leaseKey('*')] } },
      }),
      new PolicyStatement({ sid: 'ReadQdrantSecret', actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], resources: [admin.qdrantSecretArn] }),
      ...(admin.qdrantSecretKmsKeyArn
        ? [new PolicyStatement({ sid: 'DecryptQdrantSecret', actions: ['kms:Decrypt'], resources: [admin.qdrantSecretKmsKeyArn], conditions: { StringEquals: { 'kms:ViaService': admin.secretsManagerEndpoint } } })]
        : []),
      new PolicyStatement({
        sid: 'RedriveFailures',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
        resources: [admin.failureQueueArn],
      }),
    );
    const reindex = admin.reindexStateMachine;
    if (reindex) {
      statements.push(
        // reindex --in-aws starts the backfill, re-attaches to a running one (ListExecutions), follows it, stops it on failure.
        new PolicyStatement({ sid: 'ReindexInAwsStart', actions: ['states:StartExecution', 'states:ListExecutions', 'states:ListMapRuns'], resources: [reindex.stateMachineArn] }),
        new PolicyStatement({ sid: 'ReindexInAwsExecutions', actions: ['states:DescribeExecution', 'states:StopExecution', 'states:ListMapRuns'], resources: [reindex.executionsArn] }),
        new PolicyStatement({ sid: 'ReindexInAwsMapRuns', actions: ['states:DescribeMapRun'], resources: [reindex.mapRunsArn] }),
      );
    }
  }
  return statements;
}

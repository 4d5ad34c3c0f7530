/**
 * What the stack's two Distributed Map state machines (the reindex's backfill, infra/reindexAtScale.ts,
 * and the import's writers, infra/importAtScale.ts) share: the ARNs the admin policy names for the
 * CLI that starts and follows them, and the cdk-nag acknowledgements of the wildcards CDK's own grants
 * give their roles. Every finding is built from the value the policy holds (nagResourceFinding), so it
 * matches whether the stack's account and region are concrete or resolved at deploy time.
 */
import { Arn, ArnFormat, Aws, Fn, Stack, type CfnElement } from 'aws-cdk-lib';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { acknowledgeNagRule, nagResourceFinding } from './nag';

const logicalId = (construct: Construct) => Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);

/** The `Resource::` finding of `<bucket ARN>/<keys>` (cdk-nag writes the bucket's ARN as <LogicalId.Arn>). */
export const bucketObjectsFinding = (bucket: Bucket, keys: string) => `Resource::<${logicalId(bucket)}.Arn>/${keys}`;

/** One acknowledgement of a wildcard of objects of `bucket` on `scope` (a role or a policy). */
export function acknowledgeBucketObjects(scope: Construct, bucket: Bucket, keys: string, reason: string): void {
  acknowledgeNagRule(scope, `AwsSolutions-IAM5[${bucketObjectsFinding(bucket, keys)}]`, reason);
}

/**
 * The wildcards on a Distributed Map state machine's role that CDK's grants create: the ItemReader's
 * and ResultWriter's objects of the bucket, the versions of each invoked function, CloudWatch Logs
 * delivery and X-Ray (no resource but "*"), and the Map Run's own child executions.
 */
export function acknowledgeDistributedMapRole(stateMachine: StateMachine, options: { bucket: Bucket; mapLabel: string; functions: ReadonlyArray<readonly [logicalId: string, what: string]>; bucketUse: string }): void {
  const role = stateMachine.role;
  const itemReaderObjects = Arn.format({ partition: Aws.PARTITION, service: 's3', region: '', account: '', resource: options.bucket.bucketName, resourceName: '*' });
  acknowledgeNagRule(role, `AwsSolutions-IAM5[${nagResourceFinding(role, itemReaderObjects)}]`, `${options.bucketUse} (CDK's grants for the ItemReader and the ResultWriter).`);
  for (const [id, what] of options.functions) {
    acknowledgeNagRule(role, `AwsSolutions-IAM5[Resource::<${id}.Arn>:*]`, `Invoking the ${what} function's versions (what LambdaInvoke grants); the function is fixed.`);
  }
  acknowledgeNagRule(role, 'AwsSolutions-IAM5[Resource::*]', 'CloudWatch Logs delivery (logs:CreateLogDelivery and the others) and X-Ray (xray:PutTraceSegments...) accept no resource but "*" (Step Functions Developer Guide, IAM policies for logging and X-Ray).');
  // CDK's Distributed Map grant names the child executions by the state machine's name, taken from its ARN at deploy time.
  const executions = Stack.of(stateMachine).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: Fn.select(6, Fn.split(':', stateMachine.stateMachineArn)),
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  for (const resource of [`${executions}:*`, `${executions}/${options.mapLabel}:*`]) {
    acknowledgeNagRule(
      stateMachine,
      `AwsSolutions-IAM5[${nagResourceFinding(stateMachine, resource)}]`,
      "The Distributed Map starts, describes, stops and redrives its own child executions (names chosen by Step Functions); CDK's grant for the Distributed Map.",
    );
  }
}

/** The ARNs the admin policy names for a CLI command that starts and follows executions of `stateMachine`. */
export function stateMachineAdminTargets(stateMachine: StateMachine) {
  const stack = Stack.of(stateMachine);
  const name = stateMachine.stateMachineName;
  return {
    stateMachineArn: stateMachine.stateMachineArn,
    executionsArn: stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${name}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    mapRunsArn: stack.formatArn({ service: 'states', resource: 'mapRun', resourceName: `${name}/*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
  };
}

/** The admin policy's wildcards on the executions and Map Runs of `stateMachine`, built from the very ARNs the policy holds. */
export function acknowledgeAdminExecutions(policy: Construct, stateMachine: StateMachine, reason: string): void {
  const { executionsArn, mapRunsArn } = stateMachineAdminTargets(stateMachine);
  for (const arn of [executionsArn, mapRunsArn]) acknowledgeNagRule(policy, `AwsSolutions-IAM5[${nagResourceFinding(policy, arn)}]`, reason);
}

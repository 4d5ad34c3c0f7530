/**
 * cdk-nag (v3) wiring. v3 runs as a CDK policy-validation plugin, not as an Aspect, and reads
 * suppressions from CDK's own acknowledgements (`Validations.of(construct).acknowledge`), which
 * cover the construct and everything below it. An unacknowledged finding fails `cdk synth`.
 */
import { Stack, Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
// The function cdk-nag's granular rules (IAM5) write their `Resource::` findings with.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** Registers the AWS Solutions pack on the app: every synth is checked. */
export function addNagChecks(app: App): AwsSolutionsChecks {
  const checks = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(checks);
  return checks;
}

/**
 * Acknowledges one cdk-nag finding on `scope` (and its children) with the reason it is acceptable.
 * `ruleId` is the rule, or for multi-finding rules the single finding, e.g. `AwsSolutions-IAM5[Resource::*]`.
 */
export function acknowledgeNagRule(scope: IConstruct, ruleId: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: ruleId, reason });
}

/**
 * The `Resource::...` finding cdk-nag reports for `resource` in a policy under `scope`: the value as
 * the template holds it, references written the way cdk-nag flattens them (`<LogicalId>`,
 * `<AWS::Region>`). Built from the policy's own value, it names the same resource whether the
 * stack's account and region are concrete (`arn:aws:execute-api:eu-west-1:123456789012:...`) or
 * resolved at deploy time (`arn:<AWS::Partition>:execute-api:<AWS::Region>:...`).
 */
export function nagResourceFinding(scope: IConstruct, resource: string): string {
  return `Resource::${flattenCfnReference(Stack.of(scope).resolve(resource))}`;
}

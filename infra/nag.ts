/**
 * cdk-nag (v3) wiring. v3 runs as a CDK policy-validation plugin, not as an Aspect, and reads
 * suppressions from CDK's own acknowledgements (`Validations.of(construct).acknowledge`), which
 * cover the construct and everything below it. An unacknowledged finding fails `cdk synth`.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
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

/**
 * The account and region the stack is synthesized for (its `env`).
 *
 * The CDK CLI runs the app with CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION set from the AWS
 * profile (https://docs.aws.amazon.com/cdk/v2/guide/environments.html: "These variables are set
 * based on the AWS profile specified using the --profile option, or the default AWS profile"). It
 * sets them itself, over any value already in the environment: the region always (AWS_REGION,
 * AWS_DEFAULT_REGION, the profile's region, and us-east-1 when none names one), the account only
 * when the credentials resolve one (aws-cdk 2.1148, `prepareDefaultEnvironment`). So
 * `CDK_DEFAULT_REGION=eu-west-1 cdk synth` without a configured region targets us-east-1. To pin
 * the target, pass it as context (`-c account=123456789012 -c region=eu-west-1`), which the CLI
 * leaves alone; without either, the CLI's defaults apply, and with neither of those an
 * environment-agnostic template comes out (account and region resolved by CloudFormation).
 */
import type { Environment } from 'aws-cdk-lib';
import type { Node } from 'constructs';
import { contextString } from './stageConfig';

export interface DeploymentEnvironment {
  readonly env: Environment;
  /** Where each value came from, for the synth-time note. */
  readonly accountSource: 'context' | 'CDK_DEFAULT_ACCOUNT' | 'none';
  readonly regionSource: 'context' | 'CDK_DEFAULT_REGION' | 'none';
}

const ACCOUNT = /^\d{12}$/;
// eu-west-1, us-gov-west-1, cn-north-1, ap-southeast-5, eusc-de-east-1 ...
const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d+$/;

/** `-c account=... -c region=...` first, else the CDK CLI's CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION. */
export function deploymentEnvironment(node: Pick<Node, 'tryGetContext'>, processEnv: NodeJS.ProcessEnv = process.env): DeploymentEnvironment {
  const account = contextString(node, 'account');
  const region = contextString(node, 'region');
  if (account !== undefined && !ACCOUNT.test(account)) throw new Error(`-c account must be a 12-digit AWS account id; got "${account}"`);
  if (region !== undefined && !REGION.test(region)) throw new Error(`-c region must be an AWS region code such as eu-west-1; got "${region}"`);
  const cliAccount = processEnv.CDK_DEFAULT_ACCOUNT || undefined;
  const cliRegion = processEnv.CDK_DEFAULT_REGION || undefined;
  const resolvedAccount = account ?? cliAccount;
  const resolvedRegion = region ?? cliRegion;
  return {
    env: { ...(resolvedAccount ? { account: resolvedAccount } : {}), ...(resolvedRegion ? { region: resolvedRegion } : {}) },
    accountSource: account ? 'context' : cliAccount ? 'CDK_DEFAULT_ACCOUNT' : 'none',
    regionSource: region ? 'context' : cliRegion ? 'CDK_DEFAULT_REGION' : 'none',
  };
}

/** One line for the synth output: where the stack goes and why, so a defaulted region is seen before a deploy. */
export function describeDeploymentEnvironment(target: DeploymentEnvironment): string {
  const part = (name: string, value: string | undefined, source: string) =>
    value === undefined
      ? `${name} resolved by CloudFormation at deploy time`
      : `${name} ${value} (${source === 'context' ? `-c ${name}` : `${source}, set by the CDK CLI from the AWS profile${name === 'region' ? ' or AWS_REGION, us-east-1 when none names one' : ''}`})`;
  return `Target: ${part('account', target.env.account, target.accountSource)}, ${part('region', target.env.region, target.regionSource)}. Pin both with -c account=<id> -c region=<code>.`;
}

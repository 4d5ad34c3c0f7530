/**
 * CDK app entry (cdk.json: `npx tsx infra/app.ts`). One stack per invocation, for the stage given
 * with `-c stage=dev|prod` (default dev); see infra/stageConfig.ts for every context override.
 *
 *   npm run synth                      # dev, to cdk.out
 *   npm run synth -- -c stage=prod
 *   npm run deploy -- -c stage=prod    # cdk deploy --all
 *   npm run deploy -- -c stage=prod -c account=123456789012 -c region=eu-west-1
 */
import { App } from 'aws-cdk-lib';
import { deploymentEnvironment, describeDeploymentEnvironment } from './deploymentEnvironment';
import { addNagChecks } from './nag';
import { PersonaDbStack } from './personaDbStack';
import { stackName, stageConfigFromContext } from './stageConfig';

const app = new App();
const config = stageConfigFromContext(app.node);
const target = deploymentEnvironment(app.node);

const stack = new PersonaDbStack(app, stackName(config.stage), {
  config,
  description: `persona-db (${config.stage}): DynamoDB personas, stream-synced Qdrant index, HTTP API`,
  tags: { project: 'persona-db', stage: config.stage },
  // -c account / -c region, else the CDK CLI's defaults (infra/deploymentEnvironment.ts).
  env: target.env,
});
// On stderr, which the CDK CLI shows even with --quiet (an Annotations info it does not).
process.stderr.write(`${stack.stackName}: ${describeDeploymentEnvironment(target)}\n`);

// cdk-nag AWS Solutions checks run on every synth; an unacknowledged finding fails it.
addNagChecks(app);

app.synth();

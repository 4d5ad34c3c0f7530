/**
 * CDK app entry (cdk.json: `npx tsx infra/app.ts`). One stack per invocation, for the stage given
 * with `-c stage=dev|prod` (default dev); see infra/stageConfig.ts for every context override.
 *
 *   npm run synth                      # dev, to cdk.out
 *   npm run synth -- -c stage=prod
 *   npm run deploy -- -c stage=prod    # cdk deploy --all
 */
import { App } from 'aws-cdk-lib';
import { addNagChecks } from './nag';
import { PersonaDbStack } from './personaDbStack';
import { stackName, stageConfigFromContext } from './stageConfig';

const app = new App();
const config = stageConfigFromContext(app.node);

new PersonaDbStack(app, stackName(config.stage), {
  config,
  description: `persona-db (${config.stage}): DynamoDB personas, stream-synced Qdrant index, HTTP API`,
  tags: { project: 'persona-db', stage: config.stage },
  // Account and region come from the CLI profile (CDK_DEFAULT_*); synth without credentials yields
  // an environment-agnostic template.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

// cdk-nag AWS Solutions checks run on every synth; an unacknowledged finding fails it.
addNagChecks(app);

app.synth();

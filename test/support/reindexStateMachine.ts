/**
 * The reindex state machine's ASL as the stack defines it (infra/reindexAtScale.ts), for tests that
 * check it or imitate it: built in a throwaway stack with inline stand-in functions (no bundling),
 * CloudFormation references rendered as `<ref>` strings.
 */
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { ReindexAtScale } from '../../infra/reindexAtScale';
import type { StageConfig } from '../../infra/stageConfig';
import type { MapStateSettings } from './stepFunctionsStandIn';

export type Asl = { StartAt: string; States: Record<string, Record<string, any>> };

/** A DefinitionString (a string or an Fn::Join of strings and references) as JSON, references as "<ref>". */
export function renderDefinition(definition: unknown): Asl {
  if (typeof definition === 'string') return JSON.parse(definition) as Asl;
  const [, parts] = (definition as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return JSON.parse(parts.map((part) => (typeof part === 'string' ? part : '<ref>')).join('')) as Asl;
}

export function reindexDefinition(config: StageConfig): Asl {
  const stack = new Stack(new App(), 'AslOnly');
  const table = new Table(stack, 'Table', { partitionKey: { name: 'id', type: AttributeType.STRING } });
  const construct = new ReindexAtScale(stack, 'ReindexAtScale', {
    config,
    table,
    grantQdrantSecretRead: (grantee) => new Secret(stack, 'Secret').grantRead(grantee),
    environment: {},
    qdrantEnvironment: {},
    removalPolicy: RemovalPolicy.DESTROY,
    createFunction: (spec) => new LambdaFunction(stack, spec.id, { code: Code.fromInline('export const handler = () => {}'), handler: 'index.handler', runtime: Runtime.NODEJS_22_X }),
  });
  return renderDefinition(stack.resolve((construct.stateMachine.node.defaultChild as CfnStateMachine).definitionString));
}

/** What the Step Functions stand-in needs of the Map state: its concurrency, failure tolerance and the child's Retry. */
export function mapStateSettings(asl: Asl): MapStateSettings & { chunkItems: number } {
  const map = asl.States.Backfill!;
  const child = map.ItemProcessor.States[map.ItemProcessor.StartAt];
  return { maxConcurrency: map.MaxConcurrency, toleratedFailurePercentage: map.ToleratedFailurePercentage ?? 0, retry: child.Retry, chunkItems: asl.States.PlanChunks!.Parameters.chunkItems };
}

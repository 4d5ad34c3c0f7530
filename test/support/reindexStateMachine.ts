/**
 * The reindex and import state machines' ASL as the stack defines them (infra/reindexAtScale.ts,
 * infra/importAtScale.ts), for tests that check them or imitate them: built in a throwaway stack
 * with inline stand-in functions (no bundling) and cdk.json's feature flags (the Map's ResultWriter
 * is rendered under one), CloudFormation references rendered as `<ref>` strings.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { CfnStateMachine, StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { PROJECT_ROOT } from '../../infra/bundling';
import { IMPORT_MAP_LABEL, ImportAtScale } from '../../infra/importAtScale';
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

/** Both state machines, built in one throwaway stack (the import stages in the reindex's bucket). */
export function stateMachineDefinitions(config: StageConfig): { reindex: Asl; import: Asl } {
  const { context } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const stack = new Stack(new App({ context }), 'AslOnly');
  const table = new Table(stack, 'Table', { partitionKey: { name: 'id', type: AttributeType.STRING } });
  const createFunction = (spec: { id: string }) =>
    new LambdaFunction(stack, spec.id, { code: Code.fromInline('export const handler = () => {}'), handler: 'index.handler', runtime: Runtime.NODEJS_22_X });
  const construct = new ReindexAtScale(stack, 'ReindexAtScale', {
    config,
    table,
    grantQdrantSecretRead: (grantee) => new Secret(stack, 'Secret').grantRead(grantee),
    environment: {},
    qdrantEnvironment: {},
    removalPolicy: RemovalPolicy.DESTROY,
    createFunction,
  });
  const load = new ImportAtScale(stack, 'ImportAtScale', { config, table, bucket: construct.bucket, environment: {}, removalPolicy: RemovalPolicy.DESTROY, createFunction });
  const asl = (machine: StateMachine) => renderDefinition(stack.resolve((machine.node.defaultChild as CfnStateMachine).definitionString));
  return { reindex: asl(construct.stateMachine), import: asl(load.stateMachine) };
}

export const reindexDefinition = (config: StageConfig): Asl => stateMachineDefinitions(config).reindex;
export const importDefinition = (config: StageConfig): Asl => stateMachineDefinitions(config).import;

/** What the Step Functions stand-in needs of the Map state: its concurrency, failure tolerance and the child's Retry. */
export function mapStateSettings(asl: Asl): MapStateSettings & { chunkItems: number } {
  const map = asl.States.Backfill!;
  const child = map.ItemProcessor.States[map.ItemProcessor.StartAt];
  return { maxConcurrency: map.MaxConcurrency, toleratedFailurePercentage: map.ToleratedFailurePercentage ?? 0, retry: child.Retry, chunkItems: asl.States.PlanChunks!.Parameters.chunkItems };
}

/** The same for the import's Distributed Map (WriteChunks): its concurrency, failure tolerance, the writer's Retry and where its ResultWriter writes. */
export function importMapStateSettings(asl: Asl): MapStateSettings & { resultsPrefix: string } {
  const map = asl.States[IMPORT_MAP_LABEL]!;
  const child = map.ItemProcessor.States[map.ItemProcessor.StartAt];
  return { maxConcurrency: map.MaxConcurrency, toleratedFailurePercentage: map.ToleratedFailurePercentage ?? 0, retry: child.Retry, resultsPrefix: map.ResultWriter.Parameters.Prefix };
}

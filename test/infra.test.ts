/**
 * The CDK stack, synthesized once per stage (dev, prod) in beforeAll with the same bundling as
 * `npm run synth`, into temporary cloud assemblies:
 * - template assertions for every property the stage config and the route table decide;
 * - the function assets on disk (sizes, no ML code in API functions, the ONNX runtime and model
 *   in embedding functions);
 * - cfn-lint on every template (errors fail, warnings are printed);
 * - cdk-nag AWS Solutions (v3, a CDK validation plugin): no unacknowledged finding, and no
 *   acknowledgement without a finding behind it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Validations, type Environment } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ML_PACKAGES, PROJECT_ROOT, resolveEmbeddingModel } from '../infra/bundling';
import { addNagChecks } from '../infra/nag';
import { INDEXER_LOGICAL_ID, passesStalledWindowHours, PersonaDbStack, RECONCILE_PASS_WINDOW_HOURS, RECONCILER_ENTRY, RECONCILER_LOGICAL_ID, RECONCILER_SERVICE } from '../infra/personaDbStack';
import { buildStageConfig, RESERVED_CONCURRENCY_FLOOR, stackName, stageConfigFromContext, stageDefaults, type Stage, type StageConfig } from '../infra/stageConfig';
import { deploymentEnvironment, describeDeploymentEnvironment } from '../infra/deploymentEnvironment';
import { FETCHED_MODELS_DIR, TEST_MODEL_HINT_DIR } from '../shared/embedding/config';
import { indexerEntry, routeMethods, routes, type RouteDefinition } from '../shared/routes';
import { indexerStreamSettings } from '../shared/streamSettings';
import { ACCESS_ROLES, ROLE_SCOPE } from '../infra/accessPolicies';
import { EXPECTED_ACCESS, expectAllowed, SCOPE_SETS } from './support/scopeMatrix';
import { BACKFILL_LOGICAL_ID, BACKFILL_SERVICE, PLAN_LOGICAL_ID, QDRANT_RETRY } from '../infra/reindexAtScale';
import { renderDefinition } from './support/reindexStateMachine';
import { jsonFilterPatternMatches } from './support/cloudWatchFilterPattern';
import { MINILM_MODEL_DIR, sharedReason } from './support/sharedAssets';

const execFileAsync = promisify(execFile);

type Resource = { Type: string; Properties?: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
type Resources = Record<string, Resource>;

const MB = 1024 * 1024;
const API_ASSET_LIMIT = 5 * MB;
const EMBEDDING_ASSET_LIMIT = 250 * MB;

/**
 * Routes with `embeds: true` may join the route table later; the dev synth adds one (backed by an
 * existing handler) so the generic handling of such routes is tested now.
 */
const probeEmbeddingRoute: RouteDefinition = {
  name: 'searchProbe',
  method: 'POST',
  path: '/personas/search-probe',
  entry: 'functions/api/getPersona.ts',
  embeds: true,
  readsIndex: true,
  writes: false,
  public: false,
  scope: 'personas:read',
  webAssets: false,
  tableActions: { personas: ['GetItem'] },
  signsCursors: false,
};

const tempRoot = mkdtempSync(path.join(tmpdir(), 'persona-infra-test-'));

/** The generated test model when present, else a stand-in with the files the stack checks for. */
function testModelDir(): string {
  const generated = path.join(PROJECT_ROOT, TEST_MODEL_HINT_DIR);
  if (existsSync(path.join(generated, 'config.json'))) return generated;
  return standInModelDir();
}

/** A stand-in for a real model (prod refuses the generated one): the files the stack checks for. */
function standInModelDir(): string {
  const dir = path.join(tempRoot, 'stand-in-model');
  if (existsSync(path.join(dir, 'config.json'))) return dir;
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ _name_or_path: 'stand-in', hidden_size: 8 }));
  writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
  writeFileSync(path.join(dir, 'onnx', 'model_quantized.onnx'), Buffer.alloc(64 * 1024));
  writeFileSync(path.join(dir, 'onnx', 'model.onnx'), Buffer.alloc(256 * 1024));
  return dir;
}

interface Synth {
  readonly config: StageConfig;
  readonly routes: readonly RouteDefinition[];
  readonly app: App;
  readonly stack: PersonaDbStack;
  readonly template: Template;
  readonly resources: Resources;
  readonly outdir: string;
  readonly templateFile: string;
}

interface SynthOptions {
  routes?: readonly RouteDefinition[];
  config?: StageConfig;
  context?: Record<string, unknown>;
  /** The stack's account and region (none: an environment-agnostic template, as without credentials). */
  env?: Environment;
  /**
   * false: no function is bundled (CDK's `aws:cdk:bundling-stacks` context, as `cdk synth
   * --exclusively` uses for the other stacks), for variants whose assertions are on the template
   * only: seconds instead of a minute of esbuild that blocks the test worker.
   */
  bundle?: boolean;
}

function synthesize(stage: Stage, options: SynthOptions = {}): Synth {
  const outdir = path.join(tempRoot, `cdk.out.${stage}.${Math.random().toString(36).slice(2, 8)}`);
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ outdir, context: { ...cdkJson.context, stage, ...(options.bundle === false ? { [BUNDLING_STACKS]: [] } : {}), ...options.context } });
  addNagChecks(app); // as infra/app.ts: an unacknowledged finding makes synth throw
  const config = options.config ?? buildStageConfig(stage, { embeddingModelDir: stage === 'prod' ? standInModelDir() : testModelDir() });
  const routeTable = options.routes ?? routes;
  const stack = new PersonaDbStack(app, stackName(stage), { config, routes: routeTable, ...(options.env ? { env: options.env } : {}) });
  app.synth();
  const template = Template.fromStack(stack);
  return {
    config,
    routes: routeTable,
    app,
    stack,
    template,
    resources: template.toJSON().Resources as Resources,
    outdir,
    templateFile: path.join(outdir, `${stack.artifactId}.template.json`),
  };
}

const synths = {} as Record<Stage, Synth>;

beforeAll(async () => {
  for (const entry of [...routes.map((route) => route.entry), indexerEntry, RECONCILER_ENTRY]) {
    expect(existsSync(path.join(PROJECT_ROOT, entry)), `handler ${entry} must exist to synth`).toBe(true);
  }
  // Each synth blocks the event loop (esbuild runs synchronously); yielding in between lets
  // vitest's worker report progress instead of timing out on a loaded machine.
  // A second lets the runner's pending progress calls get their replies before the next block:
  // a reply that waits behind a synth longer than its RPC timeout (60 s) is reported as an error.
  const yieldToEventLoop = () => new Promise((resolve) => setTimeout(resolve, 1_000));
  await yieldToEventLoop();
  synths.dev = synthesize('dev', { routes: [...routes, probeEmbeddingRoute] });
  await yieldToEventLoop();
  synths.prod = synthesize('prod');
  await yieldToEventLoop();
}, 300_000);

afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

/**
 * One access-log event as API Gateway writes it for the stage: the template's format with each
 * `$context.*` variable replaced by its value (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html;
 * a value that is not available is written `-`).
 */
function accessLogLine(synth: Synth): (values: { routeKey: string; status: string }) => string {
  const [[, stage]] = ofType(synth.resources, 'AWS::ApiGatewayV2::Stage') as [[string, Resource]];
  const format = stage.Properties!.AccessLogSettings.Format as string;
  return ({ routeKey, status }) => {
    const values: Record<string, string> = {
      '$context.requestId': 'JZ3sIjFvIAMEVdw=',
      '$context.identity.sourceIp': '203.0.113.10',
      '$context.requestTime': '05/Jan/2026:10:00:00 +0000',
      '$context.httpMethod': routeKey.split(' ')[0] === '$default' ? 'GET' : routeKey.split(' ')[0]!,
      '$context.routeKey': routeKey,
      '$context.path': '/personas/search',
      '$context.status': status,
      '$context.protocol': 'HTTP/1.1',
      '$context.responseLength': '112',
      '$context.responseLatency': '42',
      '$context.integrationLatency': '40',
      '$context.integrationErrorMessage': '-',
      '$context.authorizer.error': '-',
    };
    return format.replace(/\$context\.[A-Za-z.]+/g, (variable) => {
      if (!(variable in values)) throw new Error(`no sample value for ${variable}`);
      return values[variable]!;
    });
  };
}

// ---- template helpers ------------------------------------------------------------------------

/** The statements of one of the auth=iam managed policies (ReaderAccessPolicy, WriterAccessPolicy, AdminAccessPolicy). */
function managedPolicyStatements(synth: Synth, id: string): Array<Record<string, any>> {
  return synth.resources[logicalIdOf(synth, synth.stack.node.findChild(id))]!.Properties!.PolicyDocument.Statement as Array<Record<string, any>>;
}



/** IAM's matching of a request ARN against a policy resource: `*` is any run of characters, `?` one character. */
const iamPattern = (resource: string) => new RegExp('^' + resource.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');

/** A CloudFormation string with its references written `{Ref}` / `{Resource.Attribute}`. */
function renderIntrinsic(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, any>;
  if ('Ref' in node) return `{${node.Ref}}`;
  if ('Fn::GetAtt' in node) return `{${(node['Fn::GetAtt'] as string[]).join('.')}}`;
  if ('Fn::Join' in node) return (node['Fn::Join'][1] as unknown[]).map(renderIntrinsic).join(node['Fn::Join'][0] as string);
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

const ofType = (resources: Resources, type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);

/** Logical ids a CloudFormation value references (Ref / Fn::GetAtt, anywhere inside it). */
function refs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refs);
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (typeof object.Ref === 'string') return object.Ref.startsWith('AWS::') ? [] : [object.Ref];
    if (Array.isArray(object['Fn::GetAtt'])) return [String(object['Fn::GetAtt'][0])];
    return Object.values(object).flatMap(refs);
  }
  return [];
}

function logicalIdOf(synth: Synth, construct: IConstruct): string {
  const child = construct.node.defaultChild as unknown as { logicalId: string } | undefined;
  return synth.stack.resolve((child ?? (construct as unknown as { logicalId: string })).logicalId) as string;
}

/**
 * cdk-nag AwsSolutions on `stack`: no unacknowledged error, and every acknowledgement (with a
 * specific reason) hides at least one real finding, so none is left over from an old layout.
 */
function expectNagFindingsAllAcknowledged(stack: PersonaDbStack, label: string): void {
  const report = new AwsSolutionsChecks(undefined, { verbose: false }).validateScope(stack);
  const errors = report.violations.filter((violation) => violation.severity === 'error');
  expect(errors.map((violation) => `${violation.ruleName}: ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  for (const warning of report.violations) console.log(`[cdk-nag] ${label} warning ${warning.ruleName}`);

  // The same pack with acknowledgements ignored: what each acknowledgement hides.
  const raw = new AwsSolutionsChecks(undefined, { verbose: false });
  Object.defineProperty(raw, 'isAcknowledged', { value: () => false });
  const findings = raw.validateScope(stack).violations.flatMap((violation) =>
    violation.violatingResources.map((resource) => ({ rule: violation.ruleName, path: resource.constructPath })),
  );
  const acknowledgements = stack.node
    .findAll()
    .flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) => Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({ construct, id: id.replace(/^annotation::/i, ''), reason }))),
    )
    .filter((ack) => ack.id.startsWith('AwsSolutions-'));
  expect(acknowledgements.length).toBeGreaterThan(0);
  for (const ack of acknowledgements) {
    expect(ack.reason.length, `${ack.id} needs a specific reason`).toBeGreaterThan(60);
    const covered = findings.filter((finding) => finding.rule === ack.id && (finding.path === ack.construct.node.path || String(finding.path).startsWith(`${ack.construct.node.path}/`)));
    expect(covered.length, `${ack.id} on ${ack.construct.node.path} acknowledges nothing`).toBeGreaterThan(0);
  }
  console.log(`[cdk-nag] ${label}: ${findings.length} findings, all acknowledged: ${[...new Set(findings.map((finding) => finding.rule))].join(', ')}`);
}

interface Grant {
  readonly actions: string[];
  readonly resources: unknown[];
  readonly condition?: unknown;
}

/** The Allow statements of every inline policy attached to the role of function `fnId`. */
/** A function's grants; any IAM condition fails the test unless `withConditions` (the caller then checks them). */
function grantsOf(synth: Synth, fnId: string, withConditions = false): Grant[] {
  const roleId = refs(synth.resources[fnId]!.Properties!.Role)[0]!;
  const role = synth.resources[roleId]!;
  expect(role.Properties!.ManagedPolicyArns, `${fnId} role has no managed policies`).toBeUndefined();
  expect(role.Properties!.AssumeRolePolicyDocument.Statement).toEqual([
    expect.objectContaining({ Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } }),
  ]);
  return ofType(synth.resources, 'AWS::IAM::Policy')
    .filter(([, policy]) => refs(policy.Properties!.Roles).includes(roleId))
    .flatMap(([, policy]) => policy.Properties!.PolicyDocument.Statement as Record<string, unknown>[])
    .map((statement) => {
      expect(statement.Effect).toBe('Allow');
      if (!withConditions) expect(statement.Condition).toBeUndefined();
      const list = (value: unknown) => (Array.isArray(value) ? value : [value]);
      return { actions: list(statement.Action) as string[], resources: list(statement.Resource), ...(statement.Condition ? { condition: statement.Condition } : {}) };
    });
}

/** Every action with the logical ids (or literal "*") it is granted on. */
function actionMap(grants: Grant[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const grant of grants) {
    const targets = grant.resources.flatMap((resource) => (resource === '*' ? ['*'] : refs(resource)));
    for (const action of grant.actions) {
      const set = map.get(action) ?? new Set<string>();
      targets.forEach((target) => set.add(target));
      map.set(action, set);
    }
  }
  return map;
}

/** The role's actions belong to these services and no others. */
function expectOnlyServices(actions: Map<string, Set<string>>, services: string[], who: string): void {
  expect([...new Set([...actions.keys()].map((action) => action.split(':')[0]))].sort(), who).toEqual([...services].sort());
}


function env(synth: Synth, fnId: string): Record<string, unknown> {
  return synth.resources[fnId]!.Properties!.Environment.Variables as Record<string, unknown>;
}

function assetDir(synth: Synth, fnId: string): string {
  const key = synth.resources[fnId]!.Properties!.Code.S3Key as string;
  const dir = path.join(synth.outdir, `asset.${key.replace(/\.zip$/, '')}`);
  expect(existsSync(dir), `asset directory of ${fnId}`).toBe(true);
  return dir;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

const sizeOf = (dir: string) => filesUnder(dir).reduce((total, file) => total + statSync(file).size, 0);

const functionIds = (synth: Synth) => [...synth.routes.map((route) => route.name), INDEXER_LOGICAL_ID, RECONCILER_LOGICAL_ID, BACKFILL_LOGICAL_ID, PLAN_LOGICAL_ID];
const embeddingIds = (synth: Synth) => [...synth.routes.filter((route) => route.embeds).map((route) => route.name), INDEXER_LOGICAL_ID, RECONCILER_LOGICAL_ID, BACKFILL_LOGICAL_ID];
const plainApiIds = (synth: Synth) => synth.routes.filter((route) => !route.embeds).map((route) => route.name);
/** Route keys (`METHOD /path`) of the routes without an authorizer. */
const publicRouteKeys = (table: readonly RouteDefinition[]) => table.filter((route) => route.public).flatMap((route) => routeMethods(route).map((method) => `${method} ${route.path}`));
const webAssetIds = (synth: Synth) => synth.routes.filter((route) => route.webAssets).map((route) => route.name);
/** Functions that query Qdrant: they get its secret (similarPersonas does, without the model). */
const indexReaderIds = (synth: Synth) => [...synth.routes.filter((route) => route.readsIndex).map((route) => route.name), INDEXER_LOGICAL_ID, RECONCILER_LOGICAL_ID, BACKFILL_LOGICAL_ID];

// ---- stage config ----------------------------------------------------------------------------

describe('stage config', () => {
  it('reads the stage and overrides from CDK context', () => {
    const app = new App({
      context: { stage: 'prod', auth: 'jwt', jwtIssuer: 'https://issuer.example.com/', jwtAudience: 'persona-api, admin', corsOrigins: 'https://app.example.com', architecture: 'x86_64' },
    });
    const config = stageConfigFromContext(app.node);
    expect(config.stage).toBe('prod');
    expect(config.api.auth).toBe('jwt');
    expect(config.api.jwt).toEqual({ issuer: 'https://issuer.example.com/', audience: ['persona-api', 'admin'] });
    expect(config.api.cors?.allowOrigins).toEqual(['https://app.example.com']);
    expect(config.lambdaArchitecture).toBe('x86_64');
    expect(config.table).toEqual(stageDefaults.prod.table);
    expect(stageConfigFromContext(new App().node).stage).toBe('dev');
  });

  it('rejects an unknown stage, an incomplete JWT setup and a bad secret ARN', () => {
    expect(() => stageConfigFromContext(new App({ context: { stage: 'qa' } }).node)).toThrow(/Unknown stage "qa"/);
    expect(() => buildStageConfig('prod', { auth: 'jwt' })).toThrow(/jwtIssuer/);
    expect(() => buildStageConfig('dev', { auth: 'jwt', jwt: { issuer: 'https://x.example/', audience: [] } })).toThrow(/audience/);
    expect(() => buildStageConfig('dev', { qdrantSecretArn: 'qdrant' })).toThrow(/ARN/);
    expect(() => buildStageConfig('dev', { auth: 'basic' as never })).toThrow(/auth must be/);
  });

  it('reindex in AWS and the indexer stream: MaxConcurrency (1-10,000, Distributed Map\'s limit) and the parallelization factor (1-10) from context', () => {
    const config = stageConfigFromContext(new App({ context: { reindexMaxConcurrency: '1000', indexerParallelizationFactor: '4' } }).node);
    expect(config.reindexAtScale.maxConcurrency).toBe(1000);
    expect(config.indexerStream.parallelizationFactor).toBe(4);
    expect(() => buildStageConfig('dev', { reindexMaxConcurrency: 0 })).toThrow(/reindexMaxConcurrency must be a whole number from 1 to 10000/);
    expect(() => buildStageConfig('dev', { reindexMaxConcurrency: 20_000 })).toThrow(/reindexMaxConcurrency/);
    expect(() => buildStageConfig('dev', { indexerParallelizationFactor: 11 })).toThrow(/indexerParallelizationFactor must be a whole number from 1 to 10/);
    // The same memory as the indexer: the same embedding rate per child (the sizing table's premise).
    for (const stage of ['dev', 'prod'] as const) expect(stageDefaults[stage].functions.backfill.memoryMb).toBe(stageDefaults[stage].functions.indexer.memoryMb);
  });

  it('tenancy: single by default; claim (with its claim name) only with auth=jwt', () => {
    expect(buildStageConfig('dev').tenancy).toEqual({ mode: 'single', claim: 'tenant_id' });
    const jwt = { jwtIssuer: 'https://issuer.example.com/', jwtAudience: 'persona-api' };
    const config = stageConfigFromContext(new App({ context: { auth: 'jwt', ...jwt, tenancy: 'claim', tenantClaim: 'https://example.com/tenant' } }).node);
    expect(config.tenancy).toEqual({ mode: 'claim', claim: 'https://example.com/tenant' });
    expect(() => stageConfigFromContext(new App({ context: { tenancy: 'claim' } }).node)).toThrow(/tenancy=claim .* needs auth=jwt/);
    expect(() => buildStageConfig('prod', { tenancy: 'claim' })).toThrow(/needs auth=jwt/);
    expect(() => buildStageConfig('dev', { tenancy: 'rows' as never })).toThrow(/tenancy must be single or claim/);
    expect(() => buildStageConfig('dev', { auth: 'jwt', jwt: { issuer: 'https://x.example/', audience: ['a'] }, tenancy: 'claim', tenantClaim: 'has space' })).toThrow(/TENANT_CLAIM/);
  });

  it("CORS: dev's any-origin default only while the stage is open; a stage with auth names its origins (-c corsOrigins) or has none", () => {
    // The console and /docs call the API from its own origin and need no CORS; a wildcard on a
    // stage whose callers hold tokens or credentials would let any web page's script use them.
    const jwt = { issuer: 'https://issuer.example.com/', audience: ['persona-api'] };
    expect(buildStageConfig('dev').api.cors?.allowOrigins).toEqual(['*']);
    expect(buildStageConfig('dev', { auth: 'jwt', jwt }).api.cors).toBeUndefined();
    expect(buildStageConfig('dev', { auth: 'iam' }).api.cors).toBeUndefined();
    const named = buildStageConfig('dev', { auth: 'jwt', jwt, corsOrigins: ['https://app.example.com'] }).api.cors;
    expect(named).toEqual({ ...stageDefaults.dev.api.cors, allowOrigins: ['https://app.example.com'] });
    expect(buildStageConfig('prod').api.cors).toBeUndefined();
  });

  it('cdk.json sets every feature flag a new `cdk init` of the installed CDK CLI sets, with the same values', () => {
    const recommended = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules/aws-cdk/lib/init-templates/.recommended-feature-flags.json'), 'utf8')) as Record<string, unknown>;
    const { context } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    expect(Object.keys(recommended).length).toBeGreaterThan(50);
    for (const [flag, value] of Object.entries(recommended)) expect(context[flag], flag).toEqual(value);
  });

  it('the indexer\'s reserved concurrency: the stage default, a count, or none (-c indexerReservedConcurrency)', () => {
    const reserved = (context: Record<string, unknown>) => stageConfigFromContext(new App({ context: { stage: 'prod', ...context } }).node).functions.indexer.reservedConcurrency;
    expect(reserved({})).toBe(stageDefaults.prod.functions.indexer.reservedConcurrency);
    expect(reserved({ indexerReservedConcurrency: '25' })).toBe(25);
    // An account at a low concurrency quota (new accounts may start at 10) cannot reserve any.
    expect(reserved({ indexerReservedConcurrency: 'none' })).toBeUndefined();
    expect(stageConfigFromContext(new App({ context: { indexerReservedConcurrency: '3' } }).node).functions.indexer).toMatchObject({ reservedConcurrency: 3, memoryMb: stageDefaults.dev.functions.indexer.memoryMb });
    // 0 is a valid Lambda setting that throttles every invocation: the stream would stop being indexed.
    for (const bad of ['0', '-2', '2.5', 'ten']) expect(() => reserved({ indexerReservedConcurrency: bad }), bad).toThrow(/indexerReservedConcurrency must be a whole number of at least 1, or none/);
    expect(RESERVED_CONCURRENCY_FLOOR).toBe(100);
  });

  it('an imported Qdrant secret: a complete ARN, or a partial one said so, and its KMS key', () => {
    const complete = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:persona/qdrant-AbC123';
    const partial = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:persona/qdrant';
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const imported = (context: Record<string, unknown>) => stageConfigFromContext(new App({ context }).node).qdrant.importedSecret;
    expect(imported({})).toBeUndefined();
    expect(imported({ qdrantSecretArn: complete })).toEqual({ arn: complete, arnForm: 'complete' });
    expect(imported({ qdrantSecretPartialArn: partial, qdrantSecretKmsKeyArn: key })).toEqual({ arn: partial, arnForm: 'partial', kmsKeyArn: key });
    // A "complete" ARN without the random suffix is a partial one: the grants would lack -??????.
    expect(() => imported({ qdrantSecretArn: partial })).toThrow(/must be the complete ARN, ending in "-" and six random characters .*qdrantSecretPartialArn/);
    // A partial ARN whose name ends like a suffix is read by Secrets Manager as a complete one.
    expect(() => imported({ qdrantSecretPartialArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:qdrant-prod01' })).toThrow(
      /ends in "-" and six characters, which Secrets Manager takes for the random suffix .*-c qdrantSecretArn/,
    );
    expect(() => imported({ qdrantSecretArn: complete, qdrantSecretPartialArn: partial })).toThrow(/not both/);
    expect(() => imported({ qdrantSecretKmsKeyArn: key })).toThrow(/key of an imported secret/);
    expect(() => imported({ qdrantSecretArn: complete, qdrantSecretKmsKeyArn: 'alias/qdrant' })).toThrow(/KMS key ARN .*not an alias/);
    expect(() => imported({ qdrantSecretPartialArn: 'arn:aws:s3:::bucket' })).toThrow(/must be a Secrets Manager secret ARN/);
  });

  it('the target account and region: -c account / -c region, else the CDK CLI\'s CDK_DEFAULT_*, else none', () => {
    const target = (context: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => deploymentEnvironment(new App({ context }).node, env);
    expect(target({})).toEqual({ env: {}, accountSource: 'none', regionSource: 'none' });
    // What the CLI passes: its region wins over one the user exported, so context is how to pin it.
    expect(target({}, { CDK_DEFAULT_ACCOUNT: '123456789012', CDK_DEFAULT_REGION: 'us-east-1' })).toEqual({
      env: { account: '123456789012', region: 'us-east-1' },
      accountSource: 'CDK_DEFAULT_ACCOUNT',
      regionSource: 'CDK_DEFAULT_REGION',
    });
    const pinned = target({ account: '210987654321', region: 'eu-west-1' }, { CDK_DEFAULT_ACCOUNT: '123456789012', CDK_DEFAULT_REGION: 'us-east-1' });
    expect(pinned).toEqual({ env: { account: '210987654321', region: 'eu-west-1' }, accountSource: 'context', regionSource: 'context' });
    expect(describeDeploymentEnvironment(pinned)).toBe('Target: account 210987654321 (-c account), region eu-west-1 (-c region). Pin both with -c account=<id> -c region=<code>.');
    expect(describeDeploymentEnvironment(target({}, { CDK_DEFAULT_REGION: 'us-east-1' }))).toMatch(/account resolved by CloudFormation at deploy time, region us-east-1 \(CDK_DEFAULT_REGION, set by the CDK CLI .*us-east-1 when none names one\)/);
    expect(() => target({ account: '1234' })).toThrow(/12-digit/);
    expect(() => target({ region: 'Ireland' })).toThrow(/region code/);
    expect(target({ region: 'us-gov-west-1' }).env).toEqual({ region: 'us-gov-west-1' });
  });

  it('keeps prod safer than dev by default', () => {
    expect(stageDefaults.prod.functions.indexer.reservedConcurrency).toBeGreaterThan(0);
    expect(stageDefaults.prod.api.auth).not.toBe('none');
    expect(stageDefaults.prod.table).toEqual({ removal: 'retain', deletionProtection: true });
    expect(stageDefaults.dev.table).toEqual({ removal: 'destroy', deletionProtection: false });
    expect(stageDefaults.prod.logRetentionDays).toBeGreaterThan(stageDefaults.dev.logRetentionDays);
  });
});

// ---- per stage -------------------------------------------------------------------------------

describe.each(['dev', 'prod'] as const)('%s stack', (stage) => {
  const s = () => synths[stage];

  describe('DynamoDB', () => {
    it('persona table: id key, on demand, PITR, NEW_AND_OLD_IMAGES stream, stage removal and deletion protection', () => {
      const { template, config } = s();
      const prod = config.stage === 'prod';
      template.hasResource('AWS::DynamoDB::Table', {
        Properties: {
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          AttributeDefinitions: [
            { AttributeName: 'id', AttributeType: 'S' },
            { AttributeName: 'tenant_id', AttributeType: 'S' },
          ],
          // tenancy=claim lists a tenant's personas from its partition of this sparse index (shared/tableDesign.ts).
          GlobalSecondaryIndexes: [
            {
              IndexName: 'tenant-index',
              KeySchema: [
                { AttributeName: 'tenant_id', KeyType: 'HASH' },
                { AttributeName: 'id', KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'ALL' },
            },
          ],
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
          DeletionProtectionEnabled: prod,
        },
        DeletionPolicy: prod ? 'Retain' : 'Delete',
        UpdateReplacePolicy: prod ? 'Retain' : 'Delete',
      });
    });

    it('idempotency table: key `key`, TTL on expires_at, no stream', () => {
      const { template, config } = s();
      const prod = config.stage === 'prod';
      template.hasResource('AWS::DynamoDB::Table', {
        Properties: {
          KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
          TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
          StreamSpecification: Match.absent(),
          DeletionProtectionEnabled: prod,
        },
        DeletionPolicy: prod ? 'Retain' : 'Delete',
      });
      template.resourceCountIs('AWS::DynamoDB::Table', 2);
    });
  });

  describe('HTTP API', () => {
    // An HTTP API route key is one method and a path ("GET /pets"), HEAD being a method of its own;
    // the documentation maps no HEAD request to a GET route, so each GET entry gets a HEAD route to
    // the same function (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html).
    it('has exactly one route per route-table entry and method (GET with HEAD), each to its own function with payload format 2.0', () => {
      const { resources, routes: table } = s();
      const apiRoutes = ofType(resources, 'AWS::ApiGatewayV2::Route');
      const keysOf = (route: RouteDefinition) => (route.path === '$default' ? ['$default'] : routeMethods(route).map((method) => `${method} ${route.path}`));
      expect(apiRoutes.map(([, route]) => route.Properties!.RouteKey).sort()).toEqual(table.flatMap(keysOf).sort());
      expect(apiRoutes.map(([, route]) => route.Properties!.RouteKey)).toContain('HEAD /personas/{id}');
      for (const route of table) {
        for (const key of keysOf(route)) {
          const [, apiRoute] = apiRoutes.find(([, candidate]) => candidate.Properties!.RouteKey === key)!;
          const integration = resources[refs(apiRoute.Properties!.Target)[0]!]!;
          expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
          expect(refs(integration.Properties!.IntegrationUri)).toEqual([route.name]);
        }
        expect(resources[route.name]!.Type).toBe('AWS::Lambda::Function');
      }
      s().template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    });

    it('default stage: auto deploy, throttling from config, JSON access logs to its own log group', () => {
      const { template, resources, config } = s();
      template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
      const [[, stageResource]] = ofType(resources, 'AWS::ApiGatewayV2::Stage') as [[string, Resource]];
      expect(stageResource.Properties).toMatchObject({
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: config.api.throttle.rateLimit, ThrottlingBurstLimit: config.api.throttle.burstLimit },
      });
      const logGroup = resources[refs(stageResource.Properties!.AccessLogSettings.DestinationArn)[0]!]!;
      expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
      expect(logGroup.Properties!.RetentionInDays).toBe(config.logRetentionDays);
      const format = JSON.parse(stageResource.Properties!.AccessLogSettings.Format as string) as Record<string, string>;
      expect(format).toMatchObject({ requestId: '$context.requestId', status: '$context.status', routeKey: '$context.routeKey' });
    });

    it('authorisation follows the stage config (dev: none, prod: IAM), except the console\'s pages and scripts (no data)', () => {
      const { resources, config, routes } = s();
      const expected = { none: 'NONE', iam: 'AWS_IAM', jwt: 'JWT' }[config.api.auth];
      expect(config.api.auth).toBe(config.stage === 'prod' ? 'iam' : 'none');
      const publicKeys = publicRouteKeys(routes);
      expect(publicKeys.sort()).toEqual(['GET /assets/{file}', 'GET /console', 'GET /docs', 'HEAD /assets/{file}', 'HEAD /console', 'HEAD /docs']);
      for (const [, route] of ofType(resources, 'AWS::ApiGatewayV2::Route')) {
        const key = String(route.Properties!.RouteKey);
        expect(route.Properties!.AuthorizationType, key).toBe(publicKeys.includes(key) ? 'NONE' : expected);
      }
      s().template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    });

    it('auth=iam: the reader, writer and admin policies invoke exactly the routes their scope grants (outputs *PolicyArn)', () => {
      const { resources, config, routes } = s();
      const policies = ofType(resources, 'AWS::IAM::ManagedPolicy');
      if (config.api.auth !== 'iam') {
        expect(policies).toHaveLength(0);
        return;
      }
      const outputs = s().template.toJSON().Outputs as Record<string, { Value: { Ref: string } }>;
      const [[apiId]] = ofType(resources, 'AWS::ApiGatewayV2::Api') as [[string, Resource]];
      let checked = 0;
      for (const role of ACCESS_ROLES) {
        const output = outputs[`${role[0]!.toUpperCase()}${role.slice(1)}PolicyArn`];
        expect(output, `output for ${role}`).toBeDefined();
        const policy = resources[output!.Value.Ref]!;
        const statements = policy.Properties!.PolicyDocument.Statement as Array<{ Sid: string; Action: string | string[]; Resource: unknown }>;
        const invoke = statements.find((statement) => statement.Sid === 'InvokeRoutes')!;
        const patterns = ([] as unknown[]).concat(invoke.Resource).map(renderIntrinsic);
        const allows = (arn: string) => patterns.some((pattern) => iamPattern(pattern).test(arn));
        for (const route of routes.filter((candidate) => !candidate.public && candidate.path !== '$default' && EXPECTED_ACCESS[candidate.name])) {
          for (const method of routeMethods(route)) {
            const requestPath = route.path.replace(/\{\w+\}/g, '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0');
            const arn = `arn:{AWS::Partition}:execute-api:{AWS::Region}:{AWS::AccountId}:{${apiId}}/$default/${method}${requestPath}`;
            expect(allows(arn), `${role} ${method} ${route.path}`).toBe(expectAllowed(EXPECTED_ACCESS[route.name]!, [ROLE_SCOPE[role]]));
            checked++;
          }
        }
        // Unknown paths and other stages are in no policy.
        expect(allows(`arn:{AWS::Partition}:execute-api:{AWS::Region}:{AWS::AccountId}:{${apiId}}/$default/GET/secrets`)).toBe(false);
        expect(allows(`arn:{AWS::Partition}:execute-api:{AWS::Region}:{AWS::AccountId}:{${apiId}}/other/GET/personas`)).toBe(false);
        const otherActions = statements.filter((statement) => statement.Sid !== 'InvokeRoutes').flatMap((statement) => ([] as string[]).concat(statement.Action));
        if (role === 'admin') {
          expect(otherActions).toEqual(expect.arrayContaining(['dynamodb:Scan', 'dynamodb:GetRecords', 'secretsmanager:GetSecretValue', 'sqs:ReceiveMessage']));
          // `personas reconcile` takes the reconciler's lease: a put and a delete of the lease items only.
          expect(statements.find((statement) => statement.Sid === 'ReconcileLease')).toMatchObject({
            Action: ['dynamodb:DeleteItem', 'dynamodb:PutItem'], // test/reconcileLease.test.ts records the CLI's calls
            Resource: { 'Fn::GetAtt': [logicalIdOf(s(), s().stack.idempotencyTable), 'Arn'] },
            Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['reconciler-lease#*'] } },
          });
        }
        else expect(otherActions).toEqual([]);
      }
      console.log(`[iam policies] ${checked} role × route-method decisions checked`);
    });

    it('CORS is on in dev (preflight for every route method) and off in prod', () => {
      const { template, config } = s();
      if (config.stage === 'dev') {
        const [[, api]] = ofType(s().resources, 'AWS::ApiGatewayV2::Api') as [[string, Resource]];
        const cors = api.Properties!.CorsConfiguration as Record<string, string[]>;
        expect(cors.AllowOrigins).toEqual(['*']);
        expect([...cors.AllowMethods!].sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
        expect(cors.AllowHeaders).toEqual(expect.arrayContaining(['content-type', 'idempotency-key', 'if-match']));
        expect(cors.ExposeHeaders).toEqual(expect.arrayContaining(['etag', 'location', 'retry-after', 'idempotent-replayed']));
      } else {
        template.hasResourceProperties('AWS::ApiGatewayV2::Api', { CorsConfiguration: Match.absent() });
      }
    });
  });

  describe('Lambda functions', () => {
    it('one nodejs22.x arm64 ESM function per route plus the indexer, the reconciler and the reindex\'s backfill and plan, with its own log group and retention', () => {
      const { resources, config } = s();
      const functions = ofType(resources, 'AWS::Lambda::Function');
      expect(functions.map(([id]) => id).sort()).toEqual(functionIds(s()).sort());
      for (const [id, fn] of functions) {
        expect(fn.Properties, id).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' });
        const logGroup = resources[refs(fn.Properties!.LoggingConfig.LogGroup)[0]!]!;
        expect(logGroup.Properties!.RetentionInDays, id).toBe(config.logRetentionDays);
        expect(logGroup.DeletionPolicy).toBe(config.stage === 'prod' ? 'Retain' : 'Delete');
      }
      expect(ofType(resources, 'AWS::Logs::LogGroup')).toHaveLength(functions.length + 2); // + API access logs, the reindex state machine's
    });

    it('memory and timeout come from the stage config', () => {
      const { resources, config, routes: table } = s();
      for (const route of table) {
        const sizing = route.embeds ? config.functions.embeddingApi : config.functions.api;
        expect(resources[route.name]!.Properties, route.name).toMatchObject({ MemorySize: sizing.memoryMb, Timeout: sizing.timeoutSeconds });
      }
      expect(resources[INDEXER_LOGICAL_ID]!.Properties).toMatchObject({
        MemorySize: config.functions.indexer.memoryMb,
        Timeout: config.functions.indexer.timeoutSeconds,
      });
      expect(resources[RECONCILER_LOGICAL_ID]!.Properties).toMatchObject({
        MemorySize: config.functions.reconciler.memoryMb,
        Timeout: config.functions.reconciler.timeoutSeconds,
      });
    });

    it('environment: table names, Powertools, source maps; Qdrant only as a secret ARN and only where it is used', () => {
      const synth = s();
      const tableId = logicalIdOf(synth, synth.stack.table);
      const idempotencyId = logicalIdOf(synth, synth.stack.idempotencyTable);
      const secretRef = synth.stack.resolve(synth.stack.qdrantSecret.secretArn);
      for (const id of functionIds(synth)) {
        const variables = env(synth, id);
        expect(variables, id).toMatchObject({
          NODE_OPTIONS: '--enable-source-maps',
          TABLE_NAME: { Ref: tableId },
          POWERTOOLS_SERVICE_NAME: { [INDEXER_LOGICAL_ID]: 'persona-db-indexer', [RECONCILER_LOGICAL_ID]: RECONCILER_SERVICE, [BACKFILL_LOGICAL_ID]: BACKFILL_SERVICE, [PLAN_LOGICAL_ID]: BACKFILL_SERVICE }[id] ?? 'persona-db-api',
          POWERTOOLS_METRICS_NAMESPACE: 'PersonaDb',
          POWERTOOLS_LOG_LEVEL: synth.config.logLevel,
          STAGE: synth.config.stage,
        });
        if (indexReaderIds(synth).includes(id)) {
          expect(variables, id).toMatchObject({ QDRANT_SECRET_ARN: secretRef, QDRANT_COLLECTION: synth.config.qdrant.collection });
        } else {
          for (const name of ['QDRANT_SECRET_ARN', 'QDRANT_COLLECTION']) expect(variables[name], `${id} ${name}`).toBeUndefined();
        }
        if (embeddingIds(synth).includes(id)) {
          expect(variables, id).toMatchObject({ EMBEDDING_MODEL_DIR: '/var/task/model', EMBEDDING_ALLOW_REMOTE: 'false', EMBEDDING_DTYPE: 'q8' });
          expect(typeof variables.EMBEDDING_MODEL_ID).toBe('string');
          // One intra-op thread per whole vCPU of the share (1,769 MB each): 1 thread at the default 2,048 MB.
          const memoryMb = synth.resources[id]!.Properties!.MemorySize as number;
          expect(variables.EMBEDDING_THREADS, id).toBe(String(Math.max(1, Math.floor(memoryMb / 1769))));
        } else {
          for (const name of ['EMBEDDING_MODEL_DIR', 'EMBEDDING_MODEL_ID']) expect(variables[name], `${id} ${name}`).toBeUndefined();
        }
        const route = synth.routes.find((candidate) => candidate.name === id);
        // Routes with Idempotency-Key records, and the reconciler (its checkpoint).
        const usesIdempotencyTable = !!route?.tableActions.idempotency || id === RECONCILER_LOGICAL_ID;
        expect(variables.IDEMPOTENCY_TABLE_NAME, id).toEqual(usesIdempotencyTable ? { Ref: idempotencyId } : undefined);
        // The cursor key is never in the environment (GetFunctionConfiguration would show it): only
        // the ARN of its secret, and only where cursors are signed.
        expect(variables.CURSOR_SIGNING_KEY, id).toBeUndefined();
        expect(JSON.stringify(variables), id).not.toMatch(/resolve:secretsmanager/);
        expect(variables.CURSOR_SIGNING_KEY_SECRET_ARN, id).toEqual(route?.signsCursors ? synth.stack.resolve(synth.stack.cursorSigningKey.secretArn) : undefined);
        // The Qdrant secret is referenced by ARN only, never resolved into the environment.
        const others = Object.entries(variables).filter(([name]) => name !== 'QDRANT_SECRET_ARN');
        expect(JSON.stringify(others), id).not.toContain(JSON.stringify(secretRef));
        expect(Object.keys(variables).filter((name) => /QDRANT_(URL|API_KEY)/.test(name)), id).toEqual([]);
      }
    });
  });

  describe('least-privilege IAM', () => {
    it('each API function gets exactly the DynamoDB actions its route declares, each on its own table (derived from shared/routes.ts)', () => {
      const synth = s();
      const tableIds = { personas: logicalIdOf(synth, synth.stack.table), idempotency: logicalIdOf(synth, synth.stack.idempotencyTable) };
      for (const route of synth.routes) {
        const actions = actionMap(grantsOf(synth, route.name));
        const expected = new Map<string, string[]>();
        for (const [table, tableActions] of Object.entries(route.tableActions) as [keyof typeof tableIds, string[]][]) {
          for (const action of tableActions) expected.set(`dynamodb:${action}`, [...(expected.get(`dynamodb:${action}`) ?? []), tableIds[table]].sort());
        }
        const granted = new Map([...actions].filter(([action]) => action.startsWith('dynamodb:')).map(([action, targets]) => [action, [...targets].sort()]));
        expect(Object.fromEntries(granted), route.name).toEqual(Object.fromEntries(expected));
        const services = ['logs', 'xray', ...(expected.size ? ['dynamodb'] : []), ...(route.readsIndex || route.signsCursors ? ['secretsmanager'] : [])];
        expectOnlyServices(actions, services, route.name);
      }
      // A Query only on the tenant index, only for the list; no role gets the table's other indexes (`index/*`).
      for (const id of functionIds(synth)) {
        // The reconciler's one condition (LeadingKeys on the idempotency table) is checked in its own test.
        for (const grant of grantsOf(synth, id, id === RECONCILER_LOGICAL_ID)) {
          const resources = JSON.stringify(synth.stack.resolve(grant.resources));
          expect(resources, id).not.toContain('/index/*');
          if (grant.actions.includes('dynamodb:Query')) expect([id, resources]).toEqual(['listPersonas', expect.stringMatching(/"\/index\/tenant-index"\]/)]);
        }
      }
      // The write routes never get Scan; nothing gets administrative or stream actions.
      for (const route of synth.routes.filter((candidate) => candidate.writes)) expect(actionMap(grantsOf(synth, route.name)).has('dynamodb:Scan'), route.name).toBe(false);
    });

    it('every function writes only to its own log group; only index readers read the Qdrant secret, only the list function the cursor key', () => {
      const synth = s();
      const secretId = refs(synth.stack.resolve(synth.stack.qdrantSecret.secretArn))[0]!;
      const cursorKeyId = logicalIdOf(synth, synth.stack.cursorSigningKey);
      for (const id of functionIds(synth)) {
        const actions = actionMap(grantsOf(synth, id, id === RECONCILER_LOGICAL_ID));
        const ownLogs = refs(synth.resources[id]!.Properties!.LoggingConfig.LogGroup);
        const logActions = [...actions.keys()].filter((action) => action.startsWith('logs:'));
        expect(logActions.sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
        for (const action of logActions) expect([...actions.get(action)!], id).toEqual(ownLogs);
        const secretActions = [...actions.keys()].filter((action) => action.startsWith('secretsmanager:'));
        const route = synth.routes.find((candidate) => candidate.name === id);
        const secrets = [...(indexReaderIds(synth).includes(id) ? [secretId] : []), ...(route?.signsCursors ? [cursorKeyId] : [])].sort();
        if (secrets.length) {
          expect(secretActions.sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
          for (const action of secretActions) expect([...actions.get(action)!].sort(), id).toEqual(secrets);
        } else {
          expect(secretActions, id).toEqual([]);
        }
        // X-Ray's write actions have no resource-level permissions: "*" only.
        const xray = [...actions.keys()].filter((action) => action.startsWith('xray:'));
        expect(xray.sort(), id).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
        for (const action of xray) expect([...actions.get(action)!]).toEqual(['*']);
      }
    });

    it('indexer: stream read, BatchGetItem on the table, the Qdrant secret, send to the on-failure queue, its logs', () => {
      const synth = s();
      const actions = actionMap(grantsOf(synth, INDEXER_LOGICAL_ID));
      const tableId = logicalIdOf(synth, synth.stack.table);
      const queueId = logicalIdOf(synth, synth.stack.failureQueue);
      expectOnlyServices(actions, ['dynamodb', 'logs', 'secretsmanager', 'sqs', 'xray'], 'indexer');
      const dynamo = Object.fromEntries([...actions].filter(([action]) => action.startsWith('dynamodb:')).map(([action, targets]) => [action, [...targets]]));
      expect(dynamo).toEqual({
        'dynamodb:ListStreams': ['*'],
        'dynamodb:BatchGetItem': [tableId],
        'dynamodb:DescribeStream': [tableId],
        'dynamodb:GetRecords': [tableId],
        'dynamodb:GetShardIterator': [tableId],
      });
      // The stream actions are on the stream ARN, not the table.
      const streamGrant = grantsOf(synth, INDEXER_LOGICAL_ID).find((grant) => grant.actions.includes('dynamodb:GetRecords'))!;
      expect(streamGrant.resources).toEqual([{ 'Fn::GetAtt': [tableId, 'StreamArn'] }]);
      const sqs = [...actions.keys()].filter((action) => action.startsWith('sqs:'));
      expect(sqs.sort()).toEqual(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
      for (const action of sqs) expect([...actions.get(action)!]).toEqual([queueId]);
    });
  });

  describe('reconciler', () => {
    it('least privilege: Scan and BatchGetItem on the persona table (no writes, no stream), its checkpoint and lease items in the idempotency table, the Qdrant secret, its logs', () => {
      const synth = s();
      const grants = grantsOf(synth, RECONCILER_LOGICAL_ID, true);
      const actions = actionMap(grants);
      const tableId = logicalIdOf(synth, synth.stack.table);
      const idempotencyId = logicalIdOf(synth, synth.stack.idempotencyTable);
      expectOnlyServices(actions, ['dynamodb', 'logs', 'secretsmanager', 'xray'], 'reconciler');
      const dynamo = Object.fromEntries([...actions].filter(([action]) => action.startsWith('dynamodb:')).map(([action, targets]) => [action, [...targets]]));
      // The checkpoint (get, save, clear) that lets a run stopped before the 15-minute limit resume,
      // and the lease (conditional put, conditional delete) that keeps other runs out:
      // test/reconcileResume.test.ts records these calls.
      expect(dynamo).toEqual({
        'dynamodb:Scan': [tableId],
        'dynamodb:BatchGetItem': [tableId],
        'dynamodb:GetItem': [idempotencyId],
        'dynamodb:PutItem': [idempotencyId],
        'dynamodb:DeleteItem': [idempotencyId],
      });
      // On the idempotency table only its own items: every key a request touches must match
      // (ForAllValues + dynamodb:LeadingKeys, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html),
      // so the API's Idempotency-Key records (`<route>#<hash>`) are out of reach. No condition elsewhere.
      for (const grant of grants) {
        const onIdempotencyTable = grant.resources.some((resource) => refs(resource).includes(idempotencyId));
        expect(grant.condition, grant.actions.join()).toEqual(
          onIdempotencyTable ? { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['reconciler-checkpoint#*', 'reconciler-lease#*'] } } : undefined,
        );
      }
      expect(env(synth, RECONCILER_LOGICAL_ID)).toMatchObject({
        QDRANT_COLLECTION: synth.config.qdrant.collection,
        POWERTOOLS_SERVICE_NAME: RECONCILER_SERVICE,
        IDEMPOTENCY_TABLE_NAME: { Ref: idempotencyId },
      });
      // What `personas reconcile --aws` needs to take the same lease (IDEMPOTENCY_TABLE_NAME).
      expect(synth.template.findOutputs('IdempotencyTableName')).toEqual({ IdempotencyTableName: expect.objectContaining({ Value: { Ref: idempotencyId } }) });
    });

    it('runs on an EventBridge schedule from the stage config, without retries (the next run retries)', () => {
      const synth = s();
      const rules = ofType(synth.resources, 'AWS::Events::Rule');
      expect(rules).toHaveLength(1);
      const [[, rule]] = rules as [[string, Resource]];
      expect(rule.Properties).toMatchObject({ ScheduleExpression: Schedule.rate(Duration.minutes(synth.config.reconciler.intervalMinutes)).expressionString, State: 'ENABLED' });
      expect(rule.Properties!.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [RECONCILER_LOGICAL_ID, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })]);
      synth.template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [RECONCILER_LOGICAL_ID, 'Arn'] },
        Principal: 'events.amazonaws.com',
      });
    });

    it('a failed pass is not retried by Lambda either: asynchronous retries 0 (the lease, checkpoint and next schedule carry it on)', () => {
      // EventBridge invokes Lambda asynchronously, and Lambda retries a failed asynchronous invocation
      // twice unless the function's event invoke config says otherwise
      // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html); the rule's
      // RetryPolicy above covers only EventBridge's delivery.
      const configs = ofType(s().resources, 'AWS::Lambda::EventInvokeConfig');
      expect(configs.map(([, config]) => config.Properties)).toEqual([{ FunctionName: { Ref: RECONCILER_LOGICAL_ID }, Qualifier: '$LATEST', MaximumRetryAttempts: 0 }]);
    });
  });

  describe('reindex in AWS (infra/reindexAtScale.ts)', () => {
    const stateMachine = (synth: Synth) => {
      const [[id, resource]] = ofType(synth.resources, 'AWS::StepFunctions::StateMachine') as [[string, Resource]];
      return { id, resource, asl: renderDefinition(resource.Properties!.DefinitionString) };
    };

    it('the ASL: export, wait and describe until COMPLETED, plan, then a Distributed Map over the JSONL work list with the stage\'s MaxConcurrency, QdrantUnavailable retried with backoff, no failure tolerated, results to the bucket', () => {
      const synth = s();
      const { asl } = stateMachine(synth);
      const states = asl.States;
      expect(asl.StartAt).toBe('StartExport');
      expect(Object.fromEntries(Object.entries(states).map(([name, state]) => [name, state.Type]))).toEqual({
        StartExport: 'Task',
        WaitForExport: 'Wait',
        DescribeExport: 'Task',
        'ExportFinished?': 'Choice',
        ExportFailed: 'Fail',
        PlanChunks: 'Task',
        Backfill: 'Map',
        Backfilled: 'Succeed',
      });
      // ExportTableToPointInTime (DynamoDB API Reference): DYNAMODB_JSON, full export, SSE-S3; the
      // ClientToken makes a retried request start no second export ("idempotent ... for 8 hours").
      expect(states.StartExport).toMatchObject({
        Resource: 'arn:<ref>:states:::aws-sdk:dynamodb:exportTableToPointInTime',
        Parameters: { ExportFormat: 'DYNAMODB_JSON', ExportType: 'FULL_EXPORT', S3SseAlgorithm: 'AES256', 'ClientToken.$': '$$.Execution.Name', 'S3Prefix.$': "States.Format('reindex/{}', $.collection)" },
        Next: 'WaitForExport',
      });
      // DescribeExport's ExportStatus: IN_PROGRESS | COMPLETED | FAILED.
      expect(states['ExportFinished?']!.Choices).toEqual([
        { Variable: '$.exportStatus.status', StringEquals: 'COMPLETED', Next: 'PlanChunks' },
        { Variable: '$.exportStatus.status', StringEquals: 'IN_PROGRESS', Next: 'WaitForExport' },
      ]);
      expect(states['ExportFinished?']!.Default).toBe('ExportFailed');
      expect(states.PlanChunks!.Parameters).toMatchObject({ 'manifestSummaryKey.$': '$.exportStatus.description.ExportManifest', chunkItems: synth.config.reindexAtScale.chunkItems });
      const map = states.Backfill!;
      // Distributed Map (Step Functions Developer Guide): ItemReader JSONL from S3, ItemSelector with the
      // item as $$.Map.Item.Value, MaxConcurrency at most 10,000, ToleratedFailurePercentage default 0.
      expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
      expect(map.ItemReader).toEqual({ Resource: 'arn:<ref>:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { Bucket: '<ref>', 'Key.$': '$.plan.workListKey' } });
      expect(map.ItemSelector).toEqual({ 'collection.$': '$.collection', bucket: '<ref>', 'chunk.$': '$$.Map.Item.Value' });
      expect(map.MaxConcurrency).toBe(synth.config.reindexAtScale.maxConcurrency);
      expect(map.ToleratedFailurePercentage ?? 0).toBe(0);
      expect(map.ToleratedFailureCount ?? 0).toBe(0);
      expect(map.ResultWriter).toEqual({ Resource: 'arn:<ref>:states:::s3:putObject', Parameters: { Bucket: '<ref>', Prefix: 'reindex/results' } });
      const child = map.ItemProcessor.States[map.ItemProcessor.StartAt];
      expect(child).toMatchObject({ Type: 'Task', Resource: '<ref>', End: true });
      expect(child.Retry).toContainEqual({
        ErrorEquals: ['QdrantUnavailable'],
        IntervalSeconds: QDRANT_RETRY.interval.toSeconds(),
        MaxAttempts: QDRANT_RETRY.maxAttempts,
        BackoffRate: QDRANT_RETRY.backoffRate,
        MaxDelaySeconds: QDRANT_RETRY.maxDelay.toSeconds(),
        JitterStrategy: 'FULL',
      });
      // Lambda's own transient errors are retried too; nothing else (BackfillTargetRefused fails the Map Run).
      expect(child.Retry.flatMap((entry: { ErrorEquals: string[] }) => entry.ErrorEquals).sort()).toEqual(
        ['Lambda.AWSLambdaException', 'Lambda.ClientExecutionTimeoutException', 'Lambda.SdkClientException', 'Lambda.ServiceException', 'QdrantUnavailable'].sort(),
      );
      expect(synth.template.findOutputs('ReindexStateMachineArn')).toEqual({ ReindexStateMachineArn: expect.anything() });
    });

    it('least privilege: the backfill reads the export\'s data files and the Qdrant secret; the plan reads and writes under reindex/; neither touches the table', () => {
      const synth = s();
      const bucketId = logicalIdOf(synth, synth.stack.reindexAtScale.bucket);
      const backfill = actionMap(grantsOf(synth, BACKFILL_LOGICAL_ID));
      expectOnlyServices(backfill, ['logs', 's3', 'secretsmanager', 'xray'], 'backfill');
      expect([...backfill.keys()].filter((action) => action.startsWith('s3:'))).toEqual(['s3:GetObject']);
      const dataGrant = grantsOf(synth, BACKFILL_LOGICAL_ID).find((grant) => grant.actions.includes('s3:GetObject'))!;
      expect(dataGrant.resources.map(renderIntrinsic)).toEqual([`{${bucketId}.Arn}/reindex/*/AWSDynamoDB/*/data/*`]);
      const plan = actionMap(grantsOf(synth, PLAN_LOGICAL_ID));
      expectOnlyServices(plan, ['logs', 's3', 'xray'], 'plan');
      expect([...plan.keys()].filter((action) => action.startsWith('s3:')).sort()).toEqual(['s3:GetObject', 's3:PutObject']);
      expect(env(synth, BACKFILL_LOGICAL_ID)).toMatchObject({ QDRANT_COLLECTION: synth.config.qdrant.collection, EMBEDDING_MODEL_DIR: '/var/task/model' });
      expect(synth.resources[BACKFILL_LOGICAL_ID]!.Properties!.MemorySize).toBe(synth.config.functions.backfill.memoryMb);
    });

    it('the state machine\'s role: the export of this table, its exports, the two functions, its bucket, its own child executions; logs and X-Ray', () => {
      const synth = s();
      const { resource } = stateMachine(synth);
      const roleId = refs(resource.Properties!.RoleArn)[0]!;
      const statements = ofType(synth.resources, 'AWS::IAM::Policy')
        .filter(([, policy]) => refs(policy.Properties!.Roles).includes(roleId))
        .flatMap(([, policy]) => policy.Properties!.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>);
      const granted = new Map<string, string[]>();
      for (const statement of statements) {
        // Resources that are not a plain reference (the state machine's own name, split from its ARN) as JSON.
        const render = (value: unknown) => (value === '*' ? '*' : JSON.stringify(value).includes('Fn::Select') ? JSON.stringify(value) : renderIntrinsic(value));
        for (const action of [statement.Action].flat()) granted.set(action, [...(granted.get(action) ?? []), ...[statement.Resource].flat().map(render)]);
      }
      const tableId = logicalIdOf(synth, synth.stack.table);
      expect(granted.get('dynamodb:ExportTableToPointInTime')).toEqual([`{${tableId}.Arn}`]);
      expect(granted.get('dynamodb:DescribeExport')).toEqual([`{${tableId}.Arn}/export/*`]);
      expect([...granted.keys()].filter((action) => action.startsWith('dynamodb:')).sort()).toEqual(['dynamodb:DescribeExport', 'dynamodb:ExportTableToPointInTime']);
      expect(new Set(granted.get('lambda:InvokeFunction')!.map((arn) => arn.replace(/:\*$/, '')))).toEqual(new Set([`{${BACKFILL_LOGICAL_ID}.Arn}`, `{${PLAN_LOGICAL_ID}.Arn}`]));
      expect([...new Set([...granted.keys()].map((action) => action.split(':')[0]))].sort()).toEqual(['dynamodb', 'lambda', 'logs', 's3', 'states', 'xray']);
      expect(granted.get('states:StartExecution')).toBeDefined();
    });

    it('the export bucket: SSE-S3, no public access, TLS only, objects expire after the stage\'s days', () => {
      const synth = s();
      const bucketId = logicalIdOf(synth, synth.stack.reindexAtScale.bucket);
      expect(synth.resources[bucketId]!.Properties).toMatchObject({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: synth.config.reindexAtScale.exportRetentionDays, Status: 'Enabled' })] },
      });
      synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    });
  });

  describe('indexer event source', () => {
    it('DynamoDB stream mapping uses exactly shared/streamSettings.ts, with the SQS on-failure destination', () => {
      const synth = s();
      const settings = indexerStreamSettings;
      synth.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
      synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: INDEXER_LOGICAL_ID },
        EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(synth, synth.stack.table), 'StreamArn'] },
        StartingPosition: settings.startingPosition,
        BatchSize: settings.batchSize,
        MaximumBatchingWindowInSeconds: settings.maxBatchingWindowSeconds,
        BisectBatchOnFunctionError: settings.bisectBatchOnError,
        MaximumRetryAttempts: settings.retryAttempts,
        MaximumRecordAgeInSeconds: settings.maxRecordAgeSeconds,
        FunctionResponseTypes: settings.reportBatchItemFailures ? ['ReportBatchItemFailures'] : Match.absent(),
        ParallelizationFactor: synth.stack.config.indexerStream.parallelizationFactor,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalIdOf(synth, synth.stack.failureQueue), 'Arn'] } } },
      });
    });

    it('on-failure queue is encrypted and refuses non-TLS requests', () => {
      const synth = s();
      const queueId = logicalIdOf(synth, synth.stack.failureQueue);
      synth.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
      synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Principal: { AWS: '*' } }),
          ]),
        },
      });
    });
  });

  describe('secrets', () => {
    it('the stack creates the Qdrant secret (generated apiKey, url placeholder) and the cursor signing key', () => {
      const synth = s();
      const secrets = ofType(synth.resources, 'AWS::SecretsManager::Secret');
      expect(secrets).toHaveLength(2);
      const qdrant = synth.resources[logicalIdOf(synth, synth.stack.qdrantSecret)]!;
      expect(qdrant.Properties!.GenerateSecretString).toMatchObject({ GenerateStringKey: 'apiKey', SecretStringTemplate: JSON.stringify({ url: synth.config.qdrant.initialUrl }) });
      expect(qdrant.Properties!.SecretString).toBeUndefined();
      expect(qdrant.DeletionPolicy).toBe(synth.config.stage === 'prod' ? 'Retain' : 'Delete');
    });
  });

  describe('alarms', () => {
    it('iterator age, failure queue depth, and errors and throttles of every function, all to the encrypted SNS topic', () => {
      const synth = s();
      const topicId = logicalIdOf(synth, synth.stack.alarmTopic);
      const alarms = ofType(synth.resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
      for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
      const find = (metric: string, dimension: unknown) =>
        alarms.filter((alarm) => alarm.MetricName === metric && JSON.stringify(alarm.Dimensions).includes(JSON.stringify(dimension)));
      expect(find('IteratorAge', { Ref: INDEXER_LOGICAL_ID })).toEqual([
        expect.objectContaining({ Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: synth.config.alarms.iteratorAgeMs }),
      ]);
      expect(find('ApproximateNumberOfMessagesVisible', { 'Fn::GetAtt': [logicalIdOf(synth, synth.stack.failureQueue), 'QueueName'] })).toEqual([
        expect.objectContaining({ Namespace: 'AWS/SQS', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }),
      ]);
      for (const id of functionIds(synth)) {
        expect(find('Errors', { Ref: id }), id).toHaveLength(1);
        expect(find('Throttles', { Ref: id }), id).toHaveLength(1);
      }
      expect(find('DriftRemaining', { Name: 'service', Value: RECONCILER_SERVICE })).toEqual([
        expect.objectContaining({ Namespace: 'PersonaDb', Statistic: 'Maximum', Threshold: 1, Period: synth.config.reconciler.intervalMinutes * 60 }),
      ]);
      expect(alarms).toHaveLength(8 + 2 * functionIds(synth).length);
      synth.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
      synth.template.hasResourceProperties('AWS::KMS::Key', {
        EnableKeyRotation: true,
        KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' } })]) },
      });
    });
  });

  describe('reconcile passes alarm', () => {
    it('alarms when no reconcile pass completed for a day: ReconcilePassesCompleted (the drift metrics\' namespace and dimension) summed per hour, below 1 in all 24 hours, missing data breaching', () => {
      const synth = s();
      const passes = ofType(synth.resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!).filter((alarm) => alarm.MetricName === 'ReconcilePassesCompleted');
      expect(passes).toEqual([
        expect.objectContaining({
          AlarmName: `${synth.config.namePrefix}-ReconcilerPassesStalled`,
          Namespace: 'PersonaDb',
          Dimensions: [{ Name: 'service', Value: RECONCILER_SERVICE }],
          Statistic: 'Sum',
          Period: 3600,
          EvaluationPeriods: 24,
          Threshold: 1,
          ComparisonOperator: 'LessThanThreshold',
          // Paused runs, failing runs and a disabled schedule publish nothing: no data is the signal.
          TreatMissingData: 'breaching',
          AlarmActions: [{ Ref: logicalIdOf(synth, synth.stack.alarmTopic) }],
        }),
      ]);
      expect(passes[0]!.DatapointsToAlarm ?? passes[0]!.EvaluationPeriods).toBe(24);
      // The drift metrics it sits beside: the same namespace and dimension (one EMF document, test/reconcileResume.test.ts).
      const drift = ofType(synth.resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!).find((alarm) => alarm.MetricName === 'DriftRemaining')!;
      expect([drift.Namespace, drift.Dimensions]).toEqual([passes[0]!.Namespace, passes[0]!.Dimensions]);
      // A day: at least 3 scheduled runs, and no more than CloudWatch evaluates (period × periods ≤ 86,400 s).
      const windowSeconds = passes[0]!.Period * passes[0]!.EvaluationPeriods;
      expect(windowSeconds).toBe(RECONCILE_PASS_WINDOW_HOURS * 3600);
      expect(windowSeconds).toBeLessThanOrEqual(86_400);
      expect(windowSeconds).toBeGreaterThanOrEqual(3 * synth.config.reconciler.intervalMinutes * 60);
    });

    it('refuses a schedule with fewer than 3 runs in the window', () => {
      expect(passesStalledWindowHours(60)).toBe(24);
      expect(passesStalledWindowHours(480)).toBe(24);
      expect(() => passesStalledWindowHours(481)).toThrow(/fewer than 3 runs in the 24 h .* at most every 480 minutes/);
    });
  });

  describe('API-level alarms and the dashboard', () => {
    const alarmsOf = (synth: Synth) => ofType(synth.resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    const apiId = (synth: Synth) => logicalIdOf(synth, synth.stack.api);

    it('5xx rate of all API requests (handled 500s and 503s count, unlike Lambda Errors) and p99 latency, from API Gateway metrics', () => {
      const synth = s();
      const alarms = alarmsOf(synth);
      const rate = alarms.find((alarm) => alarm.AlarmName === `${synth.config.namePrefix}-ApiServerErrorRate`)!;
      expect(rate.Threshold).toBe(synth.config.alarms.apiServerErrorPercent);
      const byId = Object.fromEntries((rate.Metrics as Array<Record<string, any>>).map((metric) => [metric.Id, metric]));
      expect(byId.errors.MetricStat).toMatchObject({ Metric: { Namespace: 'AWS/ApiGateway', MetricName: '5xx', Dimensions: [{ Name: 'ApiId', Value: { Ref: apiId(synth) } }] }, Stat: 'Sum' });
      expect(byId.requests.MetricStat).toMatchObject({ Metric: { Namespace: 'AWS/ApiGateway', MetricName: 'Count' }, Stat: 'Sum' });
      expect((Object.values(byId) as Array<Record<string, any>>).find((metric) => metric.Expression)!.Expression).toContain('100 * errors');
      expect(alarms).toContainEqual(expect.objectContaining({
        AlarmName: `${synth.config.namePrefix}-ApiLatencyP99`,
        Namespace: 'AWS/ApiGateway',
        MetricName: 'Latency',
        ExtendedStatistic: 'p99',
        Threshold: synth.config.alarms.apiLatencyP99Ms,
        Dimensions: [{ Name: 'ApiId', Value: { Ref: apiId(synth) } }],
      }));
    });

    it('SyncLag p99 from the indexer metric, and search-unavailable responses from the access logs of every route that reads the index', () => {
      const synth = s();
      const alarms = alarmsOf(synth);
      expect(alarms).toContainEqual(expect.objectContaining({
        AlarmName: `${synth.config.namePrefix}-SyncLagP99`,
        Namespace: 'PersonaDb',
        MetricName: 'SyncLag',
        ExtendedStatistic: 'p99',
        Dimensions: [{ Name: 'service', Value: env(synth, INDEXER_LOGICAL_ID).POWERTOOLS_SERVICE_NAME }],
        Threshold: synth.config.alarms.syncLagP99Ms,
      }));
      expect(alarms).toContainEqual(expect.objectContaining({ AlarmName: `${synth.config.namePrefix}-SearchUnavailable`, Namespace: 'PersonaDb', MetricName: 'SearchUnavailable', Threshold: 1 }));
      const [[, filter]] = ofType(synth.resources, 'AWS::Logs::MetricFilter') as [[string, Resource]];
      expect(filter.Properties!.LogGroupName).toEqual({ Ref: logicalIdOf(synth, synth.stack.node.findChild('ApiAccessLogs')) });
      expect(filter.Properties!.MetricTransformations).toEqual([expect.objectContaining({ MetricNamespace: 'PersonaDb', MetricName: 'SearchUnavailable', MetricValue: '1' })]);
      // The pattern against access-log lines in the stage's own format, matched by CloudWatch Logs'
      // documented rules (test/support/cloudWatchFilterPattern.ts): what the metric really counts.
      const pattern = filter.Properties!.FilterPattern as string;
      const line = accessLogLine(synth);
      const indexReaders = synth.routes.filter((route) => route.readsIndex && route.path !== '$default');
      expect(indexReaders.map((route) => route.name)).toEqual(expect.arrayContaining(['searchPersonas', 'similarPersonas']));
      for (const route of indexReaders) {
        const routeKey = `${route.method} ${route.path}`;
        expect(jsonFilterPatternMatches(pattern, line({ routeKey, status: '503' })), `503 on ${routeKey} counts`).toBe(true);
        for (const status of ['200', '500', '502', '504', '429']) expect(jsonFilterPatternMatches(pattern, line({ routeKey, status })), `${status} on ${routeKey}`).toBe(false);
      }
      for (const routeKey of ['GET /personas/{id}', 'POST /personas', 'GET /personas', '$default']) {
        expect(jsonFilterPatternMatches(pattern, line({ routeKey, status: '503' })), `503 on ${routeKey} is not search`).toBe(false);
      }
    });

    it('one dashboard with requests, errors, latency, sync lag, iterator age, failure-queue depth, drift, completed reconcile passes and every alarm; its URL is an output', () => {
      const synth = s();
      const dashboards = ofType(synth.resources, 'AWS::CloudWatch::Dashboard');
      expect(dashboards).toHaveLength(1);
      // The body is a Fn::Join of JSON text and references (the API id, alarm ARNs).
      const joined = dashboards[0]![1].Properties!.DashboardBody['Fn::Join'][1] as unknown[];
      const body = joined.map((part) => (typeof part === 'string' ? part : JSON.stringify(part))).join('');
      for (const metric of ['"Count"', '"5xx"', '"4xx"', '"Latency"', '"SyncLag"', '"IteratorAge"', 'ApproximateNumberOfMessagesVisible', '"DriftRemaining"', '"ReconcilePassesCompleted"', '"SearchUnavailable"']) {
        expect(body, metric).toContain(metric);
      }
      const alarmIds = ofType(synth.resources, 'AWS::CloudWatch::Alarm').map(([id]) => id);
      for (const id of alarmIds) expect(body, id).toContain(id);
      expect(synth.template.findOutputs('DashboardUrl')).not.toEqual({});
    });

    it('without -c alarmEmail the synth says the alarms have no subscriber and where to see them', () => {
      const synth = s();
      const warnings = Annotations.fromStack(synth.stack).findWarning('*', Match.stringLikeRegexp('no subscriber'));
      expect(warnings).toHaveLength(synth.config.alarms.email ? 0 : 1);
      expect(JSON.stringify(warnings)).toContain('DashboardUrl');
    });
  });

  describe('conventions', () => {
    it('every function is traced with X-Ray (Powertools Tracer in the code); the indexer has its stage reserved concurrency', () => {
      const synth = s();
      for (const id of functionIds(synth)) expect(synth.resources[id]!.Properties!.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect(synth.resources[INDEXER_LOGICAL_ID]!.Properties!.ReservedConcurrentExecutions).toBe(synth.config.functions.indexer.reservedConcurrency);
      for (const id of functionIds(synth).filter((candidate) => candidate !== INDEXER_LOGICAL_ID)) {
        expect(synth.resources[id]!.Properties!.ReservedConcurrentExecutions, id).toBeUndefined();
      }
    });

    it('similarPersonas reads the index by stored vectors: no model, no ONNX Runtime, plain API sizing', () => {
      const synth = s();
      expect(plainApiIds(synth)).toContain('similarPersonas');
      expect(indexReaderIds(synth)).toContain('similarPersonas');
      expect(synth.resources.similarPersonas!.Properties).toMatchObject({ MemorySize: synth.config.functions.api.memoryMb });
    });
  });

  describe('function assets (unzipped, as uploaded)', () => {
    it(`API functions stay under ${API_ASSET_LIMIT / MB} MB and contain no ML code`, () => {
      const synth = s();
      for (const id of plainApiIds(synth)) {
        const dir = assetDir(synth, id);
        const size = sizeOf(dir);
        console.log(`[assets] ${stage} ${id}: ${(size / MB).toFixed(2)} MB`);
        expect(size, id).toBeLessThan(API_ASSET_LIMIT);
        expect(readdirSync(dir).sort(), id).toEqual(webAssetIds(synth).includes(id) ? ['index.mjs', 'index.mjs.map', 'web'] : ['index.mjs', 'index.mjs.map']);
        const bundle = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
        for (const marker of ['onnxruntime', 'huggingface.co', '@huggingface/transformers', 'InferenceSession', ...ML_PACKAGES]) {
          expect(bundle.includes(marker), `${id} bundle contains "${marker}"`).toBe(false);
        }
        expect(bundle.startsWith("import { createRequire as __personaDbCreateRequire } from 'node:module';")).toBe(true);
        expect(bundle.length / bundle.split('\n').length, `${id} is minified (long lines)`).toBeGreaterThan(2000);
        expect(bundle).toMatch(/sourceMappingURL=index\.mjs\.map/);
      }
    });

    it('the web asset function carries the built console and Swagger UI under web/ (WEB_ASSETS_DIR), and they work from there', async () => {
      const synth = s();
      expect(webAssetIds(synth)).toEqual(['webAsset']);
      const dir = assetDir(synth, 'webAsset');
      expect(readdirSync(path.join(dir, 'web')).sort()).toEqual(['console.css', 'console.js', 'docs.css', 'docs.js', 'docs.js.LEGAL.txt']);
      expect(env(synth, 'webAsset').WEB_ASSETS_DIR).toBe('/var/task/web');
      for (const id of functionIds(synth).filter((other) => other !== 'webAsset')) expect(env(synth, id).WEB_ASSETS_DIR, id).toBeUndefined();
      // No CDN: the bundles load nothing from another origin.
      const consoleScript = readFileSync(path.join(dir, 'web', 'console.js'), 'utf8');
      expect(consoleScript).not.toMatch(/https?:\/\/(cdn|unpkg|jsdelivr)/);
      expect(statSync(path.join(dir, 'web', 'docs.js')).size).toBeGreaterThan(1024 * 1024); // Swagger UI itself, bundled
      // The built handler, run as Lambda runs it, serves the copied files.
      process.env.WEB_ASSETS_DIR = path.join(dir, 'web');
      try {
        const { handler } = (await import(pathToFileURL(path.join(dir, 'index.mjs')).href)) as { handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; headers: Record<string, string>; body: string }> };
        const event = { rawPath: '/assets/console.js', pathParameters: { file: 'console.js' }, headers: {}, requestContext: { http: { method: 'GET' }, requestId: 'r' } };
        const response = await handler(event, { awsRequestId: 'r', functionName: 'webAsset' });
        expect(response.statusCode).toBe(200);
        expect(Buffer.from(response.body, 'base64').toString('utf8')).toBe(consoleScript);
      } finally {
        delete process.env.WEB_ASSETS_DIR;
      }
    });

    it(`embedding functions carry onnxruntime for linux-arm64 only and the q8 model, under ${EMBEDDING_ASSET_LIMIT / MB} MB`, () => {
      const synth = s();
      for (const id of embeddingIds(synth)) {
        const dir = assetDir(synth, id);
        const size = sizeOf(dir);
        console.log(`[assets] ${stage} ${id}: ${(size / MB).toFixed(2)} MB`);
        expect(size, id).toBeLessThan(EMBEDDING_ASSET_LIMIT);
        const files = filesUnder(dir).map((file) => path.relative(dir, file));
        expect(files).toEqual(expect.arrayContaining([
          'index.mjs',
          'node_modules/onnxruntime-node/package.json',
          'node_modules/onnxruntime-node/dist/index.js',
          'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node',
          'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1',
          'node_modules/onnxruntime-common/package.json',
          'model/config.json',
          'model/tokenizer.json',
          'model/tokenizer_config.json',
          'model/onnx/model_quantized.onnx',
        ]));
        const bindings = files.filter((file) => file.startsWith('node_modules/onnxruntime-node/bin/'));
        expect(bindings.every((file) => file.startsWith('node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/')), bindings.join()).toBe(true);
        expect(files).not.toContain('model/onnx/model.onnx'); // fp32 weights are not shipped with dtype q8
        expect(files.filter((file) => file.startsWith('node_modules/')).map((file) => file.split('/')[1]).filter((v, i, a) => a.indexOf(v) === i).sort()).toEqual([
          'onnxruntime-common',
          'onnxruntime-node',
        ]);
      }
      // The indexer bundles transformers.js, which loads onnxruntime-node from node_modules.
      const indexerBundle = readFileSync(path.join(assetDir(synth, INDEXER_LOGICAL_ID), 'index.mjs'), 'utf8');
      expect(indexerBundle.includes('onnxruntime-node'), 'indexer bundle requires onnxruntime-node').toBe(true);
      expect(indexerBundle.includes('huggingface.co'), 'indexer bundle contains transformers.js').toBe(true);
    });
  });

  describe('cdk-nag AwsSolutions', () => {
    it('synth ran the pack as a validation plugin and it reported nothing', () => {
      const report = JSON.parse(readFileSync(path.join(s().outdir, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
      // Only the synth-time note that the alarms have no subscriber (no -c alarmEmail), see below.
      const violations = (report.pluginReports as Array<{ violations: Array<{ ruleName: string }> }>).flatMap((plugin) => plugin.violations.map((violation) => violation.ruleName));
      // (and, where the generated test model is bundled, the synth warning about it).
      expect(violations.filter((rule) => rule !== 'Annotation::persona-db:embedding-test-model')).toEqual(
        s().config.alarms.email ? [] : ['Annotation::persona-db:alarms-without-subscriber'],
      );
      expect(Annotations.fromStack(s().stack).findError('*', Match.anyValue())).toEqual([]);
      expect(Annotations.fromStack(s().stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    });

    it('no unacknowledged errors, and every acknowledgement covers a real finding', () => {
      expectNagFindingsAllAcknowledged(s().stack, stage);
    });
  });
});

// ---- which model is bundled --------------------------------------------------------------------

describe('embedding model for the bundle', () => {
  const testModel = path.join(PROJECT_ROOT, TEST_MODEL_HINT_DIR);
  it('prod refuses the generated test model however it is passed (-c embeddingModelDir, EMBEDDING_MODEL_DIR, the transformers.js cache)', () => {
    expect(existsSync(path.join(testModel, 'config.json')), 'the global setup generates the test model').toBe(true);
    const refusal = /Stage prod refuses the embedding model .* it is a model this project generates .*npm run model:fetch/;
    expect(() => resolveEmbeddingModel(buildStageConfig('prod', { embeddingModelDir: testModel }), {})).toThrow(refusal);
    expect(() => resolveEmbeddingModel(buildStageConfig('prod'), { EMBEDDING_MODEL_DIR: testModel })).toThrow(refusal);
    const cacheDir = path.join(tempRoot, 'cache-org');
    mkdirSync(path.join(cacheDir, 'some-org'), { recursive: true });
    execFileSync('cp', ['-R', testModel, path.join(cacheDir, 'some-org', 'renamed-model')]);
    expect(() => resolveEmbeddingModel(buildStageConfig('prod'), { EMBEDDING_MODEL_ID: 'some-org/renamed-model', EMBEDDING_CACHE_DIR: cacheDir })).toThrow(refusal);
    // Without any model prod fails and says how to get one.
    expect(() => resolveEmbeddingModel(buildStageConfig('prod'), { EMBEDDING_MODEL_ID: 'nobody/nothing', EMBEDDING_CACHE_DIR: path.join(tempRoot, 'empty') })).toThrow(
      /No embedding model for stage prod: .*npm run model:fetch -- nobody\/nothing/,
    );
  });

  it('dev takes the generated test model when nothing else is there, marked so the stack warns', () => {
    const model = resolveEmbeddingModel(buildStageConfig('dev'), { EMBEDDING_MODEL_ID: 'nobody/nothing', EMBEDDING_CACHE_DIR: path.join(tempRoot, 'empty') });
    expect(model).toMatchObject({ dir: testModel, source: 'test-model', generated: true });
    expect(resolveEmbeddingModel(buildStageConfig('dev'), { EMBEDDING_MODEL_DIR: testModel })).toMatchObject({ source: 'EMBEDDING_MODEL_DIR', generated: true });
    const warnings = Annotations.fromStack(synths.dev.stack).findWarning('*', Match.stringLikeRegexp('generated test model'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(Annotations.fromStack(synths.prod.stack).findWarning('*', Match.stringLikeRegexp('generated test model'))).toEqual([]);
  });

  it('finds a model where `npm run model:fetch` puts it, without EMBEDDING_MODEL_DIR', () => {
    const modelId = `persona-db-infra-test/fetched-${Math.random().toString(36).slice(2, 8)}`;
    const fetched = path.join(PROJECT_ROOT, FETCHED_MODELS_DIR, modelId);
    execFileSync('mkdir', ['-p', path.dirname(fetched)]);
    execFileSync('cp', ['-R', standInModelDir(), fetched]);
    try {
      const model = resolveEmbeddingModel(buildStageConfig('prod'), { EMBEDDING_MODEL_ID: modelId, EMBEDDING_CACHE_DIR: path.join(tempRoot, 'empty') });
      expect(model).toMatchObject({ dir: fetched, source: 'model:fetch', id: modelId, generated: false });
    } finally {
      rmSync(path.join(PROJECT_ROOT, FETCHED_MODELS_DIR, 'persona-db-infra-test'), { recursive: true, force: true });
    }
  });
});

// ---- variants --------------------------------------------------------------------------------

describe('auth and secret variants', () => {
  it('auth=jwt adds a JWT authorizer (issuer, audience) used by every route; an imported Qdrant secret is not created', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:qdrant-AbCdEf';
    const config = buildStageConfig('prod', {
      auth: 'jwt',
      jwt: { issuer: 'https://issuer.example.com/', audience: ['persona-api'] },
      qdrantSecretArn: arn,
      embeddingModelDir: standInModelDir(),
    });
    const synth = synthesize('prod', { config, bundle: false });
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com/', Audience: ['persona-api'] },
    });
    const [[authorizerId]] = ofType(synth.resources, 'AWS::ApiGatewayV2::Authorizer') as [[string, Resource]];
    const publicKeys = publicRouteKeys(synth.routes);
    for (const [, route] of ofType(synth.resources, 'AWS::ApiGatewayV2::Route')) {
      // A browser loads the console's page and scripts without a token; their API calls carry it.
      if (publicKeys.includes(String(route.Properties!.RouteKey))) expect(route.Properties).toMatchObject({ AuthorizationType: 'NONE' });
      else expect(route.Properties).toMatchObject({ AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
    }
    // Every route × every scope set: what the authorizer lets through is what the scopes grant
    // (a route passes a token that carries at least one of its AuthorizationScopes).
    const routeProps = new Map(ofType(synth.resources, 'AWS::ApiGatewayV2::Route').map(([, route]) => [String(route.Properties!.RouteKey), route.Properties!]));
    let decisions = 0;
    for (const route of synth.routes) {
      const access = EXPECTED_ACCESS[route.name];
      expect(access, `route ${route.name} needs an expected access in test/support/scopeMatrix.ts`).toBeDefined();
      for (const key of route.path === '$default' ? ['$default'] : routeMethods(route).map((method) => `${method} ${route.path}`)) {
        const props = routeProps.get(key)!;
        const scopes = (props.AuthorizationScopes ?? []) as string[];
        for (const [setName, held] of Object.entries(SCOPE_SETS)) {
          const passes = props.AuthorizationType === 'NONE' || scopes.length === 0 || scopes.some((scope) => held.includes(scope));
          expect(passes, `${key} with {${setName}} (AuthorizationScopes ${JSON.stringify(scopes)})`).toBe(expectAllowed(access!, held));
          decisions++;
        }
      }
      expect(env(synth, route.name).AUTH).toBe('jwt');
    }
    console.log(`[jwt scopes] ${decisions} route × scope-set decisions checked in the template`);
    expect(ofType(synth.resources, 'AWS::SecretsManager::Secret')).toHaveLength(1); // only the cursor key
    expect(env(synth, INDEXER_LOGICAL_ID).QDRANT_SECRET_ARN).toBe(arn);
    const actions = actionMap(grantsOf(synth, INDEXER_LOGICAL_ID));
    expect(actions.has('secretsmanager:GetSecretValue')).toBe(true);
    const secretGrant = grantsOf(synth, INDEXER_LOGICAL_ID).find((grant) => grant.actions.includes('secretsmanager:GetSecretValue'))!;
    expect(secretGrant.resources).toEqual([arn]);
    // The secret under the AWS managed key: no role or policy gets a KMS action.
    const policies = [...ofType(synth.resources, 'AWS::IAM::Policy'), ...ofType(synth.resources, 'AWS::IAM::ManagedPolicy')];
    expect(policies.filter(([, policy]) => JSON.stringify(policy.Properties!.PolicyDocument).includes('"kms:')).map(([id]) => id)).toEqual([]);
  }, 180_000);

  const ACCOUNT = '123456789012';
  const REGION = 'eu-west-1';
  const QDRANT_KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const qdrantReaders = (synth: Synth) => functionIds(synth).filter((id) => env(synth, id).QDRANT_SECRET_ARN !== undefined);

  it('a partial secret ARN (said so) is granted with its -?????? suffix, to the functions and the admin policy', () => {
    const partial = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:persona/qdrant`;
    const config = buildStageConfig('prod', { qdrantSecretPartialArn: partial, embeddingModelDir: standInModelDir() });
    const synth = synthesize('prod', { config, bundle: false, env: { account: ACCOUNT, region: REGION } });
    expect(qdrantReaders(synth).length).toBeGreaterThanOrEqual(4);
    for (const id of qdrantReaders(synth)) {
      // Functions look the secret up by the partial ARN (Secrets Manager finds it: its name does not end like a suffix).
      expect(env(synth, id).QDRANT_SECRET_ARN, id).toBe(partial);
      // (with conditions: the reconciler's idempotency-table grant has its LeadingKeys one)
      const grant = grantsOf(synth, id, true).find((candidate) => candidate.actions.includes('secretsmanager:GetSecretValue'))!;
      expect({ ...grant, actions: [...grant.actions].sort() }, id).toEqual({ actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], resources: [`${partial}-??????`] });
      // What IAM evaluates: the secret's real ARN carries the random suffix.
      expect(iamPattern(`${partial}-??????`).test(`${partial}-Xy12Za`)).toBe(true);
    }
    const admin = managedPolicyStatements(synth, 'AdminAccessPolicy');
    expect(admin.find((statement) => statement.Sid === 'ReadQdrantSecret')).toMatchObject({ Resource: `${partial}-??????` });
  });

  it('a secret under a customer managed KMS key: every reader of it may decrypt with that key, through Secrets Manager only', () => {
    const complete = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:persona/qdrant-AbC123`;
    const config = buildStageConfig('prod', { qdrantSecretArn: complete, qdrantSecretKmsKeyArn: QDRANT_KEY_ARN, embeddingModelDir: standInModelDir() });
    const synth = synthesize('prod', { config, bundle: false, env: { account: ACCOUNT, region: REGION } });
    const viaSecretsManager = { StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` } };
    for (const id of qdrantReaders(synth)) {
      const grants = grantsOf(synth, id, true);
      expect(grants.find((grant) => grant.actions.includes('secretsmanager:GetSecretValue'))!.resources, id).toEqual([complete]);
      expect(grants.filter((grant) => grant.actions.includes('kms:Decrypt')), id).toEqual([{ actions: ['kms:Decrypt'], resources: [QDRANT_KEY_ARN], condition: viaSecretsManager }]);
    }
    // Nobody else gets the key: the functions that never read the Qdrant secret have no KMS grant.
    for (const id of functionIds(synth).filter((candidate) => !qdrantReaders(synth).includes(candidate))) {
      expect(grantsOf(synth, id, true).some((grant) => grant.actions.some((action) => action.startsWith('kms:'))), id).toBe(false);
    }
    const admin = managedPolicyStatements(synth, 'AdminAccessPolicy');
    expect(admin.find((statement) => statement.Sid === 'DecryptQdrantSecret')).toMatchObject({ Action: 'kms:Decrypt', Resource: QDRANT_KEY_ARN, Condition: viaSecretsManager });
    expect(managedPolicyStatements(synth, 'ReaderAccessPolicy').some((statement) => JSON.stringify(statement).includes('kms:'))).toBe(false);
  });

  it('refuses a secret in another region than the stack: the functions read Secrets Manager in their own region', () => {
    const elsewhere = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:persona/qdrant-AbC123`;
    const config = buildStageConfig('prod', { qdrantSecretArn: elsewhere, embeddingModelDir: standInModelDir() });
    expect(() => synthesize('prod', { config, bundle: false, env: { account: ACCOUNT, region: REGION } })).toThrow(/is in us-east-1, the stack in eu-west-1/);
  });
});

// ---- the stack's account and region ------------------------------------------------------------

describe('with a concrete account and region (every real deploy), and with none', () => {
  // Without credentials the tests above synthesize environment-agnostic stacks; a deploy has both.
  // cdk-nag names resources as the template holds them, so an acknowledgement written for one of
  // these forms and not the other fails synth (the first real prod synth did, on 14 IAM5 findings).
  const targets: Array<[string, Environment | undefined]> = [
    ['account and region', { account: '123456789012', region: 'eu-west-1' }],
    ['account only', { account: '123456789012' }],
    ['none', undefined],
  ];
  for (const stage of ['dev', 'prod'] as const) {
    for (const auth of stage === 'prod' ? (['iam'] as const) : (['none', 'iam'] as const)) {
      it.each(targets)(`${stage} with auth=${auth}, target %s: synth passes cdk-nag, every acknowledgement covers a finding`, (_label, target) => {
        const config = buildStageConfig(stage, { auth, embeddingModelDir: stage === 'prod' ? standInModelDir() : testModelDir() });
        const synth = synthesize(stage, { config, bundle: false, ...(target ? { env: target } : {}) });
        expectNagFindingsAllAcknowledged(synth.stack, `${stage}/${auth}/${_label}`);
        const text = JSON.stringify(synth.template.toJSON());
        // The target reaches the template as literals (the dashboard link names the region).
        if (target?.region) expect(text).toContain(`region=${target.region}#dashboards`);
        else expect(text).not.toContain('region=eu-west-1');
        if (auth === 'iam') {
          const policy = managedPolicyStatements(synth, 'ReaderAccessPolicy').find((statement) => statement.Sid === 'InvokeRoutes')!;
          const rendered = (policy.Resource as unknown[]).map(renderIntrinsic);
          const partition = target?.region ? 'aws' : '{AWS::Partition}';
          const where = target?.region ? `${target.region}:${target.account}` : `{AWS::Region}:${target?.account ?? '{AWS::AccountId}'}`;
          expect(rendered).toContain(`arn:${partition}:execute-api:${where}:{${logicalIdOf(synth, synth.stack.api)}}/$default/GET/personas/*`);
        }
      });
    }
  }
});

// ---- CloudWatch Logs filter patterns ---------------------------------------------------------

describe('CloudWatch Logs JSON filter patterns (test/support/cloudWatchFilterPattern.ts, used by the alarm tests)', () => {
  // The examples of "Filter and Pattern Syntax", Matching Terms in JSON Log Events, with the
  // outcome the documentation states for each.
  const trail = JSON.stringify({
    eventType: 'UpdateTrail',
    sourceIPAddress: '111.111.111.111',
    arrayKey: ['value', 'another value'],
    objectList: [{ name: 'a', id: 1 }, { name: 'b', id: 2 }],
    SomeObject: null,
    ThisFlag: true,
  });
  const users = JSON.stringify({
    user: { id: 1, email: 'John.Stiles@example.com' },
    users: [{ id: 2, email: 'John.Doe@example.com' }, { id: 3, email: 'Jane.Doe@example.com' }],
    actions: ['GET', 'PUT', 'DELETE'],
    coordinates: [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
  });

  it('matches the documented examples as documented', () => {
    const documented: Array<[string, string, boolean]> = [
      ['{ $.eventType = "UpdateTrail" }', trail, true],
      ['{ $.sourceIPAddress != 123.123.* }', trail, true],
      ['{ $.arrayKey[0] = "value" }', trail, true],
      ['{ $.objectList[1].id = 2 }', trail, true],
      ['{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', users, true],
      ['{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', users, false],
      ['{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }', users, true],
      ['{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }', users, false],
      ['{ $.foo = bar || $.foo = baz }', '{"foo": "bar"}', true],
      ['{ $.foo = bar || $.foo = baz }', '{"foo": "baz"}', true],
      ['{ $.foo = baz }', '{"foo": "bar"}', false],
      // "both {$.users = 1} and {$.users != 1} will fail to match a log event where users is an array"
      ['{ $.users = 1 }', '{"users": [1, 2, 3]}', false],
      ['{ $.users != 1 }', '{"users": [1, 2, 3]}', false],
      ['{ $.latency >= 500 }', '{"latency": 512}', true],
      ['{ $.numbers[0] < 10e3 }', '{"numbers": [9999]}', true],
      ['{ $.processes[4].averageRuntime <= 55.5 }', '{"processes": [{}, {}, {}, {}, {"averageRuntime": 55.6}]}', false],
      ['{ $.errorCode != 500 }', '{"errorCode": 400}', true],
      ['{ $.latency > +1000 }', '{"latency": 1000}', false],
      // "*Event will match PutEvent and GetEvent. Event* will match EventId and EventName. Ev*ent will only match the actual string Ev*ent."
      ['{ $.name = *Event }', '{"name": "PutEvent"}', true],
      ['{ $.name = Event* }', '{"name": "EventName"}', true],
      ['{ $.name = Ev*ent }', '{"name": "Evxent"}', false],
      ['{ $.name = Ev*ent }', '{"name": "Ev*ent"}', true],
    ];
    for (const [pattern, event, outcome] of documented) expect(jsonFilterPatternMatches(pattern, event), `${pattern} on ${event}`).toBe(outcome);
  });

  it('compares a quoted value with a string node and a number with a number node only: "503" is not 503', () => {
    expect(jsonFilterPatternMatches('{ $.status = "503" }', '{"status":"503"}')).toBe(true);
    expect(jsonFilterPatternMatches('{ $.status = 503 }', '{"status":503}')).toBe(true);
    expect(jsonFilterPatternMatches('{ $.status = 503 }', '{"status":"503"}')).toBe(false);
    expect(jsonFilterPatternMatches('{ $.status = "503" }', '{"status":503}')).toBe(false);
    expect(jsonFilterPatternMatches('{ $.status = "503" }', 'not json 503')).toBe(false);
    expect(() => jsonFilterPatternMatches('{ $.latency = * }', '{"latency": 1}')).toThrow(/not implemented/);
    expect(() => jsonFilterPatternMatches('ERROR -Exiting', 'ERROR')).toThrow(/not implemented|expected \{/);
  });
});

// ---- cfn-lint --------------------------------------------------------------------------------

/** cfn-lint's errors on `templates` (warnings are printed); run without blocking the test worker. */
async function cfnLintErrors(templates: readonly string[]): Promise<string[]> {
  let output: string;
  try {
    ({ stdout: output } = await execFileAsync('cfn-lint', ['--format', 'json', ...templates], { encoding: 'utf8', maxBuffer: 64 * MB }));
  } catch (error) {
    // cfn-lint exits non-zero for warnings (4) and errors (2); the JSON on stdout says which.
    const failure = error as { stdout?: string; stderr?: string; code?: string | number };
    if (failure.code === 'ENOENT') throw new Error('cfn-lint is not installed (pip install -r test/python/requirements.txt)');
    if (!failure.stdout) throw new Error(`cfn-lint failed (${failure.code}): ${failure.stderr}`);
    output = failure.stdout;
  }
  const matches = JSON.parse(output) as { Level: string; Rule: { Id: string }; Message: string; Filename: string }[];
  for (const match of matches.filter((candidate) => candidate.Level !== 'Error')) {
    console.log(`[cfn-lint] ${match.Level} ${match.Rule.Id} ${path.basename(match.Filename)}: ${match.Message}`);
  }
  console.log(`[cfn-lint] ${templates.length} templates, ${matches.length} findings, ${matches.filter((match) => match.Level === 'Error').length} errors`);
  return matches.filter((match) => match.Level === 'Error').map((match) => `${path.basename(match.Filename)} ${match.Rule.Id}: ${match.Message}`);
}

describe('cfn-lint', () => {
  it('reports no errors on any synthesized template', async () => {
    expect(await cfnLintErrors((['dev', 'prod'] as const).map((stage) => synths[stage].templateFile))).toEqual([]);
  }, 120_000);
});

// ---- the CLI, from a fresh clone ---------------------------------------------------------------

const cliModelNote = MINILM_MODEL_DIR ? sharedReason(MINILM_MODEL_DIR, 'all-MiniLM-L6-v2') : '(a stand-in model: all-MiniLM-L6-v2 is not in ../shared)';

describe(`cdk synth from a fresh clone, with a concrete account and region ${cliModelNote}`, () => {
  // What a new user runs before the first deploy: the repository's tracked files only (no
  // cdk.out, no cdk.context.json, no .cache/models), `npm run synth` with a real, non-generated
  // model for prod, and the target pinned on the command line. The CDK CLI runs infra/app.ts and
  // cdk-nag as on any machine; a non-zero exit is a failed synth.
  const ACCOUNT = '123456789012';
  const REGION = 'eu-west-1';
  const model = MINILM_MODEL_DIR ?? standInModelDir();
  let clone: string;

  beforeAll(() => {
    clone = mkdtempSync(path.join(tempRoot, 'clone-'));
    const tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((file) => file && existsSync(path.join(PROJECT_ROOT, file)));
    for (const file of tracked) cpSync(path.join(PROJECT_ROOT, file), path.join(clone, file), { recursive: true });
    // As after `npm ci` (node_modules is never tracked).
    symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(clone, 'node_modules'));
    expect(existsSync(path.join(clone, 'cdk.out'))).toBe(false);
    expect(existsSync(path.join(clone, '.cache'))).toBe(false);
  });

  async function cdkSynth(stage: Stage): Promise<{ template: Record<string, any>; templateFile: string; output: string }> {
    const outdir = path.join(clone, `cdk.out.${stage}`);
    const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(AWS_|CDK_)/.test(name)));
    try {
      const { stdout, stderr } = await execFileAsync(
        path.join(clone, 'node_modules', '.bin', 'cdk'),
        ['synth', '-c', `stage=${stage}`, '-c', `account=${ACCOUNT}`, '-c', `region=${REGION}`, '--output', outdir, '--no-notices', '--quiet'],
        { cwd: clone, encoding: 'utf8', maxBuffer: 64 * MB, env: { ...environment, EMBEDDING_MODEL_DIR: model, AWS_EC2_METADATA_DISABLED: 'true' } },
      );
      const templateFile = path.join(outdir, `${stackName(stage)}.template.json`);
      return { template: JSON.parse(readFileSync(templateFile, 'utf8')) as Record<string, any>, templateFile, output: stdout + stderr };
    } catch (error) {
      const failure = error as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`cdk synth -c stage=${stage} exited ${failure.code}:\n${(failure.stdout ?? '') + (failure.stderr ?? '')}`.slice(0, 20_000));
    }
  }

  it('dev and prod synthesize (exit 0) for the pinned account and region, and cfn-lint finds no error', async () => {
    const results = [];
    for (const stage of ['dev', 'prod'] as const) {
      const result = await cdkSynth(stage);
      const text = JSON.stringify(result.template);
      // Pinned with -c: whatever region the CLI would have defaulted to, the template says eu-west-1.
      expect(text, stage).toContain(`region=${REGION}#dashboards`);
      expect(text, stage).not.toContain('us-east-1');
      // The synth says where the stack goes, and from which setting.
      expect(result.output, stage).toContain(`${stackName(stage)}: Target: account ${ACCOUNT} (-c account), region ${REGION} (-c region).`);
      if (stage === 'prod') {
        // auth=iam: the policies name this account's and region's API, each parameterised route acknowledged.
        expect(text).toContain(`arn:aws:execute-api:${REGION}:${ACCOUNT}:`);
      }
      results.push(result);
    }
    expect(await cfnLintErrors(results.map((result) => result.templateFile))).toEqual([]);
  }, 600_000);
});

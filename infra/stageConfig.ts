/**
 * Per-stage configuration of the persona-db stack.
 *
 * How a stage is chosen: `cdk synth -c stage=prod` (default `dev`). The stage picks one of the
 * `stageDefaults` below; a few values can then be overridden from CDK context without editing
 * code (all context values arrive as strings from the CLI):
 *
 * | context key         | overrides                         | example                                         |
 * | ------------------- | --------------------------------- | ----------------------------------------------- |
 * | `stage`             | which defaults apply              | `-c stage=prod`                                 |
 * | `auth`              | `api.auth`                        | `-c auth=jwt`                                   |
 * | `jwtIssuer`         | `api.jwt.issuer`                  | `-c jwtIssuer=https://idp.example.com/`         |
 * | `jwtAudience`       | `api.jwt.audience` (comma list)   | `-c jwtAudience=persona-api,persona-admin`      |
 * | `corsOrigins`       | `api.cors.allowOrigins` (list)    | `-c corsOrigins=https://app.example.com`        |
 * | `qdrantSecretArn`   | `qdrant.secretArn` (import)       | `-c qdrantSecretArn=arn:aws:secretsmanager:...` |
 * | `qdrantUrl`         | `qdrant.initialUrl`               | `-c qdrantUrl=http://qdrant:6333`               |
 * | `qdrantCollection`  | `qdrant.collection`               | `-c qdrantCollection=personas`                  |
 * | `alarmEmail`        | `alarms.email`                    | `-c alarmEmail=oncall@example.com`              |
 * | `architecture`      | `lambdaArchitecture`              | `-c architecture=x86_64` (LocalStack on x86)   |
 * | `embeddingModelDir` | `embedding.modelDir`              | `-c embeddingModelDir=/models/all-MiniLM-L6-v2` |
 * | `tenancy`           | `tenancy.mode` (single or claim)  | `-c tenancy=claim` (needs `-c auth=jwt`)        |
 * | `tenantClaim`       | `tenancy.claim`                   | `-c tenantClaim=https://example.com/tenant`     |
 * | `reindexMaxConcurrency` | `reindexAtScale.maxConcurrency` | `-c reindexMaxConcurrency=1000`                |
 * | `indexerParallelizationFactor` | `indexerStream.parallelizationFactor` | `-c indexerParallelizationFactor=4` |
 *
 * dev's default CORS origin `*` holds only while its auth is `none`: with `-c auth=jwt` (or iam)
 * CORS is off unless `corsOrigins` names the origins.
 *
 * The embedding model directory can also come from the `EMBEDDING_MODEL_DIR` environment
 * variable at synth time (see `resolveEmbeddingModelDir` in ./embeddingBundle.ts).
 */
import type { Node } from 'constructs';
import type { EmbeddingDtype } from '../shared/embedding/config';
import { DEFAULT_TENANT_CLAIM, TENANCY_MODES, tenancyConfig, type TenancyConfig, type TenancyMode } from '../shared/tenancy/tenancy';
import { AUTH_MODES, type AuthMode } from '../shared/http/accessControl';

export type Stage = 'dev' | 'prod';
export const STAGES: readonly Stage[] = ['dev', 'prod'];

/** `none`: open API (dev only by default); `iam`: SigV4-signed callers; `jwt`: bearer tokens from an OIDC issuer. */
export type { AuthMode };

/** `arm64` (Graviton) in AWS; `x86_64` only to run the functions on an x86 LocalStack host. */
export type LambdaArchitectureName = 'arm64' | 'x86_64';

export interface JwtConfig {
  /** OIDC issuer URL, e.g. a Cognito user pool or Auth0 tenant; must serve /.well-known/openid-configuration. */
  readonly issuer: string;
  /** Accepted `aud` (or `client_id`) values; at least one. */
  readonly audience: readonly string[];
}

export interface CorsConfig {
  readonly allowOrigins: readonly string[];
  readonly allowHeaders: readonly string[];
  /** Browsers cache the preflight answer this long. */
  readonly maxAgeSeconds: number;
}

export interface FunctionSizing {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

export interface StageConfig {
  readonly stage: Stage;
  /** Prefix for names people see (API name, alarm names). */
  readonly namePrefix: string;
  readonly lambdaArchitecture: LambdaArchitectureName;
  readonly table: {
    /** `retain` keeps the table (and its data) when the stack is deleted; `destroy` deletes it. */
    readonly removal: 'retain' | 'destroy';
    /** DynamoDB deletion protection: blocks DeleteTable, even from CloudFormation. */
    readonly deletionProtection: boolean;
  };
  readonly api: {
    readonly auth: AuthMode;
    /** Required when `auth` is `jwt`. */
    readonly jwt?: JwtConfig;
    /** Undefined: CORS off (API Gateway answers no preflight). */
    readonly cors?: CorsConfig;
    /** Default-stage throttling: steady requests per second and burst bucket size. */
    readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  };
  readonly functions: {
    /** Plain API routes (`embeds: false`). */
    readonly api: FunctionSizing;
    /** API routes with `embeds: true`: they load the ONNX model, so more memory (and CPU). */
    readonly embeddingApi: FunctionSizing;
    /**
     * The DynamoDB Streams indexer: embeds up to one batch per invocation. `reservedConcurrency`
     * keeps that many executions for it however busy the API is (the stream needs one per shard ×
     * parallelization factor); undefined reserves none (accounts with the default limit of 10
     * concurrent executions cannot reserve any).
     */
    readonly indexer: FunctionSizing & { readonly reservedConcurrency?: number };
    /** The scheduled reconciler: scans the table and the index, re-embeds what differs. */
    readonly reconciler: FunctionSizing;
    /** A child of the reindex in AWS: embeds one chunk of the export (the same memory as the indexer: the same rate per child). */
    readonly backfill: FunctionSizing;
  };
  /** `personas reindex --in-aws` (infra/reindexAtScale.ts); what each value buys: the reindex sizing table (docs). */
  readonly reindexAtScale: {
    /** Backfill Lambdas at once (Distributed Map MaxConcurrency, at most 10,000); bounded in practice by Qdrant's ingest rate and the account's Lambda concurrency. */
    readonly maxConcurrency: number;
    /** Personas per child (one chunk of an export data file). */
    readonly chunkItems: number;
    /** Days the bucket keeps an export, its work list and results. */
    readonly exportRetentionDays: number;
    /** Seconds between two DescribeExport calls while the export runs. */
    readonly exportPollSeconds: number;
  };
  /** The indexer's DynamoDB stream event source. */
  readonly indexerStream: {
    /** Concurrent batches per stream shard (1-10): more keeps up with a faster write rate (see the sizing table). */
    readonly parallelizationFactor: number;
  };
  readonly reconciler: {
    /** Minutes between two runs of the reconciler (EventBridge schedule). */
    readonly intervalMinutes: number;
  };
  /** Powertools log level for every function. */
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Retention of every log group the stack creates (function logs and API access logs), in days. */
  readonly logRetentionDays: number;
  readonly qdrant: {
    /** Import this Secrets Manager secret (JSON `{"url": ..., "apiKey": ...}`) instead of creating one. */
    readonly secretArn?: string;
    /** `url` written into a secret the stack creates; the operator replaces it (and the apiKey) after deploy. */
    readonly initialUrl: string;
    readonly collection: string;
  };
  readonly embedding: {
    /** Directory with the model (config.json, tokenizer files, onnx/) bundled into embedding functions. */
    readonly modelDir?: string;
    /** Which ONNX weights are bundled and loaded (EMBEDDING_DTYPE): `q8` = onnx/model_quantized.onnx, `fp32` = onnx/model.onnx. */
    readonly dtype: EmbeddingDtype;
  };
  /**
   * `single`: one tenant (every caller sees every persona). `claim`: each persona belongs to the
   * tenant named by the JWT claim `claim` (needs auth=jwt); functions get TENANCY and TENANT_CLAIM.
   */
  readonly tenancy: TenancyConfig;
  readonly alarms: {
    /** Optional e-mail subscription on the alarm topic. */
    readonly email?: string;
    /** Alarm when the indexer's oldest unprocessed stream record is older than this (ms, IteratorAge max). */
    readonly iteratorAgeMs: number;
    /** Alarm when this share of API requests (percent, 5 minutes) answers 5xx, handled 500s and 503s included. */
    readonly apiServerErrorPercent: number;
    /** Alarm when the API's p99 latency (ms, 5 minutes) reaches this. */
    readonly apiLatencyP99Ms: number;
    /** Alarm when the p99 of write-to-index lag (the indexer's SyncLag metric, ms, 5 minutes) reaches this. */
    readonly syncLagP99Ms: number;
  };
}

/** The defaults for each stage. Document any change here: it is what `-c stage=...` selects. */
export const stageDefaults: Record<Stage, StageConfig> = {
  dev: {
    stage: 'dev',
    namePrefix: 'persona-db-dev',
    lambdaArchitecture: 'arm64',
    table: { removal: 'destroy', deletionProtection: false },
    api: {
      auth: 'none',
      cors: {
        allowOrigins: ['*'],
        allowHeaders: ['content-type', 'authorization', 'idempotency-key', 'if-match'],
        maxAgeSeconds: 600,
      },
      throttle: { rateLimit: 50, burstLimit: 100 },
    },
    functions: {
      api: { memoryMb: 512, timeoutSeconds: 10 },
      embeddingApi: { memoryMb: 2048, timeoutSeconds: 29 },
      indexer: { memoryMb: 2048, timeoutSeconds: 120 },
      reconciler: { memoryMb: 2048, timeoutSeconds: 900 },
      backfill: { memoryMb: 2048, timeoutSeconds: 900 },
    },
    reindexAtScale: { maxConcurrency: 50, chunkItems: 2_000, exportRetentionDays: 3, exportPollSeconds: 30 },
    indexerStream: { parallelizationFactor: 1 },
    reconciler: { intervalMinutes: 60 },
    logLevel: 'DEBUG',
    logRetentionDays: 30,
    qdrant: { initialUrl: 'https://replace-me.qdrant.invalid:6333', collection: 'personas' },
    embedding: { dtype: 'q8' },
    tenancy: { mode: 'single', claim: DEFAULT_TENANT_CLAIM },
    alarms: { iteratorAgeMs: 5 * 60_000, apiServerErrorPercent: 5, apiLatencyP99Ms: 5_000, syncLagP99Ms: 60_000 },
  },
  prod: {
    stage: 'prod',
    namePrefix: 'persona-db-prod',
    lambdaArchitecture: 'arm64',
    table: { removal: 'retain', deletionProtection: true },
    api: {
      auth: 'iam',
      throttle: { rateLimit: 500, burstLimit: 1000 },
    },
    functions: {
      api: { memoryMb: 1024, timeoutSeconds: 10 },
      embeddingApi: { memoryMb: 3008, timeoutSeconds: 29 },
      indexer: { memoryMb: 3008, timeoutSeconds: 180, reservedConcurrency: 10 },
      reconciler: { memoryMb: 3008, timeoutSeconds: 900 },
      backfill: { memoryMb: 3008, timeoutSeconds: 900 },
    },
    reindexAtScale: { maxConcurrency: 500, chunkItems: 2_000, exportRetentionDays: 3, exportPollSeconds: 30 },
    indexerStream: { parallelizationFactor: 1 },
    reconciler: { intervalMinutes: 60 },
    logLevel: 'INFO',
    logRetentionDays: 365,
    qdrant: { initialUrl: 'https://replace-me.qdrant.invalid:6333', collection: 'personas' },
    embedding: { dtype: 'q8' },
    tenancy: { mode: 'single', claim: DEFAULT_TENANT_CLAIM },
    alarms: { iteratorAgeMs: 2 * 60_000, apiServerErrorPercent: 1, apiLatencyP99Ms: 3_000, syncLagP99Ms: 30_000 },
  },
};

/** Partial overrides, as tests pass them or as parsed from context. */
export interface StageOverrides {
  readonly auth?: AuthMode;
  readonly jwt?: JwtConfig;
  readonly corsOrigins?: readonly string[];
  readonly qdrantSecretArn?: string;
  readonly qdrantUrl?: string;
  readonly qdrantCollection?: string;
  readonly alarmEmail?: string;
  readonly lambdaArchitecture?: LambdaArchitectureName;
  readonly embeddingModelDir?: string;
  readonly tenancy?: TenancyMode;
  readonly tenantClaim?: string;
  readonly reindexMaxConcurrency?: number;
  readonly indexerParallelizationFactor?: number;
}

export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value);
}


/** Builds and validates the config of `stage` with `overrides` applied. Throws on an invalid combination. */
export function buildStageConfig(stage: Stage, overrides: StageOverrides = {}): StageConfig {
  const base = stageDefaults[stage];
  const auth = overrides.auth ?? base.api.auth;
  if (!AUTH_MODES.includes(auth)) throw new Error(`auth must be one of ${AUTH_MODES.join(', ')}; got "${auth}"`);
  const jwt = overrides.jwt ?? base.api.jwt;
  if (auth === 'jwt' && (!jwt || !jwt.issuer.startsWith('https://') || jwt.audience.length === 0)) {
    throw new Error('auth=jwt needs an https issuer and at least one audience: -c jwtIssuer=https://... -c jwtAudience=aud1,aud2');
  }
  const cors: CorsConfig | undefined = overrides.corsOrigins
    ? {
        allowOrigins: overrides.corsOrigins,
        allowHeaders: base.api.cors?.allowHeaders ?? stageDefaults.dev.api.cors!.allowHeaders,
        maxAgeSeconds: base.api.cors?.maxAgeSeconds ?? 600,
      }
    : // A default's any-origin CORS is for an open stage: once callers hold tokens or credentials, any
      // page's script could use them. The console and /docs are same-origin and need none.
      auth === 'none' || !base.api.cors?.allowOrigins.includes('*')
      ? base.api.cors
      : undefined;
  const architecture = overrides.lambdaArchitecture ?? base.lambdaArchitecture;
  if (architecture !== 'arm64' && architecture !== 'x86_64') {
    throw new Error(`architecture must be arm64 or x86_64; got "${String(architecture)}"`);
  }
  const tenancyMode = overrides.tenancy ?? base.tenancy.mode;
  if (!TENANCY_MODES.includes(tenancyMode)) throw new Error(`tenancy must be single or claim; got "${String(tenancyMode)}"`);
  // The same checks the functions apply to TENANCY / TENANT_CLAIM.
  const tenancy = tenancyConfig({ TENANCY: tenancyMode, TENANT_CLAIM: overrides.tenantClaim ?? base.tenancy.claim });
  if (tenancy.mode === 'claim' && auth !== 'jwt') {
    throw new Error('tenancy=claim takes the tenant from a JWT claim, so it needs auth=jwt: -c auth=jwt -c jwtIssuer=https://... -c jwtAudience=...');
  }
  const secretArn = overrides.qdrantSecretArn ?? base.qdrant.secretArn;
  if (secretArn !== undefined && !secretArn.startsWith('arn:')) {
    throw new Error(`qdrantSecretArn must be a Secrets Manager ARN; got "${secretArn}"`);
  }
  const maxConcurrency = overrides.reindexMaxConcurrency ?? base.reindexAtScale.maxConcurrency;
  // Distributed Map: "up to 10,000 parallel child workflow executions" (Step Functions Developer Guide, Distributed Map state).
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 10_000) {
    throw new Error(`reindexMaxConcurrency must be a whole number from 1 to 10000 (Distributed Map's limit); got "${String(maxConcurrency)}"`);
  }
  const parallelizationFactor = overrides.indexerParallelizationFactor ?? base.indexerStream.parallelizationFactor;
  // Lambda's ParallelizationFactor for DynamoDB streams: 1 to 10 (Lambda Developer Guide, "Using Lambda with DynamoDB").
  if (!Number.isInteger(parallelizationFactor) || parallelizationFactor < 1 || parallelizationFactor > 10) {
    throw new Error(`indexerParallelizationFactor must be a whole number from 1 to 10; got "${String(parallelizationFactor)}"`);
  }
  return {
    ...base,
    lambdaArchitecture: architecture,
    reindexAtScale: { ...base.reindexAtScale, maxConcurrency },
    indexerStream: { parallelizationFactor },
    api: { ...withoutCors(base.api), auth, ...(jwt ? { jwt } : {}), ...(cors ? { cors } : {}) },
    qdrant: {
      ...base.qdrant,
      ...(secretArn ? { secretArn } : {}),
      initialUrl: overrides.qdrantUrl ?? base.qdrant.initialUrl,
      collection: overrides.qdrantCollection ?? base.qdrant.collection,
    },
    embedding: { ...base.embedding, ...(overrides.embeddingModelDir ? { modelDir: overrides.embeddingModelDir } : {}) },
    tenancy,
    alarms: { ...base.alarms, ...(overrides.alarmEmail ? { email: overrides.alarmEmail } : {}) },
  };
}

const withoutCors = ({ cors: _cors, ...api }: StageConfig['api']): Omit<StageConfig['api'], 'cors'> => api;

const list = (value: string | undefined): string[] | undefined =>
  value === undefined ? undefined : value.split(',').map((item) => item.trim()).filter(Boolean);

/** Reads `stage` and the overrides from CDK context (see the table at the top of this file). */
export function stageConfigFromContext(node: Node): StageConfig {
  const context = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const stage = context('stage') ?? 'dev';
  if (!isStage(stage)) throw new Error(`Unknown stage "${stage}": use -c stage=${STAGES.join(' or -c stage=')}`);
  const issuer = context('jwtIssuer');
  const audience = list(context('jwtAudience'));
  const corsOrigins = list(context('corsOrigins'));
  const overrides: StageOverrides = {
    ...(context('auth') ? { auth: context('auth') as AuthMode } : {}),
    ...(issuer || audience ? { jwt: { issuer: issuer ?? '', audience: audience ?? [] } } : {}),
    ...(corsOrigins ? { corsOrigins } : {}),
    ...(context('qdrantSecretArn') ? { qdrantSecretArn: context('qdrantSecretArn') } : {}),
    ...(context('qdrantUrl') ? { qdrantUrl: context('qdrantUrl') } : {}),
    ...(context('qdrantCollection') ? { qdrantCollection: context('qdrantCollection') } : {}),
    ...(context('alarmEmail') ? { alarmEmail: context('alarmEmail') } : {}),
    ...(context('architecture') ? { lambdaArchitecture: context('architecture') as LambdaArchitectureName } : {}),
    ...(context('embeddingModelDir') ? { embeddingModelDir: context('embeddingModelDir') } : {}),
    ...(context('tenancy') ? { tenancy: context('tenancy') as TenancyMode } : {}),
    ...(context('tenantClaim') ? { tenantClaim: context('tenantClaim') } : {}),
    ...(context('reindexMaxConcurrency') ? { reindexMaxConcurrency: Number(context('reindexMaxConcurrency')) } : {}),
    ...(context('indexerParallelizationFactor') ? { indexerParallelizationFactor: Number(context('indexerParallelizationFactor')) } : {}),
  };
  return buildStageConfig(stage, overrides);
}

/** Stack name per stage; `cdk deploy --all -c stage=prod` deploys exactly this stack. */
export const stackName = (stage: Stage): string => `PersonaDb-${stage}`;

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
 * | `account`, `region` | the stack's env (app.ts)          | `-c account=123456789012 -c region=eu-west-1`   |
 * | `qdrantSecretArn`   | `qdrant.importedSecret`, complete | `-c qdrantSecretArn=arn:...:secret:qdrant-AbCdEf` |
 * | `qdrantSecretPartialArn` | `qdrant.importedSecret`, partial | `-c qdrantSecretPartialArn=arn:...:secret:qdrant` |
 * | `qdrantSecretKmsKeyArn` | `qdrant.importedSecret.kmsKeyArn` | `-c qdrantSecretKmsKeyArn=arn:aws:kms:...:key/...` |
 * | `qdrantUrl`         | `qdrant.initialUrl`               | `-c qdrantUrl=http://qdrant:6333`               |
 * | `qdrantCollection`  | `qdrant.collection`               | `-c qdrantCollection=personas`                  |
 * | `alarmEmail`        | `alarms.email`                    | `-c alarmEmail=oncall@example.com`              |
 * | `architecture`      | `lambdaArchitecture`              | `-c architecture=x86_64` (LocalStack on x86)   |
 * | `embeddingModelDir` | `embedding.modelDir`              | `-c embeddingModelDir=/models/all-MiniLM-L6-v2` |
 * | `tenancy`           | `tenancy.mode` (single or claim)  | `-c tenancy=claim` (needs `-c auth=jwt`)        |
 * | `tenantClaim`       | `tenancy.claim`                   | `-c tenantClaim=https://example.com/tenant`     |
 * | `reindexMaxConcurrency` | `reindexAtScale.maxConcurrency` | `-c reindexMaxConcurrency=1000`                |
 * | `indexerParallelizationFactor` | `indexerStream.parallelizationFactor` | `-c indexerParallelizationFactor=4` |
 * | `indexerReservedConcurrency` | `functions.indexer.reservedConcurrency` | `-c indexerReservedConcurrency=none` or `=25` |
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

/**
 * An existing Qdrant secret. Secrets Manager appends `-` and six random characters to the name in
 * a secret's ARN; a partial ARN (without them) is declared as such, since a name may itself end in
 * `-` and six characters, and the grants then add the `-??????` suffix. A secret encrypted with a
 * customer managed KMS key needs kms:Decrypt on that key (through Secrets Manager) for everyone
 * who reads it.
 */
export interface ImportedSecret {
  readonly arn: string;
  readonly arnForm: 'complete' | 'partial';
  readonly kmsKeyArn?: string;
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
     * parallelization factor); undefined reserves none. Lambda keeps at least 100 of the account's
     * concurrency unreserved, so reserving N needs an account limit of at least N + 100
     * (RESERVED_CONCURRENCY_FLOOR); new accounts may start at 10, where no reservation is possible.
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
    readonly importedSecret?: ImportedSecret;
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
  /** A complete secret ARN (ending in `-` and six random characters). */
  readonly qdrantSecretArn?: string;
  /** A secret ARN without the random suffix. */
  readonly qdrantSecretPartialArn?: string;
  readonly qdrantSecretKmsKeyArn?: string;
  /** A positive count, or `none` to reserve nothing. */
  readonly indexerReservedConcurrency?: number | 'none';
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
  const importedSecret = importedSecretFrom(overrides) ?? base.qdrant.importedSecret;
  const indexer = { ...base.functions.indexer, ...reservedConcurrencyOverride(overrides.indexerReservedConcurrency) };
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
    functions: { ...base.functions, indexer },
    qdrant: {
      ...base.qdrant,
      ...(importedSecret ? { importedSecret } : {}),
      initialUrl: overrides.qdrantUrl ?? base.qdrant.initialUrl,
      collection: overrides.qdrantCollection ?? base.qdrant.collection,
    },
    embedding: { ...base.embedding, ...(overrides.embeddingModelDir ? { modelDir: overrides.embeddingModelDir } : {}) },
    tenancy,
    alarms: { ...base.alarms, ...(overrides.alarmEmail ? { email: overrides.alarmEmail } : {}) },
  };
}

const withoutCors = ({ cors: _cors, ...api }: StageConfig['api']): Omit<StageConfig['api'], 'cors'> => api;

const SECRET_ARN = /^arn:[\w-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/;
/** The random suffix Secrets Manager appends to every secret name in its ARN. */
const SECRET_SUFFIX = /-[A-Za-z0-9]{6}$/;
/**
 * A partial ARN whose name ends like this is taken for a complete one by Secrets Manager itself
 * ("those characters cause Secrets Manager to assume that you're specifying a complete ARN":
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen),
 * so GetSecretValue by that ARN fails whatever the grants say.
 */
const SUFFIX_LIKE_NAME_END = /-.{6}$/;
const KMS_KEY_ARN = /^arn:[\w-]+:kms:[a-z0-9-]+:\d{12}:key\/.+$/;

function importedSecretFrom(overrides: StageOverrides): ImportedSecret | undefined {
  const { qdrantSecretArn: complete, qdrantSecretPartialArn: partial, qdrantSecretKmsKeyArn: kmsKeyArn } = overrides;
  if (complete !== undefined && partial !== undefined) throw new Error('Give the Qdrant secret once: -c qdrantSecretArn (complete ARN) or -c qdrantSecretPartialArn, not both.');
  const arn = complete ?? partial;
  if (arn === undefined) {
    if (kmsKeyArn !== undefined) throw new Error('qdrantSecretKmsKeyArn is the key of an imported secret: add -c qdrantSecretArn=... (the stack\'s own secret uses the AWS managed key).');
    return undefined;
  }
  const option = complete !== undefined ? 'qdrantSecretArn' : 'qdrantSecretPartialArn';
  if (!SECRET_ARN.test(arn)) throw new Error(`${option} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>...); got "${arn}"`);
  if (partial !== undefined && SUFFIX_LIKE_NAME_END.test(partial)) {
    throw new Error(
      `The secret name in qdrantSecretPartialArn "${partial}" ends in "-" and six characters, which Secrets Manager takes for the random suffix of a complete ARN, so the functions could not read the secret by this ARN. Pass the complete ARN (\`aws secretsmanager describe-secret --secret-id <name> --query ARN\`) with -c qdrantSecretArn=...`,
    );
  }
  if (complete !== undefined && !SECRET_SUFFIX.test(complete)) {
    throw new Error(
      `qdrantSecretArn must be the complete ARN, ending in "-" and six random characters as \`aws secretsmanager describe-secret --secret-id <name> --query ARN\` prints it; got "${complete}". For an ARN without the suffix use -c qdrantSecretPartialArn=...`,
    );
  }
  if (kmsKeyArn !== undefined && !KMS_KEY_ARN.test(kmsKeyArn)) {
    throw new Error(`qdrantSecretKmsKeyArn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>), not an alias; got "${kmsKeyArn}"`);
  }
  return { arn, arnForm: complete !== undefined ? 'complete' : 'partial', ...(kmsKeyArn ? { kmsKeyArn } : {}) };
}

/**
 * Lambda keeps this much of the account's concurrency unreserved: a reservation that would leave
 * less fails CreateFunction / PutFunctionConcurrency
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html: "You can reserve up to the Unreserved account concurrency value that is shown, minus 100").
 */
export const RESERVED_CONCURRENCY_FLOOR = 100;

function reservedConcurrencyOverride(value: StageOverrides['indexerReservedConcurrency']): { reservedConcurrency?: number } {
  if (value === undefined) return {};
  if (value === 'none') return { reservedConcurrency: undefined };
  // 0 is valid for Lambda but throttles every invocation: the stream would stop being indexed.
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`indexerReservedConcurrency must be a whole number of at least 1, or none to reserve nothing (0 would stop the indexer); got "${String(value)}"`);
  }
  return { reservedConcurrency: value };
}

const list = (value: string | undefined): string[] | undefined =>
  value === undefined ? undefined : value.split(',').map((item) => item.trim()).filter(Boolean);

/** A CDK context value as the CLI passes it (`-c key=value`), undefined when unset or empty. */
export function contextString(node: Pick<Node, 'tryGetContext'>, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

/** Reads `stage` and the overrides from CDK context (see the table at the top of this file). */
export function stageConfigFromContext(node: Node): StageConfig {
  const context = (key: string) => contextString(node, key);
  const stage = context('stage') ?? 'dev';
  if (!isStage(stage)) throw new Error(`Unknown stage "${stage}": use -c stage=${STAGES.join(' or -c stage=')}`);
  const issuer = context('jwtIssuer');
  const audience = list(context('jwtAudience'));
  const corsOrigins = list(context('corsOrigins'));
  const reserved = context('indexerReservedConcurrency');
  const overrides: StageOverrides = {
    ...(context('auth') ? { auth: context('auth') as AuthMode } : {}),
    ...(issuer || audience ? { jwt: { issuer: issuer ?? '', audience: audience ?? [] } } : {}),
    ...(corsOrigins ? { corsOrigins } : {}),
    ...(context('qdrantSecretArn') ? { qdrantSecretArn: context('qdrantSecretArn') } : {}),
    ...(context('qdrantSecretPartialArn') ? { qdrantSecretPartialArn: context('qdrantSecretPartialArn') } : {}),
    ...(context('qdrantSecretKmsKeyArn') ? { qdrantSecretKmsKeyArn: context('qdrantSecretKmsKeyArn') } : {}),
    ...(reserved !== undefined ? { indexerReservedConcurrency: reserved === 'none' ? 'none' : Number(reserved) } : {}),
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

/**
 * Runtime configuration, read from the environment once per process. The CDK stack sets these
 * for Lambda; the local runtime sets them for its children. Defaults suit the local runtime.
 */
export interface TableConfig {
  personaTableName: string;
  idempotencyTableName: string;
  /** Set for DynamoDB Local; unset in AWS. */
  dynamodbEndpoint: string | undefined;
  region: string;
}

export function tableConfig(env: NodeJS.ProcessEnv = process.env): TableConfig {
  return {
    personaTableName: env.TABLE_NAME ?? 'personas',
    idempotencyTableName: env.IDEMPOTENCY_TABLE_NAME ?? `${env.TABLE_NAME ?? 'personas'}-idempotency`,
    dynamodbEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
  };
}

/** How long a completed Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

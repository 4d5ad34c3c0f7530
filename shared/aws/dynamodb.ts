import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TableConfig } from '../config';
import { tracer } from '../observability';

/**
 * A client for the configured endpoint. DynamoDB Local accepts any credentials, so local runs
 * get fixed dummy ones instead of failing on a machine with no AWS profile.
 */
export function createDynamoDbClient(config: Pick<TableConfig, 'region' | 'dynamodbEndpoint'>): DynamoDBClient {
  // Traced in Lambda (a no-op elsewhere).
  return tracer.captureAWSv3Client(new DynamoDBClient({
    region: config.region,
    ...(config.dynamodbEndpoint
      ? {
          endpoint: config.dynamodbEndpoint,
          credentials: {
            accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
            secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
          },
        }
      : {}),
    maxAttempts: 5,
  }));
}

export function createDocumentClient(config: TableConfig): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(createDynamoDbClient(config), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    unmarshallOptions: { wrapNumbers: false },
  });
}

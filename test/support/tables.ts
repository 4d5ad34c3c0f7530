import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { tableConfig, type TableConfig } from '../../shared/config';
import { ensureTables } from '../../local/tables';

/**
 * Points this test file's process at fresh, uniquely named tables in the shared DynamoDB Local,
 * so files never see each other's data.
 */
export async function useFreshTables(prefix = 'personas'): Promise<TableConfig> {
  process.env.DYNAMODB_ENDPOINT = inject('dynamodbEndpoint');
  process.env.TABLE_NAME = `${prefix}-${randomUUID().slice(0, 8)}`;
  delete process.env.IDEMPOTENCY_TABLE_NAME;
  process.env.AWS_REGION = 'us-east-1';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const config = tableConfig();
  const client = new DynamoDBClient({
    region: config.region,
    endpoint: config.dynamodbEndpoint!,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await ensureTables(client, config);
  client.destroy();
  return config;
}

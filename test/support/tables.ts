import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { createDynamoDbClient } from '../../shared/aws/dynamodb';
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
  const client = createDynamoDbClient(config);
  await ensureTables(client, config);
  client.destroy();
  return config;
}

/** Items in a table of this file's DynamoDB Local, counted by a full scan. */
export async function countTableItems(tableName: string): Promise<number> {
  const client = createDynamoDbClient(tableConfig());
  let count = 0;
  let start: Record<string, any> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, Select: 'COUNT', ...(start ? { ExclusiveStartKey: start } : {}) }));
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  client.destroy();
  return count;
}

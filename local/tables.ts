import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { TableConfig } from '../shared/config';
import { idempotencyTableDesign, personaTableDesign } from '../shared/tableDesign';

async function tableExists(client: DynamoDBClient, name: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: name }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}

async function createTable(client: DynamoDBClient, input: ConstructorParameters<typeof CreateTableCommand>[0]): Promise<void> {
  try {
    await client.send(new CreateTableCommand(input));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
}

/** Creates the persona table (with its stream) and the idempotency table when missing; existing data is kept. */
export async function ensureTables(client: DynamoDBClient, config: TableConfig): Promise<void> {
  if (!(await tableExists(client, config.personaTableName))) {
    await createTable(client, {
      TableName: config.personaTableName,
      AttributeDefinitions: [{ AttributeName: personaTableDesign.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: personaTableDesign.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: personaTableDesign.streamViewType },
    });
  }
  if (!(await tableExists(client, config.idempotencyTableName))) {
    await createTable(client, {
      TableName: config.idempotencyTableName,
      AttributeDefinitions: [{ AttributeName: idempotencyTableDesign.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: idempotencyTableDesign.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    });
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: config.idempotencyTableName,
        TimeToLiveSpecification: { Enabled: true, AttributeName: idempotencyTableDesign.timeToLiveAttribute },
      }),
    );
  }
}

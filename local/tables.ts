import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { TableConfig } from '../shared/config';
import { idempotencyTableDesign, personaTableDesign, tenantIndexDesign } from '../shared/tableDesign';

async function describeTable(client: DynamoDBClient, name: string) {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

const tableExists = async (client: DynamoDBClient, name: string): Promise<boolean> => (await describeTable(client, name)) !== undefined;

const tenantIndexAttributes = [
  { AttributeName: tenantIndexDesign.partitionKey, AttributeType: 'S' as const },
  { AttributeName: tenantIndexDesign.sortKey, AttributeType: 'S' as const },
];
const tenantIndex = {
  IndexName: tenantIndexDesign.indexName,
  KeySchema: [
    { AttributeName: tenantIndexDesign.partitionKey, KeyType: 'HASH' as const },
    { AttributeName: tenantIndexDesign.sortKey, KeyType: 'RANGE' as const },
  ],
  Projection: { ProjectionType: 'ALL' as const },
};

async function createTable(client: DynamoDBClient, input: ConstructorParameters<typeof CreateTableCommand>[0]): Promise<void> {
  try {
    await client.send(new CreateTableCommand(input));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
}

/** Creates the persona table (with its stream) and the idempotency table when missing; existing data is kept. */
export async function ensureTables(client: DynamoDBClient, config: TableConfig): Promise<void> {
  const personas = await describeTable(client, config.personaTableName);
  if (!personas) {
    await createTable(client, {
      TableName: config.personaTableName,
      AttributeDefinitions: [{ AttributeName: personaTableDesign.partitionKey, AttributeType: 'S' }, tenantIndexAttributes[0]!],
      KeySchema: [{ AttributeName: personaTableDesign.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [tenantIndex],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: personaTableDesign.streamViewType },
    });
  } else if (!personas.GlobalSecondaryIndexes?.some((index) => index.IndexName === tenantIndexDesign.indexName)) {
    // A table kept from before tenancy (npm start -- --persist): the index is added, as the stack adds it.
    await client.send(
      new UpdateTableCommand({
        TableName: config.personaTableName,
        AttributeDefinitions: tenantIndexAttributes,
        GlobalSecondaryIndexUpdates: [{ Create: tenantIndex }],
      }),
    );
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

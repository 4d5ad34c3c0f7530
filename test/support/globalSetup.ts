import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodbLocal';
import { generateTestModel } from '../../lib/generatedModels/testModel';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

let dynamodb: DynamoDbLocal | undefined;

/**
 * One real DynamoDB Local for the whole run (each test file creates its own tables in it), and
 * the generated test model that the embedding tests and the CDK asset tests load.
 */
export async function setup(project: TestProject): Promise<void> {
  await generateTestModel();
  dynamodb = await startDynamoDbLocal({ port: await freePort(), quiet: true });
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
}

export async function teardown(): Promise<void> {
  await dynamodb?.stop();
}

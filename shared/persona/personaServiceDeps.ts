import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../aws/dynamodb';
import { tableConfig } from '../config';
import { requestTenant } from '../tenancy/tenancy';
import { personaRepository } from './personaRepository';
import type { PersonaServiceDeps } from './personaService';

let client: { documents: DynamoDBDocumentClient; tables: { personas: string; idempotency: string } } | undefined;

/**
 * The deps of a request: the table's client is built once per warm container (and per local
 * process); the repository is confined to the request's tenant (requestTenant: a 403 when a `claim`
 * stage's request names none), so nothing a handler does with it reaches another tenant's items.
 */
export function personaServiceDeps(event: Pick<APIGatewayProxyEventV2, 'requestContext'>): PersonaServiceDeps {
  const tenant = requestTenant(event);
  if (!client) {
    const config = tableConfig();
    client = { documents: createDocumentClient(config), tables: { personas: config.personaTableName, idempotency: config.idempotencyTableName } };
  }
  return { repository: personaRepository(client.documents, client.tables, tenant) };
}

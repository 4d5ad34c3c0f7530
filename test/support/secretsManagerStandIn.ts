/**
 * A local stand-in for AWS Secrets Manager, speaking its wire protocol so the real SDK client (and
 * Powertools parameters on top of it) talk to it unchanged when AWS_ENDPOINT_URL_SECRETS_MANAGER
 * points here (service-specific endpoints:
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
 *
 * Protocol, as AWS documents it (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html,
 * .../CommonParameters.html): the AWS JSON 1.1 protocol: `POST /` with
 * `X-Amz-Target: secretsmanager.<Action>` and `Content-Type: application/x-amz-json-1.1`; GetSecretValue takes
 * `{"SecretId", "VersionId"?, "VersionStage"?}` (SecretId: ARN or name; default stage AWSCURRENT) and
 * answers `{ARN, Name, VersionId, SecretString, VersionStages, CreatedDate}`; an unknown secret is a 400 with
 * `{"__type": "ResourceNotFoundException", "message"}`. Signatures are not checked (as DynamoDB Local does not).
 * `rotate()` plays PutSecretValue: a new VersionId becomes AWSCURRENT.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredSecret {
  arn: string;
  name: string;
  versionId: string;
  value: string;
  createdAt: number;
}

export interface SecretsManagerStandIn {
  readonly endpoint: string;
  /** Creates (or replaces) a secret; returns its ARN. */
  create(name: string, value: string | object): string;
  /** A new version becomes AWSCURRENT (what PutSecretValue or a rotation does); returns its VersionId. */
  rotate(arnOrName: string, value: string | object): string;
  versionOf(arnOrName: string): string;
  /** GetSecretValue calls answered so far, per secret name. */
  readonly reads: Map<string, number>;
  close(): Promise<void>;
}

export async function startSecretsManagerStandIn(region = 'us-east-1', account = '123456789012'): Promise<SecretsManagerStandIn> {
  const secrets = new Map<string, StoredSecret>();
  const reads = new Map<string, number>();
  const find = (id: string) => secrets.get(id) ?? [...secrets.values()].find((secret) => secret.arn === id);
  const text = (value: string | object) => (typeof value === 'string' ? value : JSON.stringify(value));

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: object) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify(body));
      };
      const target = String(request.headers['x-amz-target'] ?? '');
      let input: { SecretId?: string };
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: string };
      } catch {
        answer(400, { __type: 'SerializationException', message: 'body is not JSON' });
        return;
      }
      const secret = input.SecretId ? find(input.SecretId) : undefined;
      if (target !== 'secretsmanager.GetSecretValue' && target !== 'secretsmanager.DescribeSecret') {
        answer(400, { __type: 'UnknownOperationException', message: `unsupported ${target}` });
        return;
      }
      if (!secret) {
        answer(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
        return;
      }
      if (target === 'secretsmanager.DescribeSecret') {
        answer(200, { ARN: secret.arn, Name: secret.name, VersionIdsToStages: { [secret.versionId]: ['AWSCURRENT'] } });
        return;
      }
      reads.set(secret.name, (reads.get(secret.name) ?? 0) + 1);
      answer(200, {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: secret.versionId,
        SecretString: secret.value,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: secret.createdAt / 1000,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    reads,
    create(name, value) {
      // Secrets Manager appends a hyphen and six random characters to the name in the ARN.
      const arn = `arn:aws:secretsmanager:${region}:${account}:secret:${name}-${randomUUID().slice(0, 6)}`;
      secrets.set(name, { arn, name, versionId: randomUUID(), value: text(value), createdAt: Date.now() });
      return arn;
    },
    rotate(id, value) {
      const secret = find(id);
      if (!secret) throw new Error(`no secret ${id}`);
      secret.versionId = randomUUID();
      secret.value = text(value);
      secret.createdAt = Date.now();
      return secret.versionId;
    },
    versionOf(id) {
      const secret = find(id);
      if (!secret) throw new Error(`no secret ${id}`);
      return secret.versionId;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

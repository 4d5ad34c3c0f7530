import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';

/** How long a warm container keeps a secret before reading it again (Powertools cache `maxAge`). */
export const SECRET_MAX_AGE_SECONDS = 300;

/**
 * Powertools' SecretsProvider (cache with `maxAge`, `forceFetch`), which also remembers the
 * VersionId of each value it fetched, so callers can log which version is in use without ever
 * logging the value. The endpoint follows the SDK's own settings (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
 */
class VersionedSecretsProvider extends SecretsProvider {
  readonly versions = new Map<string, string | undefined>();

  protected override async _get(name: string, options?: { sdkOptions?: Record<string, unknown> }): Promise<string | Uint8Array | undefined> {
    const result = await this.client.send(new GetSecretValueCommand({ ...(options?.sdkOptions ?? {}), SecretId: name }));
    this.versions.set(name, result.VersionId);
    return result.SecretString ?? result.SecretBinary;
  }
}

let provider: VersionedSecretsProvider | undefined;

export interface SecretRead<T> {
  readonly value: T;
  /** Secrets Manager VersionId of the value (safe to log). */
  readonly versionId: string | undefined;
}

/**
 * The secret's current value: from the cache while it is younger than SECRET_MAX_AGE_SECONDS,
 * else (or with `forceFetch`) from Secrets Manager.
 */
export async function readSecret(secretId: string, options: { forceFetch?: boolean; json: true }): Promise<SecretRead<unknown>>;
export async function readSecret(secretId: string, options?: { forceFetch?: boolean; json?: false }): Promise<SecretRead<string>>;
export async function readSecret(secretId: string, options: { forceFetch?: boolean; json?: boolean } = {}): Promise<SecretRead<unknown>> {
  provider ??= new VersionedSecretsProvider();
  const value = await provider.get(secretId, {
    maxAge: SECRET_MAX_AGE_SECONDS,
    forceFetch: options.forceFetch ?? false,
    ...(options.json ? { transform: 'json' as const } : {}),
  });
  if (value === undefined) throw new Error(`The secret ${secretId} has no value; put one with aws secretsmanager put-secret-value.`);
  return { value, versionId: provider.versions.get(secretId) };
}

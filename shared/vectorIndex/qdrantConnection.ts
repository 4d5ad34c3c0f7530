import { QdrantClient } from '@qdrant/js-client-rest';
import { readSecret } from '../aws/secrets';
import { logger } from '../observability';
import { sendsCredentialsInClear } from '../http/loopbackHost';

export interface QdrantSettings {
  url: string;
  apiKey: string | undefined;
  /** The alias (or collection) that every reader and writer uses. */
  collection: string;
  /** Secrets Manager VersionId the url and key came from (undefined for environment settings). */
  secretVersion?: string | undefined;
  /**
   * Plain http to a non-loopback host sends the API key in clear: allowed only with this explicit
   * opt-out (`"allowInsecureHttp": true` in the secret, or QDRANT_ALLOW_INSECURE_HTTP=true), e.g. on
   * the LocalStack compose network. Logged as a warning whenever a client is built.
   */
  allowInsecureHttp?: boolean;
}

interface SecretValue {
  url?: unknown;
  apiKey?: unknown;
  allowInsecureHttp?: unknown;
}

/**
 * Where Qdrant is. In AWS the URL and API key come from the Secrets Manager secret named by
 * QDRANT_SECRET_ARN (JSON {"url": ..., "apiKey": ...}), never from plain environment values,
 * cached for SECRET_MAX_AGE_SECONDS (`forceFetch` reads it now); locally QDRANT_URL /
 * QDRANT_API_KEY, defaulting to the local Qdrant server.
 */
export async function qdrantSettings(env: NodeJS.ProcessEnv = process.env, options: { forceFetch?: boolean } = {}): Promise<QdrantSettings> {
  const collection = env.QDRANT_COLLECTION ?? 'personas';
  if (env.QDRANT_SECRET_ARN) {
    const { value, versionId } = await readSecret(env.QDRANT_SECRET_ARN, { json: true, forceFetch: options.forceFetch ?? false });
    const secret = value as SecretValue | undefined;
    if (!secret || typeof secret.url !== 'string') {
      throw new Error(`The secret ${env.QDRANT_SECRET_ARN} must be JSON {"url": "https://…:6333", "apiKey": "…"}; its "url" is missing.`);
    }
    return {
      url: secret.url,
      apiKey: typeof secret.apiKey === 'string' ? secret.apiKey : undefined,
      collection,
      secretVersion: versionId,
      allowInsecureHttp: secret.allowInsecureHttp === true,
    };
  }
  return {
    url: env.QDRANT_URL ?? 'http://127.0.0.1:6333',
    apiKey: env.QDRANT_API_KEY || undefined,
    collection,
    allowInsecureHttp: env.QDRANT_ALLOW_INSECURE_HTTP === 'true',
  };
}

export class InsecureQdrantUrlError extends Error {
  constructor(host: string) {
    super(
      `The Qdrant URL uses http to ${host}, which would send the API key in clear. Use an https URL, or, on a private network ` +
        'only (e.g. the LocalStack compose network), opt out with "allowInsecureHttp": true in the Qdrant secret or QDRANT_ALLOW_INSECURE_HTTP=true.',
    );
    this.name = 'InsecureQdrantUrlError';
  }
}

/**
 * A client for `settings`. https is required for any host but loopback unless the settings opt
 * out; over plain http the key goes in the `api-key` header option, which the client sends without
 * its "unsecure connection" warning (the opt-out is logged here instead, once per client).
 */
export function createQdrantClient(settings: Pick<QdrantSettings, 'url' | 'apiKey' | 'allowInsecureHttp'>): QdrantClient {
  const url = new URL(settings.url);
  const plainHttp = url.protocol === 'http:';
  if (sendsCredentialsInClear(url)) {
    if (!settings.allowInsecureHttp) throw new InsecureQdrantUrlError(url.host);
    logger.warn('Qdrant is reached over plain http (allowInsecureHttp is set): the API key is not encrypted in transit', { host: url.host });
  }
  const auth = settings.apiKey ? (plainHttp ? { headers: { 'api-key': settings.apiKey } } : { apiKey: settings.apiKey }) : {};
  return new QdrantClient({
    url: settings.url,
    ...auth,
    // The version handshake costs a request per cold start; the API subset used is stable across 1.x.
    checkCompatibility: false,
    timeout: 10_000,
  });
}

/** No HTTP answer at all: wrong host, DNS, refused, reset, timed out (undici's `fetch failed` and its causes). */
export function isConnectionFailure(error: unknown): boolean {
  for (let current = error as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 5; depth++) {
    if (typeof current.code === 'string' && /^(E[A-Z]+|UND_ERR)/.test(current.code)) return true;
    if (current.name === 'AbortError' || current.name === 'TimeoutError' || current.message === 'fetch failed') return true;
    current = current.cause as typeof current;
  }
  return false;
}

/** 401/403 (wrong or rotated key) or no HTTP answer at all. */
export function isAuthOrConnectionFailure(error: unknown): boolean {
  const status = (error as { status?: unknown } | undefined)?.status;
  return status === 401 || status === 403 || isConnectionFailure(error);
}

/** Forced re-reads after failures happen at most this often, so an outage does not hammer Secrets Manager. */
export const FORCED_REFRESH_INTERVAL_MS = 10_000;

/**
 * A Qdrant client that follows its settings: before each call it re-reads them (free while the
 * secret cache is fresh, a new read once it has aged), and after a 401/403 or a connection failure
 * it re-reads them at once; when they changed (rotated key, url put in after deploy) it builds a new
 * client and retries that call once. Each settings change is logged with the secret version, never
 * the value.
 */
export async function connectQdrant(load: (forceFetch: boolean) => Promise<QdrantSettings>): Promise<{ client: QdrantClient; settings: () => QdrantSettings }> {
  let current = await build(await load(false), 'initial');
  let lastForced = 0;

  function build(settings: QdrantSettings, reason: string) {
    const client = createQdrantClient(settings);
    logger.info('Qdrant connection settings in use', { reason, host: new URL(settings.url).host, secretVersion: settings.secretVersion, apiKey: settings.apiKey ? 'set' : 'none' });
    return { settings, client };
  }
  const same = (a: QdrantSettings, b: QdrantSettings) =>
    a.url === b.url && a.apiKey === b.apiKey && a.secretVersion === b.secretVersion && a.allowInsecureHttp === b.allowInsecureHttp;
  async function refresh(forceFetch: boolean, reason: string): Promise<boolean> {
    const settings = await load(forceFetch);
    if (same(settings, current.settings)) return false;
    current = build(settings, reason);
    return true;
  }

  type AsyncCall = () => Promise<unknown>;
  async function callFollowingSettings(invoke: AsyncCall): Promise<unknown> {
    // A failed re-read keeps the settings in use; a real problem shows up in the call itself.
    await refresh(false, 'cached settings expired').catch((error: unknown) => logger.warn('Re-reading the Qdrant settings failed', { error: error as Error }));
    try {
      return await invoke();
    } catch (error) {
      if (!isAuthOrConnectionFailure(error) || Date.now() - lastForced < FORCED_REFRESH_INTERVAL_MS) throw error;
      lastForced = Date.now();
      const status = (error as { status?: unknown }).status;
      const changed = await refresh(true, typeof status === 'number' ? `Qdrant answered ${status}` : 'Qdrant unreachable').catch((refreshError: unknown) => {
        logger.warn('Re-reading the Qdrant settings failed', { error: refreshError as Error });
        return false;
      });
      if (!changed) throw error;
      return await invoke();
    }
  }
  type Members = Record<PropertyKey, (...args: unknown[]) => unknown>;
  const client = new Proxy({} as QdrantClient, {
    get(_target, property) {
      const member = (current.client as unknown as Record<PropertyKey, unknown>)[property];
      if (typeof member !== 'function') return member;
      // `api()` hands out the raw OpenAPI operations (all async): each is followed the same way.
      if (property === 'api') {
        return (...apiArgs: unknown[]) =>
          new Proxy({}, {
            get: (_api, operation) => (...args: unknown[]) =>
              callFollowingSettings(() => ((current.client.api as (...a: unknown[]) => unknown)(...apiArgs) as Members)[operation]!(...args) as Promise<unknown>),
          });
      }
      return (...args: unknown[]) => callFollowingSettings(() => (current.client as unknown as Members)[property]!(...args) as Promise<unknown>);
    },
  });
  return { client, settings: () => current.settings };
}

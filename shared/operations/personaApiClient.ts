/**
 * The operator commands' way to the persona API: the typed client (packages/client) with the CLI's
 * patience (retries for about a minute, as an import of a large file wants), and the message for a
 * failure a retry cannot fix: what answered, and what to do about it.
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { ApiError, ApiNetworkError, createPersonaClient, type PersonaClient, type RequestAuth, type RetryOptions } from '../../packages/client/src/index';
import { sigv4Auth } from '../../packages/client/src/sigv4';

export interface ApiTarget {
  /** Base URL, e.g. http://localhost:3000 (npm start) or the stack's ApiUrl output. */
  apiUrl: string;
  /** Extra headers on every request, e.g. `authorization: Bearer …` for a JWT stage. */
  headers?: Record<string, string>;
  /** Signs each request instead (iamAuth, for a stage with auth=iam). */
  auth?: RequestAuth;
  /** Default: CLI_RETRY; false for none. */
  retry?: RetryOptions | false;
  signal?: AbortSignal;
}

export const DEFAULT_API_URL = 'http://localhost:3000';

/** Waits of up to 30 s, about a minute and a half in all before giving up. */
export const CLI_RETRY: RetryOptions = { attempts: 9, baseDelayMs: 400, maxDelayMs: 30_000 };

export const personaClientFor = (target: ApiTarget): PersonaClient =>
  createPersonaClient({ baseUrl: target.apiUrl, retry: target.retry ?? CLI_RETRY, ...(target.headers ? { headers: target.headers } : {}), ...(target.auth ? { auth: target.auth } : {}) });

/**
 * SigV4 with the AWS credentials the SDK would use (environment, profile, SSO, instance role), for a
 * stage with auth=iam. The region is the one in an execute-api host name, else AWS_REGION.
 */
export function iamAuth(apiUrl: string, env: NodeJS.ProcessEnv = process.env): RequestAuth {
  const fromHost = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(new URL(apiUrl).hostname)?.[1];
  const region = fromHost ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error(`--iam needs the stage's region: ${new URL(apiUrl).hostname} does not name one; set AWS_REGION`);
  return sigv4Auth({ credentials: defaultProvider(), region });
}

const LOCAL_TOKEN = 'locally (AUTH=jwt npm start): PERSONAS_TOKEN=$(npx personas token --scope personas:read,personas:write)';

/** What to do about an answer a retry cannot fix; the problem's type tells the gateway's own 403 from the API's. */
function advice(error: ApiError): string {
  if (error.status === 401) {
    return `the API wants a valid token: for a stage with auth=jwt pass --token <token> or set PERSONAS_TOKEN (${LOCAL_TOKEN}); for a stage with auth=iam pass --iam (SigV4 with your AWS credentials)`;
  }
  if (error.status === 403) {
    if (error.is('tenant-required')) {
      return 'this stage keeps tenants apart (tenancy=claim) and the token names no valid tenant: get a token that carries your tenant claim (locally: PERSONAS_TOKEN=$(npx personas token --scope personas:read,personas:write --tenant T))';
    }
    const required = error.problem.required_scope;
    if (typeof required === 'string') return `the token lacks ${required} (or personas:admin); ${LOCAL_TOKEN}`;
    // API Gateway's JWT authorizer answers {"message":"Forbidden"} itself when the token has none of the route's scopes.
    return `the token lacks the scope this call needs (export and search need personas:read, import needs personas:write; personas:admin covers both): ${LOCAL_TOKEN}; with auth=iam (--iam), your IAM identity lacks the policy of that route (ReaderPolicyArn, WriterPolicyArn)`;
  }
  if (error.status === 404) return 'no such route: check --api-url (the stack output ApiUrl, or http://localhost:3000 for npm start)';
  return 'see the problem document above';
}

/** The message of an API failure: the request, the answer as it came (or the failure to connect), and the advice; undefined for other errors. */
export function describeApiFailure(error: unknown): string | undefined {
  if (error instanceof ApiError) return `${error.request.method} ${error.request.url} answered ${error.status}: ${error.body.slice(0, 500)}\n(${advice(error)})`;
  if (error instanceof ApiNetworkError) return `${error.message}; is the API running at ${error.request.baseUrl ?? new URL(error.request.url).origin}?`;
  return undefined;
}

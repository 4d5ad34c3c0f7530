/**
 * Tenancy: whose personas a request may reach.
 *
 * - `single` (default): one tenant per stage, as before; table keys are the bare persona ids.
 * - `claim`: every persona belongs to the tenant named by a JWT claim (TENANT_CLAIM, default
 *   `tenant_id`). The tenant comes only from the claims API Gateway's JWT authorizer validated and
 *   hands the function, never from the body, the path or a header. Its table key is
 *   `<tenant>#<id>` and its Qdrant point carries `tenant_id` (see ./tenantKeys.ts).
 *
 * The tenant of a request is resolved here, and only here (requestTenant), by the deps of every
 * data route (personaServiceDeps, searchDeps, indexReadDeps).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ProblemError } from '../http/problem';

export type TenancyMode = 'single' | 'claim';
export const TENANCY_MODES: readonly TenancyMode[] = ['single', 'claim'];
export const DEFAULT_TENANT_CLAIM = 'tenant_id';

/** Letters, digits, `_`, `-` and `.`, 1 to 64 characters: never `#`, which separates tenant and id in a key. */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** A JWT claim name as it appears in the authorizer's claims (namespaced claims such as `https://x/tenant` included). */
const CLAIM_NAME_PATTERN = /^[\x21-\x7e]{1,200}$/;

export interface TenancyConfig {
  mode: TenancyMode;
  /** The JWT claim that names the tenant (mode `claim`). */
  claim: string;
}

export class TenancyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TenancyConfigError';
  }
}

/** TENANCY (single|claim, default single) and TENANT_CLAIM (default tenant_id), as the stack sets them for every function. */
export function tenancyConfig(env: NodeJS.ProcessEnv = process.env): TenancyConfig {
  const mode = (env.TENANCY || 'single') as TenancyMode;
  if (!TENANCY_MODES.includes(mode)) throw new TenancyConfigError(`TENANCY must be single or claim, not "${env.TENANCY}".`);
  const claim = env.TENANT_CLAIM || DEFAULT_TENANT_CLAIM;
  if (!CLAIM_NAME_PATTERN.test(claim)) throw new TenancyConfigError(`TENANT_CLAIM must be a JWT claim name (visible ASCII), not "${claim}".`);
  return { mode, claim };
}

export const isValidTenant = (value: unknown): value is string => typeof value === 'string' && TENANT_PATTERN.test(value);

/** Checks a tenant an operator names (CLI flags); the same rule as the claim's. */
export function assertTenant(value: string, source: string): string {
  if (!isValidTenant(value)) throw new TenancyConfigError(`${source} must be 1 to 64 letters, digits, '_', '-' or '.', not "${value}".`);
  return value;
}

function forbidden(detail: string): ProblemError {
  return new ProblemError(403, 'tenant-required', `${detail} Ask your identity provider for a token that carries your tenant (locally: personas token --scope … --tenant T).`);
}

/**
 * The tenant a request acts for: undefined on a single-tenant stage; on a `claim` stage the value of
 * the configured claim in `requestContext.authorizer.jwt.claims` (payload format 2.0, where API
 * Gateway puts the claims of the token its JWT authorizer validated:
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
 * A missing, empty or malformed claim is a 403: the request reaches no tenant's data.
 */
export function requestTenant(event: Pick<APIGatewayProxyEventV2, 'requestContext'>, config: TenancyConfig = tenancyConfig()): string | undefined {
  if (config.mode === 'single') return undefined;
  const claims = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } } | undefined)?.authorizer?.jwt?.claims;
  if (!claims) throw forbidden('This stage keeps tenants apart and the request carries no validated JWT claims.');
  const value = claims[config.claim];
  if (value === undefined || value === null || value === '') throw forbidden(`The token has no '${config.claim}' claim naming its tenant.`);
  if (!isValidTenant(value)) {
    throw forbidden(`The token's '${config.claim}' claim is not a tenant id (1 to 64 letters, digits, '_', '-' or '.').`);
  }
  return value;
}

/**
 * The local runtime's token issuer for `AUTH=jwt npm start`: one RSA signing key, generated on first
 * use and kept (mode 0600) in the data dir, so tokens that `personas token` printed stay valid
 * across restarts. The API server publishes the public half at /.well-known/jwks.json and verifies
 * tokens with it (local/jwtAuthorizer.ts), as API Gateway verifies a real issuer's tokens.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { SCOPES, type Scope } from '../shared/routes';
import { tenancyConfig } from '../shared/tenancy/tenancy';
import { localRuntimeConfig } from './localConfig';

/** API Gateway's JWT authorizers accept RSA signatures only (http-api-jwt-authorizer.html, step 3). */
export const LOCAL_SIGNING_ALGORITHM = 'RS256';


export interface LocalIssuerSettings {
  issuer: string;
  audience: string;
  keyFile: string;
}

/** LOCAL_JWT_ISSUER, LOCAL_JWT_AUDIENCE and the key file in the data dir (LOCAL_DATA_DIR, default .data). */
export function localIssuerSettings(env: NodeJS.ProcessEnv = process.env): LocalIssuerSettings {
  return {
    issuer: env.LOCAL_JWT_ISSUER || 'persona-db-local-issuer',
    audience: env.LOCAL_JWT_AUDIENCE || 'persona-db-api',
    keyFile: join(localRuntimeConfig(env, []).dataDir, 'local-jwt-signing-key.json'),
  };
}

interface StoredKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;

async function createKeyFile(keyFile: string): Promise<void> {
  const { privateKey } = await generateKeyPair(LOCAL_SIGNING_ALGORITHM, { extractable: true });
  const stored: StoredKey = { kid: randomUUID(), alg: LOCAL_SIGNING_ALGORITHM, privateJwk: await exportJWK(privateKey) };
  mkdirSync(dirname(keyFile), { recursive: true });
  try {
    // 'wx': when `npm start` and `personas token` race on the first use, one key wins and both read it.
    writeFileSync(keyFile, JSON.stringify(stored), { mode: 0o600, flag: 'wx' });
    chmodSync(keyFile, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

function readKeyFile(keyFile: string): StoredKey | undefined {
  let text: string;
  try {
    text = readFileSync(keyFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const stored = JSON.parse(text) as StoredKey;
  if (!stored.kid || !stored.privateJwk?.n || !stored.privateJwk.d) throw new Error(`${keyFile} is not a local signing key; delete it to have a new one generated (tokens signed with it stop working)`);
  return stored;
}

export interface LocalIssuer {
  readonly issuer: string;
  readonly audience: string;
  /** The public key set, as an issuer serves it at its jwks_uri. */
  readonly jwks: { keys: JWK[] };
  sign(options: LocalTokenOptions): Promise<string>;
}

export interface LocalTokenOptions {
  scopes: readonly Scope[];
  /** Put into the TENANT_CLAIM claim. */
  tenant?: string;
  /** A jose time span: `1h`, `30m`, `7d`. */
  expiresIn?: string;
  subject?: string;
}

/** The issuer of this data dir: its key is read, or generated on first use. */
export async function localIssuer(settings: LocalIssuerSettings = localIssuerSettings(), env: NodeJS.ProcessEnv = process.env): Promise<LocalIssuer> {
  let stored = readKeyFile(settings.keyFile);
  if (!stored) {
    await createKeyFile(settings.keyFile);
    stored = readKeyFile(settings.keyFile)!;
  }
  const publicJwk: JWK = Object.fromEntries(Object.entries(stored.privateJwk).filter(([member]) => !(PRIVATE_MEMBERS as readonly string[]).includes(member)));
  const jwks = { keys: [{ ...publicJwk, kid: stored.kid, alg: stored.alg, use: 'sig' }] };
  const privateKey = await importJWK(stored.privateJwk, stored.alg);
  const { kid, alg } = stored;
  return {
    issuer: settings.issuer,
    audience: settings.audience,
    jwks,
    async sign(options) {
      const unknown = options.scopes.filter((scope) => !SCOPES.includes(scope));
      if (unknown.length) throw new Error(`unknown scope ${unknown.join(', ')}; the API's scopes are ${SCOPES.join(', ')}`);
      const claims: Record<string, string> = { scope: options.scopes.join(' ') };
      // The claim the functions read the tenant from (TENANT_CLAIM, default tenant_id; shared/tenancy/tenancy.ts).
      if (options.tenant !== undefined) claims[tenancyConfig(env).claim] = options.tenant;
      return new SignJWT(claims)
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setSubject(options.subject ?? 'local-developer')
        .setJti(randomUUID())
        .setIssuedAt()
        .setNotBefore('0s')
        .setExpirationTime(options.expiresIn ?? '1h')
        .sign(privateKey);
    },
  };
}

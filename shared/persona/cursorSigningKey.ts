import { randomBytes } from 'node:crypto';
import { readSecret } from '../aws/secrets';

/** HMAC-SHA256 keys shorter than this are guessable enough to forge cursors (RFC 2104 §3: at least the hash output length). */
export const MIN_CURSOR_KEY_BYTES = 32;

export class CursorKeyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CursorKeyConfigError';
  }
}

/** A per-process key for the local runtime and tests: cursors stay valid while `npm start` runs. */
let localKey: string | undefined;

/**
 * The key that signs list cursors. In AWS it is the Secrets Manager secret named by
 * CURSOR_SIGNING_KEY_SECRET_ARN, read through the Powertools cache (never a plaintext environment
 * value); CURSOR_SIGNING_KEY is accepted for other hosts. Outside the local runtime (any Lambda
 * function, or STAGE set) a missing key or one under MIN_CURSOR_KEY_BYTES refuses to start; locally
 * a random key per process is used.
 */
export async function cursorSigningKey(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const deployed = Boolean(env.AWS_LAMBDA_FUNCTION_NAME || env.STAGE);
  let key: string | undefined;
  let source: string;
  if (env.CURSOR_SIGNING_KEY_SECRET_ARN) {
    const { value } = await readSecret(env.CURSOR_SIGNING_KEY_SECRET_ARN);
    key = value;
    source = `the secret ${env.CURSOR_SIGNING_KEY_SECRET_ARN}`;
  } else {
    key = env.CURSOR_SIGNING_KEY || undefined;
    source = 'CURSOR_SIGNING_KEY';
  }
  if (key === undefined) {
    if (deployed) {
      throw new CursorKeyConfigError('No cursor signing key: set CURSOR_SIGNING_KEY_SECRET_ARN to a Secrets Manager secret holding at least 32 random bytes (the stack creates one).');
    }
    localKey ??= randomBytes(MIN_CURSOR_KEY_BYTES).toString('base64url');
    return localKey;
  }
  if (Buffer.byteLength(key, 'utf8') < MIN_CURSOR_KEY_BYTES) {
    throw new CursorKeyConfigError(`The cursor signing key from ${source} has ${Buffer.byteLength(key, 'utf8')} bytes; it needs at least ${MIN_CURSOR_KEY_BYTES}.`);
  }
  return key;
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProblemError } from '../http/problem';

/**
 * Opaque, signed list cursors that expire. The signature makes a tampered or hand-made cursor a
 * clear 400 instead of an arbitrary scan position; the expiry bounds how long a leaked cursor is
 * any use. The key comes from cursorSigningKey() (./cursorSigningKey.ts). A tenant's cursor names
 * its tenant: under the same key, it is an invalid cursor for any other tenant (and for a
 * single-tenant listing), so a cursor leaked from tenant A tells tenant B nothing and moves nothing.
 */
export const CURSOR_TTL_SECONDS = 24 * 60 * 60;

const sign = (key: string, payload: string) => createHmac('sha256', key).update(payload).digest('base64url').slice(0, 22);

export function encodeCursor(lastId: string, key: string, now: number = Date.now(), tenant?: string): string {
  const fields = { v: 2, after: lastId, exp: Math.floor(now / 1000) + CURSOR_TTL_SECONDS, ...(tenant === undefined ? {} : { tenant }) };
  const payload = Buffer.from(JSON.stringify(fields), 'utf8').toString('base64url');
  return `${payload}.${sign(key, payload)}`;
}

export function decodeCursor(cursor: string, key: string, now: number = Date.now(), tenant?: string): string {
  const invalid = () =>
    new ProblemError(400, 'invalid-cursor', 'The cursor is not one this API issued; pass next_cursor from the previous page unchanged, or omit it to start over.', {
      errors: [{ pointer: '#/query/cursor', detail: 'invalid or tampered cursor' }],
    });
  const [payload, signature, ...rest] = cursor.split('.');
  if (!payload || !signature || rest.length > 0) throw invalid();
  const expected = Buffer.from(sign(key, payload));
  const actual = Buffer.from(signature);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw invalid();
  let decoded: { v?: unknown; after?: unknown; exp?: unknown; tenant?: unknown };
  try {
    decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof decoded;
  } catch {
    throw invalid();
  }
  if (decoded.v !== 2 || typeof decoded.after !== 'string' || typeof decoded.exp !== 'number') throw invalid();
  if (decoded.tenant !== tenant) throw invalid();
  if (decoded.exp * 1000 <= now) {
    throw new ProblemError(400, 'cursor-expired', `The cursor is older than ${CURSOR_TTL_SECONDS / 3600} h; start the listing again without a cursor.`, {
      errors: [{ pointer: '#/query/cursor', detail: 'expired cursor' }],
    });
  }
  return decoded.after;
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProblemError } from '../http/problem';

/**
 * Opaque, signed list cursors. The signature makes a tampered or hand-made cursor a clear 400
 * instead of an arbitrary scan position. Set CURSOR_SIGNING_KEY in production so cursors cannot be forged.
 */
const signingKey = () => process.env.CURSOR_SIGNING_KEY ?? 'persona-db-local-cursor-key';

const sign = (payload: string) => createHmac('sha256', signingKey()).update(payload).digest('base64url').slice(0, 22);

export function encodeCursor(lastId: string): string {
  const payload = Buffer.from(JSON.stringify({ v: 1, after: lastId }), 'utf8').toString('base64url');
  return `${payload}.${sign(payload)}`;
}

export function decodeCursor(cursor: string): string {
  const invalid = () =>
    new ProblemError(400, 'invalid-cursor', 'The cursor is not one this API issued; pass next_cursor from the previous page unchanged, or omit it to start over.', {
      errors: [{ pointer: '#/query/cursor', detail: 'invalid or tampered cursor' }],
    });
  const [payload, signature, ...rest] = cursor.split('.');
  if (!payload || !signature || rest.length > 0) throw invalid();
  const expected = Buffer.from(sign(payload));
  const actual = Buffer.from(signature);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw invalid();
  try {
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { v?: unknown; after?: unknown };
    if (decoded.v !== 1 || typeof decoded.after !== 'string') throw invalid();
    return decoded.after;
  } catch {
    throw invalid();
  }
}

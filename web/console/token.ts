/**
 * The bearer token a user may enter for a stage with auth=jwt. Kept in sessionStorage: it lives
 * as long as the tab, is shared by /console and /docs of the same origin, and never leaves them.
 */
const TOKEN_KEY = 'persona-db.bearer-token';

export function bearerToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setBearerToken(token: string): void {
  if (token.trim()) sessionStorage.setItem(TOKEN_KEY, token.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authorizationHeader(): string | undefined {
  const token = bearerToken();
  return token ? `Bearer ${token.replace(/^Bearer\s+/i, '')}` : undefined;
}

import type { IncomingMessage } from 'node:http';
import { isLoopbackHostname } from '../shared/http/loopbackHost';

/**
 * The local servers (the API and the Qdrant-compatible server) listen on 127.0.0.1, but a web page in
 * the developer's browser can still reach them: by DNS rebinding (a name the attacker controls
 * resolving to 127.0.0.1, so the request carries the attacker's Host) or by a cross-origin form POST,
 * which needs no CORS preflight. So a request must name a loopback host, and a browser write must come
 * from the server's own origin.
 */

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Host names to accept besides loopback ones: LOCAL_ALLOWED_HOSTS, comma-separated (for a server deliberately bound elsewhere). */
export const allowedHostsFromEnv = (env: NodeJS.ProcessEnv = process.env): string[] =>
  (env.LOCAL_ALLOWED_HOSTS ?? '').split(',').map((host) => host.trim().toLowerCase()).filter(Boolean);

/** Why this request is refused, or undefined when it may proceed. */
export function localRequestRejection(request: IncomingMessage, allowedHosts: readonly string[] = []): string | undefined {
  const host = request.headers.host;
  if (host !== undefined) {
    let hostname: string;
    try {
      hostname = new URL(`http://${host}`).hostname;
    } catch {
      return `The Host header '${host.slice(0, 100)}' is malformed.`;
    }
    if (!isLoopbackHostname(hostname) && !allowedHosts.includes(hostname)) {
      return `This local server answers only requests for localhost or a loopback address, not for Host '${host.slice(0, 100)}' (a guard against DNS rebinding; LOCAL_ALLOWED_HOSTS adds names).`;
    }
  }
  const origin = request.headers.origin;
  if (origin !== undefined && !SAFE_METHODS.has(request.method ?? 'GET') && origin.toLowerCase() !== `http://${host ?? ''}`.toLowerCase()) {
    return `Cross-origin write refused: a browser page from Origin '${origin.slice(0, 100)}' may not change this local server's data.`;
  }
  return undefined;
}

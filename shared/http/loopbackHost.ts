import { isIP } from 'node:net';

/** localhost and its subdomains (RFC 6761 §6.3 keeps them on this machine), 127.0.0.0/8, ::1. */
export function isLoopbackHostname(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const address = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  if (isIP(address) === 4) return address.startsWith('127.');
  if (isIP(address) === 6) return address === '::1' || address.startsWith('::ffff:127.') || address === '::ffff:7f00:1';
  return false;
}

/** Whether a secret sent to `url` (an API key, a bearer token) crosses a network unencrypted: plain http to a host off this machine. */
export const sendsCredentialsInClear = (url: URL): boolean => url.protocol === 'http:' && !isLoopbackHostname(url.hostname);

/**
 * SigV4 for a stage with auth=iam (API Gateway's IAM authorization), signed by aws4fetch (WebCrypto,
 * no Node-only code, so it signs in a browser too). A module of its own (`@persona-db/client/sigv4`)
 * so that clients that use a bearer token, such as the console, do not carry it.
 */
import { AwsV4Signer } from 'aws4fetch';
import type { RequestAuth } from './transport.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SigV4Options {
  /** Static credentials, or a provider asked before every attempt (the AWS SDK's fromNodeProviderChain() is one: it caches and refreshes). */
  credentials: AwsCredentials | (() => Promise<AwsCredentials>);
  /** The stage's region; default: read from an execute-api host name (abc123.execute-api.eu-west-1.amazonaws.com). */
  region?: string;
  /** Default execute-api (API Gateway). */
  service?: string;
  /** Test hook: the signing time, as YYYYMMDD'T'HHMMSS'Z'. */
  datetime?: string;
}

export function sigv4Auth(options: SigV4Options): RequestAuth {
  return async (request) => {
    const credentials = typeof options.credentials === 'function' ? await options.credentials() : options.credentials;
    const body = request.body === null ? undefined : await request.clone().arrayBuffer();
    const signer = new AwsV4Signer({
      method: request.method,
      url: request.url,
      headers: request.headers,
      ...(body === undefined ? {} : { body }),
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
      service: options.service ?? 'execute-api',
      ...(options.region ? { region: options.region } : {}),
      ...(options.datetime ? { datetime: options.datetime } : {}),
    });
    const signed = await signer.sign();
    return new Request(signed.url, {
      method: signed.method,
      headers: signed.headers,
      ...(body === undefined ? {} : { body }),
      signal: request.signal,
      redirect: request.redirect,
    });
  };
}

import { createHash, randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import { IDEMPOTENCY_TTL_SECONDS } from '../config';
import { ProblemError } from '../http/problem';
import { isValidTenant } from '../tenancy/tenancy';
import { TENANT_KEY_SEPARATOR } from '../tenancy/tenantKeys';

/**
 * Idempotency-Key handling shared by POST /personas and POST /personas/batch.
 *
 * A request with a key first *claims* it: a conditional put of an in-progress record that names the
 * request's body hash and a lease (the time the function may still run). Only the claim holder
 * writes; it then completes the record with its response. A concurrent request with the same key
 * finds the record: another body is a 422 at once, the same body waits for the holder and replays its
 * response. A claim whose holder died (lease over) can be taken over only by the same body, so a
 * half-written request is finished by its own retry and never mixed with another body's items.
 * Keys are remembered for 24 hours from the claim, then the key is free again.
 */

export interface IdempotencyRequest {
  /** The client's Idempotency-Key header. */
  key: string;
  /** Who sent it (the authorizer's identity); keys of different callers never meet. */
  caller: string;
  /** How long this request may hold the key: the function's remaining time. */
  leaseMs: number;
}

export interface StoredIdempotencyRecord {
  key: string;
  request_hash: string;
  status: 'in-progress' | 'completed';
  /** Random id of the request that holds (or completed) the claim. */
  owner: string;
  /** Epoch ms after which an in-progress claim may be taken over by a retry of the same body. */
  lease_expires_at: number;
  /** Epoch seconds; DynamoDB's TTL attribute. */
  expires_at: number;
  status_code?: number;
  response_body?: string;
}

export type ClaimOutcome =
  | { kind: 'claimed'; owner: string }
  | { kind: 'completed'; record: StoredIdempotencyRecord }
  | { kind: 'in-progress' }
  | { kind: 'mismatch' };

/** The storage the idempotency protocol needs; personaRepository implements it on DynamoDB. */
export interface IdempotencyStore {
  claimIdempotencyKey(record: StoredIdempotencyRecord): Promise<ClaimOutcome>;
  /** Stores the response, if `owner` still holds the claim; false when a retry took it over. */
  completeIdempotencyKey(key: string, owner: string, statusCode: number, responseBody: string): Promise<boolean>;
  /** Ends the lease at once (the holder failed), so that a retry of the same body may continue. */
  releaseIdempotencyKey(key: string, owner: string): Promise<void>;
}

/**
 * SHA-256 of the body's RFC 8785 (JCS) canonical form: key order and number spelling do not
 * change the hash, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request.
 */
export function requestHash(body: unknown): string {
  let canonical: string | undefined;
  try {
    canonical = canonicalize(body);
  } catch (error) {
    throw new ProblemError(400, 'malformed-json', `The request body cannot be canonicalized as JSON: ${(error as Error).message}.`);
  }
  return createHash('sha256').update(canonical ?? '').digest('hex');
}

/** The operations that take an Idempotency-Key; the key of each stored record starts with its operation. */
export const IDEMPOTENT_OPERATIONS = ['createPersona', 'batchCreatePersonas'] as const;
export type IdempotentOperation = (typeof IDEMPOTENT_OPERATIONS)[number];

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The key of a request's record: `<operation>#<sha256(caller, client key)>`, hashed so that any
 * identity fits the table's key. A tenant's records live under `<tenant>#<operation>#<sha256>`
 * (idempotencyRecordKey). The reconciler's lease and checkpoint share the table under keys of
 * their own (`reconciler-lease#<alias>`, `reconciler-checkpoint#<alias>`), which
 * parseIdempotencyRecordKey tells apart.
 */
export function scopedIdempotencyKey(operation: IdempotentOperation, request: Pick<IdempotencyRequest, 'key' | 'caller'>): string {
  return `${operation}${TENANT_KEY_SEPARATOR}${createHash('sha256').update(`${request.caller}\0${request.key}`).digest('hex')}`;
}

/** The table key of a record: a tenant's records live under its own keys, so a key one tenant used means nothing to another. */
export const idempotencyRecordKey = (tenant: string | undefined, storedKey: string): string =>
  tenant === undefined ? storedKey : `${tenant}${TENANT_KEY_SEPARATOR}${storedKey}`;

/**
 * The tenant (undefined: a single-tenant stage's record) and operation of a table key that
 * idempotencyRecordKey(scopedIdempotencyKey(...)) built; undefined for any other item of the table.
 */
export function parseIdempotencyRecordKey(key: string): { tenant: string | undefined; operation: IdempotentOperation } | undefined {
  const parts = key.split(TENANT_KEY_SEPARATOR);
  if (parts.length !== 2 && parts.length !== 3) return undefined;
  const [digest, operation, tenant] = parts.reverse() as [string, string, string | undefined];
  if (!SHA256_HEX.test(digest) || !(IDEMPOTENT_OPERATIONS as readonly string[]).includes(operation)) return undefined;
  if (tenant !== undefined && !isValidTenant(tenant)) return undefined;
  return { tenant, operation: operation as IdempotentOperation };
}

export function idempotencyMismatch(): ProblemError {
  return new ProblemError(
    422,
    'idempotency-key-reused',
    'This Idempotency-Key was already used with a different request body; use a new key for a new request.',
  );
}

/** How long to wait for a concurrent request with the same key and body before answering 409. */
const MAX_WAIT_MS = 8_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type IdempotentOutcome<T> = { replayed: false; result: T } | { replayed: true; statusCode: number; body: unknown };

/**
 * Runs `execute` at most once per (route, caller, key, body): claims the key, runs, stores the
 * response. `execute` returns the response and whether it is final; a non-final one (some items
 * were throttled) releases the claim so that the retry of the same body completes the work.
 */
export async function runIdempotent<T>(
  store: IdempotencyStore,
  storedKey: string,
  hash: string,
  request: IdempotencyRequest,
  execute: () => Promise<{ statusCode: number; body: T; final: boolean }>,
): Promise<IdempotentOutcome<T>> {
  const waitUntil = Date.now() + Math.max(0, Math.min(MAX_WAIT_MS, request.leaseMs - 1_000));
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    const outcome = await store.claimIdempotencyKey({
      key: storedKey,
      request_hash: hash,
      status: 'in-progress',
      owner: randomUUID(),
      lease_expires_at: now + request.leaseMs,
      expires_at: Math.floor(now / 1000) + IDEMPOTENCY_TTL_SECONDS,
    });
    if (outcome.kind === 'mismatch') throw idempotencyMismatch();
    if (outcome.kind === 'completed') {
      return { replayed: true, statusCode: outcome.record.status_code ?? 200, body: JSON.parse(outcome.record.response_body ?? 'null') };
    }
    if (outcome.kind === 'claimed') {
      let response: { statusCode: number; body: T; final: boolean };
      try {
        response = await execute();
      } catch (error) {
        await store.releaseIdempotencyKey(storedKey, outcome.owner).catch(() => undefined);
        throw error;
      }
      if (response.final) await store.completeIdempotencyKey(storedKey, outcome.owner, response.statusCode, JSON.stringify(response.body));
      else await store.releaseIdempotencyKey(storedKey, outcome.owner);
      return { replayed: false, result: response.body };
    }
    if (Date.now() >= waitUntil) {
      throw new ProblemError(
        409,
        'idempotency-request-in-progress',
        'Another request with this Idempotency-Key and the same body is still being processed; retry after Retry-After to get its response.',
        { headers: { 'Retry-After': '1' } },
      );
    }
    await sleep(Math.min(500, 20 * 2 ** attempt) * (0.5 + Math.random() / 2));
  }
}

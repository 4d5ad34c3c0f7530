import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { IdempotencyRequest } from '../persona/idempotency';
import { ProblemError, toJsonPointer, validationProblem } from './problem';
import { methodNotAllowedProblem, allowedMethodsForPath } from '../routeMatching';
import { authMode } from './accessControl';

/** Deepest nesting of arrays and objects a request body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 32;

export const JSON_MEDIA_TYPE = 'application/json';
export const MERGE_PATCH_MEDIA_TYPE = 'application/merge-patch+json';

/** Body size limits, in bytes of UTF-8. Documented in the README and the API document. */
export const bodyLimits = {
  single: 64 * 1024,
  batch: 1024 * 1024,
} as const;

export function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

function bodyBytes(event: APIGatewayProxyEventV2): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

/** Lone UTF-16 surrogates (from escapes such as "\ud800"): valid JSON, but no UTF-8 can encode them. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks what JSON.parse lets through but nothing after it may see: nesting deeper than
 * MAX_JSON_DEPTH (hashing, merging and validating recurse) and strings or member names with lone
 * surrogates (they would be stored altered). Iterative, so any depth is safe to inspect.
 */
function assertStorableJson(root: unknown): void {
  const pending: Array<{ value: unknown; path: string[] }> = [{ value: root, path: [] }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) throw surrogateProblem(path, 'string');
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (path.length >= MAX_JSON_DEPTH) {
      throw validationProblem(
        [{ pointer: toJsonPointer(path), detail: `is nested too deeply: request bodies may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep` }],
        `The request body nests deeper than ${MAX_JSON_DEPTH} levels.`,
      );
    }
    for (const [key, member] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) throw surrogateProblem([...path, key], 'member name');
      pending.push({ value: member, path: [...path, key] });
    }
  }
}

function surrogateProblem(path: string[], what: string): ProblemError {
  return validationProblem([
    { pointer: toJsonPointer(path), detail: `this ${what} contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which cannot be encoded as UTF-8; send the character's full surrogate pair or the character itself` },
  ]);
}

/**
 * Reads a JSON body: checks media type (415), size (413), UTF-8 and JSON syntax (400), nesting
 * depth and lone surrogates (400). Returns the parsed value, still untyped; schemas validate it next.
 */
export function readJsonBody(
  event: APIGatewayProxyEventV2,
  options: { maxBytes: number; mediaTypes?: readonly string[] },
): unknown {
  const mediaTypes = options.mediaTypes ?? [JSON_MEDIA_TYPE];
  const contentType = header(event, 'content-type');
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (!mediaType || !mediaTypes.includes(mediaType)) {
    throw new ProblemError(
      415,
      'unsupported-media-type',
      `Content-Type must be ${mediaTypes.join(' or ')}${contentType ? `, not '${contentType}'` : '; the header is missing'}.`,
      mediaTypes.includes(MERGE_PATCH_MEDIA_TYPE) ? { headers: { 'Accept-Patch': MERGE_PATCH_MEDIA_TYPE } } : {},
    );
  }
  const charset = /charset=([^;]+)/i.exec(contentType ?? '')?.[1]?.trim().toLowerCase();
  if (charset && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ProblemError(415, 'unsupported-media-type', `Only UTF-8 bodies are accepted, not charset '${charset}'.`);
  }
  const bytes = bodyBytes(event);
  if (bytes.length > options.maxBytes) {
    throw new ProblemError(
      413,
      'body-too-large',
      `The body is ${bytes.length} bytes; this endpoint accepts at most ${options.maxBytes} bytes.`,
      { extensions: { max_bytes: options.maxBytes } },
    );
  }
  if (bytes.length === 0) {
    throw new ProblemError(400, 'malformed-json', 'The request body is empty; send a JSON document.');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ProblemError(400, 'malformed-json', 'The request body is not valid UTF-8.');
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProblemError(400, 'malformed-json', `The request body is not valid JSON: ${(error as Error).message}`);
  }
  assertStorableJson(value);
  return value;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads the `{id}` path parameter; a malformed id is a 400, never a lookup. */
export function personaIdFromPath(event: APIGatewayProxyEventV2): string {
  const id = event.pathParameters?.id;
  if (!id || !UUID_PATTERN.test(id)) {
    // API Gateway sends GET /personas/batch to GET /personas/{id} (no GET route is more specific):
    // that path is a resource of its own, so the answer is its 405, not "malformed id".
    const method = event.requestContext.http.method;
    const allowed = allowedMethodsForPath(event.rawPath);
    if (!allowed.includes(method)) throw methodNotAllowedProblem(method, event.rawPath, allowed);
    throw validationProblem([{ pointer: '#/path/id', detail: `'${id ?? ''}' is not a persona id; ids are UUIDs such as 3f2b8c1e-8f7a-4f7e-9a53-2f0d9c6c1b2a` }], 'The persona id in the path is malformed.');
  }
  return id.toLowerCase();
}

export const etagForVersion = (version: number): string => `"${version}"`;

/**
 * Parses If-Match. Returns undefined when absent, '*' for any, or the expected version.
 * Accepts strong and weak forms ("3", W/"3"); anything else is a 400.
 */
export function ifMatchVersion(event: APIGatewayProxyEventV2): number | '*' | undefined {
  const value = header(event, 'if-match')?.trim();
  if (value === undefined || value === '') return undefined;
  const match = IF_MATCH_PATTERN.exec(value);
  if (!match) {
    throw new ProblemError(400, 'invalid-precondition', `If-Match must be an ETag from a previous response, such as "3"; got '${value}'.`);
  }
  return match[1] === undefined ? '*' : Number(match[1]);
}

/** An If-Match the API reads: `*`, or one version as a strong or weak entity tag. [0-9], not \d: the document's pattern must not admit other digits in other regex dialects. */
export const IF_MATCH_PATTERN = /^(?:\*|(?:W\/)?"([0-9]{1,15})")$/;

/** 1 to 255 visible ASCII characters, such as a UUID. */
export const IDEMPOTENCY_KEY_PATTERN = /^[!-~]{1,255}$/;

/**
 * The caller as API Gateway's authorizer identified it, or undefined when it named nobody:
 * - JWT: the issuer and the subject (`sub`). A token without `sub` (some identity providers'
 *   machine-to-machine tokens) by its OAuth client: `client_id` (RFC 9068 §2.2), else `azp`
 *   (OpenID Connect Core §2), in a namespace of its own, so no subject can pose as a client.
 *   API Gateway passes every claim of the validated token in `requestContext.authorizer.jwt.claims`
 *   (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html).
 * - IAM: the principal (`requestContext.authorizer.iam`).
 */
export function callerIdentity(event: APIGatewayProxyEventV2): string | undefined {
  const authorizer = (event.requestContext as { authorizer?: AuthorizerContext }).authorizer;
  const claims = authorizer?.jwt?.claims;
  const claim = (name: string) => (claims?.[name] === undefined || claims[name] === '' ? undefined : String(claims[name]));
  const issuer = claim('iss') ?? '';
  const subject = claim('sub');
  if (subject !== undefined) return `jwt:${issuer}:${subject}`;
  const client = claim('client_id') ?? claim('azp');
  if (client !== undefined) return `jwt-client:${issuer}:${client}`;
  const iam = authorizer?.iam;
  if (iam?.userArn || iam?.callerId) return `iam:${iam.accountId ?? ''}:${iam.userArn ?? iam.callerId}`;
  return undefined;
}

interface AuthorizerContext {
  jwt?: { claims?: Record<string, string | number | boolean | string[]> };
  iam?: { accountId?: string; callerId?: string; userArn?: string };
}

/** The function's timeout when no Lambda context tells the remaining time. */
const DEFAULT_LEASE_MS = 10_000;

/**
 * Whose Idempotency-Keys a request's key is among. On a stage with an authorizer (auth=jwt or iam)
 * that is the caller it identified, and a request whose caller it could not name is refused: its
 * key would meet every other such caller's. An open stage (auth=none: dev, `npm start`) has no
 * callers to tell apart, and anyone may read and write everything there anyway, so all its
 * requests share one scope and keys keep working as the README's quick start shows.
 */
function idempotencyScope(event: APIGatewayProxyEventV2, env: NodeJS.ProcessEnv): string {
  const caller = callerIdentity(event);
  if (caller !== undefined) return caller;
  if (authMode(env) === 'none') return 'anonymous';
  throw new ProblemError(
    400,
    'idempotency-key-needs-caller',
    'This request\'s credentials name no caller (a JWT needs a sub, client_id or azp claim), so its Idempotency-Key cannot be kept apart from ' +
      'other callers\' keys. Send the request without Idempotency-Key, or ask your identity provider for a token with a sub claim.',
  );
}

/** The Idempotency-Key of a request, scoped to its caller, with the time this invocation may still run. */
export function idempotencyRequest(
  event: APIGatewayProxyEventV2,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
  env: NodeJS.ProcessEnv = process.env,
): IdempotencyRequest | undefined {
  const key = idempotencyKey(event);
  if (key === undefined) return undefined;
  const remaining = context?.getRemainingTimeInMillis?.();
  return { key, caller: idempotencyScope(event, env), leaseMs: remaining && remaining > 0 ? remaining : DEFAULT_LEASE_MS };
}

export function idempotencyKey(event: APIGatewayProxyEventV2): string | undefined {
  const value = header(event, 'idempotency-key');
  if (value === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw new ProblemError(400, 'invalid-idempotency-key', 'Idempotency-Key must be 1 to 255 visible ASCII characters, such as a UUID.');
  }
  return value;
}

/** Reads an integer query parameter within bounds; absent → default. */
export function integerQueryParameter(
  event: APIGatewayProxyEventV2,
  name: string,
  bounds: { min: number; max: number; default: number },
): number {
  const raw = event.queryStringParameters?.[name];
  if (raw === undefined || raw === '') return bounds.default;
  if (!/^\d+$/.test(raw) || Number(raw) < bounds.min || Number(raw) > bounds.max) {
    throw validationProblem(
      [{ pointer: `#/query/${name}`, detail: `must be an integer from ${bounds.min} to ${bounds.max}, got '${raw}'` }],
      `The query parameter '${name}' is invalid.`,
    );
  }
  return Number(raw);
}

import type { z } from 'zod';

/** One field-level error in a problem document: `pointer` is a JSON Pointer into the request body. */
export interface FieldError {
  pointer: string;
  detail: string;
}

/**
 * At most this many field errors in one response (the rest are counted in `more_errors`), and no
 * pointer or detail longer than MAX_ECHO_LENGTH: a small request must not make a huge answer.
 */
export const MAX_REPORTED_ERRORS = 100;
export const MAX_ECHO_LENGTH = 300;

const clip = (text: string, max = MAX_ECHO_LENGTH) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** The first `max` errors, each with its pointer and detail clipped, and how many were left out. */
export function capFieldErrors(errors: readonly FieldError[], max = MAX_REPORTED_ERRORS): { errors: FieldError[]; more_errors?: number } {
  const shown = errors.slice(0, Math.max(0, max)).map((error) => ({ pointer: clip(error.pointer), detail: clip(error.detail) }));
  return errors.length > shown.length ? { errors: shown, more_errors: errors.length - shown.length } : { errors: shown };
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
  /** How many field errors were left out after the first MAX_REPORTED_ERRORS. */
  more_errors?: number;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The URI a problem document's `type` carries for a problem slug; the API document lists them per response. */
export const problemTypeUri = (slug: string): string => `https://persona-db.dev/problems/${slug}`;

/**
 * An error that the API answers as an RFC 9457 problem document. `type` is a stable,
 * machine-readable slug; clients branch on it rather than on `detail`.
 */
export class ProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(
    status: number,
    type: string,
    detail: string,
    options: { errors?: FieldError[]; headers?: Record<string, string>; extensions?: Record<string, unknown> } = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = status;
    this.type = type;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  toDocument(instance?: string): ProblemDocument {
    return {
      type: problemTypeUri(this.type),
      title: TITLES[this.status] ?? 'Error',
      status: this.status,
      detail: clip(this.message, 4 * MAX_ECHO_LENGTH),
      ...(instance ? { instance: clip(instance) } : {}),
      ...(this.errors ? capFieldErrors(this.errors) : {}),
      ...this.extensions,
    };
  }
}

export const toJsonPointer = (path: readonly PropertyKey[]): string =>
  '#' + path.map((segment) => '/' + String(segment).replace(/~/g, '~0').replace(/\//g, '~1')).join('');

/** Turns zod issues into field errors; an unknown key is reported at its own pointer, by name. */
export function fieldErrorsFromZod(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldError[] {
  const fieldErrors: FieldError[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        fieldErrors.push({ pointer: toJsonPointer([...path, key]), detail: unknownFieldDetail(key) });
      }
      continue;
    }
    fieldErrors.push({ pointer: toJsonPointer(path), detail: describeIssue(issue) });
  }
  return fieldErrors;
}

const SERVER_MANAGED = new Set(['id', 'version', 'created_at', 'updated_at']);

export function unknownFieldDetail(key: string): string {
  if (SERVER_MANAGED.has(key)) return `'${key}' is set by the server and cannot be written; remove it from the body`;
  return `unknown field '${key}'; remove it (allowed fields are listed in GET /openapi.json)`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const received = (issue as { input?: unknown }).input;
    if (received === undefined) return `is required (expected ${issue.expected})`;
    // zod's `int` is a number that must be whole: name the fraction rather than the type.
    if (issue.expected === 'int') return `must be an integer, not ${typeof received === 'number' ? received : jsonTypeOf(received)}`;
    return `must be ${article(issue.expected)}, not ${jsonTypeOf(received)}`;
  }
  return issue.message;
}

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

export function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function validationProblem(errors: FieldError[], detail = 'The request body is invalid; see errors for each field.'): ProblemError {
  return new ProblemError(400, 'validation-error', detail, { errors });
}

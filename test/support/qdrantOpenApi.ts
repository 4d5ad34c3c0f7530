/**
 * Checks Qdrant's answers against Qdrant's own OpenAPI document (../shared/qdrant/openapi-v1.19.json).
 *
 * The document is OpenAPI 3.0, which Ajv does not read as is:
 * - Its `$ref`s are document-local (`#/components/schemas/ScoredPoint`), so a schema cut out of the
 *   document cannot resolve them. The whole document is registered with Ajv under one id, and each
 *   response schema is compiled as a `$ref` (a JSON pointer) into it, so every ref resolves against
 *   the document root.
 * - `Option<T>` fields are written `anyOf: [{$ref: T}, {nullable: true}]`. A schema holding only
 *   `nullable: true` means "null" there; read literally (OpenAPI 3.0.3 gives `nullable` no effect
 *   without `type`) it would accept anything and check nothing, so it is rewritten to `{type: 'null'}`.
 *   `nullable` next to a `type` is Ajv's own OpenAPI support.
 * - Formats such as `uint64` and `float` are checked as number ranges; string formats are not checked.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';

export const OPENAPI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/qdrant/openapi-v1.19.json');

const DOCUMENT_ID = 'qdrant-openapi-1.19';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Rewrites nullable-only schemas to `{type: 'null'}`; everything else is kept. */
function nullOnly(node: Json): Json {
  if (Array.isArray(node)) return node.map(nullOnly);
  if (node === null || typeof node !== 'object') return node;
  const keys = Object.keys(node).filter((key) => key !== 'description');
  if (node.nullable === true && keys.length === 1) return { type: 'null' };
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, nullOnly(value)]));
}

const UNSIGNED_MAX: Record<string, number> = { uint8: 255, uint32: 0xffffffff, uint64: 2 ** 64, uint: 2 ** 64 };

function createAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const [name, max] of Object.entries(UNSIGNED_MAX)) {
    ajv.addFormat(name, { type: 'number', validate: (value: number) => Number.isInteger(value) && value >= 0 && value <= max });
  }
  ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isInteger(value) });
  for (const name of ['float', 'double']) ajv.addFormat(name, { type: 'number', validate: (value: number) => Number.isFinite(value) });
  for (const name of ['uuid', 'date-time', 'partial-date-time', 'uri', 'binary']) ajv.addFormat(name, true);
  return ajv;
}

export interface RecordedExchange {
  method: string;
  path: string;
  status: number;
  contentType: string;
  body: string;
}

interface Operation {
  template: string;
  pattern: RegExp;
  literalSegments: number;
  method: string;
}

const pointerSegment = (segment: string) => encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));

export class QdrantOpenApi {
  private readonly ajv = createAjv();
  private readonly document: { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>> };
  private readonly operations: Operation[];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(file = OPENAPI_PATH) {
    this.document = nullOnly(JSON.parse(readFileSync(file, 'utf8')) as Json) as unknown as QdrantOpenApi['document'];
    this.ajv.addSchema(this.document as object, DOCUMENT_ID);
    this.operations = Object.entries(this.document.paths)
      .flatMap(([template, methods]) =>
        Object.keys(methods).map((method) => ({
          template,
          method: method.toUpperCase(),
          pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}/?$`),
          literalSegments: template.split('/').filter((segment) => segment && !segment.startsWith('{')).length,
        })),
      )
      .sort((a, b) => b.literalSegments - a.literalSegments);
  }

  static available(file = OPENAPI_PATH): boolean {
    return existsSync(file);
  }

  private validator(pointer: string): ValidateFunction {
    let validate = this.compiled.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${DOCUMENT_ID}#${pointer}` });
      this.compiled.set(pointer, validate);
    }
    return validate;
  }

  /** Problems with one answer; empty when it matches the document. */
  check(exchange: RecordedExchange): string[] {
    const where = `${exchange.method} ${exchange.path} -> ${exchange.status}`;
    const operation = this.operations.find((candidate) => candidate.method === exchange.method && candidate.pattern.test(exchange.path));
    if (!operation) return [`${where}: no such operation in the OpenAPI document`];
    if (!exchange.contentType.includes('application/json')) return [];
    const responses = this.document.paths[operation.template]![operation.method.toLowerCase()]!.responses ?? {};
    const key = [String(exchange.status), `${String(exchange.status)[0]}XX`, 'default'].find((candidate) => responses[candidate]);
    const declared = key === undefined ? undefined : responses[key];
    const body = JSON.parse(exchange.body) as unknown;
    // Error answers (4XX without content in the document) are checked against the shared ErrorResponse.
    const pointer = declared?.content?.['application/json']
      ? ['paths', operation.template, operation.method.toLowerCase(), 'responses', key!, 'content', 'application/json', 'schema']
          .map(pointerSegment)
          .join('/')
      : exchange.status >= 400
        ? 'components/schemas/ErrorResponse'
        : undefined;
    if (!pointer) return [`${where}: the document declares no JSON answer for this status`];
    const validate = this.validator(`/${pointer}`);
    if (validate(body)) return [];
    return (validate.errors ?? []).slice(0, 5).map((error) => `${where}: ${error.instancePath || '/'} ${error.message} (${error.schemaPath})`);
  }
}

/**
 * Validators built from the API document's own JSON Schema (not from the zod source), with Ajv's
 * JSON Schema 2020-12 dialect, OpenAPI 3.1's default: the whole document is registered under one id
 * and each schema is compiled as a `$ref` into it, so that every `#/components/...` ref resolves.
 * Formats are checked (uuid, date-time), as a validating gateway or client would.
 */
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import type { OpenApiDocument } from '../../shared/openapi/openApiDocument';

const DOCUMENT_ID = 'persona-db-openapi';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;

export interface DocumentSchema {
  safeParse(value: unknown): { success: boolean; errors: ErrorObject[] };
}

/** `schemaFor('SearchRequest')` or `schemaFor('#/paths/...')`: a validator of that schema of the document. */
export function documentSchemas(document: OpenApiDocument): (nameOrPointer: string) => DocumentSchema {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('uuid', UUID);
  ajv.addFormat('date-time', { validate: (value: string) => DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)) });
  ajv.addSchema(structuredClone(document) as object, DOCUMENT_ID);
  const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
  return (nameOrPointer) => {
    const pointer = nameOrPointer.startsWith('#') ? nameOrPointer : `#/components/schemas/${nameOrPointer}`;
    let validate = compiled.get(pointer);
    if (!validate) {
      validate = ajv.compile({ $ref: `${DOCUMENT_ID}${pointer}` });
      compiled.set(pointer, validate);
    }
    const check = validate;
    return {
      safeParse(value) {
        const success = check(value) as boolean;
        return { success, errors: success ? [] : [...(check.errors ?? [])] };
      },
    };
  };
}

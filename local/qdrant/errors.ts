/**
 * Errors carry the HTTP status and the message text Qdrant itself would send, so a client that
 * matches on either (status code, or a substring like "doesn't exist") behaves the same against
 * this server as against the real one. The prefixes mirror Qdrant's `StorageError` display.
 */
export class QdrantError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'QdrantError';
  }
}

export const wrongInput = (description: string) => new QdrantError(400, `Wrong input: ${description}`);

export const badRequest = (description: string) => new QdrantError(400, `Bad request: ${description}`);

export const notFound = (description: string) => new QdrantError(404, `Not found: ${description}`);

/** Qdrant reports "already exists" with the "Wrong input" prefix but a 409 status. */
export const alreadyExists = (description: string) => new QdrantError(409, `Wrong input: ${description}`);

/** Body did not deserialize into the request type (serde's error in real Qdrant). */
export const formatError = (description: string) =>
  new QdrantError(400, `Format error in JSON body: ${description}`);

/**
 * Body deserialized but failed a declared constraint (the `validator` crate in real Qdrant), which
 * Qdrant answers with 422 Unprocessable Entity (`validation_error_handler` in src/actix/mod.rs);
 * a body that does not deserialize at all is a 400 (`formatError`).
 */
export const validationError = (field: string, description: string) =>
  new QdrantError(422, `Validation error in JSON body: [${field}: ${description}]`);

export const collectionNotFound = (name: string) => notFound(`Collection \`${name}\` doesn't exist!`);

export const collectionExists = (name: string) => alreadyExists(`Collection \`${name}\` already exists!`);

export const pointNotFound = (id: number | string) => notFound(`No point with id ${id} found`);

export const vectorNameNotFound = (name: string) => wrongInput(`Not existing vector name error: ${name}`);

export const dimensionMismatch = (expected: number, got: number) =>
  wrongInput(`Vector dimension error: expected dim: ${expected}, got ${got}`);

/** For request features this local server deliberately does not emulate. */
export const unsupported = (feature: string) =>
  badRequest(`${feature} is not supported by the local Qdrant-compatible server`);

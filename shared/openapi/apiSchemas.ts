import { z } from 'zod';
import { MAX_REPORTED_ERRORS, type FieldError, type ProblemDocument } from '../http/problem';
import { MAX_BATCH_ITEMS, type BatchResult, type PersonaListPage } from '../persona/personaService';
import { personaInputSchema, personaSchema } from '../persona/schema';

/**
 * Schemas of bodies whose TypeScript types live next to the code that builds them (the persona
 * service, the problem documents). The checks at the end make any difference between a schema
 * and its type a compile error, so the API document cannot drift from what the API sends.
 */

const fieldErrorSchema = z.object({
  pointer: z.string().meta({ description: 'JSON Pointer (RFC 6901) into the request body, or #/query/<name>, #/path/<name>.', example: '#/traits/openness' }),
  detail: z.string().meta({ example: 'must be between 0 and 1' }),
});

export const problemSchema = z
  .looseObject({
    type: z.string().meta({ description: 'Stable URI of the problem type; branch on it, not on detail.', example: 'https://persona-db.dev/problems/validation-error' }),
    title: z.string().meta({ example: 'Bad Request' }),
    status: z.int().meta({ example: 400 }),
    detail: z.string().meta({ description: 'What went wrong and what to do, for a human.' }),
    instance: z.string().optional().meta({ description: 'The request path.' }),
    errors: z.array(fieldErrorSchema).optional().meta({ description: `One entry per invalid field or parameter, the first ${MAX_REPORTED_ERRORS} of them.` }),
    more_errors: z.int().optional().meta({ description: `How many more errors there were after the first ${MAX_REPORTED_ERRORS}.` }),
  })
  .meta({ description: 'An RFC 9457 problem document (application/problem+json). Some types add members, such as current_version or max_bytes.' });

export const personaListPageSchema = z.object({
  items: z.array(personaSchema),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/**
 * The batch envelope. Its items are meant to be PersonaInputs, but any JSON value is accepted as an
 * item: each is validated on its own and an invalid one fails alone, in its result (status 400),
 * so the schema must not make a gateway or client reject the whole batch for it.
 */
export const batchCreateRequestSchema = z.strictObject({
  personas: z
    .array(z.union([personaInputSchema, z.unknown().meta({ description: 'Any other value: its result is status 400 with its errors; the other items are still written.' })]))
    .min(1)
    .max(MAX_BATCH_ITEMS)
    .meta({ description: `1 to ${MAX_BATCH_ITEMS} personas; each is validated on its own, and an invalid one fails alone.` }),
});

const batchItemErrors = z.array(fieldErrorSchema);

export const batchResultSchema = z.object({
  created: z.int(),
  failed: z.int(),
  results: z.array(
    z.discriminatedUnion('status', [
      z.object({
        index: z.int(),
        status: z.literal(201),
        id: z.string(),
        version: z.int(),
        deleted: z.literal(true).optional().meta({ description: 'Only in a replay (Idempotent-Replayed: true): the persona has been deleted since this request created it.' }),
      }),
      z.object({
        index: z.int(),
        status: z.literal(400),
        errors: batchItemErrors,
        more_errors: z.int().optional().meta({ description: `Errors of this item left out: a batch reports at most ${MAX_REPORTED_ERRORS} errors over all its items.` }),
      }),
      z.object({ index: z.int(), status: z.literal(503), id: z.string(), errors: batchItemErrors }),
    ]),
  ).meta({ description: 'One result per item, in request order: 201 written, 400 invalid, 503 not written (retry with the same Idempotency-Key).' }),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShape = <_ extends true>() => undefined;
sameShape<Same<z.output<typeof personaListPageSchema>, PersonaListPage>>();
sameShape<Same<z.output<typeof batchResultSchema>, BatchResult>>();
sameShape<Same<z.output<typeof fieldErrorSchema>, FieldError>>();
sameShape<Same<Pick<z.output<typeof problemSchema>, 'type' | 'title' | 'status' | 'detail'>, Pick<ProblemDocument, 'type' | 'title' | 'status' | 'detail'>>>();

import { z } from 'zod';
import { TRAIT_NAMES } from './traitNames';

/**
 * The persona schema: the single source of validation, of the TypeScript types and of the
 * JSON Schema that the API document publishes. Field order here is the order of every response.
 */

export { TRAIT_NAMES, type TraitName } from './traitNames';

export const HUMOR_LEVELS = ['none', 'low', 'medium', 'high'] as const;

export const personaLimits = {
  nameLength: 200,
  labelLength: 100,
  labelCount: 20,
  statementLength: 500,
  statementCount: 50,
  emotionalStyleLength: 200,
} as const;

/**
 * The characters String.prototype.trim() removes (ECMAScript's WhiteSpace and LineTerminator),
 * spelled out rather than as `\s`: the API document's `pattern` is read by other regex dialects
 * (Python's `\s` also matches U+001C-U+001F and not U+FEFF), and must mean the same everywhere.
 */
export const BLANK_CHARACTERS = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
/** Matches a string with at least one character that is not blank. */
export const NOT_BLANK = new RegExp(`[^${BLANK_CHARACTERS}]`);

/**
 * A string's length as JSON Schema's minLength and maxLength count it: characters (code points),
 * so an emoji is one, not the two UTF-16 code units `.length` counts.
 */
export function codePointLength(text: string): number {
  let length = text.length;
  for (let index = 0; index < text.length - 1; index++) {
    const unit = text.charCodeAt(index);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        length--;
        index++;
      }
    }
  }
  return length;
}

/** A string of at most `maxLength` characters, counted as the document's maxLength counts them. */
export const stringOfAtMost = (maxLength: number, schema: z.ZodString = z.string()) =>
  schema.refine((value) => codePointLength(value) <= maxLength, { message: `must be at most ${maxLength} characters` }).meta({ maxLength });

/**
 * A string that has at least one non-whitespace character; stored exactly as sent. The rule is a
 * zod regex, so the API document states it as `minLength` 1 and `pattern` (issue 31).
 */
export const nonBlankString = (maxLength: number) =>
  stringOfAtMost(maxLength, z.string().min(1, { message: 'must not be empty or blank', abort: true }).regex(NOT_BLANK, { message: 'must not be empty or blank' }));

const stringList = (maxItems: number, maxLength: number) =>
  z.array(nonBlankString(maxLength)).max(maxItems, { message: `must have at most ${maxItems} items` });

/**
 * DynamoDB stores numbers from 1e-130 to 9.99…e125 in magnitude, and zero; a smaller non-zero
 * number is rejected at write time ("Number underflow"), so every stored number is checked here.
 */
export const DYNAMODB_SMALLEST_NUMBER = 1e-130;
const DYNAMODB_LARGEST_NUMBER = 9.9999999999999999999999999999999999999e125;
const isDynamoDbNumber = (value: number) => value === 0 || (Math.abs(value) >= DYNAMODB_SMALLEST_NUMBER && Math.abs(value) <= DYNAMODB_LARGEST_NUMBER);

const traitScore = z
  .number({ message: 'must be a number between 0 and 1' })
  .min(0, { message: 'must be between 0 and 1' })
  .max(1, { message: 'must be between 0 and 1' })
  .refine(isDynamoDbNumber, { message: `must be 0 or at least ${DYNAMODB_SMALLEST_NUMBER} (the smallest number DynamoDB stores); round it to 0` })
  // The refinement, as the API document states it: nothing strictly between 0 and DynamoDB's smallest number.
  .meta({ not: { exclusiveMinimum: 0, exclusiveMaximum: DYNAMODB_SMALLEST_NUMBER } });

export const traitsSchema = z
  .strictObject({
    openness: traitScore,
    conscientiousness: traitScore,
    extraversion: traitScore,
    agreeableness: traitScore,
    neuroticism: traitScore,
  })
  .meta({ description: 'Big Five personality traits, each a score in [0, 1].' });

/** Fields a client may write. */
export const personaInputSchema = z
  .strictObject({
    name: nonBlankString(personaLimits.nameLength).meta({ example: 'Albert Einstein' }),
    domain: stringList(personaLimits.labelCount, personaLimits.labelLength)
      .min(1, { message: 'must have at least one item' })
      .meta({ description: 'Fields of knowledge.', example: ['physics', 'philosophy'] }),
    modes: stringList(personaLimits.labelCount, personaLimits.labelLength)
      .default([])
      .meta({ description: 'Conversational roles.', example: ['Educator', 'Debater'] }),
    humor_usage: z
      .enum(HUMOR_LEVELS, { message: `must be one of ${HUMOR_LEVELS.join(', ')}` })
      .optional(),
    emotional_style: nonBlankString(personaLimits.emotionalStyleLength).optional(),
    beliefs: stringList(personaLimits.statementCount, personaLimits.statementLength).default([]),
    signature_phrases: stringList(personaLimits.statementCount, personaLimits.statementLength).default([]),
    traits: traitsSchema,
  })
  .meta({ id: 'PersonaInput', description: 'A persona as a client writes it.' });

export type PersonaInput = z.output<typeof personaInputSchema>;

/**
 * What a patched member may be, so that patching any valid persona gives a valid one: a member of
 * PersonaInput as it is written, null for an optional one (removes it), and traits member by member.
 */
function patchMember(name: string, member: z.ZodType): z.ZodType {
  const metadata = z.globalRegistry.get(member);
  if (name === 'traits') return traitsSchema.partial().optional().meta({ description: 'Trait scores to change; the others are kept.' });
  if (member instanceof z.ZodOptional || member instanceof z.ZodDefault) {
    return (member.unwrap() as z.ZodType).nullable().optional().meta({ ...metadata, description: `${metadata?.description ?? ''} null removes it.`.trim() });
  }
  return member.optional();
}

/**
 * A JSON Merge Patch (RFC 7396) of a persona, as the API document states it. The service applies
 * the patch and validates the result with personaInputSchema (personaService.ts), which accepts
 * exactly the patches this schema accepts (test/openapi.test.ts checks that they agree).
 */
export const personaMergePatchSchema = z
  .strictObject(Object.fromEntries(Object.entries(personaInputSchema.shape).map(([name, member]) => [name, patchMember(name, member)])))
  .meta({
    description:
      'A JSON Merge Patch (RFC 7396) of PersonaInput: members present replace, null removes an optional member, traits merge member by member. The patched persona must be a valid PersonaInput.',
  });
export type Traits = z.output<typeof traitsSchema>;

/** Fields the server sets; clients may not write them. */
export const SERVER_MANAGED_FIELDS = ['id', 'version', 'created_at', 'updated_at'] as const;

export const personaSchema = personaInputSchema
  .extend({
    id: z.uuid(),
    version: z.int().min(1).meta({ description: 'Incremented on every write; the ETag.' }),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Persona', description: 'A stored persona.' });

export type Persona = PersonaInput & {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
};

/** Key order of every persona the API returns: id first, then the input fields, then metadata. */
const RESPONSE_KEY_ORDER = ['id', ...Object.keys(personaInputSchema.shape), 'version', 'created_at', 'updated_at'];

export function orderPersonaKeys(persona: Persona): Persona {
  const ordered: Record<string, unknown> = {};
  for (const key of RESPONSE_KEY_ORDER) {
    const value = (persona as unknown as Record<string, unknown>)[key];
    if (value !== undefined) ordered[key] = value;
  }
  const traits = persona.traits;
  ordered.traits = Object.fromEntries(TRAIT_NAMES.map((name) => [name, traits[name]]));
  return ordered as unknown as Persona;
}

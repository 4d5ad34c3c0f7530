import type { Persona } from '../persona/schema';
import { personaEmbeddingText, textHash } from '../persona/personaText';
import { TRAIT_NAMES } from '../persona/schema';
import { tenantPayload } from '../tenancy/tenantKeys';

/** The compact payload kept next to each persona's vectors: what filters and result lists need. */
export interface PersonaPayload {
  name: string;
  domain: string[];
  modes: string[];
  humor_usage?: string;
  emotional_style?: string;
  traits: Record<string, number>;
  version: number;
  text_hash: string;
  updated_at: string;
  /** Which model embedded the text vector, as `id@revision/dtype`; a reindex checks it. */
  embedding_model: string;
  /** A tenant's point (`claim` stages): its tenant, filtered on by every tenant's request, and its persona's id. */
  tenant_id?: string;
  persona_id?: string;
}

/** The payload of the persona stored under table key `persona.id` (a tenant's key adds tenant_id and persona_id). */
export function personaPayload(persona: Persona, modelLabel: string): PersonaPayload {
  return {
    ...tenantPayload(persona.id),
    name: persona.name,
    domain: persona.domain,
    modes: persona.modes,
    ...(persona.humor_usage ? { humor_usage: persona.humor_usage } : {}),
    ...(persona.emotional_style ? { emotional_style: persona.emotional_style } : {}),
    traits: Object.fromEntries(TRAIT_NAMES.map((trait) => [trait, persona.traits[trait]])),
    version: persona.version,
    text_hash: textHash(personaEmbeddingText(persona)),
    updated_at: persona.updated_at,
    embedding_model: modelLabel,
  };
}

export const traitsVector = (persona: Pick<Persona, 'traits'>): number[] => TRAIT_NAMES.map((trait) => persona.traits[trait]);

/** Deep equality of JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every((key) => jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

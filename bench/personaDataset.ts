/**
 * The real personas of ../shared/data/personas (Synthetic-Persona-Chat, Jandaghi et al. 2023,
 * CC BY 4.0; see its README) mapped onto the API's persona schema, with the dev pairs used to
 * measure retrieval: query with one member of a family, look for the other.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import type { Persona } from '../shared/persona/schema';

export const PERSONA_DATA_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'data', 'personas');

export interface DatasetPersona {
  /** The dataset's id (`spcpc-…`); the persona's id is a UUID derived from it. */
  sourceId: string;
  text: string;
  /** The dataset's family id (near-duplicates of one base persona), where it has one. */
  family?: string;
  persona: Persona;
}

export interface DevPair {
  a: string;
  b: string;
}

export interface PersonaDataset {
  personas: DatasetPersona[];
  bySourceId: Map<string, DatasetPersona>;
  pairs: DevPair[];
}

export const personaDataAvailable = () =>
  existsSync(path.join(PERSONA_DATA_DIR, 'personas.jsonl')) && existsSync(path.join(PERSONA_DATA_DIR, 'dev_pairs.jsonl'));

const jsonLines = <T>(file: string): T[] =>
  readFileSync(path.join(PERSONA_DATA_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);

function uuidFor(sourceId: string): string {
  const hex = createHash('sha256').update(`persona-db-dataset:${sourceId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** `name` from the id, `beliefs` from the sentences; the other fields are neutral constants. */
function toPersona(sourceId: string, text: string): Persona {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    id: uuidFor(sourceId),
    name: sourceId,
    domain: ['persona'],
    modes: [],
    beliefs: text.split(/(?<=[.!?])\s+/).map((sentence) => sentence.trim()).filter((sentence) => sentence !== ''),
    signature_phrases: [],
    traits: { openness: 0.5, conscientiousness: 0.5, extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5 },
    version: 1,
    created_at: at,
    updated_at: at,
  };
}

export function loadPersonaDataset(): PersonaDataset {
  const personas = jsonLines<{ id: string; text: string; family?: string }>('personas.jsonl').map(({ id, text, family }) => ({
    sourceId: id,
    text,
    ...(family !== undefined ? { family } : {}),
    persona: toPersona(id, text),
  }));
  const bySourceId = new Map(personas.map((entry) => [entry.sourceId, entry]));
  const pairs = jsonLines<DevPair>('dev_pairs.jsonl').filter((pair) => bySourceId.has(pair.a) && bySourceId.has(pair.b));
  return { personas, bySourceId, pairs };
}

/**
 * The pairs grouped by query persona, as dataset positions: each `a` with every `b` it should find,
 * so each query persona is ranked once and all its targets are read off that ranking.
 */
export function targetsByQuery(dataset: PersonaDataset, pairs: readonly DevPair[]): Map<number, number[]> {
  const position = new Map(dataset.personas.map((entry, i) => [entry.sourceId, i]));
  const targetsOf = new Map<number, number[]>();
  for (const pair of pairs) {
    const a = position.get(pair.a)!;
    targetsOf.set(a, [...(targetsOf.get(a) ?? []), position.get(pair.b)!]);
  }
  return targetsOf;
}

/** Every `step`-th pair: a fixed, spread-out sample, so runs compare. */
export const samplePairs = (pairs: readonly DevPair[], count: number): DevPair[] => {
  if (count >= pairs.length) return [...pairs];
  const step = pairs.length / count;
  return Array.from({ length: count }, (_, i) => pairs[Math.floor(i * step)]!);
};

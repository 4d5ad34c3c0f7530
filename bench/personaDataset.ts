/**
 * The real personas of ../shared/data/personas (Synthetic-Persona-Chat, Jandaghi et al. 2023,
 * CC BY 4.0; see its README) mapped onto the API's persona schema, with the two sets retrieval is
 * measured on: the dataset's dev pairs (near-duplicates: query with one member of a family, look for
 * the other) and our paraphrase pairs (bench/paraphraseSet.ts: query with our text, look for the
 * persona it says again). Each paraphrase is stored as a persona too, so `similar` can start from it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import type { Persona } from '../shared/persona/schema';
import { loadParaphrasePairs, type ParaphrasePair, type QuerySplit } from './paraphraseSet';

export const PERSONA_DATA_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'data', 'personas');

export interface DatasetPersona {
  /** The dataset's id (`spcpc-…`); the persona's id is a UUID derived from it. */
  sourceId: string;
  text: string;
  /** The dataset's family id (near-duplicates of one base persona), where it has one. */
  family?: string;
  /** For a paraphrase persona (sourceId `paraphrase:<id>`): the dataset id of the persona it says again. */
  paraphraseOf?: string;
  persona: Persona;
}

export interface DevPair {
  a: string;
  b: string;
}

export interface PersonaDataset {
  /** The dataset's personas, then one persona per paraphrase pair. */
  personas: DatasetPersona[];
  bySourceId: Map<string, DatasetPersona>;
  pairs: DevPair[];
  paraphrases: ParaphrasePair[];
}

/** The personas of the dataset itself (without the paraphrase personas). */
export const DATASET_PERSONAS = 10_489;

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
  const personas: DatasetPersona[] = jsonLines<{ id: string; text: string; family?: string }>('personas.jsonl').map(({ id, text, family }) => ({
    sourceId: id,
    text,
    ...(family !== undefined ? { family } : {}),
    persona: toPersona(id, text),
  }));
  const paraphrases = loadParaphrasePairs();
  for (const pair of paraphrases) {
    const sourceId = `paraphrase:${pair.id}`;
    // Named like a dataset persona (the name is part of the indexed text) but with a hash that shares nothing with the target's id.
    const name = `${pair.id.split('-')[0]}-${createHash('sha256').update(`persona-db-paraphrase-name:${pair.id}`).digest('hex').slice(0, 12)}`;
    personas.push({ sourceId, text: pair.text, paraphraseOf: pair.id, persona: { ...toPersona(sourceId, pair.text), name } });
  }
  const bySourceId = new Map(personas.map((entry) => [entry.sourceId, entry]));
  const pairs = jsonLines<DevPair>('dev_pairs.jsonl').filter((pair) => bySourceId.has(pair.a) && bySourceId.has(pair.b));
  return { personas, bySourceId, pairs, paraphrases };
}

/** One query of a retrieval set: the persona asked with (its text for search, its id for similar) and the personas it should find. */
export interface RetrievalQuery {
  /** Dataset position of the query persona (ignored in its own results). */
  self: number;
  targets: number[];
  split: QuerySplit;
}

export const RETRIEVAL_SETS = ['near-duplicates', 'paraphrases'] as const;
export type RetrievalSetName = (typeof RETRIEVAL_SETS)[number];

export interface RetrievalSet {
  name: RetrievalSetName;
  queries: RetrievalQuery[];
}

/** Half of the families (by a hash of the family id) may be tuned on, the other half is held out. */
export const familySplitOf = (family: string): QuerySplit => (createHash('sha256').update(family).digest()[0]! & 1 ? 'held-out' : 'tune');

/** The dev pairs (near-duplicates), one query per `a` with all its `b`, split by family. */
export function nearDuplicateSet(dataset: PersonaDataset, pairs: readonly DevPair[] = dataset.pairs): RetrievalSet {
  const queries = [...targetsByQuery(dataset, pairs)].map(([self, targets]) => {
    const entry = dataset.personas[self]!;
    return { self, targets, split: familySplitOf(entry.family ?? entry.sourceId) };
  });
  return { name: 'near-duplicates', queries };
}

/** The paraphrase pairs: the paraphrase persona asks, the persona it says again is the one target. */
export function paraphraseSet(dataset: PersonaDataset, pairs: readonly ParaphrasePair[] = dataset.paraphrases): RetrievalSet {
  const position = new Map(dataset.personas.map((entry, i) => [entry.sourceId, i]));
  const queries = pairs.map((pair) => ({ self: position.get(`paraphrase:${pair.id}`)!, targets: [position.get(pair.id)!], split: pair.split }));
  return { name: 'paraphrases', queries };
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
export const samplePairs = <T>(pairs: readonly T[], count: number): T[] => {
  if (count >= pairs.length) return [...pairs];
  const step = pairs.length / count;
  return Array.from({ length: count }, (_, i) => pairs[Math.floor(i * step)]!);
};

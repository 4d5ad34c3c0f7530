/**
 * What the console reads from the API document (GET /openapi.json) instead of hard-coding: the
 * search modes (so modes the API adds appear in the picker), the search options, the humor levels
 * and the list limits. One request per page load.
 */
import { client } from './api';

type Json = Record<string, any>;

export interface ApiFacts {
  searchModes: string[];
  defaultSearchMode: string;
  /** Descriptions of each search mode, from the schema's text (`- \`mode\`: ...` lines). */
  modeDescriptions: Record<string, string>;
  /** Boolean options of a search besides hydrate (e.g. `explain`), offered as checkboxes. */
  searchFlags: Array<{ name: string; description: string }>;
  humorLevels: string[];
  maxSearchLimit: number;
  maxListLimit: number;
}

let loading: Promise<ApiFacts> | undefined;

export function apiFacts(): Promise<ApiFacts> {
  loading ??= client.openApiDocument().then((document) => factsFrom(document as Json));
  return loading;
}

export function factsFrom(document: Json): ApiFacts {
  const schemas: Json = document.components?.schemas ?? {};
  const search: Json = schemas.SearchRequest?.properties ?? {};
  const mode: Json = search.mode ?? {};
  const searchModes: string[] = Array.isArray(mode.enum) ? mode.enum : ['semantic'];
  const operationText = String(document.paths?.['/personas/search']?.post?.description ?? '');
  const modeDescriptions: Record<string, string> = {};
  for (const line of operationText.split('\n')) {
    const match = /^- `(\w+)`(?: \([^)]*\))?: (.*)$/.exec(line.trim());
    if (match && searchModes.includes(match[1]!)) modeDescriptions[match[1]!] = match[2]!.replace(/`/g, '');
  }
  const searchFlags = Object.entries(search)
    .filter(([name, schema]) => name !== 'hydrate' && (schema as Json).type === 'boolean')
    .map(([name, schema]) => ({ name, description: String((schema as Json).description ?? '') }));
  const humor: Json = schemas.PersonaInput?.properties?.humor_usage ?? {};
  const listLimit = (document.paths?.['/personas']?.get?.parameters ?? []).find((p: Json) => p.name === 'limit');
  return {
    searchModes,
    defaultSearchMode: typeof mode.default === 'string' ? mode.default : searchModes[0]!,
    modeDescriptions,
    searchFlags,
    humorLevels: Array.isArray(humor.enum) ? humor.enum : ['none', 'low', 'medium', 'high'],
    maxSearchLimit: Number(search.limit?.maximum ?? 100),
    maxListLimit: Number(listLimit?.schema?.maximum ?? 100),
  };
}

/** Which inputs a mode takes: the API's rules for the modes it documents; a new mode gets a text box. */
export function modeInputs(mode: string): { query: boolean; traits: boolean } {
  if (mode === 'personality') return { query: false, traits: true };
  if (mode === 'blend') return { query: true, traits: true };
  return { query: true, traits: false };
}

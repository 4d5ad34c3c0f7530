import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableConfig } from '../shared/config';
import { getEmbedder } from '../shared/embedding';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import { personaEmbeddingText } from '../shared/persona/personaText';
import { TRAIT_NAMES, type Persona } from '../shared/persona/schema';
import { searchPersonas } from '../shared/search/personaSearch';
import { keywordEvidence, keywordWeightFor } from '../shared/search/keywordEvidence';
import { DEFAULT_RRF_WEIGHTS, KEYWORD_WEIGHT_POLICY, RRF_K, type Ranking, type SearchFilter } from '../shared/search/searchRequest';
import { parseSimilarQuery } from '../shared/search/similarQuery';
import { searchResultsSchema, type SearchResults } from '../shared/search/searchResults';
import { KEYWORD_SETTINGS, keywordTokens } from '../shared/vectorIndex/keywordVector';
import { createQdrantClient } from '../shared/vectorIndex/qdrantConnection';
import { einstein } from './support/apiClient';
import { jazzDrummer, pastryChef } from './support/searchFixtures';
import { startTestSystem } from './support/localSystem';

/**
 * Search and similar through the local runtime (HTTP API, DynamoDB Local, the local Qdrant
 * server, the stream worker with the real indexer, the generated test model). Every ranking is
 * checked against a brute force computed here from the DynamoDB records: the persona text
 * embedded again with the same embedder, the filter applied in plain TypeScript.
 */

let env: Awaited<ReturnType<typeof startTestSystem>>;
/** While set, the indexer waits: the table can change without the index following yet. */
let indexerPaused: Promise<void> | undefined;
let resumeIndexer: () => void = () => undefined;

// ---- A varied, reproducible set of personas ---------------------------------------------------

let seed = 20240611;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
const score2 = () => Math.round(random() * 100) / 100;

const TOPICS: Record<string, readonly string[]> = {
  physics: ['quantum', 'gravity', 'relativity', 'particles', 'energy', 'magnetism'],
  cooking: ['pastry', 'bread', 'sauces', 'spices', 'recipes', 'butter'],
  music: ['jazz', 'rhythm', 'melody', 'harmony', 'drums', 'orchestra'],
  history: ['empire', 'medieval', 'archives', 'revolution', 'battles', 'dynasty'],
  philosophy: ['ethics', 'virtue', 'existence', 'reason', 'paradox', 'wisdom'],
  technology: ['software', 'algorithms', 'robots', 'debugging', 'databases', 'circuits'],
  medicine: ['surgery', 'diagnosis', 'patients', 'vaccines', 'anatomy', 'nutrition'],
  literature: ['novels', 'poetry', 'stories', 'essays', 'prose', 'tales'],
  economics: ['markets', 'inflation', 'investment', 'trade', 'budget', 'banking'],
  art: ['painting', 'sculpture', 'canvas', 'portraits', 'gallery', 'sketch'],
};
const MODES = ['Educator', 'Debater', 'Storyteller', 'Coach', 'Critic', 'Mentor'];
const HUMOR = ['none', 'low', 'medium', 'high'] as const;
const STYLES = ['calm', 'reserved', 'passionate', 'warm', 'dry'];

function generatedPersona(n: number): Record<string, unknown> {
  const topics = Object.keys(TOPICS);
  const topic = topics[n % topics.length]!;
  const second = n % 3 === 0 ? topics[(n * 7 + 3) % topics.length]! : undefined;
  const words = TOPICS[topic]!;
  const modes = [...new Set([pick(MODES), ...(random() < 0.5 ? [pick(MODES)] : [])])];
  return {
    name: `${topic} voice ${n}`,
    domain: second && second !== topic ? [topic, second] : [topic],
    modes,
    ...(n % 5 === 4 ? {} : { humor_usage: pick(HUMOR) }),
    ...(n % 6 === 5 ? {} : { emotional_style: pick(STYLES) }),
    beliefs: [`${pick(words)} and ${pick(words)} explain more than people think`, `good ${pick(words)} needs patience`],
    signature_phrases: [`let us talk about ${pick(words)}`],
    traits: Object.fromEntries(TRAIT_NAMES.map((trait) => [trait, score2()])),
  };
}

/** The only persona that uses astronomy words. */
const cometHunter = {
  name: 'Vera Skies',
  domain: ['astronomy'],
  modes: ['Educator'],
  humor_usage: 'low',
  emotional_style: 'calm',
  beliefs: ['Every comet and nebula rewards a patient telescope night'],
  signature_phrases: ['Look up at the galaxy'],
  traits: { openness: 0.9, conscientiousness: 0.8, extraversion: 0.3, agreeableness: 0.7, neuroticism: 0.2 },
};

const GENERATED = 56;

// ---- Brute force ----------------------------------------------------------------------------

interface Ranked {
  id: string;
  score: number;
}

const repository = () => {
  const config = tableConfig();
  return personaRepositoryFor(config);
};

async function tablePersonas(): Promise<Persona[]> {
  const personas: Persona[] = [];
  for await (const page of repository().scanAll()) personas.push(...page);
  return personas;
}

/** The text vector of every persona, embedded again here from the table's records. */
async function textVectors(personas: Persona[]): Promise<Map<string, number[]>> {
  const vectors = await (await getEmbedder()).embedDocuments(personas.map(personaEmbeddingText));
  return new Map(personas.map((persona, index) => [persona.id, vectors[index]!]));
}

const traitsOf = (persona: { traits: Record<string, number> }) => TRAIT_NAMES.map((trait) => persona.traits[trait]!);

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  a.forEach((value, i) => {
    dot += value * b[i]!;
    normA += value * value;
    normB += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(normA * normB);
}

const euclid = (a: number[], b: number[]) => Math.sqrt(a.reduce((sum, value, i) => sum + (value - b[i]!) ** 2, 0));

function matchesFilter(persona: Persona, filter: SearchFilter | undefined): boolean {
  if (!filter) return true;
  const anyOf = (values: readonly string[] | undefined, actual: readonly string[]) => !values || actual.some((value) => values.includes(value));
  if (!anyOf(filter.domain, persona.domain) || !anyOf(filter.modes, persona.modes)) return false;
  if (!anyOf(filter.humor_usage, persona.humor_usage ? [persona.humor_usage] : [])) return false;
  if (!anyOf(filter.emotional_style, persona.emotional_style ? [persona.emotional_style] : [])) return false;
  return TRAIT_NAMES.every((trait) => {
    const range = filter.traits?.[trait];
    const value = persona.traits[trait];
    return !range || ((range.gte === undefined || value >= range.gte) && (range.lte === undefined || value <= range.lte));
  });
}

interface Reference {
  text?: number[];
  traits?: number[];
  /** Query weight of each keyword: 1 per distinct word of a query, the BM25 term weight for a stored persona. */
  keywords?: Map<string, number>;
  excludeId?: string;
}

/** BM25's term-frequency part of each word of a text, as the keywords vector defines it (keywordVector.ts). */
function bm25TermWeights(text: string): Map<string, number> {
  const { k1, b, averageLength } = KEYWORD_SETTINGS;
  const tokens = keywordTokens(text);
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  const lengthFactor = 1 - b + (b * tokens.length) / averageLength;
  return new Map([...counts].map(([term, tf]) => [term, (tf * (k1 + 1)) / (tf + k1 * lengthFactor)]));
}

const queryKeywords = (text: string) => new Map(keywordTokens(text).map((term) => [term, 1]));

/**
 * Personas whose points were deleted: Qdrant's global IDF goes on counting a deleted point's vector
 * until its segment is vacuumed (`Segment::delete_point_internal` does not delete the vectors).
 */
const deletedFromIndex: Persona[] = [];

/**
 * Keyword scores over every indexed persona: Σ idf(t) · query weight · term weight, with Qdrant's
 * idf = ln((N − df + 0.5) / (df + 0.5) + 1) over the whole collection, deleted points included
 * (query_context.rs, read_view/idf.rs); only personas sharing a word are candidates. Ties are
 * ordered by id, as the index orders them.
 */
function keywordRanking(personas: Persona[], candidates: Persona[], query: Map<string, number>): Ranked[] {
  const counted = [...personas, ...deletedFromIndex];
  const weights = new Map(counted.map((persona) => [persona.id, bm25TermWeights(personaEmbeddingText(persona))]));
  const df = (term: string) => counted.filter((persona) => weights.get(persona.id)!.has(term)).length;
  const idf = new Map([...query.keys()].map((term) => [term, Math.log((counted.length - df(term) + 0.5) / (df(term) + 0.5) + 1)]));
  return candidates
    .filter((persona) => [...query.keys()].some((term) => weights.get(persona.id)!.has(term)))
    .map((persona) => {
      const own = weights.get(persona.id)!;
      let score = 0;
      for (const [term, weight] of query) score += idf.get(term)! * weight * (own.get(term) ?? 0);
      return { id: persona.id, score };
    })
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
}

/**
 * Qdrant's weighted RRF (`position_score` in lib/segment/src/common/reciprocal_rank_fusion.rs):
 * position p (from 0) of a ranking with weight w scores 1 / ((p + 1) / w + k − 1), i.e. 1 / (k + p)
 * at weight 1; k = 2 (Qdrant's default, not the textbook 60). `rank` here is p + 1, null = absent.
 */
type Weights = Partial<Record<Ranking, number>>;
/** Weights as the API fuses with: the request's, else semantic and personality 1 and keyword's weight chosen from its evidence (`keyword`). */
const rrfScore = (ranking: Ranking, rank: number | null, weights: Weights & { keyword: number }) =>
  rank === null ? 0 : 1 / (rank / (weights[ranking] ?? DEFAULT_RRF_WEIGHTS[ranking as Exclude<Ranking, 'keyword'>]) + RRF_K - 1);
const fusedScore = (explain: Partial<Record<Ranking, { rank: number | null }>>, weights: Weights & { keyword: number }) =>
  (Object.entries(explain) as Array<[Ranking, { rank: number | null }]>).reduce((sum, [ranking, at]) => sum + rrfScore(ranking, at.rank, weights), 0);

/** The expected ranking of `personas` for a single-ranking mode, from plain arithmetic. */
function bruteForce(personas: Persona[], vectors: Map<string, number[]>, mode: 'semantic' | 'keyword' | 'personality', reference: Reference, filter?: SearchFilter): Ranked[] {
  const candidates = personas.filter((persona) => persona.id !== reference.excludeId && matchesFilter(persona, filter));
  if (mode === 'semantic') return candidates.map((persona) => ({ id: persona.id, score: cosine(reference.text!, vectors.get(persona.id)!) })).sort((a, b) => b.score - a.score);
  if (mode === 'personality') return candidates.map((persona) => ({ id: persona.id, score: euclid(reference.traits!, traitsOf(persona)) })).sort((a, b) => a.score - b.score);
  return keywordRanking(personas, candidates, reference.keywords!);
}

/**
 * Keyword's weight where a request gives none, as the API is to choose it (KEYWORD_WEIGHT_POLICY):
 * from the share of the query's words that the brute-force keyword ranking's best candidates hold,
 * one candidate holding them all set aside (keywordEvidence.ts).
 */
function evidenceWeight(reference: Reference, filter?: SearchFilter): number {
  const best = bruteForce(personas, vectors, 'keyword', reference, filter).slice(0, KEYWORD_WEIGHT_POLICY.candidates);
  const words = (id: string) => [...bm25TermWeights(personaEmbeddingText(personas.find((persona) => persona.id === id)!)).keys()];
  return keywordWeightFor(KEYWORD_WEIGHT_POLICY, keywordEvidence([...reference.keywords!.keys()], best.map((item) => words(item.id))));
}

const TOLERANCE = 1e-4;

/** Same ids in the same order, where "same order" allows swaps between scores equal within the tolerance. */
function expectRanking(actual: Ranked[], expected: Ranked[]) {
  const expectedScore = new Map(expected.map((item) => [item.id, item.score]));
  expect(actual.length, 'result count').toBe(expected.length);
  expect(new Set(actual.map((item) => item.id)).size, 'ids are unique').toBe(actual.length);
  actual.forEach((item, rank) => {
    expect(Math.abs(item.score - expected[rank]!.score), `score at rank ${rank}`).toBeLessThanOrEqual(TOLERANCE);
    expect(expectedScore.has(item.id), `rank ${rank}: ${item.id} is an expected result`).toBe(true);
    expect(Math.abs(expectedScore.get(item.id)! - expected[rank]!.score), `rank ${rank}: ${item.id} belongs there`).toBeLessThanOrEqual(TOLERANCE);
  });
}

// ---- API helpers ------------------------------------------------------------------------------

async function search(body: Record<string, unknown>): Promise<SearchResults> {
  const response = await env.api('POST', '/personas/search', { body });
  expect(response.status, response.text).toBe(200);
  return searchResultsSchema.parse(response.json);
}

async function similar(id: string, query = ''): Promise<SearchResults> {
  const response = await env.api('GET', `/personas/${id}/similar${query ? `?${query}` : ''}`);
  expect(response.status, response.text).toBe(200);
  return searchResultsSchema.parse(response.json);
}

/** Every page of a request, following next_offset. */
async function allPages(fetchPage: (offset: number) => Promise<SearchResults>): Promise<{ pages: SearchResults[]; ids: string[] }> {
  const pages: SearchResults[] = [];
  let offset: number | null = 0;
  while (offset !== null) {
    const page: SearchResults = await fetchPage(offset);
    pages.push(page);
    offset = page.next_offset;
  }
  return { pages, ids: pages.flatMap((page) => page.items.map((item) => item.id)) };
}

// ---- The system ------------------------------------------------------------------------------

let personas: Persona[];
let vectors: Map<string, number[]>;
const idsByName = new Map<string, string>();

beforeAll(async () => {
  env = await startTestSystem({
    wrapIndexer: (handler) => async (event) => {
      await indexerPaused;
      return handler(event);
    },
  });
  const bodies = [einstein, pastryChef, jazzDrummer, cometHunter, ...Array.from({ length: GENERATED }, (_, n) => generatedPersona(n))];
  const created = await env.api('POST', '/personas/batch', { body: { personas: bodies } });
  expect(created.json.created).toBe(bodies.length);
  created.json.results.forEach((result: { id: string }, index: number) => idsByName.set(bodies[index]!.name as string, result.id));
  await env.system.streamWorker.drain();
  personas = await tablePersonas();
  vectors = await textVectors(personas);
});
afterAll(async () => {
  resumeIndexer();
  await env?.system.stop();
});

const QUERY = 'quantum gravity and the ethics of reason';

const FILTERS: Array<SearchFilter | undefined> = [
  undefined,
  { domain: ['physics', 'philosophy'] },
  { humor_usage: ['low', 'medium'], traits: { openness: { gte: 0.5 } } },
  { modes: ['Storyteller', 'Critic'], emotional_style: ['calm', 'warm'] },
  { traits: { neuroticism: { lte: 0.4 }, extraversion: { gte: 0.2, lte: 0.8 } } },
  { domain: ['music'], humor_usage: ['high'], emotional_style: ['passionate'] },
];

describe('POST /personas/search', () => {
  it('seeds at least 50 varied personas, all indexed', async () => {
    expect(personas.length).toBeGreaterThanOrEqual(50);
    const { count } = await env.qdrant.count(env.collection, { exact: true });
    expect(count).toBe(personas.length);
    expect(new Set(personas.flatMap((persona) => persona.domain)).size).toBeGreaterThanOrEqual(10);
  });

  it('ranks semantic results exactly as the brute force, for every filter, and each result satisfies its filter', async () => {
    const embedder = await getEmbedder();
    const queryVector = await embedder.embedQuery(QUERY);
    const byId = new Map(personas.map((persona) => [persona.id, persona]));
    const counts: number[] = [];
    for (const filter of FILTERS) {
      const results = await search({ mode: 'semantic', query: QUERY, limit: 100, ...(filter ? { filter } : {}) });
      const expected = bruteForce(personas, vectors, 'semantic', { text: queryVector }, filter);
      expectRanking(results.items, expected);
      counts.push(results.items.length);
      for (const item of results.items) {
        const persona = byId.get(item.id)!;
        expect(matchesFilter(persona, filter)).toBe(true);
        // Without hydrate, results carry the indexed summary of the record.
        const { name, domain, modes, humor_usage, emotional_style, traits } = persona;
        expect(item).toEqual({ id: persona.id, score: item.score, name, domain, modes, humor_usage, emotional_style, traits });
      }
      expect(results).toMatchObject({ mode: 'semantic', score_type: 'cosine_similarity', limit: 100, offset: 0, next_offset: null });
    }
    console.log(`[search] semantic result counts per filter: ${counts.join(', ')} of ${personas.length}`);
    expect(counts[0]).toBe(personas.length);
    expect(counts.slice(1).every((count) => count > 0 && count < personas.length)).toBe(true);
  });

  it('ranks first the one persona that shares distinctive words with the query', async () => {
    const results = await search({ query: 'comet nebula telescope', limit: 3 });
    expect(results.items[0]!.id).toBe(idsByName.get(cometHunter.name));
    expect(results.items[0]!.score).toBeGreaterThan(results.items[1]!.score);
  });

  it('embeds each semantic query once, with the loaded model, and a personality search not at all', async () => {
    const embedder = await getEmbedder();
    const before = { ...embedder.stats };
    await search({ query: 'jazz drums and rhythm' });
    expect(embedder.stats.calls - before.calls).toBe(1);
    expect(embedder.stats.texts - before.texts).toBe(1);
    await search({ mode: 'personality', traits: jazzDrummer.traits });
    expect(embedder.stats.calls - before.calls).toBe(1);
  });

  it('ranks personality results by Euclidean distance between Big Five profiles, lower first', async () => {
    for (const filter of FILTERS.slice(0, 3)) {
      const results = await search({ mode: 'personality', traits: pastryChef.traits, limit: 100, ...(filter ? { filter } : {}) });
      expect(results.score_type).toBe('euclidean_distance');
      expectRanking(results.items, bruteForce(personas, vectors, 'personality', { traits: traitsOf(pastryChef) }, filter));
    }
    const nearest = await search({ mode: 'personality', traits: pastryChef.traits, limit: 1 });
    expect(nearest.items[0]).toMatchObject({ id: idsByName.get(pastryChef.name), score: 0 });
  });

  it('ranks keyword results as BM25 with Qdrant\'s IDF over the collection, for every filter', async () => {
    for (const filter of FILTERS) {
      const results = await search({ mode: 'keyword', query: QUERY, limit: 100, ...(filter ? { filter } : {}) });
      expect(results).toMatchObject({ mode: 'keyword', score_type: 'bm25' });
      expectRanking(results.items, bruteForce(personas, vectors, 'keyword', { keywords: queryKeywords(QUERY) }, filter));
      for (const item of results.items) expect(matchesFilter(personas.find((persona) => persona.id === item.id)!, filter)).toBe(true);
    }
    // A word only one persona has ranks it first, whatever the embedding thinks.
    const rare = await search({ mode: 'keyword', query: 'nebula', limit: 5 });
    expect(rare.items.map((item) => item.id)).toEqual([idsByName.get(cometHunter.name)]);
  });

  it('hybrid (the default with a query) fuses the semantic and keyword rankings; explain gives each hit its rank and score in both', async () => {
    const queryVector = await (await getEmbedder()).embedQuery(QUERY);
    for (const filter of FILTERS.slice(0, 4)) {
      const reference = { text: queryVector, keywords: queryKeywords(QUERY) };
      const semantic = bruteForce(personas, vectors, 'semantic', reference, filter);
      const keyword = bruteForce(personas, vectors, 'keyword', reference, filter);
      for (const fusion of ['rrf', 'dbsf'] as const) {
        const results = await search({ query: QUERY, limit: 100, explain: true, ...(fusion === 'dbsf' ? { fusion } : {}), ...(filter ? { filter } : {}) });
        expect(results).toMatchObject({ mode: 'hybrid', score_type: fusion });
        expect(results.items.length).toBe(new Set([...semantic, ...keyword].map((item) => item.id)).size);
        for (const item of results.items) {
          const { semantic: inSemantic, keyword: inKeyword } = item.explain!;
          // Each explained rank holds the brute force's score at that rank (ties may swap ids).
          expect(inSemantic!.score).toBeCloseTo(semantic[inSemantic!.rank! - 1]!.score, 4);
          if (inKeyword!.rank === null) expect(keyword.some((entry) => entry.id === item.id)).toBe(false);
          else expect(inKeyword!.score).toBeCloseTo(keyword[inKeyword!.rank - 1]!.score, 4);
          // Qdrant's weighted RRF with the default weights, over the rankings that hold the point.
          if (fusion === 'rrf') expect(item.score).toBeCloseTo(fusedScore(item.explain!, { keyword: evidenceWeight(reference, filter) }), 6);
        }
        if (fusion === 'dbsf') {
          // Qdrant's DBSF: each ranking's scores mapped by (score − (μ − 3σ)) / 6σ (sample σ), then summed.
          const normalise = (ranking: Ranked[]) => {
            if (ranking.length < 2) return new Map(ranking.map((item) => [item.id, 0.5]));
            const mean = ranking.reduce((sum, item) => sum + item.score, 0) / ranking.length;
            const sigma = Math.sqrt(ranking.reduce((sum, item) => sum + (item.score - mean) ** 2, 0) / (ranking.length - 1));
            return new Map(ranking.map((item) => [item.id, (item.score - (mean - 3 * sigma)) / (6 * sigma)]));
          };
          const [a, b] = [normalise(semantic), normalise(keyword)];
          const expected = [...new Set([...a.keys(), ...b.keys()])]
            .map((id) => ({ id, score: (a.get(id) ?? 0) + (b.get(id) ?? 0) }))
            .sort((x, y) => y.score - x.score);
          expectRanking(results.items, expected);
        }
      }
    }
  });

  it("weighs keyword by its evidence when the request gives no weight: strong where several personas hold most of the query's words, weak for other words", async () => {
    // Every generated persona says "... explain more than people think" and "good ... needs patience".
    const cases = [
      { query: 'good patience explain people think', weight: KEYWORD_WEIGHT_POLICY.strong },
      { query: QUERY, weight: KEYWORD_WEIGHT_POLICY.weak },
    ];
    for (const { query, weight } of cases) {
      expect(evidenceWeight({ keywords: queryKeywords(query) }), query).toBe(weight);
      const results = await search({ query, limit: 20, explain: true });
      const other = weight === KEYWORD_WEIGHT_POLICY.strong ? KEYWORD_WEIGHT_POLICY.weak : KEYWORD_WEIGHT_POLICY.strong;
      for (const item of results.items) expect(item.score, query).toBeCloseTo(fusedScore(item.explain!, { keyword: weight }), 6);
      // The weight matters: with the other one, some hit would score otherwise.
      expect(results.items.some((item) => Math.abs(item.score - fusedScore(item.explain!, { keyword: other })) > 1e-6), query).toBe(true);
    }
  });

  it('ranks blend results as reciprocal rank fusion (k = 2) of the semantic, keyword and personality rankings', async () => {
    const queryVector = await (await getEmbedder()).embedQuery(QUERY);
    for (const filter of FILTERS.slice(0, 4)) {
      const results = await search({ mode: 'blend', query: QUERY, traits: einstein.traits, limit: 100, explain: true, ...(filter ? { filter } : {}) });
      expect(results.score_type).toBe('rrf');
      const reference = { text: queryVector, traits: traitsOf(einstein as Persona), keywords: queryKeywords(QUERY) };
      const personality = bruteForce(personas, vectors, 'personality', reference, filter);
      for (const item of results.items) {
        const ranks = [item.explain!.semantic!, item.explain!.keyword!, item.explain!.personality!];
        expect(item.explain!.personality!.score).toBeCloseTo(personality[item.explain!.personality!.rank! - 1]!.score, 4);
        expect(ranks.length).toBe(3);
        expect(item.score).toBeCloseTo(fusedScore(item.explain!, { keyword: evidenceWeight(reference, filter) }), 6);
      }
      expect(results.items.map((item) => item.score)).toEqual([...results.items.map((item) => item.score)].sort((a, b) => b - a));
    }
  });

  it('fuses with the RRF weights a request gives (search body and similar query string), others keeping their default', async () => {
    const weights = { semantic: 0.5, keyword: 4 };
    const weighted = await search({ query: QUERY, limit: 100, explain: true, weights });
    const plain = await search({ query: QUERY, limit: 100, explain: true, weights: { semantic: 1, keyword: 1 } });
    expect(weighted.score_type).toBe('rrf');
    for (const item of weighted.items) expect(item.score).toBeCloseTo(fusedScore(item.explain!, weights), 6);
    for (const item of plain.items) expect(item.score).toBeCloseTo(fusedScore(item.explain!, { semantic: 1, keyword: 1 }), 6);

    const blendWeights = { personality: 3 };
    const blended = await search({ mode: 'blend', query: QUERY, traits: einstein.traits, limit: 50, explain: true, weights: blendWeights });
    const keyword = evidenceWeight({ keywords: queryKeywords(QUERY) });
    for (const item of blended.items) expect(item.score).toBeCloseTo(fusedScore(item.explain!, { ...blendWeights, keyword }), 6);

    const id = idsByName.get(einstein.name as string)!;
    const neighbours = await similar(id, 'mode=hybrid&limit=50&explain=true&weights.semantic=2&weights.keyword=0.5');
    for (const item of neighbours.items) expect(item.score).toBeCloseTo(fusedScore(item.explain!, { semantic: 2, keyword: 0.5 }), 6);
    expect(parseSimilarQuery('mode=blend&weights.personality=2.5&weights.keyword=1')).toMatchObject({ mode: 'blend', weights: { personality: 2.5, keyword: 1 } });
  });

  it('applies score_threshold as a minimum similarity (semantic) and a maximum distance (personality)', async () => {
    const queryVector = await (await getEmbedder()).embedQuery(QUERY);
    const semantic = bruteForce(personas, vectors, 'semantic', { text: queryVector });
    const threshold = semantic[9]!.score - TOLERANCE / 10;
    const results = await search({ mode: 'semantic', query: QUERY, limit: 100, score_threshold: threshold });
    expectRanking(results.items, semantic.filter((item) => item.score > threshold));

    const distances = bruteForce(personas, vectors, 'personality', { traits: traitsOf(jazzDrummer) });
    const maxDistance = distances[4]!.score + TOLERANCE / 10;
    const close = await search({ mode: 'personality', traits: jazzDrummer.traits, limit: 100, score_threshold: maxDistance });
    expectRanking(close.items, distances.filter((item) => item.score < maxDistance));
  });

  it('pages do not overlap and concatenate to the unpaged ranking, in every mode', async () => {
    const bodies: Array<Record<string, unknown>> = [
      { query: QUERY },
      { query: QUERY, filter: FILTERS[2] },
      { mode: 'personality', traits: pastryChef.traits },
      { mode: 'blend', query: QUERY, traits: jazzDrummer.traits },
    ];
    for (const body of bodies) {
      const unpaged = await search({ ...body, limit: 100 });
      const { pages, ids } = await allPages((offset) => search({ ...body, limit: 7, offset }));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual(unpaged.items.map((item) => item.id));
      expect(pages.length).toBe(Math.ceil(unpaged.items.length / 7));
      pages.slice(0, -1).forEach((page) => expect(page.items).toHaveLength(7));
    }
  });

  it('returns full, current records with hydrate, and leaves out a persona deleted from the table but still indexed', async () => {
    const plain = await search({ query: 'pastry butter croissant', limit: 5 });
    const hydrated = await search({ query: 'pastry butter croissant', limit: 5, hydrate: true });
    expect(hydrated.items.map((item) => [item.id, item.score])).toEqual(plain.items.map((item) => [item.id, item.score]));
    for (const item of hydrated.items) {
      const { score, ...record } = item;
      expect(score).toBeTypeOf('number');
      expect(record).toEqual((await env.api('GET', `/personas/${item.id}`)).json);
    }

    indexerPaused = new Promise((resolve) => (resumeIndexer = resolve));
    const deleted = hydrated.items[1]!.id;
    try {
      await repository().delete(deleted);
      const stillIndexed = await search({ query: 'pastry butter croissant', limit: 5 });
      expect(stillIndexed.items.map((item) => item.id)).toContain(deleted);
      const afterDelete = await search({ query: 'pastry butter croissant', limit: 5, hydrate: true });
      expect(afterDelete.items.map((item) => item.id)).toEqual(hydrated.items.map((item) => item.id).filter((id) => id !== deleted));
    } finally {
      indexerPaused = undefined;
      resumeIndexer();
    }
    await env.system.streamWorker.drain();
    const synced = await search({ query: 'pastry butter croissant', limit: 5 });
    expect(synced.items.map((item) => item.id)).not.toContain(deleted);
    deletedFromIndex.push(...personas.filter((persona) => persona.id === deleted));
    personas = personas.filter((persona) => persona.id !== deleted);
  });

  it('answers an empty page, not an error, before anything is indexed (no collection yet)', async () => {
    const results = await searchPersonas(
      {
        repository: repository(),
        qdrant: createQdrantClient({ url: env.system.qdrantUrl, apiKey: env.system.qdrantApiKey }),
        collection: 'personas-never-created',
        embedder: await getEmbedder(),
      },
      { query: QUERY, mode: 'semantic', fusion: 'rrf', explain: false, limit: 10, offset: 0, hydrate: false },
    );
    expect(results).toEqual({ mode: 'semantic', score_type: 'cosine_similarity', items: [], limit: 10, offset: 0, next_offset: null });
  });

  it('is a 503 search-unavailable problem with Retry-After when the vector index does not answer', async () => {
    const unreachable = createQdrantClient({ url: 'http://127.0.0.1:9', apiKey: undefined });
    const search = searchPersonas(
      { repository: repository(), qdrant: unreachable, collection: env.collection, embedder: await getEmbedder() },
      { query: QUERY, mode: 'semantic', fusion: 'rrf', explain: false, limit: 10, offset: 0, hydrate: false },
    );
    await expect(search).rejects.toMatchObject({ status: 503, type: 'search-unavailable', headers: { 'Retry-After': '2' } });
  });
});

describe('GET /personas/{id}/similar', () => {
  const einsteinId = () => idsByName.get(einstein.name as string)!;
  const reference = (id: string): Reference => {
    const persona = personas.find((candidate) => candidate.id === id)!;
    return { text: vectors.get(id)!, traits: traitsOf(persona), keywords: bm25TermWeights(personaEmbeddingText(persona)), excludeId: id };
  };

  it('ranks the neighbours of the stored vectors like the brute force in every mode, never the persona itself', async () => {
    const cases: Array<['semantic' | 'keyword' | 'personality', string, SearchFilter | undefined]> = [
      ['semantic', 'mode=semantic&limit=100', undefined],
      ['semantic', 'mode=semantic&limit=100&domain=physics,philosophy', { domain: ['physics', 'philosophy'] }],
      ['personality', 'mode=personality&limit=100', undefined],
      [
        'personality',
        'mode=personality&limit=100&humor_usage=low,medium&traits.openness.gte=0.5',
        { humor_usage: ['low', 'medium'], traits: { openness: { gte: 0.5 } } },
      ],
      ['keyword', 'mode=keyword&limit=100', undefined],
      ['keyword', 'mode=keyword&limit=100&domain=physics,philosophy', { domain: ['physics', 'philosophy'] }],
    ];
    for (const id of [einsteinId(), idsByName.get(jazzDrummer.name)!, idsByName.get('history voice 3')!]) {
      for (const [mode, query, filter] of cases) {
        const results = await similar(id, query);
        expect(results.mode).toBe(mode);
        expect(results.items.map((item) => item.id)).not.toContain(id);
        expectRanking(results.items, bruteForce(personas, vectors, mode, reference(id), filter));
      }
      // Hybrid (the default) and blend: the fused score is RRF of the ranks explain reports, each rank holding the brute force's score.
      for (const mode of ['hybrid', 'blend'] as const) {
        const results = await similar(id, `${mode === 'blend' ? 'mode=blend&' : ''}limit=100&explain=true&domain=physics,music,history`);
        expect(results.mode).toBe(mode);
        expect(results.items.map((item) => item.id)).not.toContain(id);
        const filter = { domain: ['physics', 'music', 'history'] };
        const keyword = bruteForce(personas, vectors, 'keyword', reference(id), filter);
        for (const item of results.items) {
          const explained = Object.values(item.explain!);
          expect(explained.length).toBe(mode === 'hybrid' ? 2 : 3);
          expect(item.score).toBeCloseTo(fusedScore(item.explain!, { keyword: evidenceWeight(reference(id), filter) }), 6);
          if (item.explain!.keyword!.rank !== null) expect(item.explain!.keyword!.score).toBeCloseTo(keyword[item.explain!.keyword!.rank - 1]!.score, 4);
          expect(matchesFilter(personas.find((persona) => persona.id === item.id)!, filter)).toBe(true);
        }
      }
    }
  });

  it('pages the neighbours without overlap, and hydrates them', async () => {
    const unpaged = await similar(einsteinId(), 'mode=blend&limit=100');
    const { ids } = await allPages((offset) => similar(einsteinId(), `mode=blend&limit=9&offset=${offset}`));
    expect(ids).toEqual(unpaged.items.map((item) => item.id));
    const hydrated = await similar(einsteinId(), 'limit=3&hydrate=true');
    expect(hydrated.items.every((item) => 'beliefs' in item && 'version' in item)).toBe(true);
  });

  it('reads comma lists, %2C inside a value, repeated lists and dotted trait bounds from the query string', () => {
    expect(parseSimilarQuery('domain=physics,arts%2C%20crafts&domain=music&traits.openness.gte=0.7&hydrate=true&limit=&mode=blend&fusion=dbsf')).toEqual({
      mode: 'blend',
      fusion: 'dbsf',
      explain: false,
      limit: 10,
      offset: 0,
      hydrate: true,
      filter: { domain: ['physics', 'arts, crafts', 'music'], traits: { openness: { gte: 0.7 } } },
    });
    expect(parseSimilarQuery(undefined)).toEqual({ fusion: 'rrf', explain: false, limit: 10, offset: 0, hydrate: false });
    // An empty list value is one empty label (the document's [""]), not an absent list.
    expect(() => parseSimilarQuery('modes=')).toThrow(expect.objectContaining({ errors: [{ pointer: '#/query/modes', detail: 'must not be empty' }] }));
    // So is an empty member of the document's `ranking` object.
    expect(() => parseSimilarQuery('mode=&weights.keyword=')).toThrow(expect.objectContaining({ errors: expect.arrayContaining([expect.objectContaining({ pointer: '#/query/mode' }), expect.objectContaining({ pointer: '#/query/weights.keyword' })]) }));
  });

  it('is a 404 problem for an unknown persona and a 409 persona-not-indexed with Retry-After for one the index lacks', async () => {
    const unknown = await env.api('GET', '/personas/3f2b8c1e-8f7a-4f7e-9a53-2f0d9c6c1b2a/similar');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    expect(unknown.json.type).toBe('https://persona-db.dev/problems/persona-not-found');

    const id = idsByName.get('art voice 9')!;
    await env.qdrant.delete(env.collection, { wait: true, points: [id] });
    const notIndexed = await env.api('GET', `/personas/${id}/similar`);
    expect(notIndexed.status).toBe(409);
    expect(notIndexed.json.type).toBe('https://persona-db.dev/problems/persona-not-indexed');
    expect(notIndexed.headers.get('retry-after')).toBe('1');
  });
});

describe('invalid search requests', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['neither query nor traits', {}, ['#/query']],
    ['no query in keyword mode', { mode: 'keyword' }, ['#/query']],
    ['query and traits without a mode', { query: 'a', traits: einstein.traits }, ['#/mode']],
    ['unknown fusion', { query: 'a', fusion: 'max' }, ['#/fusion']],
    ['explain a string', { query: 'a', explain: 'yes' }, ['#/explain']],
    ['blank query', { query: '   ' }, ['#/query']],
    ['query too long', { query: 'x'.repeat(1001) }, ['#/query']],
    ['query not a string', { query: 42 }, ['#/query']],
    ['unknown mode', { query: 'a', mode: 'fuzzy' }, ['#/mode']],
    ['unknown field', { query: 'a', sort: 'name' }, ['#/sort']],
    ['limit 0', { query: 'a', limit: 0 }, ['#/limit']],
    ['limit 101', { query: 'a', limit: 101 }, ['#/limit']],
    ['limit not an integer', { query: 'a', limit: 2.5 }, ['#/limit']],
    ['limit a string', { query: 'a', limit: '10' }, ['#/limit']],
    ['negative offset', { query: 'a', offset: -1 }, ['#/offset']],
    ['offset past the maximum', { query: 'a', offset: 1001 }, ['#/offset']],
    ['score_threshold a string', { query: 'a', score_threshold: 'high' }, ['#/score_threshold']],
    ['hydrate a string', { query: 'a', hydrate: 'yes' }, ['#/hydrate']],
    ['unknown filter field', { query: 'a', filter: { language: ['en'] } }, ['#/filter/language']],
    ['filter not an object', { query: 'a', filter: 'physics' }, ['#/filter']],
    ['domain not a list', { query: 'a', filter: { domain: 'physics' } }, ['#/filter/domain']],
    ['empty domain list', { query: 'a', filter: { domain: [] } }, ['#/filter/domain']],
    ['humor level unknown', { query: 'a', filter: { humor_usage: ['wild'] } }, ['#/filter/humor_usage/0']],
    ['trait name unknown', { query: 'a', filter: { traits: { charisma: { gte: 0.5 } } } }, ['#/filter/traits/charisma']],
    ['gte > lte', { query: 'a', filter: { traits: { openness: { gte: 0.8, lte: 0.2 } } } }, ['#/filter/traits/openness/gte']],
    ['trait bound above 1', { query: 'a', filter: { traits: { openness: { lte: 1.5 } } } }, ['#/filter/traits/openness/lte']],
    ['empty trait range', { query: 'a', filter: { traits: { openness: {} } } }, ['#/filter/traits/openness']],
    ['unknown range operator', { query: 'a', filter: { traits: { openness: { gt: 0.2 } } } }, ['#/filter/traits/openness/gt', '#/filter/traits/openness']],
    ['personality without traits', { mode: 'personality' }, ['#/traits']],
    ['personality with a query', { mode: 'personality', query: 'a', traits: einstein.traits }, ['#/query']],
    ['semantic with traits', { mode: 'semantic', query: 'a', traits: einstein.traits }, ['#/traits']],
    ['blend without traits', { mode: 'blend', query: 'a' }, ['#/traits']],
    ['incomplete traits profile', { mode: 'personality', traits: { openness: 0.5 } }, ['#/traits/conscientiousness']],
    ['body not an object', [], ['#']],
    ['weights with fusion dbsf', { query: 'a', fusion: 'dbsf', weights: { keyword: 2 } }, ['#/weights']],
    ['weights in a single-ranking mode', { mode: 'semantic', query: 'a', weights: { semantic: 2 } }, ['#/weights']],
    ['weight of a ranking the mode does not fuse', { query: 'a', weights: { personality: 2 } }, ['#/weights/personality']],
    ['weight 0', { query: 'a', weights: { keyword: 0 } }, ['#/weights/keyword']],
    ['weight above the maximum', { query: 'a', weights: { keyword: 101 } }, ['#/weights/keyword']],
    ['weight not a number', { query: 'a', weights: { keyword: '2' } }, ['#/weights/keyword']],
    ['unknown ranking in weights', { query: 'a', weights: { colour: 2 } }, ['#/weights/colour']],
  ];

  it.each(cases)('%s → 400 with field errors', async (_name, body, pointers) => {
    const response = await env.api('POST', '/personas/search', { body });
    expect(response.status, response.text).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.json.type).toBe('https://persona-db.dev/problems/validation-error');
    const reported = (response.json.errors as Array<{ pointer: string; detail: string }>).map((error) => error.pointer);
    for (const pointer of pointers) expect(reported).toContain(pointer);
    for (const error of response.json.errors) expect(error.detail.length).toBeGreaterThan(5);
  });

  const queryCases: Array<[string, string[]]> = [
    ['limit=0', ['#/query/limit']],
    ['limit=ten', ['#/query/limit']],
    ['offset=5000', ['#/query/offset']],
    ['mode=fuzzy', ['#/query/mode']],
    ['hydrate=yes', ['#/query/hydrate']],
    ['colour=red', ['#/query/colour']],
    ['traits.charisma.gte=0.5', ['#/query/traits.charisma.gte']],
    ['traits.openness.gte=0.9&traits.openness.lte=0.1', ['#/query/traits.openness.gte']],
    ['traits.openness.gte=high', ['#/query/traits.openness.gte']],
    ['humor_usage=low,wild', ['#/query/humor_usage']],
    ['limit=5&limit=6', ['#/query/limit']],
    ['domain=%E0%A4%A', ['#/query/domain']],
    ['mode=hybrid&weights.keyword=0', ['#/query/weights.keyword']],
    ['mode=hybrid&weights.keyword=lots', ['#/query/weights.keyword']],
    ['mode=semantic&weights.semantic=2', ['#/query/weights']],
    ['mode=hybrid&weights.colour=2', ['#/query/weights.colour']],
  ];

  it.each(queryCases)('similar?%s → 400 with parameter errors', async (query, pointers) => {
    const id = idsByName.get(einstein.name as string)!;
    const response = await env.api('GET', `/personas/${id}/similar?${query}`);
    expect(response.status, response.text).toBe(400);
    const reported = (response.json.errors as Array<{ pointer: string }>).map((error) => error.pointer);
    expect(reported).toEqual(pointers);
  });

  it('a malformed JSON body, a wrong media type and a malformed similar id are 4xx problems', async () => {
    expect((await env.api('POST', '/personas/search', { rawBody: '{"query":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await env.api('POST', '/personas/search', { rawBody: 'query=a', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await env.api('GET', '/personas/not-a-uuid/similar')).status).toBe(400);
  });
});

describe('routing', () => {
  it('POST /personas/search is the search, not a persona id; other methods on the new paths are 405 with Allow', async () => {
    expect((await env.api('POST', '/personas/search', { body: { query: 'physics' } })).status).toBe(200);
    const deleteSimilar = await env.api('DELETE', `/personas/${idsByName.get(einstein.name as string)}/similar`);
    expect(deleteSimilar.status).toBe(405);
    expect(deleteSimilar.headers.get('allow')).toBe('GET, HEAD');
    const putOpenApi = await env.api('PUT', '/openapi.json');
    expect(putOpenApi.status).toBe(405);
    expect(putOpenApi.headers.get('allow')).toBe('GET, HEAD');
  });
});

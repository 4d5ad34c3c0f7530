import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../local/qdrant/server';
import { mulberry32 } from '../lib/seededRandom';
import { KEYWORD_SETTINGS, keywordDocumentVector, keywordQueryVector, keywordTokens } from '../shared/vectorIndex/keywordVector';

/**
 * Sparse vectors with `modifier: idf` in the local Qdrant server, against Qdrant's own definition:
 *
 * - lib/segment/src/data_types/query_context.rs (`VectorQueryContext::remap_idf_weights`,
 *   `fancy_idf`): every query weight is multiplied by idf = ln((N − df + 0.5) / (df + 0.5) + 1),
 *   N = number of indexed vectors of that name, df = the dimension's document frequency.
 * - lib/segment/src/index/sparse_index/sparse_vector_index/read_view/idf.rs: without a corpus filter
 *   the statistics are global ("df(term) is the whole posting list length"; N the index's
 *   vector_count), so a search filter does not change them, and a deleted point still counts until
 *   its segment is vacuumed (lib/segment/src/segment/mod.rs, `delete_point_internal`).
 * - The score is the dot product of the IDF-weighted query with the stored vector over the shared
 *   dimensions; only points sharing a dimension with the query are candidates (inverted index).
 *
 * With the keywords vector's client-side BM25 term weights (shared/vectorIndex/keywordVector.ts)
 * and weight-1 query terms, that score must equal a brute-force BM25 over the same texts.
 */

let server: QdrantServer;
let client: QdrantClient;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'qdrant-sparse-'));
  server = await startQdrantServer({ port: 0, dataDir });
  client = new QdrantClient({ url: server.url, checkCompatibility: false });
});

afterAll(async () => {
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const idf = (n: number, df: number) => Math.log((n - df + 0.5) / (df + 0.5) + 1);

async function sparseScores(collection: string, query: { indices: number[]; values: number[] }, filter?: object) {
  const { points } = await client.query(collection, { query, using: 'kw', limit: 100, ...(filter ? { filter } : {}) });
  return Object.fromEntries(points.map((point) => [String(point.id), point.score]));
}

describe('sparse vectors with the idf modifier', () => {
  it('scores a hand-computed example and follows upserts and deletes', async () => {
    await client.createCollection('hand', { sparse_vectors: { kw: { modifier: 'idf' } } });
    await client.upsert('hand', {
      wait: true,
      points: [
        { id: 1, vector: { kw: { indices: [1, 2], values: [1, 3] } }, payload: { group: 'a' } },
        { id: 2, vector: { kw: { indices: [2, 3], values: [1, 1] } }, payload: { group: 'b' } },
        { id: 3, vector: { kw: { indices: [3], values: [4] } }, payload: { group: 'b' } },
      ],
    });
    const query = { indices: [2, 3], values: [1, 1] };
    // N = 3; df(2) = 2, df(3) = 2: idf = ln((3 − 2 + 0.5) / 2.5 + 1) = ln 1.6 = 0.470004 for both.
    // Point 1 shares dimension 2 only (3 · 0.470004); point 3 shares dimension 3 (4 · 0.470004).
    expect(await sparseScores('hand', query)).toEqual({
      '3': expect.closeTo(4 * Math.log(1.6), 4),
      '1': expect.closeTo(3 * Math.log(1.6), 4),
      '2': expect.closeTo(2 * Math.log(1.6), 4),
    });
    expect(4 * Math.log(1.6)).toBeCloseTo(1.880015, 5);

    // A filter narrows the results, not the statistics (global IDF).
    expect(await sparseScores('hand', query, { must: [{ key: 'group', match: { value: 'a' } }] })).toEqual({
      '1': expect.closeTo(3 * Math.log(1.6), 4),
    });

    // Delete point 3. Qdrant leaves a deleted point's vectors in the sparse index until the segment is
    // vacuumed (`Segment::delete_point_internal`, lib/segment/src/segment/mod.rs), so N = 3 and
    // df(3) = 2 still: only point 3 leaves the results (Qdrant Edge 0.9.0: 1.41001, 0.94001).
    await client.delete('hand', { wait: true, points: [3] });
    expect(await sparseScores('hand', query)).toEqual({
      '1': expect.closeTo(3 * Math.log(1.6), 4),
      '2': expect.closeTo(2 * Math.log(1.6), 4),
    });

    // Overwrite point 2 without dimension 2, in place: N = 3, df(2) = 1 → idf(3, 1); df(3) = 2 (point 2
    // and the deleted point 3) → ln 1.6 (Qdrant Edge 0.9.0: 2.94249, 0.94001).
    await client.upsert('hand', { wait: true, points: [{ id: 2, vector: { kw: { indices: [3], values: [2] } } }] });
    expect(await sparseScores('hand', query)).toEqual({
      '1': expect.closeTo(3 * idf(3, 1), 4),
      '2': expect.closeTo(2 * Math.log(1.6), 4),
    });

    // Upserting a deleted id makes a new point (Qdrant gives it a new internal id): N = 4, df(2) = 2
    // (Qdrant Edge 0.9.0: 2.07944 and 0.69315).
    await client.upsert('hand', { wait: true, points: [{ id: 3, vector: { kw: { indices: [2], values: [1] } } }] });
    expect(await sparseScores('hand', { indices: [2], values: [1] })).toEqual({
      '1': expect.closeTo(3 * idf(4, 2), 4),
      '3': expect.closeTo(idf(4, 2), 4),
    });

    // Deleting the vector (not the point) removes the point from the candidates.
    await client.deleteVectors('hand', { wait: true, points: [2], vector: ['kw'] });
    expect(Object.keys(await sparseScores('hand', query)).sort()).toEqual(['1', '3']);
  });

  it('does not count a point whose empty vector gets terms, as Qdrant does not', async () => {
    // Qdrant's `SparseVectorIndex::update_vector` upserts into `InvertedIndexRam`, which adds one to
    // its vector count only when the point had no stored vector before (`if old_vector.is_none()`,
    // lib/sparse/src/index/inverted_index/inverted_index_ram.rs), and an empty vector is stored but
    // never indexed; removing a non-empty vector subtracts one. So a point whose empty vector gets
    // terms is not counted in N (N stays 2 of 3), and a point whose vector was removed and comes back
    // is counted again (2 → 1 → 2). Qdrant Edge 0.9.0 scores both: 0.69315 = ln 2 = idf(2, 1).
    await client.createCollection('empties', { vectors: { d: { size: 2, distance: 'Dot' } }, sparse_vectors: { kw: { modifier: 'idf' } } });
    const others = [
      { id: 2, vector: { kw: { indices: [6], values: [1] } } },
      { id: 3, vector: { kw: { indices: [6], values: [1] } } },
    ];
    await client.upsert('empties', { wait: true, points: [{ id: 1, vector: { kw: { indices: [], values: [] } } }, ...others] });
    await client.upsert('empties', { wait: true, points: [{ id: 1, vector: { kw: { indices: [5], values: [1] } } }] });
    expect(await sparseScores('empties', { indices: [5], values: [1] })).toEqual({ '1': expect.closeTo(idf(2, 1), 4) });
    await client.upsert('empties', { wait: true, points: [{ id: 1, vector: { d: [1, 0] } }] });
    await client.upsert('empties', { wait: true, points: [{ id: 1, vector: { kw: { indices: [5], values: [1] } } }] });
    expect(await sparseScores('empties', { indices: [5], values: [1] })).toEqual({ '1': expect.closeTo(idf(2, 1), 4) });
  });

  it('without the modifier scores the plain dot product', async () => {
    await client.createCollection('plain', { sparse_vectors: { kw: {} } });
    await client.upsert('plain', {
      wait: true,
      points: [
        { id: 1, vector: { kw: { indices: [1, 2], values: [1, 3] } } },
        { id: 2, vector: { kw: { indices: [5], values: [1] } } },
      ],
    });
    expect(await sparseScores('plain', { indices: [2, 5, 1], values: [0.5, 1, 2] })).toEqual({
      '1': expect.closeTo(0.5 * 3 + 2 * 1, 4),
      '2': expect.closeTo(1, 4),
    });
  });

  it('equals a brute-force BM25 over random texts (deleted ones counted), through random upserts, overwrites and deletes, and after a restart', async () => {
    const random = mulberry32(15);
    const vocabulary = Array.from({ length: 60 }, (_, i) => `word${i}`);
    // Zipf-like: low word numbers are common, high ones rare, as in real text.
    const word = () => vocabulary[Math.floor(vocabulary.length * random() ** 2)]!;
    const text = () => Array.from({ length: 3 + Math.floor(random() * 40) }, word).join(' ');
    const texts = new Map<number, string>();
    await client.createCollection('random', { sparse_vectors: { kw: { modifier: 'idf' } } });

    const upsert = async (ids: number[]) => {
      for (const id of ids) texts.set(id, text());
      await client.upsert('random', {
        wait: true,
        points: ids.map((id) => ({ id, vector: { kw: keywordDocumentVector(texts.get(id)!) } })),
      });
    };

    /** Texts of deleted points: Qdrant's global statistics go on counting them (see the first test). */
    const deletedTexts: string[] = [];

    /** BM25 from the token lists alone: no sparse vectors, no hashing. */
    const bruteForce = (query: string) => {
      const { k1, b, averageLength } = KEYWORD_SETTINGS;
      const documents = [...texts].map(([id, body]) => ({ id, tokens: keywordTokens(body) }));
      const counted = [...documents, ...deletedTexts.map((body) => ({ id: -1, tokens: keywordTokens(body) }))];
      const terms = [...new Set(keywordTokens(query))];
      const scores: Record<string, number> = {};
      for (const { id, tokens } of documents) {
        let score = 0;
        let shared = false;
        for (const term of terms) {
          const tf = tokens.filter((token) => token === term).length;
          if (tf === 0) continue;
          shared = true;
          const df = counted.filter((document) => document.tokens.includes(term)).length;
          score += idf(counted.length, df) * ((tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * tokens.length) / averageLength)));
        }
        if (shared) scores[String(id)] = score;
      }
      return scores;
    };

    const check = async () => {
      for (let round = 0; round < 15; round++) {
        const query = Array.from({ length: 1 + Math.floor(random() * 5) }, word).join(' ');
        const expected = bruteForce(query);
        const actual = await sparseScores('random', keywordQueryVector(query));
        expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
        for (const [id, score] of Object.entries(expected)) expect(actual[id]).toBeCloseTo(score, 4);
      }
    };

    await upsert(Array.from({ length: 80 }, (_, i) => i));
    await check();
    await upsert(Array.from({ length: 30 }, () => Math.floor(random() * 120)));
    await check();
    const removed = [...texts.keys()].filter(() => random() < 0.3);
    await client.delete('random', { wait: true, points: removed });
    for (const id of removed) {
      deletedTexts.push(texts.get(id)!);
      texts.delete(id);
    }
    await check();

    // The statistics, deleted points' vectors included, are as they were when the server starts again.
    await server.close();
    server = await startQdrantServer({ port: 0, dataDir });
    client = new QdrantClient({ url: server.url, checkCompatibility: false });
    await check();
  });
});

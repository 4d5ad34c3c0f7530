/**
 * The inverted index of one named sparse vector, kept current on every write as Qdrant's mutable
 * sparse index is: a posting list per dimension (point → value) and Qdrant's count of indexed
 * vectors. These are exactly the statistics of the `idf` modifier.
 *
 * Qdrant, lib/segment/src/data_types/query_context.rs (`VectorQueryContext::remap_idf_weights`,
 * `fancy_idf`): each query weight is multiplied by idf = ln((N − df + 0.5) / (df + 0.5) + 1).
 * lib/segment/src/index/sparse_index/sparse_vector_index/read_view/idf.rs decides N and df:
 *
 * - global statistics (no `params.idf`, or `"global"`): df(term) is the whole posting list length
 *   and N the inverted index's `vector_count()`, kept as `update` below describes; both go on
 *   counting deleted points until the segment is vacuumed (see `retire`). A search filter
 *   restricts which points are returned, not what the IDF is computed over.
 * - a corpus (Qdrant 1.19 `params.idf = {"corpus": <filter>}`, `fill_corpus_idf_statistics`): N is
 *   the number of points that match the corpus filter and have the vector, an empty one included
 *   (`collect_corpus_points`: "points without the vector are not documents of this corpus"), and
 *   df(term) the corpus points in the term's posting list.
 */
import type { StoredPoint } from './collection';
import type { SparseVector } from './vectors';

export const inverseDocumentFrequency = (vectorCount: number, documentFrequency: number) =>
  Math.log((vectorCount - documentFrequency + 0.5) / (documentFrequency + 0.5) + 1);

/** The part of an index its points do not tell: Qdrant keeps it across restarts, so snapshots do too. */
export interface SparseStatistics {
  vectorCount: number;
  retired: SparseVector[];
}

export class SparseVectorIndex {
  /** Dimension → (slot of a point → value). Slots index `points` and the score buffer. */
  private readonly postings = new Map<number, Map<number, number>>();
  /** A point's slot, by point key (pointKey). */
  private readonly slots = new Map<string, number>();
  /** The live point of each slot; undefined for a free slot or a deleted point's. */
  private readonly points: (StoredPoint | undefined)[] = [];
  /** The vector stored in each slot (empty ones included). */
  private readonly vectors: (SparseVector | undefined)[] = [];
  /** Slots of deleted points whose vectors still count in the global statistics. */
  private readonly retired = new Set<number>();
  private readonly freeSlots: number[] = [];
  /** The inverted index's `vector_count`. */
  private indexedVectors = 0;
  private scores = new Float64Array(0);
  private seen = new Uint8Array(0);

  constructor(readonly name: string) {}

  /** N of the global IDF. */
  get vectorCount(): number {
    return this.indexedVectors;
  }

  documentFrequency(dimension: number): number {
    return this.postings.get(dimension)?.size ?? 0;
  }

  idf(dimension: number): number {
    return inverseDocumentFrequency(this.vectorCount, this.documentFrequency(dimension));
  }

  /**
   * The IDF of each of `dimensions` over a corpus: N and df counted only over the live points that
   * `inCorpus` accepts (each point is checked once); a deleted point is in no corpus.
   */
  corpusIdf(dimensions: readonly number[], inCorpus: (point: StoredPoint) => boolean): Map<number, number> {
    const members = new Uint8Array(this.points.length);
    let vectorCount = 0;
    this.points.forEach((point, slot) => {
      if (point && inCorpus(point)) {
        members[slot] = 1;
        vectorCount++;
      }
    });
    const weights = new Map<number, number>();
    for (const dimension of dimensions) {
      let documentFrequency = 0;
      for (const slot of this.postings.get(dimension)?.keys() ?? []) documentFrequency += members[slot]!;
      weights.set(dimension, inverseDocumentFrequency(vectorCount, documentFrequency));
    }
    return weights;
  }

  /**
   * A live point's vector of this name is set (`vector`) or removed (undefined), as Qdrant's
   * `SparseVectorIndex::update_vector` does (lib/segment/src/index/sparse_index/sparse_vector_index.rs)
   * with `InvertedIndexRam` (lib/sparse/src/index/inverted_index/inverted_index_ram.rs):
   *
   * - a non-empty vector is upserted, and `vector_count` grows only when the point had no stored
   *   vector before ("if old_vector.is_none()"): a point whose stored vector was empty is not
   *   counted when it gets terms;
   * - an empty or removed vector takes a non-empty old one out of the postings, and `vector_count`
   *   shrinks by one ("do not upsert empty vectors into the index");
   * - an empty vector is still stored: the point has the vector (for `has_vector` and a corpus).
   */
  update(key: string, point: StoredPoint, vector: SparseVector | undefined): void {
    let slot = this.slots.get(key);
    const old = slot === undefined ? undefined : this.vectors[slot];
    if (old && old.indices.length > 0) this.unpost(slot!, old);
    if (vector && vector.indices.length > 0) {
      if (old === undefined) this.indexedVectors++;
    } else if (old && old.indices.length > 0) {
      this.indexedVectors = Math.max(0, this.indexedVectors - 1);
    }
    if (vector === undefined) {
      if (slot !== undefined) this.release(key, slot);
      return;
    }
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? this.points.length;
      this.slots.set(key, slot);
    }
    this.points[slot] = point;
    this.vectors[slot] = vector;
    this.post(slot, vector);
  }

  /**
   * A point is deleted. Qdrant marks the point deleted but leaves its vectors in storage and in the
   * sparse inverted index (`Segment::delete_point_internal` in lib/segment/src/segment/mod.rs: point
   * deletions are not propagated to the vectors), so the global N and df go on counting it until an
   * optimizer rebuilds the segment; results and corpus statistics never include it. Upserting the
   * id again makes a new point, as Qdrant gives it a new internal id.
   */
  retire(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.points[slot] = undefined;
    this.retired.add(slot);
  }

  /**
   * What Qdrant's vacuum optimizer does: the segment is rebuilt from its live points, so deleted
   * points' vectors leave the postings and the count is that of the live non-empty vectors again.
   */
  vacuum(): void {
    for (const slot of this.retired) {
      const vector = this.vectors[slot]!;
      if (vector.indices.length > 0) this.unpost(slot, vector);
      this.vectors[slot] = undefined;
      this.freeSlots.push(slot);
    }
    this.retired.clear();
    this.indexedVectors = this.vectors.filter((vector, slot) => vector && vector.indices.length > 0 && this.points[slot]).length;
  }

  statistics(): SparseStatistics {
    return { vectorCount: this.indexedVectors, retired: [...this.retired].map((slot) => this.vectors[slot]!) };
  }

  /** After the live points are back in: the deleted points' vectors and Qdrant's count. */
  restore(statistics: SparseStatistics): void {
    for (const vector of statistics.retired) {
      const slot = this.freeSlots.pop() ?? this.points.length;
      this.points[slot] = undefined;
      this.vectors[slot] = vector;
      this.retired.add(slot);
      this.post(slot, vector);
    }
    this.indexedVectors = statistics.vectorCount;
  }

  private post(slot: number, vector: SparseVector): void {
    vector.indices.forEach((dimension, i) => {
      let list = this.postings.get(dimension);
      if (!list) this.postings.set(dimension, (list = new Map()));
      list.set(slot, vector.values[i]!);
    });
  }

  private unpost(slot: number, vector: SparseVector): void {
    for (const dimension of vector.indices) {
      const list = this.postings.get(dimension);
      list?.delete(slot);
      if (list?.size === 0) this.postings.delete(dimension);
    }
  }

  private release(key: string, slot: number): void {
    this.slots.delete(key);
    this.points[slot] = undefined;
    this.vectors[slot] = undefined;
    this.freeSlots.push(slot);
  }

  /**
   * Dot product of the query with every point sharing at least one dimension with it (the only
   * candidates an inverted index yields), each query weight scaled by `weight(dimension)`.
   */
  score(query: SparseVector, weight: (dimension: number) => number, visit: (point: StoredPoint, score: number) => void): void {
    if (this.scores.length < this.points.length) {
      this.scores = new Float64Array(this.points.length * 2);
      this.seen = new Uint8Array(this.points.length * 2);
    }
    const { scores, seen } = this;
    const touched: number[] = [];
    query.indices.forEach((dimension, i) => {
      const list = this.postings.get(dimension);
      if (!list) return;
      const queryWeight = weight(dimension) * query.values[i]!;
      for (const [slot, value] of list) {
        if (seen[slot] === 0) {
          seen[slot] = 1;
          touched.push(slot);
        }
        scores[slot] = scores[slot]! + queryWeight * value;
      }
    });
    for (const slot of touched) {
      const score = scores[slot]!;
      scores[slot] = 0;
      seen[slot] = 0;
      const point = this.points[slot];
      if (point) visit(point, score);
    }
  }
}

/**
 * The inverted index of one named sparse vector, kept current on every write as Qdrant's mutable
 * sparse index is: a posting list per dimension (point → value) and the number of points that
 * carry the vector. These are exactly the statistics of the `idf` modifier.
 *
 * Qdrant, lib/segment/src/data_types/query_context.rs (`VectorQueryContext::remap_idf_weights`,
 * `fancy_idf`): each query weight is multiplied by idf = ln((N − df + 0.5) / (df + 0.5) + 1), where
 * N is the number of indexed vectors of that name and df the length of the dimension's posting
 * list (lib/segment/src/index/sparse_index/sparse_vector_index/read_view/idf.rs: "df(term) is the
 * whole posting list length", N = `inverted_index.vector_count()`). Statistics are global: a
 * filter restricts which points are returned, not what the IDF is computed over.
 */
import type { StoredPoint } from './collection';
import type { SparseVector } from './vectors';

export const inverseDocumentFrequency = (vectorCount: number, documentFrequency: number) =>
  Math.log((vectorCount - documentFrequency + 0.5) / (documentFrequency + 0.5) + 1);

export class SparseVectorIndex {
  /** Dimension → (slot of a point → value). Slots index `points` and the score buffer. */
  private readonly postings = new Map<number, Map<number, number>>();
  private readonly slots = new Map<StoredPoint, number>();
  private readonly points: (StoredPoint | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private scores = new Float64Array(0);
  private seen = new Uint8Array(0);

  constructor(readonly name: string) {}

  /** N of the IDF: the points that carry this vector. */
  get vectorCount(): number {
    return this.slots.size;
  }

  documentFrequency(dimension: number): number {
    return this.postings.get(dimension)?.size ?? 0;
  }

  idf(dimension: number): number {
    return inverseDocumentFrequency(this.vectorCount, this.documentFrequency(dimension));
  }

  add(point: StoredPoint, vector: SparseVector): void {
    const slot = this.freeSlots.pop() ?? this.points.length;
    this.points[slot] = point;
    this.slots.set(point, slot);
    vector.indices.forEach((dimension, i) => {
      let list = this.postings.get(dimension);
      if (!list) this.postings.set(dimension, (list = new Map()));
      list.set(slot, vector.values[i]!);
    });
  }

  remove(point: StoredPoint, vector: SparseVector): void {
    const slot = this.slots.get(point);
    if (slot === undefined) return;
    this.slots.delete(point);
    this.points[slot] = undefined;
    this.freeSlots.push(slot);
    for (const dimension of vector.indices) {
      const list = this.postings.get(dimension);
      list?.delete(slot);
      if (list?.size === 0) this.postings.delete(dimension);
    }
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
      visit(this.points[slot]!, score);
    }
  }
}

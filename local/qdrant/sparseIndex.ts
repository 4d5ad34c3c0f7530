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
  private readonly postings = new Map<number, Map<StoredPoint, number>>();
  private vectors = 0;

  constructor(readonly name: string) {}

  get vectorCount(): number {
    return this.vectors;
  }

  documentFrequency(dimension: number): number {
    return this.postings.get(dimension)?.size ?? 0;
  }

  idf(dimension: number): number {
    return inverseDocumentFrequency(this.vectors, this.documentFrequency(dimension));
  }

  add(point: StoredPoint, vector: SparseVector): void {
    this.vectors++;
    vector.indices.forEach((dimension, i) => {
      let list = this.postings.get(dimension);
      if (!list) this.postings.set(dimension, (list = new Map()));
      list.set(point, vector.values[i]!);
    });
  }

  remove(point: StoredPoint, vector: SparseVector): void {
    this.vectors--;
    for (const dimension of vector.indices) {
      const list = this.postings.get(dimension);
      list?.delete(point);
      if (list?.size === 0) this.postings.delete(dimension);
    }
  }

  /**
   * Dot product of the query with every point sharing at least one dimension with it (the only
   * candidates an inverted index yields), each query weight scaled by `weight(dimension)`.
   */
  score(query: SparseVector, weight: (dimension: number) => number): Map<StoredPoint, number> {
    const scores = new Map<StoredPoint, number>();
    query.indices.forEach((dimension, i) => {
      const list = this.postings.get(dimension);
      if (!list) return;
      const queryWeight = weight(dimension) * query.values[i]!;
      for (const [point, value] of list) scores.set(point, (scores.get(point) ?? 0) + queryWeight * value);
    });
    return scores;
  }
}

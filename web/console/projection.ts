/**
 * Principal component analysis of the five trait scores: the 2-D map shows each persona on the
 * two directions along which the collection's personalities vary most. Five dimensions make
 * this cheap: a 5×5 covariance matrix, diagonalised with Jacobi rotations.
 */
import { TRAITS, type Traits } from './api';

export interface Axis {
  /** Weight of each trait in this direction (a unit vector). */
  loadings: number[];
  /** Share of the total variance along it, 0 to 1. */
  varianceShare: number;
}

export interface Projection {
  axes: [Axis, Axis];
  points: Array<[number, number]>;
}

/** Eigenvalues and eigenvectors (columns) of a symmetric matrix. */
function jacobiEigen(matrix: number[][]): { values: number[]; vectors: number[][] } {
  const n = matrix.length;
  const a = matrix.map((row) => [...row]);
  const v: number[][] = a.map((_, i) => a.map((__, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p]![q]!) < 1e-15) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: a.map((row, i) => row[i]!), vectors: v };
}

export function projectTraits(traits: Traits[]): Projection {
  const n = traits.length;
  const rows = traits.map((item) => TRAITS.map((trait) => item[trait]));
  const mean = TRAITS.map((_, j) => rows.reduce((sum, row) => sum + row[j]!, 0) / Math.max(n, 1));
  const covariance = TRAITS.map((_, i) =>
    TRAITS.map((__, j) => rows.reduce((sum, row) => sum + (row[i]! - mean[i]!) * (row[j]! - mean[j]!), 0) / Math.max(n - 1, 1)),
  );
  const { values, vectors } = jacobiEigen(covariance);
  const order = values.map((value, index) => ({ value, index })).sort((x, y) => y.value - x.value);
  const total = values.reduce((sum, value) => sum + Math.max(value, 0), 0);
  const axis = (rank: number): Axis => {
    const column = order[rank]!.index;
    let loadings = vectors.map((row) => row[column]!);
    // A direction's sign is arbitrary: point it towards its strongest trait, so the map is stable.
    const strongest = loadings.reduce((best, value) => (Math.abs(value) > Math.abs(best) ? value : best), 0);
    if (strongest < 0) loadings = loadings.map((value) => -value);
    return { loadings, varianceShare: total > 0 ? Math.max(order[rank]!.value, 0) / total : 0 };
  };
  const axes: [Axis, Axis] = [axis(0), axis(1)];
  const points = rows.map((row) => axes.map((a) => a.loadings.reduce((sum, weight, j) => sum + weight * (row[j]! - mean[j]!), 0)) as [number, number]);
  return { axes, points };
}

/** "more openness (0.71), extraversion (0.52); less neuroticism (−0.38)": the traits that matter along an axis. */
export function describeAxis(axis: Axis): { positive: string; negative: string } {
  const named = axis.loadings.map((weight, index) => ({ trait: TRAITS[index]!, weight })).filter(({ weight }) => Math.abs(weight) >= 0.25);
  const list = (items: typeof named) => items.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).map(({ trait, weight }) => `${trait} (${weight.toFixed(2).replace('-', '−')})`).join(', ');
  return { positive: list(named.filter(({ weight }) => weight > 0)), negative: list(named.filter(({ weight }) => weight < 0)) };
}

/**
 * Deterministic pseudo-random numbers for generated fixtures (the generated models' weights, the
 * bench's personas): the same key gives the same sequence on every machine. Not for anything that
 * needs unpredictability.
 */

/** FNV-1a over the UTF-16 code units of a string: a 32-bit seed from a readable key. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mulberry32: uniform numbers in [0, 1) from a 32-bit seed; only integer arithmetic, so exact everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform numbers in [0, 1) keyed by a string. */
export function seededRandom(key: string): () => number {
  return mulberry32(fnv1a(key));
}

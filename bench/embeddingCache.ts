/**
 * A disk cache of the benchmark's embeddings (.cache/bench-embeddings, git-ignored), so the in-memory
 * tuning grids and the tests that judge meaning embed the 10,829 texts once per model, not once per
 * run: all-MiniLM-L6-v2 does about 200 texts/s per idle core, and a loaded machine far fewer. Keyed by
 * the model's id, revision (a hash of its files), dtype, pooling, normalisation and prompts, and by
 * each text's sha256; a text not yet cached is embedded and added. Only the benchmark's own
 * in-memory rankings read it: whatever goes through the product (the indexer, a search) embeds itself.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import type { Embedder } from '../shared/embedding';

const CACHE_DIR = path.join(PROJECT_ROOT, '.cache', 'bench-embeddings');

type Kind = 'document' | 'query';

function cacheFile(embedder: Embedder, kind: Kind): string {
  const { model } = embedder;
  const key = createHash('sha256')
    .update(JSON.stringify([model.id, model.revision, model.dtype, model.pooling, model.normalize, kind === 'query' ? model.queryPrefix : model.documentPrefix]))
    .digest('hex')
    .slice(0, 16);
  return path.join(CACHE_DIR, `${model.dimension}d-${kind}-${key}.jsonl`);
}

const textKey = (text: string) => createHash('sha256').update(text).digest('base64url');

/** The texts' vectors in order, embedding (as documents or queries) only those not cached yet. */
export async function cachedEmbeddings(embedder: Embedder, texts: readonly string[], kind: Kind): Promise<number[][]> {
  const file = cacheFile(embedder, kind);
  const known = new Map<string, number[]>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        const [key, vector] = JSON.parse(line) as [string, number[]];
        if (vector.length === embedder.model.dimension) known.set(key, vector);
      } catch {
        // A line cut short by an interrupted run: that text is embedded again.
      }
    }
  }
  const missing = [...new Set(texts.filter((text) => !known.has(textKey(text))))];
  mkdirSync(CACHE_DIR, { recursive: true });
  for (let start = 0; start < missing.length; start += 256) {
    const chunk = missing.slice(start, start + 256);
    const vectors = kind === 'document' ? await embedder.embedDocuments(chunk) : await Promise.all(chunk.map((text) => embedder.embedQuery(text)));
    appendFileSync(file, chunk.map((text, i) => `${JSON.stringify([textKey(text), vectors[i]])}\n`).join(''));
    chunk.forEach((text, i) => known.set(textKey(text), vectors[i]!));
  }
  return texts.map((text) => known.get(textKey(text))!);
}

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `../shared` beside the project root: real files for semantic tests (see its README). A test that
 * needs them is skipped only where the folder is absent, and says so in its name.
 */
const SHARED_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared');

const present = (relative: string): string | undefined => {
  const absolute = path.join(SHARED_DIR, relative);
  return existsSync(absolute) ? absolute : undefined;
};

/** GloVe 6B 50-d + SIF (mean pooling, no prompts), a small real word-embedding model. */
export const GLOVE_MODEL_DIR = present('models/glove-sif-50d/config.json') && path.join(SHARED_DIR, 'models/glove-sif-50d');
/** sentence-transformers/all-MiniLM-L6-v2, a real transformer sentence encoder (mean pooling, no prompts, 256 tokens), fp32 and q8, with reference vectors. */
export const MINILM_MODEL_DIR = present('models/all-MiniLM-L6-v2/config.json') && path.join(SHARED_DIR, 'models/all-MiniLM-L6-v2');
/** 10,489 real personas (personas.jsonl) and their dev pairs (dev_pairs.jsonl). */
export const PERSONAS_DATA_DIR = present('data/personas/personas.jsonl') && path.join(SHARED_DIR, 'data/personas');

/** Suffix for a test name: what it uses, or why it is skipped. */
export const sharedReason = (dir: string | undefined, what: string): string =>
  dir ? `(${path.relative(path.resolve(SHARED_DIR, '..'), dir)})` : `(skipped: ${what} not found in ${SHARED_DIR})`;

/**
 * The model the quality benchmark and the tests that judge meaning use: the real sentence encoder
 * in ../shared/models/all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2: mean pooling, unit
 * vectors, no prompts; its README), read in place, never downloaded. The dtype is the embedder's
 * (EMBEDDING_DTYPE, default q8); every report names it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import type { EmbedderOptions } from '../shared/embedding';
import { personaDataAvailable } from './personaDataset';

export const QUALITY_MODEL_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'models', 'all-MiniLM-L6-v2');

/** The directory alone decides the conventions (it names no prompts, so queries get none), as EMBEDDING_MODEL_DIR would. */
export const qualityEmbedderOptions = (): EmbedderOptions => ({ modelDir: QUALITY_MODEL_DIR, allowRemote: false });

export const qualityDataAvailable = () => personaDataAvailable() && existsSync(path.join(QUALITY_MODEL_DIR, 'tokenizer.json'));

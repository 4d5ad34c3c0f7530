/**
 * The project's embedding module. Default model BAAI/bge-small-en-v1.5 (384 dimensions, CLS pooling,
 * unit vectors, int8 weights); queries get bge's retrieval instruction as a prefix, documents none.
 * A model directory says its own pooling, normalisation, prompts and token limit in its
 * sentence-transformers files (modelConventions.ts); EMBEDDING_* variables override them.
 *
 *   const embedder = await getEmbedder();           // once per process (warm Lambda: already loaded)
 *   await embedder.embedDocuments(texts);           // number[][] of unit vectors
 *   await embedder.embedQuery('a physicist ...');   // number[]
 *   embedder.model;                                 // { id, revision, dimension, dtype, pooling, normalize, queryPrefix, documentPrefix, maxTokens }
 *
 * Model lookup and the EMBEDDING_* variables: see config.ts. Tests and local runs without a real model
 * use the generated one: `npm run model:test`, then EMBEDDING_MODEL_DIR=.cache/models/persona-test-model.
 */
export {
  BGE_QUERY_PREFIX,
  DEFAULT_MODEL_ID,
  EmbeddingConfigError,
  EmbeddingModelUnavailableError,
  UnembeddableTextError,
  locateModel,
  resolveEmbedderSettings,
  type EmbedderSettings,
  type EmbedderSettingsInput,
  type EmbeddingDtype,
  type EmbeddingPooling,
  type ModelLocation,
} from './config';
export {
  describeConventions,
  directoryModelId,
  isBgeEnglishV15,
  type ConventionSource,
  type ModelConventions,
} from './modelConventions';
export {
  createEmbedder,
  getEmbedder,
  resetEmbedder,
  type EmbedEvent,
  type Embedder,
  type EmbedderOptions,
  type EmbeddingModelInfo,
  type EmbeddingStats,
} from './embedder';

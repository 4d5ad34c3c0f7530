import type { QdrantClient } from '@qdrant/js-client-rest';
import { TRAIT_NAMES } from '../persona/schema';
import { KEYWORD_SETTINGS } from './keywordVector';

/**
 * What produced a collection's `text` vectors; stored in the collection's metadata. The pooling and
 * the prompts are part of it: the same weights pooled or prompted otherwise give other vectors, and
 * queries must be embedded the way the documents were.
 */
export interface IndexedModel {
  id: string;
  revision: string;
  dimension: number;
  dtype: string;
  pooling: string;
  normalize: boolean;
  queryPrefix: string;
  documentPrefix: string;
  /**
   * Tokens a text was cut to. Absent in collections recorded before it was: their texts were cut at
   * the tokenizer's model_max_length (512 for bge-small-en-v1.5, whose max_seq_length is also 512).
   */
  maxTokens?: number;
}

export const TEXT_VECTOR = 'text';
export const TRAITS_VECTOR = 'traits';
/** Sparse BM25 vector of the same text (keywordVector.ts); Qdrant applies the IDF. */
export const KEYWORDS_VECTOR = 'keywords';

/**
 * The tenant of a point (`claim` stages): a keyword index marked `is_tenant`, so Qdrant keeps each
 * tenant's points together and serves a tenant's filtered search from them
 * (https://qdrant.tech/documentation/manage-data/multitenancy/: "is_tenant" needs Qdrant 1.11+).
 */
export const TENANT_INDEX = { type: 'keyword', is_tenant: true } as const;

/** Payload fields that filters use, with their index types. */
export const PAYLOAD_INDEXES: ReadonlyArray<readonly [string, 'keyword' | 'float' | 'integer' | typeof TENANT_INDEX]> = [
  ['tenant_id', TENANT_INDEX],
  ['domain', 'keyword'],
  ['modes', 'keyword'],
  ['humor_usage', 'keyword'],
  ['emotional_style', 'keyword'],
  ['version', 'integer'],
  ...TRAIT_NAMES.map((trait) => [`traits.${trait}`, 'float'] as const),
];

/** "id@revision (384 dims, q8, cls pooling, unit vectors, query prefix "...", document prefix none, texts cut at 512 tokens)". */
export function describeIndexedModel(model: Partial<IndexedModel>): string {
  const prefix = (value: string | undefined) => (value === undefined ? 'unknown' : value === '' ? 'none' : JSON.stringify(value));
  const normalize = model.normalize === undefined ? 'normalisation unknown' : model.normalize ? 'unit vectors' : 'vectors not normalised';
  return (
    `${model.id}@${model.revision} (${model.dimension} dims, ${model.dtype}, ${model.pooling ?? 'unknown'} pooling, ${normalize}, ` +
    `query prefix ${prefix(model.queryPrefix)}, document prefix ${prefix(model.documentPrefix)}, ` +
    `texts cut at ${model.maxTokens === undefined ? "the tokenizer's limit" : `${model.maxTokens} tokens`})`
  );
}

export class EmbeddingModelMismatchError extends Error {
  constructor(collection: string, indexed: IndexedModel | undefined, current: Partial<IndexedModel>) {
    super(
      `Collection '${collection}' holds vectors of ${indexed ? describeIndexedModel(indexed) : 'an unknown model'}, ` +
        `but this function embeds with ${describeIndexedModel(current)}. Vectors of two models, or of one model pooled or prompted ` +
        'two ways, are never mixed: run `personas reindex` to build a collection for the new model, or configure the model (and ' +
        'EMBEDDING_POOLING / EMBEDDING_QUERY_PREFIX / EMBEDDING_DOCUMENT_PREFIX / EMBEDDING_NORMALIZE) the collection was built with.',
    );
    this.name = 'EmbeddingModelMismatchError';
  }
}

const MODEL_FIELDS = ['id', 'revision', 'dimension', 'dtype', 'pooling', 'normalize', 'queryPrefix', 'documentPrefix', 'maxTokens'] as const satisfies ReadonlyArray<keyof IndexedModel>;

/**
 * Every field must match; a collection recorded before pooling and prompts were recorded matches
 * nothing. `maxTokens` counts only where the collection records it: one recorded before it was
 * holds texts cut at the tokenizer's limit, which a change of model, prompt or dtype would show
 * anyway, and which for bge-small-en-v1.5 is its max_seq_length (512), so its stages need no reindex.
 */
export const sameModel = (indexed: IndexedModel | undefined, current: IndexedModel) =>
  !!indexed && MODEL_FIELDS.every((field) => indexed[field] === current[field] || (field === 'maxTokens' && indexed.maxTokens === undefined));

export const modelLabel = (model: IndexedModel) => `${model.id}@${model.revision}/${model.dtype}`;

/**
 * How long the indexer keeps writing to the physical collection it resolved (and checked against
 * its model) before it resolves the alias again. A reindex keeps the old collection's changes
 * flowing into the new one for longer than this after its alias swap, so none falls between.
 */
export const ALIAS_RECHECK_MS = 10_000;

async function resolveAlias(client: QdrantClient, name: string): Promise<string | undefined> {
  const { aliases } = await client.getAliases();
  return aliases.find((alias) => alias.alias_name === name)?.collection_name;
}

export async function readIndexedModel(client: QdrantClient, collection: string): Promise<IndexedModel | undefined> {
  const info = await client.getCollection(collection);
  return (info.config.metadata as { embedding_model?: IndexedModel } | null | undefined)?.embedding_model;
}

/**
 * Whether a collection has the `keywords` sparse vector. Collections created before it existed
 * have only `text` and `traits` until `personas reindex` rebuilds them.
 */
export async function hasKeywordsVector(client: QdrantClient, collection: string): Promise<boolean> {
  const info = await client.getCollection(collection);
  return info.config.params.sparse_vectors?.[KEYWORDS_VECTOR] !== undefined;
}

/**
 * Creates a physical collection for `model`: named vectors `text` (cosine) and `traits`
 * (Euclidean: trait profiles differ by level, which cosine would ignore), the sparse vector
 * `keywords` with Qdrant's IDF modifier, and the payload indexes. The metadata records the keyword
 * settings its vectors were computed with.
 */
export async function createPersonaCollection(client: QdrantClient, physicalName: string, model: IndexedModel): Promise<void> {
  // Through the raw API: the 1.18 client's createCollection() drops `metadata`.
  await client.api().createCollection({
    collection_name: physicalName,
    vectors: {
      [TEXT_VECTOR]: { size: model.dimension, distance: 'Cosine' },
      [TRAITS_VECTOR]: { size: TRAIT_NAMES.length, distance: 'Euclid' },
    },
    sparse_vectors: { [KEYWORDS_VECTOR]: { modifier: 'idf' } },
    metadata: { embedding_model: Object.fromEntries(MODEL_FIELDS.filter((field) => model[field] !== undefined).map((field) => [field, model[field]])), keywords: { ...KEYWORD_SETTINGS }, created_at: new Date().toISOString() },
  });
  for (const [field, schema] of PAYLOAD_INDEXES) {
    await client.createPayloadIndex(physicalName, { field_name: field, field_schema: schema, wait: true });
  }
}

/**
 * Makes sure the alias `name` points at a collection built with `model`. A missing collection is
 * created (`<name>-v1` behind the alias, so a reindex can swap it later); an existing one is
 * never recreated or wiped, and a model mismatch is an error rather than mixed vectors.
 */
export async function ensurePersonaCollection(client: QdrantClient, name: string, model: IndexedModel, retries = 2): Promise<string> {
  const target = (await resolveAlias(client, name)) ?? ((await client.collectionExists(name)).exists ? name : undefined);
  if (target) {
    const indexed = await readIndexedModel(client, target);
    if (!sameModel(indexed, model)) throw new EmbeddingModelMismatchError(name, indexed, model);
    return target;
  }
  const physicalName = `${name}-v1`;
  // Qdrant refuses (400) to create a collection under a name an alias has (create_collection.rs).
  const aliased = await resolveAlias(client, physicalName);
  if (aliased) {
    throw new Error(
      `Cannot create the collection '${physicalName}' for '${name}': '${physicalName}' is an alias of '${aliased}'. ` +
        `Delete that alias, or point '${name}' at a collection yourself, or configure another collection name.`,
    );
  }
  try {
    if (!(await client.collectionExists(physicalName)).exists) await createPersonaCollection(client, physicalName, model);
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: physicalName, alias_name: name } }] });
  } catch (error) {
    // Another cold start created it first (a 4xx "already exists"): use theirs. Anything else is a failure.
    const status = (error as { status?: number }).status;
    if ((status !== 409 && status !== 400) || retries <= 0) throw error;
    if (!(await client.collectionExists(physicalName)).exists) throw error;
  }
  return ensurePersonaCollection(client, name, model, retries - 1);
}

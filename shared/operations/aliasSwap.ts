/**
 * Moving an alias from one collection to another without leaving searches without it.
 *
 * Qdrant applies the actions of one alias request in order and keeps the ones already applied when
 * a later one fails (`update_aliases` in lib/storage/src/content_manager/toc/collection_meta_ops.rs):
 * the swap `[delete_alias, create_alias]` is not atomic on error. If the create fails (the target
 * vanished, the connection broke after the delete), the alias is gone and every search through it
 * fails. So the swap checks the target first, reads the aliases back afterwards, and repairs: it
 * completes the swap when the target is still there, or puts the alias back on the old collection.
 */
import type { QdrantClient } from '@qdrant/js-client-rest';

export interface AliasSwapResult {
  /** Where the alias points now. */
  aliasTarget: string;
  /** Set when the swap request failed part-way and the alias had to be repaired. */
  recovery?: string;
}

export class AliasSwapError extends Error {
  constructor(
    message: string,
    /** Where the alias points after the failed swap (undefined only if every repair failed). */
    readonly aliasTarget: string | undefined,
  ) {
    super(message);
    this.name = 'AliasSwapError';
  }
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

async function aliasTarget(qdrant: QdrantClient, alias: string): Promise<string | undefined> {
  const { aliases } = await qdrant.getAliases();
  return aliases.find((entry) => entry.alias_name === alias)?.collection_name;
}

async function isCollection(qdrant: QdrantClient, name: string): Promise<boolean> {
  const { collections } = await qdrant.getCollections();
  return collections.some((collection) => collection.name === name);
}

/** Reads the alias back, retrying a few times: the request that failed may have been a network blip. */
async function readAliasTarget(qdrant: QdrantClient, alias: string): Promise<string | undefined> {
  let lastError: unknown;
  for (const delayMs of [0, 200, 1_000, 3_000]) {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    try {
      return await aliasTarget(qdrant, alias);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function pointAlias(qdrant: QdrantClient, alias: string, collection: string): Promise<boolean> {
  try {
    // create_alias re-points an existing alias of that name (AliasPersistence::insert overwrites).
    await qdrant.updateCollectionAliases({ actions: [{ create_alias: { collection_name: collection, alias_name: alias } }] });
    return (await readAliasTarget(qdrant, alias)) === collection;
  } catch {
    return false;
  }
}

/**
 * Moves `alias` from `from` to `to`. Resolves when the alias points at `to` (with `recovery` set if
 * that took a repair); throws AliasSwapError, with the alias back on `from`, when it cannot.
 */
export async function swapAlias(qdrant: QdrantClient, alias: string, from: string, to: string): Promise<AliasSwapResult> {
  if (!(await isCollection(qdrant, to))) {
    throw new AliasSwapError(`Cannot move alias '${alias}' to '${to}': no such collection. The alias stays on '${from}'.`, from);
  }
  let failure: unknown;
  try {
    await qdrant.updateCollectionAliases({
      actions: [{ delete_alias: { alias_name: alias } }, { create_alias: { collection_name: to, alias_name: alias } }],
    });
  } catch (error) {
    failure = error;
  }

  const now = await readAliasTarget(qdrant, alias).catch(() => undefined);
  if (now === to) return failure === undefined ? { aliasTarget: to } : { aliasTarget: to, recovery: `the swap request failed (${describe(failure)}) after it had moved the alias` };
  const cause = failure === undefined ? `the alias pointed at '${now ?? 'nothing'}' after the swap` : describe(failure);
  if (now === from) {
    throw new AliasSwapError(`Moving alias '${alias}' to '${to}' failed (${cause}); it still points at '${from}'. Run the reindex again.`, from);
  }

  // The delete went through and the create did not (or someone else moved the alias): repair.
  if ((await isCollection(qdrant, to).catch(() => false)) && (await pointAlias(qdrant, alias, to))) {
    return { aliasTarget: to, recovery: `the swap left the alias ${now === undefined ? 'missing' : `on '${now}'`} (${cause}); it was pointed at '${to}' again` };
  }
  if (await pointAlias(qdrant, alias, from)) {
    throw new AliasSwapError(
      `Moving alias '${alias}' to '${to}' failed (${cause}) and left it ${now === undefined ? 'missing' : `on '${now}'`}; ` +
        `it was restored to '${from}', so searches use the old collection. Run the reindex again.`,
      from,
    );
  }
  throw new AliasSwapError(
    `Moving alias '${alias}' to '${to}' failed (${cause}) and the alias could not be restored: searches through '${alias}' fail until it exists. ` +
      `Point it at '${from}' with POST /collections/aliases {"actions":[{"create_alias":{"collection_name":"${from}","alias_name":"${alias}"}}]}.`,
    now,
  );
}

/**
 * The table of contents: collections by name, aliases, and the link to disk. Every lookup by name
 * goes through `resolve`, which follows aliases as Qdrant's `resolve_name` does; deleting a
 * collection is the one operation that takes the literal name (and drops its aliases).
 */
import { Collection, settingsFromCreateRequest } from './collection';
import { DiskStore } from './diskStore';
import { collectionExists, collectionNotFound, formatError, notFound, validationError, wrongInput } from './errors';
import { expectArray, expectObject, expectString, type JsonObject } from './json';
import { parseVectorSchema } from './vectors';

const FORBIDDEN_NAME_CHARS = /[<>:"/\\|?*\0]/;

function validateCollectionName(name: string): void {
  if (name.length === 0 || name.length > 255 || FORBIDDEN_NAME_CHARS.test(name) || name === '.' || name === '..') {
    throw validationError('collection_name', `invalid collection name \`${name}\``);
  }
}

export class Storage {
  private readonly collections = new Map<string, Collection>();
  private aliases = new Map<string, string>();

  private constructor(private readonly disk: DiskStore | undefined) {}

  static async open(dataDir?: string): Promise<Storage> {
    const disk = dataDir ? new DiskStore(dataDir) : undefined;
    const storage = new Storage(disk);
    if (disk) {
      const state = await disk.load();
      for (const snapshot of state.collections) storage.collections.set(snapshot.name, Collection.fromSnapshot(snapshot));
      storage.aliases = new Map(Object.entries(state.aliases).filter(([, target]) => storage.collections.has(target)));
    }
    return storage;
  }

  resolve(name: string): Collection {
    const collection = this.collections.get(this.aliases.get(name) ?? name);
    if (!collection) throw collectionNotFound(name);
    return collection;
  }

  exists(name: string): boolean {
    return this.collections.has(this.aliases.get(name) ?? name);
  }

  names(): string[] {
    return [...this.collections.keys()];
  }

  async create(name: string, body: JsonObject): Promise<void> {
    validateCollectionName(name);
    if (this.collections.has(name)) throw collectionExists(name);
    // Qdrant answers 400, not 409, here (create_collection.rs: `StorageError::bad_input`).
    if (this.aliases.has(name)) throw wrongInput(`Can't create collection with name ${name}. Alias with the same name already exists`);
    const collection = new Collection(name, parseVectorSchema(body.vectors, body.sparse_vectors), settingsFromCreateRequest(body));
    this.collections.set(name, collection);
    await this.persist(collection);
  }

  /** `false` when there was no such collection, as in Qdrant (no 404). */
  async delete(name: string): Promise<boolean> {
    const removed = this.collections.delete(name);
    const aliasCount = this.aliases.size;
    for (const [alias, target] of this.aliases) if (target === name) this.aliases.delete(alias);
    if (this.disk) {
      await Promise.all([
        removed ? this.disk.deleteCollection(name) : undefined,
        this.aliases.size !== aliasCount ? this.disk.saveAliases(Object.fromEntries(this.aliases)) : undefined,
      ]);
    }
    return removed;
  }

  async persist(collection: Collection): Promise<void> {
    await this.disk?.saveCollection(collection.toSnapshot());
  }

  /**
   * Applies the actions in order, as Qdrant's `update_aliases` does
   * (lib/storage/src/content_manager/toc/collection_meta_ops.rs): each action takes effect (and is
   * saved) before the next one is checked, so when one fails the earlier ones stay applied. The
   * body is parsed whole first, so a malformed action changes nothing.
   */
  async updateAliases(body: unknown): Promise<void> {
    const actions = expectArray(expectObject(body, '').actions, 'actions').map((raw, i) => parseAliasAction(raw, `actions[${i}]`));
    const before = new Map(this.aliases);
    try {
      for (const action of actions) this.applyAliasAction(action);
    } finally {
      const changed = before.size !== this.aliases.size || [...this.aliases].some(([alias, target]) => before.get(alias) !== target);
      if (changed) await this.disk?.saveAliases(Object.fromEntries(this.aliases));
    }
  }

  private applyAliasAction(action: AliasAction): void {
    switch (action.kind) {
      case 'create':
        if (!this.collections.has(action.collection)) throw collectionNotFound(action.collection);
        if (this.collections.has(action.alias)) throw collectionExists(action.alias);
        // An existing alias of that name is re-pointed (AliasPersistence::insert overwrites).
        this.aliases.set(action.alias, action.collection);
        return;
      case 'delete':
        // Deleting an alias that does not exist is not an error (AliasPersistence::remove).
        this.aliases.delete(action.alias);
        return;
      case 'rename': {
        const target = this.aliases.get(action.from);
        if (target === undefined) throw notFound(`Alias ${action.from} does not exists!`);
        this.aliases.delete(action.from);
        this.aliases.set(action.to, target);
      }
    }
  }

  aliasList(collection?: string): { alias_name: string; collection_name: string }[] {
    return [...this.aliases]
      .filter(([, target]) => collection === undefined || target === collection)
      .map(([alias_name, collection_name]) => ({ alias_name, collection_name }));
  }

  async flush(): Promise<void> {
    await this.disk?.flush();
  }
}

type AliasAction =
  | { kind: 'create'; collection: string; alias: string }
  | { kind: 'delete'; alias: string }
  | { kind: 'rename'; from: string; to: string };

function parseAliasAction(raw: unknown, at: string): AliasAction {
  const action = expectObject(raw, at);
  if (action.create_alias !== undefined) {
    const spec = expectObject(action.create_alias, `${at}.create_alias`);
    return {
      kind: 'create',
      collection: expectString(spec.collection_name, `${at}.create_alias.collection_name`),
      alias: expectString(spec.alias_name, `${at}.create_alias.alias_name`),
    };
  }
  if (action.delete_alias !== undefined) {
    const spec = expectObject(action.delete_alias, `${at}.delete_alias`);
    return { kind: 'delete', alias: expectString(spec.alias_name, `${at}.delete_alias.alias_name`) };
  }
  if (action.rename_alias !== undefined) {
    const spec = expectObject(action.rename_alias, `${at}.rename_alias`);
    return {
      kind: 'rename',
      from: expectString(spec.old_alias_name, `${at}.rename_alias.old_alias_name`),
      to: expectString(spec.new_alias_name, `${at}.rename_alias.new_alias_name`),
    };
  }
  throw formatError(`data did not match any variant of untagged enum AliasOperations at ${at}`);
}

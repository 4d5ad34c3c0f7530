/**
 * The table of contents: collections by name, aliases, and the link to disk. Every lookup by name
 * goes through `resolve`, which follows aliases as Qdrant's `resolve_name` does; deleting a
 * collection is the one operation that takes the literal name (and drops its aliases).
 */
import { Collection, settingsFromCreateRequest } from './collection';
import { DiskStore } from './diskStore';
import { alreadyExists, collectionExists, collectionNotFound, formatError, notFound, validationError } from './errors';
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
    if (this.aliases.has(name)) throw alreadyExists(`Alias with the same name \`${name}\` already exists`);
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

  /** Applies all actions or none: a failing action leaves the aliases as they were. */
  async updateAliases(body: unknown): Promise<void> {
    const actions = expectArray(expectObject(body, '').actions, 'actions');
    const next = new Map(this.aliases);
    actions.forEach((raw, i) => {
      const at = `actions[${i}]`;
      const action = expectObject(raw, at);
      if (action.create_alias !== undefined) {
        const spec = expectObject(action.create_alias, `${at}.create_alias`);
        const collection = expectString(spec.collection_name, `${at}.create_alias.collection_name`);
        const alias = expectString(spec.alias_name, `${at}.create_alias.alias_name`);
        if (!this.collections.has(collection)) throw collectionNotFound(collection);
        if (this.collections.has(alias)) throw collectionExists(alias);
        next.set(alias, collection);
      } else if (action.delete_alias !== undefined) {
        const spec = expectObject(action.delete_alias, `${at}.delete_alias`);
        next.delete(expectString(spec.alias_name, `${at}.delete_alias.alias_name`));
      } else if (action.rename_alias !== undefined) {
        const spec = expectObject(action.rename_alias, `${at}.rename_alias`);
        const from = expectString(spec.old_alias_name, `${at}.rename_alias.old_alias_name`);
        const to = expectString(spec.new_alias_name, `${at}.rename_alias.new_alias_name`);
        const target = next.get(from);
        if (target === undefined) throw notFound(`Alias ${from} does not exists!`);
        next.delete(from);
        next.set(to, target);
      } else {
        throw formatError(`data did not match any variant of untagged enum AliasOperations at ${at}`);
      }
    });
    this.aliases = next;
    await this.disk?.saveAliases(Object.fromEntries(this.aliases));
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

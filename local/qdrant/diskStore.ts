/**
 * Optional persistence: one JSON snapshot per collection plus one alias file, each replaced
 * atomically (write a temp file, then rename) so a crash leaves either the old or the new state.
 * The snapshot text is taken when the change happens and writes to one file are queued, so the
 * file always ends at the latest state even when writes overlap.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CollectionSnapshot } from './collection';

const ALIASES_FILE = 'aliases.json';
const COLLECTIONS_DIR = 'collections';

export interface StoredState {
  collections: CollectionSnapshot[];
  aliases: Record<string, string>;
}

export class DiskStore {
  private readonly queues = new Map<string, Promise<void>>();
  private tempCounter = 0;

  constructor(private readonly dir: string) {}

  async load(): Promise<StoredState> {
    await mkdir(join(this.dir, COLLECTIONS_DIR), { recursive: true });
    const files = (await readdir(join(this.dir, COLLECTIONS_DIR))).filter((file) => file.endsWith('.json'));
    const collections = await Promise.all(
      files.map(async (file) => JSON.parse(await readFile(join(this.dir, COLLECTIONS_DIR, file), 'utf8')) as CollectionSnapshot),
    );
    let aliases: Record<string, string> = {};
    try {
      aliases = JSON.parse(await readFile(join(this.dir, ALIASES_FILE), 'utf8')) as Record<string, string>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return { collections, aliases };
  }

  saveCollection(snapshot: CollectionSnapshot): Promise<void> {
    return this.write(this.collectionFile(snapshot.name), JSON.stringify(snapshot));
  }

  deleteCollection(name: string): Promise<void> {
    return this.enqueue(this.collectionFile(name), () => rm(this.collectionFile(name), { force: true }));
  }

  saveAliases(aliases: Record<string, string>): Promise<void> {
    return this.write(join(this.dir, ALIASES_FILE), JSON.stringify(aliases));
  }

  /** Resolves once every queued write has landed. */
  async flush(): Promise<void> {
    await Promise.all(this.queues.values());
  }

  private collectionFile(name: string): string {
    return join(this.dir, COLLECTIONS_DIR, `${encodeURIComponent(name)}.json`);
  }

  private write(file: string, text: string): Promise<void> {
    return this.enqueue(file, async () => {
      const temp = `${file}.${process.pid}.${++this.tempCounter}.tmp`;
      await writeFile(temp, text);
      await rename(temp, file);
    });
  }

  private enqueue(file: string, task: () => Promise<void>): Promise<void> {
    const next = (this.queues.get(file) ?? Promise.resolve()).then(task);
    const settled = next.catch(() => undefined);
    this.queues.set(file, settled);
    void settled.then(() => {
      if (this.queues.get(file) === settled) this.queues.delete(file);
    });
    return next;
  }
}

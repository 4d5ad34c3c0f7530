/**
 * The reindex's alias swap (shared/operations/aliasSwap.ts) under Qdrant's alias semantics: the
 * actions of one request are applied in order and the earlier ones stay applied when a later one
 * fails (`update_aliases`, lib/storage/src/content_manager/toc/collection_meta_ops.rs). A proxy in
 * front of the local server injects a failure between the swap's `delete_alias` and
 * `create_alias`, while searches run through the alias the whole time.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AliasSwapError, swapAlias } from '../shared/operations/aliasSwap';
import { useLocalQdrant } from './support/localQdrant';
import { startQdrantProxy, type QdrantProxy } from './support/qdrantProxy';

const local = useLocalQdrant();

let proxy: QdrantProxy;
let proxied: QdrantClient;

beforeAll(async () => {
  proxy = await startQdrantProxy(local.server.url);
  proxied = new QdrantClient({ url: proxy.url, checkCompatibility: false });
});

afterAll(async () => {
  await proxy?.close();
});

beforeEach(async () => {
  const client = local.client;
  for (const [name, generation] of [['people-v1', 1], ['people-v2', 2]] as const) {
    await client.deleteCollection(name);
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(name, { wait: true, points: [{ id: 1, vector: [1, 0], payload: { generation } }] });
  }
  await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'people-v1', alias_name: 'people' } }] });
});

/** Searches through the alias until stopped; records each outcome in order. */
function searchLoop() {
  const outcomes: Array<number | 'failed'> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { points } = await local.client.query('people', { query: [1, 0], with_payload: true });
        outcomes.push(points[0]?.payload?.generation as number);
      } catch {
        outcomes.push('failed');
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    outcomes,
    /** Lets `count` more searches run after the swap, then stops. */
    async stopAfter(count: number) {
      const target = outcomes.length + count;
      while (outcomes.length < target) await new Promise((resolve) => setTimeout(resolve, 5));
      running = false;
      await loop;
    },
  };
}

const aliasTarget = async () => (await local.client.getAliases()).aliases.find((alias) => alias.alias_name === 'people')?.collection_name;

describe('swapAlias', () => {
  it('moves the alias in one request when nothing fails', async () => {
    expect(await swapAlias(proxied, 'people', 'people-v1', 'people-v2')).toEqual({ aliasTarget: 'people-v2' });
    expect(await aliasTarget()).toBe('people-v2');
  });

  it('completes the swap when the connection breaks between delete_alias and create_alias; searches recover by themselves', async () => {
    const searches = searchLoop();
    proxy.failNextAliasUpdate('connection-drops-after-first-action');
    const result = await swapAlias(proxied, 'people', 'people-v1', 'people-v2');
    const swappedAt = searches.outcomes.length;
    await searches.stopAfter(20);

    expect(proxy.faultPending).toBe(false);
    expect(result.aliasTarget).toBe('people-v2');
    expect(result.recovery).toMatch(/left the alias missing .*pointed at 'people-v2' again/);
    expect(await aliasTarget()).toBe('people-v2');
    // Every search after the swap returned finds the new collection, with no manual step.
    expect(searches.outcomes.slice(swappedAt)).toEqual(Array(searches.outcomes.length - swappedAt).fill(2));
    expect(searches.outcomes.slice(0, swappedAt).every((outcome) => outcome === 1 || outcome === 2 || outcome === 'failed')).toBe(true);
  });

  it('puts the alias back on the old collection when the target vanishes between the check and the swap', async () => {
    const searches = searchLoop();
    proxy.failNextAliasUpdate('target-vanishes');
    const failure = await swapAlias(proxied, 'people', 'people-v1', 'people-v2').then(
      () => expect.fail('the swap cannot succeed without its target'),
      (error: unknown) => error,
    );
    const failedAt = searches.outcomes.length;
    await searches.stopAfter(20);

    expect(failure).toBeInstanceOf(AliasSwapError);
    expect((failure as AliasSwapError).aliasTarget).toBe('people-v1');
    expect((failure as Error).message).toMatch(/left it missing; it was restored to 'people-v1'.*Run the reindex again/);
    expect(await aliasTarget()).toBe('people-v1');
    expect(searches.outcomes.slice(failedAt)).toEqual(Array(searches.outcomes.length - failedAt).fill(1));
  });

  it('refuses to swap to a collection that does not exist, leaving the alias alone', async () => {
    await expect(swapAlias(proxied, 'people', 'people-v1', 'people-v9')).rejects.toThrow(/no such collection. The alias stays on 'people-v1'/);
    // An alias is not a collection: moving 'people' onto another alias is refused too.
    await local.client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'people-v2', alias_name: 'people-next' } }] });
    await expect(swapAlias(proxied, 'people', 'people-v1', 'people-next')).rejects.toThrow(/no such collection/);
    expect(await aliasTarget()).toBe('people-v1');
  });
});

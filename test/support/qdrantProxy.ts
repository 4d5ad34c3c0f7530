import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedExchange } from './qdrantOpenApi';

/**
 * Failures injected into the next alias request (POST /collections/aliases), as they can happen
 * against Qdrant, which applies alias actions one by one and keeps those already applied:
 * - `connection-drops-after-first-action`: the first action is applied, then the connection breaks;
 * - `target-vanishes`: the collection a create_alias names is deleted just before the request.
 */
export type AliasFault = 'connection-drops-after-first-action' | 'target-vanishes';

export interface QdrantProxy {
  url: string;
  /** Every request that went through, with the answer's status and raw text. */
  exchanges: RecordedExchange[];
  /** The next alias request suffers `fault` (once). */
  failNextAliasUpdate(fault: AliasFault): void;
  /** Whether the injected fault is still waiting for its request. */
  readonly faultPending: boolean;
  /** From now on requests wait, connection open and unanswered (a Qdrant that does not answer yet), until release(). */
  hold(): void;
  /** Forwards the held requests and every later one. */
  release(): void;
  /** Requests waiting now. */
  readonly held: number;
  close(): Promise<void>;
}

/** An HTTP proxy in front of a Qdrant: forwards everything, keeps a copy of each answer, injects alias faults. */
export async function startQdrantProxy(upstream: string): Promise<QdrantProxy> {
  const exchanges: RecordedExchange[] = [];
  let fault: AliasFault | undefined;
  let holding: { released: Promise<void>; release: () => void } | undefined;
  let held = 0;

  async function forward(method: string, url: string, headers: Record<string, string>, body: Buffer | string | undefined) {
    const answer = await fetch(new URL(url, upstream), { method, headers, body });
    const text = await answer.text();
    const contentType = answer.headers.get('content-type') ?? '';
    exchanges.push({ method, path: new URL(url, upstream).pathname, status: answer.status, contentType, body: text });
    return { status: answer.status, contentType, text };
  }

  const server = createServer(async (request, response) => {
    try {
      if (holding) {
        held++;
        await holding.released;
        held--;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(([name]) => ['content-type', 'api-key', 'authorization', 'accept'].includes(name)),
      ) as Record<string, string>;
      const injected = request.method === 'POST' && request.url?.startsWith('/collections/aliases') ? fault : undefined;
      if (injected) fault = undefined;
      if (injected === 'connection-drops-after-first-action') {
        const { actions } = JSON.parse(body!.toString('utf8')) as { actions: unknown[] };
        await forward('POST', request.url!, headers, JSON.stringify({ actions: actions.slice(0, 1) }));
        request.socket.destroy();
        return;
      }
      if (injected === 'target-vanishes') {
        const { actions } = JSON.parse(body!.toString('utf8')) as { actions: { create_alias?: { collection_name: string } }[] };
        const created = actions.find((action) => action.create_alias)?.create_alias?.collection_name;
        if (created) await forward('DELETE', `/collections/${encodeURIComponent(created)}`, headers, undefined);
      }
      const answer = await forward(request.method!, request.url!, headers, body);
      response.writeHead(answer.status, { 'content-type': answer.contentType });
      response.end(answer.text);
    } catch (error) {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`proxy: ${(error as Error).message}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    failNextAliasUpdate(next) {
      fault = next;
    },
    get faultPending() {
      return fault !== undefined;
    },
    hold() {
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      holding = { released, release };
    },
    release() {
      holding?.release();
      holding = undefined;
    },
    get held() {
      return held;
    },
    async close() {
      holding?.release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

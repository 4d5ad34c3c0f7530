import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedExchange } from './qdrantOpenApi';

export interface RecordingProxy {
  url: string;
  /** Every request that went through, with the answer's status and raw text. */
  exchanges: RecordedExchange[];
  close(): Promise<void>;
}

/** An HTTP proxy that forwards everything to `upstream` and keeps a copy of each answer. */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const exchanges: RecordedExchange[] = [];
  const server = createServer(async (request, response) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(([name]) => ['content-type', 'api-key', 'authorization', 'accept'].includes(name)),
      ) as Record<string, string>;
      const answer = await fetch(new URL(request.url!, upstream), {
        method: request.method,
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      });
      const body = await answer.text();
      const contentType = answer.headers.get('content-type') ?? '';
      exchanges.push({ method: request.method!, path: new URL(request.url!, upstream).pathname, status: answer.status, contentType, body });
      response.writeHead(answer.status, { 'content-type': contentType });
      response.end(body);
    } catch (error) {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`proxy: ${(error as Error).message}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

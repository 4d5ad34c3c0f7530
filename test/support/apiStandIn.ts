import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the stand-in does with the next request instead of (or besides) forwarding it:
 * - an answer of its own (a throttling gateway's 429, an unavailable service's 503, with or without Retry-After);
 * - `drop`: the connection breaks before the API sees the request;
 * - `lose-answer`: the API carries the request out, then the connection breaks before its answer
 *   arrives (the case Idempotency-Keys exist for).
 */
export type StandInFault = { status: number; headers?: Record<string, string>; body?: string } | 'drop' | 'lose-answer';

export interface StandInRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
  fault: StandInFault | undefined;
}

export interface ApiStandIn {
  url: string;
  requests: StandInRequest[];
  /** The next requests (in order) suffer these faults; later ones are forwarded untouched. */
  inject(...faults: StandInFault[]): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

/** An HTTP stand-in in front of the API: forwards every request, except those it was told to fail. */
export async function startApiStandIn(upstream: string): Promise<ApiStandIn> {
  const requests: StandInRequest[] = [];
  const faults: StandInFault[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const fault = faults.shift();
    requests.push({ method: request.method!, path: request.url!, headers: request.headers, at: Date.now(), fault });
    if (fault === 'drop') return void request.socket.destroy();
    if (fault !== undefined && fault !== 'lose-answer') {
      response.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      return void response.end(fault.body ?? JSON.stringify({ message: 'Too Many Requests' }));
    }
    const headers = Object.entries(request.headers).filter(([name]) => !HOP_BY_HOP.has(name)) as Array<[string, string]>;
    const answer = await fetch(new URL(request.url!, upstream), {
      method: request.method!,
      headers,
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    const body = Buffer.from(await answer.arrayBuffer());
    if (fault === 'lose-answer') return void request.socket.destroy();
    response.writeHead(answer.status, Object.fromEntries([...answer.headers].filter(([name]) => !HOP_BY_HOP.has(name) && name !== 'content-encoding')));
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    inject: (...next) => void faults.push(...next),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

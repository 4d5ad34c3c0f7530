import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll } from 'vitest';
import { startQdrantServer, type QdrantServer } from '../../local/qdrant/server';

export interface LocalQdrant {
  server: QdrantServer;
  client: QdrantClient;
  /** A request as sent on the wire, with the answer's raw text kept (number formatting matters). */
  raw(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: any }>;
}

/** One in-memory local Qdrant server for the test file, started before its tests and closed after. */
export function useLocalQdrant(): LocalQdrant {
  const local = {
    async raw(method: string, path: string, body?: unknown) {
      const response = await fetch(local.server.url + path, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
    },
  } as LocalQdrant;
  beforeAll(async () => {
    local.server = await startQdrantServer({ port: 0 });
    // The version check is a fire-and-forget request made at construction; not needed here.
    local.client = new QdrantClient({ url: local.server.url, checkCompatibility: false });
  });
  afterAll(async () => {
    await local.server?.close();
  });
  return local;
}

/**
 * The REST surface: Qdrant's paths, methods and result shapes, each mapped onto the storage,
 * update, query and scroll modules. Handlers return the `result` value; the server wraps it.
 */
import { createHash } from 'node:crypto';
import type { Collection } from './collection';
import { pointNotFound } from './errors';
import { expectArray, expectObject, expectString } from './json';
import { parsePayloadIndex } from './payloadIndex';
import { parsePathPointId } from './pointId';
import * as updates from './pointUpdates';
import { checkVectorSelection, recordJson, scoredPointJson } from './output';
import { runQuery } from './query';
import { parseQueryRequest, parseSearchRequest, type QueryRequest } from './queryParse';
import { countPoints, retrievePoints, scrollPoints } from './scroll';
import type { Storage } from './storage';

export const QDRANT_VERSION = '1.19.0';

/**
 * Qdrant's `GET /` reports the git commit it was built from, a 40-character hex hash
 * (`VersionInfo` in lib/api/src/grpc/models.rs, filled from the build's GIT_COMMIT_ID); the local
 * server reports a fixed hash of its own name and version in that shape.
 */
export const LOCAL_BUILD_COMMIT = createHash('sha1').update(`persona-db local qdrant ${QDRANT_VERSION}`).digest('hex');

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: () => Promise<unknown>;
  storage: Storage;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  handle: (context: RouteContext) => unknown;
  /** `envelope` (default): `{result, status, time}`; `raw`: the value as is; `text`: plain text. */
  reply?: 'envelope' | 'raw' | 'text';
}

const collectionOf = (context: RouteContext): Collection => context.storage.resolve(context.params.collection_name!);

/**
 * Applies an update, persists the collection and reports it as Qdrant does: `completed` when the
 * client asked to `wait`, `acknowledged` (and persisted in the background) otherwise.
 */
function updateRoute(method: Route['method'], path: string, apply: (collection: Collection, body: unknown) => void): Route {
  return {
    method,
    path,
    handle: async (context) => {
      const body = await context.body();
      const collection = collectionOf(context);
      const before = collection.lastOperation();
      try {
        apply(collection, body);
      } catch (error) {
        // An update that failed part-way (a listed point is missing) keeps what it changed, as in Qdrant: save that too.
        if (collection.lastOperation() !== before) await context.storage.persist(collection);
        throw error;
      }
      return finishUpdate(context, collection, collection.lastOperation());
    },
  };
}

/** A POST that reads a collection; the body is parsed first so malformed JSON is a 400 even for a missing collection. */
function readRoute(path: string, read: (collection: Collection, body: unknown) => unknown): Route {
  return {
    method: 'POST',
    path,
    handle: async (context) => {
      const body = await context.body();
      return read(collectionOf(context), body);
    },
  };
}

async function finishUpdate(context: RouteContext, collection: Collection, operationId: number) {
  return (await finishUpdates(context, collection, [operationId]))[0]!;
}

async function finishUpdates(context: RouteContext, collection: Collection, operationIds: number[]) {
  const persisted = context.storage.persist(collection);
  const wait = context.query.get('wait') === 'true';
  if (wait) await persisted;
  else persisted.catch((error: unknown) => console.error(`qdrant: persisting ${collection.name} failed`, error));
  const status = wait ? 'completed' : 'acknowledged';
  return operationIds.map((operation_id) => ({ operation_id, status }));
}

function queryResponse(collection: Collection, request: QueryRequest) {
  checkVectorSelection(collection.schema, request.withVector);
  return runQuery(collection, request).map(({ point, score }) =>
    scoredPointJson(point, score, request.withPayload, request.withVector),
  );
}

const searches = (body: unknown) => expectArray(expectObject(body, '').searches, 'searches');

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/',
    reply: 'raw',
    handle: () => ({ title: 'qdrant - vector search engine', version: QDRANT_VERSION, commit: LOCAL_BUILD_COMMIT }),
  },
  { method: 'GET', path: '/healthz', reply: 'text', handle: () => 'healthz check passed' },
  { method: 'GET', path: '/livez', reply: 'text', handle: () => 'healthz check passed' },
  { method: 'GET', path: '/readyz', reply: 'text', handle: () => 'all shards are ready' },

  // Collections
  {
    method: 'GET',
    path: '/collections',
    handle: ({ storage }) => ({ collections: storage.names().map((name) => ({ name })) }),
  },
  { method: 'GET', path: '/collections/{collection_name}', handle: (context) => collectionOf(context).info() },
  {
    method: 'PUT',
    path: '/collections/{collection_name}',
    handle: async (context) => {
      const body = expectObject(await context.body(), '');
      await context.storage.create(context.params.collection_name!, body);
      return true;
    },
  },
  {
    method: 'PATCH',
    path: '/collections/{collection_name}',
    handle: async (context) => {
      const body = expectObject(await context.body(), '');
      const collection = collectionOf(context);
      collection.applyUpdate(body);
      await context.storage.persist(collection);
      return true;
    },
  },
  {
    method: 'DELETE',
    path: '/collections/{collection_name}',
    handle: (context) => context.storage.delete(context.params.collection_name!),
  },
  {
    method: 'GET',
    path: '/collections/{collection_name}/exists',
    handle: (context) => ({ exists: context.storage.exists(context.params.collection_name!) }),
  },

  // Aliases
  {
    method: 'POST',
    path: '/collections/aliases',
    handle: async (context) => {
      await context.storage.updateAliases(await context.body());
      return true;
    },
  },
  { method: 'GET', path: '/aliases', handle: ({ storage }) => ({ aliases: storage.aliasList() }) },
  {
    method: 'GET',
    path: '/collections/{collection_name}/aliases',
    handle: (context) => ({ aliases: context.storage.aliasList(collectionOf(context).name) }),
  },

  // Payload indexes
  {
    method: 'PUT',
    path: '/collections/{collection_name}/index',
    handle: async (context) => {
      const body = expectObject(await context.body(), '');
      const collection = collectionOf(context);
      const fieldName = expectString(body.field_name, 'field_name');
      const payloads = [...collection.points.values()].map((point) => point.payload);
      collection.setPayloadIndex(fieldName, parsePayloadIndex(fieldName, body.field_schema, payloads));
      return finishUpdate(context, collection, collection.nextOperationId());
    },
  },
  {
    method: 'DELETE',
    path: '/collections/{collection_name}/index/{field_name}',
    handle: (context) => {
      const collection = collectionOf(context);
      collection.deletePayloadIndex(context.params.field_name!);
      return finishUpdate(context, collection, collection.nextOperationId());
    },
  },

  // Reading points
  {
    method: 'GET',
    path: '/collections/{collection_name}/points/{id}',
    handle: (context) => {
      const collection = collectionOf(context);
      const id = parsePathPointId(context.params.id!);
      const point = collection.get(id);
      if (!point) throw pointNotFound(id);
      return recordJson(point, { kind: 'all' }, true);
    },
  },
  readRoute('/collections/{collection_name}/points', retrievePoints),
  readRoute('/collections/{collection_name}/points/scroll', scrollPoints),
  readRoute('/collections/{collection_name}/points/count', countPoints),
  readRoute('/collections/{collection_name}/points/query', (collection, body) => ({
    points: queryResponse(collection, parseQueryRequest(body)),
  })),
  readRoute('/collections/{collection_name}/points/query/batch', (collection, body) =>
    searches(body)
      .map((search, i) => parseQueryRequest(search, `searches[${i}]`))
      .map((request) => ({ points: queryResponse(collection, request) })),
  ),
  readRoute('/collections/{collection_name}/points/search', (collection, body) =>
    queryResponse(collection, parseSearchRequest(body)),
  ),
  readRoute('/collections/{collection_name}/points/search/batch', (collection, body) =>
    searches(body)
      .map((search, i) => parseSearchRequest(search, `searches[${i}]`))
      .map((request) => queryResponse(collection, request)),
  ),

  // Updating points
  updateRoute('PUT', '/collections/{collection_name}/points', updates.upsertPoints),
  updateRoute('POST', '/collections/{collection_name}/points/delete', updates.deletePoints),
  updateRoute('POST', '/collections/{collection_name}/points/payload', updates.setPayload),
  updateRoute('PUT', '/collections/{collection_name}/points/payload', updates.overwritePayload),
  updateRoute('POST', '/collections/{collection_name}/points/payload/delete', updates.deletePayloadKeys),
  updateRoute('POST', '/collections/{collection_name}/points/payload/clear', updates.clearPayload),
  updateRoute('PUT', '/collections/{collection_name}/points/vectors', updates.updateVectors),
  updateRoute('POST', '/collections/{collection_name}/points/vectors/delete', updates.deleteVectors),
  {
    method: 'POST',
    path: '/collections/{collection_name}/points/batch',
    handle: async (context) => {
      const body = await context.body();
      const collection = collectionOf(context);
      return finishUpdates(context, collection, updates.batchUpdate(collection, body));
    },
  },
];

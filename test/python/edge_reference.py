"""
Qdrant Edge (qdrant-edge-py, Qdrant's own engine as an in-process library, built from the same
`segment` and `shard` crates as the Qdrant server) driven with Qdrant REST request bodies.

Each method takes the JSON body a client would send to the Qdrant server's REST API and does what
the server's REST layer does before the shard sees the request, using Edge's bindings, then answers
in the REST result's JSON shape. So one operation, written as a REST request, can be sent both to
the local Qdrant-compatible server and to Edge, and the answers compared field by field.

What the REST layer of the Qdrant server adds on top of the shard, and Edge lacks, is done here as
the server does it:

- A query by point id (`"query": 7`): the collection layer reads the point's vector and adds
  `must_not: has_id` for every referenced id to the root filter (`exclude_referenced_ids`, called
  from `try_into_shard_request` in lib/collection/src/operations/universal_query/collection_query.rs).
- An update with `?wait=true` answers once applied; Edge's `update` is synchronous.
"""

from __future__ import annotations

import uuid
from typing import Any

import qdrant_edge as edge

Json = Any

DISTANCES = {
    'Cosine': edge.Distance.Cosine,
    'Euclid': edge.Distance.Euclid,
    'Dot': edge.Distance.Dot,
    'Manhattan': edge.Distance.Manhattan,
}


class EdgeRequestError(Exception):
    """A request Edge refused (Qdrant's REST server would answer it with a 4xx)."""


# ---- REST JSON -> Edge objects ---------------------------------------------------------------


def point_id(value: Json) -> Any:
    return value


def as_list(value: Json) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def to_filter(body: Json | None) -> edge.Filter | None:
    if body is None:
        return None
    min_should = body.get('min_should')
    return edge.Filter(
        must=[to_condition(c) for c in as_list(body.get('must'))] if body.get('must') is not None else None,
        should=[to_condition(c) for c in as_list(body.get('should'))] if body.get('should') is not None else None,
        must_not=[to_condition(c) for c in as_list(body.get('must_not'))] if body.get('must_not') is not None else None,
        min_should=edge.MinShould(
            conditions=[to_condition(c) for c in min_should['conditions']],
            min_count=min_should['min_count'],
        )
        if min_should is not None
        else None,
    )


def to_match(body: Json) -> Any:
    if 'value' in body:
        return edge.MatchValue(body['value'])
    if 'any' in body:
        return edge.MatchAny(body['any'])
    if 'except' in body:
        return edge.MatchExcept(body['except'])
    if 'text' in body:
        return edge.MatchText(body['text'])
    if 'text_any' in body:
        return edge.MatchTextAny(body['text_any'])
    if 'phrase' in body:
        return edge.MatchPhrase(body['phrase'])
    raise ValueError(f'unsupported match {body}')


def to_range(body: Json) -> Any:
    bounds = {side: body[side] for side in ('gte', 'gt', 'lte', 'lt') if body.get(side) is not None}
    if any(isinstance(value, str) for value in bounds.values()):
        return edge.RangeDateTime(**bounds)
    return edge.RangeFloat(**bounds)


def to_condition(body: Json) -> Any:
    if 'key' in body:
        return edge.FieldCondition(
            body['key'],
            match=to_match(body['match']) if body.get('match') is not None else None,
            range=to_range(body['range']) if body.get('range') is not None else None,
            values_count=edge.ValuesCount(**body['values_count']) if body.get('values_count') is not None else None,
            is_empty=body.get('is_empty'),
            is_null=body.get('is_null'),
        )
    if 'is_empty' in body:
        return edge.IsEmptyCondition(body['is_empty']['key'])
    if 'is_null' in body:
        return edge.IsNullCondition(body['is_null']['key'])
    if 'has_id' in body:
        return edge.HasIdCondition(set(body['has_id']))
    if 'has_vector' in body:
        return edge.HasVectorCondition(body['has_vector'])
    if 'nested' in body:
        return edge.NestedCondition(body['nested']['key'], to_filter(body['nested']['filter']))
    return to_filter(body)


def to_vector(value: Json) -> Any:
    if isinstance(value, dict):
        return edge.SparseVector(list(value['indices']), [float(v) for v in value['values']])
    return [float(v) for v in value]


def to_point_vectors(value: Json) -> Any:
    if isinstance(value, list):
        return to_vector(value)
    return {name: to_vector(vector) for name, vector in value.items()}


def to_with_payload(value: Json, default: bool) -> Any:
    if value is None:
        return default
    if isinstance(value, (bool, list)):
        return value
    if 'include' in value:
        return edge.PayloadSelector.Include(as_list(value['include']))
    return edge.PayloadSelector.Exclude(as_list(value['exclude']))


def to_params(body: Json | None) -> edge.SearchParams | None:
    if body is None:
        return None
    idf = body.get('idf')
    return edge.SearchParams(
        exact=bool(body.get('exact', False)),
        idf=edge.IdfParams(corpus=to_filter(idf['corpus'])) if isinstance(idf, dict) else None,
    )


def combine(a: Json | None, b: Json | None) -> Json | None:
    if a is None:
        return b
    if b is None:
        return a
    return {'must': [a, b]}


# ---- Results -> REST JSON ---------------------------------------------------------------------


def id_json(value: Any) -> Json:
    return str(value) if isinstance(value, uuid.UUID) else value


def vector_json(value: Any) -> Json:
    if isinstance(value, edge.SparseVector):
        return {'indices': list(value.indices), 'values': list(value.values)}
    if isinstance(value, dict):
        return {name: vector_json(vector) for name, vector in value.items()}
    return list(value)


def record_json(record: Any, with_payload: bool, with_vector: bool) -> Json:
    result: dict[str, Json] = {'id': id_json(record.id)}
    if with_payload:
        result['payload'] = record.payload
    if with_vector:
        result['vector'] = vector_json(record.vector) if record.vector is not None else {}
    if getattr(record, 'order_value', None) is not None:
        result['order_value'] = record.order_value
    return result


def scored_json(point: Any, with_payload: bool, with_vector: bool) -> Json:
    return {**record_json(point, with_payload, with_vector), 'score': point.score}


# ---- The shard ---------------------------------------------------------------------------------


class EdgeCollection:
    """One Qdrant collection of one shard, as an EdgeShard in a directory."""

    def __init__(self, path: str, create_body: Json):
        vectors = {
            name: edge.EdgeVectorParams(size=params['size'], distance=DISTANCES[params['distance']])
            for name, params in create_body.get('vectors', {}).items()
        }
        sparse = {
            name: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf if params.get('modifier') == 'idf' else None)
            for name, params in create_body.get('sparse_vectors', {}).items()
        }
        self.sparse_names = set(sparse)
        # No write-ahead log: a test shard needs no durability, and each logged update waits for a sync.
        self.shard = edge.EdgeShard.create(path, edge.EdgeConfig(vectors=vectors, sparse_vectors=sparse, wal_enabled=False))

    def close(self) -> None:
        self.shard.close()

    def _update(self, operation: Any) -> None:
        try:
            self.shard.update(operation)
        except Exception as error:  # Edge raises plain Exceptions with Qdrant's message
            raise EdgeRequestError(str(error)) from error

    # PUT /collections/{name}/index
    def create_index(self, body: Json) -> None:
        schema = body['field_schema']
        if isinstance(schema, str):
            params = getattr(edge.PayloadSchemaType, schema.capitalize())
        else:
            kind = schema['type']
            options = {key: value for key, value in schema.items() if key != 'type'}
            params = {
                'keyword': edge.KeywordIndexParams,
                'integer': edge.IntegerIndexParams,
                'float': edge.FloatIndexParams,
                'datetime': edge.DatetimeIndexParams,
                'bool': edge.BoolIndexParams,
                'uuid': edge.UuidIndexParams,
            }[kind](**options)
        self._update(edge.UpdateOperation.create_field_index(body['field_name'], params))

    # PUT /collections/{name}/points
    def upsert(self, body: Json) -> None:
        points = [edge.Point(p['id'], to_point_vectors(p.get('vector', {})), p.get('payload')) for p in body['points']]
        mode = body.get('update_mode')
        self._update(
            edge.UpdateOperation.upsert_points(
                points,
                condition=to_filter(body.get('update_filter')),
                update_mode={
                    None: None,
                    'upsert': edge.UpdateMode.Upsert,
                    'insert_only': edge.UpdateMode.InsertOnly,
                    'update_only': edge.UpdateMode.UpdateOnly,
                }[mode],
            )
        )

    # POST /collections/{name}/points/delete
    def delete(self, body: Json) -> None:
        if body.get('points') is not None:
            self._update(edge.UpdateOperation.delete_points(body['points']))
        else:
            self._update(edge.UpdateOperation.delete_points_by_filter(to_filter(body['filter'])))

    # POST /collections/{name}/points/payload and PUT (overwrite)
    def set_payload(self, body: Json, overwrite: bool = False) -> None:
        ops = edge.UpdateOperation
        by_ids, by_filter = (ops.overwrite_payload, ops.overwrite_payload_by_filter) if overwrite else (ops.set_payload, ops.set_payload_by_filter)
        key = body.get('key')
        if body.get('points') is not None:
            self._update(by_ids(body['points'], body['payload'], key))
        else:
            self._update(by_filter(to_filter(body['filter']), body['payload'], key))

    # POST /collections/{name}/points/payload/delete
    def delete_payload(self, body: Json) -> None:
        if body.get('points') is not None:
            self._update(edge.UpdateOperation.delete_payload(body['points'], body['keys']))
        else:
            self._update(edge.UpdateOperation.delete_payload_by_filter(to_filter(body['filter']), body['keys']))

    # POST /collections/{name}/points
    def retrieve(self, body: Json) -> Json:
        with_payload = body.get('with_payload', True)
        with_vector = body.get('with_vector', False)
        records = self.shard.retrieve(body['ids'], to_with_payload(with_payload, True), with_vector)
        return [record_json(record, with_payload is not False, with_vector is not False) for record in records]

    # POST /collections/{name}/points/scroll
    def scroll(self, body: Json) -> Json:
        with_payload = body.get('with_payload', True)
        with_vector = body.get('with_vector', False)
        order_by = body.get('order_by')
        if isinstance(order_by, str):
            order_by = {'key': order_by}
        request = edge.ScrollRequest(
            offset=body.get('offset'),
            limit=body.get('limit', 10),
            filter=to_filter(body.get('filter')),
            with_payload=to_with_payload(with_payload, True),
            with_vector=with_vector,
            order_by=edge.OrderBy(
                order_by['key'],
                direction=edge.Direction.Desc if order_by.get('direction') == 'desc' else edge.Direction.Asc,
                start_from=order_by.get('start_from'),
            )
            if order_by is not None
            else None,
        )
        try:
            records, next_offset = self.shard.scroll(request)
        except Exception as error:
            raise EdgeRequestError(str(error)) from error
        return {
            'points': [record_json(record, with_payload is not False, with_vector is not False) for record in records],
            'next_page_offset': id_json(next_offset) if order_by is None else None,
        }

    # POST /collections/{name}/points/count
    def count(self, body: Json) -> Json:
        return {'count': self.shard.count(edge.CountRequest(exact=True, filter=to_filter(body.get('filter'))))}

    # POST /collections/{name}/points/query
    def query(self, body: Json) -> Json:
        referenced: list[Any] = []
        stage = self._stage(body, referenced)
        exclusion = {'must_not': [{'has_id': referenced}]} if referenced else None
        with_payload = body.get('with_payload', False)
        with_vector = body.get('with_vector', False)
        request = edge.QueryRequest(
            limit=body.get('limit', 10),
            offset=body.get('offset', 0),
            query=stage['query'],
            prefetches=stage['prefetches'] or None,
            filter=to_filter(combine(exclusion, body.get('filter'))),
            score_threshold=body.get('score_threshold'),
            params=to_params(body.get('params')),
            with_payload=to_with_payload(with_payload, False),
            with_vector=with_vector,
        )
        try:
            points = self.shard.query(request)
        except Exception as error:
            raise EdgeRequestError(str(error)) from error
        return {'points': [scored_json(point, with_payload is not False, with_vector is not False) for point in points]}

    def _stage(self, body: Json, referenced: list) -> dict:
        using = body.get('using') or ''
        prefetches = [self._prefetch(p, referenced) for p in as_list(body.get('prefetch'))]
        return {'query': self._query(body.get('query'), using, referenced), 'prefetches': prefetches}

    def _prefetch(self, body: Json, referenced: list) -> edge.Prefetch:
        stage = self._stage(body, referenced)
        return edge.Prefetch(
            limit=body.get('limit', 10),
            query=stage['query'],
            prefetches=stage['prefetches'] or None,
            params=to_params(body.get('params')),
            filter=to_filter(body.get('filter')),
            score_threshold=body.get('score_threshold'),
        )

    def _query(self, query: Json, using: str, referenced: list) -> Any:
        if query is None:
            return None
        if isinstance(query, dict) and 'nearest' in query:
            query = query['nearest']
        if isinstance(query, (int, str)):
            # The collection layer's lookup of a point's vector (and the point is excluded, see query()).
            records = self.shard.retrieve([query], False, [using])
            if not records:
                raise EdgeRequestError(f'No point with id {query} found')
            vectors = records[0].vector or {}
            if using not in vectors:
                raise EdgeRequestError(f'Vector `{using}` is not found in point {query}')
            referenced.append(query)
            return edge.Query.Nearest(vectors[using], using=using)
        if isinstance(query, dict) and 'fusion' in query:
            return edge.Fusion.Rrf(k=2) if query['fusion'] == 'rrf' else edge.Fusion.Dbsf()
        if isinstance(query, dict) and 'rrf' in query:
            spec = query['rrf'] or {}
            return edge.Fusion.Rrf(k=spec.get('k', 2), weights=spec.get('weights'))
        return edge.Query.Nearest(to_vector(query), using=using)

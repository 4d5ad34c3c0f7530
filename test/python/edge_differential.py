#!/usr/bin/env python3
"""
Differential test of the local Qdrant-compatible server (local/qdrant) against Qdrant's own engine,
Qdrant Edge (qdrant-edge-py, pinned in test/python/requirements.txt).

Hypothesis generates seeded random sequences of the operations the product sends to Qdrant: a
collection with named dense vectors (cosine, and the traits vector's Euclid) and a sparse vector
with the IDF modifier, payload indexes (keyword with is_tenant, float, integer, datetime), upserts
with and without a condition and an update mode, deletes by id and by filter, set and overwrite
payload, retrieve, scroll (id order with offsets, and order_by), count, and queries: nearest on
each vector, by point id, prefetches fused by weighted RRF or DBSF or re-scored, score thresholds,
filters of every form the product uses (must, should, must_not, min_should, nested, is_empty,
is_null, values_count, ranges, has_id), and IDF over a filtered corpus (`params.idf.corpus`).

Each operation is one REST request body. It goes to the local server over HTTP and, through
edge_reference.py, to an EdgeShard; the answers must agree: the same ids in the same order, the same
payloads, vectors and scores within a relative 1e-5 (Qdrant scores in f32). Points whose scores tie
may come in any order, so tied runs are compared as sets, and a tied run cut off by the limit only
by size and score. After every write the whole collection is compared.

A difference is printed as soon as it is found; then Hypothesis's shrinker looks for a shorter
sequence that still differs for at most --shrink-seconds (60 by default), and the shortest found is
printed as REST bodies; the run exits 1. The same seed draws the same sequences, so a run is
repeatable; `--seed random` draws a new seed (printed). Usage:

    python3 test/python/edge_differential.py --url http://127.0.0.1:6333 --operations 5000 [--seed N|random] [--shrink-seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize, invariant, rule

from hypothesis.internal.conjecture import engine as hypothesis_engine

from edge_reference import EdgeCollection, EdgeRequestError


Json = Any

RELATIVE_TOLERANCE = 1e-5
ABSOLUTE_TOLERANCE = 1e-6

# ---- The collection, as the product creates it (shared/vectorIndex/personaCollection.ts), small ----

TEXT_SIZE = 4
TRAITS_SIZE = 3
COLLECTION_BODY = {
    'vectors': {
        'text': {'size': TEXT_SIZE, 'distance': 'Cosine'},
        'traits': {'size': TRAITS_SIZE, 'distance': 'Euclid'},
    },
    'sparse_vectors': {'keywords': {'modifier': 'idf'}},
}
INDEXES = [
    {'field_name': 'tenant_id', 'field_schema': {'type': 'keyword', 'is_tenant': True}},
    {'field_name': 'domain', 'field_schema': 'keyword'},
    {'field_name': 'version', 'field_schema': 'integer'},
    {'field_name': 'w', 'field_schema': 'float'},
    {'field_name': 'created', 'field_schema': 'datetime'},
]

# A small id pool, so operations keep meeting the same points: integers sort before UUIDs.
IDS = list(range(12)) + [str(uuid.UUID(int=n)) for n in (1, 0xABC, 2**127 + 5)]
TENANTS = ['a', 'b', 'c']
DOMAINS = ['art', 'law', 'music', 'physics']
TAGS = ['x', 'y', 'z']
DATETIMES = [
    '2024-01-01T00:00:00Z',
    '2024-01-01T00:00:00+01:00',
    '2024-03-05T12:30:00Z',
    '2024-03-05T12:30:00.250Z',
    '2023-12-31T23:59:59Z',
    '2025-06-01T00:00:00Z',
]

# ---- Strategies -------------------------------------------------------------------------------

ids = st.sampled_from(IDS)
hundredths = lambda low, high: st.integers(low, high).map(lambda n: n / 100)  # noqa: E731
text_vectors = st.lists(hundredths(-100, 100), min_size=TEXT_SIZE, max_size=TEXT_SIZE)
traits_vectors = st.lists(hundredths(0, 100), min_size=TRAITS_SIZE, max_size=TRAITS_SIZE)
# Stored weights are positive, as the product's BM25 weights are: with a weight of 0 Qdrant returns a
# score-0 point or not depending on which of its search paths runs (lib/sparse/src/index/search_context.rs).
sparse_vectors = st.dictionaries(st.integers(0, 9), st.integers(1, 60).map(lambda n: n / 20), max_size=4).map(
    lambda terms: {'indices': list(terms), 'values': list(terms.values())}
)
query_sparse_vectors = st.dictionaries(st.integers(0, 10), st.integers(1, 40).map(lambda n: n / 20), min_size=1, max_size=3).map(
    lambda terms: {'indices': list(terms), 'values': list(terms.values())}
)

payload_values = {
    'tenant_id': st.sampled_from(TENANTS),
    'domain': st.one_of(st.sampled_from(DOMAINS), st.lists(st.sampled_from(DOMAINS), max_size=3), st.none()),
    'version': st.integers(0, 5),
    'w': st.one_of(hundredths(-500, 500), st.integers(-5, 5), st.lists(hundredths(-500, 500), max_size=2), st.none()),
    'created': st.sampled_from(DATETIMES),
    'tags': st.one_of(st.lists(st.sampled_from(TAGS), max_size=3), st.none()),
    'offers': st.lists(st.fixed_dictionaries({'price': hundredths(0, 1000)}, optional={'kind': st.sampled_from(TAGS)}), max_size=3),
    'meta': st.fixed_dictionaries({}, optional={'x': st.integers(0, 3), 'y': st.sampled_from(TAGS)}),
}
payloads = st.fixed_dictionaries({}, optional=payload_values)

points = st.fixed_dictionaries(
    {
        'id': ids,
        'vector': st.fixed_dictionaries({}, optional={'text': text_vectors, 'traits': traits_vectors, 'keywords': sparse_vectors}),
    },
    optional={'payload': payloads},
)


def ranges(low: int, high: int):
    bound = hundredths(low, high)
    return st.fixed_dictionaries({}, optional={'gte': bound, 'gt': bound, 'lte': bound, 'lt': bound}).filter(bool)


datetime_ranges = st.fixed_dictionaries(
    {}, optional={side: st.sampled_from(DATETIMES) for side in ('gte', 'gt', 'lte', 'lt')}
).filter(bool)
counts = st.fixed_dictionaries({}, optional={side: st.integers(0, 3) for side in ('gte', 'gt', 'lte', 'lt')}).filter(bool)
payload_keys = st.sampled_from(['tenant_id', 'domain', 'w', 'tags', 'created', 'offers', 'meta', 'meta.x', 'missing'])

field_conditions = st.one_of(
    st.builds(lambda t: {'key': 'tenant_id', 'match': {'value': t}}, st.sampled_from(TENANTS)),
    st.builds(lambda d: {'key': 'domain', 'match': {'value': d}}, st.sampled_from(DOMAINS)),
    st.builds(lambda ds: {'key': 'domain', 'match': {'any': ds}}, st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3)),
    st.builds(lambda ds: {'key': 'domain', 'match': {'except': ds}}, st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=2)),
    st.builds(lambda ts: {'key': 'tags', 'match': {'any': ts}}, st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)),
    st.builds(lambda v: {'key': 'version', 'match': {'value': v}}, st.integers(0, 5)),
    st.builds(lambda r: {'key': 'w', 'range': r}, ranges(-500, 500)),
    st.builds(lambda r: {'key': 'version', 'range': r}, ranges(0, 500)),
    st.builds(lambda r: {'key': 'created', 'range': r}, datetime_ranges),
    st.builds(lambda r: {'key': 'offers[].price', 'range': r}, ranges(0, 1000)),
    st.builds(lambda c: {'key': 'tags', 'values_count': c}, counts),
    st.builds(lambda c: {'key': 'domain', 'values_count': c}, counts),
    st.builds(lambda v: {'key': 'meta.x', 'match': {'value': v}}, st.integers(0, 3)),
    st.builds(lambda k: {'is_empty': {'key': k}}, payload_keys),
    st.builds(lambda k: {'is_null': {'key': k}}, payload_keys),
    st.builds(lambda i: {'has_id': i}, st.lists(ids, min_size=1, max_size=4, unique=True)),
    st.builds(lambda v: {'has_vector': v}, st.sampled_from(['text', 'traits', 'keywords'])),
    st.builds(
        lambda r, k: {'nested': {'key': 'offers', 'filter': {'must': [{'key': 'price', 'range': r}] + ([{'key': 'kind', 'match': {'value': k}}] if k else [])}}},
        ranges(0, 1000),
        st.one_of(st.none(), st.sampled_from(TAGS)),
    ),
)


def filters_of(conditions):
    condition_lists = st.lists(conditions, min_size=1, max_size=3)
    return st.fixed_dictionaries(
        {},
        optional={
            'must': condition_lists,
            'should': condition_lists,
            'must_not': condition_lists,
            'min_should': st.builds(
                lambda cs, n: {'conditions': cs, 'min_count': min(n, len(cs))},
                condition_lists,
                st.integers(1, 3),
            ),
        },
    )


conditions = st.recursive(field_conditions, lambda inner: filters_of(inner), max_leaves=4)
filters = filters_of(conditions)
# Most requests carry no filter, so answers are not empty more often than the product's are.
optional_filters = st.one_of(st.none(), st.none(), filters)

with_payloads = st.one_of(
    st.just(True),
    st.just(False),
    st.lists(payload_keys, min_size=1, max_size=2),
    st.builds(lambda keys: {'exclude': keys}, st.lists(payload_keys, min_size=1, max_size=2)),
)
with_vectors = st.one_of(st.just(False), st.just(True), st.lists(st.sampled_from(['text', 'traits', 'keywords']), min_size=1, max_size=2, unique=True))

# What a single nearest stage searches for: (using, query vector, a score threshold for it).
nearest_targets = st.one_of(
    st.tuples(st.just('text'), text_vectors, hundredths(-100, 100)),
    st.tuples(st.just('traits'), traits_vectors, hundredths(5, 150)),
    st.tuples(st.just('keywords'), query_sparse_vectors, hundredths(0, 300)),
    st.tuples(st.sampled_from(['text', 'traits', 'keywords']), ids, st.just(None)),
)


@st.composite
def nearest_stages(draw, limit_max: int = 8) -> Json:
    using, vector, threshold = draw(nearest_targets)
    stage: dict[str, Json] = {'query': vector, 'using': using, 'limit': draw(st.integers(1, limit_max))}
    stage_filter = draw(optional_filters)
    if stage_filter is not None:
        stage['filter'] = stage_filter
    if threshold is not None and draw(st.integers(0, 4)) == 0:
        stage['score_threshold'] = threshold
    if using == 'keywords' and draw(st.booleans()):
        # Mostly the product's corpus, one tenant's points; sometimes any filter.
        corpus = draw(st.one_of(st.builds(lambda t: {'must': [{'key': 'tenant_id', 'match': {'value': t}}]}, st.sampled_from(TENANTS)), filters))
        stage['params'] = {'idf': {'corpus': corpus}}
    return stage


@st.composite
def fused_queries(draw) -> Json:
    prefetch = draw(st.lists(nearest_stages(limit_max=10), min_size=1, max_size=3))
    fusion = draw(
        st.one_of(
            st.just({'fusion': 'rrf'}),
            st.just({'fusion': 'dbsf'}),
            st.builds(
                lambda k, weights: {'rrf': {'k': k, **({'weights': weights[: len(prefetch)]} if weights else {})}},
                st.integers(1, 60),
                st.one_of(st.none(), st.lists(hundredths(0, 300), min_size=len(prefetch), max_size=len(prefetch))),
            ),
        )
    )
    body: dict[str, Json] = {'prefetch': prefetch, 'query': fusion}
    if draw(st.integers(0, 4)) == 0:
        body['score_threshold'] = draw(hundredths(0, 150))
    return body


@st.composite
def rescoring_queries(draw) -> Json:
    prefetch = draw(st.lists(nearest_stages(limit_max=10), min_size=1, max_size=2))
    using, vector, _ = draw(nearest_targets)
    return {'prefetch': prefetch, 'query': vector, 'using': using}


def with_page(stages):
    """A query body's root: a limit, sometimes an offset and a root filter, and what to return."""

    @st.composite
    def build(draw) -> Json:
        body = draw(stages)
        body['limit'] = draw(st.integers(1, 10))
        if draw(st.integers(0, 3)) == 0:
            body['offset'] = draw(st.integers(1, 4))
        root_filter = draw(optional_filters)
        if root_filter is not None:
            body['filter'] = combine_filters(body.get('filter'), root_filter)
        body['with_payload'] = draw(with_payloads)
        if draw(st.integers(0, 5)) == 0:
            body['with_vector'] = draw(with_vectors)
        return body

    return build()


def combine_filters(a: Json | None, b: Json | None) -> Json | None:
    if a is None or b is None:
        return b if a is None else a
    return {'must': [a, b]}


selectors = st.one_of(
    st.builds(lambda i: {'points': i}, st.lists(ids, min_size=1, max_size=4, unique=True)),
    st.builds(lambda f: {'filter': f}, filters),
)

# ---- The local server over REST ----------------------------------------------------------------


class LocalServer:
    def __init__(self, url: str):
        self.address = urllib.parse.urlparse(url)
        self.connect()

    def connect(self) -> None:
        self.connection = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=60)
        self.connection.connect()
        # Without this, Nagle's algorithm and delayed acknowledgements hold small requests back by up to 40 ms.
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body: Json = None) -> tuple[int, Json]:
        data = None if body is None else json.dumps(body).encode('utf8')
        try:
            self.connection.request(method, path, body=data, headers={'content-type': 'application/json'})
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest, http.client.RemoteDisconnected):
            # Node closes a keep-alive connection idle for 5 s (a slow moment on a loaded machine)
            # without reading what arrives on it: the request is sent again on a new connection.
            self.connection.close()
            self.connect()
            self.connection.request(method, path, body=data, headers={'content-type': 'application/json'})
            response = self.connection.getresponse()
        text = response.read().decode('utf8')
        return response.status, json.loads(text) if text else None


# ---- Comparing answers ---------------------------------------------------------------------------


class Difference(AssertionError):
    """An answer of the local server that is not Qdrant's. The first one found is printed at once."""

    first: 'Difference | None' = None

    def __init__(self, message: str):
        super().__init__(message)
        if Difference.first is None:
            Difference.first = self
            print(f'\nfirst difference found (after {OPERATIONS} operations), shrinking it:\n{message}\n', flush=True)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)


def same_json(a: Json, b: Json) -> bool:
    """Equal JSON, numbers within the tolerance (vectors are f32 on both sides)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return close(float(a), float(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def tie_runs(points: list[Json], key: str) -> list[list[Json]]:
    """Consecutive points whose `key` values are equal within the tolerance."""
    runs: list[list[Json]] = []
    for point in points:
        if runs and close(float(runs[-1][0][key]), float(point[key])):
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def compare_ranked(local: list[Json], reference: list[Json], limit: int, key: str = 'score', offset: int = 0) -> str | None:
    """
    Ranked answers agree up to the order inside ties. A tied run cut off by the limit may hold other
    points, and so may the first run of a page that starts at an offset: the points of a tie that
    the offset skipped are any of the tied ones.
    """
    if len(local) != len(reference):
        return f'{len(local)} points, Qdrant {len(reference)}'
    local_runs, reference_runs = tie_runs(local, key), tie_runs(reference, key)
    if [len(run) for run in local_runs] != [len(run) for run in reference_runs]:
        return f'{key}s {[p[key] for p in local]}, Qdrant {[p[key] for p in reference]}'
    for index, (mine, theirs) in enumerate(zip(local_runs, reference_runs)):
        if not close(float(mine[0][key]), float(theirs[0][key])):
            return f'{key} {mine[0][key]} at run {index}, Qdrant {theirs[0][key]}'
        cut = (index == len(local_runs) - 1 and len(local) == limit) or (index == 0 and offset > 0)
        if cut:
            continue
        by_id = {json.dumps(p['id']): p for p in theirs}
        for point in mine:
            other = by_id.get(json.dumps(point['id']))
            if other is None:
                return f'point {point["id"]} ({key} {point[key]}) is not in Qdrant\'s tied run {[p["id"] for p in theirs]}'
            if not same_json(point, other):
                return f'point {point["id"]}: {json.dumps(point)}, Qdrant {json.dumps(other)}'
    return None


def strip_versions(points: list[Json]) -> list[Json]:
    # Operation numbering differs (Edge counts its own updates); the product reads payload.version, not this.
    return [{key: value for key, value in point.items() if key != 'version'} for point in points]


# ---- The state machine ---------------------------------------------------------------------------

SERVER_URL = ''
OPERATIONS = 0
# What the run exercised: operations by kind, and how their answers were compared.
STATISTICS: Counter[str] = Counter()
# Shards live in memory where there is a tmpfs: on disk each segment file's sync costs tens of milliseconds.
SCRATCH = '/dev/shm' if os.path.isdir('/dev/shm') else None


def write(name: str):
    """A rule that changes the collection: sent to both, then both must agree on the outcome."""

    def decorate(method):
        def run(self, **body):
            self.apply(name, method(self, **body))

        run.__name__ = method.__name__
        return run

    return decorate


class EdgeDifferential(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.local = LocalServer(SERVER_URL)
        self.collection = f'edge-diff-{uuid.uuid4().hex[:12]}'
        self.path = f'/collections/{urllib.parse.quote(self.collection)}'
        self.directory = tempfile.mkdtemp(prefix='edge-diff-', dir=SCRATCH)
        self.edge = EdgeCollection(self.directory, COLLECTION_BODY)
        status, answer = self.local.call('PUT', self.path, COLLECTION_BODY)
        assert status == 200, answer
        for index in INDEXES:
            self.edge.create_index(index)
            status, answer = self.local.call('PUT', f'{self.path}/index?wait=true', index)
            assert status == 200, answer
        self.dirty = False

    def teardown(self):
        self.edge.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.local.call('DELETE', self.path)

    # -- sending one operation to both

    def both(self, method: str, path: str, body: Json, reference) -> tuple[Json, Json]:
        global OPERATIONS
        OPERATIONS += 1
        status, answer = self.local.call(method, f'{self.path}{path}', body)
        try:
            expected = reference()
            refused = None
        except EdgeRequestError as error:
            expected, refused = None, str(error)
        STATISTICS[f'{path.split("?")[0]} {"refused by both" if refused is not None and status >= 400 else "answered"}'] += 1
        request = f'{method} {path} {json.dumps(body)}'
        if status >= 500:
            raise Difference(f'{request}\n  local server: {status} {json.dumps(answer)}')
        if refused is not None and status < 400:
            raise Difference(f'{request}\n  Qdrant refuses it ({refused}); the local server answered {status}')
        if refused is None and status >= 400:
            raise Difference(f'{request}\n  the local server refused it ({status} {json.dumps(answer)}); Qdrant answered {json.dumps(expected)[:400]}')
        return (answer or {}).get('result'), expected

    def apply(self, name: str, request: tuple[str, str, Json]):
        method, path, body = request
        reference = {
            'upsert': lambda: self.edge.upsert(body),
            'delete': lambda: self.edge.delete(body),
            'set_payload': lambda: self.edge.set_payload(body),
            'overwrite_payload': lambda: self.edge.set_payload(body, overwrite=True),
            'delete_payload': lambda: self.edge.delete_payload(body),
        }[name]
        self.both(method, f'{path}?wait=true', body, reference)
        self.dirty = True

    def differs(self, request: str, problem: str | None, local: Json, reference: Json):
        if problem is not None:
            raise Difference(f'{request}\n  {problem}\n  local:  {json.dumps(local)[:1500]}\n  Qdrant: {json.dumps(reference)[:1500]}')

    # -- writes

    @initialize(batch=st.lists(points, min_size=4, max_size=14, unique_by=lambda p: json.dumps(p['id'])))
    @write('upsert')
    def populate(self, batch):
        return 'PUT', '/points', {'points': batch}

    @rule(
        batch=st.lists(points, min_size=1, max_size=6),
        update_filter=st.one_of(st.none(), st.none(), filters),
        update_mode=st.sampled_from([None, None, None, 'upsert', 'insert_only', 'update_only']),
    )
    @write('upsert')
    def upsert(self, batch, update_filter, update_mode):
        # Qdrant applies a batch's points in order; the last of a repeated id wins. Keep one per id.
        unique = list({json.dumps(p['id']): p for p in batch}.values())
        body: dict[str, Json] = {'points': unique}
        if update_filter is not None:
            body['update_filter'] = update_filter
        if update_mode is not None:
            body['update_mode'] = update_mode
        return 'PUT', '/points', body

    @rule(selector=selectors)
    @write('delete')
    def delete(self, selector):
        return 'POST', '/points/delete', selector

    @rule(selector=selectors, payload=payloads, key=st.one_of(st.none(), st.none(), st.just('meta')))
    @write('set_payload')
    def set_payload(self, selector, payload, key):
        return 'POST', '/points/payload', {**selector, 'payload': payload, **({'key': key} if key else {})}

    @rule(selector=selectors, payload=payloads)
    @write('overwrite_payload')
    def overwrite_payload(self, selector, payload):
        return 'PUT', '/points/payload', {**selector, 'payload': payload}

    @rule(selector=selectors, keys=st.lists(payload_keys, min_size=1, max_size=2))
    @write('delete_payload')
    def delete_payload(self, selector, keys):
        return 'POST', '/points/payload/delete', {**selector, 'keys': keys}

    # -- reads

    @rule(chosen=st.lists(ids, min_size=1, max_size=5), with_payload=with_payloads, with_vector=with_vectors)
    def retrieve(self, chosen, with_payload, with_vector):
        body = {'ids': chosen, 'with_payload': with_payload, 'with_vector': with_vector}
        local, reference = self.both('POST', '/points', body, lambda: self.edge.retrieve(body))
        if reference is None:
            return
        # Retrieve answers in the order of the ids asked for.
        self.differs(f'retrieve {json.dumps(body)}', None if same_json(local, reference) else 'different records', local, reference)

    @rule(
        scroll_filter=optional_filters,
        limit=st.integers(1, 8),
        offset=st.one_of(st.none(), ids),
        with_payload=with_payloads,
    )
    def scroll(self, scroll_filter, limit, offset, with_payload):
        body: dict[str, Json] = {'limit': limit, 'with_payload': with_payload}
        if scroll_filter is not None:
            body['filter'] = scroll_filter
        if offset is not None:
            body['offset'] = offset
        local, reference = self.both('POST', '/points/scroll', body, lambda: self.edge.scroll(body))
        if reference is None:
            return
        self.differs(f'scroll {json.dumps(body)}', None if same_json(local, reference) else 'different page', local, reference)

    @rule(
        scroll_filter=optional_filters,
        key=st.sampled_from(['w', 'version', 'created']),
        direction=st.sampled_from([None, 'asc', 'desc']),
        start_from=st.one_of(st.none(), hundredths(-300, 300)),
        limit=st.integers(1, 8),
    )
    def scroll_ordered(self, scroll_filter, key, direction, start_from, limit):
        order_by: dict[str, Json] = {'key': key}
        if direction is not None:
            order_by['direction'] = direction
        if start_from is not None and key != 'created':
            order_by['start_from'] = start_from
        body: dict[str, Json] = {'limit': limit, 'order_by': order_by, 'with_payload': False}
        if scroll_filter is not None:
            body['filter'] = scroll_filter
        local, reference = self.both('POST', '/points/scroll', body, lambda: self.edge.scroll(body))
        if reference is None:
            return
        problem = compare_ranked(local['points'], reference['points'], limit, key='order_value')
        self.differs(f'scroll {json.dumps(body)}', problem, local, reference)

    @rule(count_filter=optional_filters)
    def count(self, count_filter):
        body = {} if count_filter is None else {'filter': count_filter}
        local, reference = self.both('POST', '/points/count', body, lambda: self.edge.count(body))
        if reference is None:
            return
        self.differs(f'count {json.dumps(body)}', None if local == reference else 'different count', local, reference)

    @rule(body=with_page(nearest_stages()))
    def query_nearest(self, body):
        self.query(body)

    @rule(body=with_page(fused_queries()))
    def query_fused(self, body):
        self.query(body)

    @rule(body=with_page(rescoring_queries()))
    def query_rescored(self, body):
        self.query(body)

    def query(self, body):
        local, reference = self.both('POST', '/points/query', body, lambda: self.edge.query(body))
        if reference is None:
            return
        STATISTICS[f'query answers with {min(len(reference["points"]), 3)}{"+" if len(reference["points"]) >= 3 else ""} points'] += 1
        if self.ambiguous(body):
            STATISTICS['query answers not compared (ties in a prefetch)'] += 1
            return
        problem = compare_ranked(strip_versions(local['points']), reference['points'], body['limit'], offset=body.get('offset', 0))
        self.differs(f'query {json.dumps(body)}', problem, local, reference)

    def ambiguous(self, body: Json) -> bool:
        """
        A fusion's answer depends on where each prefetch ranked its points. When a prefetch's own
        ranking has ties (or a tie cut off by its limit), Qdrant may rank the tied points either way,
        and so may the local server: the fused answer is then not one answer. Such queries are sent
        (both must accept them) but not compared.
        """
        if not body.get('prefetch'):
            return False
        # Every id the request queries by is left out of every prefetch (see edge_reference.py).
        stages = [body, *body['prefetch']]
        referenced = [stage['query'] for stage in stages if isinstance(stage.get('query'), (int, str))]
        exclusion = {'must_not': [{'has_id': referenced}]} if referenced else None
        for prefetch in body['prefetch']:
            probe = {**prefetch, 'limit': prefetch.get('limit', 10) + 1, 'with_payload': False}
            probe['filter'] = combine_filters(combine_filters(exclusion, body.get('filter')), prefetch.get('filter'))
            if probe['filter'] is None:
                del probe['filter']
            try:
                ranked = self.edge.query(probe)['points']
            except EdgeRequestError:
                return True
            if any(len(run) > 1 for run in tie_runs(ranked, 'score')):
                return True
        return False

    # -- the whole collection, after every write

    @invariant()
    def same_points(self):
        if not self.dirty:
            return
        self.dirty = False
        body = {'limit': 1000, 'with_payload': True, 'with_vector': True}
        status, answer = self.local.call('POST', f'{self.path}/points/scroll', body)
        assert status == 200, answer
        local = answer['result']['points']
        reference = self.edge.scroll(body)['points']
        if not same_json(local, reference):
            mine = {json.dumps(p['id']): p for p in local}
            theirs = {json.dumps(p['id']): p for p in reference}
            details = [
                f'  point {key}: local {json.dumps(mine.get(key))}\n          Qdrant {json.dumps(theirs.get(key))}'
                for key in sorted(set(mine) | set(theirs))
                if not same_json(mine.get(key), theirs.get(key))
            ]
            raise Difference('the collections differ after the last write:\n' + '\n'.join(details[:8]))


def main() -> int:
    global SERVER_URL
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true', help='only check that Qdrant Edge and Hypothesis import')
    parser.add_argument('--url', help='the local Qdrant-compatible server')
    parser.add_argument('--operations', type=int, default=5000)
    parser.add_argument('--seed', default='random', help='an integer, or "random" for a new one (printed)')
    parser.add_argument('--steps', type=int, default=30, help='operations per generated sequence')
    parser.add_argument('--shrink-seconds', type=float, default=60, help='how long to look for a shorter failing sequence')
    args = parser.parse_args()
    if args.check:
        print(f'Qdrant Edge {edge_version()}')
        return 0
    if not args.url:
        parser.error('--url is required')
    if args.seed == 'random':
        seed = random.SystemRandom().randrange(2**32)
    elif args.seed.isdigit():
        seed = int(args.seed)
    else:
        parser.error(f'--seed must be an integer or "random", not {args.seed!r}')
    SERVER_URL = args.url
    # Each shrink step replays a sequence on a fresh collection; past the bound the shortest found is kept.
    hypothesis_engine.MAX_SHRINKING_SECONDS = args.shrink_seconds
    print(f'edge differential: seed {seed}, {args.operations} operations, Qdrant Edge {edge_version()}', flush=True)
    started = time.monotonic()
    examples = max(1, math.ceil(args.operations / args.steps))
    # Sequences stop early at random, so more are asked for than the count needs; runs go on until it is reached.
    run = 0
    while OPERATIONS < args.operations:
        config = settings(
            max_examples=examples,
            stateful_step_count=args.steps,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink],
            print_blob=False,
        )
        test = get_state_machine_test(EdgeDifferential, settings=config)
        test._hypothesis_internal_use_seed = seed + run
        try:
            test()
        except Difference as difference:
            # Hypothesis attaches the shrunk sequence to the exception as notes.
            sequence = '\n'.join(getattr(difference, '__notes__', []))
            print(f'\nDIFFERENCE (seed {seed}, run {run}):\n{difference}\n\nThe shortest sequence found:\n{sequence}', flush=True)
            return 1
        except Flaky as flaky:
            # The failing sequence did not fail (the same way) when replayed: the difference depends on
            # something the sequence does not fix, such as the order Qdrant gives tied points.
            print(f'\nDIFFERENCE (seed {seed}, run {run}), not reproduced when the sequence was replayed:\n{Difference.first}\n\n{flaky}', flush=True)
            return 1
        run += 1
    for name, count in sorted(STATISTICS.items()):
        print(f'  {count:6d}  {name}')
    print(f'edge differential: seed {seed}, {OPERATIONS} operations in {time.monotonic() - started:.1f} s, 0 differences', flush=True)
    return 0


def edge_version() -> str:
    from importlib.metadata import version

    return version('qdrant-edge-py')


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""
Query latency of Qdrant Edge (qdrant-edge-py), for bench/qdrantEdgeLatency.ts: the same collection
shape and queries as the local server is timed with (text 384 cosine, traits 5 Euclid, keywords
sparse with IDF, tenant_id keyword index with is_tenant), generated from the same kind of random
numbers (not the same values: latency depends on the shape, not the values). For each size: exact
search (SearchParams(exact=True)), then the same queries after optimize(), which builds Edge's
HNSW index. Prints one JSON object: {size: {exact: {query: [ms...]}, hnsw: {...}}}.

    python3 bench/edge_latency.py --sizes 10000,100000 --queries 100
"""
import argparse
import json
import random
import shutil
import tempfile
import time

import qdrant_edge as edge

TEXT, TRAITS, VOCABULARY, TENANTS = 384, 5, 5000, 4


def point(rng: random.Random, index: int) -> edge.Point:
    terms = rng.sample(range(VOCABULARY), 20)
    return edge.Point(
        index,
        {
            'text': [rng.gauss(0, 1) for _ in range(TEXT)],
            'traits': [rng.random() for _ in range(TRAITS)],
            'keywords': edge.SparseVector(sorted(terms), [rng.random() + 0.1 for _ in terms]),
        },
        {'tenant_id': f'tenant-{index % TENANTS}'},
    )


def queries(rng: random.Random, exact: bool):
    tenant = edge.Filter(must=[edge.FieldCondition('tenant_id', match=edge.MatchValue('tenant-0'))])
    params = edge.SearchParams(exact=exact)
    text = [rng.gauss(0, 1) for _ in range(TEXT)]
    words = rng.sample(range(VOCABULARY), 4)
    sparse = edge.SparseVector(sorted(words), [1.0] * len(words))
    corpus = edge.SearchParams(exact=exact, idf=edge.IdfParams(corpus=tenant))
    return {
        'semantic': edge.QueryRequest(limit=10, query=edge.Query.Nearest(text, using='text'), params=params),
        'keyword-tenant': edge.QueryRequest(limit=10, query=edge.Query.Nearest(sparse, using='keywords'), filter=tenant, params=corpus),
        'hybrid-rrf': edge.QueryRequest(
            limit=10,
            prefetches=[
                edge.Prefetch(limit=100, query=edge.Query.Nearest(text, using='text'), params=params),
                edge.Prefetch(limit=100, query=edge.Query.Nearest(sparse, using='keywords'), params=params),
            ],
            query=edge.Fusion.Rrf(k=2, weights=[1.0, 1.0]),
        ),
    }


def timed(shard, rng: random.Random, count: int, exact: bool) -> dict:
    times: dict = {}
    for _ in range(count):
        for name, request in queries(rng, exact).items():
            started = time.perf_counter()
            shard.query(request)
            times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', default='10000,100000')
    parser.add_argument('--queries', type=int, default=100)
    args = parser.parse_args()
    results = {}
    for size in (int(s) for s in args.sizes.split(',')):
        rng = random.Random(size)
        directory = tempfile.mkdtemp(prefix='edge-bench-')
        config = edge.EdgeConfig(
            vectors={'text': edge.EdgeVectorParams(size=TEXT, distance=edge.Distance.Cosine), 'traits': edge.EdgeVectorParams(size=TRAITS, distance=edge.Distance.Euclid)},
            sparse_vectors={'keywords': edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
            wal_enabled=False,
        )
        shard = edge.EdgeShard.create(directory, config)
        shard.update(edge.UpdateOperation.create_field_index('tenant_id', edge.KeywordIndexParams(is_tenant=True)))
        for start in range(0, size, 1000):
            shard.update(edge.UpdateOperation.upsert_points([point(rng, i) for i in range(start, min(size, start + 1000))]))
        timed(shard, rng, 5, True)  # warm-up
        entry = {'exact': timed(shard, rng, args.queries, True)}
        started = time.perf_counter()
        shard.optimize()
        entry['optimizeSeconds'] = round(time.perf_counter() - started, 1)
        timed(shard, rng, 5, False)
        entry['hnsw'] = timed(shard, rng, args.queries, False)
        results[str(size)] = entry
        shard.close()
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(results))


if __name__ == '__main__':
    main()

"""SparseIndex against Seismic (pyseismic-lsr) and scipy.sparse brute force, single-threaded.

Two corpora, both libraries built on the same data in the same run:

1. ``hh``: sparse codes of HH-RLHF responses from our own ``likeable.SparseEncoder``
   (n_features=2048, k=32, TopK, fit for 5 epochs on MiniLM ONNX embeddings from ../shared;
   encoder cached under .likeable-cache). Skipped with a reason when ../shared is absent.
2. ``synthetic``: clustered rows over 30k features, ~120 non-zeros per row, 1,000 queries of
   ~40 non-zeros. ``LIKEABLE_BENCH_INDEX_ROWS`` sets the row count: default 50,000, to fit a
   shared 2-core machine; the issue's full size is ``LIKEABLE_BENCH_INDEX_ROWS=1000000``
   (``-k synthetic``: 6.6 minutes and 8.8 GB peak memory on the 2-core dev box).

For each corpus a sweep of settings per library is timed (mean latency over all queries, one
thread) with its recall@10 against exact brute force, build time and index bytes; the fastest
setting of each library reaching recall@10 >= 0.95 then meet head to head in one group.

Run: ``PYTHONPATH=python python -m pytest benchmarks/test_bench_index.py``
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk

from conftest import shared_path

K = 10
RECALL_TARGET = 0.95
CACHE = Path(__file__).resolve().parents[1] / ".likeable-cache"
N_ROWS = int(os.environ.get("LIKEABLE_BENCH_INDEX_ROWS", "50000"))

# Settings swept for each library, the same for both: (build params, search params). The
# blocks-per-posting fraction 0.2 and the (8, 1.0), (10, 1.1) search points were added in index
# round 4 (finer blocks give tighter summary bounds; both libraries get them); (10, 0.8) in round
# 5 (HH had no point between (10, 0.9) and the much costlier (20, 0.8)).
BUILD = [(150, 0.1, 0.4), (150, 0.2, 0.4), (500, 0.1, 0.4)]  # n_postings, blocks per posting, summary_energy
SEARCH = [(5, 1.0), (7, 1.0), (8, 1.0), (10, 1.1), (10, 0.9), (10, 0.8), (20, 0.8)]  # query_cut, heap_factor
LIKEABLE_BUILD = [dict(n_postings=n, block_fraction=f, summary_energy=e) for n, f, e in BUILD]
LIKEABLE_SEARCH = [dict(query_cut=c, heap_factor=h) for c, h in SEARCH]
SEISMIC_BUILD = [dict(n_postings=n, centroid_fraction=f, summary_energy=e) for n, f, e in BUILD]
SEISMIC_SEARCH = [dict(query_cut=c, heap_factor=h) for c, h in SEARCH]


# --- corpora ----------------------------------------------------------------------------------
def synthetic_corpus(n_rows, n_features=30_000, n_topics=2_000, row_nnz=120, query_nnz=40,
                     n_queries=1_000, seed=0):
    """Clustered sparse rows (vectorised): each row draws most features from a topic's pool
    (Zipf-skewed inside the pool) and a few from a global Zipf law, with log-normal values."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_features + 1) ** 0.7
    popularity /= popularity.sum()
    feature_of_rank = rng.permutation(n_features).astype(np.int32)
    pool_size = 400
    pools = feature_of_rank[rng.choice(n_features, size=(n_topics, pool_size), p=popularity)]

    def rows(n, nnz, rng):
        topic = rng.integers(n_topics, size=n)
        n_topic = int(nnz * 0.85)
        inside = (pool_size * rng.random((n, n_topic)) ** 2).astype(np.int64)  # skewed within pool
        feats = np.concatenate([pools[topic[:, None], inside],
                                feature_of_rank[rng.choice(n_features, size=(n, nnz - n_topic), p=popularity)]],
                               axis=1)
        vals = rng.lognormal(0.0, 0.6, size=feats.shape).astype(np.float32)
        row_ids = np.repeat(np.arange(n, dtype=np.int64), nnz)
        key = row_ids * n_features + feats.ravel()
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        values = np.add.reduceat(vals.ravel()[order], starts)  # duplicates summed
        ukey = key[starts]
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(ukey // n_features, minlength=n), out=indptr[1:])
        return lk.SparseCodes(indptr, (ukey % n_features).astype(np.int32), values.astype(np.float32),
                              (n, n_features), validate=False)

    return rows(n_rows, row_nnz, rng), rows(n_queries, query_nnz, rng)


def hh_responses():
    texts = []
    with gzip.open(shared_path("data", "hh_rlhf_harmless_test.jsonl.gz"), "rt") as fh:
        for line in fh:
            pair = json.loads(line)
            for side in ("chosen", "rejected"):
                texts.append(pair[side].rsplit("\n\nAssistant:", 1)[-1].strip())
    return texts


def minilm_embeddings(texts):
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings (onnxruntime), cached on disk."""
    CACHE.mkdir(exist_ok=True)
    cache = CACHE / f"hh_minilm_{len(texts)}.npy"
    if cache.exists():
        return np.load(cache)
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model = shared_path("models", "all-MiniLM-L6-v2")
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(256)
    session = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), 384), np.float32)
    for start in range(0, len(texts), 64):
        batch = order[start:start + 64]
        enc = tok.encode_batch([texts[i] for i in batch])
        ids = np.array([e.ids for e in enc], np.int64)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    np.save(cache, out)
    return out


def encoder_codes(emb, n_features=2048, k=32, epochs=5, seed=0):
    """Sparse codes from our own ``likeable.SparseEncoder`` (TopK, fit for a few epochs on the
    MiniLM embeddings); the fitted encoder is cached on disk so reruns encode only."""
    CACHE.mkdir(exist_ok=True)
    cache = CACHE / f"hh_encoder_{len(emb)}_{n_features}_{k}_{epochs}_{seed}.lkenc"
    if cache.exists():
        encoder = lk.SparseEncoder.load(cache)
    else:
        encoder = lk.SparseEncoder(n_features=n_features, k=k, kind="topk", seed=seed)
        encoder.fit(emb, epochs=epochs, progress=False)
        encoder.save(cache)
    return encoder.encode(emb)


# --- the two libraries -------------------------------------------------------------------------
def exact_truth(codes, queries):
    index = lk.SparseIndex(codes, approximate=False)
    return index.search(queries, k=K)[0]


def recall(found, truth):
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


def build_seismic(codes, params):
    import seismic

    ds = seismic.SeismicDataset()
    ds.add_documents_by_id([str(i) for i in range(codes.shape[0])], codes.indices.astype(np.int64),
                           codes.values, codes.indptr)
    start = time.perf_counter()
    index = seismic.SeismicIndex.build_from_dataset(ds, min_cluster_size=2, doc_cut=15, num_threads=1,
                                                    **params)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        index.save(os.path.join(tmp, "s"))
        nbytes = sum(f.stat().st_size for f in Path(tmp).iterdir())
    return index, build_s, nbytes


def seismic_queries(queries):
    import seismic

    string = seismic.get_seismic_string()
    ids = np.array([str(i) for i in range(queries.shape[0])], dtype=string)
    comps, vals = [], []
    for i in range(queries.shape[0]):
        lo, hi = queries.indptr[i], queries.indptr[i + 1]
        comps.append(np.array([str(c) for c in queries.indices[lo:hi]], dtype=string))
        vals.append(queries.values[lo:hi].astype(np.float32))
    return ids, comps, vals


def seismic_search(index, q, params):
    ids, comps, vals = q
    results = index.batch_search(ids, comps, vals, k=K, num_threads=1, **params)
    out = np.full((len(results), K), -1, np.int64)
    for hits in results:  # batch_search returns queries in completion order: place by query id
        if hits:
            got = [int(doc) for _, _, doc in hits][:K]
            out[int(hits[0][0]), :len(got)] = got
    return out


# --- fixtures: each corpus and its sweep, computed once per session ----------------------------
def _sweep(codes, queries):
    truth = exact_truth(codes, queries)
    n_q = queries.shape[0]
    rows = []
    for bp in LIKEABLE_BUILD:
        start = time.perf_counter()
        index = lk.SparseIndex(codes, threads=1, **bp)
        build_s = time.perf_counter() - start
        for spar in LIKEABLE_SEARCH:
            t = time.perf_counter()
            found = index.search(queries, k=K, threads=1, **spar)[0]
            us = (time.perf_counter() - t) / n_q * 1e6
            rows.append(dict(lib="likeable", build=bp, search=spar, build_s=build_s, nbytes=index.nbytes,
                             us_per_query=us, recall=recall(found, truth), index=index))
    q = seismic_queries(queries)
    for bp in SEISMIC_BUILD:
        index, build_s, nbytes = build_seismic(codes, bp)
        for spar in SEISMIC_SEARCH:
            t = time.perf_counter()
            found = seismic_search(index, q, spar)
            us = (time.perf_counter() - t) / n_q * 1e6
            rows.append(dict(lib="seismic", build=bp, search=spar, build_s=build_s, nbytes=nbytes,
                             us_per_query=us, recall=recall(found, truth), index=index))
    return dict(codes=codes, queries=queries, seismic_q=q, truth=truth, rows=rows)


def _report(name, data):
    lines = [f"\n[{name}] {data['codes'].shape[0]} rows x {data['codes'].shape[1]} features, "
             f"nnz {data['codes'].nnz}, {data['queries'].shape[0]} queries (nnz {data['queries'].nnz}), k={K}",
             f"{'library':9s} {'build params':52s} {'search':26s} {'build s':>8s} {'MiB':>8s} "
             f"{'us/query':>9s} {'recall@10':>9s}"]
    for r in data["rows"]:
        lines.append(f"{r['lib']:9s} {json.dumps(r['build']):52s} {json.dumps(r['search']):26s} "
                     f"{r['build_s']:8.2f} {r['nbytes'] / 2**20:8.2f} {r['us_per_query']:9.1f} {r['recall']:9.3f}")
    text = "\n".join(lines)
    print(text)
    CACHE.mkdir(exist_ok=True)
    (CACHE / f"bench_index_{name}.txt").write_text(text + "\n")


@pytest.fixture(scope="module")
def synthetic():
    codes, queries = synthetic_corpus(N_ROWS)
    data = _sweep(codes, queries)
    _report("synthetic", data)
    return data


@pytest.fixture(scope="module")
def hh():
    emb = minilm_embeddings(hh_responses())
    codes = encoder_codes(emb)
    rng = np.random.default_rng(1)
    held_out = rng.permutation(len(emb))
    queries, corpus = codes[np.sort(held_out[:500])], codes[np.sort(held_out[500:])]
    data = _sweep(corpus, queries)
    _report("hh", data)
    return data


def _best(data, lib):
    ok = [r for r in data["rows"] if r["lib"] == lib and r["recall"] >= RECALL_TARGET]
    if not ok:
        pytest.skip(f"no {lib} setting reached recall@10 >= {RECALL_TARGET}")
    return min(ok, key=lambda r: r["us_per_query"])


# --- head to head at recall@10 >= 0.95 ---------------------------------------------------------
@pytest.mark.parametrize("corpus", ["synthetic", "hh"])
@pytest.mark.parametrize("lib", ["likeable", "seismic"])
def test_approximate_search(benchmark, request, corpus, lib):
    data = request.getfixturevalue(corpus)
    best = _best(data, lib)
    benchmark.group = f"index-approx-{corpus}"
    benchmark.extra_info.update(recall=round(best["recall"], 4), MiB=round(best["nbytes"] / 2**20, 2),
                                build_s=round(best["build_s"], 2), settings=json.dumps(best["search"]))
    # One untimed warm-up round each: an index last touched minutes ago (the sweep times every
    # build of one library, then every build of the other) can have its first pass over the
    # 1M-row corpus take 2-3x the others on the dev box's VM (index round 6, runs 2 and 3).
    if lib == "seismic":
        benchmark.extra_info["peer"] = "seismic"
        benchmark.pedantic(seismic_search, args=(best["index"], data["seismic_q"], best["search"]),
                           rounds=3, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(best["index"].search, args=(data["queries"],),
                           kwargs=dict(k=K, threads=1, **best["search"]), rounds=3, iterations=1,
                           warmup_rounds=1)


# --- exact search against scipy.sparse brute force ---------------------------------------------
def scipy_brute_force(matrix_t, queries, k=K, batch=100):
    """scipy.sparse: Q (sparse) @ X^T in batches, then argpartition + sort per query."""
    out = np.empty((queries.shape[0], k), np.int64)
    for start in range(0, queries.shape[0], batch):
        scores = (queries[start:start + batch] @ matrix_t).toarray()
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + batch] = np.take_along_axis(top, order, axis=1)
    return out


@pytest.mark.parametrize("corpus", ["synthetic", "hh"])
@pytest.mark.parametrize("lib", ["likeable", "scipy"])
def test_exact_search(benchmark, request, corpus, lib):
    data = request.getfixturevalue(corpus)
    benchmark.group = f"index-exact-{corpus}"
    queries = data["queries"]
    if lib == "scipy":
        benchmark.extra_info["peer"] = "scipy.sparse"
        matrix_t = data["codes"].to_scipy().T.tocsr()
        q = queries.to_scipy()
        found = benchmark.pedantic(scipy_brute_force, args=(matrix_t, q), rounds=1, iterations=1)
    else:
        index = lk.SparseIndex(data["codes"], approximate=False, threads=1)
        benchmark.extra_info["MiB"] = round(index.nbytes / 2**20, 2)
        found = benchmark.pedantic(index.search, args=(queries,), kwargs=dict(k=K, threads=1),
                                   rounds=3, iterations=1)[0]
    assert recall(found, data["truth"]) > 0.99

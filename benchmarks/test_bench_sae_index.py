"""Approximate search on our own workload (issue 19): the SAE-code corpus of sae_corpus.py
(200k rows, ReLU TopK K = 32 of M = 4096, unsigned), 1,000 held-out codes as queries, k = 10,
single thread, recall@10 against exact brute force.

Peers, each built on the same codes in the same run:
- Seismic (pyseismic-lsr): the same build and search settings as ours (its parameters mean the
  same things).
- BMP (block-max pruning): integer weights only. Row values are quantised to u8 (x / max * 255),
  query values to integers in 1..QUERY_LEVELS, so its recall is capped by that rounding.
- kannolo (SparsePlainHNSW, inner product): a graph, built with all cores (its builder takes no
  thread count; searches run with num_threads=1); cached in the benchmark cache folder. Its
  build (m=32, ef_construction=200) ran past 8 minutes on the 2-core dev box, so it runs only
  with ``LIKEABLE_BENCH_KANNOLO=1``.

Each library sweeps its settings once (timed over all queries). At recall >= 0.95, and again
>= 0.99, Seismic's fastest setting meets our fastest with an index no larger than its index
(interleaved rounds: 5, min and median, load average, index bytes beside them); then, where they
differ, Seismic's smallest index reaching that recall (its fastest setting on that build) meets
our fastest no larger than that.

Run: ``PYTHONPATH=python python -m pytest benchmarks/test_bench_sae_index.py -s``
(about 4 minutes on the 2-core dev box without kannolo).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import likeable as lk

from conftest import INTERLEAVED, interleaved, report_interleaved
from sae_corpus import cache_dir, sae_corpus
from test_bench_index import build_seismic, recall, seismic_queries, seismic_search

K = 10
TARGETS = (0.95, 0.99)
QUERY_LEVELS = 64
# (n_postings, block_fraction, summary_energy): the builds (n_postings 1000 and 2000),
# 1300 between them, and 1150: our largest index (133 MiB) under Seismic's 1000 one (135.8 MiB),
# its smallest to reach recall 0.99. Both libraries get every build and every search setting.
# ``LIKEABLE_BENCH_SAE_POSTINGS`` (e.g. "2000,4000") replaces the n_postings list: longer lists for
# larger corpora (at 1M rows n_postings 2000 tops out at recall 0.986).
_POSTINGS = os.environ.get("LIKEABLE_BENCH_SAE_POSTINGS", "1000,1150,1300,2000")
BUILD = [(int(n), 0.1, 0.4) for n in _POSTINGS.split(",")]
SEARCH = [(4, 1.0), (6, 1.0), (7, 1.0), (8, 1.0), (8, 0.9), (12, 0.9), (12, 0.8), (14, 0.9), (14, 0.8),
          (16, 0.9), (16, 0.8), (20, 0.8), (24, 0.8)]  # query_cut, heap_factor
BMP_SEARCH = [(1.0, 1.0), (0.9, 1.0), (0.8, 1.0), (0.7, 1.0), (0.5, 1.0)]  # alpha, beta
KANNOLO_SEARCH = [40, 80, 160, 320]  # ef_search


def seismic_search_fn(index, queries, query_cut, heap_factor):
    q = seismic_queries(queries)
    return lambda: seismic_search(index, q, dict(query_cut=query_cut, heap_factor=heap_factor))


# --- peers beyond Seismic (whose helpers test_bench_index.py shares) ---------------------------
def build_bmp(codes, path, bsize=32):
    import bmp

    scale = 255.0 / float(codes.values.max())
    indexer = bmp.Indexer(str(path), bsize=bsize, compress_range=False)
    start = time.perf_counter()
    for r in range(codes.shape[0]):
        lo, hi = codes.indptr[r], codes.indptr[r + 1]
        w = np.maximum(1, np.rint(codes.values[lo:hi] * scale)).astype(int)
        indexer.add_document(str(r), {str(f): int(v) for f, v in zip(codes.indices[lo:hi], w)})
    indexer.finish()
    return bmp.Searcher(str(path)), time.perf_counter() - start, Path(path).stat().st_size


def bmp_search_fn(searcher, queries, alpha, beta):
    qs = []
    for i in range(queries.shape[0]):
        lo, hi = queries.indptr[i], queries.indptr[i + 1]
        v = queries.values[lo:hi]
        w = np.maximum(1, np.rint(v / v.max() * QUERY_LEVELS)).astype(int)
        qs.append({str(f): int(x) for f, x in zip(queries.indices[lo:hi], w)})

    def run():
        out = np.full((len(qs), K), -1, np.int64)
        for i, q in enumerate(qs):
            got = [int(d) for d in searcher.search(q, k=K, alpha=alpha, beta=beta)[0]]
            out[i, :len(got)] = got
        return out
    return run


def build_kannolo(codes):
    import kannolo

    path = cache_dir() / f"kannolo_sae_{codes.shape[0]}_{codes.nnz}_m32_efc200.idx"
    start = time.perf_counter()
    if path.exists():
        index = kannolo.SparsePlainHNSW.load(str(path))
    else:
        index = kannolo.SparsePlainHNSW.build_from_arrays(codes.indices.astype(np.int32), codes.values.astype(np.float32),
                                                          codes.indptr.astype(np.int64), m=32, ef_construction=200)
        index.save(str(path))
    return index, time.perf_counter() - start, int(index.space_usage_bytes())


def kannolo_search_fn(index, queries, ef_search):
    comps, vals, offs = queries.indices.astype(np.int32), queries.values.astype(np.float32), queries.indptr.astype(np.int64)

    def run():
        _, ids = index.batch_search(comps, vals, offs, K, ef_search=ef_search, num_threads=1)
        return np.asarray(ids, np.int64).reshape(-1, K)
    return run


# --- the sweep --------------------------------------------------------------------------------
def _row(lib, build, search, build_s, nbytes, fn, truth, n_q):
    start = time.perf_counter()
    found = fn()
    us = (time.perf_counter() - start) / n_q * 1e6
    return dict(lib=lib, build=build, search=search, build_s=build_s, nbytes=nbytes, us=us,
                recall=recall(found, truth), fn=fn)


@pytest.fixture(scope="module")
def sae():
    items, queries = sae_corpus()
    truth = lk.SparseIndex(items, approximate=False, threads=1).search(queries, k=K, threads=1)[0]
    return dict(items=items, queries=queries, truth=truth, rows=[])


@pytest.fixture(scope="module")
def swept(sae):
    items, queries, truth, rows = sae["items"], sae["queries"], sae["truth"], sae["rows"]
    n_q = queries.shape[0]
    for n_postings, fraction, energy in BUILD:
        build = dict(n_postings=n_postings, block_fraction=fraction, summary_energy=energy)
        start = time.perf_counter()
        ours = lk.SparseIndex(items, threads=1, **build)
        ours_s = time.perf_counter() - start
        theirs, theirs_s, theirs_bytes = build_seismic(
            items, dict(n_postings=n_postings, centroid_fraction=fraction, summary_energy=energy))
        for cut, hf in SEARCH:
            search = dict(query_cut=cut, heap_factor=hf)
            rows.append(_row("likeable", build, search, ours_s, ours.nbytes,
                             lambda i=ours, s=search: ours_search(i, queries, s), truth, n_q))
            rows.append(_row("seismic", build, search, theirs_s, theirs_bytes,
                             seismic_search_fn(theirs, queries, cut, hf), truth, n_q))
    return sae


def ours_search(index, queries, search):
    return index.search(queries, k=K, threads=1, **search)[0]


def _table(sae):
    lines = [f"[SAE approximate sweep] {sae['items'].shape} nnz {sae['items'].nnz}, {sae['queries'].shape[0]} queries, "
             f"k={K}, 1 thread, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"{'library':9s} {'build':44s} {'search':34s} {'build s':>8s} {'MiB':>8s} {'us/query':>9s} {'recall':>7s}"]
    for r in sae["rows"]:
        lines.append(f"{r['lib']:9s} {str(r['build']):44s} {str(r['search']):34s} {r['build_s']:8.1f} "
                     f"{r['nbytes'] / 2**20:8.1f} {r['us']:9.1f} {r['recall']:7.4f}")
    return lines


def _best(rows, lib, target, max_bytes=None):
    ok = [r for r in rows if r["lib"] == lib and r["recall"] >= target
          and (max_bytes is None or r["nbytes"] <= max_bytes)]
    return min(ok, key=lambda r: r["us"]) if ok else None


def _smallest(rows, lib, target):
    # The fastest setting on the library's smallest index reaching the target.
    ok = [r for r in rows if r["lib"] == lib and r["recall"] >= target]
    if not ok:
        return None
    least = min(r["nbytes"] for r in ok)
    return min((r for r in ok if r["nbytes"] == least), key=lambda r: r["us"])


@pytest.mark.parametrize("peer", ["fastest", "smallest"])
@pytest.mark.parametrize("target", TARGETS)
def test_sae_against_seismic(swept, target, peer):
    # The target: ours at no more memory than Seismic's fastest setting at that recall
    # (our fastest at any memory is timed beside it when it is another build), and again at no
    # more memory than Seismic's smallest index reaching that recall.
    rows = swept["rows"]
    theirs = _best(rows, "seismic", target)
    if peer == "smallest":
        smallest = _smallest(rows, "seismic", target)
        if smallest is theirs:
            if target == TARGETS[-1]:
                INTERLEAVED.extend(_table(swept))
            pytest.skip("Seismic's fastest setting at this recall is on its smallest index: see 'fastest'")
        theirs = smallest
    ours = theirs and _best(rows, "likeable", target, max_bytes=theirs["nbytes"])
    if ours is None:
        INTERLEAVED.extend(_table(swept))
        pytest.skip(f"no setting of {'seismic' if theirs is None else 'likeable'} reached recall {target}")
    contenders = {"likeable": ours["fn"], "seismic": theirs["fn"]}
    anywhere = _best(rows, "likeable", target) if peer == "fastest" else ours
    if anywhere is not ours:
        contenders["likeable, any memory"] = anywhere["fn"]
    times = interleaved(contenders)
    describe = lambda r: f"{r['build']['n_postings']} {r['search']} (recall {r['recall']:.4f}, {r['nbytes'] / 2**20:.1f} MiB)"
    report_interleaved(f"SAE {swept['items'].shape[0]:,} rows, recall >= {target}, Seismic's {peer}: likeable {describe(ours)} vs seismic {describe(theirs)}"
                       + (f"; likeable, any memory: {describe(anywhere)}" if anywhere is not ours else ""),
                       times, "likeable", ["seismic"])
    if target == TARGETS[-1] and peer == "smallest":
        INTERLEAVED.extend(_table(swept))


def _described(row) -> str:
    """Our contender in a peer's head-to-head: build, search settings, recall and size."""
    return (f"{row['build']['n_postings']} {row['search']} (recall {row['recall']:.4f}, "
            f"{row['nbytes'] / 2**20:.1f} MiB)")


def test_sae_against_bmp(swept, tmp_path):
    pytest.importorskip("bmp")
    items, queries, truth = swept["items"], swept["queries"], swept["truth"]
    searcher, build_s, nbytes = build_bmp(items, tmp_path / "bmp.idx")
    rows = [_row("bmp", dict(bsize=32, query_levels=QUERY_LEVELS), dict(alpha=a, beta=b), build_s, nbytes,
                 bmp_search_fn(searcher, queries, a, b), truth, queries.shape[0]) for a, b in BMP_SEARCH]
    swept["rows"].extend(rows)
    best = max(rows, key=lambda r: r["recall"])
    target = max([t for t in TARGETS if best["recall"] >= t], default=None)
    INTERLEAVED.append(f"[bmp] best recall {best['recall']:.4f} at {best['search']} ({best['us']:.0f} us/query, "
                       f"{nbytes / 2**20:.1f} MiB, build {build_s:.0f} s)")
    if target is None:
        pytest.skip(f"BMP's recall is capped at {best['recall']:.4f} by its integer weights")
    peer = _best(rows, "bmp", target)
    ours = _best(swept["rows"], "likeable", target)
    times = interleaved({"likeable": ours["fn"], "bmp": peer["fn"]}, rounds=3)
    report_interleaved(f"SAE {swept['items'].shape[0]:,} rows, recall >= {target}: likeable {_described(ours)} vs bmp {peer['search']} "
                       f"(recall {peer['recall']:.4f})", times, "likeable", ["bmp"])


@pytest.mark.skipif(os.environ.get("LIKEABLE_BENCH_KANNOLO") != "1",
                    reason="kannolo's graph build takes over 8 minutes on 2 cores: set LIKEABLE_BENCH_KANNOLO=1")
def test_sae_against_kannolo(swept):
    pytest.importorskip("kannolo")
    items, queries, truth = swept["items"], swept["queries"], swept["truth"]
    index, build_s, nbytes = build_kannolo(items)
    rows = [_row("kannolo", dict(m=32, ef_construction=200), dict(ef_search=ef), build_s, nbytes,
                 kannolo_search_fn(index, queries, ef), truth, queries.shape[0]) for ef in KANNOLO_SEARCH]
    swept["rows"].extend(rows)
    for target in TARGETS:
        peer, ours = _best(rows, "kannolo", target), _best(swept["rows"], "likeable", target)
        if peer is None or ours is None:
            INTERLEAVED.append(f"[kannolo] no setting reached recall {target}")
            continue
        times = interleaved({"likeable": ours["fn"], "kannolo": peer["fn"]}, rounds=3)
        report_interleaved(f"SAE {swept['items'].shape[0]:,} rows, recall >= {target}: likeable {_described(ours)} vs kannolo {peer['search']} "
                           f"(recall {peer['recall']:.4f}, {nbytes / 2**20:.1f} MiB)", times, "likeable", ["kannolo"])

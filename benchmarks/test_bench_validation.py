"""What checking codes at the binding boundary costs next to the kernels (issue 15), same run.

Codes reach the core only as a checked snapshot. Codes from ``SparseEncoder.encode`` or a
validated ``SparseCodes`` already are one (O(1) per call: nothing to check); anything else
(scipy matrices, ``validate=False`` codes, arrays changed or replaced after construction) is
copied and checked in one pass, linear in nnz. Per group, on the benchmark shapes:

- the kernel on snapshot codes (the peer: "kernel");
- the copy-and-check alone (``_core.snapshot_codes`` on plain numpy arrays);
- the kernel on ``validate=False`` codes (check + kernel, what a caller of that path pays).

The speed-up column of the check is kernel time / check time: 100x means the check is 1% of the
kernel. Shapes: score 10k users x 1k items and predict_proba on 1M rows (K=32 of M=4096, as in
test_bench_preferences.py); exact and approximate search of 1,000 queries over the synthetic
corpus of test_bench_index.py (``LIKEABLE_BENCH_INDEX_ROWS`` rows, default 50,000), one thread,
and building the index from the corpus.

Run: ``PYTHONPATH=python python -m pytest benchmarks/test_bench_validation.py``
"""
from __future__ import annotations

import numpy as np
import pytest

import likeable as lk
from likeable import _core

from test_bench_index import N_ROWS, synthetic_corpus
from test_bench_preferences import N_ITEMS, N_USERS, fitted, pairs, random_codes  # noqa: F401 (fixtures)

ROUNDS = 5


def plain(codes):
    """The arrays as a caller's own numpy arrays (not a core snapshot): checked on every call."""
    return np.array(codes.indptr), np.array(codes.indices), np.array(codes.values), codes.shape


def unchecked(codes):
    return lk.SparseCodes(*plain(codes)[:3], codes.shape, validate=False)


def check(codes):
    arrays = plain(codes)
    return lambda: _core.snapshot_codes(*arrays)


def run(benchmark, role, kernel, codes, call):
    """Times ``role``: the kernel (peer), the check alone, or the kernel on unchecked codes."""
    benchmark.extra_info["nnz"] = codes.nnz
    if role == "kernel":
        benchmark.extra_info["peer"] = "kernel on checked codes"
        return benchmark.pedantic(call, args=(codes,), rounds=ROUNDS, iterations=1)
    if role == "check":
        return benchmark.pedantic(check(codes), rounds=ROUNDS * 4, iterations=1)
    return benchmark.pedantic(call, args=(unchecked(codes),), rounds=ROUNDS, iterations=1)


ROLES = ["kernel", "check", "kernel on unchecked codes"]


@pytest.mark.parametrize("role", ROLES)
def test_score(benchmark, fitted, role):  # noqa: F811
    benchmark.group = "validation: score 10k users x 1k items"
    items = random_codes(np.random.default_rng(1), N_ITEMS)
    ids = np.arange(N_USERS)
    out = run(benchmark, role, "score", items, lambda c: fitted.score(ids, c))
    assert role == "check" or out.shape == (N_USERS, N_ITEMS)


@pytest.fixture(scope="module")
def million_rows():
    rng = np.random.default_rng(2)
    return random_codes(rng, 1_000_000), rng.integers(0, N_USERS, 1_000_000)


@pytest.mark.parametrize("role", ROLES)
def test_predict_proba(benchmark, fitted, million_rows, role):  # noqa: F811
    benchmark.group = "validation: predict_proba 1M rows"
    codes, ids = million_rows
    run(benchmark, role, "predict_proba", codes, lambda c: fitted.predict_proba(c, ids))


@pytest.fixture(scope="module")
def corpus():
    codes, queries = synthetic_corpus(N_ROWS)
    exact = lk.SparseIndex(codes, approximate=False, threads=1)
    approximate = lk.SparseIndex(codes, n_postings=150, block_fraction=0.1, summary_energy=0.4, threads=1)
    return codes, queries, exact, approximate


@pytest.mark.parametrize("kind", ["exact", "approximate"])
@pytest.mark.parametrize("role", ROLES)
def test_search(benchmark, corpus, kind, role):
    codes, queries, exact, approximate = corpus
    benchmark.group = f"validation: {kind} search, 1,000 queries over {N_ROWS:,} rows"
    index = exact if kind == "exact" else approximate
    params = {} if kind == "exact" else dict(query_cut=10, heap_factor=0.9)
    run(benchmark, role, "search", queries, lambda q: index.search(q, k=10, threads=1, **params))


@pytest.mark.parametrize("role", ROLES)
def test_build(benchmark, corpus, role):
    codes = corpus[0]
    benchmark.group = f"validation: exact index build over {N_ROWS:,} rows"
    run(benchmark, role, "build", codes, lambda c: lk.SparseIndex(c, approximate=False, threads=1))

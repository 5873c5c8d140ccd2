"""Bounded threads, the memory guard's own holes, NaN user ids, overflow (issue 15, items 3, 5, 7)."""
import os
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk
from likeable import _core
from likeable.index import brute_force_search


def small_codes(rng, n=80, m=12):
    return lk.SparseCodes.from_scipy(sp.random(n, m, density=0.3, format="csr", random_state=rng))


# --- threads -----------------------------------------------------------------------------------
def test_the_thread_cap_is_a_documented_multiple_of_the_cores():
    assert _core.MAX_THREADS_PER_CORE == 4
    assert lk.max_threads() == 4 * os.cpu_count()
    assert lk.num_threads(lk.max_threads()) == lk.max_threads()


@pytest.mark.parametrize("threads", [10_000, 2**31 - 1])
def test_thread_counts_above_the_cap_are_refused_everywhere(rng, threads):
    codes = small_codes(rng)
    labels = rng.integers(0, 2, len(codes))
    index = lk.SparseIndex(codes)
    calls = [
        lambda: lk.SparseIndex(codes, threads=threads),
        lambda: index.search(codes[:2], threads=threads),
        lambda: index.set_params(threads=threads),
        lambda: brute_force_search(codes, codes[:2], threads=threads),
        lambda: lk.PreferenceModel(threads=threads),
        lambda: lk.UserPreferences(threads=threads),
        lambda: lk.SparseEncoder(n_features=8, k=2, threads=threads),
        lambda: lk.PreferenceModel().set_params(threads=threads),
        lambda: lk.num_threads(threads),
        lambda: lk.SparseIndex.from_bytes(index.to_bytes(), threads=threads),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="threads"):
            call()
    assert lk.PreferenceModel().fit(codes, labels).n_iter_ >= 1  # nothing was left changed


def test_the_environment_is_capped_not_obeyed(monkeypatch):
    monkeypatch.setenv("LIKEABLE_NUM_THREADS", "100000")
    assert lk.num_threads() == lk.max_threads()
    monkeypatch.setenv("LIKEABLE_NUM_THREADS", "99999999999999999999")  # beyond long: no overflow
    assert lk.num_threads() == lk.max_threads()
    monkeypatch.setenv("LIKEABLE_NUM_THREADS", "2")
    assert lk.num_threads() == 2


def test_many_threads_under_an_address_space_limit_no_longer_end_the_process(isolated):
    # Before: threads=10000 made libgomp print an error and exit(1) with no Python exception.
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer reserves terabytes of address space: no RLIMIT_AS under it")
    output = isolated.survives("""
        import resource
        import numpy as np, scipy.sparse as sp, likeable as lk
        codes = lk.SparseCodes.from_scipy(sp.random(40000, 64, density=0.05, format="csr", random_state=0))
        index = lk.SparseIndex(codes, approximate=False)
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        for threads in (10000, 2**31 - 1):
            try:
                index.search(codes, k=3, threads=threads)
                print("RETURNED")
            except ValueError as exc:
                print("REFUSED", exc)
        print("SURVIVED")
    """)
    assert output.count("REFUSED") == 2


def test_pickled_index_with_absurd_threads_is_refused(rng):
    index = lk.SparseIndex(small_codes(rng), threads=2)
    state = index.__getstate__()
    state["threads"] = 100_000
    clone = lk.SparseIndex.__new__(lk.SparseIndex)
    with pytest.raises(lk.FormatError, match="threads"):
        clone.__setstate__(state)
    state["threads"] = 2
    clone.__setstate__(state)
    assert clone.threads == 2


def test_pickled_estimator_params_are_checked(rng):
    model = lk.PreferenceModel()
    state = model.__getstate__()
    state["params"]["threads"] = 100_000
    with pytest.raises(lk.FormatError, match="threads"):
        lk.PreferenceModel.__new__(lk.PreferenceModel).__setstate__(state)


# --- the memory guard ------------------------------------------------------------------------
def test_an_invalid_limit_leaves_the_one_in_force(rng):
    codes = small_codes(rng)
    index = lk.SparseIndex(codes)
    for bad in (-1, 0, "0", "-5G", "inf", "1e400", "nan", float("inf"), float("nan")):
        with pytest.raises(ValueError):
            lk.set_max_memory(bad)
        index.search(codes[:1], k=1)  # before: -1 stayed in force and every call raised MemoryError
    with pytest.raises(TypeError):
        lk.set_max_memory(True)
    lk.set_max_memory("1K")
    try:
        with pytest.raises(ValueError):
            lk.set_max_memory("lots")
        with pytest.raises(MemoryError):  # the 1K limit is still in force
            index.search(codes, k=10)
    finally:
        lk.set_max_memory(None)


@pytest.mark.parametrize("bad", [0, -3, "0", "inf", "1e400", float("nan")])
def test_the_context_manager_checks_its_limit(rng, bad):
    with pytest.raises(ValueError):
        with lk.max_memory(bad):
            pass
    index = lk.SparseIndex(small_codes(rng))
    assert index.search(small_codes(rng)[:1], k=1)[0].shape == (1, 1)


def test_an_unreadable_environment_limit_is_a_value_error(monkeypatch, rng):
    monkeypatch.setenv("LIKEABLE_MAX_MEMORY", "inf")
    index = lk.SparseIndex(small_codes(rng))
    with pytest.raises(ValueError, match="LIKEABLE_MAX_MEMORY"):
        index.search(small_codes(rng)[:1], k=1)
    monkeypatch.setenv("LIKEABLE_MAX_MEMORY", "1e400")
    with pytest.raises(ValueError, match="LIKEABLE_MAX_MEMORY"):
        index.search(small_codes(rng)[:1], k=1)


def test_search_scratch_is_counted_by_the_guard(rng):
    # An exact index keeps a float per row per searching thread: 200k rows are 800 KB a thread,
    # while the results of one query with k=1 are 12 bytes.
    rows = sp.random(200_000, 8, density=0.2, format="csr", random_state=1)
    index = lk.SparseIndex(lk.SparseCodes.from_scipy(rows), approximate=False)
    query = lk.SparseCodes.from_scipy(sp.csr_matrix(np.ones((1, 8))))
    with lk.max_memory("400K"):
        with pytest.raises(MemoryError, match="scratch"):
            index.search(query, k=1, threads=1)
    with lk.max_memory("4M"):
        assert index.search(query, k=1, threads=1)[0].shape == (1, 1)


# --- overflow: refused, never inf or NaN -------------------------------------------------------
@pytest.mark.parametrize("kind", ["topk", "batchtopk"])
def test_encode_refuses_to_overflow_float32(rng, kind):
    # Finite weights whose folded bias b_enc - b_dec . W_enc is beyond float32: before, encode
    # returned inf codes (that decode and SparseIndex then refused).
    d, m = 4, 6
    extra = {"threshold": np.zeros(m)} if kind == "batchtopk" else {}
    enc = lk.SparseEncoder.from_weights(np.ones((d, m)), np.full(m, 3e38), np.ones((m, d)), np.full(d, -3e38),
                                        k=2, kind=kind, signed=True, **extra)
    with pytest.raises(ValueError, match="overflow"):
        enc.encode(np.ones((3, d), np.float32))
    fine = lk.SparseEncoder.from_weights(np.ones((d, m)), np.zeros(m), np.ones((m, d)), np.zeros(d), k=2)
    codes = fine.encode(np.ones((3, d), np.float32))
    assert np.isfinite(codes.values).all()


@pytest.mark.parametrize("dense", [False, True])
def test_scores_beyond_float32_are_refused_by_every_search_path(rng, dense):
    big = np.array([[3e38, 3e38, 0.0], [1.0, -1.0, 2.0]], np.float32)
    codes = lk.SparseCodes.from_dense(big)
    query = np.array([[1.0, 1.0, 1.0]], np.float32)
    query = query if dense else lk.SparseCodes.from_dense(query)
    for search in (lk.SparseIndex(codes, approximate=False).search, lk.SparseIndex(codes).search,
                   lambda q, k: brute_force_search(codes, q, k=k)):
        with pytest.raises(ValueError, match="float32"):
            search(query, k=2)  # before: the exact index gave NaN scores, the others did not
    fine = lk.SparseCodes.from_dense(np.array([[1.0, 2.0, 0.0], [1.0, -1.0, 2.0]], np.float32))
    for index in (lk.SparseIndex(fine, approximate=False), lk.SparseIndex(fine)):
        ids, scores = index.search(query, k=2)
        assert np.isfinite(scores).all() and ids.tolist() == [[0, 1]]


# --- user ids ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [lambda n: [float("nan")] * n, lambda n: np.full(n, np.nan),
                                 lambda n: [0] * (n - 1) + [np.float64("nan")]])
def test_nan_user_ids_are_refused_consistently(rng, ids):
    codes = small_codes(rng, n=20)
    labels = rng.integers(0, 2, 20)
    with pytest.raises(ValueError, match="NaN"):
        lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, ids(20))
    model = lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, rng.integers(0, 3, 20))
    with pytest.raises(ValueError, match="NaN"):
        model.update(codes[:4], labels[:4], ids(4))
    with pytest.raises(ValueError, match="NaN"):
        model.weights(ids(2))
    with pytest.raises(ValueError, match="NaN"):
        lk.drift_weights(codes, labels, ids(20))
    assert model.n_users_ == 3


# --- torn reads ----------------------------------------------------------------------------------
def test_readers_never_see_half_a_refit(rng):
    """Before: fit replaced the population before the long solve while readers took it outside
    the snapshot; 96,022 of 102,402 concurrent weights() calls matched neither fit."""
    codes_a, codes_b = small_codes(rng, 300, 10), small_codes(rng, 300, 10)
    labels_a, labels_b = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    users = rng.integers(0, 6, 300)
    fits = [(codes_a, labels_a), (codes_b, labels_b)]
    model = lk.UserPreferences(shrinkage="auto").fit(*fits[0], users)
    ids = list(range(6))
    expected = [lk.UserPreferences(shrinkage="auto").fit(c, y, users).weights(ids) for c, y in fits]
    stop = threading.Event()
    bad = []

    def read():
        while not stop.is_set():
            w = model.weights(ids)
            if not any(np.array_equal(w, e) for e in expected):
                bad.append(w)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(6):
            model.fit(*fits[(i + 1) % 2], users)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not bad, f"{len(bad)} reads matched neither fit"

"""The GPU path against the CPU path and float64 numpy references.

Tests marked ``gpu`` skip with the reason where no GPU is usable; the rest check the module's
build and the errors a machine without a GPU gives.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import likeable as lk
from likeable import gpu

needs_gpu = pytest.mark.skipif(not gpu.available(), reason=f"GPU path unavailable: {gpu.unavailable_reason()}")


# --- without a GPU ----------------------------------------------------------------------------
def test_cuda_module_builds_where_a_toolkit_is():
    """CI has nvcc but no GPU: the CUDA module must still have been built and import."""
    from likeable import _core

    options = _core.build_options
    if options["cuda"] == "OFF":
        pytest.skip("built with LIKEABLE_ENABLE_CUDA=OFF")
    if shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit (nvcc) on this machine")
    assert options["cuda_built"], "nvcc is on PATH but the build skipped the CUDA module"
    from likeable import _cuda

    assert _cuda.max_k >= 1024
    count, reason = _cuda.device_count()
    assert count >= 0 and isinstance(reason, str)


def test_device_argument_is_checked(rng):
    enc = lk.SparseEncoder.from_weights(rng.standard_normal((8, 32)), np.zeros(32), rng.standard_normal((32, 8)),
                                        np.zeros(8), k=4)
    X = rng.standard_normal((5, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="device must be"):
        enc.encode(X, device="tpu")
    assert enc.encode(X, device="cpu") == enc.encode(X)
    if not gpu.available():
        with pytest.raises(RuntimeError, match="GPU path is unavailable"):
            enc.encode(X, device="cuda")
        assert not gpu.wants_gpu(None, X)


# --- on a GPU ---------------------------------------------------------------------------------
@pytest.fixture
def cp():
    if not gpu.available():
        pytest.skip(f"GPU path unavailable: {gpu.unavailable_reason()}")
    import cupy

    return cupy


def _encoder(rng, d, M, k, signed=False, kind="topk"):
    W_enc = rng.standard_normal((d, M)).astype(np.float32) / np.sqrt(d)
    b_enc = 0.1 * rng.standard_normal(M).astype(np.float32)
    W_dec = rng.standard_normal((M, d)).astype(np.float32)
    b_dec = 0.1 * rng.standard_normal(d).astype(np.float32)
    threshold = np.abs(rng.standard_normal(M)).astype(np.float32) * 0.5 if kind == "batchtopk" else None
    return lk.SparseEncoder.from_weights(W_enc, b_enc, W_dec, b_dec, k=k, signed=signed, kind=kind,
                                         threshold=threshold)


def _reference_topk(enc, X, k, signed):
    """float64 pre-activations; the top k keys > 0, ties to the smaller id."""
    a = (X.astype(np.float64) - enc.b_dec) @ enc.W_enc.astype(np.float64) + enc.b_enc
    key = np.abs(a) if signed else a
    out = []
    for r in range(X.shape[0]):
        order = np.lexsort((np.arange(a.shape[1]), -key[r]))[:k]
        kept = np.sort(order[key[r, order] > 0])
        out.append((kept, a[r, kept], key[r]))
    return out


def _assert_codes_match(codes: lk.SparseCodes, ref, k, rtol=1e-4):
    """Same ids as the reference except where the k-th and (k+1)-th keys nearly tie."""
    for r, (ids, vals, key) in enumerate(ref):
        got = codes.indices[codes.indptr[r]:codes.indptr[r + 1]]
        got_vals = codes.values[codes.indptr[r]:codes.indptr[r + 1]]
        if np.array_equal(got, ids):
            np.testing.assert_allclose(got_vals, vals, rtol=rtol, atol=rtol)
            continue
        sorted_keys = np.sort(key)[::-1]
        boundary = sorted_keys[k - 1] if k <= key.size else 0.0
        differing = np.setxor1d(got, ids)
        assert np.all(np.abs(key[differing] - boundary) <= rtol * max(1.0, abs(boundary))), (r, got, ids)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n, d, M, k", [(0, 8, 16, 4), (1, 8, 16, 4), (37, 24, 33, 33), (300, 64, 1000, 32),
                                        (129, 16, 4096, 64), (50, 32, 700, 300), (65, 8, 5000, 1)])
def test_encode_matches_reference(cp, rng, n, d, M, k, signed):
    enc = _encoder(rng, d, M, k, signed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    codes = enc.encode(cp.asarray(X))
    assert isinstance(codes, gpu.DeviceSparseCodes) and codes.shape == (n, M)
    host = codes.get()
    lk.SparseCodes(host.indptr, host.indices, host.values, host.shape)  # valid CSR, ids increasing
    _assert_codes_match(host, _reference_topk(enc, X, k, signed), k)
    # Small tiles (many launches, a ragged last tile) give the same codes (cuBLAS may pick
    # another algorithm for another tile shape, so up to rounding).
    again = gpu.encode(enc, cp.asarray(X), k=k, use_threshold=False, tile_rows=7).get()
    _assert_codes_match(again, _reference_topk(enc, X, k, signed), k)


@needs_gpu
@pytest.mark.gpu
def test_encode_host_input_and_cpu_agree(cp, rng):
    enc = _encoder(rng, 48, 512, 16, signed=True)
    X = rng.standard_normal((1000, 48)).astype(np.float32)
    on_gpu = enc.encode(X, device="cuda")
    assert isinstance(on_gpu, lk.SparseCodes)
    _assert_codes_match(on_gpu, _reference_topk(enc, X, 16, True), 16)
    cpu = enc.encode(X)
    np.testing.assert_allclose(enc.decode(on_gpu), enc.decode(cpu), rtol=1e-3, atol=1e-3)


@needs_gpu
@pytest.mark.gpu
def test_encode_ties_and_few_positive_keys(cp, rng):
    """Equal keys go to the smaller ids (also when the ties overflow the candidate buffer);
    rows with fewer than k positive keys keep fewer."""
    d, M = 4, 300
    zeros_in = cp.zeros((3, d), cp.float32)

    def encoder(b_enc, k):
        return lk.SparseEncoder.from_weights(np.zeros((d, M)), b_enc, np.zeros((M, d)), np.zeros(d), k=k)

    twos = np.arange(0, M, 7)  # 43 keys of 2, the rest 1
    b_enc = np.ones(M, np.float32)
    b_enc[twos] = 2.0
    ones = np.setdiff1d(np.arange(M), twos)
    for k, expected in [(20, twos[:20]), (50, np.sort(np.concatenate([twos, ones[:7]])))]:
        codes = encoder(b_enc, k).encode(zeros_in).get()
        for r in range(3):
            np.testing.assert_array_equal(codes.indices[codes.indptr[r]:codes.indptr[r + 1]], expected)
    flat = encoder(np.ones(M, np.float32), 20).encode(zeros_in).get()  # 300 equal keys: bisection path
    np.testing.assert_array_equal(flat.indices, np.tile(np.arange(20), 3))
    b_enc = -np.ones(M, np.float32)
    b_enc[[5, 9]] = 1.0
    few = encoder(b_enc, 20).encode(zeros_in[:2]).get()
    np.testing.assert_array_equal(few.indptr, [0, 2, 4])
    np.testing.assert_array_equal(few.indices, [5, 9, 5, 9])


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("signed", [False, True])
def test_encode_threshold_mode(cp, rng, signed):
    enc = _encoder(rng, 32, 777, 8, signed, kind="batchtopk")
    X = rng.standard_normal((257, 32)).astype(np.float32)
    got = enc.encode(cp.asarray(X)).get()
    want = enc.encode(X)
    a = (X.astype(np.float64) - enc.b_dec) @ enc.W_enc.astype(np.float64) + enc.b_enc
    key = np.abs(a) if signed else a
    margin = np.abs(key - np.maximum(enc.threshold, 0))
    dense_got, dense_want = got.to_dense() != 0, want.to_dense() != 0
    assert np.all((dense_got == dense_want) | (margin < 1e-4))


@needs_gpu
@pytest.mark.gpu
def test_encode_half_precision_inputs(cp, rng):
    enc = _encoder(rng, 64, 2048, 32)
    X = rng.standard_normal((200, 64)).astype(np.float32)
    X16 = X.astype(np.float16)
    got = enc.encode(cp.asarray(X16)).get()
    # Reference on the rounded inputs and weights, float64 accumulation.
    rounded = lk.SparseEncoder.from_weights(enc.W_enc.astype(np.float16).astype(np.float32), enc.b_enc,
                                            enc.W_dec, enc.b_dec, k=32)
    _assert_codes_match(got, _reference_topk(rounded, X16.astype(np.float32), 32, False), 32, rtol=2e-3)
    torch = pytest.importorskip("torch")
    bf = torch.as_tensor(X, device="cuda").to(torch.bfloat16)
    got_bf = enc.encode(bf)  # DLPack, read in place
    assert isinstance(got_bf, gpu.DeviceSparseCodes)
    bf_host = got_bf.get()
    overlap = np.mean([len(np.intersect1d(bf_host.indices[bf_host.indptr[r]:bf_host.indptr[r + 1]],
                                          got.indices[got.indptr[r]:got.indptr[r + 1]])) / 32 for r in range(50)])
    assert overlap > 0.85


@needs_gpu
@pytest.mark.gpu
def test_encode_rejects_nan_and_bad_shapes(cp, rng):
    enc = _encoder(rng, 8, 64, 4)
    X = cp.asarray(rng.standard_normal((10, 8)).astype(np.float32))
    X[6, 3] = cp.nan
    with pytest.raises(ValueError, match="row 6"):
        enc.encode(X)
    with pytest.raises(ValueError, match="columns"):
        enc.encode(cp.zeros((3, 9), cp.float32))
    with pytest.raises(ValueError, match="exceeds"):
        enc.encode(cp.zeros((3, 8), cp.float32), k=65)


@needs_gpu
@pytest.mark.gpu
def test_decode_matches_cpu(cp, rng):
    enc = _encoder(rng, 40, 300, 12)
    X = rng.standard_normal((77, 40)).astype(np.float32)
    codes = enc.encode(X)
    got = enc.decode(gpu.DeviceSparseCodes.from_host(codes))
    np.testing.assert_allclose(got.get(), enc.decode(codes), rtol=1e-5, atol=1e-5)
    assert enc.decode(gpu.DeviceSparseCodes.from_host(codes[:0])).shape == (0, 40)
    bad = gpu.DeviceSparseCodes.from_host(codes)
    bad.indices[0] = 300
    with pytest.raises(ValueError, match="out of range"):
        enc.decode(gpu.DeviceSparseCodes(bad.indptr, bad.indices, bad.values, bad.shape))


def _random_codes(rng, n, M, per_row):
    rows = np.repeat(np.arange(n), per_row)
    cols = np.concatenate([rng.choice(M, per_row, replace=False) for _ in range(n)]) if n else np.zeros(0, int)
    import scipy.sparse as sp

    return lk.SparseCodes.from_scipy(sp.csr_matrix((rng.standard_normal(rows.size), (rows, cols)), shape=(n, M)))


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("n_users, n_items", [(1, 1), (5, 0), (130, 33), (300, 1000)])
def test_score_and_predict_match_reference(cp, rng, n_users, n_items):
    M = 96
    train = _random_codes(rng, 600, M, 5)
    users = rng.integers(0, 12, 600).astype(str)
    y = (rng.random(600) < 0.5).astype(float)
    prefs = lk.UserPreferences(shrinkage=3.0).fit(train, y, users)
    items = _random_codes(rng, n_items, M, 7)
    who = rng.choice(np.append(np.unique(users), "stranger"), n_users)
    got = prefs.score(who, gpu.DeviceSparseCodes.from_host(items))
    W = prefs.weights(who).astype(np.float64)
    want = W @ items.to_scipy().toarray().T.astype(np.float64) if n_items else np.zeros((n_users, 0))
    np.testing.assert_allclose(got.get(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prefs.score(who, items, device="cuda"), prefs.score(who, items), rtol=1e-4, atol=1e-4)
    pairs = _random_codes(rng, 250, M, 4)
    pair_users = rng.choice(np.unique(users), 250)
    np.testing.assert_allclose(prefs.predict_proba(pairs, pair_users, device="cuda"),
                               prefs.predict_proba(pairs, pair_users), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prefs.decision_function(pairs, pair_users, device="cuda"),
                               prefs.decision_function(pairs, pair_users), rtol=1e-4, atol=1e-5)
    pop = prefs.population_ if hasattr(prefs, "population_") else lk.PreferenceModel().fit(train, y)
    on_gpu = pop.predict_proba(gpu.DeviceSparseCodes.from_host(pairs))
    assert on_gpu.shape == (250, 2)
    np.testing.assert_allclose(on_gpu.get(), pop.predict_proba(pairs), rtol=1e-5, atol=1e-6)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("n_rows, k", [(0, 3), (1, 5), (40, 10), (5000, 10), (3000, 100)])
def test_exact_search_matches_numpy(cp, rng, n_rows, k):
    M = 200
    codes = _random_codes(rng, n_rows, M, 9)
    codes = lk.SparseCodes(codes.indptr, codes.indices, np.round(codes.values * 4) / 4, codes.shape)  # ties
    index = lk.SparseIndex(codes, approximate=False)
    queries = rng.standard_normal((17, M)).astype(np.float32)
    ids, scores = index.search(cp.asarray(queries), k=k)
    assert ids.dtype == cp.int64 and scores.dtype == cp.float32 and ids.shape == (17, k)
    want_ids, want_scores = index.search(queries, k=k)
    np.testing.assert_allclose(scores.get(), want_scores, rtol=1e-5, atol=1e-5)
    full = codes.to_scipy().toarray().astype(np.float64) @ queries.T.astype(np.float64)
    for q in range(17):
        got = ids.get()[q]
        valid = got >= 0
        assert valid.sum() == min(k, n_rows)
        # Exact up to float rounding: every returned row's true score reaches the k-th best.
        if n_rows:
            kth = np.sort(full[:, q])[::-1][min(k, n_rows) - 1]
            assert np.all(full[got[valid], q] >= kth - 1e-4)
    sparse_queries = _random_codes(rng, 6, M, 5)
    ids_sparse, scores_sparse = index.search(sparse_queries, k=min(k, 4), device="cuda")
    assert isinstance(ids_sparse, np.ndarray)  # host queries: host results
    np.testing.assert_allclose(scores_sparse, index.search(sparse_queries, k=min(k, 4))[1], rtol=1e-5, atol=1e-6)
    approx = lk.SparseIndex(codes, approximate=True) if n_rows else None
    if approx is not None:
        with pytest.raises(ValueError, match="exact"):
            approx.search(cp.asarray(queries), k=k)


@needs_gpu
@pytest.mark.gpu
def test_work_runs_on_the_callers_stream(cp, rng):
    enc = _encoder(rng, 16, 256, 8)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        X_dev = cp.asarray(X)
        codes = enc.encode(X_dev)
        out = enc.decode(codes)
    stream.synchronize()
    assert codes.get() == enc.encode(X_dev).get()
    assert out.shape == (500, 16)

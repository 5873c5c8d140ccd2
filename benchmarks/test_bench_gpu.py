"""GPU suite: likeable's CUDA path against PyTorch on the same GPU, same data, same run.

encode (d=384 M=16384 K=32 N=65536, and d=1536 M=32 K=4 N=1M; bf16 and fp32):
  likeable (cuBLAS tile product + our top-k selection) vs PyTorch ``topk(relu(x @ W + b))``
  eager and ``torch.compile``d, and the bare GEMM of the same shape (the ceiling).
score (100k users x 10k candidates, M=4096, 32 active features per candidate):
  likeable's sparse x dense kernel vs a dense PyTorch matmul of the same product (TF32 off, as
  PyTorch's default) and ``torch.sparse`` CSR @ dense.
exact search (200k rows, 1,000 dense queries, k=10): likeable vs torch.sparse scores + topk.
ceilings: device-to-device copy bandwidth and the bf16 GEMM rate, measured in the same run.

Every timing synchronises the device; extra_info records achieved TFLOP/s or GB/s.
Run on a GPU machine: ``python -m pytest benchmarks/test_bench_gpu.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

import likeable as lk
from likeable import gpu

if not gpu.available():
    pytest.skip(f"GPU path unavailable: {gpu.unavailable_reason()}", allow_module_level=True)
torch = pytest.importorskip("torch")
import cupy as cp  # noqa: E402

ROUNDS = dict(rounds=5, iterations=1, warmup_rounds=2)
ENCODE_SHAPES = {"d384-M16384-k32-N65536": (384, 16384, 32, 65536),
                 "d1536-M32-k4-N1M": (1536, 32, 4, 1 << 20)}
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
_cache: dict = {}


def synced(fn):
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out
    return run


def encode_setup(shape, dtype):
    key = (shape, dtype)
    if key not in _cache:
        _cache.clear()
        torch.cuda.empty_cache()
        cp.get_default_memory_pool().free_all_blocks()
        d, M, k, N = ENCODE_SHAPES[shape]
        g = torch.Generator(device="cuda").manual_seed(0)
        X = torch.randn(N, d, device="cuda", generator=g).to(DTYPES[dtype])
        W = (torch.randn(d, M, device="cuda", generator=g) / d ** 0.5)
        b = 0.1 * torch.randn(M, device="cuda", generator=g)
        enc = lk.SparseEncoder.from_weights(W.cpu().numpy(), b.cpu().numpy(), W.T.cpu().numpy(), np.zeros(d), k=k)
        _cache[key] = (enc, X, W.to(DTYPES[dtype]), b.to(DTYPES[dtype]), k)
    return _cache[key]


def torch_encode(X, W, b, k):
    return torch.topk(torch.relu(X @ W + b), k, dim=1)


_compiled = torch.compile(torch_encode)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shape", list(ENCODE_SHAPES))
@pytest.mark.parametrize("impl", ["likeable", "torch eager", "torch.compile", "bare GEMM"])
def test_encode(benchmark, shape, dtype, impl):
    enc, X, W, b, k = encode_setup(shape, dtype)
    d, M, _, N = ENCODE_SHAPES[shape]
    benchmark.group = f"gpu encode {shape} {dtype}"
    flops = 2.0 * N * d * M
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    pool = cp.get_default_memory_pool()
    if impl == "likeable":
        pool.free_all_blocks()
        before = pool.used_bytes()
        codes = benchmark.pedantic(synced(lambda: enc.encode(X)), **ROUNDS)
        benchmark.extra_info["extra_GiB"] = round((pool.total_bytes() - before) / 2 ** 30, 2)
        assert codes.shape == (N, M) and codes.nnz <= N * k
        vals, idx = torch_encode(X[:256], W, b, k)
        ours = codes.get()[:256] if N <= 65536 else gpu.DeviceSparseCodes(
            codes.indptr[:257], codes.indices[:int(codes.indptr[256])], codes.values[:int(codes.indptr[256])],
            (256, M), validate=False).get()
        agree = np.mean([len(set(idx[r].cpu().numpy()[vals[r].float().cpu().numpy() > 0]) & set(ours[r].indices)) / k
                         for r in range(256)])
        assert agree > (0.97 if dtype == "fp32" else 0.85)  # bf16 rounding of the peer's output reorders near-ties
    else:
        benchmark.extra_info["peer"] = impl
        with torch.no_grad():
            fn = {"torch eager": lambda: torch_encode(X, W, b, k), "torch.compile": lambda: _compiled(X, W, b, k),
                  "bare GEMM": lambda: X @ W}[impl]
            benchmark.pedantic(synced(fn), **ROUNDS)
        benchmark.extra_info["extra_GiB"] = round((torch.cuda.max_memory_allocated() - base) / 2 ** 30, 2)
    benchmark.extra_info["TFLOP/s"] = round(flops / benchmark.stats.stats.median / 1e12, 1)


def test_encode_one_million_rows_at_M16384(benchmark):
    """Extra memory O(N*k + tile): 1M rows x 16384 features, where the peer's N x M bf16
    pre-activations alone would take 32 GiB."""
    d, M, k, N = 384, 16384, 32, 1 << 20
    g = torch.Generator(device="cuda").manual_seed(1)
    X = torch.randn(N, d, device="cuda", generator=g).to(torch.bfloat16)
    W = torch.randn(d, M, device="cuda", generator=g) / d ** 0.5
    enc = lk.SparseEncoder.from_weights(W.cpu().numpy(), np.zeros(M), W.T.cpu().numpy(), np.zeros(d), k=k)
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    benchmark.group = "gpu encode 1M rows"
    codes = benchmark.pedantic(synced(lambda: enc.encode(X)), rounds=2, iterations=1, warmup_rounds=1)
    extra = pool.total_bytes() / 2 ** 30
    benchmark.extra_info["extra_GiB"] = round(extra, 2)
    benchmark.extra_info["TFLOP/s"] = round(2.0 * N * d * M / benchmark.stats.stats.median / 1e12, 1)
    assert codes.nnz == N * k
    assert extra < 2.0  # output (N*k*8 bytes = 0.25 GiB) + weights + one tile, with room


# --- scoring ----------------------------------------------------------------------------------
def scoring_setup():
    if "scoring" not in _cache:
        _cache.clear()
        torch.cuda.empty_cache()
        cp.get_default_memory_pool().free_all_blocks()
        rng = np.random.default_rng(0)
        n_users, n_items, M, per_item = 100_000, 10_000, 4096, 32
        cols = np.concatenate([rng.choice(M, per_item, replace=False) for _ in range(n_items)]).astype(np.int32)
        items = lk.SparseCodes(np.arange(0, n_items * per_item + 1, per_item), cols,
                               rng.standard_normal(n_items * per_item).astype(np.float32), (n_items, M))
        # A fitted model with every user's own offset: built from weights, not trained (speed only).
        prefs = lk.UserPreferences(shrinkage=1.0).fit(items[:2000], (rng.random(2000) < 0.5).astype(float),
                                                      rng.integers(0, 50, 2000))
        users = np.arange(n_users) % 50
        _cache["scoring"] = (prefs, users, gpu.DeviceSparseCodes.from_host(items), items, M)
    return _cache["scoring"]


@pytest.mark.parametrize("impl", ["likeable", "torch dense matmul", "torch.sparse csr @ dense"])
def test_score_users_items(benchmark, impl):
    prefs, users, items_dev, items, M = scoring_setup()
    benchmark.group = "gpu score 100k users x 10k items (M=4096, 32 active)"
    n_users, n_items = users.size, items.shape[0]
    useful_flops = 2.0 * n_users * items.nnz
    if impl == "likeable":
        out = benchmark.pedantic(synced(lambda: prefs.score(users, items_dev)), **ROUNDS)
        check = prefs.weights(users[:64]).astype(np.float64) @ items.to_scipy().toarray().T
        np.testing.assert_allclose(out[:64].get(), check, rtol=1e-3, atol=1e-3)
        del out
    else:
        benchmark.extra_info["peer"] = impl
        W = torch.as_tensor(prefs.weights(users), device="cuda")
        if impl == "torch dense matmul":
            C = torch.as_tensor(items.to_scipy().toarray(), device="cuda")
            fn = lambda: W @ C.T  # noqa: E731
        else:
            C = torch.sparse_csr_tensor(torch.as_tensor(items.indptr), torch.as_tensor(items.indices.astype(np.int64)),
                                        torch.as_tensor(items.values), size=items.shape, device="cuda")
            Wt = W.T.contiguous()
            fn = lambda: (C @ Wt).T  # noqa: E731
        with torch.no_grad():
            benchmark.pedantic(synced(fn), **ROUNDS)
    median = benchmark.stats.stats.median
    benchmark.extra_info["useful TFLOP/s"] = round(useful_flops / median / 1e12, 2)
    benchmark.extra_info["output GB/s"] = round(4.0 * n_users * n_items / median / 1e9, 0)


# --- exact search -------------------------------------------------------------------------------
@pytest.mark.parametrize("impl", ["likeable", "torch.sparse + topk"])
def test_exact_search(benchmark, impl):
    rng = np.random.default_rng(2)
    n_rows, M, per_row, n_queries, k = 200_000, 4096, 32, 1000, 10
    cols = np.concatenate([rng.choice(M, per_row, replace=False) for _ in range(n_rows)]).astype(np.int32)
    codes = lk.SparseCodes(np.arange(0, n_rows * per_row + 1, per_row), cols,
                           rng.standard_normal(n_rows * per_row).astype(np.float32), (n_rows, M))
    queries = cp.asarray(rng.standard_normal((n_queries, M)).astype(np.float32))
    benchmark.group = "gpu exact search 200k rows x 1000 queries k=10"
    if impl == "likeable":
        index = lk.SparseIndex(codes, approximate=False)
        ids, _ = benchmark.pedantic(synced(lambda: index.search(queries, k=k)), **ROUNDS)
        want, _ = index.search(queries[:20].get(), k=k)
        assert np.mean(ids[:20].get() == want) > 0.99
    else:
        benchmark.extra_info["peer"] = impl
        C = torch.sparse_csr_tensor(torch.as_tensor(codes.indptr), torch.as_tensor(codes.indices.astype(np.int64)),
                                    torch.as_tensor(codes.values), size=codes.shape, device="cuda")
        Q = torch.as_tensor(queries, device="cuda")
        with torch.no_grad():
            benchmark.pedantic(synced(lambda: torch.topk((C @ Q.T).T, k, dim=1)), **ROUNDS)


# --- ceilings -----------------------------------------------------------------------------------
def test_ceiling_copy_bandwidth(benchmark):
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    benchmark.group = "gpu ceilings"
    benchmark.pedantic(synced(lambda: dst.copy_(src)), **ROUNDS)
    benchmark.extra_info["GB/s (read+write)"] = round(2 * src.numel() / benchmark.stats.stats.median / 1e9, 0)


def test_ceiling_bf16_gemm(benchmark):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    benchmark.group = "gpu ceilings"
    benchmark.pedantic(synced(lambda: a @ b), **ROUNDS)
    benchmark.extra_info["TFLOP/s"] = round(2 * 8192 ** 3 / benchmark.stats.stats.median / 1e12, 0)

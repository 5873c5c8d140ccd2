"""SparseEncoder: encode/decode against a float64 numpy reference, training, files, bad input."""
from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

import likeable as lk
from likeable import _core


def random_encoder(rng, d, M, k, kind="topk", signed=False, threshold=None):
    W_enc = rng.standard_normal((d, M)).astype(np.float32)
    b_enc = (0.5 * rng.standard_normal(M)).astype(np.float32)
    W_dec = rng.standard_normal((M, d)).astype(np.float32)
    b_dec = rng.standard_normal(d).astype(np.float32)
    return lk.SparseEncoder.from_weights(W_enc, b_enc, W_dec, b_dec, k=k, kind=kind, signed=signed,
                                         threshold=threshold)


def reference_pre(enc, X):
    X64 = np.asarray(X, np.float64)
    return (X64 - enc.b_dec.astype(np.float64)) @ enc.W_enc.astype(np.float64) + enc.b_enc


def check_topk(codes, pre, k, signed, atol=2e-4):
    """Rows hold the k largest keys (> 0), sorted by id, with the reference values."""
    keys = np.abs(pre) if signed else pre
    assert codes.shape == pre.shape
    for r in range(pre.shape[0]):
        lo, hi = codes.indptr[r], codes.indptr[r + 1]
        ids, vals = codes.indices[lo:hi], codes.values[lo:hi]
        n_pos = int((keys[r] > atol).sum())
        assert min(k, n_pos) <= hi - lo <= min(k, int((keys[r] > 0).sum()) + 1)
        assert np.all(np.diff(ids) > 0), "ids must be increasing within a row"
        np.testing.assert_allclose(vals, pre[r, ids], rtol=1e-4, atol=atol)
        if hi > lo:  # everything left out is no larger than the smallest kept key (up to rounding)
            left_out = np.setdiff1d(np.arange(pre.shape[1]), ids)
            if left_out.size:
                assert keys[r, left_out].max() <= np.abs(pre[r, ids]).min() + atol if signed \
                    else keys[r, left_out].max() <= pre[r, ids].min() + atol


@pytest.mark.parametrize("n,d,M,k", [(0, 7, 13, 3), (1, 7, 13, 3), (37, 19, 53, 53), (300, 33, 1500, 7),
                                     (130, 5, 11, 1), (257, 64, 1025, 32)])
@pytest.mark.parametrize("signed", [False, True])
def test_encode_matches_float64_reference(rng, n, d, M, k, signed):
    enc = random_encoder(rng, d, M, k, signed=signed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    codes = enc.encode(X)
    assert codes.indptr.dtype == np.int64 and codes.indices.dtype == np.int32
    assert codes.values.dtype == np.float32 and len(codes) == n
    check_topk(codes, reference_pre(enc, X), k, signed)
    if signed:  # signed codes keep negative values too
        assert n < 5 or (codes.values < 0).any()
    else:
        assert (codes.values > 0).all()


@pytest.mark.parametrize("tile_rows,tile_features", [(1, 1), (3, 5), (7, 64), (500, 2000)])
def test_encode_any_tile_size_gives_the_same_codes(rng, tile_rows, tile_features):
    enc = random_encoder(rng, 21, 97, 6)
    X = rng.standard_normal((45, 21)).astype(np.float32)
    want = enc.encode(X, threads=1)
    got = _core.encoder_encode(X, enc._W_encT, enc.b_enc, enc.b_dec, None, 6, False, False, 2,
                               tile_rows, tile_features)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    # Different GEMM shapes may round differently in the last bit; the selection is the same.
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6)


def test_encode_k_override_and_relu_drops_negatives(rng):
    enc = random_encoder(rng, 9, 40, 4)
    enc._b_enc[:] = -100.0  # every pre-activation negative: ReLU codes are empty
    X = rng.standard_normal((6, 9))
    assert enc.encode(X).nnz == 0
    enc._b_enc[:] = 0.0
    codes = enc.encode(X, k=40)
    pre = reference_pre(enc, X)
    np.testing.assert_array_equal(codes.row_nnz(), (pre > 0).sum(axis=1))
    with pytest.raises(ValueError, match="exceeds"):
        enc.encode(X, k=41)


def test_batchtopk_threshold_mode(rng):
    d, M = 16, 70
    threshold = np.abs(rng.standard_normal(M)).astype(np.float32)
    enc = random_encoder(rng, d, M, 5, kind="batchtopk", threshold=threshold)
    X = rng.standard_normal((50, d)).astype(np.float32)
    codes = enc.encode(X)
    pre = reference_pre(enc, X)
    dense = codes.to_dense()
    clear = np.abs(pre - threshold) > 1e-4  # skip entries within rounding of the threshold
    np.testing.assert_array_equal((dense != 0)[clear], (pre > threshold)[clear])
    np.testing.assert_allclose(dense[dense != 0], pre[dense != 0], rtol=1e-4, atol=1e-4)
    assert len(set(codes.row_nnz().tolist())) > 1  # variable number of active features per row
    check_topk(enc.encode(X, k=3), pre, 3, False)  # k= overrides the threshold


def test_decode_matches_reference(rng):
    enc = random_encoder(rng, 13, 31, 4)
    import scipy.sparse as sp

    m = sp.random(19, 31, density=0.2, format="csr", random_state=np.random.RandomState(1), dtype=np.float32)
    want = m.toarray().astype(np.float64) @ enc.W_dec.astype(np.float64) + enc.b_dec
    for codes in (lk.SparseCodes.from_scipy(m), m):
        got = enc.decode(codes)
        assert got.dtype == np.float32 and got.shape == (19, 13)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert enc.decode(lk.SparseCodes.empty(0, 31)).shape == (0, 13)
    np.testing.assert_allclose(enc.decode(lk.SparseCodes.empty(2, 31)), np.tile(enc.b_dec, (2, 1)))


def test_float64_and_noncontiguous_input(rng):
    enc = random_encoder(rng, 12, 50, 5)
    X = rng.standard_normal((40, 24))[:, ::2]  # float64, strided
    assert not X.flags.c_contiguous
    assert enc.encode(X) == enc.encode(np.ascontiguousarray(X, dtype=np.float32))
    assert enc.encode(np.asfortranarray(X)) == enc.encode(X)


def test_threads_give_identical_codes_and_encode_is_thread_safe(rng):
    enc = random_encoder(rng, 32, 300, 8)
    X = rng.standard_normal((600, 32)).astype(np.float32)
    serial = enc.encode(X, threads=1)
    assert enc.encode(X, threads=2) == serial
    assert enc.encode(X, threads=3) == serial
    results, errors = [None] * 8, []

    def work(i):
        try:
            results[i] = enc.encode(X, threads=2)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == serial for r in results)


# ---- training ---------------------------------------------------------------------------

def planted(rng, n=2000, d=24, M=48, k=3, noise=0.01):
    D = rng.standard_normal((M, d)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = np.zeros((n, M), np.float32)
    for i in range(n):
        Z[i, rng.choice(M, k, replace=False)] = rng.uniform(0.5, 2.0, k)
    return (Z @ D + noise * rng.standard_normal((n, d))).astype(np.float32), D


def test_fit_learns_and_recovers_planted_directions(rng):
    X, D = planted(rng)
    enc = lk.SparseEncoder(n_features=64, k=3, seed=3, threads=1)
    assert enc.fit(X, epochs=60, lr=1e-2, patience=5, progress=False) is enc
    stats = enc.stats(X)
    assert stats.normalized_mse < 0.15, stats
    assert stats.mean_active <= 3.0
    cos = np.abs(enc.W_dec @ D.T).max(axis=0)
    assert (cos > 0.9).mean() > 0.8, np.sort(cos)
    np.testing.assert_allclose(np.linalg.norm(enc.W_dec, axis=1), 1.0, rtol=1e-4)
    h = enc.history_
    assert h[enc.best_epoch_]["val_normalized_mse"] == min(e["val_normalized_mse"] for e in h)
    assert h[-1]["val_normalized_mse"] < h[0]["val_normalized_mse"]


@pytest.mark.slow  # importing torch takes seconds
def test_training_steps_match_autograd_reference(rng, kernel_path):
    """Three steps of the core trainer against PyTorch autograd + Adam (skipped without torch)."""
    torch = pytest.importorskip("torch")
    import sys

    torch.set_num_threads(1)  # tiny tensors: a thread team only costs time here

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from torch_sae import TorchTopKSAE

    d, M, B = 29, 37, 23
    X = (rng.standard_normal((B, d)) + 0.3).astype(np.float32)
    W = rng.standard_normal((M, d)).astype(np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    W_encT = W + 0.1 * rng.standard_normal((M, d)).astype(np.float32)
    b_dec = np.median(X, axis=0).astype(np.float32)
    norm = float(np.mean(np.sum((X - X.mean(0)) ** 2, axis=1)))
    # Lazy Adam equals Adam while every latent carries gradient in every step: k = M with a
    # large positive bias (all latents active) runs 3 steps; k = 5 checks a single step.
    for k, bias, steps, prefixes in ((M, 5.0, 3, [M]), (M, 5.0, 3, [5, 20, M]), (5, 0.0, 1, [M]),
                                     (5, 0.0, 1, [5, 20, M])):
        b_enc = (bias + 0.1 * rng.standard_normal(M)).astype(np.float32)
        ref = TorchTopKSAE(W_encT, b_enc, W, b_dec, k=k, prefixes=prefixes, lr=1e-3, aux_k=0,
                           aux_coef=0.0, dead_after=10**9)
        trainer = _core.SaeTrainer(n_dims=d, n_features=M, k=k, batch_topk=False, signed=False,
                                   prefixes=prefixes, aux_k=0, aux_coef=0.0, dead_after_rows=0,
                                   lr=1e-3, threads=2)
        ours = [W_encT.copy(), b_enc.copy(), W.copy(), b_dec.copy()]
        for _ in range(steps):
            want = ref.step(torch.from_numpy(X), norm)
            got = trainer.run_epoch(*ours, None, X, np.arange(B, dtype=np.int64), B, norm).loss
            assert got == pytest.approx(want, rel=1e-5)
        for mine, theirs in zip(ours, (ref.W_encT, ref.b_enc, ref.W_dec, ref.b_dec)):
            np.testing.assert_allclose(mine, theirs.detach().numpy(), atol=2e-6)
            assert not np.array_equal(mine, W_encT) or mine.shape != W_encT.shape


def test_training_simd_and_portable_adam_agree(rng, simd_switch):
    # Adam's SSE loop and its portable twin round (1 - b2) g^2 in another order: after a few
    # steps the weights agree to float32 rounding (k = M keeps the selection from flipping).
    d, M, B = 13, 21, 17
    X = rng.standard_normal((B, d)).astype(np.float32)
    W = rng.standard_normal((M, d)).astype(np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    start = [W.copy(), (5.0 + rng.standard_normal(M)).astype(np.float32), W.copy(), np.zeros(d, np.float32)]
    results = []
    for enabled in (True, False):
        weights = [a.copy() for a in start]
        trainer = _core.SaeTrainer(n_dims=d, n_features=M, k=M, batch_topk=False, signed=False, prefixes=[M],
                                   aux_k=0, aux_coef=0.0, dead_after_rows=0, lr=1e-2, threads=1)
        with simd_switch(enabled):
            for _ in range(4):
                trainer.run_epoch(*weights, None, X, np.arange(B, dtype=np.int64), B, 1.0)
        results.append(weights)
    for fast, portable, before in zip(*results, start):
        np.testing.assert_allclose(fast, portable, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(fast, before)


def test_fit_is_deterministic_for_seed_and_threads(rng):
    X, _ = planted(rng, n=600)
    fits = [lk.SparseEncoder(n_features=40, k=3, seed=7, matryoshka=(8,)).fit(
        X, epochs=3, progress=False, threads=2) for _ in range(2)]
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    # Reductions run in a fixed order, so even the thread count leaves the result unchanged.
    one = lk.SparseEncoder(n_features=40, k=3, seed=7, matryoshka=(8,)).fit(X, epochs=3, progress=False,
                                                                          threads=1)
    np.testing.assert_array_equal(one.W_dec, fits[0].W_dec)
    other = lk.SparseEncoder(n_features=40, k=3, seed=8).fit(X, epochs=1, progress=False)
    assert not np.array_equal(other.W_dec, fits[0].W_dec)


def test_fit_batchtopk_learns_threshold(rng):
    X, _ = planted(rng)
    enc = lk.SparseEncoder(n_features=64, k=3, kind="batchtopk", seed=3)
    enc.fit(X, epochs=60, lr=1e-2, patience=5, progress=False, threads=1)
    assert enc.threshold.shape == (64,) and (enc.threshold > 0).all()
    # calibrated after training: the rows keep k features on average (the 10 % held out for
    # early stopping were not used to calibrate, hence the small tolerance)
    assert enc.stats(X).mean_active == pytest.approx(3.0, abs=0.3)
    assert enc.trained_threshold_ > 0 and enc.threshold[0] != enc.trained_threshold_
    assert enc.normalized_mse(X) < 0.3


def _reference_threshold(enc, X, l0):
    """The (l0·n + 1)-th largest positive key of the float64 pre-activations (0 if there are fewer)."""
    pre = reference_pre(enc, X)
    keys = np.abs(pre) if enc.signed else pre
    keys = np.sort(keys[keys > 0])[::-1]
    target = int(round(l0 * X.shape[0]))
    return (keys[target] if keys.size > target else 0.0), min(target, keys.size)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n, l0", [(1, 2), (37, 3), (200, 1.5), (64, 16)])  # l0 = M: everything may fire
def test_calibrate_threshold_matches_numpy_reference(rng, signed, n, l0):
    d, M = 12, 16
    enc = random_encoder(rng, d, M, 3, kind="batchtopk", signed=signed, threshold=0.0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[: max(1, n // 4)] *= 20  # rows with far larger keys than the rest: the top-k must grow past 2·l0
    threshold = enc.calibrate_threshold(X, l0=l0)
    expected, n_active = _reference_threshold(enc, X, l0)
    assert threshold == pytest.approx(expected, rel=1e-4, abs=1e-4)
    np.testing.assert_array_equal(enc.threshold, np.full(M, threshold, np.float32))
    assert enc.encode(X).nnz == n_active  # exactly l0 per row on average (every positive key if fewer)


def test_calibrate_threshold_refuses_what_it_cannot_do(rng):
    enc = random_encoder(rng, 6, 8, 2, kind="topk")
    X = rng.standard_normal((5, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="BatchTopK"):
        enc.calibrate_threshold(X)
    enc = random_encoder(rng, 6, 8, 2, kind="batchtopk", threshold=0.1)
    for bad in (0, -1, 9, float("nan")):
        with pytest.raises(ValueError, match="l0"):
            enc.calibrate_threshold(X, l0=bad)
    with pytest.raises(ValueError):
        enc.calibrate_threshold(X[:0])


def test_fit_signed_matryoshka_and_early_stop(rng):
    X, _ = planted(rng, n=500)
    X = X - X.mean(axis=0)
    enc = lk.SparseEncoder(n_features=32, k=4, signed=True, matryoshka=(8, 32), seed=1)
    enc.fit(X, X_val=X[:50], epochs=60, lr=1e-2, patience=1, progress=False)
    assert len(enc.history_) < 60 or enc.best_epoch_ == 59
    codes = enc.encode(X)
    assert (codes.values < 0).any() and (codes.values > 0).any()
    assert enc.normalized_mse(X) < 0.8


def test_aux_k_revives_dead_latents(rng):
    X, _ = planted(rng, n=1000, M=16)
    kwargs = dict(n_features=64, k=2, seed=0, threads=1)
    # A bias that silences half the latents from the start: only aux-K can bring them back.
    runs = {}
    for aux_k in (0, 32):
        enc = lk.SparseEncoder(aux_k=aux_k, dead_after=256, **kwargs)
        enc.fit(X, epochs=10, lr=5e-3, patience=10, progress=False)
        runs[aux_k] = enc.history_[-1]["aux_loss"]
    assert runs[0] == 0.0 and runs[32] > 0.0


# ---- files --------------------------------------------------------------------------------

def test_save_load_roundtrip_and_pickle(rng, tmp_path):
    enc = random_encoder(rng, 10, 20, 4, kind="batchtopk", threshold=0.3)
    path = tmp_path / "enc.safetensors"
    enc.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["enc.safetensors"]  # no temporary left behind
    back = lk.SparseEncoder.load(path)
    X = rng.standard_normal((15, 10))
    assert back.encode(X) == enc.encode(X)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"):
        np.testing.assert_array_equal(getattr(back, name), getattr(enc, name))
    assert (back.kind, back.k, back.signed) == ("batchtopk", 4, False)
    clone = pickle.loads(pickle.dumps(enc))
    assert clone.encode(X) == enc.encode(X)
    assert "batchtopk" in repr(clone)
    unfitted = pickle.loads(pickle.dumps(lk.SparseEncoder(n_features=8, k=2)))
    with pytest.raises(lk.NotFittedError):
        unfitted.encode(X)
    from safetensors.numpy import load_file

    raw = load_file(str(path))  # sae_lens layout on disk
    assert raw["W_enc"].shape == (10, 20) and raw["W_dec"].shape == (20, 10)


def test_damaged_and_foreign_files_raise_format_error(rng, tmp_path):
    enc = random_encoder(rng, 6, 9, 2)
    data = enc.to_bytes()
    for bad in (data[: len(data) // 2], data[:5], b"\x00" * 64, os.urandom(300)):
        with pytest.raises(lk.FormatError):
            lk.SparseEncoder.from_bytes(bad)
    from safetensors.numpy import save

    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(save({"W_enc": np.zeros((6, 9), np.float32)}))
    with pytest.raises(lk.FormatError, match="not a file written by likeable"):
        lk.SparseEncoder.load(foreign)
    from likeable._io import tensors_to_bytes

    wrong = tensors_to_bytes({"W_enc": np.zeros((6, 9), np.float32), "b_enc": np.zeros(9, np.float32),
                              "W_dec": np.zeros((8, 6), np.float32), "b_dec": np.zeros(6, np.float32)},
                             {"format": "likeable.SparseEncoder", "version": 1, "kind": "topk", "k": 2,
                              "signed": False, "matryoshka": None})
    with pytest.raises(lk.FormatError, match="inconsistent"):
        lk.SparseEncoder.from_bytes(wrong)
    with pytest.raises(FileNotFoundError):
        lk.SparseEncoder.load(tmp_path / "missing.safetensors")


# ---- bad input ----------------------------------------------------------------------------

def test_constructor_rejects_bad_settings():
    with pytest.raises(ValueError, match="exceeds"):
        lk.SparseEncoder(n_features=8, k=9)
    with pytest.raises(ValueError, match="kind"):
        lk.SparseEncoder(kind="relu")
    with pytest.raises(ValueError):
        lk.SparseEncoder(k=0)
    with pytest.raises(ValueError, match="increasing"):
        lk.SparseEncoder(n_features=32, k=2, matryoshka=(16, 8))
    with pytest.raises(ValueError, match="exceeds"):
        lk.SparseEncoder(n_features=32, k=2, matryoshka=(8, 64))
    with pytest.raises(TypeError):
        lk.SparseEncoder(n_features=32, k=2, signed="yes")
    enc = lk.SparseEncoder(n_features=32, k=2, matryoshka=(8,))
    assert enc.get_params()["matryoshka"] == (8,)  # stored as given


def test_bad_arrays_raise_clear_errors(rng):
    enc = random_encoder(rng, 5, 12, 3)
    with pytest.raises(lk.NotFittedError):
        lk.SparseEncoder().encode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        enc.encode(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="NaN or Inf"):
        enc.encode(np.array([[1, 2, np.inf, 4, 5]]))
    with pytest.raises(ValueError, match="columns"):
        enc.encode(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="2-D"):
        enc.encode(np.zeros(5))
    with pytest.raises(TypeError):
        enc.encode(np.array([["a"] * 5]))
    with pytest.raises(TypeError):
        enc.encode("text")
    with pytest.raises(ValueError, match="features"):
        enc.decode(lk.SparseCodes.empty(2, 13))
    with pytest.raises(TypeError):
        enc.decode(np.zeros((2, 12)))
    codes = enc.encode(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="read-only"):
        codes.indices[0] = 99  # the stored arrays cannot be changed in place
    codes.indices = np.full_like(codes.indices, 99)  # nor replaced unnoticed: the boundary checks again
    with pytest.raises(ValueError, match="outside"):
        enc.decode(codes)
    with pytest.raises(ValueError):
        lk.SparseEncoder.from_weights(np.zeros((5, 12)), np.zeros(11), np.zeros((12, 5)), np.zeros(5), k=2)
    with pytest.raises(ValueError, match="threshold"):
        lk.SparseEncoder.from_weights(np.zeros((5, 12)), np.zeros(12), np.zeros((12, 5)), np.zeros(5), k=2,
                                      kind="batchtopk")
    with pytest.raises(ValueError, match="no rows"):
        lk.SparseEncoder(n_features=8, k=2).fit(np.zeros((0, 4)), progress=False)
    with pytest.raises(ValueError, match="columns"):
        lk.SparseEncoder(n_features=8, k=2).fit(np.zeros((20, 4)), X_val=np.zeros((3, 5)), progress=False)
    with pytest.raises(ValueError, match="threads"):
        enc.encode(np.zeros((1, 5)), threads=0)


def test_cli_demo_recovers_planted_directions(capsys, tmp_path):
    from likeable.cli import main
    from likeable.protocol.bench import encoder_demo

    result = encoder_demo(n_rows=3000, n_dims=24, n_planted=32, n_features=64, k=3, epochs=40,
                          progress=False)
    assert result["recovered"] >= 0.8 * result["n_planted"], result
    assert result["encode_rows_per_second"] > 0
    assert main(["demo", "--rows", "500", "--dims", "8", "--planted", "8", "--features", "16", "--k", "2",
                 "--epochs", "2", "--no-progress", "--out", str(tmp_path / "report")]) == 0
    text = capsys.readouterr().out
    assert "planted directions (cosine > 0.9)" in text and "rows/s" in text
    assert main(["demo", "--k", "20", "--features", "16"]) == 2


def test_version_1_file_still_loads():
    """A file written by format version 1 (checked in) loads and encodes as it did then."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data"
    enc = lk.SparseEncoder.load(data / "encoder_v1.safetensors")
    assert (enc.kind, enc.k, enc.signed, tuple(enc.matryoshka)) == ("batchtopk", 3, False, (4,))
    want = np.load(data / "encoder_v1_expected.npz")
    codes = enc.encode(want["X"])
    np.testing.assert_array_equal(codes.indptr, want["indptr"])
    np.testing.assert_array_equal(codes.indices, want["indices"])
    np.testing.assert_allclose(codes.values, want["values"], rtol=1e-6)


def test_fit_progress_bar_is_shown_per_epoch(rng, capsys):
    X, _ = planted(rng, n=200)
    lk.SparseEncoder(n_features=16, k=2).fit(X, epochs=2, patience=5, progress=True)
    assert "fit" in capsys.readouterr().err
    lk.SparseEncoder(n_features=16, k=2).fit(X, epochs=2, patience=5, progress=False)
    assert capsys.readouterr().err == ""

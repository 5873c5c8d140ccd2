"""SparseEncoder: a TopK / BatchTopK sparse autoencoder whose encode, decode and training step
run in the compiled core."""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from . import _core
from ._estimator import Estimator
from ._gpu.device import dispatch
from ._io import tensors_from_bytes, tensors_to_bytes
from ._memory import check_allocation
from ._persistence import Persistent
from ._threshold import calibrated_threshold
from ._validation import as_float32_matrix, check_positive_int, fspath, not_fitted, resolve_threads
from .sparse import SparseCodes, as_sparse_codes

FORMAT_VERSION = 1
_KINDS = ("topk", "batchtopk")


@dataclass(frozen=True)
class EncoderStats:
    """Health numbers of an encoder on a data set.

    Attributes
    ----------
    normalized_mse : float
        ``sum ||x - x_hat||^2 / sum ||x - mean(X)||^2`` (0 is perfect, 1 is no better than the mean).
    dead_fraction : float
        Fraction of features that never fire on the data set.
    mean_active : float
        Mean number of active features per row.
    n_rows : int
        Rows measured.
    """

    normalized_mse: float
    dead_fraction: float
    mean_active: float
    n_rows: int


class EncoderWeights(NamedTuple):
    """An encoder's arrays as the core and the GPU path read them (the encoder's own, not copies).

    ``W_encT`` is M x d (each latent's encoder row contiguous), the transpose of ``W_enc``.
    """

    W_encT: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    threshold: np.ndarray | None


class SparseEncoder(Estimator, Persistent):
    """Sparse autoencoder (TopK or BatchTopK) over dense embeddings.

    Pre-activations are ``a = (x - b_dec) @ W_enc + b_enc``; a row's code keeps its ``k``
    largest ``a`` (ReLU) or, with ``signed=True``, its ``k`` largest ``|a|`` with their sign.
    ``kind="batchtopk"`` trains with the ``k * batch_size`` largest entries over each batch
    and encodes by keeping entries that pass the learned ``threshold`` (so rows have a
    variable number of active features) unless ``encode(..., k=...)`` asks for top-k.

    Parameters
    ----------
    n_features : int
        Dictionary size M.
    k : int
        Active features per row (mean per row for BatchTopK); ``1 <= k <= n_features``.
    kind : {"topk", "batchtopk"}
    signed : bool
        Keep the largest magnitudes with their sign instead of the largest positive values.
    matryoshka : sequence of int or None
        Nested dictionary prefixes, e.g. ``(8, 32)``: the loss is the mean of the losses
        reconstructing with the first 8 and with all features (``n_features`` is appended
        when the last prefix is smaller).
    seed : int
        Seeds the initialisation, the validation split and the batch order. Training is
        deterministic for a given seed and thread count.
    aux_k : int or None
        Dead latents used by the aux-K loss (None: ``max(k, d // 2)``, capped at M; 0: off).
    aux_coef : float
        Weight of the aux-K loss.
    dead_after : int or None
        A latent silent for this many training rows counts as dead (None: one epoch, at most
        100 batches).
    threads : int or None
        Threads for every call (None: ``LIKEABLE_NUM_THREADS`` or all cores); each method's
        ``threads=`` overrides it.

    Attributes
    ----------
    W_enc, b_enc, W_dec, b_dec, threshold : numpy.ndarray
        Weights in sae_lens layout: ``W_enc`` (d x M), ``b_enc`` (M), ``W_dec`` (M x d),
        ``b_dec`` (d), ``threshold`` (M, BatchTopK only, else None).
    n_dims_ : int
        Embedding width d seen in ``fit`` (or given by the weights).
    history_ : list of dict
        Per epoch: training loss, aux loss, validation normalized MSE, dead fraction.
    best_epoch_ : int
        The epoch whose weights were kept (early stopping restores the best state).

    Notes
    -----
    ``encode``, ``decode`` and ``stats`` release the GIL and may run from many threads at once;
    ``fit`` updates the weight arrays in place, so do not encode with the same object while it
    is fitting.
    """

    def __init__(self, *, n_features: int = 4096, k: int = 32, kind: str = "topk",
                 signed: bool = False, matryoshka: Sequence[int] | None = None, seed: int = 0,
                 aux_k: int | None = None, aux_coef: float = 1.0 / 32,
                 dead_after: int | None = None, threads: int | None = None) -> None:
        self.n_features = n_features
        self.k = k
        self.kind = kind
        self.signed = signed
        self.matryoshka = matryoshka
        self.seed = seed
        self.aux_k = aux_k
        self.aux_coef = aux_coef
        self.dead_after = dead_after
        self.threads = threads
        self._W_encT: np.ndarray | None = None  # M x d: each latent's encoder row is contiguous
        self._b_enc: np.ndarray | None = None
        self._W_dec: np.ndarray | None = None
        self._b_dec: np.ndarray | None = None
        self._threshold: np.ndarray | None = None
        # Impossible settings (e.g. k > n_features) fail here, where they are written; the values
        # are stored exactly as given.
        self._validate_params()

    # --- parameters and learned state ---------------------------------------------------
    _sklearn_kind = "transformer"
    _expected_failed_checks = {
        "check_do_not_raise_errors_in_init_or_set_params":
            "the constructor and set_params refuse impossible settings (k > n_features, an unknown kind) "
            "where they are written, instead of at fit; valid values are stored exactly as given, so "
            "clone and grid searches work",
    }
    _pickle_extras = ("history_", "best_epoch_")

    def _check_params(self, params: dict[str, Any]) -> None:
        n_features, k, kind = params["n_features"], params["k"], params["kind"]
        check_positive_int(n_features, "n_features")
        check_positive_int(k, "k")
        if k > n_features:
            raise ValueError(f"k={k} exceeds n_features={n_features}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if not isinstance(params["signed"], (bool, np.bool_)):
            raise TypeError(f"signed must be a bool, got {type(params['signed']).__name__}")
        _resolve_prefixes(params["matryoshka"], n_features)
        check_positive_int(params["seed"], "seed", minimum=0)
        if params["aux_k"] is not None:
            check_positive_int(params["aux_k"], "aux_k", minimum=0)
        aux_coef = params["aux_coef"]
        if not (isinstance(aux_coef, numbers.Real) and aux_coef >= 0 and math.isfinite(aux_coef)):
            raise ValueError(f"aux_coef must be a finite number >= 0, got {aux_coef!r}")
        if params["dead_after"] is not None:
            check_positive_int(params["dead_after"], "dead_after")
        if params["threads"] is not None:
            resolve_threads(params["threads"])

    def _is_fitted(self) -> bool:
        return self._W_dec is not None

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    def _check_fitted(self) -> None:
        if self._W_dec is None:
            raise not_fitted("this SparseEncoder is not fitted: call fit() or from_weights() first")

    @property
    def weights_(self) -> EncoderWeights:
        """The arrays encode, decode and the GPU path read (the encoder's own; do not modify)."""
        self._check_fitted()
        return EncoderWeights(self._W_encT, self._b_enc, self._W_dec, self._b_dec, self._threshold)

    @property
    def W_enc(self) -> np.ndarray:
        self._check_fitted()
        return self._W_encT.T

    @property
    def b_enc(self) -> np.ndarray:
        self._check_fitted()
        return self._b_enc

    @property
    def W_dec(self) -> np.ndarray:
        self._check_fitted()
        return self._W_dec

    @property
    def b_dec(self) -> np.ndarray:
        self._check_fitted()
        return self._b_dec

    @property
    def threshold(self) -> np.ndarray | None:
        self._check_fitted()
        return self._threshold

    @property
    def n_dims_(self) -> int:
        self._check_fitted()
        return int(self._W_dec.shape[1])

    @property
    def n_features_in_(self) -> int:
        """Embedding width d (scikit-learn's name for :attr:`n_dims_`)."""
        return self.n_dims_

    def _threads(self, threads: int | None) -> int:
        return resolve_threads(threads if threads is not None else self.threads)

    # --- encode / decode ------------------------------------------------------------------
    def _select(self, k: int | None) -> tuple[int, bool]:
        """(k, use_threshold) for an encode call."""
        if k is None:
            return self.k, self.kind == "batchtopk"
        check_positive_int(k, "k")
        if k > self.n_features:
            raise ValueError(f"k={k} exceeds n_features={self.n_features}")
        return int(k), False

    def encode(self, X: Any, *, k: int | None = None, threads: int | None = None,
               device: str | None = None, allow_tf32: bool = False) -> SparseCodes:
        """Sparse codes of the rows of ``X``.

        Parameters
        ----------
        X : array-like (n, d)
            Any real dtype or memory order (converted to C-contiguous float32). GPU arrays
            (CuPy, ``__cuda_array_interface__``, CUDA DLPack such as PyTorch tensors; float32,
            bfloat16 or float16) are encoded on the GPU in place.
        k : int, optional
            Keep the top ``k`` per row instead of the default (``self.k`` for TopK, the learned
            threshold for BatchTopK).
        threads : int, optional
        device : None, "cpu", "cuda" or "cuda:N"
            None: where ``X`` is. "cuda" with a host ``X`` copies it over through pinned memory
            and returns host codes.
        allow_tf32 : bool
            GPU, float32 inputs: TF32 tensor cores for the product (faster, ~1e-3 relative error).

        Returns
        -------
        SparseCodes, or likeable.gpu.DeviceSparseCodes for GPU inputs
            CSR rows (feature ids increasing within each row), shape ``(n, n_features)``.
        """
        self._check_fitted()
        k_eff, use_threshold = self._select(k)

        def on_gpu():
            from ._gpu import encode as gpu_encode

            return gpu_encode.encode(self.weights_, X, k=k_eff, use_threshold=use_threshold,
                                     signed=bool(self.signed), allow_tf32=bool(allow_tf32))

        return dispatch(device, X, gpu=on_gpu, cpu=lambda: self._encode_cpu(X, k_eff, use_threshold, threads))

    def _encode_cpu(self, X: Any, k: int, use_threshold: bool, threads: int | None) -> SparseCodes:
        # NaN/Inf are checked by the core, in the hot tile
        X = as_float32_matrix(X, "X", n_cols=self.n_dims_, check_finite=False, owner="SparseEncoder")
        # codes (8 bytes per kept entry) plus the per-row top-K scratch held while encoding
        check_allocation(X.shape[0] * (k * 20 + 8), f"encoding {X.shape[0]} rows")
        out = _core.encoder_encode(
            X, self._W_encT, self._b_enc, self._b_dec, self._threshold, k, bool(self.signed),
            use_threshold, self._threads(threads))
        return SparseCodes(out.indptr, out.indices, out.values, out.shape)  # the core's own: kept, not copied

    def decode(self, codes: Any, *, threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Reconstruction ``codes @ W_dec + b_dec`` as float32 (n x d).

        ``codes`` is a :class:`SparseCodes` or any scipy.sparse matrix with ``n_features`` columns,
        or GPU codes (:class:`likeable.gpu.DeviceSparseCodes`, cupyx sparse), decoded on the GPU
        into a CuPy array; ``device="cuda"`` decodes host codes on the GPU and returns numpy.
        """
        self._check_fitted()

        def on_gpu():
            from ._gpu import encode as gpu_encode

            return gpu_encode.decode(self.weights_, codes)

        return dispatch(device, codes, gpu=on_gpu, cpu=lambda: self._decode_cpu(codes, threads))

    def _decode_cpu(self, codes: Any, threads: int | None) -> np.ndarray:
        codes = as_sparse_codes(codes, "codes", n_features=self.n_features)
        check_allocation(codes.shape[0] * self.n_dims_ * 4, f"decoding {codes.shape[0]} rows")
        return _core.encoder_decode(codes, self._W_dec, self._b_dec, self._threads(threads))

    # --- scikit-learn transformer ---------------------------------------------------------
    def transform(self, X: Any):
        """The codes of ``X`` as a ``scipy.sparse.csr_matrix`` (n x n_features, float32), for
        scikit-learn pipelines; :meth:`encode` returns the same rows as :class:`SparseCodes`."""
        return self.encode(X).to_scipy()

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any):
        """:meth:`fit` on ``X`` (``fit_params`` go to it), then :meth:`transform` ``X``."""
        return self.fit(X, y, **fit_params).transform(X)

    # --- health numbers -------------------------------------------------------------------
    def _raw_stats(self, X: np.ndarray, mean: np.ndarray, threads: int | None) -> "_core.ReconstructionStats":
        k_eff, use_threshold = self._select(None)
        return _core.encoder_reconstruction_stats(
            X, self._W_encT, self._b_enc, self._W_dec, self._b_dec, self._threshold,
            np.ascontiguousarray(mean, dtype=np.float64), k_eff, bool(self.signed), use_threshold,
            self._threads(threads))

    def stats(self, X: Any, *, threads: int | None = None) -> EncoderStats:
        """Normalized MSE, dead fraction and mean active features on ``X`` (one encode pass)."""
        self._check_fitted()
        X = as_float32_matrix(X, "X", n_cols=self.n_dims_, allow_empty=False)
        raw = self._raw_stats(X, X.mean(axis=0, dtype=np.float64), threads)
        dev = raw.squared_deviation
        nmse = raw.squared_error / dev if dev > 0 else (0.0 if raw.squared_error == 0 else math.inf)
        return EncoderStats(normalized_mse=float(nmse),
                            dead_fraction=float(np.mean(raw.fire_counts == 0)),
                            mean_active=raw.n_active / X.shape[0], n_rows=X.shape[0])

    def normalized_mse(self, X: Any, *, threads: int | None = None) -> float:
        """``sum ||x - decode(encode(x))||^2 / sum ||x - mean(X)||^2`` over the rows of ``X``."""
        return self.stats(X, threads=threads).normalized_mse

    def dead_fraction(self, X: Any, *, threads: int | None = None) -> float:
        """Fraction of features that fire on no row of ``X``."""
        return self.stats(X, threads=threads).dead_fraction

    # --- training -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None, epochs: int = 50,
            batch_size: int = 256, lr: float = 5e-4, patience: int = 3, progress: bool = True,
            threads: int | None = None) -> "SparseEncoder":
        """Train on the rows of ``X`` (normalized MSE, Adam, early stopping).

        The decoder starts as random unit rows and the encoder as its transpose; ``b_dec``
        starts at the per-dimension median. Each epoch visits the training rows in a seeded
        random order; after it, the validation normalized MSE decides early stopping, and the
        best epoch's weights are restored at the end.

        Parameters
        ----------
        X : array-like (n, d)
        y : ignored
        X_val : array-like (n_val, d), optional
            Validation rows. When None, a seeded 10 % of ``X`` is held out (at least one row;
            with fewer than 10 rows the training rows themselves are used).
        epochs, batch_size : int
        lr : float
            Adam learning rate.
        patience : int
            Stop after this many epochs without a better validation loss.
        progress : bool
            Show a tqdm bar over epochs.
        threads : int, optional

        Returns
        -------
        self
        """
        self._validate_params()
        X = as_float32_matrix(X, "X", allow_empty=False, min_cols=1)
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        patience = check_positive_int(patience, "patience")
        if not (isinstance(lr, numbers.Real) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        n, d = X.shape
        M = self.n_features
        rng = np.random.default_rng(self.seed)
        if X_val is None:
            if n >= 10:
                perm = rng.permutation(n)
                n_val = max(1, n // 10)
                X_val, X_train = X[np.sort(perm[:n_val])], X[np.sort(perm[n_val:])]
            else:
                X_val, X_train = X, X
        else:
            X_val = as_float32_matrix(X_val, "X_val", n_cols=d, allow_empty=False)
            X_train = X
        X_train = np.ascontiguousarray(X_train)
        n_train = X_train.shape[0]

        W_dec = rng.standard_normal((M, d)).astype(np.float32)
        W_dec /= np.maximum(np.linalg.norm(W_dec, axis=1, keepdims=True), 1e-12)
        W_encT = W_dec.copy()  # encoder = decoder^T at init
        b_enc = np.zeros(M, np.float32)
        b_dec = np.median(X_train, axis=0).astype(np.float32)
        threshold = np.zeros(M, np.float32) if self.kind == "batchtopk" else None

        mean = X_train.mean(axis=0, dtype=np.float64)
        norm = float(np.mean(np.sum((X_train.astype(np.float64) - mean) ** 2, axis=1)))
        if not norm > 0:
            norm = 1.0  # constant data: fall back to plain MSE
        aux_k = self.aux_k if self.aux_k is not None else min(M, max(self.k, d // 2))
        dead_after = self.dead_after if self.dead_after is not None else min(n_train, 100 * batch_size)
        n_threads = self._threads(threads)
        trainer = _core.SaeTrainer(
            n_dims=d, n_features=M, k=self.k, batch_topk=self.kind == "batchtopk",
            signed=bool(self.signed), prefixes=_resolve_prefixes(self.matryoshka, M), aux_k=aux_k,
            aux_coef=float(self.aux_coef), dead_after_rows=dead_after, lr=float(lr), threads=n_threads)

        self._W_encT, self._b_enc, self._W_dec, self._b_dec, self._threshold = (
            W_encT, b_enc, W_dec, b_dec, threshold)
        val_mean = mean  # one fixed reference keeps validation numbers comparable across epochs
        val_dev = float(np.sum((X_val.astype(np.float64) - val_mean) ** 2)) or 1.0
        best_val, best_state, best_epoch, since_best = math.inf, None, -1, 0
        history: list[dict] = []
        bar = _progress(range(epochs), progress, "fit")
        try:
            for epoch in bar:
                order = rng.permutation(n_train).astype(np.int64)
                step = trainer.run_epoch(W_encT, b_enc, W_dec, b_dec, threshold, X_train, order,
                                         batch_size, norm)
                val = self._raw_stats(X_val, val_mean, n_threads).squared_error / val_dev
                history.append({"epoch": epoch, "loss": step.loss, "aux_loss": step.aux_loss,
                                "val_normalized_mse": val, "dead_fraction": step.dead_fraction})
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{step.loss:.4f}", val=f"{val:.4f}")
                if val < best_val:
                    best_val, best_epoch, since_best = val, epoch, 0
                    best_state = tuple(None if a is None else a.copy()
                                       for a in (W_encT, b_enc, W_dec, b_dec, threshold))
                else:
                    since_best += 1
                    if since_best >= patience:
                        break
        finally:
            if hasattr(bar, "close"):
                bar.close()
        if best_state is not None:
            self._W_encT, self._b_enc, self._W_dec, self._b_dec, self._threshold = best_state
        self.history_ = history
        self.best_epoch_ = best_epoch
        if self.kind == "batchtopk":  # the running average of batch cut-offs lags: L0 = k on the training rows
            self.trained_threshold_ = float(self._threshold[0])
            self.calibrate_threshold(X_train, threads=n_threads)
        return self

    def calibrate_threshold(self, X: Any, *, l0: float | None = None, threads: int | None = None) -> float:
        """Set the BatchTopK threshold so the rows of ``X`` keep ``l0`` (default ``k``) features on
        average, exactly (see :func:`likeable._threshold.calibrated_threshold`); returns it."""
        self._check_fitted()
        if self.kind != "batchtopk":
            raise ValueError(f"only a BatchTopK encoder has a threshold to calibrate (kind={self.kind!r})")
        X = as_float32_matrix(X, "X", n_cols=self.n_dims_, allow_empty=False, owner="SparseEncoder")
        threshold = calibrated_threshold(lambda k: self._encode_cpu(X, k, False, threads), X.shape[0],
                                         self.n_features, self.k if l0 is None else l0, bool(self.signed))
        self._threshold = np.full(self.n_features, threshold, np.float32)
        return threshold

    # --- weights from elsewhere -------------------------------------------------------------
    @classmethod
    def from_weights(cls, W_enc: Any, b_enc: Any, W_dec: Any, b_dec: Any, *, k: int,
                     kind: str = "topk", signed: bool = False, threshold: Any = None,
                     matryoshka: Sequence[int] | None = None, **params: Any) -> "SparseEncoder":
        """Wrap weights trained elsewhere (sae_lens layout: W_enc d x M, W_dec M x d).

        ``threshold`` (M, or a scalar broadcast to M) is required for ``kind="batchtopk"``.
        """
        W_enc = as_float32_matrix(W_enc, "W_enc", allow_empty=False)
        d, M = W_enc.shape
        W_dec = as_float32_matrix(W_dec, "W_dec", n_cols=d, allow_empty=False)
        if W_dec.shape[0] != M:
            raise ValueError(f"W_dec has {W_dec.shape[0]} rows but W_enc has {M} columns")
        b_enc = _float_vector(b_enc, "b_enc", M)
        b_dec = _float_vector(b_dec, "b_dec", d)
        enc = cls(n_features=M, k=k, kind=kind, signed=signed, matryoshka=matryoshka, **params)
        if kind == "batchtopk":
            if threshold is None:
                raise ValueError("kind='batchtopk' needs a threshold (scalar or one per feature)")
            t = np.asarray(threshold, dtype=np.float32)
            threshold = _float_vector(np.full(M, t, np.float32) if t.ndim == 0 else t, "threshold", M)
        elif threshold is not None:
            raise ValueError("threshold is only used with kind='batchtopk'")
        enc._W_encT = np.ascontiguousarray(W_enc.T)
        enc._b_enc, enc._W_dec, enc._b_dec, enc._threshold = b_enc, W_dec, b_dec, threshold
        return enc

    # --- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """safetensors bytes: W_enc, b_enc, W_dec, b_dec (+ threshold) and JSON metadata."""
        self._check_fitted()
        tensors = {"W_enc": np.ascontiguousarray(self._W_encT.T), "b_enc": self._b_enc,
                   "W_dec": self._W_dec, "b_dec": self._b_dec}
        if self._threshold is not None:
            tensors["threshold"] = self._threshold
        meta = {"format": "likeable.SparseEncoder", "version": FORMAT_VERSION, "kind": self.kind,
                "k": int(self.k), "signed": bool(self.signed),
                "matryoshka": None if self.matryoshka is None else [int(p) for p in self.matryoshka]}
        return tensors_to_bytes(tensors, meta)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "SparseEncoder":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`."""
        # version-1 files from before checksums are still read (tests/data/encoder_v1.safetensors)
        tensors, meta = tensors_from_bytes(bytes(data), source, require_checksum=False)
        if meta.get("format") != "likeable.SparseEncoder":
            raise _core.FormatError(f"{source}: not a likeable SparseEncoder file")
        if meta.get("version") != FORMAT_VERSION:
            raise _core.FormatError(f"{source}: encoder format version {meta.get('version')!r} "
                                    f"is not supported (this likeable reads {FORMAT_VERSION})")
        missing = [n for n in ("W_enc", "b_enc", "W_dec", "b_dec") if n not in tensors]
        if missing:
            raise _core.FormatError(f"{source}: missing tensors {missing}")
        try:
            return cls.from_weights(tensors["W_enc"], tensors["b_enc"], tensors["W_dec"],
                                    tensors["b_dec"], k=meta["k"], kind=meta["kind"],
                                    signed=meta["signed"], threshold=tensors.get("threshold"),
                                    matryoshka=meta.get("matryoshka"))
        except (KeyError, ValueError, TypeError) as exc:
            raise _core.FormatError(f"{source}: inconsistent encoder file ({exc})") from None

    def save(self, path, format: str = "likeable") -> None:
        """Write the encoder atomically (temporary file, fsync, rename).

        ``format="likeable"``: one safetensors file. ``"sae_lens"``: a folder with ``cfg.json``
        and ``sae_weights.safetensors`` that sae_lens loads (``SAE.load_from_disk``; BatchTopK
        becomes a JumpReLU SAE). ``"sparsify"``: a folder with ``cfg.json`` and
        ``sae.safetensors`` (TopK only).
        """
        if format == "likeable":
            return super().save(path)
        self._check_fitted()
        from ._saelens import write_folder

        write_folder(self, fspath(path), format)

    @classmethod
    def load(cls, path) -> "SparseEncoder":
        """Read a file written by :meth:`save`, or an sae_lens or sparsify SAE folder.

        Folder SAEs encode as their library does: TopK as TopK, JumpReLU (and plain ReLU) by
        their thresholds (``kind="batchtopk"``); bf16/fp16 weights are read as float32.
        """
        path = fspath(path)
        if not os.path.isdir(path):
            return super().load(path)
        from ._saelens import read_folder

        weights = read_folder(path)
        try:
            return cls.from_weights(**weights)
        except (ValueError, TypeError) as exc:
            raise _core.FormatError(f"{path}: inconsistent SAE folder ({exc})") from None

    def __repr__(self) -> str:
        fitted = f", n_dims={self._W_dec.shape[1]}" if self._W_dec is not None else ", unfitted"
        extra = f", matryoshka={tuple(self.matryoshka)}" if self.matryoshka is not None else ""
        return (f"<likeable.SparseEncoder(n_features={self.n_features}, k={self.k}, "
                f"kind={self.kind!r}, signed={self.signed}{extra}{fitted})>")


def _resolve_prefixes(matryoshka: Sequence[int] | None, n_features: int) -> list[int]:
    """Strictly increasing prefix ends, ending at n_features."""
    if matryoshka is None:
        return [n_features]
    try:
        prefixes = [int(p) for p in matryoshka]
    except (TypeError, ValueError):
        raise TypeError(f"matryoshka must be a sequence of ints or None, got {matryoshka!r}") from None
    if any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in matryoshka):
        raise TypeError(f"matryoshka must hold ints, got {matryoshka!r}")
    if not prefixes or any(b <= a for a, b in zip(prefixes, prefixes[1:])) or prefixes[0] < 1:
        raise ValueError(f"matryoshka prefixes must be positive and strictly increasing, got {matryoshka!r}")
    if prefixes[-1] > n_features:
        raise ValueError(f"matryoshka prefix {prefixes[-1]} exceeds n_features={n_features}")
    if prefixes[-1] < n_features:
        prefixes.append(n_features)
    return prefixes


def _float_vector(v: Any, name: str, length: int) -> np.ndarray:
    arr = np.asarray(v)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != (length,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({length},)")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="epoch", leave=False)

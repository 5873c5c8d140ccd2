"""SparseIndex: top activations per feature and maximum inner product search over sparse codes."""
from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from . import _core
from ._gpu.device import dispatch
from ._memory import check_allocation
from ._persistence import Persistent
from ._validation import as_float32_matrix, check_positive_int, fspath, resolve_threads
from .sparse import SparseCodes, as_sparse_codes

__all__ = ["SparseIndex", "brute_force_search"]


class SparseIndex(Persistent):
    """Inverted index over sparse codes, exact or approximate (the Seismic recipe).

    Parameters
    ----------
    codes : SparseCodes or scipy.sparse matrix
        Rows to index (n_rows x n_features). Values may be signed.
    approximate : bool, default True
        ``False`` keeps every posting and answers exactly (scatter-accumulate, or a pass over the
        forward index for dense queries). ``True`` prunes posting lists to their entries of
        largest ``|x_j|``, groups them into clustered blocks with quantised summaries, and
        scans a block only when its summary bound can beat the current k-th score.
    n_postings : int, default 4000
        Mean posting list length (approximate mode): one threshold on ``|x_j|`` across all
        lists keeps ``n_postings * n_features`` entries, no list more than ``1.5 * n_postings``
        (Seismic's global pruning; its ``n_postings`` means the same).
    block_fraction : float, default 0.1
        Centroids per posting list as a fraction of its length (approximate mode). Clusters of
        one or two rows are dissolved into the others (Seismic's ``min_cluster_size=2``), so
        lists end up with fewer, larger blocks.
    summary_energy : float, default 0.4
        Fraction of each block summary's L1 mass kept (approximate mode; 1.0 keeps exact bounds
        up to u8 rounding, which rounds up).
    doc_cut : int, default 15
        Components of a row used when clustering it into a block.
    seed : int, default 0
        Seed for the choice of block centroids.
    threads : int or None
        Threads for the build and the default for ``search`` (None: ``LIKEABLE_NUM_THREADS`` or
        every core).

    Notes
    -----
    Exact mode stores values as float32 and returns exact float32 scores. Approximate mode
    re-scores candidates from a compact forward index (half the bytes: u16 feature ids when
    ``n_features <= 65536``, IEEE half values relative to a power-of-two scale per row), since
    re-scoring scattered rows is memory-bound: each stored value is within ``2**-11`` of its
    row's largest ``|x|`` (values under about ``2**-25`` of it read as 0), and so are the
    values ``top_activations`` returns for an approximate index. Small integers stay exact.
    The rows' records are stored in the order search is likely to read them (the rows of large
    blocks of common features together), so a visited block is mostly sequential reads.
    On x86-64 CPUs with AVX2 and F16C, re-scoring and block bounds use vector kernels chosen at
    run time; they differ from the scalar ones only in summation order (float32 rounding).
    Setting the environment variable ``LIKEABLE_NO_SIMD=1`` before likeable is imported forces
    the scalar kernels (of every compiled kernel, not only the index's).

    The index is immutable and every method is safe to call from many threads; searches release
    the GIL. Each searching thread caches scratch buffers (a float per row in exact mode, a
    float per feature and a bit per row in both) for its lifetime, so no query allocates; the
    memory guard (:func:`likeable.set_max_memory`) counts them with the results. Queries are
    checked (and copied) once per call; a query whose scores could overflow float32 (sum of
    ``|q_j|`` times the largest ``|value|`` indexed beyond ~8.5e37) is refused with
    ``ValueError`` on every path (exact, approximate, brute force), never answered with inf
    or NaN scores.

    The index is built from its codes, so it has no ``fit``: :meth:`get_params` reports the build
    parameters, and :meth:`set_params` changes only ``threads`` (rebuild to change the others).
    ``save``/``load``/``to_bytes``/``from_bytes`` and pickling write one file format.

    Examples
    --------
    >>> index = SparseIndex(codes, approximate=True)          # doctest: +SKIP
    >>> ids, scores = index.search(queries, k=10, query_cut=20, heap_factor=0.9)  # doctest: +SKIP
    """

    def __init__(self, codes: Any, *, approximate: bool = True, n_postings: int = 4000,
                 block_fraction: float = 0.1, summary_energy: float = 0.4, doc_cut: int = 15,
                 seed: int = 0, threads: int | None = None) -> None:
        codes = as_sparse_codes(codes, "codes")
        check_positive_int(n_postings, "n_postings")
        check_positive_int(doc_cut, "doc_cut")
        _check_fraction(block_fraction, "block_fraction")
        _check_fraction(summary_energy, "summary_energy")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.threads = threads
        self._core = _core.SparseIndexCore(codes, bool(approximate), int(n_postings),
                                           float(block_fraction), float(summary_energy), int(doc_cut),
                                           int(seed), resolve_threads(threads))

    @classmethod
    def _wrap(cls, core, threads=None) -> "SparseIndex":
        obj = cls.__new__(cls)
        obj._core = core
        obj.threads = threads
        return obj

    # --- queries ----------------------------------------------------------------------
    def search(self, queries: Any, k: int = 10, *, query_cut: int | None = None,
               heap_factor: float = 1.0, threads: int | None = None,
               device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows with the largest inner product with each query.

        Parameters
        ----------
        queries : SparseCodes, scipy.sparse matrix, or array-like (n_queries x n_features)
            Sparse codes (e.g. similar preference pairs) or dense weight vectors (e.g. a user's
            weights over every feature). A 1-D array is one dense query.
        k : int, default 10
        query_cut : int or None
            Approximate mode: visit the posting lists of only the ``query_cut`` components of
            largest ``|q_j|`` (None: all). Candidates are always re-scored with the full query.
        heap_factor : float, default 1.0
            Approximate mode: a block is scanned when its summary bound is at least the current
            k-th score times ``heap_factor`` (divided by it for a negative k-th score); below 1
            scans more blocks (higher recall), above 1 fewer.
        threads : int or None
            Threads for the batch (None: the index's ``threads``).
        device : None, "cpu", "cuda" or "cuda:N"
            Exact indexes only: score every row for a batch of queries on the GPU and select the
            top k there. None: the GPU when ``queries`` are in GPU memory (then the results are
            CuPy arrays); "cuda" with host queries returns numpy arrays.

        Returns
        -------
        ids : ndarray of int64, shape (n_queries, k)
            Row ids by descending score (ties: lower row id first), padded with -1.
        scores : ndarray of float32, shape (n_queries, k)
            Inner products, padded with -inf.

        Notes
        -----
        Dense queries are never left to block bounds, which cannot prune them (a summary keeps a
        block's largest components; a dense query weighs the rest too) and would return low
        recall silently. The rule, per query: the entries held by the columns of its non-zero
        features are counted; above half the index's entries (exact kind, any query) or above
        an eighth (approximate kind, queries given as a dense array), the query is scored
        against every row by the tiled top-k kernel, and ``query_cut``/``heap_factor`` do not
        apply. On an approximate index those scores use the stored (half-precision) values, so
        the answer is exact up to that rounding.
        """
        k = check_positive_int(k, "k")
        if query_cut is None:
            query_cut = 0
        else:
            query_cut = check_positive_int(query_cut, "query_cut")
        if isinstance(heap_factor, bool) or not isinstance(heap_factor, numbers.Real) \
                or not np.isfinite(heap_factor) or heap_factor <= 0:
            raise ValueError(f"heap_factor must be a positive number, got {heap_factor!r}")
        return dispatch(device, queries, gpu=lambda: self._search_gpu(queries, k),
                        cpu=lambda: self._search_cpu(queries, k, query_cut, heap_factor, threads))

    def _search_cpu(self, queries: Any, k: int, query_cut: int, heap_factor: float, threads: int | None):
        n_threads = resolve_threads(self.threads if threads is None else threads)
        dense, batch = _as_queries(queries, self.n_features)
        n_queries = batch.shape[0]
        check_allocation(n_queries * k * 12 + self._scratch_bytes(n_queries, k, n_threads),
                         f"search results for {n_queries} queries x k={k} (with the threads' scratch)")
        return self._core.search(batch, dense, k, query_cut, float(heap_factor), n_threads)

    def _scratch_bytes(self, n_queries: int, k: int, n_threads: int) -> int:
        """What the searching threads' scratch buffers can hold (kept per thread, see the class
        notes): per thread a float per feature, a heap of k, and a float (exact: plus a touched
        row id) or a bit (approximate) per row. Queries go in chunks of 4 per thread."""
        busy = min(n_threads, max(1, -(-n_queries // 4)))
        per_row = 8 if not self.approximate else 1 / 8
        return int(busy * (4 * self.n_features + 12 * k + per_row * self.n_rows))

    def _search_gpu(self, queries: Any, k: int):
        from ._gpu.arrays import DeviceSparseCodes, cached
        from ._gpu.scoring import exact_search

        if self.approximate:
            raise ValueError("GPU search is exact: build the index with approximate=False "
                             "(or search this approximate index on the CPU)")

        def forward_rows():
            rows = self._core.forward_csr()
            return DeviceSparseCodes.from_host(
                SparseCodes(rows.indptr, rows.indices, rows.values, rows.shape))

        rows = cached(self, (self._core,), ("forward",), forward_rows)
        return exact_search(rows, queries, k, n_features=self.n_features)

    def top_activations(self, feature: int, n: int = 20, sign: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Rows where ``feature`` is most positive (``sign=+1``) or most negative (``sign=-1``).

        Returns
        -------
        rows : ndarray of int64
            At most ``n`` row ids, strongest first (ties: lower row id); rows where the feature is
            zero or of the other sign are never listed.
        values : ndarray of float32
            The feature's value in each of those rows (approximate indexes: to the stored
            half precision, see the class notes).
        """
        if isinstance(feature, bool) or not isinstance(feature, numbers.Integral):
            raise TypeError(f"feature must be an integer, got {type(feature).__name__}")
        if not 0 <= feature < self.n_features:
            raise ValueError(f"feature {feature} is outside [0, {self.n_features})")
        n = check_positive_int(n, "n", minimum=0)
        if sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {sign!r}")
        return self._core.top_activations(int(feature), n, int(sign))

    # --- files ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename)."""
        self._core.save(fspath(path))

    @classmethod
    def load(cls, path, *, mmap: bool = False, verify: bool = True,
             threads: int | None = None) -> "SparseIndex":
        """Read an index written by :meth:`save`.

        By default the file is read into memory. ``mmap=True`` maps it read-only instead (arrays
        used in place: fast to open, pages shared between processes) under one contract: **the
        file is replaced only by rename**, never truncated or rewritten in place while mapped.
        Write the new index to a temporary file in the same folder and rename it over the path
        (``SparseIndex.save`` does exactly that; so do ``os.replace(tmp, path)`` and ``mv``, but
        not ``cp``, ``shutil.copyfile`` or ``open(path, "r+b")``); the loaded index keeps reading
        the old file until it is loaded again. Each call checks that the mapped file still has
        its size and modification time and raises :class:`likeable.FormatError` if not; but a
        file truncated *during* a call kills the process (SIGBUS), which no library can catch.

        ``verify`` checks every section's CRC32C. A truncated, corrupted or foreign file raises
        :class:`likeable.FormatError`; what is not a regular file (a FIFO, a device) ValueError.
        """
        path = fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path} is a folder, expected an index file")
        if threads is not None:
            resolve_threads(threads)
        return cls._wrap(_core.SparseIndexCore.load(path, bool(mmap), bool(verify)), threads)

    def to_bytes(self) -> bytes:
        """The file :meth:`save` would write, as bytes."""
        return self._core.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>", *, verify: bool = True,
                   threads: int | None = None) -> "SparseIndex":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        if threads is not None:
            resolve_threads(threads)
        return cls._wrap(_core.SparseIndexCore.from_bytes(bytes(data), bool(verify)), threads)

    # --- the estimator contract, where it applies ------------------------------------
    _BUILD_PARAMS = ("approximate", "n_postings", "block_fraction", "summary_energy", "doc_cut", "seed")
    _pickle_extras = ("threads",)

    def _is_fitted(self) -> bool:
        return True  # built in the constructor

    def _param_state(self) -> dict:
        return {}  # the file holds the build parameters; threads is kept beside it

    def _check_restored(self) -> None:
        if self.threads is not None:
            resolve_threads(self.threads)  # a pickled threads=10**6 is refused like a passed one

    def get_params(self, deep: bool = True) -> dict:
        """The build parameters (as stored in the index) and ``threads``."""
        stored = self._core.params
        out = {name: stored[name] for name in self._BUILD_PARAMS if name in stored}
        out["approximate"] = self.approximate
        out["threads"] = self.threads
        return out

    def set_params(self, **params) -> "SparseIndex":
        """Change ``threads`` (the default for :meth:`search`); returns self. The build parameters
        are fixed once the index is built: build a new index to change them."""
        fixed = sorted(set(params) - {"threads"})
        if fixed:
            known = set(self._BUILD_PARAMS)
            unknown = [p for p in fixed if p not in known]
            if unknown:
                raise ValueError(f"Invalid parameter {unknown[0]!r} for SparseIndex. Valid parameters are: "
                                 f"{sorted(known | {'threads'})!r}.")
            raise ValueError(f"{fixed[0]!r} is fixed when the index is built: build a new SparseIndex to change it")
        if "threads" in params:
            if params["threads"] is not None:
                resolve_threads(params["threads"])
            self.threads = params["threads"]
        return self

    # --- sizes --------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return self._core.n_rows

    @property
    def n_features(self) -> int:
        return self._core.n_features

    @property
    def shape(self) -> tuple[int, int]:
        return (self._core.n_rows, self._core.n_features)

    @property
    def nnz(self) -> int:
        return self._core.nnz

    @property
    def approximate(self) -> bool:
        return self._core.approximate

    @property
    def signed(self) -> bool:
        """Whether any indexed value is negative."""
        return self._core.signed

    @property
    def nbytes(self) -> int:
        """Size of the saved file in bytes."""
        return self._core.nbytes

    @property
    def n_blocks(self) -> int:
        return self._core.n_blocks

    @property
    def params(self) -> dict:
        return dict(self._core.params)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        mode = "approximate" if self.approximate else "exact"
        extra = ""
        if self.approximate:
            p = self._core.params
            extra = (f", n_postings={p['n_postings']}, block_fraction={p['block_fraction']}, "
                     f"summary_energy={p['summary_energy']}, n_blocks={self.n_blocks}")
        return (f"<likeable.SparseIndex({mode}, n_rows={self.n_rows}, n_features={self.n_features}, "
                f"nnz={self.nnz}{extra}, nbytes={self.nbytes})>")


def brute_force_search(codes: Any, queries: Any, k: int = 10, *,
                       threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reference search: float64 inner products of every row with every query (slow; for tests).

    Same outputs and tie rule as :meth:`SparseIndex.search`.
    """
    codes = as_sparse_codes(codes, "codes")
    k = check_positive_int(k, "k")
    dense, batch = _as_queries(queries, codes.n_features)
    return _core.brute_force_search(codes, batch, dense, k, resolve_threads(threads))


def _check_fraction(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def _as_queries(queries: Any, n_features: int) -> tuple[bool, Any]:
    """(dense?, batch): sparse inputs become SparseCodes, anything else a checked float32 matrix."""
    if isinstance(queries, SparseCodes):
        queries = as_sparse_codes(queries, "queries")
        if queries.n_features != n_features:
            raise ValueError(f"queries have {queries.n_features} features, the index has {n_features}")
        return False, queries
    import scipy.sparse as sp

    if sp.issparse(queries):
        return False, as_sparse_codes(queries, "queries", n_features)
    arr = np.asarray(queries) if not isinstance(queries, np.ndarray) else queries
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    return True, as_float32_matrix(arr, "queries", n_cols=n_features)

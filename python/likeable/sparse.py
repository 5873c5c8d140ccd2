"""SparseCodes: CSR rows of sparse features (indptr int64, indices int32, values float32)."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core


class SparseCodes:
    """Rows of sparse feature activations in CSR form.

    ``indptr`` (int64, n_rows + 1), ``indices`` (int32 feature ids), ``values`` (float32), and
    ``shape = (n_rows, n_features)``.

    The arrays are read-only. Construction checks them and keeps a snapshot: one copy owned by
    the compiled core, checked in the same pass (arrays that already are such a snapshot, like
    :meth:`SparseEncoder.encode`'s output or another SparseCodes' arrays, are kept as they are).
    Changing the arrays given to the constructor afterwards changes nothing here, and every
    call into the core reads these arrays in place with nothing left to check. ``validate=False``
    skips the check and the copy (the arrays are held as given, read-only here): the check
    then happens, on a private copy, at every call that reads them. Nothing a caller does to
    the arrays (or to ``shape``) can make the core read outside them: it raises ``ValueError``.
    """

    __slots__ = ("indptr", "indices", "values", "shape")

    def __init__(self, indptr: Any, indices: Any, values: Any, shape: tuple[int, int],
                 *, validate: bool = True) -> None:
        if len(shape) != 2:
            raise ValueError(f"shape must be (n_rows, n_features), got {shape!r}")
        n_rows, n_features = (int(s) for s in shape)
        if n_rows < 0 or n_features < 0:
            raise ValueError(f"shape must be non-negative, got {shape!r}")
        indptr = _id_array(indptr, np.int64, "indptr")
        indices = _id_array(indices, np.int32, "indices")
        values = np.ascontiguousarray(values, dtype=np.float32)
        if values.ndim != 1:
            raise ValueError(f"values must be 1-D, got shape {values.shape}")
        if indptr.shape[0] != n_rows + 1:
            raise ValueError(f"indptr has length {indptr.shape[0]}, expected n_rows + 1 = {n_rows + 1}")
        if validate:
            indptr, indices, values = _core.snapshot_codes(indptr, indices, values, (n_rows, n_features))
        else:
            indptr, indices, values = _read_only(indptr), _read_only(indices), _read_only(values)
        self.indptr, self.indices, self.values = indptr, indices, values
        self.shape = (n_rows, n_features)

    @classmethod
    def _of(cls, indptr, indices, values, shape) -> "SparseCodes":
        """Wraps arrays that are already a checked snapshot (no checks)."""
        codes = cls.__new__(cls)
        codes.indptr, codes.indices, codes.values, codes.shape = indptr, indices, values, shape
        return codes

    def _checked(self) -> "SparseCodes":
        """A private SparseCodes over a checked snapshot of these arrays, read once each: the same
        arrays when they already are one (O(1)), else a checked copy. What numpy and scipy code
        must read (scipy does not check ids, and reads outside its arrays when they are wrong)."""
        indptr, indices, values, shape = self.indptr, self.indices, self.values, self.shape
        indptr, indices, values = _core.snapshot_codes(indptr, indices, values, shape)
        return SparseCodes._of(indptr, indices, values, (int(shape[0]), int(shape[1])))

    # --- construction -------------------------------------------------------------
    @classmethod
    def from_scipy(cls, matrix: Any) -> "SparseCodes":
        """From any scipy.sparse matrix or array (converted to CSR; duplicates summed)."""
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise TypeError(f"expected a scipy.sparse matrix, got {type(matrix).__name__}")
        csr = sp.csr_matrix(matrix)
        if not csr.has_canonical_format:  # sum duplicates in a copy: the caller's matrix stays as it was
            csr = csr.copy()
            csr.sum_duplicates()
        if csr.shape[1] > np.iinfo(np.int32).max:
            raise ValueError(f"n_features={csr.shape[1]} exceeds the int32 feature ids")
        return cls(csr.indptr.astype(np.int64), csr.indices.astype(np.int32),
                   csr.data.astype(np.float32), csr.shape)

    @classmethod
    def from_dense(cls, dense: Any) -> "SparseCodes":
        """Keep the non-zeros of a dense 2-D array."""
        arr = np.asarray(dense, dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f"dense must be 2-D, got shape {arr.shape}")
        rows, cols = np.nonzero(arr)
        indptr = np.zeros(arr.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=arr.shape[0]), out=indptr[1:])
        return cls(indptr, cols.astype(np.int32), arr[rows, cols], arr.shape)

    @classmethod
    def empty(cls, n_rows: int, n_features: int) -> "SparseCodes":
        return cls(np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                   (n_rows, n_features))

    # --- views ----------------------------------------------------------------------
    def to_scipy(self):
        """A scipy.sparse.csr_matrix sharing these (read-only) arrays (indices widened only if
        scipy needs it); ``.copy()`` it to modify it in place."""
        import scipy.sparse as sp

        codes = self._checked()
        return sp.csr_matrix((codes.values, codes.indices, codes.indptr), shape=codes.shape)

    def to_dense(self) -> np.ndarray:
        codes = self._checked()
        out = np.zeros(codes.shape, dtype=np.float32)
        rows = np.repeat(np.arange(codes.shape[0]), np.diff(codes.indptr))
        out[rows, codes.indices] = codes.values
        return out

    @property
    def n_features(self) -> int:
        return self.shape[1]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row_nnz(self) -> np.ndarray:
        """Active features per row."""
        return np.diff(self.indptr)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, item) -> "SparseCodes":
        self = self._checked()
        if isinstance(item, numbers.Integral):
            n = self.shape[0]
            i = int(item) + n if item < 0 else int(item)
            if not 0 <= i < n:
                raise IndexError(f"row {item} out of range for {n} rows")
            item = slice(i, i + 1)
        if isinstance(item, slice):
            start, stop, step = item.indices(self.shape[0])
            if step == 1:
                stop = max(stop, start)
                lo, hi = self.indptr[start], self.indptr[stop]
                # indices and values stay views of the snapshot; only the new indptr is checked
                return SparseCodes(self.indptr[start:stop + 1] - lo, self.indices[lo:hi],
                                   self.values[lo:hi], (stop - start, self.shape[1]))
            item = np.arange(start, stop, step)
        rows = np.asarray(item)
        if rows.dtype == bool:
            if rows.shape != (self.shape[0],):
                raise IndexError(f"boolean mask has shape {rows.shape}, expected ({self.shape[0]},)")
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or not (np.issubdtype(rows.dtype, np.integer) or rows.size == 0):
            raise IndexError("rows must be an int, a slice, a 1-D integer array or a boolean mask")
        rows = rows.astype(np.int64)
        n = self.shape[0]
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row ids out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        return SparseCodes.from_scipy(self.to_scipy()[rows]) if rows.size else SparseCodes.empty(0, self.shape[1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseCodes):
            return NotImplemented
        return (self.shape == other.shape and np.array_equal(self.indptr, other.indptr)
                and np.array_equal(self.indices, other.indices)
                and np.array_equal(self.values, other.values))

    __hash__ = None  # the attributes can be replaced

    def __repr__(self) -> str:
        mean = self.nnz / self.shape[0] if self.shape[0] else 0.0
        return (f"<likeable.SparseCodes(n_rows={self.shape[0]}, n_features={self.shape[1]}, "
                f"nnz={self.nnz}, mean_active={mean:.2f})>")

    def __getstate__(self):
        return {"indptr": self.indptr, "indices": self.indices, "values": self.values, "shape": self.shape}

    def __setstate__(self, state):
        """Checked like construction: a pickle is as untrusted as any other input."""
        if not isinstance(state, dict) or set(state) != set(self.__slots__):
            raise ValueError(f"not a SparseCodes pickle state (keys {sorted(state) if isinstance(state, dict) else state!r})")
        SparseCodes.__init__(self, state["indptr"], state["indices"], state["values"], state["shape"])


def as_sparse_codes(obj: Any, name: str = "codes", n_features: int | None = None) -> SparseCodes:
    """SparseCodes or any scipy.sparse matrix as a checked snapshot (a private SparseCodes);
    check the feature count."""
    if isinstance(obj, SparseCodes):
        codes = obj._checked()  # private: replacing obj's attributes later does not reach it
    else:
        import scipy.sparse as sp

        if sp.issparse(obj):
            codes = SparseCodes.from_scipy(obj)
        else:
            raise TypeError(f"{name} must be likeable.SparseCodes or a scipy.sparse matrix, "
                            f"got {type(obj).__name__}")
    if n_features is not None and codes.shape[1] != n_features:
        raise ValueError(f"{name} has {codes.shape[1]} features, expected {n_features}")
    return codes


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


def _id_array(arr: Any, dtype, name: str) -> np.ndarray:
    """Integer id arrays are converted only when every value survives the cast."""
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == dtype:
        return np.ascontiguousarray(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    info = np.iinfo(dtype)
    if a.size and (a.min() < info.min or a.max() > info.max):
        raise ValueError(f"{name} has values outside the {np.dtype(dtype).name} range")
    return np.ascontiguousarray(a, dtype=dtype)

import types

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def random_codes(rng, n_rows, n_features, density=0.2):
    m = sp.random(n_rows, n_features, density=density, format="csr", dtype=np.float32, random_state=rng)
    return lk.SparseCodes.from_scipy(m), m


def test_round_trip_with_scipy(rng):
    codes, m = random_codes(rng, 37, 19)
    assert codes.indptr.dtype == np.int64 and codes.indices.dtype == np.int32
    assert codes.values.dtype == np.float32 and codes.shape == (37, 19) and len(codes) == 37
    np.testing.assert_array_equal(codes.to_scipy().toarray(), m.toarray())
    np.testing.assert_array_equal(codes.to_dense(), m.toarray())
    np.testing.assert_array_equal(lk.SparseCodes.from_dense(m.toarray()).to_dense(), m.toarray())


@pytest.mark.parametrize("item", [slice(3, 9), slice(0, 0), slice(-5, None), slice(0, 37, 3), 4, -1,
                                  [5, 2, 5], np.arange(37) % 2 == 0])
def test_row_selection_matches_scipy(rng, item):
    codes, m = random_codes(rng, 37, 19)
    expected = m[item] if not isinstance(item, int) else m[[item]]
    np.testing.assert_array_equal(codes[item].to_dense(), expected.toarray())


def test_empty_and_one_row(rng):
    empty = lk.SparseCodes.empty(0, 8)
    assert len(empty) == 0 and empty.nnz == 0 and empty.to_dense().shape == (0, 8)
    one, m = random_codes(rng, 1, 8, density=0.5)
    np.testing.assert_array_equal(one.to_dense(), m.toarray())


@pytest.mark.parametrize("indptr, indices, values, shape, error", [
    ([0, 1], [8], [1.0], (1, 8), ValueError),              # feature id beyond the dictionary
    ([0, 1], [-1], [1.0], (1, 8), ValueError),             # negative feature id
    ([0, 2, 1], [0, 1], [1.0, 1.0], (2, 8), ValueError),   # indptr decreasing
    ([1, 1], [0], [1.0], (1, 8), ValueError),              # indptr[0] != 0
    ([0, 1], [0], [np.nan], (1, 8), ValueError),           # NaN value
    ([0, 1], [0.5], [1.0], (1, 8), TypeError),             # float ids
    ([0, 1, 1], [0], [1.0], (1, 8), ValueError),           # indptr length
])
def test_bad_csr_is_refused(indptr, indices, values, shape, error):
    with pytest.raises(error):
        lk.SparseCodes(np.array(indptr), np.array(indices), np.array(values), shape)


def test_threads_resolution(monkeypatch):
    assert lk.num_threads(3) == 3
    monkeypatch.setenv("LIKEABLE_NUM_THREADS", "5")
    assert lk.num_threads() == 5
    with pytest.raises(ValueError):
        lk.num_threads(0)


def test_format_error_is_a_value_error():
    assert issubclass(lk.FormatError, ValueError)


def test_arrays_with_unpickled_dtypes_are_accepted(rng):
    """Arrays that crossed a process boundary (Ray, multiprocessing) carry equal, not identical, dtypes."""
    import pickle

    codes, m = random_codes(rng, 6, 9)
    moved = lk.SparseCodes(*(np.array(a, dtype=pickle.loads(pickle.dumps(a.dtype)))
                             for a in (codes.indptr, codes.indices, codes.values)), codes.shape)
    assert moved == codes
    index = lk.SparseIndex(moved, approximate=False)
    np.testing.assert_array_equal(index.search(moved, k=2)[0], lk.SparseIndex(codes, approximate=False).search(codes, k=2)[0])
    swapped = types.SimpleNamespace(indptr=codes.indptr.astype(">i8"), indices=codes.indices,
                                    values=codes.values, shape=codes.shape)
    with pytest.raises(TypeError):  # a different byte order is still refused, not silently misread
        lk._core.validate_csr(swapped)

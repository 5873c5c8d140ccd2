"""SparseIndex files: save, load, memory-map, bytes and pickle; damage raises FormatError; files of
every earlier version still load and search as recorded (tests/data)."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk
from index_cases import (CURRENT_INDEX_VERSION, DATA, clustered_codes, file_version, random_codes, section_elem_sizes,
                         section_span)


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("n_rows", [0, 5])
def test_indexes_without_postings_save_and_load(tmp_path, approximate, n_rows):
    # No rows, or rows that are all zero: every array that holds postings is empty, and an
    # empty posting array must still be written with the type the loader expects.
    index = lk.SparseIndex(lk.SparseCodes.empty(n_rows, 8), approximate=approximate)
    index.save(tmp_path / "empty.sidx")
    loaded = lk.SparseIndex.load(tmp_path / "empty.sidx")
    assert loaded.to_bytes() == index.to_bytes() and loaded.n_rows == n_rows
    ids, scores = loaded.search(np.ones((2, 8), np.float32), k=3)
    assert (ids == index.search(np.ones((2, 8), np.float32), k=3)[0]).all()


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(rng, tmp_path, approximate, mmap):
    codes, _ = clustered_codes(rng, 300, 40, signed=True)
    q = clustered_codes(rng, 10, 40, signed=True)[1]
    index = lk.SparseIndex(codes, approximate=approximate, n_postings=20)
    path = tmp_path / "index.sidx"
    index.save(path)
    index.save(path)  # overwriting is atomic and leaves no temporary files behind
    assert os.listdir(tmp_path) == ["index.sidx"]
    assert path.stat().st_size == index.nbytes
    loaded = lk.SparseIndex.load(path, mmap=mmap)
    assert repr(loaded) == repr(index)
    for a, b in zip(index.search(q, k=5, query_cut=3), loaded.search(q, k=5, query_cut=3)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(index.top_activations(3, 5)[0], loaded.top_activations(3, 5)[0])
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.search(q, k=5)[0], index.search(q, k=5)[0])
    assert lk.SparseIndex.from_bytes(index.to_bytes()).to_bytes() == index.to_bytes()


def test_damaged_files_raise_format_error(rng, tmp_path):
    codes, _ = random_codes(rng, 50, 10, density=0.3)
    data = lk.SparseIndex(codes).to_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "header only": data[:64],
        "empty": b"",
        "foreign": b"PK\x03\x04" + bytes(200),
        "padded": data + b"\0" * 64,
    }
    flipped = bytearray(data)
    flipped[-70] ^= 0x40  # a payload byte: caught by the section checksum
    cases["corrupted payload"] = bytes(flipped)
    flipped = bytearray(data)
    flipped[70] ^= 0x01  # the section table
    cases["corrupted table"] = bytes(flipped)
    for name, blob in cases.items():
        path = tmp_path / f"{name}.sidx"
        path.write_bytes(blob)
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.load(path)
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.from_bytes(blob)
    with pytest.raises(FileNotFoundError):
        lk.SparseIndex.load(tmp_path / "missing.sidx")
    with pytest.raises(IsADirectoryError):
        lk.SparseIndex.load(tmp_path)
    assert issubclass(lk.FormatError, ValueError)


def test_checksum_is_standard_crc32c(kernel_path):
    # The check value of CRC-32C (Castagnoli), and lengths around the 8-byte hardware stride, with
    # the SSE4.2 instructions and with the table.
    assert lk._core._crc32c(b"123456789") == 0xE3069283
    assert lk._core._crc32c(b"") == 0
    import zlib  # zlib's CRC-32 uses another polynomial: the two must differ
    assert lk._core._crc32c(b"likeable") != zlib.crc32(b"likeable")
    assert len({lk._core._crc32c(bytes(n)) for n in range(1, 20)}) == 19


def test_version_1_file_still_loads():
    # A tiny index saved by format version 1 (tests/data/make_index_v1.py); never regenerate it.
    index = lk.SparseIndex.load(DATA / "index_v1.sidx")
    expected = np.load(DATA / "index_v1_expected.npz")
    ids, scores = index.search(lk.SparseCodes(expected["q_indptr"], expected["q_indices"],
                                              expected["q_values"], (3, index.n_features)), k=4)
    np.testing.assert_array_equal(ids, expected["ids"])
    np.testing.assert_array_equal(scores, expected["scores"])


@pytest.mark.parametrize("name", ["signed", "unsigned"])
@pytest.mark.parametrize("version", [2, 3, 4])
def test_older_approximate_files_still_load_and_search_identically(tmp_path, version, name):
    # Approximate indexes saved by format versions 2, 3 and 4 (tests/data/make_index_v{2,3,4}.py, each
    # written before the next version existed; never regenerate them). Version 2: postings were
    # row ids beside a separate compact forward index; version 3: records in row order. Loading
    # converts them bit for bit (they keep their blocks, so they search exactly as when saved)
    # and re-saving writes the current version, which loads as the same index. A fresh build
    # prunes the same postings and stores the same values (its blocks differ since small
    # clusters are dissolved, index round 6).
    expected = np.load(DATA / f"index_v{version}_{name}_expected.npz")
    old = lk.SparseIndex.load(DATA / f"index_v{version}_{name}.sidx")
    queries = lk.SparseCodes(expected["q_indptr"], expected["q_indices"], expected["q_values"],
                             (len(expected["q_indptr"]) - 1, old.n_features))
    rebuilt = lk.SparseIndex(lk.SparseCodes.from_dense(expected["dense"]), n_postings=20, block_fraction=0.3)
    old.save(tmp_path / "resaved.sidx")
    resaved = lk.SparseIndex.load(tmp_path / "resaved.sidx")
    assert file_version(resaved.to_bytes()) == CURRENT_INDEX_VERSION
    assert resaved.to_bytes() == old.to_bytes()
    assert old._core.n_postings_stored == rebuilt._core.n_postings_stored
    for index in (old, resaved):
        ids, scores = index.search(queries, k=5, query_cut=3, heap_factor=0.9)
        np.testing.assert_array_equal(ids, expected["ids"])
        np.testing.assert_array_equal(scores, expected["scores"])
    for feature in range(old.n_features):
        for sign in (1, -1):
            for a, b in zip(old.top_activations(feature, 10, sign=sign), rebuilt.top_activations(feature, 10, sign=sign)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("section,at,value", [
    ("post_loc", 1, 0x12),   # a posting that no longer points at a record
    ("post_loc", 0, 0x01),   # or names a wrong length
    ("fwd_rows", 0, 0x05),   # a record with another row's id
    ("fwd_rows", 7, 0x80),   # a row scale that is not a positive finite float
    ("fwd_rows", 9, 0xff),   # a feature id past n_features
    ("row_unit", 0, 0x08),   # a row whose record is not where row_unit says
    ("row_unit", 7, 0x40),   # or lies past the end of fwd_rows
])
def test_structurally_damaged_records_are_format_errors(rng, tmp_path, section, at, value):
    # Without checksum verification, the structure checks alone must refuse a file whose
    # postings or records could make search read outside its arrays.
    codes, _ = random_codes(rng, 60, 12, density=0.4, integer=True)
    data = bytearray(lk.SparseIndex(codes, n_postings=8).to_bytes())
    offset, _ = section_span(bytes(data), section)
    data[offset + at] ^= value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="record|post_loc|outside"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("section,at,value", [
    ("sum_bits", 0, 0x01),             # one zero too many or too few in a list's bit vector
    ("sum_bits", 9, 0x10),
    ("sum_entries", 0, 0x80),          # an entry naming a block outside its chunk
    ("sum_list_entry_ptr", 8, 0x01),   # a list's entries that do not match its bits
    ("sum_list_word_ptr", 8, 0x01),    # a list's bit vector of the wrong length
])
def test_damaged_summaries_by_feature_are_format_errors(rng, tmp_path, signed, section, at, value):
    # Format 6's summaries by feature (chosen here because they take fewer bytes): with no
    # checksum verification, the loader's checks alone refuse any section that could make search
    # read outside the entries or bits.
    codes, _ = random_codes(rng, 400, 16, density=0.5, signed=signed, integer=True)
    index = lk.SparseIndex(codes, n_postings=100)
    data = bytearray(index.to_bytes())
    offset, _ = section_span(bytes(data), section)  # the section exists: summaries are by feature
    assert lk.SparseIndex.from_bytes(bytes(data), verify=False).to_bytes() == bytes(data)
    data[offset + at] ^= value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="sum_|summaries"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)
    with pytest.raises(lk.FormatError):
        lk.SparseIndex.load(tmp_path / "bad.sidx")  # and the checksum catches it too


@pytest.mark.parametrize("name", ["signed", "unsigned"])
def test_format_5_summaries_by_feature_still_load_and_search_identically(tmp_path, name):
    # Format 5 kept summaries by feature in chunks of 256 blocks with a bit vector each; format 6
    # groups them per list. tests/data/make_index_v5.py (never regenerate) wrote these files with
    # feature 0's list in two chunks: loading regroups the same entries, so search answers as when
    # saved, and re-saving writes format 6, which loads as the same index.
    expected = np.load(DATA / f"index_v5_{name}_expected.npz")
    old = lk.SparseIndex.load(DATA / f"index_v5_{name}.sidx")
    raw = (DATA / f"index_v5_{name}.sidx").read_bytes()
    assert file_version(raw) == 5
    offset, length = section_span(raw, "list_block_ptr")
    assert np.diff(np.frombuffer(raw[offset:offset + length], np.int64))[0] > 256  # two chunks
    queries = lk.SparseCodes(expected["q_indptr"], expected["q_indices"], expected["q_values"],
                             (len(expected["q_indptr"]) - 1, old.n_features))
    old.save(tmp_path / "resaved.sidx")
    resaved = lk.SparseIndex.load(tmp_path / "resaved.sidx")
    assert file_version(resaved.to_bytes()) == CURRENT_INDEX_VERSION
    assert resaved.to_bytes() == old.to_bytes()
    codes = lk.SparseCodes(expected["indptr"], expected["indices"], expected["values"], (old.n_rows, old.n_features))
    rebuilt = lk.SparseIndex(codes, n_postings=old.n_rows, block_fraction=0.3)  # same blocks: same answers
    assert rebuilt.to_bytes() == old.to_bytes()
    for index in (old, resaved, rebuilt):
        for query_cut, heap_factor in [(3, 0.9)]:
            ids, scores = index.search(queries, k=5, query_cut=query_cut, heap_factor=heap_factor)
            np.testing.assert_array_equal(ids, expected["ids"])
            np.testing.assert_array_equal(scores, expected["scores"])


@pytest.mark.parametrize("section,at,value", [
    ("sum_entries", 3 * 200, 0x80),   # entry 200, feature 0 in list 0's second chunk (54 blocks)
    ("sum_bits", 4, 0x01),            # a zero too many or too few, two chunks to a feature
])
def test_damaged_summaries_of_lists_in_two_chunks_are_format_errors(tmp_path, section, at, value):
    data = bytearray(lk.SparseIndex.load(DATA / "index_v5_signed.sidx").to_bytes())  # format 6
    offset, _ = section_span(bytes(data), section)
    data[offset + at] ^= value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="summaries"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)


@pytest.mark.parametrize("section,at,value", [
    ("sum_bits", 0, 0x01),             # one zero too many or too few in a chunk's bit vector
    ("sum_bits", 70, 0x10),
    ("sum_entries", -3, 0x80),         # the last list's last entry naming a block outside its chunk
    ("sum_chunk_entry_ptr", 8, 0x01),  # a chunk's entries that do not match its bits
    ("sum_chunk_word_ptr", 8, 0x01),   # a chunk's bit vector of the wrong length
    ("sum_list_chunk_ptr", 8, 0x02),   # a list with the wrong number of chunks
])
def test_damaged_format_5_summaries_are_format_errors(tmp_path, section, at, value):
    data = bytearray((DATA / "index_v5_signed.sidx").read_bytes())
    offset, length = section_span(bytes(data), section)
    data[offset + at % length] ^= value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="sum_|summaries"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("section", ["block_hi_scale", "block_lo_scale"])
@pytest.mark.parametrize("value", [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\xbf", b"\x00\x00\x00\x00"])  # NaN, -1, 0
def test_bad_block_scales_under_summaries_by_feature_are_format_errors(rng, tmp_path, signed, section, value):
    if section == "block_lo_scale" and not signed:
        pytest.skip("unsigned indexes store no lo scales")
    codes, _ = random_codes(rng, 400, 16, density=0.5, signed=signed, integer=True)
    data = bytearray(lk.SparseIndex(codes, n_postings=100).to_bytes())
    section_span(bytes(data), "sum_bits")  # summaries by feature
    offset, length = section_span(bytes(data), section)
    scales = np.frombuffer(bytes(data[offset:offset + length]), np.float32)
    at = offset + 4 * int(np.argmax(scales > 0))  # a block with non-zero entries has a scale > 0
    data[at:at + 4] = value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="scale"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)


def test_clusters_of_one_or_two_rows_are_dissolved(rng):
    # Seismic's min_cluster_size (2): with block_fraction 0.5 most random centroids attract one
    # or two rows; those clusters are dissolved into the others. Only a list's leftover block
    # (rows meeting no centroid), or a list whose clusters are all that small, may keep one.
    codes, _ = random_codes(rng, 400, 16, density=0.5)
    index = lk.SparseIndex(codes, n_postings=100, block_fraction=0.5)
    lengths = index._core.block_lengths()
    assert lengths.sum() == index._core.n_postings_stored and len(lengths) == index.n_blocks
    assert (lengths <= 2).sum() <= index.n_features
    assert index.n_blocks < 0.5 * index._core.n_postings_stored / 2  # far fewer than 0.5 per posting


def test_saved_files_are_the_current_version(rng):
    codes, _ = random_codes(rng, 50, 10, density=0.3)
    for approximate in (False, True):
        assert file_version(lk.SparseIndex(codes, approximate=approximate).to_bytes()) == CURRENT_INDEX_VERSION


def test_wide_ids_and_long_rows_use_64_bit_postings(rng):
    # n_features > 65536 stores feature ids as two u16 units per entry, and a row of 2^16+
    # entries needs 17 length bits, which with the record offset no longer fit a u32 posting.
    # The long row's small values fall under the global pruning threshold (a row in 66k
    # posting lists would put its features in 66k block summaries), so it lives in the forward
    # index only and is read back through top_activations' full scan.
    n_features, n_rows = 70_000, 200
    rows = [np.zeros(66_000, np.int64)]
    cols = [rng.choice(n_features, 66_000, replace=False)]
    vals = [np.full(66_000, 0.5, np.float32)]
    for r in range(1, n_rows):
        rows.append(np.full(400, r))
        cols.append(rng.choice(n_features, 400, replace=False))
        vals.append(rng.integers(1, 4, 400).astype(np.float32))
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_rows, n_features), dtype=np.float32)
    dense = m.toarray()
    index = lk.SparseIndex(lk.SparseCodes.from_scipy(m), n_postings=1)
    assert section_elem_sizes(index.to_bytes())["post_loc"] == 8
    q = np.zeros((4, n_features), np.float32)
    q[:, cols[1][:30]] = rng.integers(1, 3, (4, 30))
    ids, scores = index.search(q, k=5)
    assert (ids >= 1).all()  # the long row is in no posting list
    exact = q.astype(np.float64) @ dense.T.astype(np.float64)
    np.testing.assert_array_equal(scores, np.take_along_axis(exact, ids, axis=1))  # integers: exact
    assert (ids[:, 0] == 1).all()
    only_long = np.setdiff1d(cols[0], np.concatenate(cols[1:]))[:3]
    for feature in only_long:
        got_rows, got_values = index.top_activations(int(feature), n=3)
        np.testing.assert_array_equal(got_rows, [0])
        np.testing.assert_array_equal(got_values, [0.5])
    loaded = lk.SparseIndex.from_bytes(index.to_bytes())
    np.testing.assert_array_equal(loaded.search(q, k=5)[0], ids)
    small = lk.SparseIndex(lk.SparseCodes.from_dense(dense[1:]), n_postings=1)
    assert section_elem_sizes(small.to_bytes())["post_loc"] == 4

"""Index files that change under a memory map, and crafted files with valid checksums whose
values search would trust (issue 15, items 2 and 6). What crashed before runs in a child process."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import likeable as lk
from index_cases import edit_section, random_codes

BUILD = """
import os, shutil, time
import numpy as np, scipy.sparse as sp, likeable as lk
codes = lk.SparseCodes.from_scipy(sp.random(3000, 40, density=0.2, format="csr", random_state=0, dtype=np.float32))
other = lk.SparseCodes.from_scipy(sp.random(900, 40, density=0.2, format="csr", random_state=1, dtype=np.float32))
path = os.path.join({folder!r}, "index.sidx")
lk.SparseIndex(codes, approximate=False).save(path)
queries = codes[:50]
"""


def test_loading_reads_into_memory_by_default(isolated, tmp_path):
    # Before: load mapped the file by default, and truncating it made the next search die of SIGBUS.
    output = isolated.survives(BUILD.format(folder=str(tmp_path)) + """
index = lk.SparseIndex.load(path)
expected = index.search(queries, k=5)
os.truncate(path, 100)
got = index.search(queries, k=5)
print("SAME" if all(np.array_equal(a, b) for a, b in zip(got, expected)) else "DIFFERENT")
print("SURVIVED")
""")
    assert "SAME" in output


@pytest.mark.parametrize("change", ["truncate", "copy over", "write in place"])
def test_a_mapped_file_changed_in_place_fails_cleanly(isolated, tmp_path, change):
    # Before: truncation gave SIGBUS, overwriting in place made search follow garbage offsets.
    edit = {
        "truncate": "os.truncate(path, 4096)",
        "copy over": "lk.SparseIndex(other, approximate=False).save(path + '.new'); shutil.copyfile(path + '.new', path)",
        "write in place": "fh = open(path, 'r+b'); fh.seek(2000); fh.write(os.urandom(3000)); fh.close()",
    }[change]
    output = isolated.survives(BUILD.format(folder=str(tmp_path)) + f"""
index = lk.SparseIndex.load(path, mmap=True)
index.search(queries, k=5)
time.sleep(0.05)  # past the file system's timestamp granularity
{edit}
for name, call in [("search", lambda: index.search(queries, k=5)), ("top_activations", lambda: index.top_activations(3)),
                   ("nnz", lambda: index.nnz), ("to_bytes", lambda: index.to_bytes())]:
    try:
        call()
        print("RETURNED", name)
    except lk.FormatError as exc:
        print("REFUSED", name, exc)
print("SURVIVED")
""")
    assert output.count("REFUSED") == 4 and "renaming" in output and "RETURNED" not in output, output


def test_a_mapped_file_replaced_by_rename_keeps_serving_the_old_one(tmp_path, rng):
    codes, dense = random_codes(rng, 200, 30, density=0.2)
    newer, _ = random_codes(rng, 50, 30, density=0.2)
    path = tmp_path / "index.sidx"
    lk.SparseIndex(codes, approximate=False).save(path)
    mapped = lk.SparseIndex.load(path, mmap=True)
    expected = mapped.search(codes[:10], k=4)
    time.sleep(0.05)
    lk.SparseIndex(newer, approximate=False).save(path)  # temporary file + rename: the contract
    for got, want in zip(mapped.search(codes[:10], k=4), expected):
        np.testing.assert_array_equal(got, want)
    assert mapped.n_rows == 200 and lk.SparseIndex.load(path, mmap=True).n_rows == 50
    tmp = tmp_path / "next.sidx"
    lk.SparseIndex(codes, approximate=False).save(tmp)
    os.replace(tmp, path)
    assert mapped.search(codes[:10], k=4)[0].shape == (10, 4)


# --- crafted files with valid checksums -------------------------------------------------------
def _index_bytes(rng, approximate, signed=True):
    codes, _ = random_codes(rng, 120, 16, density=0.3, signed=signed)
    return lk.SparseIndex(codes, approximate=approximate, n_postings=20).to_bytes()


def _first_half_of_row0(data):
    """(unit offset of row 0's first half value) in fwd_rows, from fwd_indptr and row_unit."""
    from index_cases import section_span

    def section(name, dtype):
        offset, length = section_span(data, name)
        return np.frombuffer(data, dtype=dtype, count=length // np.dtype(dtype).itemsize, offset=offset)

    indptr, row_unit = section("fwd_indptr", np.int64), section("row_unit", np.int64)
    length = int(indptr[1] - indptr[0])
    assert length > 0
    return int(row_unit[0]) + 4 + length  # header (4 units), u16 ids (16 features), then halves


@pytest.mark.parametrize("case", ["exact NaN value", "exact NaN column value", "approximate NaN half",
                                  "zero block scale", "NaN block scale", "cleared signed flag (exact)",
                                  "cleared signed flag (approximate)", "huge block count", "odd flag",
                                  "NaN build parameter"])
def test_crafted_values_are_format_errors(rng, case):
    if case == "exact NaN value":
        data = edit_section(_index_bytes(rng, False), "fwd_values", np.float32, lambda a: a.__setitem__(3, np.nan))
    elif case == "exact NaN column value":
        data = edit_section(_index_bytes(rng, False), "col_values", np.float32, lambda a: a.__setitem__(0, np.inf))
    elif case == "approximate NaN half":
        data = _index_bytes(rng, True)
        at = _first_half_of_row0(data)
        data = edit_section(data, "fwd_rows", np.uint16, lambda a: a.__setitem__(at, 0x7E00))
    elif case == "zero block scale":
        # every scale 0 while the summaries keep their entries: bounds of 0, blocks wrongly skipped
        data = edit_section(_index_bytes(rng, True), "block_hi_scale", np.float32,
                            lambda a: a.__setitem__(slice(None), 0.0))
    elif case == "NaN block scale":
        data = edit_section(_index_bytes(rng, True), "block_lo_scale", np.float32, lambda a: a.__setitem__(0, np.nan))
    elif case == "cleared signed flag (exact)":
        data = edit_section(_index_bytes(rng, False), "meta", np.int64, lambda a: a.__setitem__(3, 0))
    elif case == "cleared signed flag (approximate)":
        data = edit_section(_index_bytes(rng, True), "meta", np.int64, lambda a: a.__setitem__(3, 0))
    elif case == "huge block count":  # before: n_blocks + 1 overflowed (UBSan) and surfaced as MemoryError
        data = edit_section(_index_bytes(rng, True), "meta", np.int64, lambda a: a.__setitem__(4, 2**63 - 1))
    elif case == "odd flag":
        data = edit_section(_index_bytes(rng, True), "meta", np.int64, lambda a: a.__setitem__(2, 7))
    else:
        data = edit_section(_index_bytes(rng, True), "params", np.float64, lambda a: a.__setitem__(1, np.nan))
    with pytest.raises(lk.FormatError) as info:
        lk.SparseIndex.from_bytes(data)
    message = str(info.value)
    assert message.startswith("<bytes>:"), message
    assert any(word in message for word in ("fwd_values", "col_values", "row 0", "block_hi_scale", "block_lo_scale",
                                            "unsigned", "blocks", "flags", "parameters")), message


def test_crafted_files_are_refused_without_checksums_too(rng, tmp_path):
    data = edit_section(_index_bytes(rng, False), "fwd_values", np.float32, lambda a: a.__setitem__(0, np.nan))
    (tmp_path / "bad.sidx").write_bytes(data)
    for mmap in (False, True):
        with pytest.raises(lk.FormatError, match="fwd_values"):
            lk.SparseIndex.load(tmp_path / "bad.sidx", mmap=mmap, verify=False)


def test_every_fixture_still_loads_and_the_checks_accept_real_indexes(rng):
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "data").glob("*.sidx")):
        assert lk.SparseIndex.load(path).n_rows > 0
    for approximate in (False, True):
        for signed in (False, True):
            assert lk.SparseIndex.from_bytes(_index_bytes(rng, approximate, signed)).n_rows == 120

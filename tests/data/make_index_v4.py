"""Wrote the index_v4_*.sidx files and their expected answers with format version 4 (row
records stored in search order; block summaries stored block-major), using main's build at
0bbe1fd. Kept for the record: the files are
checked in and must never be regenerated (they test that old files still load and search
identically)."""
from pathlib import Path

import numpy as np

import likeable as lk

here = Path(__file__).resolve().parent
rng = np.random.default_rng(2026)
# Signed integer codes and unsigned ones (the AVX2 summary path), with enough rows for several
# blocks per list.
for name, low in [("signed", -3), ("unsigned", 0)]:
    dense = np.where(rng.random((150, 24)) < 0.3, rng.integers(low, 5, (150, 24)), 0).astype(np.float32)
    queries = lk.SparseCodes.from_dense(np.where(rng.random((8, 24)) < 0.5, rng.integers(low, 4, (8, 24)), 0))
    index = lk.SparseIndex(lk.SparseCodes.from_dense(dense), n_postings=20, block_fraction=0.3)
    index.save(here / f"index_v4_{name}.sidx")
    ids, scores = index.search(queries, k=5, query_cut=3, heap_factor=0.9)
    np.savez(here / f"index_v4_{name}_expected.npz", dense=dense, q_indptr=queries.indptr, q_indices=queries.indices,
             q_values=queries.values, ids=ids, scores=scores)

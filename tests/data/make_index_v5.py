"""Wrote the index_v5_*.sidx files and their expected answers with format version 5 (block
summaries stored by feature in chunks of 256 blocks), using main's build at 2048aca. Feature 0 is
in every row, so its posting list has more than 256 blocks (two chunks): the case format 6 lays
out differently. Kept for the record: the files are checked in and must never be regenerated
(they test that old files still load and search identically)."""
from pathlib import Path

import numpy as np

import likeable as lk

here = Path(__file__).resolve().parent
rng = np.random.default_rng(2027)
n_rows, n_cols, per_row = 2800, 150, 6
for name, low in [("signed", -1), ("unsigned", 0)]:
    dense = np.zeros((n_rows, n_cols), np.float32)
    dense[:, 0] = rng.uniform(0.1, 1, n_rows)
    for r in range(n_rows):
        dense[r, rng.choice(np.arange(1, n_cols), per_row, replace=False)] = rng.uniform(low, 1, per_row)
    q = np.where(rng.random((8, n_cols)) < 0.05, rng.uniform(low, 1, (8, n_cols)), 0).astype(np.float32)
    q[:, 0] = rng.uniform(0.5, 1, 8)
    queries = lk.SparseCodes.from_dense(q)
    codes = lk.SparseCodes.from_dense(dense)
    index = lk.SparseIndex(codes, n_postings=n_rows, block_fraction=0.3)
    index.save(here / f"index_v5_{name}.sidx")
    ids, scores = index.search(queries, k=5, query_cut=3, heap_factor=0.9)
    np.savez_compressed(here / f"index_v5_{name}_expected.npz", indptr=codes.indptr, indices=codes.indices,
                        values=codes.values, q_indptr=queries.indptr, q_indices=queries.indices,
                        q_values=queries.values, ids=ids, scores=scores)

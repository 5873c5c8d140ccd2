"""Wrote index_v1.sidx and its expected answers with format version 1. Kept for the record:
the files are checked in and must never be regenerated (they test that old files still load)."""
from pathlib import Path

import numpy as np

import likeable as lk

here = Path(__file__).resolve().parent
rng = np.random.default_rng(2024)
dense = np.where(rng.random((40, 12)) < 0.3, rng.integers(-3, 4, (40, 12)), 0).astype(np.float32)
queries = lk.SparseCodes.from_dense(np.where(rng.random((3, 12)) < 0.5, rng.integers(-2, 3, (3, 12)), 0))
index = lk.SparseIndex(lk.SparseCodes.from_dense(dense), n_postings=6, block_fraction=0.5)
index.save(here / "index_v1.sidx")
ids, scores = index.search(queries, k=4)
np.savez(here / "index_v1_expected.npz", q_indptr=queries.indptr, q_indices=queries.indices,
         q_values=queries.values, ids=ids, scores=scores)

"""8 threads mixing search, score, encode and user updates on shared objects: results equal serial runs.

Safe to share across threads (documented in the README's serving section): SparseEncoder,
SparseIndex, PreferenceModel (read-only after fit) and UserPreferences (reads are lock-free
on an immutable snapshot; update() swaps the snapshot under a lock).
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import likeable as lk


def test_mixed_workload_from_eight_threads_equals_serial(rng):
    X = rng.standard_normal((1500, 24)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=96, k=6, signed=True, seed=1).fit(X, epochs=2, progress=False)
    codes = enc.encode(X)
    labels = rng.integers(0, 2, len(X))
    readers = rng.integers(0, 10, len(X))          # users 0..9 are only read
    prefs = lk.UserPreferences(population=lk.PreferenceModel().fit(codes, labels)).fit(codes, labels, readers)
    index = lk.SparseIndex(codes, approximate=True)
    queries = enc.encode(X[:200])
    dense_queries = prefs.weights(list(range(10)))

    batches = [X[i:i + 150] for i in range(0, len(X), 150)]
    expected_codes = [enc.encode(b, threads=1) for b in batches]
    expected_search = index.search(queries, k=10, threads=1)
    expected_dense = index.search(dense_queries, k=10, threads=1)
    expected_score = prefs.score(list(range(10)), codes[:300])
    # updates go to users 100.. so readers of users 0..9 see fixed weights throughout
    new_codes = enc.encode(rng.standard_normal((400, 24)).astype(np.float32))
    new_labels = rng.integers(0, 2, 400)
    new_users = 100 + np.arange(400) % 8

    def job(i):
        kind = i % 4
        if kind == 0:
            return [enc.encode(b, threads=2) == e for b, e in zip(batches, expected_codes)]
        if kind == 1:
            ids, scores = index.search(queries, k=10, threads=2)
            dids, dscores = index.search(dense_queries, k=10)
            return [np.array_equal(ids, expected_search[0]), np.array_equal(scores, expected_search[1]),
                    np.array_equal(dids, expected_dense[0]), np.array_equal(dscores, expected_dense[1])]
        if kind == 2:
            return [np.array_equal(prefs.score(list(range(10)), codes[:300]), expected_score)]
        part = slice((i // 4) * 50, (i // 4) * 50 + 50)
        prefs.update(new_codes[part], new_labels[part], new_users[part])
        return [True]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(job, range(32)))
    assert all(all(r) for r in results)

    # every update landed: the result equals one serial fit over all the data
    serial = lk.UserPreferences(population=prefs.population_).fit(
        lk.SparseCodes.from_scipy(__import__("scipy.sparse", fromlist=["vstack"]).vstack(
            [codes.to_scipy(), new_codes.to_scipy()]).tocsr()),
        np.concatenate([labels, new_labels]), np.concatenate([readers, new_users]))
    users = list(range(10)) + list(range(100, 108))
    np.testing.assert_allclose(prefs.weights(users), serial.weights(users), rtol=1e-5, atol=1e-6)

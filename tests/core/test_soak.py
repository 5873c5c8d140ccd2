"""Concurrency soak (issue 15): for a bounded time, many threads refit, update, save, load,
pickle, score, search and ask for ``top_items`` on shared objects; every read must equal one of
the states a serial run could produce.

The states are known in advance. ``model`` is refitted alternately on data A and data B while
single-user updates land on users 100.. (one user per batch, fixed shrinkage, so each updated
user's weights depend only on the population and that user's pairs): a read of users 0..5 is
A's or B's, and a read of an updated user is the population's or its serial update's under the
same fit. ``path`` is replaced by rename with one of two indexes; loading it (in memory or
mapped) gives one of them, and a mapped index keeps answering as when it was loaded.

Runs ``LIKEABLE_SOAK_SECONDS`` (default 8) whatever the machine, so CI time stays bounded;
the sanitizer suite runs it too.
"""
import os
import pickle
import threading
import time

import numpy as np
import scipy.sparse as sp

import likeable as lk

SECONDS = float(os.environ.get("LIKEABLE_SOAK_SECONDS", "8"))
READ_USERS = list(range(6))
N_BATCHES = 12


def _codes(rng, n, m):
    return lk.SparseCodes.from_scipy(sp.random(n, m, density=0.3, format="csr", random_state=rng, dtype=np.float32))


def _same(got, want) -> bool:
    if isinstance(want, tuple):
        return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))
    return np.array_equal(got, want)


def test_many_threads_on_shared_objects_read_only_serial_states(rng, tmp_path):
    m = 16
    users = rng.integers(0, 6, 400)
    data = {name: (_codes(rng, 400, m), rng.integers(0, 2, 400)) for name in "AB"}
    items = _codes(rng, 60, m)
    batches = [(_codes(rng, 12, m), rng.integers(0, 2, 12), [100 + j] * 12) for j in range(N_BATCHES)]
    index = lk.SparseIndex(_codes(rng, 500, m), n_postings=40)
    indexes = [lk.SparseIndex(_codes(rng, 300, m), approximate=False), lk.SparseIndex(_codes(rng, 200, m))]
    X = rng.standard_normal((200, 8)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=m, k=3, seed=0).fit(X, epochs=1, progress=False)

    def fresh(name):
        return lk.UserPreferences(shrinkage=2.0, threads=1).fit(*data[name], users)

    # --- the serial states ------------------------------------------------------------------
    serial = {}
    for name in "AB":
        ref = fresh(name)
        state = {"weights": ref.weights(READ_USERS), "score": ref.score(READ_USERS, items),
                 "proba": ref.predict_proba(items, users[:60]), "top": ref.top_items(READ_USERS, index, k=5),
                 "before": ref.weights([100])}
        for codes, labels, ids in batches:
            ref.update(codes, labels, ids)
        state["after"] = {100 + j: ref.weights([100 + j]) for j in range(N_BATCHES)}
        serial[name] = state
    assert not np.array_equal(serial["A"]["weights"], serial["B"]["weights"])
    searched = index.search(items, k=5, threads=1)
    encoded = enc.encode(X, threads=1)
    path = tmp_path / "served.sidx"
    indexes[0].save(path)
    file_results = [ix.search(items, k=5, threads=1) for ix in indexes]
    model_path = tmp_path / "users.likeable"

    model = fresh("A")
    model.save(model_path)
    deadline = time.monotonic() + SECONDS
    problems: list[str] = []
    counts: dict[str, int] = {}

    def fit_of(weights):
        return next((name for name in "AB" if np.array_equal(weights, serial[name]["weights"])), None)

    def check_model(got, what):
        """A whole model read (a loaded or unpickled copy): users 0..5 are A's or B's; each
        updated user is the population's or its serial update under the same fit."""
        name = fit_of(got.weights(READ_USERS))
        if name is None:
            return f"{what}: users 0..5 match neither fit"
        for j in range(N_BATCHES):
            w = got.weights([100 + j])
            if not (np.array_equal(w, serial[name]["before"]) or np.array_equal(w, serial[name]["after"][100 + j])):
                return f"{what}: user {100 + j} matches neither its serial state under fit {name}"
        return None

    def read_weights():
        ids = READ_USERS + [100 + j for j in range(N_BATCHES)]
        w = model.weights(ids)  # one snapshot for all of them
        name = fit_of(w[:6])
        if name is None:
            return "weights: users 0..5 match neither fit"
        for j in range(N_BATCHES):
            row = w[6 + j:7 + j]
            if not (np.array_equal(row, serial[name]["before"]) or np.array_equal(row, serial[name]["after"][100 + j])):
                return f"weights: user {100 + j} matches neither state under fit {name}"

    def either(key, got):
        return None if any(_same(got, serial[name][key]) for name in "AB") else f"{key}: matches neither fit"

    def refit(step):
        model.fit(*data["AB"[step % 2]], users)

    def update(step):
        j = step % N_BATCHES
        if 100 + j not in model.user_ids_:  # once per fit: a second update would be another state
            model.update(*batches[j])

    def replace_index(step):
        indexes[step % 2].save(path)  # temporary file + rename: the mmap contract

    def load_index(step):
        loaded = lk.SparseIndex.load(path, mmap=bool(step % 2))
        got = loaded.search(items, k=5, threads=1)
        if not any(_same(got, want) for want in file_results):
            return "index file: a loaded index matches neither saved one"
        time.sleep(0.001)
        if not _same(loaded.search(items, k=5, threads=1), got):
            return "index file: a loaded index changed its answers"

    def round_trip(step):
        if step % 2:
            model.save(model_path)
            return check_model(lk.UserPreferences.load(model_path), "save/load")
        return check_model(pickle.loads(pickle.dumps(model)), "pickle")

    jobs = {
        "refit": refit, "update": update, "replace index": replace_index, "load index": load_index,
        "save/load/pickle": round_trip, "weights": lambda _: read_weights(),
        "score": lambda _: either("score", model.score(READ_USERS, items)),
        "predict_proba": lambda _: either("proba", model.predict_proba(items, users[:60])),
        "top_items": lambda _: either("top", model.top_items(READ_USERS, index, k=5)),
        "search": lambda s: None if _same(index.search(items, k=5, threads=1 + s % 2), searched) else "search differs",
        "pickled index": lambda _: None if _same(pickle.loads(pickle.dumps(index)).search(items, k=5, threads=1),
                                                 searched) else "pickled index differs",
        "encode": lambda _: None if enc.encode(X, threads=2) == encoded else "encode differs",
    }

    def worker(name, job):
        step = 0
        try:
            while time.monotonic() < deadline:
                problem = job(step)
                if problem:
                    problems.append(problem)
                step += 1
        except Exception as exc:  # noqa: BLE001 - any exception is a finding
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
        counts[name] = step

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    threads += [threading.Thread(target=worker, args=(f"{name} 2", jobs[name])) for name in ("weights", "score")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, f"{len(problems)} problems, first: {problems[:5]}"
    assert all(counts[name] >= 2 for name in jobs), counts  # every kind of call really ran, repeatedly
    assert check_model(model, "final") is None

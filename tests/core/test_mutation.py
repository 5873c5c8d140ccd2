"""Property: whatever happens to a SparseCodes' arrays (and shape) after construction, every
public entry point that takes codes gives ValueError or the correct result, never a crash.

Hypothesis drives the examples inside one child process (a crash there fails this test, and the
last example printed before it is the one that crashed); under .ci/sanitize the child inherits
the ASan+UBSan runtimes, so reading outside an array aborts it too. Four ways to tamper:

* ``caller``: the arrays given to ``SparseCodes(..., validate=False)`` are changed afterwards;
* ``replace``: the object's attributes are replaced by changed arrays;
* ``shape``: its shape is replaced;
* ``thread``: another thread flips one entry of the given arrays back and forth during the call.

"Correct" is what the same call returns on codes built cleanly from the arrays as the call
read them (the changed ones; for ``thread``, the one before or the one after the flip), and
ValueError wherever those arrays are not valid codes (or the clean call refuses them too).
"""
import os

EXAMPLES = int(os.environ.get("LIKEABLE_MUTATION_EXAMPLES", "12"))  # per entry point

CHILD = r'''
import pickle, sys, threading
import numpy as np, scipy.sparse as sp
from hypothesis import HealthCheck, given, settings, strategies as st
import likeable as lk
from likeable.index import brute_force_search

rng = np.random.default_rng(0)
n, M = 40, 12
codes = lk.SparseCodes.from_scipy(sp.random(n, M, density=0.3, format="csr", random_state=0, dtype=np.float32))
labels = rng.integers(0, 2, n)
users = rng.integers(0, 4, n)
X = rng.standard_normal((n, 5)).astype(np.float32)
enc = lk.SparseEncoder(n_features=M, k=3, seed=0).fit(X, epochs=1, progress=False)
pm = lk.PreferenceModel().fit(codes, labels)
up_bytes = lk.UserPreferences(population=pm).fit(codes, labels, users).to_bytes()
up = lk.UserPreferences.from_bytes(up_bytes)
exact, approx = lk.SparseIndex(codes, approximate=False), lk.SparseIndex(codes, n_postings=6)
drift = lk.drift_weights(codes, labels, users)
bank = lk.AttributeBank(["a", "b"]).fit(rng.standard_normal((30, M)), rng.standard_normal((30, 2)))
probe = codes[:4]

def calls(c):
    m = max(0, min(len(c), n))
    y, u = labels[:m], users[:m]
    return {
        "decode": lambda: enc.decode(c, threads=1),
        "SparseIndex approximate": lambda: lk.SparseIndex(c, n_postings=6, threads=1).search(probe, k=3),
        "SparseIndex exact": lambda: lk.SparseIndex(c, approximate=False, threads=1).search(probe, k=3),
        "search exact": lambda: exact.search(c, k=3, threads=1),
        "search approximate": lambda: approx.search(c, k=3, threads=1),
        "brute force codes": lambda: brute_force_search(c, probe, k=3),
        "brute force queries": lambda: brute_force_search(codes, c, k=3),
        "PreferenceModel.fit": lambda: lk.PreferenceModel(threads=1).fit(c, y).coef_,
        "predict_proba": lambda: pm.predict_proba(c),
        "predict": lambda: pm.predict(c),
        "score": lambda: pm.score(c, y),
        "feature_effects": lambda: pm.feature_effects(c, y).coef,
        "select": lambda: pm.select(c, y, n_features=2, n_steps=5).features,
        "UserPreferences.fit": lambda: lk.UserPreferences(population=pm, threads=1).fit(c, y, u).offsets_,
        "update": lambda: lk.UserPreferences.from_bytes(up_bytes).update(c, y, u).offsets_,
        "user predict_proba": lambda: up.predict_proba(c, u),
        "user decision_function": lambda: up.decision_function(c, u),
        "user score": lambda: up.score([0, 1, 7], c),
        "top_items": lambda: up.top_items([0, 1], lk.SparseIndex(c, approximate=False, threads=1), k=3),
        "information_gain": lambda: up.information_gain(c, u),
        "drift decision": lambda: drift.decision_function(c, u),
        "drift_weights": lambda: lk.drift_weights(c, y, u).weights,
        "bank": lambda: bank.transform(c),
        "to_dense": lambda: c.to_dense(),
        "to_scipy": lambda: c.to_scipy() @ np.ones(c.shape[1]),
        "rows": lambda: c[[0, 1]].to_dense() if len(c) >= 2 else c[:0].to_dense(),
        "slice": lambda: c[1:3].to_dense(),
        "pickle": lambda: pickle.loads(pickle.dumps(c)).to_dense(),
    }

def outcome(call):
    try:
        out = call()
    except ValueError:
        return "ValueError"
    flat = out if isinstance(out, tuple) else (out,)
    return tuple(np.asarray(o) for o in flat)

def same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
                                    for x, y in zip(a, b))

def clean(ip, ix, v, shape):
    try:
        return lk.SparseCodes(ip.copy(), ix.copy(), v.copy(), shape)
    except ValueError:
        return None

# Valid and invalid replacements alike: a valid one must give the clean result, an invalid one ValueError.
SPECIAL = {
    "indptr": [0, 1, 7, -1, 2**40, -2**62],
    "indices": [0, 1, M - 1, -1, M, M + 1, 2**31 - 1, -2**31],
    "values": [2.5, -1.0, 0.0, 1e-40, np.nan, np.inf, -np.inf, 1e38],
}
edit = st.tuples(st.sampled_from(["indptr", "indices", "values"]), st.integers(0, 10**6), st.integers(0, 7))
example = st.tuples(st.sampled_from(["caller", "replace", "shape", "thread"]), st.lists(edit, min_size=1, max_size=3),
                    st.tuples(st.sampled_from([n, n - 1, n + 1, 0, -1]), st.integers(-1, 2 * M)))

def apply(arrays, edits):
    for name, pos, which in edits:
        a = arrays[name]
        if a.size:
            choices = SPECIAL[name]
            a[pos % a.size] = choices[which % len(choices)]

@settings(max_examples=int(sys.argv[1]), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(example)
def check(ex):
    mode, edits, new_shape = ex
    print(repr((name, *ex)), flush=True)  # the last line printed names the example that crashed, if one does
    arrays = {"indptr": codes.indptr.copy(), "indices": codes.indices.copy(), "values": codes.values.copy()}
    shape = codes.shape
    if mode == "thread":
        name_, pos, which = edits[0]
        target = arrays[name_]
        pos %= target.size
        before = target[pos].copy()
        choices = SPECIAL[name_]
        after = np.asarray(choices[which % len(choices)]).astype(target.dtype)
        tampered = lk.SparseCodes(arrays["indptr"], arrays["indices"], arrays["values"], shape, validate=False)
        stop = threading.Event()
        def flip():
            while not stop.is_set():
                target[pos] = after
                target[pos] = before
        writer = threading.Thread(target=flip)
        writer.start()
        try:
            got = [outcome(calls(tampered)[name]) for _ in range(3)]
        finally:
            stop.set()
            writer.join()
        states = []
        for value in (before, after):
            target[pos] = value
            c = clean(arrays["indptr"], arrays["indices"], arrays["values"], shape)
            states.append("ValueError" if c is None else outcome(calls(c)[name]))
        for g in got:
            assert any(same(g, s) for s in states), (name, ex)
        return
    if mode == "caller":
        tampered = lk.SparseCodes(arrays["indptr"], arrays["indices"], arrays["values"], shape, validate=False)
        apply(arrays, edits)
    elif mode == "replace":
        tampered = lk.SparseCodes(codes.indptr, codes.indices, codes.values, shape)
        apply(arrays, edits)
        tampered.indptr, tampered.indices, tampered.values = arrays["indptr"], arrays["indices"], arrays["values"]
    else:
        tampered = lk.SparseCodes(codes.indptr, codes.indices, codes.values, shape)
        tampered.shape = shape = new_shape
    got = outcome(calls(tampered)[name])
    c = clean(arrays["indptr"], arrays["indices"], arrays["values"], shape)
    want = "ValueError" if c is None else outcome(calls(c)[name])
    assert same(got, want), (name, ex, got, want)

for name in sorted(calls(codes)):  # every entry point gets its examples
    check()
print("SURVIVED")
'''


def test_mutated_codes_give_value_error_or_the_correct_result(isolated):
    output = isolated.survives(CHILD.replace("int(sys.argv[1])", str(EXAMPLES)), timeout=1200)
    assert output.count("\n(") >= 28 * min(EXAMPLES, 5)  # the examples really ran, for every entry point

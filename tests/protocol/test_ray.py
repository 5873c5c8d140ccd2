"""likeable.ray on a local Ray cluster: outputs equal the in-process results.

Starting Ray takes ~10 s, so the test runs where CI=true (CI runs it once) or with
LIKEABLE_RUN_RAY=1, and is skipped in a developer's default run.
"""
import os

import numpy as np
import pytest

import likeable as lk

# Ray itself warns about its own deprecations; those are not ours to fail on.
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

if not (os.environ.get("CI") or os.environ.get("LIKEABLE_RUN_RAY")):
    pytest.skip("Ray cluster test: set LIKEABLE_RUN_RAY=1 (CI runs it)", allow_module_level=True)
ray = pytest.importorskip("ray", reason='needs Ray Data: pip install "likeable[ray]"')
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from likeable import ray as lkray  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        yield
    finally:
        ray.shutdown()


def test_encode_and_score_through_ray_equal_in_process(cluster, rng, tmp_path):
    n, d = 3000, 32
    X = rng.standard_normal((n, d)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=64, k=6, signed=True, seed=0).fit(X[:1000], epochs=2, progress=False)
    user_ids = rng.integers(0, 20, n)
    labels = rng.integers(0, 2, n)
    codes = enc.encode(X)
    users = lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, user_ids)

    table = pa.table({"row": np.arange(n), "user_id": user_ids,
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), d)})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=700)
    lkray.encode_parquet(str(tmp_path / "in.parquet"), str(tmp_path / "out"), enc,
                         embedding_column="embedding", batch_size=512)
    out = pq.read_table(tmp_path / "out").sort_by("row")
    got = lkray.codes_from_arrow(out.column("feature_ids"), out.column("feature_values"), enc.n_features)
    assert got == codes

    ds = ray.data.from_arrow(out)
    scored = lkray.to_arrow(lkray.score_dataset(ds, users, batch_size=400)).sort_by("row")
    np.testing.assert_allclose(scored.column("score").to_numpy(), users.decision_function(codes, user_ids),
                               rtol=1e-6, atol=1e-6)
    proba = lkray.to_arrow(lkray.score_dataset(ds, users, output="proba")).sort_by("row")
    np.testing.assert_allclose(proba.column("score").to_numpy(), users.predict_proba(codes, user_ids), atol=1e-6)


def _encoded(ds, enc, **kwargs):
    out = lkray.to_arrow(lkray.encode_dataset(ds, enc, batch_size=64, **kwargs)).sort_by("row")
    return out, lkray.codes_from_arrow(out.column("feature_ids"), out.column("feature_values"), enc.n_features)


def test_tensor_list_and_fixed_size_list_columns(cluster, rng, tmp_path):
    """Datasets built as Ray's docs build them: from_numpy, from_items, from_pandas, read_parquet."""
    import pandas as pd

    n, d = 300, 16
    X = rng.standard_normal((n, d)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=32, k=4, signed=True, seed=0).fit(X, epochs=2, progress=False)
    expected = enc.encode(X)
    rows = np.arange(n)

    from_numpy = ray.data.from_numpy(X).zip(ray.data.from_numpy(rows).rename_columns({"data": "row"}))
    assert "Tensor" in str(from_numpy.schema().types[0])  # ArrowTensorType(V2): Ray's tensor column
    from_items = ray.data.from_items([{"row": int(i), "embedding": X[i]} for i in range(n)])
    from_pandas = ray.data.from_pandas(pd.DataFrame({"row": rows, "embedding": list(X.astype(np.float64))}))
    lists = pd.DataFrame({"row": rows, "embedding": [list(map(float, x)) for x in X]})
    from_lists = ray.data.from_pandas(lists)
    pq.write_table(pa.table({"row": rows, "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), d)}),
                   tmp_path / "fixed.parquet", row_group_size=70)
    from_parquet = ray.data.read_parquet(str(tmp_path / "fixed.parquet"))
    for name, ds, column in [("from_numpy", from_numpy, "data"), ("from_items", from_items, "embedding"),
                             ("from_pandas arrays", from_pandas, "embedding"),
                             ("from_pandas lists", from_lists, "embedding"),
                             ("read_parquet fixed-size list", from_parquet, "embedding")]:
        out, codes = _encoded(ds, enc, embedding_column=column)
        assert codes == expected, name
        # codes stay CSR-shaped list columns; the input column passes through unchanged
        assert out.schema.field("feature_ids").type == pa.list_(pa.int32()), name
        assert out.schema.field("feature_values").type == pa.list_(pa.float32()), name
        np.testing.assert_allclose(lkray.embedding_matrix(out.column(column), column), X, rtol=1e-6, err_msg=name)
    # what went in as tensors comes back out as Parquet and back in again
    lkray.encode_dataset(from_numpy, enc, embedding_column="data").write_parquet(str(tmp_path / "out"))
    back = pq.read_table(tmp_path / "out").sort_by("row")
    np.testing.assert_array_equal(lkray.embedding_matrix(back.column("data"), "data"), X)
    assert lkray.codes_from_arrow(back.column("feature_ids"), back.column("feature_values"), 32) == expected


def test_texts_through_any_embedder(cluster, rng):
    def embed(texts):  # a plain function is an embedder too (as_embedder wraps it)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32)

    texts = ["banana", "apple", "a", "kiwi"]
    enc = lk.SparseEncoder(n_features=8, k=2, seed=0).fit(rng.standard_normal((100, 3)), epochs=1, progress=False)
    ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
    _, codes = _encoded(ds, enc, text_column="text", embedder=embed)
    assert codes == enc.encode(embed(texts))


def test_bad_arguments_are_refused(cluster, rng):
    enc = lk.SparseEncoder(n_features=16, k=2, seed=0).fit(rng.standard_normal((200, 8)), epochs=1, progress=False)
    ds = ray.data.from_items([{"text": "hi"}])
    with pytest.raises(ValueError, match="exactly one"):
        lkray.encode_dataset(ds, enc)
    with pytest.raises(ValueError, match="no column"):
        lkray.encode_dataset(ds, enc, embedding_column="embedding")
    with pytest.raises(ValueError, match="embedder"):
        lkray.encode_dataset(ds, enc, text_column="text")
    with pytest.raises(TypeError, match="'text' must hold embedding vectors"):
        lkray.encode_dataset(ds, enc, embedding_column="text")


def test_models_pickle_as_bytes(rng):
    import pickle

    X = rng.standard_normal((300, 8)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=16, k=2, seed=0).fit(X, epochs=1, progress=False)
    assert pickle.loads(pickle.dumps(enc)).encode(X) == enc.encode(X)
    index = lk.SparseIndex(enc.encode(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(index)).search(enc.encode(X[:5]), k=3)[0],
                                  index.search(enc.encode(X[:5]), k=3)[0])

"""datasets.load from every source users hold data in: files, pandas, polars, pyarrow, Hugging Face."""
import numpy as np
import pytest

import likeable as lk
from likeable import datasets

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _columns(rng, n=7, d=5):
    return {"question": [f"q{i}" for i in range(n)], "response_a": [f"a{i}" for i in range(n)],
            "response_b": [f"b{i}" for i in range(n)], "pref": ["good", "bad", "good", "tie", "bad", "good", "bad"][:n],
            "user_id": [f"u{i % 3}" for i in range(n)],
            "emb_a": rng.standard_normal((n, d)).astype(np.float32), "emb_b": rng.standard_normal((n, d)).astype(np.float32)}


MAPPING = {"prompt": "question", "label": "pref", "embedding_a": "emb_a", "embedding_b": "emb_b"}
LABELS = {"good": 1, "bad": 0, "tie": "tie"}
EXPECTED_LABELS = np.array([1, 0, 1, 0.5, 0, 1, 0], np.float32)


def _pandas(cols):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in cols.items()})


def _polars(cols):
    pl = pytest.importorskip("polars")
    d = cols["emb_a"].shape[1]
    return pl.DataFrame({k: (pl.Series(k, v, dtype=pl.Array(pl.Float32, d)) if isinstance(v, np.ndarray) else v)
                         for k, v in cols.items()})


def _arrow(cols):
    return pa.table({k: (pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])
                         if isinstance(v, np.ndarray) else v) for k, v in cols.items()})


def _hf(cols):
    hf = pytest.importorskip("datasets")
    data = hf.Dataset.from_dict({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in cols.items()})
    return data


def _parquet_list(cols, tmp_path):
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({k: (pa.array(list(v), type=pa.list_(pa.float32())) if isinstance(v, np.ndarray) else v)
                             for k, v in cols.items()}), path)
    return path


def _parquet_fixed(cols, tmp_path):
    path = tmp_path / "fixed.parquet"
    pq.write_table(_arrow(cols), path)
    return path


@pytest.mark.parametrize("make", [_pandas, _polars, _arrow, _hf, _parquet_list, _parquet_fixed],
                         ids=["pandas", "polars", "pyarrow", "hf-datasets", "parquet-list", "parquet-fixed-size-list"])
def test_every_source_loads_the_same(make, rng, tmp_path):
    cols = _columns(rng)
    source = make(cols, tmp_path) if make.__name__.startswith("_parquet") else make(cols)
    ds = datasets.load(source, columns=MAPPING, labels=LABELS)
    assert ds.prompt == cols["question"] and ds.response_b == cols["response_b"]
    np.testing.assert_array_equal(ds.label, EXPECTED_LABELS)
    assert list(ds.user_id) == cols["user_id"]
    assert ds.has_embeddings and ds.embeddings_a.dtype == np.float32
    np.testing.assert_array_equal(ds.embeddings_a, cols["emb_a"])
    np.testing.assert_array_equal(ds.embeddings_b, cols["emb_b"])
    # the same checks, the same words, whatever the source
    with pytest.raises(ValueError, match=r"missing column 'prompt' for field 'prompt'.*columns=\{'prompt'"):
        datasets.load(source, labels=LABELS)
    with pytest.raises(ValueError, match="row 0 has label 'good'.*labels="):
        datasets.load(source, columns=MAPPING)


def test_hf_selection_and_splits(rng):
    hf = pytest.importorskip("datasets")
    cols = _columns(rng)
    data = _hf(cols).select([4, 0, 2])  # an index mapping over the Arrow table
    ds = datasets.load(data, columns=MAPPING, labels=LABELS)
    assert ds.prompt == ["q4", "q0", "q2"]
    np.testing.assert_array_equal(ds.embeddings_b, cols["emb_b"][[4, 0, 2]])
    with pytest.raises(TypeError, match="DatasetDict.*one split"):
        datasets.load(hf.DatasetDict({"train": data}))


def test_embedding_columns_need_both_sides_and_equal_widths(rng):
    cols = _columns(rng)
    table = _arrow(cols)
    with pytest.raises(ValueError, match="missing column 'embedding_b'"):
        datasets.load(table, columns={"prompt": "question", "label": "pref", "embedding_a": "emb_a"}, labels=LABELS)
    ragged = table.set_column(table.column_names.index("emb_b"), "emb_b",
                              pa.array([[1.0, 2.0]] * 6 + [[1.0]], type=pa.list_(pa.float32())))
    with pytest.raises(ValueError, match="different lengths"):
        datasets.load(ragged, columns=MAPPING, labels=LABELS)
    narrow = table.set_column(table.column_names.index("emb_b"), "emb_b",
                              pa.array([[1.0, 2.0]] * 7, type=pa.list_(pa.float32())))
    with pytest.raises(ValueError, match="embedding_a has 5 dimensions but embedding_b has 2"):
        datasets.load(narrow, columns=MAPPING, labels=LABELS)
    nulls = table.set_column(table.column_names.index("emb_b"), "emb_b",
                             pa.array([[1.0] * 5] * 6 + [None], type=pa.list_(pa.float32())))
    with pytest.raises(ValueError, match="null embeddings .*row 6"):
        datasets.load(nulls, columns=MAPPING, labels=LABELS)
    strings = table.set_column(table.column_names.index("emb_b"), "emb_b", pa.array(["x"] * 7))
    with pytest.raises(TypeError, match="must hold vectors"):
        datasets.load(strings, columns=MAPPING, labels=LABELS)


def test_other_objects_and_options_are_refused(rng):
    with pytest.raises(TypeError, match="file path, a pandas or polars DataFrame"):
        datasets.load(42)
    with pytest.raises(ValueError, match="format='csv' applies to files"):
        datasets.load(_arrow(_columns(rng)), format="csv")
    with pytest.raises(ValueError, match="labels maps 'good' to 7"):
        datasets.load(_arrow(_columns(rng)), columns=MAPPING, labels={"good": 7})


def test_embedded_table_runs_the_protocol_without_an_embedder():
    syn = datasets.synthetic(n_pairs=600, n_users=4, n_features=8, seed=1)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"prompt": syn.prompt, "response_a": syn.response_a, "response_b": syn.response_b,
                          "label": np.where(syn.label == 1, "A", "B"), "user_id": syn.user_id,
                          "embedding_a": list(syn.embeddings_a), "embedding_b": list(syn.embeddings_b)})
    ds = datasets.load(frame)
    np.testing.assert_array_equal(ds.embeddings_a, syn.embeddings_a)
    report = lk.evaluate(ds, config=lk.EvalConfig(progress=False, epochs=3, n_features=16, k=2, matryoshka=None, threads=1))
    assert report.results["prediction"]["dense"]["auc"]["value"] > 0.6


def test_fit_takes_the_labels_the_loader_takes(rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    numeric = (X[:, 0] > 0).astype(int)
    words = np.where(numeric == 1, "A", "b")
    a = lk.PreferenceModel().fit(X, numeric)
    b = lk.PreferenceModel().fit(X, words)
    c = lk.PreferenceModel().fit(X, list(numeric == 1))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.coef_, c.coef_)
    # 'A' is the first response winning, as the loader reads it (not sklearn's sorted order)
    assert list(b.classes_) == ["b", "A"] and a.coef_[0] > 0
    np.testing.assert_array_equal(b.predict(X), np.where(a.predict(X) == 1, "A", "b"))
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X))
    with pytest.raises(ValueError, match=r"\[3\] is 'tie'.*drop them"):
        lk.PreferenceModel().fit(X[:5], ["A", "B", "A", "tie", "B"])
    with pytest.raises(ValueError, match=r"labels\[2\]|must be 1/'A'"):  # the statistics methods: 0/1 only
        lk.PreferenceModel().fit(X[:3], ["A", "B", "A"]).feature_effects(X[:3], ["A", "B", "maybe"])

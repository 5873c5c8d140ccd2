import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import shared_path
from likeable import datasets
from likeable.protocol.split import group_components, split_by_components

ROWS = [{"q": f"prompt {i % 3}", "ra": f"answer a {i}", "rb": f"answer b {i}", "pref": [1, 0, 0.5][i % 3],
         "user": f"u{i % 2}"} for i in range(9)]
MAPPING = {"prompt": "q", "response_a": "ra", "response_b": "rb", "label": "pref", "user_id": "user"}


def _write_all(tmp_path):
    paths = {}
    paths["jsonl"] = tmp_path / "d.jsonl"
    paths["jsonl"].write_text("\n".join(json.dumps(r) for r in ROWS))
    paths["gz"] = tmp_path / "d.jsonl.gz"
    with gzip.open(paths["gz"], "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in ROWS))
    table = pa.Table.from_pylist(ROWS)
    paths["parquet"] = tmp_path / "d.parquet"
    pq.write_table(table, paths["parquet"])
    paths["csv"] = tmp_path / "d.csv"
    pacsv.write_csv(table, paths["csv"])
    return paths


@pytest.mark.parametrize("kind", ["jsonl", "gz", "parquet", "csv"])
def test_load_every_format_with_mapping(tmp_path, kind):
    ds = datasets.load(_write_all(tmp_path)[kind], columns=MAPPING)
    assert len(ds) == 9
    assert ds.prompt[4] == "prompt 1" and ds.response_a[4] == "answer a 4" and ds.response_b[4] == "answer b 4"
    np.testing.assert_array_equal(ds.label, [1, 0, 0.5] * 3)
    assert list(ds.user_id[:3]) == ["u0", "u1", "u0"]
    assert ds.conversation_id is None


def test_missing_column_names_it(tmp_path):
    path = _write_all(tmp_path)["jsonl"]
    with pytest.raises(ValueError, match=r"missing column 'response_a'.*columns present"):
        datasets.load(path, columns={"prompt": "q", "label": "pref"})
    with pytest.raises(ValueError, match="missing column 'convo'"):
        datasets.load(path, columns={**MAPPING, "conversation_id": "convo"})
    with pytest.raises(ValueError, match="unknown fields"):
        datasets.load(path, columns={"text": "q"})


def test_unreadable_and_absent_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        datasets.load(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 definitely not parquet")
    with pytest.raises(ValueError, match="could not read .*bad.parquet"):
        datasets.load(bad)
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"a": 1}\n{not json')
    with pytest.raises(ValueError, match="could not read"):
        datasets.load(junk)
    with pytest.raises(ValueError, match="cannot tell the format"):
        datasets.load(_write_all(tmp_path)["jsonl"].rename(tmp_path / "d.txt"))
    with pytest.raises(IsADirectoryError):
        datasets.load(tmp_path)


def test_bad_labels(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response_a": "a", "response_b": "b", "label": 2}))
    with pytest.raises(ValueError, match="row 0 has label 2"):
        datasets.load(path)
    path.write_text(json.dumps({"prompt": "p", "response_a": "a", "response_b": "b", "label": "B"}))
    assert datasets.load(path).label[0] == 0.0


def test_hh_rlhf_autodetected(tmp_path):
    rows = [{"chosen": f"\n\nHuman: hi {i}\n\nAssistant: hello\n\nHuman: more\n\nAssistant: good {i}",
             "rejected": f"\n\nHuman: hi {i}\n\nAssistant: hello\n\nHuman: more\n\nAssistant: bad {i}"}
            for i in range(4)]
    path = tmp_path / "hh.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = datasets.load(path)
    assert ds.prompt[0] == "Human: hi 0\n\nAssistant: hello\n\nHuman: more"
    # chosen sits on A for even rows and on B for odd rows
    assert (ds.response_a[0], ds.response_b[0], ds.label[0]) == ("good 0", "bad 0", 1.0)
    assert (ds.response_a[1], ds.response_b[1], ds.label[1]) == ("bad 1", "good 1", 0.0)


def test_two_objective_format_on_shared_data():
    ds = datasets.load(shared_path("data", "hh_rlhf_two_objectives_test.jsonl.gz"))
    assert len(ds) == 4043
    assert set(ds.user_id) == {"helpful", "harmless"}
    raw = json.loads(gzip.open(shared_path("data", "hh_rlhf_two_objectives_test.jsonl.gz"), "rt").readline())
    assert ds.response_a[0] == raw["responses"][0]
    assert ds.label[0] == (1.0 if raw["label"] == 0 else 0.0)


def test_hh_rlhf_shared_file():
    ds = datasets.load(shared_path("data", "hh_rlhf_harmless_test.jsonl.gz"))
    assert len(ds) == 2312 and ds.label.mean() == pytest.approx(0.5, abs=0.01)
    assert all("Assistant:" not in a for a in ds.response_a[:50])


def test_synthetic_ground_truth():
    ds = datasets.synthetic(n_pairs=3000, n_users=5, n_features=9, seed=3)
    t = ds.truth
    assert ds.embeddings_a.shape == (3000, 64) and ds.embeddings_a.dtype == np.float32
    assert t["attribute_names"][:7] == list(datasets.SESSION_DIMENSIONS)
    np.testing.assert_allclose(t["directions"] @ t["directions"].T, np.eye(9), atol=1e-5)
    # embeddings project back onto the planted attributes
    proj = ds.embeddings_a @ t["directions"].T
    assert np.corrcoef(proj.ravel(), t["attributes_a"].ravel())[0, 1] > 0.95
    # labels follow the planted user weights
    users = np.searchsorted(t["user_names"], ds.user_id)
    margin = np.einsum("ij,ij->i", t["user_weights"][users], t["attributes_a"] - t["attributes_b"])
    assert ((margin > 0) == (ds.label == 1)).mean() > 0.8
    # same seed, same data; other seed, other data
    again = datasets.synthetic(n_pairs=3000, n_users=5, n_features=9, seed=3)
    np.testing.assert_array_equal(again.embeddings_b, ds.embeddings_b)
    assert not np.array_equal(datasets.synthetic(3000, 5, 9, seed=4).label, ds.label)
    # the length attribute drives the word-count length difference
    length = t["attribute_names"].index("length")
    dl = ds.length_difference()
    assert np.corrcoef(dl, t["attributes_a"][:, length] - t["attributes_b"][:, length])[0, 1] > 0.6


def test_synthetic_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_pairs"):
        datasets.synthetic(0, 3, 5)
    with pytest.raises(ValueError, match="at most"):
        datasets.synthetic(10, 3, 500)


def test_subset_keeps_truth_aligned():
    ds = datasets.synthetic(100, 3, 8, seed=0)
    sub = ds.subset(np.array([5, 7]))
    np.testing.assert_array_equal(sub.truth["attributes_a"], ds.truth["attributes_a"][[5, 7]])
    assert sub.response_b == [ds.response_b[5], ds.response_b[7]] and "n_pairs=2" in repr(sub)


def test_components_and_split(rng):
    prompts = np.array(["p0", "p1", "p0", "p2", "p3", "p3", "p4"])
    convs = np.array(["c0", "c1", "c2", "c1", "c5", "c6", "c6"])
    comp = group_components(prompts, convs)
    # 0-2 share p0; 1-3 share c1; 4-5 share p3; 5-6 share c6
    assert comp[0] == comp[2] and comp[1] == comp[3] and comp[4] == comp[5] == comp[6]
    assert len(set(comp)) == 3
    n = 500
    prompts = rng.integers(0, 150, n).astype(str)
    comp = group_components(prompts, None)
    train, val, test = split_by_components(comp, (0.7, 0.1, 0.2), seed=1)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(n))
    assert not set(prompts[train]) & set(prompts[test]) and not set(prompts[val]) & set(prompts[test])
    assert abs(len(test) / n - 0.2) < 0.05
    assert group_components(np.array([], dtype=str)).shape == (0,)
    with pytest.raises(ValueError, match="different lengths"):
        group_components(prompts, prompts[:3])
    with pytest.raises(ValueError, match="fractions"):
        split_by_components(comp, (-1, 2))

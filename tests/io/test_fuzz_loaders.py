"""Hypothesis fuzzing of every file loader: damage gives FormatError (or a clear ValueError for
well-formed files with bad content), never a crash, a hang or another exception type."""
import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import likeable as lk

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        pos %= len(out)
        if kind == "flip":
            out[pos] ^= 1 << (value % 8)
        elif kind == "set":
            out[pos] = value % 256
        elif kind == "cut":
            del out[pos:]
        else:
            out[pos:pos] = bytes([value % 256]) * (value % 7 + 1)
    return bytes(out)


edits = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "insert"]), st.integers(0, 10**6),
                           st.integers(0, 255)), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def model_files():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=8, k=2, seed=0).fit(X, epochs=1, progress=False)
    codes = enc.encode(X)
    labels = rng.integers(0, 2, len(X))
    users = lk.UserPreferences(population=lk.PreferenceModel()).fit(codes, labels, rng.integers(0, 4, len(X)))
    return {lk.SparseEncoder: enc.to_bytes(), lk.SparseIndex: lk.SparseIndex(codes).to_bytes(),
            lk.UserPreferences: users.to_bytes()}


@FUZZ
@given(edits=edits, which=st.sampled_from([lk.SparseEncoder, lk.SparseIndex, lk.UserPreferences]))
def test_model_loaders_refuse_damage(model_files, edits, which):
    damaged = _mutate(model_files[which], edits)
    if damaged == model_files[which]:
        return
    with pytest.raises(lk.FormatError):
        which.from_bytes(damaged)


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    rows = [{"prompt": f"question {i}", "response_a": "yes " * (i % 5), "response_b": "no", "label": i % 2}
            for i in range(40)]
    jsonl = "\n".join(json.dumps(r) for r in rows).encode()
    (folder / "d.jsonl.gz").write_bytes(gzip.compress(jsonl))
    (folder / "d.jsonl").write_bytes(jsonl)
    pq.write_table(pa.Table.from_pylist(rows), folder / "d.parquet")
    (folder / "d.csv").write_text("prompt,response_a,response_b,label\n"
                                  + "\n".join(f"q{i},yes,no,{i % 2}" for i in range(40)))
    return folder


@FUZZ
@given(edits=edits, name=st.sampled_from(["d.jsonl.gz", "d.jsonl", "d.parquet", "d.csv"]))
def test_dataset_loader_refuses_damage_clearly(dataset_files, tmp_path_factory, edits, name):
    damaged = _mutate((dataset_files / name).read_bytes(), edits)
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(damaged)
    try:
        lk.datasets.load(path)
    except lk.FormatError as exc:
        assert str(path) in str(exc)
    except ValueError as exc:  # a readable file with bad content: the message names the file
        assert str(path) in str(exc) or path.name in str(exc)


def test_structurally_broken_dataset_files_are_format_errors(dataset_files, tmp_path):
    for name in ["d.jsonl.gz", "d.parquet"]:
        data = (dataset_files / name).read_bytes()
        for blob in (data[: len(data) // 2], b"\x89PNG" + bytes(64)):
            path = tmp_path / name
            path.write_bytes(blob)
            with pytest.raises(lk.FormatError, match="could not read"):
                lk.datasets.load(path)

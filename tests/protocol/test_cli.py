import json

import pytest

from conftest import shared_path
from likeable import cli


def test_demo_writes_report(tmp_path, capsys):
    out = tmp_path / "likeable-report"
    rc = cli.main(["demo", "--out", str(out), "--rows", "1200", "--users", "6", "--quiet", "--threads", "2",
                   "--epochs", "8"])
    assert rc == 0
    data = json.loads((out / "report.json").read_text())
    assert {"encoder", "prediction", "fraction_of_signal", "features", "personalization", "sessions"} <= set(data)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    printed = capsys.readouterr().out
    assert "personalization" in printed and "wrote" in printed


def test_analyze_reports_clear_errors(tmp_path, capsys):
    model = shared_path("models", "all-MiniLM-L6-v2")
    rc = cli.main(["analyze", str(tmp_path / "missing.jsonl"), "--embedder", str(model), "--quiet"])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    bad = tmp_path / "d.jsonl"
    bad.write_text(json.dumps({"question": "q", "a": "x", "b": "y", "label": 1}) + "\n")
    rc = cli.main(["analyze", str(bad), "--embedder", str(model), "--quiet"])
    assert rc == 2 and "missing column 'prompt'" in capsys.readouterr().err
    rc = cli.main(["analyze", str(bad), "--embedder", str(model), "--quiet", "--columns", "prompt"])
    assert rc == 2 and "field=column" in capsys.readouterr().err


def test_analyze_small_file_end_to_end(tmp_path, capsys):
    model = shared_path("models", "all-MiniLM-L6-v2")
    rows = []
    for i in range(60):
        polite = i % 2 == 0
        a = f"Thank you kindly, here is the answer number {i}." if polite else f"Answer {i}. Whatever."
        b = f"Answer {i}. Whatever." if polite else f"Thank you kindly, here is the answer number {i}."
        rows.append({"prompt": f"question {i}", "response_a": a, "response_b": b, "label": 1 if polite else 0})
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    rc = cli.main(["analyze", str(data), "--embedder", str(model), "--out", str(tmp_path / "rep"), "--quiet",
                   "--cache", str(tmp_path / "cache"), "--features", "8", "--k", "2", "--epochs", "5"])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["prediction"]["dense"]["auc"]["value"] > 0.9
    assert "personalization" not in rep


def test_bench_prints_table(capsys):
    rc = cli.main(["bench", "--rows", "2000", "--threads", "1", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "encode" in out and "GFLOP/s" in out and "search" in out and "score" in out


def test_python_dash_m_and_help_shows_defaults_and_schema():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "likeable", "analyze", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("usage: likeable analyze")
    assert "(default: 32)" in out and "(default: likeable-report)" in out
    from likeable.protocol.datasets import CANONICAL

    for field in (*CANONICAL, ".parquet", ".jsonl.gz", ".csv", "--labels good=1,bad=0"):
        assert field in out, field


def _pairs(n=40):
    rows = []
    for i in range(n):
        polite = i % 2 == 0
        a = f"Thank you kindly, here is the answer number {i}." if polite else f"Answer {i}. Whatever."
        b = f"Answer {i}. Whatever." if polite else f"Thank you kindly, here is the answer number {i}."
        rows.append({"question": f"question {i}", "response_a": a, "response_b": b,
                     "verdict": "good" if polite else "bad"})
    return rows


def test_errors_speak_in_flags(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _pairs(4)))
    assert cli.main(["analyze", str(data), "--quiet", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "Pass --columns prompt=COLUMN" in err and "columns={" not in err
    assert cli.main(["analyze", str(data), "--quiet", "--no-cache", "--columns", "prompt=question,label=verdict"]) == 2
    err = capsys.readouterr().err
    assert "--labels good=1,bad=0" in err and "labels={" not in err
    assert cli.main(["analyze", str(data), "--columns", "prompt=question,label=verdict", "--labels", "good"]) == 2
    assert "--labels expects value=label pairs" in capsys.readouterr().err
    assert cli.main(["analyze", str(data), "--columns", "prompt=question,label=verdict", "--labels", "good=7"]) == 2
    assert "--labels maps 'good' to '7'" in capsys.readouterr().err
    assert cli.main(["analyze", str(data), "--columns", "question=prompt"]) == 2
    assert "--columns maps unknown fields ['question']" in capsys.readouterr().err
    odd = tmp_path / "d.txt"
    odd.write_text("x")
    assert cli.main(["analyze", str(odd)]) == 2
    assert "pass --format jsonl" in capsys.readouterr().err
    assert cli.main(["analyze", str(data), "--columns", "prompt=question,label=verdict",
                     "--labels", "good=1,bad=0", "--no-cache"]) == 2
    assert "has no embedding_a/embedding_b columns: pass --embedder" in capsys.readouterr().err
    assert cli.main(["analyze", str(data), "--columns", "prompt=question,label=verdict", "--labels", "good=1,bad=0",
                     "--embedder", "http://127.0.0.1:9/v1"]) == 2
    assert "--embedding-model NAME" in capsys.readouterr().err
    assert cli.main(["analyze", str(data), "--k", "9", "--features", "8"]) == 2
    assert "--k 9 exceeds --features 8" in capsys.readouterr().err


def test_labels_flag_and_cache_in_the_user_cache_folder(tmp_path, capsys, monkeypatch):
    model = shared_path("models", "all-MiniLM-L6-v2")
    data = tmp_path / "d.csv"
    import csv

    with open(data, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(_pairs(1)[0]))
        writer.writeheader()
        writer.writerows(_pairs(60))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["analyze", str(data), "--embedder", str(model), "--out", str(tmp_path / "rep"), "--quiet",
                   "--columns", "prompt=question,label=verdict", "--labels", "good=1,bad=0",
                   "--features", "8", "--k", "2", "--epochs", "5"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["prediction"]["dense"]["auc"]["value"] > 0.9
    assert (tmp_path / "xdg" / "likeable" / "embeddings").is_dir()
    assert not (tmp_path / ".likeable-cache").exists()


def test_embedding_columns_need_no_embedder(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    from likeable import datasets

    syn = datasets.synthetic(n_pairs=400, n_users=4, n_features=8, seed=3)
    table = pa.table({"prompt": syn.prompt, "response_a": syn.response_a, "response_b": syn.response_b,
                      "label": syn.label, "user_id": syn.user_id.tolist(),
                      "embedding_a": pa.FixedSizeListArray.from_arrays(pa.array(syn.embeddings_a.ravel()), 64),
                      "embedding_b": pa.FixedSizeListArray.from_arrays(pa.array(syn.embeddings_b.ravel()), 64)})
    pq.write_table(table, tmp_path / "embedded.parquet")
    rc = cli.main(["analyze", str(tmp_path / "embedded.parquet"), "--out", str(tmp_path / "rep"), "--quiet",
                   "--no-cache", "--features", "16", "--k", "2", "--epochs", "3", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "rep" / "report.json").exists()

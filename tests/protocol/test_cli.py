import json


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

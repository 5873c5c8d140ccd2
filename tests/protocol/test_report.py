import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from likeable import Report


def _example(pair, activation):
    return {"pair": pair, "activation": activation, "prompt": "Human: <tell> me a joke",
            "response_a": f"A text {pair}", "response_b": f"B text {pair} & more", "chosen": "A" if pair % 2 else "B"}


def _feature(i, coef, p, n_examples=6, synthetic=False):
    f = {"feature": i, "description": f"words <{i}>", "coefficient": float(coef), "std_error": 0.1, "p_value": p,
         "share_active": 0.2, "direction": "positive when A has more of it than B, negative when B has more",
         "properties": [{"name": "humour", "r": 0.42, "low": 0.38, "high": 0.46, "n": 1000}],
         "descriptions": [{"source": "offline", "text": f"words <{i}>", "side": "A", "content": "x",
                           "fidelity": 0.8, "fidelity_n": 300, "fidelity_on": "all held-out pairs", "n_pairs": 120}],
         "fidelity": 0.8,
         "examples": [_example(10 * i + k, (1.0 if k % 2 else -1.0) * (2 - k / 10)) for k in range(n_examples)]}
    if synthetic:
        f.update(matched_attribute="humour", attribute_correlation=0.97)
    return f


def _results(with_personalization=True, synthetic=False, encoder=None):
    est = {"value": 0.71, "low": 0.68, "high": 0.74, "n": 800}
    r = {
        "dataset": {"source": "test <data>", "n_pairs": 1000, "n_train": 700, "n_test": 200},
        "encoder": encoder or {"normalized_mse": 0.12, "dead_fraction": 0.0, "mean_active": 4.0, "k": 4},
        "prediction": {"length": {"auc": est, "accuracy": est}, "dense": {"auc": est, "accuracy": est},
                       "all_features": {"auc": est, "accuracy": est}},
        "fraction_of_signal": {"length": 0.1, "dense": 1.0, "all_features": np.float32(0.9)},
        "features": [_feature(i, c, p, n, synthetic)
                     for i, (c, p, n) in enumerate([(1.5, 1e-6, 6), (-0.8, 0.01, 6), (0.05, 0.7, 3)])],
    }
    if synthetic:
        r["recovery"] = {"n_planted": 1, "directions_recovered": 1, "n_named": 1}
    if with_personalization:
        r["personalization"] = {"population_auc": 0.6, "per_user_auc": 0.7, "shrunk_auc": 0.75,
                                "drift_auc": 0.65, "n_users": 8, "gain_over_population": 0.15,
                                "few_shot": {"shots": [5, 10, 25], "shrunk": [0.6, 0.65, float("nan")]}}
        r["sessions"] = {"dimensions": ["humour", "length"], "likability": {"oracle": [1, 1], "adaptive": [0.2, 0.6]},
                         "by_dimension": {"adaptive": [[0.1, 0.2], [0.3, 0.4]]}}
    return r


def test_json_round_trip(tmp_path):
    rep = Report(_results())
    data = json.loads(rep.to_json(tmp_path / "r.json"))
    for key in ("encoder", "prediction", "fraction_of_signal", "features", "personalization", "sessions"):
        assert key in data
    assert data["personalization"]["few_shot"]["shrunk"][2] is None  # NaN -> null
    assert isinstance(data["fraction_of_signal"]["all_features"], float)
    back = Report.from_json(str(tmp_path / "r.json"))
    assert back.results == data and "auc" in repr(back)


def test_missing_keys_rejected():
    r = _results()
    del r["features"]
    with pytest.raises(ValueError, match="features"):
        Report(r)
    r = _results()
    del r["personalization"]["drift_auc"]
    with pytest.raises(ValueError, match="drift_auc"):
        Report(r)


def test_html_is_self_contained(tmp_path):
    path = Report(_results()).to_html(tmp_path / "report.html")
    with open(path, encoding="utf-8") as fh:
        page = fh.read()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 3  # feature effects, few-shot, sessions
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside
    assert "words &lt;0&gt;" in page and "<data>" not in page and "&lt;tell&gt;" in page  # escaped
    plain = Report(_results(with_personalization=False))
    assert set(plain.figures()) == {"feature_effects"}


def test_html_explains_itself(tmp_path):
    page = Path(Report(_results()).to_html(tmp_path / "r.html")).read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page)
    # findings first, with the numbers and their intervals
    assert page.index("Findings") < page.index("How well the features predict")
    assert "2 of 3 features have a significant length-controlled effect" in text
    assert "1,000 pairs: 700 to train, 200 held out" in text
    # a card per feature with enough pairs, most important first; the rare one listed
    assert page.count("class='card'") == 2 and page.index("Feature 0") < page.index("Feature 1")
    assert "fewer than 5 distinct pairs (too rare to read): 2" in text
    # examples as text, both directions, the response showing it highlighted, the chosen one marked
    assert "A text 1" in page and "B text 1 &amp; more" in page and page.count("chosen ✓") >= 12
    assert "3 with a positive activation: response A shows it more" in text
    assert "3 with a negative activation: response B shows it more" in text
    # every number has its definition; effect intervals are rendered from the standard error
    for words in ("AUC: chance", "Fraction of dense signal:", "Effect: change in the log-odds", "Fidelity:",
                  "Goes with: Pearson r", "Normalized MSE:", "Mean per-user AUC:", "Likability:"):
        assert words in text, words
    assert "+1.500 [+1.304, +1.696]" in text and "r = +0.42 [+0.38, +0.46]" in text
    assert "fidelity +0.80 on 300 all held-out pairs" in text
    # the session dimensions are named as the property bank measures them
    assert "humour markers (joke, funny, haha" in text
    # nothing synthetic on real data; the planted attribute only where something was planted
    assert "Planted attribute" not in text
    synthetic = Path(Report(_results(synthetic=True)).to_html(tmp_path / "s.html")).read_text(encoding="utf-8")
    assert "Planted attribute" in synthetic and "humour (r = +0.97)" in synthetic
    assert "Read with care" not in page  # a healthy result has no warnings


def test_html_warns(tmp_path):
    worrying = {"normalized_mse": 0.77, "dead_fraction": 0.94, "mean_active": 8.68, "k": 4, "best_epoch": 2,
                "epochs_run": 7}
    r = _results(encoder=worrying)
    r["config"] = {"epochs": 30}
    r["prediction"]["all_features"]["auc"] = {"value": 0.7, "low": 0.33, "high": 1.0, "n": 12}
    report = Report(r)
    kinds = [n.kind for n in report.warnings()]
    assert kinds == ["normalized_mse", "stopped_early", "l0_off_k", "dead_features", "few_test_pairs"]
    text = re.sub(r"<[^>]+>", " ", Path(report.to_html(tmp_path / "w.html")).read_text(encoding="utf-8"))
    assert "Read with care" in text and "normalized MSE 0.77" in text and "8.68 active features" in text
    assert "stopped after 7 of 30" in text and "Only 12 held-out pairs" in text and "94% of the features" in text


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _browser_env():
    """The browser is not our code: keep a sanitizer run's preloaded runtimes out of it."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def test_html_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    path = Report(_results()).to_html(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,2400",
           f"--screenshot={shot}", f"file://{path}"]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False, env=_browser_env())
    assert shot.exists() and os.path.getsize(shot) > 0
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]
    # the feature-effect bars are drawn in blue: the embedded PNGs really rendered
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.3)
    assert blue.sum() > 500
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", f"file://{path}"],
                         capture_output=True, text=True, timeout=120, env=_browser_env()).stdout
    assert "Encoder health" in dom and dom.count("<img") == 3
    assert "Findings" in dom and dom.count("class=\"card\"") == 2

import base64
import html
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


def _text(path) -> str:
    """A page's words as a reader sees them."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", Path(path).read_text("utf-8"))))


def _with_statistics(n_users=20, varying=True, significant=True):
    """_results() with what the statistics step adds (q, Bonferroni, intervals, per-user gains, ...)."""
    r = _results()
    est = lambda v, lo, hi, n=800: {"value": v, "low": lo, "high": hi, "n": n, "n_groups": 300}  # noqa: E731
    for f, q in zip(r["features"], (1e-5, 0.03, 0.8)):
        f.update(q_value=q, bonferroni=q < 1e-3)
    r["prediction"]["all_features"]["auc"] = est(0.71, 0.68, 0.74)
    r["fraction_of_signal_ci"] = {"all_features": est(0.9, 0.8, 1.0), "length": est(0.1, 0.0, 0.2)}
    r["fraction_beyond_length"] = {"all_features": est(0.85, 0.7, 0.99)}
    r["dense_tuning"] = {"grid": [1.0, 10.0], "cv_auc": [0.7, 0.72], "chosen": 10.0, "n_folds": 5}
    r["encoder"].update(mean_active=4.1, train_l0=4.0, threshold=0.15, threshold_before=0.12)
    r["dataset"].update(n_distinct_pairs=900, coerced={"prompt": 2, "response_a": 1})
    gain = est(0.15, 0.1, 0.2, n_users) if significant else est(0.01, -0.02, 0.04, n_users)
    p = r["personalization"]
    p.update(n_users=n_users, auc={"population": est(0.6, 0.55, 0.65, n_users), "shrunk": est(0.75, 0.7, 0.8)},
             gain=gain, gain_per_user_only=est(0.1, 0.05, 0.15), gain_significant=significant,
             user_gains={f"user{u}": 0.01 * u - 0.02 for u in range(n_users)},
             resampled="users" if n_users >= 10 else "test prompts within each user",
             variance_null="users shuffled within prompts/conversations", n_varying=2 if varying else 0,
             feature_variance=[{"feature": 0, "name": "feature 0", "variance": 4.0 if varying else 0.0,
                                "p_value": 0.001, "q_value": 0.002 if varying else 0.6, "significant": varying},
                               {"feature": 1, "name": "feature 1", "variance": 0.0, "p_value": 0.5,
                                "q_value": 0.6, "significant": False},
                               {"feature": None, "name": "length", "variance": 0.01, "p_value": 0.004,
                                "q_value": 0.006 if varying else 0.6, "significant": varying}])
    p["few_shot"] = {"shots": [5, 10], "n_draws": 20, "low": {"shrunk": [0.55, 0.6]}, "high": {"shrunk": [0.65, 0.7]},
                     "shrunk": [0.6, 0.65], "active": [0.63, 0.7]}
    return r


def test_html_presents_the_statistics(tmp_path):
    report = Report(_with_statistics())
    text = _text(report.to_html(tmp_path / "s.html"))
    said = " ".join(report.findings())
    # q and Bonferroni on the cards; the effects ordered by q
    assert "q < 0.001, passes Bonferroni" in text and "q = 0.030" in text
    # both fractions of the dense signal with intervals, the probe's tuning, the resampled units
    assert "0.900 [0.800, 1.000]" in text and "0.850 [0.700, 0.990]" in text and "1 (the reference)" in text
    assert "85% [70%, 99%] of what it predicts beyond length" in said
    assert "l2 = 10 (mean fold AUC 0.720), was chosen among 1, 10 by 5-fold" in text
    assert "from 300 prompts/conversations" in text
    # measured L0 next to k
    assert "4.100\xa0(k\xa0=\xa04)" in text and "Threshold before calibration" in text
    # personalization: intervals, the gain in words, the distribution of per-user gains
    assert "0.600 [0.550, 0.650]" in text and "+0.150 [+0.100, +0.200]" in text
    assert "Per-user weights help: +0.150 [+0.100, +0.200] AUC" in text and "resampling users" in text
    assert "Per-user gains (20 users)" in text and "user_gains" in report.figures()
    assert "17 of 20 users do better with their own weights" in said
    # which features vary by person, in words, clearest first, length named
    assert "People differ on 2 of 3 tested (the 2 features and length; permutation test, q < 0.05)" in said
    assert "feature 0 (x): per-user weights spread ±2 (SD), q = 0.002" in text and "length: per-user" in text
    # few-shot: bands over draws and the active curve
    assert "middle 95% of 20 draws" in said and "picked by expected information gain reach 0.630" in said
    # coerced text counted where the reader sees it; repeated texts counted
    assert "turned 3 non-text values in text columns into text (prompt 2, response_a 1)" in text
    assert "(900 distinct pairs of texts" in said


def test_html_says_plainly_when_people_do_not_differ(tmp_path):
    report = Report(_with_statistics(n_users=3, varying=False, significant=False))
    text = _text(report.to_html(tmp_path / "n.html"))
    assert "No significant per-user gain over the population model: +0.010 [-0.020, +0.040]" in text
    assert "People do not differ significantly on any of 3 tested" in text and "no significant per-user gain" in text
    # three users: each one's gain, not a histogram of three values
    assert "user_gains" not in report.figures() and "user2 +0.000" in " ".join(report.findings())
    assert "Per-user gains (3 users)" in text and "user1" in text


def test_html_says_so_when_every_user_has_the_population_model(tmp_path):
    r = _with_statistics(varying=False, significant=False)
    zero = {"value": 0.0, "low": 0.0, "high": 0.0, "n": 20, "n_groups": 20}
    r["personalization"].update(gain=zero, user_gains={f"user{u}": 0.0 for u in range(20)})
    report = Report(r)
    text = _text(report.to_html(tmp_path / "z.html"))
    assert "No per-user gain: no feature varies significantly by person" in text
    assert "Exactly 0 for every user" in text and "user_gains" not in report.figures()  # no one-bar histogram
    assert "exactly 0 for all 20 users" in " ".join(report.findings())

import base64
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from likeable import Report


def _results(with_personalization=True):
    est = {"value": 0.71, "low": 0.68, "high": 0.74, "n": 800}
    r = {
        "dataset": {"source": "test <data>", "n_pairs": 1000},
        "encoder": {"normalized_mse": 0.12, "dead_fraction": 0.0, "mean_active": 4.0},
        "prediction": {"length": {"auc": est, "accuracy": est}, "dense": {"auc": est, "accuracy": est},
                       "all_features": {"auc": est, "accuracy": est}},
        "fraction_of_signal": {"length": 0.1, "dense": 1.0, "all_features": np.float32(0.9)},
        "features": [{"feature": i, "description": f"words <{i}>", "coefficient": float(c),
                      "std_error": 0.1, "p_value": p, "share_active": 0.2}
                     for i, (c, p) in enumerate([(1.5, 1e-6), (-0.8, 0.01), (0.05, 0.7)])],
    }
    if with_personalization:
        r["personalization"] = {"population_auc": 0.6, "per_user_auc": 0.7, "shrunk_auc": 0.75,
                                "drift_auc": 0.65, "few_shot": {"shots": [5, 10, 25],
                                                                "shrunk": [0.6, 0.65, float("nan")]}}
        r["sessions"] = {"dimensions": ["a", "b"], "likability": {"oracle": [1, 1], "adaptive": [0.2, 0.6]},
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
    assert "words &lt;0&gt;" in page and "<data>" not in page  # escaped
    plain = Report(_results(with_personalization=False))
    assert set(plain.figures()) == {"feature_effects"}


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

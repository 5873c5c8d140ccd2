import json
import re
from pathlib import Path

import numpy as np
import pytest

import likeable as lk
from likeable import datasets
from likeable.protocol.simulate import FixedPolicy, RandomPolicy, simulate_sessions, simulated_user_weights


class _OnlineRidge:
    """Per-user ridge regression of choice on the attribute projection (test-only learner)."""

    def __init__(self, directions, n_users):
        self.directions = directions[:7]
        self.w = np.zeros((n_users, 7))
        self.xtx = np.tile(np.eye(7), (n_users, 1, 1))
        self.xty = np.zeros((n_users, 7))

    def scores(self, users, emb):
        return np.einsum("ucd,kd,uk->uc", emb, self.directions, self.w[users])

    def update(self, users, ea, eb, labels):
        x = (ea - eb) @ self.directions.T
        for u in np.unique(users):
            m = users == u
            self.xtx[u] += x[m].T @ x[m]
            self.xty[u] += x[m].T @ (2 * labels[m] - 1)
            self.w[u] = np.linalg.solve(self.xtx[u], self.xty[u])


def test_simulation_scaffolding_orders_policies():
    ds = datasets.synthetic(200, 4, 10, seed=0)
    weights = simulated_user_weights(12, seed=1)
    rng_draw = lambda n, rng: datasets.synthetic_candidates(ds.truth, n, rng)  # noqa: E731
    result = simulate_sessions({"adaptive": _OnlineRidge(ds.truth["directions"], 12),
                                "random": RandomPolicy(0),
                                "non-adaptive": FixedPolicy(lambda u, e: np.zeros(e.shape[:2]))},
                               weights, rng_draw, n_sessions=4, n_turns=6, n_candidates=6, seed=2)
    lik = result.likability
    np.testing.assert_allclose(lik["oracle"], 1.0)
    assert lik["adaptive"][-1] > 0.6 > lik["adaptive"][0]  # it learns over sessions
    assert abs(lik["random"].mean()) < 0.3 and abs(lik["non-adaptive"].mean()) < 0.3
    assert result.by_dimension["adaptive"].shape == (4, 7)
    assert result.choice_rate["oracle"].mean() > result.choice_rate["random"].mean()
    d = result.to_dict()
    assert d["dimensions"][0] == "emotional tone" and len(d["likability"]["adaptive"]) == 4
    with pytest.raises(ValueError, match="user_weights"):
        simulate_sessions({}, np.zeros((3, 5)), rng_draw)
    with pytest.raises(ValueError, match="scores of shape"):
        simulate_sessions({"bad": FixedPolicy(lambda u, e: np.zeros(3))}, weights, rng_draw, n_sessions=1)


def test_preference_policy_scores_each_user_only_on_its_own_candidates(rng):
    """Per (user, candidate) pair, equal to the block diagonal of scoring every user on every candidate."""
    from likeable.protocol.simulate import PreferencePolicy, candidate_codes

    X = rng.standard_normal((400, 12)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=16, k=3, seed=0).fit(X, epochs=2, progress=False)
    codes = enc.encode(X)
    y = (rng.random(400) < 0.5).astype(np.float32)
    model = lk.UserPreferences(shrinkage=1.0).fit(codes, y, rng.integers(0, 3, 400).astype(str))
    policy = PreferencePolicy(enc, model, ["0", "1", "2", "new"])
    users = np.array([3, 0, 2, 1, 0])  # repeated and unseen users
    emb = rng.standard_normal((5, 7, 12)).astype(np.float32)
    got = policy.scores(users, emb)
    every = model.score([policy.user_ids[u] for u in users], candidate_codes(enc, emb)).reshape(5, 5, 7)
    np.testing.assert_allclose(got, every[np.arange(5), np.arange(5)], rtol=1e-5, atol=1e-6)
    policy.update(users[:2], emb[:2, 0], emb[:2, 1], np.array([1.0, 0.0], np.float32))
    assert "new" in model.user_ids_


# --- the protocol end to end ------------------------------------------------------------
@pytest.fixture(scope="module")
def small_report():
    from likeable import EvalConfig, evaluate

    ds = datasets.synthetic(n_pairs=2000, n_users=8, n_features=10, seed=5)
    def annotator(description, a, b):
        """Judges by the description's words, as a careful reader of synthetic text would."""
        words = re.findall(r'"([^"]+)"', description)  # the offline description quotes its phrases
        count = lambda text: sum(text.split().count(w) for w in words)  # noqa: E731
        return float(np.sign(count(a) - count(b)))

    cfg = EvalConfig(epochs=15, n_boot=200, n_sessions=3, n_turns=4, n_sim_users=6,
                     few_shot=(5, 25), seed=0, threads=2,
                     annotator=annotator, n_described=4, n_fidelity_pairs=60)
    return ds, evaluate(ds, config=cfg)


def test_report_has_every_section(small_report):
    _, report = small_report
    r = report.results
    for key in ("encoder", "prediction", "fraction_of_signal", "features", "personalization", "sessions"):
        assert key in r
    for key in ("population_auc", "per_user_auc", "shrunk_auc", "drift_auc", "few_shot"):
        assert key in r["personalization"]
    assert set(r["prediction"]) == {"length", "dense", "all_features", "top_5", "top_10"}
    assert r["fraction_of_signal"]["dense"] == pytest.approx(1.0)
    assert len(r["features"]) == 32 and sum("description" in f for f in r["features"]) == 4
    assert all(len(f["top_pairs"]) <= 10 for f in r["features"])
    # top pairs come from the index: the strongest activations of that feature, in order
    f0 = max(r["features"], key=lambda f: len(f["top_pairs"]))
    acts = [p["activation"] for p in f0["top_pairs"]]
    assert acts == sorted(acts, reverse=True) and acts[0] > 0
    assert 0 <= r["encoder"]["dead_fraction"] <= 1 and r["encoder"]["normalized_mse"] < 0.6
    json.loads(report.to_json())


def test_recovers_planted_directions_and_users(small_report):
    ds, report = small_report
    r = report.results
    # every planted attribute has a feature that tracks it
    assert r["recovery"]["mean_best_correlation"] > 0.8
    # the most significant feature is named after its planted attribute's words
    from likeable.protocol.synthetic import ATTRIBUTE_WORDS

    top = min((f for f in r["features"] if f["p_value"] is not None), key=lambda f: f["p_value"])
    words = ATTRIBUTE_WORDS[top["matched_attribute"]]
    assert any(w in top["description"] for w in words)
    # descriptions agree with an annotator that reads the planted words
    fid = [f["fidelity"] for f in r["features"] if f.get("fidelity") is not None]
    assert len(fid) >= 3 and np.median(fid) > 0.7
    assert r["recovery"]["directions_recovered"] >= 8
    p = r["personalization"]
    assert p["weight_recovery"]["mean_user_correlation"] > 0.7
    assert p["shrunk_auc"] > p["population_auc"] + 0.03
    assert r["prediction"]["all_features"]["auc"]["value"] > 0.7
    lik = r["sessions"]["likability"]
    assert lik["adaptive"][-1] > lik["non-adaptive"][-1]


def test_evaluate_rejects_bad_input():
    from likeable import evaluate

    with pytest.raises(TypeError, match="PreferenceDataset"):
        evaluate([1, 2, 3])
    ds = datasets.synthetic(100, 2, 8)
    with pytest.raises(ValueError, match="unknown config keys"):
        evaluate(ds, config={"epoch": 3})
    text_only = datasets.PreferenceDataset(ds.prompt, ds.response_a, ds.response_b, ds.label)
    with pytest.raises(ValueError, match="embedder="):
        evaluate(text_only, config={"epochs": 1})


def test_mean_user_auc_matches_per_user_loop(rng):
    from likeable.protocol.metrics import auc, mean_user_auc

    y = rng.integers(0, 2, 300).astype(float)
    s = rng.random(300)
    u = rng.integers(0, 7, 300).astype(str)
    u[:5] = "small"  # too few pairs: left out
    kept = [k for k in np.unique(u) if (u == k).sum() >= 10 and 0 < y[u == k].sum() < (u == k).sum()]
    assert "small" not in kept
    assert mean_user_auc(y, s, u, 10) == pytest.approx(np.mean([auc(y[u == k], s[u == k]) for k in kept]))
    assert np.isnan(mean_user_auc(y[:0], s[:0], u[:0], 1))
    assert np.isnan(mean_user_auc(y[:20], s[:20], u[:20], 50))  # nobody has 50 pairs
    with pytest.raises(ValueError, match="differ in length"):
        mean_user_auc(y, s, u[:10])


def test_two_objective_users_gain_from_personalization(minilm_cache, capsys, tmp_path):
    """Real data, two users with conflicting goals: the per-user models beat the population's."""
    from conftest import shared_path

    data = lk.datasets.load(shared_path("data", "hh_rlhf_two_objectives_test.jsonl.gz"))
    embedder = lk.OnnxEmbedder(shared_path("models", "all-MiniLM-L6-v2"),
                               cache_dir=minilm_cache)
    report = lk.evaluate(data, embedder=embedder, config=lk.EvalConfig(progress=False))
    result = json.loads(report.to_json())["personalization"]
    beyond = report.result.fraction_beyond_length["all_features"]
    with capsys.disabled():
        print(f"\n[two objectives, protocol] population AUC {result['population_auc']:.3f}, per-user "
              f"{result['per_user_auc']:.3f}, shrunk {result['shrunk_auc']:.3f}, drift {result['drift_auc']:.3f}; "
              f"gain {result['gain']}; SAE's fraction of the dense signal beyond length {beyond}")
    assert result["per_user_auc"] > result["population_auc"] + 0.05
    assert result["shrunk_auc"] > result["population_auc"] + 0.05
    # two fixed users: their test prompts are resampled, and the gain's interval excludes 0
    assert result["resampled"] == "test prompts within each user" and result["gain"]["low"] > 0
    assert result["gain_significant"] and "per-user gain over the population" in report.summary()
    assert beyond.low < beyond.value < beyond.high  # an interval, however wide (length carries most signal)
    assert report.result.encoder.mean_active == pytest.approx(report.result.encoder.k, rel=0.1)
    said = " ".join(report.findings())
    assert "Per-user gains in AUC: harmless" in said and "People differ on" in said
    page = Path(report.to_html(tmp_path / "two.html")).read_text(encoding="utf-8")
    assert "Per-user gains (2 users)" in page and "Which features vary by person" in page


@pytest.mark.slow
def test_hh_rlhf_cards_show_pairs_as_text_and_properties_with_r(minilm_cache, tmp_path):
    """Real data (HH-RLHF harmless, MiniLM): every card shows >= 5 pairs as text; every described
    feature reports its property associations with r and an interval; the report explains itself."""
    from conftest import shared_path

    data = lk.datasets.load(shared_path("data", "hh_rlhf_harmless_test.jsonl.gz"))
    embedder = lk.OnnxEmbedder(shared_path("models", "all-MiniLM-L6-v2"),
                               cache_dir=minilm_cache)
    report = lk.evaluate(data, embedder=embedder, config=lk.EvalConfig(progress=False))
    r = report.result
    active = [f for f in r.features if f.share_active]
    assert active and all(len(f.examples) >= 5 for f in active)
    for f in active:
        assert all(e.response_a.strip() and e.response_b.strip() and e.prompt for e in f.examples)
    described = [f for f in r.features if f.descriptions]
    assert described
    for f in described:
        assert f.properties and all(-1 <= p.r <= 1 and p.low <= p.r <= p.high and p.n == len(data)
                                    for p in f.properties)
        assert f.descriptions[0].source == "offline" and f.descriptions[0].fidelity_n > 100
    assert r.findings and r.recovery is None
    page = Path(report.to_html(tmp_path / "hh.html")).read_text(encoding="utf-8")
    n_cards = page.count("class='card'")
    assert n_cards == len(active) and page.count("class='pair'") >= 5 * n_cards
    assert "Planted attribute" not in page and "Personalization" not in page  # nothing that does not apply
    # the statistics are presented: q on the cards, both fractions of the signal, L0 next to k
    assert "q &lt; 0.001" in page and "beyond length [95% CI]" in page and "(k&nbsp;=&nbsp;4)" in page
    assert "of what it predicts beyond length" in " ".join(r.findings)

"""The protocol's honest numbers on data with a known answer: L0 = k, length control, intervals,
which features vary by person, the per-user gain (or its absence), active selection, distinct
examples, the loader's coercion."""
import gzip
import json

import numpy as np
import pytest

import likeable as lk
from likeable import datasets
from likeable.protocol import personalize as P
from likeable.protocol.metrics import benjamini_hochberg, bonferroni
from likeable.protocol.split import distinct_pairs


@pytest.fixture(scope="module")
def default_result():
    """The synthetic default (what ``likeable demo`` runs), without the session simulation."""
    ds = datasets.synthetic()
    return ds, lk.evaluate(ds, config=lk.EvalConfig(sessions=False)).result


def test_batchtopk_keeps_k_features_per_pair(default_result):
    _, r = default_result
    assert r.encoder.train_l0 == pytest.approx(r.encoder.k, rel=0.02)
    assert r.encoder.mean_active == pytest.approx(r.encoder.k, rel=0.1)  # measured on test pairs
    assert r.encoder.threshold > 0 and r.encoder.threshold_before > 0


def test_every_model_has_the_length_control_and_shared_intervals(default_result):
    _, r = default_result
    assert {name: s.length_control for name, s in r.prediction.items()} == {
        "length": False, "dense": True, "all_features": True, "top_5": True, "top_10": True}
    tuning = r.dense_tuning
    assert tuning.n_folds == 5 and tuning.chosen == tuning.grid[int(np.nanargmax(tuning.cv_auc))]
    assert r.prediction["dense"].l2 == tuning.chosen
    for name, score in r.prediction.items():  # resampled by prompt components of the test part
        assert score.auc.low < score.auc.value < score.auc.high
        assert score.auc.n_groups is not None and score.auc.n_groups <= score.auc.n == r.dataset.n_test
    beyond = r.fraction_beyond_length
    assert set(beyond) == set(r.prediction) - {"length"} and beyond["dense"].value == 1.0
    auc = {name: s.auc.value for name, s in r.prediction.items()}
    expected = (auc["all_features"] - auc["length"]) / (auc["dense"] - auc["length"])
    assert beyond["all_features"].value == pytest.approx(expected)
    assert beyond["all_features"].low <= expected <= beyond["all_features"].high
    assert r.fraction_of_signal_ci["top_5"].value == pytest.approx(r.fraction_of_signal["top_5"])


def test_feature_effects_are_corrected_for_testing_every_feature(default_result):
    _, r = default_result
    p = np.array([np.nan if f.p_value is None else f.p_value for f in r.features])
    q = np.array([np.nan if f.q_value is None else f.q_value for f in r.features])
    np.testing.assert_allclose(q, benjamini_hochberg(p), equal_nan=True)
    np.testing.assert_array_equal([f.bonferroni for f in r.features], bonferroni(p))


def test_planted_varying_features_and_only_those_vary_by_person(default_result):
    ds, r = default_result
    varying = dict(zip(ds.truth["attribute_names"], ds.truth["varying"]))
    by_feature = {v.feature: v for v in r.personalization.feature_variance}
    tracked = [f for f in r.features if f.attribute_correlation is not None and abs(f.attribute_correlation) > 0.8]
    assert {f.matched_attribute for f in tracked} == set(varying)  # every planted attribute has a feature
    for f in tracked:
        assert by_feature[f.feature].significant == varying[f.matched_attribute], f
        assert (by_feature[f.feature].variance > 0.5) == varying[f.matched_attribute], f
    assert by_feature[None].name == "length" and by_feature[None].significant  # "length" is a varying attribute
    assert r.personalization.variance_null == "users shuffled within prompts/conversations"


def test_per_user_gain_with_intervals_and_planted_weights(default_result):
    _, r = default_result
    p = r.personalization
    assert p.weight_recovery.mean_user_correlation > 0.95
    assert p.gain_significant and p.gain.low > 0.05 and p.resampled == "users"
    assert p.gain.value == pytest.approx(p.shrunk_auc - p.population_auc)
    assert p.auc["shrunk"].n == p.auc["shrunk"].n_groups == p.n_users == 20
    assert np.mean(list(p.user_gains.values())) == pytest.approx(p.gain.value)


def test_few_shot_curve_averages_draws_and_active_selection_needs_fewer_pairs(default_result):
    _, r = default_result
    curve = r.personalization.few_shot
    assert curve.n_draws == 20 and set(curve.curves) == {"shrunk", "per_user_only", "active"}
    for name in ("shrunk", "per_user_only"):
        low, mean, high = (np.asarray(v[name]) for v in (curve.low, curve.curves, curve.high))
        assert (low <= mean).all() and (mean <= high).all() and (high - low).max() > 0
    at = {n: i for i, n in enumerate(curve.shots)}
    assert curve.curves["active"][at[15]] >= curve.curves["shrunk"][at[25]]


def test_without_personal_differences_the_report_says_so():
    ds = datasets.synthetic(2000, 16, 10, seed=0, n_varying=0)
    report = lk.evaluate(ds, config=lk.EvalConfig(epochs=15, sessions=False, n_boot=300, few_shot=(5, 25)))
    p = report.result.personalization
    assert not p.gain_significant and p.gain.low <= 0 <= p.gain.high
    assert p.n_varying == 0
    # the shrunk model does not fall below the population's by more than noise
    assert p.shrunk_auc >= p.population_auc - (p.gain.high - p.gain.low)
    assert "no significant per-user gain" in report.summary()


def test_user_shuffles_stay_within_prompts(rng):
    users = rng.integers(0, 5, 300)
    strata = rng.integers(0, 60, 300)
    shuffles, name = P._user_shuffles(users, strata, rng)
    assert name == "users shuffled within prompts/conversations"
    drawn = shuffles(7)
    assert drawn.shape == (7, 300)
    for row in drawn:
        for s in np.unique(strata):
            np.testing.assert_array_equal(np.sort(row[strata == s]), np.sort(users[strata == s]))
    assert (drawn != users).any()
    # prompts never shared by two users: shuffle across all pairs
    lonely, name = P._user_shuffles(users, np.arange(300), rng)
    assert name.startswith("users shuffled across all pairs")
    np.testing.assert_array_equal(np.sort(lonely(1)[0]), np.sort(users))


def test_active_selection_asks_the_most_informative_pair_first(rng):
    x = (rng.standard_normal((240, 6)) * (rng.random((240, 6)) < 0.5)).astype(np.float32)
    users = rng.integers(0, 4, 240).astype(str)
    y = (rng.random(240) < 0.5).astype(np.float32)
    population = lk.PreferenceModel.from_coefficients(rng.standard_normal(6))
    shrinkage = np.array([1.0, 2.0, np.inf, 0.5, 1.0, 1.0])
    pool = np.arange(240)
    codes = lk.SparseCodes.from_dense(x)
    models = P.active_curve(population, shrinkage, codes, y, users, pool, (1,), lambda m: m, lambda rows: None)
    prior = lk.UserPreferences(population=population, shrinkage=shrinkage).fit(x[:0], y[:0], users[:0])
    gain = prior.information_gain(x, users)
    first = [np.flatnonzero(users == u)[np.argmax(gain[users == u])] for u in np.unique(users)]
    expected = lk.UserPreferences(population=population, shrinkage=shrinkage).fit(x[first], y[first], users[first])
    np.testing.assert_allclose(models[0].weights(list(np.unique(users))), expected.weights(list(np.unique(users))),
                               rtol=1e-6, atol=1e-7)


def test_repeated_pairs_count_once_as_examples():
    base = datasets.synthetic(300, 3, 8, seed=2)
    rows = np.repeat(np.arange(300), 3)  # every pair judged by three annotators
    ds = base.subset(rows)
    ds.user_id = np.asarray([f"annotator{i % 3}" for i in range(len(ds))], dtype=object)
    assert distinct_pairs(ds).max() + 1 == 300
    swapped = datasets.PreferenceDataset(ds.prompt[:2], [ds.response_b[0], ds.response_a[1]],
                                         [ds.response_a[0], ds.response_b[1]], ds.label[:2])
    assert distinct_pairs(swapped)[0] == distinct_pairs(swapped)[1] or ds.prompt[0] != ds.prompt[1]
    report = lk.evaluate(ds, config=lk.EvalConfig(epochs=5, sessions=False, n_boot=50, few_shot=(5,), n_draws=2,
                                                  n_permutations=50))
    assert report.result.dataset.n_distinct_pairs == 300
    for f in report.result.features:
        texts = [distinct_pairs(ds)[p.pair] for p in f.top_pairs]
        assert len(texts) == len(set(texts))  # no pair of texts twice
        assert all(p.n_judgments == 3 for p in f.top_pairs)
    assert max(len(f.top_pairs) for f in report.result.features) == 10


def test_text_columns_with_json_booleans_and_numbers_load_as_text(tmp_path):
    rows = [{"prompt": "p1", "response_a": "yes", "response_b": "no", "label": 1, "user_id": "u1"},
            {"prompt": True, "response_a": 42, "response_b": "no", "label": 0, "user_id": "u2"},
            {"prompt": "p3", "response_a": "a", "response_b": 1.5, "label": 1, "user_id": 7}]
    path = tmp_path / "mixed.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    ds = datasets.load(path)
    assert ds.prompt == ["p1", "true", "p3"] and ds.response_a == ["yes", "42", "a"]
    assert ds.response_b == ["no", "no", "1.5"] and list(ds.user_id) == ["u1", "u2", "7"]
    assert ds.coerced == {"prompt": 1, "response_a": 1, "response_b": 1, "user_id": 1}
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps(rows[0]) + "\n")
    assert datasets.load(plain).coerced == {}
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n{not json\n")
    with pytest.raises(lk.FormatError, match="line 3"):
        datasets.load(broken)

"""The protocol's statistics against plain numpy/scipy references: grouped and per-user
bootstraps, ratios of AUCs, Benjamini–Hochberg and Bonferroni."""
import numpy as np
import pytest
from scipy.stats import false_discovery_control

from likeable.protocol import metrics


def _auc_reference(y, s):
    pos, neg = s[y == 1], s[y == 0]
    if not pos.size or not neg.size:
        return np.nan
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean()


def _grouped_data(rng, n_groups, size_range=(1, 6)):
    sizes = rng.integers(*size_range, n_groups)
    groups = np.repeat(rng.permutation(n_groups) * 7 + 3, sizes)  # arbitrary, unsorted keys
    y = rng.integers(0, 2, groups.size).astype(float)
    s = np.round(rng.standard_normal(groups.size), 1)  # ties on purpose
    return y, s, groups


@pytest.mark.parametrize("n_groups", [1, 2, 13, 80])
def test_grouped_resample_counts_draw_whole_groups(rng, n_groups):
    _, _, groups = _grouped_data(rng, n_groups)
    counts = metrics.resample_counts(groups.size, 50, rng, groups)
    assert counts.shape == (50, groups.size)
    keys, first = np.unique(groups, return_index=True)
    for key in keys:  # every pair of a group has its group's count
        members = counts[:, groups == key]
        assert (members == members[:, :1]).all()
    # each resample draws exactly n_groups groups
    np.testing.assert_array_equal(counts[:, first].sum(axis=1), np.full(50, len(keys)))


def test_grouped_bootstrap_auc_equals_the_loop_over_drawn_groups(rng):
    y, s, groups = _grouped_data(rng, 40)
    n_boot, seed = 150, 11
    est = metrics.bootstrap_auc(y, s, n_boot=n_boot, seed=seed, groups=groups)
    # reference: the same draws of group ids, each resample built by concatenating whole groups
    keys = np.unique(groups)
    draws = np.random.default_rng(seed).integers(0, keys.size, (n_boot, keys.size))
    samples = []
    for row in draws:
        idx = np.concatenate([np.flatnonzero(groups == keys[g]) for g in row])
        samples.append(_auc_reference(y[idx], s[idx]))
    samples = np.asarray(samples)
    lo, hi = np.quantile(samples[np.isfinite(samples)], [0.025, 0.975])
    assert est.value == pytest.approx(_auc_reference(y, s), abs=1e-12)
    assert (est.low, est.high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert est.n == y.size and est.n_groups == keys.size
    acc = metrics.bootstrap_accuracy(y, s, threshold=0.0, n_boot=n_boot, seed=seed, groups=groups)
    ref = [np.mean((s[idx] > 0) == (y[idx] == 1)) for idx in
           (np.concatenate([np.flatnonzero(groups == keys[g]) for g in row]) for row in draws)]
    assert (acc.low, acc.high) == tuple(pytest.approx(q, abs=1e-12) for q in np.quantile(ref, [0.025, 0.975]))


def test_grouping_widens_the_interval_when_pairs_of_a_prompt_agree(rng):
    """Twenty prompts, each judged fifty times alike: resampling pairs pretends 1000 independent
    judgments; resampling prompts gives the honest, wider interval."""
    prompt_effect = rng.standard_normal(20)
    groups = np.repeat(np.arange(20), 50)
    s = prompt_effect[groups] + 0.05 * rng.standard_normal(1000)
    y = (prompt_effect[groups] + rng.standard_normal(20)[groups] > 0).astype(float)
    by_pair = metrics.bootstrap_auc(y, s, n_boot=300, seed=1)
    by_prompt = metrics.bootstrap_auc(y, s, n_boot=300, seed=1, groups=groups)
    assert by_prompt.value == by_pair.value
    assert (by_prompt.high - by_prompt.low) > 2 * (by_pair.high - by_pair.low)


def test_shared_resamples_give_intervals_of_differences_and_ratios(rng):
    y = rng.integers(0, 2, 300).astype(float)
    strong, weak, base = y + rng.standard_normal(300), y + 2 * rng.standard_normal(300), rng.random(300)
    groups = rng.integers(0, 60, 300)
    samples = metrics.bootstrap_aucs(y, {"strong": strong, "weak": weak, "base": base}, 200, 3, groups)
    # each model's samples are the AUCs of the same weighted resamples
    counts = metrics.resample_counts(300, 200, np.random.default_rng(3), groups)
    np.testing.assert_allclose(samples["weak"], metrics.weighted_auc(y, weak, counts))
    ratio = metrics.fraction_beyond(samples["weak"], samples["base"], samples["strong"])
    expected = (samples["weak"] - samples["base"]) / (samples["strong"] - samples["base"])
    np.testing.assert_allclose(ratio, np.where(samples["strong"] > samples["base"], expected, np.nan))


def test_fraction_formulas():
    assert metrics.fraction_of_signal(0.7, 0.9) == pytest.approx(0.5)
    assert metrics.fraction_beyond(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert metrics.fraction_beyond(0.55, 0.6, 0.8) == pytest.approx(-0.25)  # worse than length alone
    assert np.isnan(metrics.fraction_beyond(0.7, 0.6, 0.6))  # the dense probe adds nothing to length
    assert np.isnan(metrics.fraction_beyond(0.7, 0.6, 0.55))
    assert np.isnan(metrics.fraction_of_signal(float("nan"), 0.8))
    out = metrics.fraction_beyond(np.array([0.7, 0.8]), np.array([0.6, 0.6]), np.array([0.8, 0.6]))
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1])


def _bh_reference(p):
    """q_i = min over j with p_j >= p_i of m p_j / rank_j, by a plain double loop (ties by order)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    rank = np.empty(m, int)
    rank[order] = np.arange(1, m + 1)
    return np.array([min(min(m * p[j] / rank[j] for j in range(m) if rank[j] >= rank[i]), 1.0) for i in range(m)])


@pytest.mark.parametrize("m", [1, 2, 7, 64])
def test_benjamini_hochberg_matches_hand_computation_and_scipy(rng, m):
    p = rng.random(m) ** 3
    p[: m // 3] = np.round(p[: m // 3], 2)  # ties
    q = metrics.benjamini_hochberg(p)
    np.testing.assert_allclose(q, _bh_reference(p), rtol=1e-12)
    np.testing.assert_allclose(q, false_discovery_control(p, method="bh"), rtol=1e-12)
    assert (q >= p * (1 - 1e-12)).all() and (q <= 1).all()


def test_benjamini_hochberg_and_bonferroni_skip_untested_features():
    p = np.array([0.001, np.nan, 0.02, 0.04, np.nan, 0.5])
    q = metrics.benjamini_hochberg(p)
    finite = np.isfinite(p)
    np.testing.assert_allclose(q[finite], false_discovery_control(p[finite], method="bh"))
    assert np.isnan(q[~finite]).all()
    # four tested: Bonferroni's bar is 0.05 / 4
    np.testing.assert_array_equal(metrics.bonferroni(p), [True, False, False, False, False, False])
    np.testing.assert_array_equal(metrics.bonferroni(p, alpha=0.2), [True, False, True, True, False, False])
    assert metrics.benjamini_hochberg([]).size == 0 and np.isnan(metrics.benjamini_hochberg([np.nan])).all()


def _user_data(rng, n_users=12, n=600):
    users = rng.integers(0, n_users, n).astype(str)
    y = rng.integers(0, 2, n).astype(float)
    a = y + rng.standard_normal(n)
    b = y + 1.5 * rng.standard_normal(n)
    return users, y, a, b


def test_user_bootstrap_resamples_users(rng):
    users, y, a, b = _user_data(rng)
    values, samples, n_users = metrics.bootstrap_user_aucs(y, {"a": a, "b": b}, users, 10, 120, 4)
    names = np.unique(users)
    per_user = {name: np.array([_auc_reference(y[users == u], s[users == u]) for u in names])
                for name, s in (("a", a), ("b", b))}
    assert n_users == names.size and values["a"] == pytest.approx(per_user["a"].mean())
    draws = np.random.default_rng(4).integers(0, names.size, (120, names.size))
    for name in ("a", "b"):
        np.testing.assert_allclose(samples[name], per_user[name][draws].mean(axis=1), rtol=1e-12)
    # the paired difference uses the same users in each resample
    np.testing.assert_allclose(samples["a"] - samples["b"], (per_user["a"] - per_user["b"])[draws].mean(axis=1))
    got_names, got = metrics.user_aucs(y, a, users, 10)
    np.testing.assert_array_equal(got_names, names)
    np.testing.assert_allclose(got, per_user["a"])


def test_fixed_users_resample_each_users_groups(rng):
    users, y, a, _ = _user_data(rng, n_users=2, n=300)
    groups = rng.integers(0, 90, 300)
    values, samples, n_users = metrics.bootstrap_user_aucs(y, {"a": a}, users, 1, 60, 9, resample_users=False,
                                                           groups=groups)
    rng_ref = np.random.default_rng(9)
    total = np.zeros(60)
    for u in np.unique(users):  # users in sorted order, each user's groups drawn whole
        rows = np.flatnonzero(users == u)
        keys = np.unique(groups[rows])
        draws = rng_ref.integers(0, keys.size, (60, keys.size))
        for b, row in enumerate(draws):
            idx = np.concatenate([rows[groups[rows] == keys[g]] for g in row])
            total[b] += _auc_reference(y[idx], a[idx])
    np.testing.assert_allclose(samples["a"], total / 2, rtol=1e-12)
    assert n_users == 2


def test_user_bootstrap_edges(rng):
    users, y, a, _ = _user_data(rng, n_users=3, n=30)
    values, samples, n = metrics.bootstrap_user_aucs(y, {"a": a}, users, min_pairs=1000, n_boot=10)
    assert np.isnan(values["a"]) and samples["a"].size == 0 and n == 0
    with pytest.raises(ValueError, match="differ in length"):
        metrics.user_aucs(y, a, users[:-1])
    est = metrics.interval(0.5, np.array([np.nan, np.nan]), 3)
    assert est.value == 0.5 and np.isnan(est.low) and np.isnan(est.high)

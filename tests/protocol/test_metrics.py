import numpy as np
import pytest

from likeable.protocol import metrics


def _auc_reference(y, s):
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean()


@pytest.mark.parametrize("n", [2, 3, 17, 500])
def test_auc_matches_pairwise_reference(rng, n):
    y = rng.integers(0, 2, n).astype(float)
    y[0], y[1] = 0, 1
    s = np.round(rng.standard_normal(n), 1)  # rounding forces ties
    assert metrics.auc(y, s) == pytest.approx(_auc_reference(y, s), abs=1e-12)


def test_auc_edges():
    assert np.isnan(metrics.auc([1, 1], [0.2, 0.3]))
    assert np.isnan(metrics.auc([], []))
    assert metrics.auc([0, 1], [0.1, 0.9]) == 1.0 and metrics.auc([0, 1], [0.9, 0.1]) == 0.0
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.auc([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc([0, 1], [np.nan, 1])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.auc([0, 1], [1])


def test_weighted_auc_equals_auc_of_resample(rng):
    y = rng.integers(0, 2, 60).astype(float)
    s = np.round(rng.standard_normal(60), 1)
    counts = metrics.resample_counts(60, 5, rng)
    got = metrics.weighted_auc(y, s, counts)
    for row, value in zip(counts, got):
        idx = np.repeat(np.arange(60), row.astype(int))
        assert value == pytest.approx(_auc_reference(y[idx], s[idx]), abs=1e-12)


def test_bootstrap_intervals_cover_and_shrink(rng):
    y = rng.integers(0, 2, 2000).astype(float)
    s = y + rng.standard_normal(2000) * 1.5
    est = metrics.bootstrap_auc(y, s, n_boot=400, seed=1)
    assert est.low < est.value < est.high and est.n == 2000
    small = metrics.bootstrap_auc(y[:200], s[:200], n_boot=400, seed=1)
    assert (small.high - small.low) > (est.high - est.low)
    acc = metrics.bootstrap_accuracy(y, 1 / (1 + np.exp(-(s - 0.5))), n_boot=300)
    assert acc.low < acc.value < acc.high
    assert acc.value == pytest.approx(metrics.accuracy(y, 1 / (1 + np.exp(-(s - 0.5)))))
    # the interval is reproducible from the seed
    assert metrics.bootstrap_auc(y, s, n_boot=400, seed=1) == est


def test_fraction_of_signal():
    assert metrics.fraction_of_signal(0.7, 0.9) == pytest.approx(0.5)
    assert np.isnan(metrics.fraction_of_signal(0.7, 0.5))


@pytest.mark.parametrize("n, p, q", [(2, 1, 1), (50, 7, 3), (301, 1, 12)])
def test_column_correlation_matches_corrcoef(rng, n, p, q):
    from likeable.protocol.metrics import column_correlation

    a, b = rng.standard_normal((n, p)), rng.standard_normal((n, q)).astype(np.float32)
    expected = np.corrcoef(a.T, b.T.astype(np.float64))[:p, p:]
    np.testing.assert_allclose(column_correlation(a, b), expected, atol=1e-6)
    a[:, 0] = 3.0  # a constant column has no correlation
    assert np.isnan(column_correlation(a, b)[0]).all()
    with pytest.raises(ValueError, match="same number of rows"):
        column_correlation(a, b[:-1])

import numpy as np
import pytest

from likeable import datasets
from likeable.simulate import FixedPolicy, RandomPolicy, simulate_sessions, simulated_user_weights


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

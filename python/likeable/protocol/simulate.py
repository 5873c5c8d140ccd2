"""Multi-session simulation: simulated users with hidden tastes, a system that adapts online.

Each simulated user has hidden weights over seven named dimensions
(:data:`likeable.datasets.SESSION_DIMENSIONS`). In every session and turn the system sees a
fresh set of candidate responses, ranks them with its current model of the user, shows its
top pick against another candidate, receives the user's Bradley-Terry choice and updates at
the end of the session. Likability is the hidden utility the top pick gains over an average
candidate, per dimension and in total, reported for each policy beside an oracle (which
knows the hidden weights) so curves can be read as a share of the best achievable.

:func:`simulate_users` is the protocol's step: an adaptive :class:`PreferencePolicy` against
the population model on the synthetic default's candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

import numpy as np

from .synthetic import SESSION_DIMENSIONS, simulated_user_weights, synthetic_candidates

if TYPE_CHECKING:
    from ..encoder import SparseEncoder
    from ..preferences import PreferenceModel, UserPreferences
    from .datasets import PreferenceDataset
    from .evaluate import EvalConfig
    from .results import Encoded, Split

__all__ = ["Policy", "OraclePolicy", "FixedPolicy", "RandomPolicy", "PreferencePolicy", "candidate_codes",
           "SessionResult", "simulate_sessions", "simulated_user_weights", "simulates", "simulate_users"]


class Policy(Protocol):
    """What the simulation needs from a system under test.

    ``scores(users, embeddings)`` gets the user of each candidate block and candidate
    embeddings of shape (n_users, n_candidates, dim); returns scores (n_users, n_candidates).
    ``update(users, embeddings_a, embeddings_b, labels)`` learns from the session's shown pairs
    (label 1 = A chosen).
    """

    def scores(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray: ...

    def update(self, users: np.ndarray, embeddings_a: np.ndarray, embeddings_b: np.ndarray,
               labels: np.ndarray) -> None: ...


class OraclePolicy:
    """Ranks by the hidden utility (it is handed the candidates' true attributes)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = np.asarray(weights, np.float64)
        self.attributes: np.ndarray | None = None  # set by the simulation each turn

    def scores(self, users, embeddings):
        return np.einsum("ucd,ud->uc", self.attributes, self.weights[users])

    def update(self, users, embeddings_a, embeddings_b, labels):
        pass


class FixedPolicy:
    """A non-adaptive baseline: scores with ``score_fn(users, embeddings)`` and never learns."""

    def __init__(self, score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.score_fn = score_fn

    def scores(self, users, embeddings):
        return np.asarray(self.score_fn(users, embeddings), np.float64)

    def update(self, users, embeddings_a, embeddings_b, labels):
        pass


class RandomPolicy:
    """Uniformly random picks."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def scores(self, users, embeddings):
        return self._rng.random(embeddings.shape[:2])

    def update(self, users, embeddings_a, embeddings_b, labels):
        pass


class PreferencePolicy:
    """Ranks each user's candidates by a :class:`likeable.UserPreferences` over their codes and
    learns from every session's shown pairs (``update``).

    ``user_ids[u]`` is the model's id of simulated user ``u``; candidates are centred within
    each user's block before encoding, so a code says how a candidate differs from its rivals.
    """

    def __init__(self, encoder: SparseEncoder, model: UserPreferences, user_ids) -> None:
        self.encoder, self.model = encoder, model
        self.user_ids = np.asarray(user_ids, dtype=object)

    def scores(self, users, embeddings):
        n_users, n_candidates = embeddings.shape[:2]
        owners = np.repeat(self.user_ids[users], n_candidates)  # each candidate scored for its own user only
        utility = self.model.decision_function(candidate_codes(self.encoder, embeddings), owners)
        return utility.reshape(n_users, n_candidates)

    def update(self, users, embeddings_a, embeddings_b, labels):
        pair_codes = self.encoder.encode(np.ascontiguousarray(embeddings_a - embeddings_b, np.float32))
        self.model.update(pair_codes, labels, self.user_ids[users])


def candidate_codes(encoder: SparseEncoder, embeddings: np.ndarray):
    """Codes of candidate blocks (n_users, n_candidates, dim), each centred on its block's mean."""
    centred = embeddings - embeddings.mean(axis=1, keepdims=True)
    return encoder.encode(centred.reshape(-1, centred.shape[-1]).astype(np.float32))


@dataclass
class SessionResult:
    """Likability per session for each policy.

    Attributes
    ----------
    dimensions : list of str
    likability : dict of str -> ndarray (n_sessions,)
        Utility gained by the top pick over an average candidate, as a share of the oracle's.
    by_dimension : dict of str -> ndarray (n_sessions, n_dimensions)
        The same gain split by dimension (raw utility units, not normalised).
    choice_rate : dict of str -> ndarray (n_sessions,)
        Share of shown pairs where the user chose the policy's top pick.
    """

    dimensions: list[str]
    likability: dict[str, np.ndarray] = field(default_factory=dict)
    by_dimension: dict[str, np.ndarray] = field(default_factory=dict)
    choice_rate: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"dimensions": list(self.dimensions),
                "likability": {k: v.tolist() for k, v in self.likability.items()},
                "by_dimension": {k: v.tolist() for k, v in self.by_dimension.items()},
                "choice_rate": {k: v.tolist() for k, v in self.choice_rate.items()}}


def simulate_sessions(policies: Mapping[str, Policy], user_weights: np.ndarray,
                      candidates: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]],
                      *, n_sessions: int = 5, n_turns: int = 10, n_candidates: int = 8,
                      choice_scale: float = 3.0, seed: int = 0, progress: bool = False) -> SessionResult:
    """Run every policy through the same sessions (common random numbers) and an oracle.

    Parameters
    ----------
    policies : mapping of name -> Policy
    user_weights : ndarray, shape (n_users, 7)
        Hidden weights over :data:`SESSION_DIMENSIONS`.
    candidates : callable
        ``candidates(n, rng) -> (attributes (n, n_attributes), embeddings (n, dim))``; the first
        seven attribute columns are the session dimensions.
    n_sessions, n_turns, n_candidates : int
    choice_scale : float
        Sharpness of the users' choices.
    seed : int
    progress : bool

    Returns
    -------
    SessionResult
    """
    weights = np.asarray(user_weights, np.float64)
    n_dims = len(SESSION_DIMENSIONS)
    if weights.ndim != 2 or weights.shape[1] != n_dims:
        raise ValueError(f"user_weights must have shape (n_users, {n_dims}), got {weights.shape}")
    if n_candidates < 2:
        raise ValueError("n_candidates must be at least 2 (a pick and an alternative are shown)")
    n_users = weights.shape[0]
    users = np.arange(n_users)
    oracle = OraclePolicy(weights)
    all_policies = {"oracle": oracle, **dict(policies)}
    gains = {name: np.zeros((n_sessions, n_dims)) for name in all_policies}
    chosen = {name: np.zeros(n_sessions) for name in all_policies}
    rng = np.random.default_rng(seed)
    sessions = range(n_sessions)
    if progress:
        from tqdm.auto import tqdm

        sessions = tqdm(sessions, desc="sessions", unit="session")
    for s in sessions:
        feedback = {name: ([], [], [], []) for name in all_policies}
        for _ in range(n_turns):
            attrs, emb = candidates(n_users * n_candidates, rng)
            attrs = attrs[:, :n_dims].reshape(n_users, n_candidates, n_dims).astype(np.float64)
            emb = emb.reshape(n_users, n_candidates, -1)
            oracle.attributes = attrs
            centred = attrs - attrs.mean(axis=1, keepdims=True)
            alt_offset = rng.integers(1, n_candidates, n_users)
            coin = rng.random(n_users)
            for name, policy in all_policies.items():
                score = np.asarray(policy.scores(users, emb), np.float64)
                if score.shape != (n_users, n_candidates):
                    raise ValueError(f"policy {name!r} returned scores of shape {score.shape}, "
                                     f"expected {(n_users, n_candidates)}")
                top = np.argmax(score, axis=1)
                alt = (top + alt_offset) % n_candidates  # any other candidate, same draw for all
                gains[name][s] += (weights * centred[users, top]).sum(axis=0) / (n_users * n_turns)
                margin = choice_scale * np.einsum("ud,ud->u", weights, attrs[users, top] - attrs[users, alt])
                label = (coin < 1.0 / (1.0 + np.exp(-margin))).astype(np.float32)
                chosen[name][s] += label.mean() / n_turns
                fb = feedback[name]
                fb[0].append(users)
                fb[1].append(emb[users, top])
                fb[2].append(emb[users, alt])
                fb[3].append(label)
        for name, policy in all_policies.items():
            fb = feedback[name]
            policy.update(np.concatenate(fb[0]), np.concatenate(fb[1]), np.concatenate(fb[2]),
                          np.concatenate(fb[3]))
    oracle_total = gains["oracle"].sum(axis=1)
    result = SessionResult(list(SESSION_DIMENSIONS))
    for name in all_policies:
        total = gains[name].sum(axis=1)
        result.likability[name] = np.where(oracle_total > 0, total / np.where(oracle_total > 0, oracle_total, 1), np.nan)
        result.by_dimension[name] = gains[name]
        result.choice_rate[name] = chosen[name]
    return result


# --------------------------------------------------------------------------------------
# The protocol's step
# --------------------------------------------------------------------------------------
def simulates(ds: PreferenceDataset) -> bool:
    """Whether the session simulation applies: synthetic data that plants every session dimension."""
    truth = ds.truth
    return "directions" in truth and len(truth["attribute_names"]) >= len(SESSION_DIMENSIONS)


def simulate_users(ds: PreferenceDataset, split: Split, encoded: Encoded, population: PreferenceModel,
                   shrinkage: float, cfg: EvalConfig) -> SessionResult:
    """Step 7 of :func:`likeable.evaluate`: simulated users over sessions, adaptive vs population.

    The adaptive system is a :class:`likeable.UserPreferences` around ``population`` fitted on
    the dataset's training pairs (so simulated users start at the population) and updated
    after every session; the non-adaptive one ranks by the population model alone.
    """
    from ..preferences import UserPreferences

    tr = split.train_decided
    weights = simulated_user_weights(cfg.n_sim_users, seed=cfg.seed + 1)
    sim_ids = [f"sim{u:03d}" for u in range(cfg.n_sim_users)]
    data_users = ds.user_id[tr] if ds.user_id is not None else np.full(tr.size, "population", object)
    model = UserPreferences(population=population, shrinkage=shrinkage, threads=cfg.threads).fit(
        encoded.codes[tr], ds.label[tr], data_users)
    encoder = encoded.encoder

    def population_scores(users, embeddings):
        return population.decision_function(candidate_codes(encoder, embeddings)).reshape(embeddings.shape[:2])

    policies = {"adaptive": PreferencePolicy(encoder, model, sim_ids), "non-adaptive": FixedPolicy(population_scores)}
    return simulate_sessions(policies, weights, lambda n, rng: synthetic_candidates(ds.truth, n, rng),
                             n_sessions=cfg.n_sessions, n_turns=cfg.n_turns, n_candidates=cfg.n_candidates,
                             seed=cfg.seed, progress=cfg.progress)

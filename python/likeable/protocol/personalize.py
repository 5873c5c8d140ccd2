"""Step 6 of the protocol: how much per-user models add over the population's.

Every model is scored the same way, as the mean over users of each user's held-out AUC
(:func:`likeable.protocol.metrics.mean_user_auc`): the population model; per-user weights
shrunk toward the population (``shrunk``); per-user weights shrunk toward zero (``per-user
only``); the drift baseline (each user's mean winner − loser direction); and a few-shot curve
of the two per-user models trained on 5, 10, ... pairs per user. On synthetic data the learned
per-user utilities are compared with the planted user weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..sparse import SparseCodes
from .metrics import mean_user_auc
from .results import FewShotCurve, Personalization, WeightRecovery

if TYPE_CHECKING:
    from ..preferences import PreferenceModel, UserPreferences
    from .datasets import PreferenceDataset
    from .evaluate import EvalConfig
    from .results import PairInputs, Split

__all__ = ["personalize"]


def personalize(ds: PreferenceDataset, split: Split, pairs: PairInputs, codes: SparseCodes,
                population: PreferenceModel, cfg: EvalConfig) -> Personalization:
    """Per-user models fitted on train, shrinkage chosen on validation, scored on test.

    With ``cfg.personalize_length`` the standardised length difference is one more feature
    column (people differ most plainly in how long they like answers) and the population
    model is refitted with it.
    """
    import scipy.sparse as sp

    from ..preferences import PreferenceModel, drift_weights

    tr, va, te = split.train_decided, split.validation_decided, split.test_decided
    users, y = ds.user_id, ds.label
    if cfg.personalize_length:
        codes = SparseCodes.from_scipy(sp.hstack([codes.to_scipy(), sp.csr_matrix(pairs.length_control)],
                                                 format="csr"))
        population = PreferenceModel(l2=cfg.l2).fit(codes[tr], y[tr])

    def held_out_auc(scores: np.ndarray) -> float:
        return mean_user_auc(y[te], scores, users[te], cfg.min_user_pairs)

    def user_model_auc(model: UserPreferences) -> float:
        return held_out_auc(model.predict_proba(codes[te], users[te]))

    # Per-user only: the same solver around all-zero population weights.
    zero = PreferenceModel.from_coefficients(np.zeros(codes.shape[1]))
    shrunk = _fit_best_shrinkage(population, codes, y, users, tr, va, cfg)
    alone = _fit_best_shrinkage(zero, codes, y, users, tr, va, cfg)
    drift = drift_weights(codes[tr], y[tr], users[tr])
    population_auc = held_out_auc(population.predict_proba(codes[te])[:, 1])
    shrunk_auc = user_model_auc(shrunk)
    few_shot = _few_shot((("shrunk", population, shrunk.shrinkage), ("per_user_only", zero, alone.shrinkage)),
                         codes, y, users, tr, user_model_auc, cfg)
    weight_recovery = _weight_recovery(ds.truth, shrunk, codes) if "user_weights" in ds.truth else None
    return Personalization(
        population_auc=population_auc, per_user_auc=user_model_auc(alone),
        shrunk_auc=shrunk_auc, drift_auc=held_out_auc(drift.decision_function(codes[te], users[te])),
        few_shot=few_shot, shrinkage=shrunk.shrinkage, per_user_shrinkage=alone.shrinkage,
        n_users=int(len(np.unique(users[tr]))), gain_over_population=shrunk_auc - population_auc,
        weight_recovery=weight_recovery)


def _fit_best_shrinkage(population: PreferenceModel, codes: SparseCodes, y: np.ndarray, users: np.ndarray,
                        tr: np.ndarray, va: np.ndarray, cfg: EvalConfig) -> UserPreferences:
    """UserPreferences around ``population`` with the shrinkage of ``cfg.shrinkage_grid`` that
    scores best on the validation part (the first value when there is none)."""
    from ..preferences import UserPreferences

    best, best_score = None, -np.inf
    for shrinkage in cfg.shrinkage_grid if va.size else cfg.shrinkage_grid[:1]:
        model = UserPreferences(population=population, shrinkage=shrinkage, threads=cfg.threads).fit(
            codes[tr], y[tr], users[tr])
        score = mean_user_auc(y[va], model.predict_proba(codes[va], users[va]), users[va]) if va.size else 0.0
        if best is None or (np.isfinite(score) and score > best_score):
            best, best_score = model, score
    return best


def _few_shot(models, codes: SparseCodes, y: np.ndarray, users: np.ndarray, tr: np.ndarray,
              score: Callable[[UserPreferences], float], cfg: EvalConfig) -> FewShotCurve:
    """``score`` of each ``(name, population, shrinkage)`` trained on ``n`` random train pairs per
    user, for each ``n`` of ``cfg.few_shot`` (the same draw for every model)."""
    from ..preferences import UserPreferences

    rng = np.random.default_rng(cfg.seed)
    by_user = [tr[users[tr] == u] for u in np.unique(users[tr])]
    curves: dict[str, list[float]] = {name: [] for name, _, _ in models}
    for n in cfg.few_shot:
        picked = np.concatenate([rng.permutation(rows)[:n] for rows in by_user])
        for name, population, shrinkage in models:
            model = UserPreferences(population=population, shrinkage=shrinkage, threads=cfg.threads).fit(
                codes[picked], y[picked], users[picked])
            curves[name].append(score(model))
    return FewShotCurve(shots=list(cfg.few_shot), curves=curves)


def _weight_recovery(truth: dict, model: UserPreferences, codes: SparseCodes) -> WeightRecovery:
    """Correlation of the learned per-user utilities, mapped to attribute space, with the planted weights."""
    attribute_difference = (truth["attributes_a"] - truth["attributes_b"]).astype(np.float64)
    utilities = np.asarray(model.score(list(truth["user_names"]), codes), np.float64).T  # pairs x users
    implied, *_ = np.linalg.lstsq(attribute_difference, utilities, rcond=None)  # attributes x users
    planted = np.asarray(truth["user_weights"], np.float64).T
    per_user = [np.corrcoef(implied[:, u], planted[:, u])[0, 1] for u in range(planted.shape[1])]
    return WeightRecovery(mean_user_correlation=float(np.nanmean(per_user)),
                          overall_correlation=float(np.corrcoef(implied.ravel(), planted.ravel())[0, 1]))

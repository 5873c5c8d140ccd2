"""Step 6 of the protocol: how much per-user models add over the population's, and for which features.

Every model is scored the same way, as the mean over users of each user's held-out AUC
(:func:`likeable.protocol.metrics.mean_user_auc`): the population model; per-user weights
shrunk toward the population (``shrunk``); per-user weights shrunk toward zero (``per-user
only``); the drift baseline (each user's mean winner − loser direction). Each with a bootstrap
interval, and the gain of ``shrunk`` over the population with one on the same resamples.

The shrinkage is estimated on the training pairs (``UserPreferences(shrinkage="auto")``:
empirical Bayes, one prior variance per feature), so a feature on which people do not differ
gets no per-user offset and the shrunk model falls back to the population where the data show
no personal differences. Which features vary by person is tested against a permutation null
(users' labels shuffled within prompts). The few-shot curve averages random draws of n pairs
per user, beside active selection (the pairs with the most expected information about the
user's offset). On synthetic data the learned per-user utilities are compared with the
planted user weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..sparse import SparseCodes
from .metrics import benjamini_hochberg, bootstrap_user_aucs, interval, mean_user_auc, user_aucs
from .results import FeatureVariance, FewShotCurve, Personalization, WeightRecovery

if TYPE_CHECKING:
    from ..preferences import PreferenceModel, UserPreferences
    from .datasets import PreferenceDataset
    from .evaluate import EvalConfig
    from .results import PairInputs, Split

__all__ = ["personalize", "personalization_shrinkage", "feature_variance_test", "few_shot_curves", "active_curve"]


def personalize(ds: PreferenceDataset, split: Split, pairs: PairInputs, codes: SparseCodes,
                population: PreferenceModel, cfg: EvalConfig) -> Personalization:
    """Per-user models fitted on train (shrinkage estimated there), scored on test.

    With ``cfg.personalize_length`` the standardised length difference is one more feature
    column (people differ most plainly in how long they like answers) and the population
    model is refitted with it; otherwise every model keeps the population's length control.
    """
    import scipy.sparse as sp

    from ..preferences import PreferenceModel, UserPreferences, drift_weights

    tr, te = split.train_decided, split.test_decided
    users, y = ds.user_id.astype(str), ds.label  # a str array: the engine looks ids up vectorised
    n_codes = codes.shape[1]
    control = None if cfg.personalize_length else pairs.length_control
    if cfg.personalize_length:
        codes = SparseCodes.from_scipy(sp.hstack([codes.to_scipy(), sp.csr_matrix(pairs.length_control)],
                                                 format="csr"))
        population = PreferenceModel(l2=cfg.l2).fit(codes[tr], y[tr])

    def rows(part):
        return None if control is None else control[part]

    def fit(prior, shrinkage) -> UserPreferences:
        return UserPreferences(population=prior, shrinkage=shrinkage, threads=cfg.threads).fit(
            codes[tr], y[tr], users[tr], rows(tr))

    # Unfitted: the shrunk model fits the same pooled model, then (shrinkage "auto") moves its
    # weights to the mean of the users' (the pooled fit attenuates what people differ on).
    shrunk = fit(PreferenceModel(l2=cfg.l2), cfg.shrinkage)
    names = [f"feature {j}" for j in range(n_codes)] + (["length"] if cfg.personalize_length else [])
    variance, null = feature_variance_test(codes[tr], y[tr], users[tr], population, rows(tr),
                                           None if split.components is None else split.components[tr],
                                           shrunk.prior_variance_, names, cfg)
    if cfg.shrinkage == "auto":
        # Offsets only where people demonstrably differ: an estimated variance the permutation
        # test cannot tell from chance (a rare feature, a handful of pairs per user) is noise.
        # With no feature varying the shrunk model is the population model (the pooled fit has
        # nothing to un-attenuate); otherwise every weight is the users' mean.
        significant = np.array([bool(v.significant) for v in variance])
        prior = shrunk.population_ if significant.any() else population
        shrunk = fit(prior, np.where(significant, np.asarray(shrunk.shrinkage_, np.float64), np.inf))
    # Per user only: the same solver around all-zero feature weights (the length control kept).
    zero = PreferenceModel.from_coefficients(np.zeros(codes.shape[1]), population.control_coef_, population.intercept_)
    alone = fit(zero, cfg.shrinkage)
    scores = {"population": population.predict_proba(codes[te], rows(te))[:, 1],
              "per_user_only": alone.predict_proba(codes[te], users[te], rows(te)),
              "shrunk": shrunk.predict_proba(codes[te], users[te], rows(te)),
              "drift": drift_weights(codes[tr], y[tr], users[tr]).decision_function(codes[te], users[te])}
    n_users = int(len(np.unique(users[tr])))
    by_user = n_users >= cfg.min_resampled_users
    groups = split.components[te] if split.components is not None else None
    values, samples, n_scored = bootstrap_user_aucs(y[te], scores, users[te], cfg.min_user_pairs, cfg.n_boot,
                                                    cfg.seed, resample_users=by_user, groups=groups)
    n_groups = n_scored if by_user else (None if groups is None else int(np.unique(groups).size))

    def estimate(name, base=None):
        value = values[name] - (values[base] if base else 0.0)
        return interval(value, samples[name] - (samples[base] if base else 0.0), n_scored, n_groups=n_groups)

    user_names, user_auc = user_aucs(y[te], scores["shrunk"], users[te], cfg.min_user_pairs)
    _, population_auc = user_aucs(y[te], scores["population"], users[te], cfg.min_user_pairs)
    gain = estimate("shrunk", "population")
    return Personalization(
        population_auc=values["population"], per_user_auc=values["per_user_only"], shrunk_auc=values["shrunk"],
        drift_auc=values["drift"], n_users=n_users, gain_over_population=gain.value,
        few_shot=few_shot_curves(shrunk.population_, zero, shrunk.shrinkage_, alone.shrinkage_, codes, y, users, tr,
                                 te, rows, cfg),
        weight_recovery=_weight_recovery(ds.truth, shrunk, codes) if "user_weights" in ds.truth else None,
        auc={name: estimate(name) for name in scores}, gain=gain,
        gain_per_user_only=estimate("per_user_only", "population"),
        gain_significant=bool(gain.low > 0) if np.isfinite(gain.low) else None,
        user_gains={str(u): float(a - b) for u, a, b in zip(user_names, user_auc, population_auc)},
        resampled="users" if by_user else "test prompts within each user",
        shrinkage_method="empirical Bayes per feature (Laplace marginal likelihood on the training pairs), "
                         "offsets on the features that vary significantly"
        if cfg.shrinkage == "auto" else f"fixed ({cfg.shrinkage})",
        feature_variance=variance, variance_null=null, n_varying=sum(bool(v.significant) for v in variance))


def personalization_shrinkage(personalization: Personalization | None) -> float:
    """One shrinkage for a system that meets new users (the session simulation): 1 / the mean
    estimated between-user variance of the features that vary, or 3.0 without an estimate.

    One value, not the per-feature estimate: simulated users need not agree with the data's
    users on the features those did not differ on.
    """
    if personalization is None or not personalization.feature_variance:
        return 3.0
    variance = np.array([v.variance for v in personalization.feature_variance if v.variance is not None], np.float64)
    varying = variance[np.isfinite(variance) & (variance > 0)]
    return float(1.0 / varying.mean()) if varying.size else 3.0


# --------------------------------------------------------------------------------------
# Which features vary by person
# --------------------------------------------------------------------------------------
def feature_variance_test(codes: SparseCodes, y: np.ndarray, users: np.ndarray, population: PreferenceModel,
                          controls, strata: np.ndarray | None, variance: np.ndarray, names: list[str],
                          cfg: EvalConfig) -> tuple[list[FeatureVariance], str]:
    """Per feature: the between-user variance and a permutation test of "it varies by person".

    The statistic is the variance-component score statistic at the population model (no
    per-user offsets): ``Σ_u (Σ_{i∈u} x_ij r_i)² / Σ_i x_ij² p_i(1 − p_i)`` with ``r = y − p``
    (about 1 when users do not differ on j). Its null shuffles users' labels among the pairs of
    each prompt/conversation (``strata``) when at least half the pairs share one with another
    user, else among all pairs; the population model does not change under the shuffle.
    Returns the records and how the null shuffled.
    """
    import scipy.sparse as sp

    x = codes.to_scipy().tocsr()
    p = np.asarray(population.predict_proba(codes, controls)[:, 1], np.float64)
    contribution = sp.csr_matrix(x.multiply((y - p)[:, None]))
    scale = np.asarray(x.multiply(x).T @ (p * (1.0 - p))).ravel()
    _, user_code = np.unique(users, return_inverse=True)
    user_code = user_code.ravel()
    n, n_users = user_code.size, int(user_code.max(initial=-1)) + 1

    def statistics(assignments: np.ndarray) -> np.ndarray:
        """The statistic of each row of user assignments (b, n): (b, n_features)."""
        b = assignments.shape[0]
        rows = (assignments + (np.arange(b) * n_users)[:, None]).ravel()
        indicator = sp.csr_matrix((np.ones(b * n), (rows, np.tile(np.arange(n), b))), shape=(b * n_users, n))
        totals = np.asarray((indicator @ contribution).toarray())
        return (totals * totals).reshape(b, n_users, -1).sum(axis=1)

    shuffles, null_name = _user_shuffles(user_code, strata, np.random.default_rng(cfg.seed + 17))
    observed = statistics(user_code[None, :])[0]
    exceed = np.zeros(observed.size)
    chunk = int(max(1, min(100, 2e6 // max(1, n_users * contribution.shape[1]))))
    for start in range(0, cfg.n_permutations, chunk):
        null = statistics(shuffles(min(chunk, cfg.n_permutations - start)))
        exceed += (null >= observed * (1 - 1e-12)).sum(axis=0)
    tested = scale > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(tested, observed / np.where(tested, scale, 1.0), np.nan)
    p_value = np.where(tested, (1.0 + exceed) / (1.0 + cfg.n_permutations), np.nan)
    q_value = benjamini_hochberg(p_value)
    n_codes = sum(name != "length" for name in names)
    records = [FeatureVariance(feature=j if j < n_codes else None, name=names[j], variance=float(variance[j]),
                               statistic=float(ratio[j]), p_value=float(p_value[j]), q_value=float(q_value[j]),
                               significant=bool(q_value[j] < 0.05) if np.isfinite(q_value[j]) else False)
               for j in range(observed.size)]
    return records, null_name


def _user_shuffles(user_code: np.ndarray, strata: np.ndarray | None, rng: np.random.Generator):
    """A function drawing ``b`` shuffles of the users at once, (b, n), within strata where users
    mix; and how it shuffles, in words."""
    n = user_code.size
    if strata is not None and n:
        _, stratum = np.unique(strata, return_inverse=True)
        stratum = stratum.ravel()
        lowest = np.full(stratum.max() + 1, np.iinfo(np.int64).max)
        highest = np.full(stratum.max() + 1, -1)
        np.minimum.at(lowest, stratum, user_code)
        np.maximum.at(highest, stratum, user_code)
        if (lowest[stratum] != highest[stratum]).mean() >= 0.5:  # pairs whose prompt another user judged too
            grouped = np.argsort(stratum, kind="stable")

            def within(b: int) -> np.ndarray:
                # Sorting stratum + U(0, 1) keeps strata in order and shuffles inside each.
                order = np.argsort(stratum[None, :] + rng.random((b, n)), axis=1)
                out = np.empty((b, n), np.int64)
                out[:, grouped] = user_code[order]
                return out

            return within, "users shuffled within prompts/conversations"
    return (lambda b: rng.permuted(np.tile(user_code, (b, 1)), axis=1)), \
        "users shuffled across all pairs (prompts are rarely shared by users)"


# --------------------------------------------------------------------------------------
# Few-shot curves: random draws and active selection
# --------------------------------------------------------------------------------------
def few_shot_curves(population: PreferenceModel, zero: PreferenceModel, shrunk_shrinkage, alone_shrinkage,
                    codes: SparseCodes, y: np.ndarray, users: np.ndarray, tr: np.ndarray, te: np.ndarray,
                    controls: Callable, cfg: EvalConfig) -> FewShotCurve:
    """Mean per-user test AUC after ``n`` training pairs per user, for each ``n`` of ``cfg.few_shot``.

    ``shrunk`` and ``per_user_only``: the mean over ``cfg.n_draws`` random draws (the same draw
    for both models), with the 2.5–97.5 % range of the draws; ``active``: the shrunk model fed
    the pairs :func:`active_curve` chooses. Every (draw, user) is one pseudo-user of a single
    fit: with the population and shrinkage fixed, users are solved independently, so this
    equals fitting each draw on its own.
    """
    from ..preferences import UserPreferences

    user_names, user_code = np.unique(users, return_inverse=True)
    user_code = user_code.ravel()
    n_users, n_draws = len(user_names), cfg.n_draws
    rng = np.random.default_rng(cfg.seed)
    by_user = [tr[user_code[tr] == u] for u in range(n_users)]
    orders = [[rng.permutation(rows) for rows in by_user] for _ in range(n_draws)]
    test_rows = np.tile(te, n_draws)
    test_ids = np.repeat(np.arange(n_draws), te.size) * n_users + user_code[test_rows]

    def per_draw(model: UserPreferences) -> np.ndarray:
        ids, aucs = user_aucs(y[test_rows], model.predict_proba(codes[test_rows], test_ids, controls(test_rows)),
                              test_ids, cfg.min_user_pairs)
        counts = np.bincount(ids // n_users, minlength=n_draws)
        total = np.bincount(ids // n_users, weights=aucs, minlength=n_draws)
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)

    models = (("shrunk", population, shrunk_shrinkage), ("per_user_only", zero, alone_shrinkage))
    draws = {name: np.full((n_draws, len(cfg.few_shot)), np.nan) for name, _, _ in models}
    for s, n in enumerate(cfg.few_shot):
        picked = [(order[:n], d * n_users + u) for d, per_user in enumerate(orders) for u, order in enumerate(per_user)]
        rows = np.concatenate([r for r, _ in picked])
        ids = np.concatenate([np.full(r.size, i, np.int64) for r, i in picked])
        for name, prior, shrinkage in models:
            model = UserPreferences(population=prior, shrinkage=shrinkage, threads=cfg.threads).fit(
                codes[rows], y[rows], ids, controls(rows))
            draws[name][:, s] = per_draw(model)
    curves = {name: _nan_mean(v).tolist() for name, v in draws.items()}
    low = {name: _nan_quantile(v, 0.025).tolist() for name, v in draws.items()}
    high = {name: _nan_quantile(v, 0.975).tolist() for name, v in draws.items()}

    def score(model: UserPreferences) -> float:
        return mean_user_auc(y[te], model.predict_proba(codes[te], users[te], controls(te)), users[te],
                             cfg.min_user_pairs)

    curves["active"] = active_curve(population, shrunk_shrinkage, codes, y, users, tr, cfg.few_shot, score,
                                    controls, cfg.threads)
    return FewShotCurve(shots=list(cfg.few_shot), n_draws=n_draws, low=low, high=high, curves=curves)


def active_curve(population: PreferenceModel, shrinkage, codes: SparseCodes, y: np.ndarray, users: np.ndarray,
                 pool: np.ndarray, shots, score: Callable[[UserPreferences], float], controls: Callable,
                 threads: int | None = None) -> list[float]:
    """``score`` of the shrunk model after each number of ``shots`` pairs per user, the pairs
    chosen one at a time per user: the pair of the user's ``pool`` with the largest expected
    information about the user's offset (:meth:`likeable.UserPreferences.information_gain`
    on the Laplace posterior), its label revealed and the user refitted."""
    from ..preferences import UserPreferences

    model = UserPreferences(population=population, shrinkage=shrinkage, threads=threads).fit(
        codes[pool[:0]], y[pool[:0]], users[pool[:0]], controls(pool[:0]))
    remaining = pool.copy()
    out, targets = [], sorted(set(int(n) for n in shots))
    value_at = {}
    for step in range(1, targets[-1] + 1 if targets else 1):
        if remaining.size:
            gain = model.information_gain(codes[remaining], users[remaining], controls(remaining))
            order = np.lexsort((-gain, users[remaining]))  # by user, most informative first
            first = np.r_[True, users[remaining][order][1:] != users[remaining][order][:-1]]
            chosen = remaining[order[first]]
            model.update(codes[chosen], y[chosen], users[chosen], controls(chosen))
            remaining = np.setdiff1d(remaining, chosen, assume_unique=True)
        if step in targets:
            value_at[step] = score(model)
    for n in shots:
        out.append(value_at.get(int(n), float("nan")))
    return out


def _nan_mean(values: np.ndarray) -> np.ndarray:
    counted = np.isfinite(values).sum(axis=0)
    total = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
    return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)


def _nan_quantile(values: np.ndarray, q: float) -> np.ndarray:
    out = np.full(values.shape[1], np.nan)
    for s in range(values.shape[1]):
        finite = values[np.isfinite(values[:, s]), s]
        if finite.size:
            out[s] = np.quantile(finite, q)
    return out


def _weight_recovery(truth: dict, model: UserPreferences, codes: SparseCodes) -> WeightRecovery:
    """Correlation of the learned per-user utilities, mapped to attribute space, with the planted weights."""
    attribute_difference = (truth["attributes_a"] - truth["attributes_b"]).astype(np.float64)
    utilities = np.asarray(model.score(list(truth["user_names"]), codes), np.float64).T  # pairs x users
    implied, *_ = np.linalg.lstsq(attribute_difference, utilities, rcond=None)  # attributes x users
    planted = np.asarray(truth["user_weights"], np.float64).T
    per_user = [np.corrcoef(implied[:, u], planted[:, u])[0, 1] for u in range(planted.shape[1])]
    return WeightRecovery(mean_user_correlation=float(np.nanmean(per_user)),
                          overall_correlation=float(np.corrcoef(implied.ravel(), planted.ravel())[0, 1]))

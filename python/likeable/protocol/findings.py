"""The report's words: a findings summary in plain sentences, warnings, and what each number means.

Pure functions of a :class:`~likeable.protocol.results.ProtocolResult`, so a report read back
from JSON (of this version or an older one) says the same. Numbers that the statistics step
may or may not have filled (q-values, intervals on personalization, per-user gains, measured
training L0, ...) are read with :func:`field` and used where present; the sentence says so
plainly where they are absent.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .results import FeatureResult, Notice, ProtocolResult

__all__ = ["findings", "warnings", "feature_order", "is_significant", "field", "varying_sentence", "varying_features",
           "variance_label", "short_name", "DEFINITIONS", "MIN_USERS_FOR_HISTOGRAM", "MODEL_NAMES"]

# One line under every number the report shows.
DEFINITIONS = {
    "auc": "AUC: chance that the model scores the chosen response of a held-out pair above the other "
           "(0.5 = coin flip, 1 = always right); in brackets a 95% bootstrap interval that resamples whole "
           "prompts/conversations of the test part.",
    "accuracy": "Accuracy: share of held-out pairs whose chosen response the model picks.",
    "fraction_of_signal": "Fraction of dense signal: (AUC − 0.5) / (AUC of the dense probe − 0.5) — how much of "
                          "what the full embedding difference predicts this model keeps; above 1 means it "
                          "matches the probe within noise.",
    "fraction_beyond_length": "Beyond length: (AUC − AUC of length alone) / (AUC of the dense probe − AUC of "
                              "length alone) — the share of what the probe predicts beyond length that this "
                              "model keeps (every model but length alone has the length control).",
    "length": "length: a model on the word-count difference alone (the baseline every feature must beat).",
    "dense": "dense: a logistic probe on the full embedding difference e(A) − e(B) (the reference).",
    "all_features": "all features: the population model on every sparse feature.",
    "top": "top n: refitted on the n features an L1 path picks first.",
    "effect": "Effect: change in the log-odds that A is chosen per unit of activation, with the length "
              "difference held fixed (a per-feature logistic on training pairs); 95% Wald interval.",
    "p_value": "p: two-sided test of no effect; q: p adjusted by Benjamini–Hochberg for testing every feature "
               "(the expected share of false findings among features with q below it); passes Bonferroni: "
               "p < 0.05 / features tested (no false finding at all, with 95% confidence).",
    "share_active": "Active: share of all pairs on which the feature fires (either sign).",
    "fidelity": "Fidelity: correlation between the feature's activation and an annotator's judgement of the "
                "description on held-out pairs (1 = the description tells exactly where it fires, 0 = not "
                "at all); the offline description is judged by counting its phrases and measuring its "
                "properties.",
    "properties": "Goes with: Pearson r between the activation and a text property's A − B difference over "
                  "all pairs (r > 0: A has more of it when the feature is positive); 95% interval.",
    "normalized_mse": "Normalized MSE: reconstruction error of Δ on held-out pairs over its variance "
                      "(0 = perfect, 1 = no better than the mean).",
    "dead_fraction": "Dead features: share of features that never fire on held-out pairs.",
    "mean_active": "Active per pair (L0): mean number of features firing on a held-out pair; should be near k.",
    "train_l0": "Training L0: mean active features per training pair after the threshold is calibrated.",
    "threshold": "BatchTopK threshold: the activation a feature must pass at inference, calibrated so that "
                 "training pairs use k features on average.",
    "threshold_before": "Threshold before calibration: the training's moving average the calibrated one replaced.",
    "k": "k: features each pair may use (the sparsity the encoder was trained for).",
    "n_features": "Features (M): how many features the encoder has.",
    "kind": "Kind: how the encoder keeps k features (topk per pair, batchtopk per batch with a learned threshold).",
    "signed": "Signed: a feature may fire negative (B has more of it) as well as positive (A has more).",
    "matryoshka": "Matryoshka prefixes: nested feature counts trained to work on their own.",
    "measured_on": "Measured on: the pairs these health numbers come from.",
    "best_epoch": "Best epoch: the epoch whose weights were kept (validation error lowest), counted from 1.",
    "epochs_run": "Epochs run: epochs trained before early stopping.",
    "encode_rows_per_s": "Encode throughput: pairs encoded per second on this machine.",
    "personalization": "Mean per-user AUC: each user's AUC on their own held-out pairs, averaged over users.",
    "population": "population: one model for everyone.",
    "shrunk": "shrunk: per-user weights pulled toward the population's.",
    "per_user_only": "per-user only: per-user weights pulled toward zero (no shared model).",
    "drift": "drift: each user's mean chosen − rejected direction (a simple baseline).",
    "gain": "Gain: shrunk minus population, in mean per-user AUC, on the same bootstrap resamples (of users "
            "when there are enough, else of each user's test prompts).",
    "user_gains": "Per-user gain: one user's held-out AUC with their own shrunk weights minus with the "
                  "population model's.",
    "varies": "Varies by person: a permutation test of whether users' choices differ on this feature more than "
              "chance (users' labels shuffled), q adjusted by Benjamini–Hochberg over the features; spread: the "
              "standard deviation of the per-user weight between users (empirical Bayes; 0 = everyone agrees).",
    "few_shot": "Few-shot: mean per-user held-out AUC after training on n pairs per user. Random pairs: mean of "
                "the draws, band = middle 95% of the draws; active: pairs picked by expected information gain "
                "(one sequence, no band).",
    "likability": "Likability: the hidden utility a policy's pick gains over an average candidate, as a share "
                  "of what an oracle that knows each simulated user's tastes gains.",
}
MODEL_NAMES = {"length": "length alone", "dense": "dense probe", "all_features": "all features"}

_HIGH_MSE = 0.5
_L0_TOLERANCE = 0.10
_FEW_TEST_PAIRS = 200
_WIDE_CI = 0.15
_MANY_DEAD = 0.5
MIN_USERS_FOR_HISTOGRAM = 5


def field(record: Any, name: str, default: Any = None) -> Any:
    """A record's field that this version may lack (filled by later steps); NaN counts as absent."""
    value = getattr(record, name, default) if record is not None else default
    if isinstance(value, float) and math.isnan(value):
        return default
    return value


def is_significant(f: FeatureResult, alpha: float = 0.05) -> bool:
    """q < alpha where the Benjamini–Hochberg q exists, else p < alpha."""
    q = field(f, "q_value")
    value = q if q is not None else field(f, "p_value")
    return value is not None and value < alpha


def feature_order(features: Sequence[FeatureResult]) -> list[FeatureResult]:
    """Most important first: significant before not, then by |length-controlled effect|; silent last."""
    def key(f: FeatureResult):
        active = (field(f, "share_active") or 0) > 0
        coef = field(f, "coefficient")
        return (not active, not is_significant(f), -abs(coef) if coef is not None else 0.0, f.feature)

    return sorted(features, key=key)


def findings(r: ProtocolResult, n_features: int = 3) -> list[str]:
    """The report's opening sentences, most telling first."""
    out = []
    ds = r.dataset
    if ds is not None and ds.n_pairs:
        users = f", {ds.n_users} users" if ds.n_users else ""
        split = (f": {ds.n_train:,} to train, {ds.n_test:,} held out to test (whole prompts/conversations kept "
                 "on one side)") if ds.n_train is not None and ds.n_test is not None else ""
        distinct = field(ds, "n_distinct_pairs")
        repeated = (f" ({distinct:,} distinct pairs of texts: a pair judged more than once counts once as an "
                    "example)") if distinct is not None and distinct < ds.n_pairs else ""
        out.append(f"{ds.n_pairs:,} pairs{repeated}{users}{split}.")
    out += _prediction_sentences(r)
    out += _feature_sentences(r, n_features)
    if r.personalization is not None:
        out.append(_personalization_sentence(r))
        out += [s for s in (_user_gains_sentence(r.personalization), varying_sentence(r),
                            _few_shot_sentence(r.personalization)) if s]
    if r.sessions is not None and r.sessions.likability:
        out.append(_sessions_sentence(r))
    if r.recovery is not None:
        rec = r.recovery
        named = field(rec, "n_named")
        said = f"; the offline describer names {named} of them on the right side" if named is not None else ""
        out.append(f"Planted attributes (synthetic data): {rec.directions_recovered} of {rec.n_planted} found "
                   f"by a decoder direction (cosine > 0.9){said}.")
    return out


def _prediction_sentences(r: ProtocolResult) -> list[str]:
    pred = r.prediction
    dense, length, sparse = pred.get("dense"), pred.get("length"), pred.get("all_features")
    if dense is None or dense.auc is None:
        return []
    text = f"The dense probe predicts held-out choices with AUC {_est(dense.auc)}"
    if length is not None and length.auc is not None:
        text += f"; length alone reaches {_est(length.auc)}"
    out = [text + "."]
    if sparse is not None and sparse.auc is not None:
        share = _fraction(r, "all_features")
        n = len(r.features)
        beyond = (field(r, "fraction_beyond_length") or {}).get("all_features")
        after = f" ({_pct_est(beyond)} of what it predicts beyond length)" if beyond is not None else ""
        out.append(f"All {n} sparse features together reach AUC {_est(sparse.auc)}, {share} of the dense "
                   f"probe's signal{after}.")
        tops = sorted((k for k in pred if k.startswith("top_")), key=lambda k: int(k[4:]))
        if tops:
            out[-1] = out[-1][:-1] + "; " + ", ".join(f"the best {k[4:]} keep {_fraction(r, k)}" for k in tops) + "."
    return out


def _fraction(r: ProtocolResult, name: str) -> str:
    ci = (field(r, "fraction_of_signal_ci") or {}).get(name)
    return _pct_est(ci) if ci is not None else _pct(r.fraction_of_signal.get(name))


def _feature_sentences(r: ProtocolResult, n: int) -> list[str]:
    active = [f for f in feature_order(r.features) if (field(f, "share_active") or 0) > 0]
    strong = [f for f in active if is_significant(f)]
    corrected = any(field(f, "q_value") is not None for f in r.features)
    test = "q < 0.05 after correcting for testing every feature" if corrected else "p < 0.05, uncorrected"
    if not strong:
        return [f"No feature has a significant length-controlled effect on the choice ({test})."]
    out = [f"{len(strong)} of {len(r.features)} features have a significant length-controlled effect on the "
           f"choice ({test}); the strongest:"]
    for f in strong[:n]:
        fid = f" — fidelity {f.fidelity:.2f}" if field(f, "fidelity") is not None else ""
        out.append(f"Feature {f.feature} (effect {_effect(f)}): {f.description or '(not described)'}{fid}.")
    return out


def _personalization_sentence(r: ProtocolResult) -> str:
    p = r.personalization
    users = f" over {p.n_users} users" if p.n_users else ""
    aucs = field(p, "auc") or {}
    pop = aucs.get("population")
    shrunk = aucs.get("shrunk")
    pop_text = _est(pop) if pop is not None else _num(p.population_auc)
    shrunk_text = _est(shrunk) if shrunk is not None else _num(p.shrunk_auc)
    text = f"Personalization{users}: mean per-user AUC {shrunk_text} with per-user weights against {pop_text} " \
           "for the population model"
    gain = field(p, "gain")
    significant = field(p, "gain_significant")
    if gain is not None:
        text += f"; gain {signed(gain.value)} [{signed(gain.low)}, {signed(gain.high)}]"
        resampled = field(p, "resampled")
        if resampled:
            text += f" (95% interval resampling {resampled})"
        if significant is False:
            text += " — no significant per-user gain"
    elif p.gain_over_population is not None and math.isfinite(p.gain_over_population):
        text += f"; gain {signed(p.gain_over_population)} (no interval computed)"
    return text + "."


def _user_gains_sentence(p) -> str | None:
    gains = [g for g in (field(p, "user_gains") or {}).values() if g is not None and math.isfinite(g)]
    if not gains:
        return None
    ahead = sum(g > 0 for g in gains)
    if all_zero(gains):
        return (f"Per-user gains: exactly 0 for all {len(gains)} users — with no feature varying by person, "
                "each user's model is the population's.")
    if len(gains) < MIN_USERS_FOR_HISTOGRAM:
        each = ", ".join(f"{u} {signed(g)}" for u, g in (field(p, "user_gains") or {}).items())
        return f"Per-user gains in AUC: {each}."
    gains.sort()
    median = gains[len(gains) // 2] if len(gains) % 2 else (gains[len(gains) // 2 - 1] + gains[len(gains) // 2]) / 2
    return (f"Per-user gains: {ahead} of {len(gains)} users do better with their own weights; median gain "
            f"{signed(median)}, from {signed(gains[0])} to {signed(gains[-1])}.")


def all_zero(values) -> bool:
    """Whether every value is 0 up to rounding (the shrunk model is the population model)."""
    return all(abs(v) < 1e-12 for v in values)


def varying_sentence(r: ProtocolResult) -> str | None:
    """Which features people weigh differently, in words (or that they do not)."""
    p = r.personalization
    tested = field(p, "feature_variance")
    if not tested:
        return None
    varying = varying_features(p)
    if not varying:
        gain = "" if field(p, "gain_significant") is not False else "; no significant per-user gain either"
        return f"People do not differ significantly on any of {_tested(tested)}: one model fits everyone{gain}."
    names = {f.feature: short_name(f) for f in r.features}
    shown = [variance_label(v, names) for v in varying[:3]] + (
        [f"{len(varying) - 3} more"] if len(varying) > 3 else [])
    joined = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"People differ on {len(varying)} of {_tested(tested)}, most clearly {joined}."


def _tested(tested) -> str:
    features = sum(field(v, "feature") is not None for v in tested)
    extra = [field(v, "name") or "length" for v in tested if field(v, "feature") is None]
    what = f"the {features} feature{'s' if features != 1 else ''}" + "".join(f" and {name}" for name in extra)
    return f"{len(tested)} tested ({what}; permutation test, q < 0.05)"


def short_name(f: FeatureResult) -> str:
    """What a feature stands for in a few words: its primary description's phrases, else the description."""
    primary = (field(f, "descriptions") or [None])[-1]
    return (field(primary, "content") or "") or (f.description or "")


def varying_features(p) -> list:
    """The significant per-user variances, clearest first (q, then spread)."""
    varying = [v for v in field(p, "feature_variance") or [] if field(v, "significant")]
    return sorted(varying, key=lambda v: (field(v, "q_value", 1.0), -(field(v, "variance") or 0.0)))


def variance_label(v, names: dict) -> str:
    """``feature 3 (its name)``, or the column's name (length)."""
    feature = field(v, "feature")
    if feature is None:
        return field(v, "name") or "length"
    text = names.get(feature) or ""
    return f"feature {feature} ({text})" if text else f"feature {feature}"


def _few_shot_sentence(p) -> str | None:
    curve = p.few_shot
    shots, curves = list(curve.shots or []), curve.curves
    if not shots or "shrunk" not in curves:
        return None
    low, high = field(curve, "low") or {}, field(curve, "high") or {}
    i = 0
    random = _num(curves["shrunk"][i])
    if "shrunk" in low and "shrunk" in high:
        random += f" [{_num(low['shrunk'][i])}, {_num(high['shrunk'][i])}]"
    draws = field(curve, "n_draws")
    text = (f"Few-shot: with {shots[i]} random pairs per user the shrunk model reaches {random}"
            + (f" (mean and middle 95% of {draws} draws)" if draws else ""))
    if "active" in curves:
        text += f"; {shots[i]} pairs picked by expected information gain reach {_num(curves['active'][i])}"
    return text + "."


def _sessions_sentence(r: ProtocolResult) -> str:
    lik = r.sessions.likability
    last = {k: float(v[-1]) for k, v in lik.items() if len(v) and k != "oracle"}
    n = max(len(v) for v in lik.values())
    parts = [f"{k} {_pct(v)}" for k, v in last.items()]
    return f"Simulated sessions: after {n} sessions the policies reach " + ", ".join(parts) + \
        " of the oracle's likability."


# --------------------------------------------------------------------------------------
def warnings(r: ProtocolResult) -> list[Notice]:
    """The conditions that should worry a reader, each with what to do."""
    out = []
    enc = r.encoder
    mse = field(enc, "normalized_mse")
    if mse is not None and mse > _HIGH_MSE:
        out.append(Notice(kind="normalized_mse", message=(
            f"The encoder reconstructs held-out Δ poorly (normalized MSE {mse:.2f}; above {_HIGH_MSE} the features "
            "miss most of the embedding difference). More features or more data may help.")))
    epochs = (r.config or {}).get("epochs")
    run, best = field(enc, "epochs_run"), field(enc, "best_epoch")
    if epochs and run is not None and best is not None and run < epochs and best + 1 < 0.25 * epochs:
        out.append(Notice(kind="stopped_early", message=(
            f"Training stopped early: best epoch {best + 1}, stopped after {run} of {epochs}. The encoder (and a "
            "BatchTopK threshold) may not have settled; a lower learning rate or more patience may help.")))
    k, l0 = field(enc, "k"), field(enc, "mean_active")
    if k and l0 is not None and abs(l0 - k) > _L0_TOLERANCE * k:
        out.append(Notice(kind="l0_off_k", message=(
            f"Measured L0 strays from k: {l0:.2f} active features per held-out pair with k = {k}. Effects and "
            "descriptions then mix more features per pair than the encoder was trained for.")))
    dead = field(enc, "dead_fraction")
    if dead is not None and dead > _MANY_DEAD:
        out.append(Notice(kind="dead_features", message=(
            f"{dead:.0%} of the features never fire on held-out pairs: fewer features (n_features) or more "
            "data would use the encoder better.")))
    sparse = r.prediction.get("all_features")
    if sparse is not None and sparse.auc is not None:
        n = sparse.auc.n
        width = sparse.auc.high - sparse.auc.low if math.isfinite(sparse.auc.high - sparse.auc.low) else None
        if n is not None and n < _FEW_TEST_PAIRS:
            out.append(Notice(kind="few_test_pairs", message=(
                f"Only {n} held-out pairs: every AUC here is uncertain (all features: {_est(sparse.auc)}).")))
        elif width is not None and width > _WIDE_CI:
            out.append(Notice(kind="wide_ci", message=(
                f"Wide interval on held-out AUC ({_est(sparse.auc)}): differences between models smaller than "
                f"{width:.2f} are not established.")))
    coerced = field(r.dataset, "coerced") or {}
    if any(coerced.values()):
        counts = ", ".join(f"{column} {n:,}" for column, n in coerced.items() if n)
        out.append(Notice(kind="coerced", message=(
            f"The loader turned {sum(coerced.values()):,} non-text values in text columns into text ({counts}): "
            "JSON booleans or numbers where text was expected. Check those rows of the file.")))
    p = r.personalization
    if p is not None and p.n_users is not None and p.n_users < 5:
        out.append(Notice(kind="few_users", message=(
            f"Only {p.n_users} users: per-user numbers rest on very few people.")))
    return out


# --------------------------------------------------------------------------------------
def _est(e) -> str:
    return f"{_num(e.value)} [{_num(e.low)}, {_num(e.high)}]"


def _pct_est(e) -> str:
    return f"{_pct(e.value)} [{_pct(e.low)}, {_pct(e.high)}]"


def _num(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def signed(v, digits: int = 3) -> str:
    """``+0.123``; ``–`` when absent or not finite."""
    return "–" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.0%}"


def effect_interval(f: FeatureResult) -> tuple[float, float] | None:
    """95% Wald interval of the length-controlled effect."""
    coef, se = field(f, "coefficient"), field(f, "std_error")
    if coef is None or se is None:
        return None
    return coef - 1.959964 * se, coef + 1.959964 * se


def _effect(f: FeatureResult) -> str:
    ci = effect_interval(f)
    text = signed(f.coefficient) + (f" [{signed(ci[0])}, {signed(ci[1])}]" if ci else "")
    q = field(f, "q_value")
    return text + (f", q {p_text(q)}" if q is not None else f", p {p_text(field(f, 'p_value'))}")


def p_text(v) -> str:
    """``< 0.001`` or ``= 0.012`` (to follow a p or q); ``= –`` when absent."""
    if v is None or not math.isfinite(v):
        return "= –"
    return "< 0.001" if v < 0.001 else f"= {v:.3f}"

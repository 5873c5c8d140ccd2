"""The evaluation protocol: what is in a preference dataset and how well it personalizes.

:func:`evaluate` is a pipeline of steps, each a function from typed inputs to a typed result
(:mod:`likeable.protocol.results`), in the README's order:

1. :func:`split_pairs` — train / validation / test by connected components of prompts and
   conversations -> :class:`~likeable.protocol.results.Split`;
2. :func:`embed_pairs` — Δ = e(A) − e(B) and the length control -> ``PairInputs``;
3. :func:`train_encoder` — the sparse encoder on Δ, every pair's code, its health -> ``Encoded``;
4. :func:`predict_held_out` — length, dense, all-feature and selected-feature models (each
   with the length control) on the held-out pairs -> ``Prediction``;
5. :func:`~likeable.protocol.features.describe_features` — effect, top pairs and description of
   every feature (and, on synthetic data, what it recovers);
6. :func:`~likeable.protocol.personalize.personalize` — per-user models (data with users);
7. :func:`~likeable.protocol.simulate.simulate_users` — multi-session use (synthetic data).

Pure orchestration: numbers come from the core (encoder, index, preference models) or from
numpy/scipy (metrics).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np

from . import metrics
from ..sparse import SparseCodes
from .datasets import PreferenceDataset
from .features import describe_features, measure_texts
from .findings import findings, warnings
from .personalize import personalization_shrinkage, personalize
from .report import Report
from .results import (DatasetSummary, Encoded, EncoderHealth, ModelScore, PairInputs, Prediction, ProbeTuning,
                      ProtocolResult, Split)
from .simulate import simulate_users, simulates
from .split import distinct_pairs, group_components, split_by_components

__all__ = ["EvalConfig", "evaluate", "split_pairs", "embed_pairs", "train_encoder", "predict_held_out",
           "tune_dense_probe"]


@dataclass
class EvalConfig:
    """Settings of :func:`evaluate` (defaults: the protocol as documented).

    Encoder: ``n_features`` (M), ``k``, ``kind``, ``signed``, ``matryoshka``, ``epochs``,
    ``batch_size``, ``lr``, ``patience``. Split: ``fractions`` (train, validation, test).
    Preference models: ``l2``, ``dense_l2_grid`` and ``cv_folds`` (the dense probe's penalty
    is chosen by cross-validation over whole prompts/conversations of the training part),
    ``n_select`` (sizes of the selected-feature models). Personalization: ``shrinkage``
    (``"auto"``: estimated per feature by empirical Bayes on the training part; or a number),
    ``few_shot`` (pairs per user), ``n_draws`` (random draws the few-shot curve averages),
    ``min_user_pairs`` (users with fewer held-out pairs of both labels are left out of
    per-user AUC), ``personalize_length`` (add the standardised length difference as one
    more feature column of the personalization models, so per-user weights can learn how
    long each person likes answers), ``n_permutations`` (the null of "this feature varies by
    person"), ``min_resampled_users`` (with at least this many users, per-user intervals
    resample users; with fewer the users are fixed and their test prompts are resampled).
    Features: ``n_top_pairs`` (distinct pairs from the index), ``n_examples`` (distinct pairs
    shown as text per direction), ``n_describe_pairs`` (strongest distinct training pairs the
    offline describer contrasts), ``n_described``, ``describer`` (an LLM describer such as
    :class:`~likeable.protocol.describe.ChatDescriber`, or a callable ``(more, less) -> str``;
    the offline description is always made), ``annotator`` (a callable
    ``(description, a, b) -> +1/0/−1`` judging the primary description), ``n_fidelity_pairs``
    (held-out pairs an annotator with a per-pair cost judges). Sessions: ``sessions`` (False
    to skip), ``n_sessions``, ``n_turns``, ``n_candidates``, ``n_sim_users``. Reporting:
    ``n_boot`` (bootstrap resamples). ``shrinkage_grid`` is no longer used (kept so older
    configs load).
    """

    n_features: int = 32
    k: int = 4
    kind: str = "batchtopk"
    signed: bool = True
    matryoshka: tuple | None = (8, 32)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-2
    patience: int = 5
    fractions: tuple = (0.7, 0.1, 0.2)
    l2: float = 1.0
    dense_l2_grid: tuple = (0.1, 1.0, 10.0, 100.0, 1000.0)
    cv_folds: int = 5
    shrinkage_grid: tuple | None = None
    n_select: tuple = (5, 10)
    shrinkage: str | float = "auto"
    few_shot: tuple = (5, 10, 15, 25, 50, 100)
    n_draws: int = 20
    min_user_pairs: int = 10
    personalize_length: bool = True
    n_permutations: int = 1000
    min_resampled_users: int = 10
    n_top_pairs: int = 10
    n_examples: int = 5
    n_describe_pairs: int = 500
    n_described: int | None = None
    describer: Callable | None = None
    annotator: Callable | None = None
    n_fidelity_pairs: int = 20
    sessions: bool = True
    n_sessions: int = 6
    n_turns: int = 8
    n_candidates: int = 8
    n_sim_users: int = 20
    n_boot: int = 1000
    seed: int = 0
    progress: bool = False
    threads: int | None = None

    def to_dict(self) -> dict:
        # Describers and annotators are written by their repr (a client holds locks and sockets;
        # asdict would try to deep-copy it).
        plain = {"describer", "annotator"}
        out = asdict(replace(self, describer=None, annotator=None))
        for key in plain:
            value = getattr(self, key)
            out[key] = None if value is None else repr(value)
        return out



def evaluate(dataset: PreferenceDataset, embedder: Any = None, config: EvalConfig | dict | None = None) -> Report:
    """Run the protocol on ``dataset`` and return a :class:`Report`.

    Parameters
    ----------
    dataset : PreferenceDataset
        From :func:`likeable.datasets.load` or :func:`likeable.datasets.synthetic`.
    embedder : embedder, optional
        Anything :func:`likeable.as_embedder` takes (:class:`likeable.OnnxEmbedder`,
        :class:`likeable.OpenAIEmbedder`, a sentence-transformers model, a callable
        ``texts -> (n, dim)``); needed unless the dataset carries embeddings.
    config : EvalConfig or dict, optional

    Returns
    -------
    Report
    """
    if not isinstance(dataset, PreferenceDataset):
        raise TypeError(f"dataset must be a likeable.PreferenceDataset, got {type(dataset).__name__}")
    if config is None:
        config = EvalConfig()
    elif isinstance(config, dict):
        unknown = set(config) - set(EvalConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        config = EvalConfig(**config)
    if len(dataset) < 20:
        raise ValueError(f"the protocol needs at least 20 pairs, got {len(dataset)}")
    ds, cfg = dataset, config
    timer = _Timer()
    # The text properties need only the texts: measured on a worker thread while the encoder
    # and the preference models run in the core, which releases the GIL.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="likeable-texts") as pool:
        texts = pool.submit(_timed, measure_texts, ds)
        split = timer.run("split", split_pairs, ds, cfg)
        pairs = timer.run("embed", embed_pairs, ds, embedder, split)
        encoded = timer.run("encoder", train_encoder, pairs, split, cfg)
        prediction = timer.run("prediction", predict_held_out, ds, split, pairs, encoded.codes, cfg)
        evidence, timer.timings["text_properties"] = texts.result()
    features, recovery = timer.run("features", describe_features, ds, split, pairs, encoded, cfg, evidence)
    personalization = sessions = None
    if ds.has_users:
        personalization = timer.run("personalization", personalize, ds, split, pairs, encoded.codes,
                                    prediction.population, cfg)
    if cfg.sessions and simulates(ds):
        # The adaptive system starts from the population with the shrinkage estimated for the data's users.
        shrinkage = personalization_shrinkage(personalization)
        sessions = timer.run("sessions", simulate_users, ds, split, encoded, _features_only(prediction.population),
                             shrinkage, cfg)
    timings = timer.finish()
    result = ProtocolResult(
        encoder=encoded.health, prediction=prediction.scores, fraction_of_signal=prediction.fraction_of_signal,
        fraction_of_signal_ci=prediction.fraction_of_signal_ci,
        fraction_beyond_length=prediction.fraction_beyond_length, dense_tuning=prediction.dense_tuning,
        selected_features=prediction.selected_features, features=features, recovery=recovery,
        personalization=personalization, sessions=sessions, dataset=_summary(ds, split), config=cfg.to_dict(),
        timings_s=timings, seconds_per_10k_pairs=timings["total"] * 1e4 / len(ds))
    return Report(replace(result, findings=findings(result), warnings=warnings(result)))


class _Timer:
    """Runs the steps and keeps each one's wall time (and the total) in seconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    def run(self, name: str, step: Callable, *args):
        start = time.perf_counter()
        out = step(*args)
        self.timings[name] = time.perf_counter() - start
        return out

    def finish(self) -> dict[str, float]:
        self.timings["total"] = time.perf_counter() - self.start
        return self.timings


def _timed(step: Callable, *args):
    start = time.perf_counter()
    return step(*args), time.perf_counter() - start


def _features_only(population):
    """The population model's feature weights (estimated with the length control) without the
    control: candidates in a session have codes, not a length difference."""
    from ..preferences import PreferenceModel

    return PreferenceModel.from_coefficients(population.coef_, l2=population.l2)


def _summary(ds: PreferenceDataset, split: Split) -> DatasetSummary:
    coerced = getattr(ds, "coerced", None)
    return DatasetSummary(source=ds.source, n_pairs=len(ds), n_ties=int((ds.label == 0.5).sum()),
                          n_users=int(len(np.unique(ds.user_id))) if ds.user_id is not None else 0,
                          n_train=int(split.train.size), n_validation=int(split.validation.size),
                          n_test=int(split.test.size), n_components=split.n_components,
                          n_distinct_pairs=int(distinct_pairs(ds).max(initial=-1)) + 1,
                          coerced=dict(coerced) if coerced else None)


# --------------------------------------------------------------------------------------
# Steps 1-4 (5-7 live in features.py, personalize.py and simulate.py)
# --------------------------------------------------------------------------------------
def split_pairs(ds: PreferenceDataset, cfg: EvalConfig) -> Split:
    """Step 1: whole prompts / conversations to train, validation and test."""
    components = group_components(ds.prompt, ds.conversation_id)
    train, val, test = split_by_components(components, cfg.fractions, cfg.seed)
    if not train.size or not test.size:
        raise ValueError("the split left train or test empty: too few distinct prompts/conversations")
    decided = ds.label != 0.5
    return Split(train, val, test, train[decided[train]], val[decided[val]], test[decided[test]],
                 int(components.max()) + 1 if components.size else 0, components)


def embed_pairs(ds: PreferenceDataset, embedder: Any, split: Split) -> PairInputs:
    """Step 2: Δ = e(A) − e(B) (the dataset's embeddings or the embedder's) and the length control."""
    if ds.has_embeddings:
        ea, eb = ds.embeddings_a, ds.embeddings_b
    else:
        if embedder is None:
            raise ValueError("this dataset has no embeddings: pass embedder= (e.g. likeable.OnnxEmbedder)")
        from .embed import as_embedder

        both = as_embedder(embedder).embed(list(ds.response_a) + list(ds.response_b))
        ea, eb = both[: len(ds)], both[len(ds):]
    delta = np.ascontiguousarray(ea - eb, dtype=np.float32)
    length = ds.length_difference()
    # Standardised on train so coefficients are per standard deviation.
    scale = float(np.std(length[split.train])) or 1.0
    return PairInputs(delta, (length / scale).astype(np.float32)[:, None])


def train_encoder(pairs: PairInputs, split: Split, cfg: EvalConfig) -> Encoded:
    """Step 3: the sparse encoder on both orientations of each train pair; every pair's code."""
    from ..encoder import SparseEncoder

    delta = pairs.delta
    x_train = np.concatenate([delta[split.train], -delta[split.train]])
    x_val = np.concatenate([delta[split.validation], -delta[split.validation]]) if split.validation.size else None
    encoder = SparseEncoder(n_features=cfg.n_features, k=cfg.k, kind=cfg.kind, signed=cfg.signed,
                            matryoshka=cfg.matryoshka, seed=cfg.seed, threads=cfg.threads)
    encoder.fit(x_train, X_val=x_val, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                patience=cfg.patience, progress=cfg.progress)
    start = time.perf_counter()
    codes = encoder.encode(delta)
    encode_s = time.perf_counter() - start
    held = split.test if split.test.size >= 2 else np.arange(len(delta))
    stats = encoder.stats(delta[held])
    active = np.diff(codes.indptr)
    batchtopk = cfg.kind == "batchtopk"
    health = EncoderHealth(
        n_features=int(codes.shape[1]), k=cfg.k, kind=cfg.kind, signed=cfg.signed,
        matryoshka=None if cfg.matryoshka is None else list(cfg.matryoshka),
        normalized_mse=float(stats.normalized_mse), dead_fraction=float(stats.dead_fraction),
        mean_active=float(stats.mean_active), measured_on="test pairs",
        best_epoch=int(getattr(encoder, "best_epoch_", -1)), encode_rows_per_s=len(delta) / max(encode_s, 1e-9),
        epochs_run=len(getattr(encoder, "history_", ()) or ()) or None,
        train_l0=float(active[split.train].mean()),
        threshold=float(encoder.threshold[0]) if batchtopk else None,
        threshold_before=float(encoder.trained_threshold_) if batchtopk else None)
    return Encoded(encoder, codes, health)


def predict_held_out(ds: PreferenceDataset, split: Split, pairs: PairInputs, codes: SparseCodes,
                     cfg: EvalConfig) -> Prediction:
    """Step 4: models fitted on train, scored on the decided test pairs.

    ``length`` (length control alone), ``dense`` (a probe on Δ, its penalty chosen by
    prompt-grouped cross-validation), ``all_features`` (the population model on every
    feature) and ``top_<n>`` (refitted on the ``n`` features an L1 path selects); every model
    but ``length`` has the length control. AUC and accuracy with intervals that resample the
    test part's prompts/conversations; each model's fraction of the dense probe's signal (over
    chance, and beyond length) on the same resamples.
    """
    from ..preferences import PreferenceModel

    tr, te = split.train_decided, split.test_decided
    y_tr, y_te = ds.label[tr], ds.label[te]
    control = pairs.length_control
    groups = split.components[te] if split.components is not None else None
    proba: dict[str, np.ndarray] = {}
    settings: dict[str, tuple[bool, float]] = {}

    def record(name: str, model: PreferenceModel, x_test, controlled: bool = True) -> None:
        proba[name] = model.predict_proba(x_test, control[te] if controlled else None)[:, 1]  # P(A preferred)
        settings[name] = (controlled, float(model.l2))

    length = SparseCodes.from_dense(control)
    record("length", PreferenceModel(l2=1e-3, fit_intercept=True).fit(length[tr], y_tr), length[te], False)
    tuning = tune_dense_probe(pairs, y_tr, tr, split.components, cfg)
    record("dense", PreferenceModel(l2=tuning.chosen).fit(pairs.delta[tr], y_tr, control[tr]), pairs.delta[te])
    population = PreferenceModel(l2=cfg.l2).fit(codes[tr], y_tr, control[tr])
    record("all_features", population, codes[te])
    selected = {}
    for n_sel in cfg.n_select:
        feats = np.asarray(PreferenceModel(l2=cfg.l2).select(codes[tr], y_tr, n_features=n_sel,
                                                             controls=control[tr]).features, np.int64)
        selected[str(n_sel)] = feats.tolist()
        if feats.size:
            sub = SparseCodes.from_scipy(codes.to_scipy()[:, feats])
            record(f"top_{n_sel}", PreferenceModel(l2=cfg.l2).fit(sub[tr], y_tr, control[tr]), sub[te])
    samples = metrics.bootstrap_aucs(y_te, proba, cfg.n_boot, cfg.seed, groups)
    n_groups = None if groups is None else int(np.unique(groups).size)
    scores = {}
    for name, p in proba.items():
        controlled, l2 = settings[name]
        scores[name] = ModelScore(
            auc=metrics.interval(metrics.auc(y_te, p), samples[name], y_te.size, n_groups=n_groups),
            accuracy=metrics.bootstrap_accuracy(y_te, p, n_boot=cfg.n_boot, seed=cfg.seed, groups=groups),
            length_control=controlled, l2=l2)
    auc = {name: s.auc.value for name, s in scores.items()}

    def ratio(function, name, *base):
        value = function(auc[name], *(auc[b] for b in base), auc["dense"])
        drawn = function(samples[name], *(samples[b] for b in base), samples["dense"])
        return metrics.interval(value, drawn, y_te.size, n_groups=n_groups)

    fraction_ci = {name: ratio(metrics.fraction_of_signal, name) for name in scores}
    beyond = {name: ratio(metrics.fraction_beyond, name, "length") for name in scores if name != "length"}
    fraction = {name: e.value for name, e in fraction_ci.items()}
    return Prediction(scores, fraction, selected, population, fraction_ci, beyond, tuning)


def tune_dense_probe(pairs: PairInputs, y_train: np.ndarray, train: np.ndarray, components: np.ndarray | None,
                     cfg: EvalConfig) -> ProbeTuning:
    """The dense probe's L2 penalty from ``cfg.dense_l2_grid`` by mean fold AUC, folds of whole
    prompts/conversations of the training part (the larger penalty on a tie)."""
    from ..preferences import PreferenceModel

    grid = [float(v) for v in cfg.dense_l2_grid]
    groups = components[train] if components is not None else np.arange(train.size)
    n_folds = min(cfg.cv_folds, int(np.unique(groups).size))
    if len(grid) == 1 or n_folds < 2:
        return ProbeTuning(grid=grid, cv_auc=[float("nan")] * len(grid), chosen=grid[0] if len(grid) == 1
                           else float(cfg.l2), n_folds=0)
    folds = split_by_components(groups, (1.0,) * n_folds, cfg.seed)
    x, control = pairs.delta[train], pairs.length_control[train]

    def fold_aucs(held: np.ndarray) -> np.ndarray:
        out = np.full(len(grid), np.nan)
        fit = np.setdiff1d(np.arange(train.size), held)
        if not held.size or np.unique(y_train[fit]).size < 2:
            return out
        # Along the grid from the largest penalty down, each fit starting from the last; a
        # looser tolerance than the final fit's is plenty to rank penalties.
        model = PreferenceModel(warm_start=True, tol=1e-4)
        for g in sorted(range(len(grid)), key=lambda g: -grid[g]):
            model.set_params(l2=grid[g]).fit(x[fit], y_train[fit], control[fit])
            out[g] = metrics.auc(y_train[held], model.decision_function(x[held], control[held]))
        return out

    from concurrent.futures import ThreadPoolExecutor

    from .._validation import resolve_threads

    with ThreadPoolExecutor(max_workers=max(1, min(n_folds, resolve_threads(cfg.threads)))) as pool:
        fold_auc = np.column_stack(list(pool.map(fold_aucs, folds)))  # the core fits release the GIL
    scored = np.isfinite(fold_auc).sum(axis=1)
    cv_auc = np.where(scored > 0, np.where(np.isfinite(fold_auc), fold_auc, 0.0).sum(axis=1) / np.maximum(scored, 1),
                      np.nan)
    finite = np.isfinite(cv_auc)
    best = max(np.flatnonzero(finite), key=lambda g: (cv_auc[g], grid[g])) if finite.any() else None
    return ProbeTuning(grid=grid, cv_auc=cv_auc.tolist(), chosen=grid[best] if best is not None else float(cfg.l2),
                       n_folds=n_folds)

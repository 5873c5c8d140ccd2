"""The evaluation protocol: what is in a preference dataset and how well it personalizes.

:func:`evaluate` is a pipeline of steps, each a function from typed inputs to a typed result
(:mod:`likeable.protocol.results`), in the README's order:

1. :func:`split_pairs` — train / validation / test by connected components of prompts and
   conversations -> :class:`~likeable.protocol.results.Split`;
2. :func:`embed_pairs` — Δ = e(A) − e(B) and the length control -> ``PairInputs``;
3. :func:`train_encoder` — the sparse encoder on Δ, every pair's code, its health -> ``Encoded``;
4. :func:`predict_held_out` — length, dense, all-feature and selected-feature models on the
   held-out pairs -> ``Prediction``;
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
from .personalize import personalize
from .report import Report
from .results import (DatasetSummary, Encoded, EncoderHealth, ModelScore, PairInputs, Prediction,
                      ProtocolResult, Split)
from .simulate import simulate_users, simulates
from .split import group_components, split_by_components

__all__ = ["EvalConfig", "evaluate", "split_pairs", "embed_pairs", "train_encoder", "predict_held_out"]


@dataclass
class EvalConfig:
    """Settings of :func:`evaluate` (defaults: the protocol as documented).

    Encoder: ``n_features`` (M), ``k``, ``kind``, ``signed``, ``matryoshka``, ``epochs``,
    ``batch_size``, ``lr``, ``patience``. Split: ``fractions`` (train, validation, test).
    Preference models: ``l2``, ``shrinkage_grid`` (the shrinkage is chosen on the validation
    part), ``n_select`` (sizes of the selected-feature models). Personalization:
    ``few_shot``, ``min_user_pairs`` (users with fewer held-out pairs of both labels are
    left out of per-user AUC), ``personalize_length`` (add the standardised length
    difference as one more feature column of the personalization models, so per-user
    weights can learn how long each person likes answers). Features: ``n_top_pairs`` (pair ids
    from the index), ``n_examples`` (distinct pairs shown as text per direction),
    ``n_describe_pairs`` (strongest distinct training pairs the offline describer contrasts),
    ``n_described``, ``describer`` (an LLM describer such as
    :class:`~likeable.protocol.describe.ChatDescriber`, or a callable ``(more, less) -> str``;
    the offline description is always made), ``annotator`` (a callable
    ``(description, a, b) -> +1/0/−1`` judging the primary description), ``n_fidelity_pairs``
    (held-out pairs an annotator with a per-pair cost judges). Sessions: ``sessions`` (False to skip),
    ``n_sessions``, ``n_turns``, ``n_candidates``, ``n_sim_users``. Reporting: ``n_boot``.
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
    shrinkage_grid: tuple = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    n_select: tuple = (5, 10)
    few_shot: tuple = (5, 10, 25, 50, 100)
    min_user_pairs: int = 10
    personalize_length: bool = True
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
    embedder : callable, optional
        ``embedder(texts) -> (n, dim)`` such as :class:`likeable.OnnxEmbedder`; needed unless
        the dataset carries embeddings.
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
        # The adaptive system starts from the population with the shrinkage chosen for the data's users.
        shrinkage = personalization.shrinkage if personalization is not None else 3.0
        sessions = timer.run("sessions", simulate_users, ds, split, encoded, prediction.population, shrinkage, cfg)
    timings = timer.finish()
    result = ProtocolResult(
        encoder=encoded.health, prediction=prediction.scores, fraction_of_signal=prediction.fraction_of_signal,
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


def _summary(ds: PreferenceDataset, split: Split) -> DatasetSummary:
    return DatasetSummary(source=ds.source, n_pairs=len(ds), n_ties=int((ds.label == 0.5).sum()),
                          n_users=int(len(np.unique(ds.user_id))) if ds.user_id is not None else 0,
                          n_train=int(split.train.size), n_validation=int(split.validation.size),
                          n_test=int(split.test.size), n_components=split.n_components)


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
                 int(components.max()) + 1 if components.size else 0)


def embed_pairs(ds: PreferenceDataset, embedder: Any, split: Split) -> PairInputs:
    """Step 2: Δ = e(A) − e(B) (the dataset's embeddings or the embedder's) and the length control."""
    if ds.has_embeddings:
        ea, eb = ds.embeddings_a, ds.embeddings_b
    else:
        if embedder is None:
            raise ValueError("this dataset has no embeddings: pass embedder= (e.g. likeable.OnnxEmbedder)")
        both = np.asarray(embedder(list(ds.response_a) + list(ds.response_b)), np.float32)
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
    health = EncoderHealth(
        n_features=int(codes.shape[1]), k=cfg.k, kind=cfg.kind, signed=cfg.signed,
        matryoshka=None if cfg.matryoshka is None else list(cfg.matryoshka),
        normalized_mse=float(stats.normalized_mse), dead_fraction=float(stats.dead_fraction),
        mean_active=float(stats.mean_active), measured_on="test pairs",
        best_epoch=int(getattr(encoder, "best_epoch_", -1)), encode_rows_per_s=len(delta) / max(encode_s, 1e-9),
        epochs_run=len(getattr(encoder, "history_", ()) or ()) or None)
    return Encoded(encoder, codes, health)


def predict_held_out(ds: PreferenceDataset, split: Split, pairs: PairInputs, codes: SparseCodes,
                     cfg: EvalConfig) -> Prediction:
    """Step 4: models fitted on train, scored on the decided test pairs.

    ``length`` (length control alone), ``dense`` (a probe on Δ), ``all_features`` (the
    population model on every feature) and ``top_<n>`` (refitted on the ``n`` features an L1
    path selects); each with AUC, accuracy and its fraction of the dense probe's signal.
    """
    from ..preferences import PreferenceModel

    tr, te = split.train_decided, split.test_decided
    y_tr, y_te = ds.label[tr], ds.label[te]
    scores: dict[str, ModelScore] = {}

    def record(name: str, model: PreferenceModel, x_test) -> None:
        proba = model.predict_proba(x_test)[:, 1]  # P(A preferred)
        scores[name] = ModelScore(auc=metrics.bootstrap_auc(y_te, proba, cfg.n_boot, seed=cfg.seed),
                                  accuracy=metrics.bootstrap_accuracy(y_te, proba, n_boot=cfg.n_boot, seed=cfg.seed))

    length = SparseCodes.from_dense(pairs.length_control)
    record("length", PreferenceModel(l2=1e-3, fit_intercept=True).fit(length[tr], y_tr), length[te])
    record("dense", PreferenceModel(l2=cfg.l2).fit(pairs.delta[tr], y_tr), pairs.delta[te])
    population = PreferenceModel(l2=cfg.l2).fit(codes[tr], y_tr)
    record("all_features", population, codes[te])
    selected = {}
    for n_sel in cfg.n_select:
        feats = np.asarray(PreferenceModel(l2=cfg.l2).select(codes[tr], y_tr, n_features=n_sel).features, np.int64)
        selected[str(n_sel)] = feats.tolist()
        if feats.size:
            sub = SparseCodes.from_scipy(codes.to_scipy()[:, feats])
            record(f"top_{n_sel}", PreferenceModel(l2=cfg.l2).fit(sub[tr], y_tr), sub[te])
    auc_dense = scores["dense"].auc.value
    fraction = {name: metrics.fraction_of_signal(s.auc.value, auc_dense) for name, s in scores.items()}
    return Prediction(scores, fraction, selected, population)

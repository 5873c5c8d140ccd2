"""Step 5 of the protocol: what each feature does to the choice, where it fires, what it is.

For every encoder feature: its length-controlled effect on the choice (a per-feature logistic
in the core), its share of active pairs, the pairs that activate it most (from an exact
:class:`likeable.SparseIndex`), a description of those pairs and, given an annotator, the
description's fidelity. On synthetic data each feature is matched to the planted attribute it
tracks, and :class:`~likeable.protocol.results.Recovery` says how well the planted attributes
were found.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .describe import DistinctiveWords, fidelity
from .metrics import column_correlation
from .results import FeatureResult, Recovery, TopPair

if TYPE_CHECKING:
    from ..encoder import SparseEncoder
    from ..sparse import SparseCodes
    from .datasets import PreferenceDataset
    from .evaluate import EvalConfig
    from .results import Encoded, PairInputs, Split

__all__ = ["describe_features"]


def describe_features(ds: PreferenceDataset, split: Split, pairs: PairInputs, encoded: Encoded,
                      cfg: EvalConfig) -> tuple[list[FeatureResult], Recovery | None]:
    """One :class:`FeatureResult` per feature, and the recovery of planted attributes (synthetic data).

    Features are described (``cfg.describer``, by default :class:`DistinctiveWords`) from their
    ``cfg.n_top_pairs`` strongest pairs: the ``cfg.n_described`` most significant, or all.
    """
    from ..index import SparseIndex
    from ..preferences import PreferenceModel

    codes = encoded.codes
    tr = split.train_decided
    # A light ridge keeps rare, perfectly separating features from exploding coefficients.
    effects = PreferenceModel(l2=cfg.l2).feature_effects(codes[tr], ds.label[tr], pairs.length_control[tr])
    index = SparseIndex(codes, approximate=False, threads=cfg.threads)
    describer = cfg.describer or DistinctiveWords()
    n_feat = codes.shape[1]
    share = np.bincount(codes.indices, minlength=n_feat) / max(len(ds), 1)
    order = np.argsort(np.where(np.isnan(effects.p_value), np.inf, effects.p_value), kind="stable")
    described = set(order[: cfg.n_described].tolist() if cfg.n_described else range(n_feat))
    correlation = _attribute_correlation(ds.truth, codes)
    names = ds.truth.get("attribute_names")
    features = range(n_feat)
    if cfg.progress:
        from tqdm.auto import tqdm

        features = tqdm(features, desc="features", unit="feature")
    out = []
    for j in features:
        rows, values = index.top_activations(int(j), cfg.n_top_pairs, 1)
        description = score = None
        if j in described and len(rows):
            description = str(describer([ds.response_a[r] for r in rows], [ds.response_b[r] for r in rows]))
            if cfg.annotator is not None:
                score = _fidelity(ds, codes, j, description, cfg)
        matched = None
        if correlation is not None:
            finite = np.isfinite(correlation[j])
            matched = int(np.nanargmax(np.abs(correlation[j]))) if finite.any() else 0
        out.append(FeatureResult(
            feature=int(j), coefficient=float(effects.coef[j]), std_error=float(effects.std_error[j]),
            p_value=float(effects.p_value[j]), share_active=float(share[j]), n_active_train=int(effects.n_active[j]),
            top_pairs=[TopPair(pair=int(r), activation=float(v)) for r, v in zip(rows, values)],
            description=description, fidelity=score,
            matched_attribute=None if matched is None else names[matched],
            attribute_correlation=None if matched is None else float(correlation[j, matched])))
    recovery = None if correlation is None else _recovery(ds.truth, correlation, encoded.encoder)
    return out, recovery


def _fidelity(ds: PreferenceDataset, codes: SparseCodes, j: int, description: str, cfg: EvalConfig) -> float:
    """Agreement of the annotator's judgements of ``description`` with feature ``j`` on random pairs."""
    rng = np.random.default_rng(cfg.seed + j)
    rows = rng.choice(len(ds), min(cfg.n_fidelity_pairs, len(ds)), replace=False)
    column = codes.to_scipy()[:, [j]].toarray().ravel()
    judged = [cfg.annotator(description, ds.response_a[r], ds.response_b[r]) for r in rows]
    return fidelity(column[rows], judged)


def _attribute_correlation(truth: dict, codes: SparseCodes) -> np.ndarray | None:
    """Synthetic data: correlation of every feature with every planted attribute difference."""
    if "attributes_a" not in truth:
        return None
    difference = truth["attributes_a"] - truth["attributes_b"]
    return column_correlation(codes.to_dense(), difference)  # features x attributes


def _recovery(truth: dict, correlation: np.ndarray, encoder: SparseEncoder) -> Recovery:
    names = truth["attribute_names"]
    best = np.nanmax(np.abs(correlation), axis=0)
    # Decoder rows against the planted directions (both unit length after normalising).
    W = np.asarray(encoder.W_dec, np.float64)
    W = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    cosine = np.abs(W @ np.asarray(truth["directions"], np.float64).T).max(axis=0)
    return Recovery(per_attribute={n: float(b) for n, b in zip(names, best)},
                    mean_best_correlation=float(np.nanmean(best)), n_recovered_at_0_8=int((best >= 0.8).sum()),
                    direction_cosine={n: float(c) for n, c in zip(names, cosine)},
                    directions_recovered=int((cosine > 0.9).sum()), n_planted=len(names))

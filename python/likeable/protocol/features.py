"""Step 5 of the protocol: what each feature does to the choice, where it fires, what it is.

For every encoder feature: its length-controlled effect on the choice (a per-feature logistic
in the core) with its p-value, Benjamini–Hochberg q-value and Bonferroni flag over all the
features tested, its share of active pairs, the distinct pairs that activate it most (from an
exact :class:`likeable.SparseIndex`; a pair of texts judged several times counts once) and, as
text, its strongest distinct pairs in each direction; its correlations with the named text
properties (:mod:`likeable.protocol.properties`) over all pairs; and descriptions — always the
offline one (:class:`~likeable.protocol.describe.OfflineDescriber`), and the configured
describer's (an LLM, say) — each with its fidelity on held-out pairs. Describers see training
pairs only; fidelity is measured on distinct validation and test pairs. On synthetic data each
feature is matched to the planted attribute it tracks, and
:class:`~likeable.protocol.results.Recovery` says how well the planted attributes were found.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .describe import CallableDescriber, Description, OfflineDescriber, TextCorpus, fidelity
from .metrics import benjamini_hochberg, bonferroni, column_correlation
from .properties import PropertyBank, associations
from .results import DescriptionResult, Example, FeatureResult, PhraseScore, PropertyLink, Recovery, TopPair
from .split import distinct_pairs

if TYPE_CHECKING:
    from ..encoder import SparseEncoder
    from ..sparse import SparseCodes
    from .datasets import PreferenceDataset
    from .evaluate import EvalConfig
    from .results import Encoded, PairInputs, Split

__all__ = ["describe_features", "TextEvidence", "measure_texts"]

_MAX_FIDELITY_PAIRS = 5000  # held-out pairs the offline annotator measures (all of them, up to this)
# An annotator that costs a request per pair sees a sample, as in HypotheSAEs: the held-out
# pairs where the feature is strongest and as many drawn at random.
_SAMPLED = "held-out pairs: strongest half, random half"
_PROMPT_CHARS = 600
_RESPONSE_CHARS = 2000


@dataclass(frozen=True)
class TextEvidence:
    """Every pair's texts as a corpus, and every text property's A − B difference per pair."""

    corpus: TextCorpus
    bank: PropertyBank
    differences: np.ndarray  # (n_pairs, n_properties)


def measure_texts(ds: PreferenceDataset) -> TextEvidence:
    """The property bank on every distinct response, as A − B per pair (needs no codes)."""
    corpus = TextCorpus(ds.prompt, ds.response_a, ds.response_b)
    bank = PropertyBank()
    values = bank.measure(corpus.texts)
    return TextEvidence(corpus, bank, values[corpus.id_a] - values[corpus.id_b])


def describe_features(ds: PreferenceDataset, split: Split, pairs: PairInputs, encoded: Encoded,
                      cfg: EvalConfig, evidence: TextEvidence | None = None
                      ) -> tuple[list[FeatureResult], Recovery | None]:
    """One :class:`FeatureResult` per feature, and the recovery of planted attributes (synthetic data).

    The ``cfg.n_described`` most significant features (or all) are described. Every judgment is
    used for the effects; repeated texts only once for top pairs, examples and fidelity.
    """
    from ..index import SparseIndex
    from ..preferences import PreferenceModel

    codes = encoded.codes
    tr = split.train_decided
    # A light ridge keeps rare, perfectly separating features from exploding coefficients.
    effects = PreferenceModel(l2=cfg.l2).feature_effects(codes[tr], ds.label[tr], pairs.length_control[tr])
    index = SparseIndex(codes, approximate=False, threads=cfg.threads)
    evidence = evidence or measure_texts(ds)
    corpus, bank, diffs = evidence.corpus, evidence.bank, evidence.differences
    columns = codes.to_scipy().tocsc()
    n_feat = codes.shape[1]
    # Associations: over all pairs for the cards; over training pairs for the describer's choice,
    # so fidelity on held-out pairs is not measured on pairs that chose the description.
    linked = associations(codes, diffs, bank)
    linked_train = associations(codes[split.train], diffs[split.train], bank)
    held = corpus.distinct_rows(np.concatenate([split.validation, split.test]))
    held = held[np.random.default_rng(cfg.seed).permutation(held.size)[:_MAX_FIDELITY_PAIRS]]
    offline = OfflineDescriber()
    extra = _as_describer(cfg.describer) if cfg.describer is not None else None
    share = np.bincount(codes.indices, minlength=n_feat) / max(len(ds), 1)
    q_value, strict = benjamini_hochberg(effects.p_value), bonferroni(effects.p_value)
    distinct = distinct_pairs(ds)
    n_judgments = np.bincount(distinct)
    row_judgments = n_judgments[distinct]  # per row: rows with the same texts
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
        rows, values = _top_distinct(index, int(j), cfg.n_top_pairs, distinct)
        column = columns[:, [j]].toarray().ravel().astype(np.float64)
        descriptions: list[DescriptionResult] = []
        if j in described and np.any(column[split.train] != 0):
            found = offline.describe(corpus.examples(j, column, split.train, cfg.n_describe_pairs),
                                     linked_train.top(j, 3), bank)
            judged = offline.annotate(found, corpus, held, diffs, bank.names)
            descriptions.append(_record(found, column[held], judged, "all held-out pairs"))
            if extra is not None:
                descriptions.append(_describe_with(extra, cfg.annotator, j, column, corpus, split, held, cfg))
            elif cfg.annotator is not None:  # the configured annotator judges the offline description
                sample = _fidelity_sample(column, held, cfg.n_fidelity_pairs, cfg.seed + j)
                descriptions[0] = _record(found, column[sample], _judge_with(cfg.annotator, found, corpus, sample),
                                          _SAMPLED + " (configured annotator)")
        primary = descriptions[-1] if descriptions else None
        matched = None
        if correlation is not None:
            finite = np.isfinite(correlation[j])
            matched = int(np.nanargmax(np.abs(correlation[j]))) if finite.any() else 0
        out.append(FeatureResult(
            feature=int(j), coefficient=float(effects.coef[j]), std_error=float(effects.std_error[j]),
            p_value=float(effects.p_value[j]), share_active=float(share[j]), n_active_train=int(effects.n_active[j]),
            top_pairs=[TopPair(pair=int(r), activation=float(v), n_judgments=int(row_judgments[r]))
                       for r, v in zip(rows, values)],
            description=None if primary is None else primary.text,
            fidelity=None if primary is None else primary.fidelity,
            matched_attribute=None if matched is None else names[matched],
            attribute_correlation=None if matched is None else float(correlation[j, matched]),
            q_value=float(q_value[j]), bonferroni=bool(strict[j]),
            direction=None if primary is None else _direction(primary),
            properties=[_link(a) for a in linked.top(j, 5, min_abs_r=0.0)] if share[j] > 0 else None,
            descriptions=descriptions or None,
            examples=_examples(ds, corpus, column, cfg.n_examples, row_judgments) if share[j] > 0 else None))
    recovery = None if correlation is None else _recovery(ds.truth, correlation, encoded.encoder, out)
    return out, recovery


# --------------------------------------------------------------------------------------
def _top_distinct(index, feature: int, n: int, distinct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` strongest rows of ``feature`` with distinct texts (the first row of each), asking
    the index for more rows until ``n`` distinct ones are found or the feature's rows run out."""
    fetch = 4 * n
    while True:
        rows, values = index.top_activations(feature, fetch, 1)
        _, first = np.unique(distinct[rows], return_index=True)
        keep = np.sort(first)[:n]
        if keep.size >= n or rows.size < fetch:
            return rows[keep], values[keep]
        fetch *= 4


def _as_describer(describer):
    """A configured describer: one with ``describe``/``annotate`` as is, a plain callable adapted."""
    if hasattr(describer, "describe") and hasattr(describer, "annotate"):
        return describer
    return CallableDescriber(describer)


def _describe_with(describer, annotator, j: int, column: np.ndarray, corpus: TextCorpus, split: Split,
                   held: np.ndarray, cfg: EvalConfig) -> DescriptionResult:
    """The configured describer on the strongest training pairs, scored on a held-out sample
    (by ``annotator`` when given, else by the describer's own annotator)."""
    n_shown = getattr(describer, "max_examples", cfg.n_top_pairs)
    found = describer.describe(corpus.examples(j, column, split.train, n_shown,
                                               n_contrast=getattr(describer, "n_contrast", 0), seed=cfg.seed))
    rows = _fidelity_sample(column, held, cfg.n_fidelity_pairs, cfg.seed + j)
    if annotator is not None:
        judged = _judge_with(annotator, found, corpus, rows)
    else:
        judged = describer.annotate(found, corpus, rows)
    return _record(found, column[rows], judged, _SAMPLED)


def _judge_with(annotator, found: Description, corpus: TextCorpus, rows: np.ndarray) -> np.ndarray:
    """``annotator(content, a, b)`` (+1: A shows it more) on each row, signed to the description's side."""
    sign = 1.0 if found.side == "A" else -1.0
    return np.array([sign * float(annotator(found.content, corpus.texts[corpus.id_a[r]],
                                            corpus.texts[corpus.id_b[r]])) for r in rows], np.float64)


def _fidelity_sample(column: np.ndarray, held: np.ndarray, n: int, seed: int) -> np.ndarray:
    strongest = held[np.argsort(-np.abs(column[held]), kind="stable")][: n // 2]
    rest = np.setdiff1d(held, strongest)
    rng = np.random.default_rng(seed)
    return np.concatenate([strongest, rng.choice(rest, min(n - strongest.size, rest.size), replace=False)])


def _record(found: Description, activation: np.ndarray, judged, on: str) -> DescriptionResult:
    score = None if judged is None else fidelity(activation, judged)
    return DescriptionResult(
        source=found.source, text=found.text, side=found.side, content=found.content,
        phrases=[PhraseScore(text=p.text, z=p.z, n_carrying=p.n_carrying, n_other=p.n_other) for p in found.phrases]
        or None,
        properties=[_link(a) for a in found.properties] or None, fidelity=score,
        fidelity_n=None if judged is None else int(np.size(judged)), fidelity_on=None if judged is None else on,
        n_pairs=found.n_pairs)


def _link(a) -> PropertyLink:
    return PropertyLink(name=a.name, r=a.r, low=a.low, high=a.high, n=a.n)


def _direction(d: DescriptionResult) -> str:
    what = d.content or d.text
    if d.side == "B":
        return f"positive when B has more of it than A, negative when A has more (it: {what})"
    return f"positive when A has more of it than B, negative when B has more (it: {what})"


def _examples(ds: PreferenceDataset, corpus: TextCorpus, column: np.ndarray, n: int,
              judgments: np.ndarray) -> list[Example]:
    """The ``n`` strongest distinct pairs with a positive activation, then the ``n`` most negative
    (``judgments``: per row, how many rows hold the same texts)."""
    everything = np.arange(len(ds))
    out = []
    for sign in (1, -1):
        for r, value in zip(*_strongest(corpus, column, everything, n, sign)):
            label = ds.label[r]
            out.append(Example(pair=int(r), activation=float(value), prompt=_tail(ds.prompt[r], _PROMPT_CHARS),
                               response_a=_head(ds.response_a[r], _RESPONSE_CHARS),
                               response_b=_head(ds.response_b[r], _RESPONSE_CHARS),
                               chosen="tie" if label == 0.5 else ("A" if label == 1 else "B"),
                               n_judgments=int(judgments[r])))
    return out


def _strongest(corpus: TextCorpus, column: np.ndarray, rows: np.ndarray, n: int, sign: int):
    ex = corpus.examples(-1, column, rows, n, sign=sign)
    return ex.rows, ex.activation


def _head(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n].rstrip() + " …"


def _tail(text: str, n: int) -> str:
    """The last ``n`` characters, starting at a word where one starts soon enough."""
    text = str(text)
    if len(text) <= n:
        return text
    cut = text[-n:]
    space = cut.find(" ")
    return "… " + (cut[space + 1:] if 0 <= space < 40 else cut).lstrip()


def _attribute_correlation(truth: dict, codes: SparseCodes) -> np.ndarray | None:
    """Synthetic data: correlation of every feature with every planted attribute difference."""
    if "attributes_a" not in truth:
        return None
    difference = truth["attributes_a"] - truth["attributes_b"]
    return column_correlation(codes.to_dense(), difference)  # features x attributes


def _named(truth: dict, correlation: np.ndarray, features: list[FeatureResult]) -> dict[str, bool]:
    """Per planted attribute: does its best feature's offline description quote one of the
    attribute's words on the side the correlation's sign says (A when positive)?"""
    from .synthetic import ATTRIBUTE_WORDS

    out = {}
    for a, name in enumerate(truth["attribute_names"]):
        if name not in ATTRIBUTE_WORDS or not np.isfinite(correlation[:, a]).any():
            continue
        j = int(np.nanargmax(np.abs(correlation[:, a])))
        offline = next((d for d in features[j].descriptions or () if d.source == "offline"), None)
        want = "A" if correlation[j, a] > 0 else "B"
        lead = [p.text for p in (offline.phrases or ()) if (p.z > 0) == (want == "A")] if offline else []
        words = {w for phrase in lead for w in phrase.split()}
        out[name] = bool(offline is not None and offline.side == want and words & set(ATTRIBUTE_WORDS[name]))
    return out


def _recovery(truth: dict, correlation: np.ndarray, encoder: SparseEncoder, features: list[FeatureResult]) -> Recovery:
    names = truth["attribute_names"]
    named = _named(truth, correlation, features)
    best = np.nanmax(np.abs(correlation), axis=0)
    # Decoder rows against the planted directions (both unit length after normalising).
    W = np.asarray(encoder.W_dec, np.float64)
    W = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    cosine = np.abs(W @ np.asarray(truth["directions"], np.float64).T).max(axis=0)
    return Recovery(per_attribute={n: float(b) for n, b in zip(names, best)},
                    mean_best_correlation=float(np.nanmean(best)), n_recovered_at_0_8=int((best >= 0.8).sum()),
                    direction_cosine={n: float(c) for n, c in zip(names, cosine)},
                    directions_recovered=int((cosine > 0.9).sum()), n_planted=len(names),
                    named=named or None, n_named=sum(named.values()) if named else None)

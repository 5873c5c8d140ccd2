"""What the protocol's steps find, as typed records, and the JSON they are written as.

Each step of :func:`likeable.evaluate` returns one of these dataclasses; :class:`ProtocolResult`
holds the written ones and :class:`likeable.Report` renders it by field. The last three
(:class:`Split`, :class:`PairInputs`, :class:`Encoded`) are what one step hands the next and are
never written.

JSON: :func:`to_plain` writes a record with its fields in order (the JSON key is the field name
unless the field's metadata names another), NaN and infinities as null, and leaves out a field
that is None — a section or number that does not apply to this dataset — unless the field is
marked ``KEEP_NONE``. :func:`from_plain` reads it back by the type hints: null in a number field
is NaN again, a missing field takes its default, a missing field without a default is an error
naming it. A field marked ``REST`` takes the keys no other field names and writes them flat.

To grow a record, add a field with a default of None: reports without it still load, and the
JSON gains the key only when a step fills it.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import Estimate
from .simulate import SessionResult

if TYPE_CHECKING:
    from ..encoder import SparseEncoder
    from ..preferences import PreferenceModel
    from ..sparse import SparseCodes

__all__ = ["EncoderHealth", "ModelScore", "ProbeTuning", "TopPair", "PropertyLink", "PhraseScore",
           "DescriptionResult", "Example", "Notice", "FeatureResult", "Recovery", "FewShotCurve",
           "WeightRecovery", "FeatureVariance", "Personalization", "DatasetSummary", "ProtocolResult", "Prediction",
           "Split", "PairInputs", "Encoded", "to_plain", "from_plain"]

KEEP_NONE = {"keep_none": True}  # written as null when None (None is a value, not "does not apply")
REST = {"rest": True}            # a dict of the keys no other field names, written flat


def _key(name: str) -> dict:
    """Metadata for a field whose JSON key is not a Python name."""
    return {"key": name}


# --------------------------------------------------------------------------------------
# Written records, in the order the report shows them
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class EncoderHealth:
    """The trained encoder's settings and health, measured on held-out (test) pairs."""

    n_features: int | None = None
    k: int | None = None
    kind: str | None = None
    signed: bool | None = None
    matryoshka: list[int] | None = field(default=None, metadata=KEEP_NONE)  # null: no Matryoshka
    normalized_mse: float | None = None
    dead_fraction: float | None = None
    mean_active: float | None = None  # active features per pair (L0), on ``measured_on``
    measured_on: str | None = None
    best_epoch: int | None = None
    encode_rows_per_s: float | None = None
    epochs_run: int | None = None  # epochs trained before early stopping (of config's epochs)
    train_l0: float | None = None           # mean active features per training pair (= k once calibrated)
    threshold: float | None = None          # BatchTopK: the calibrated inference threshold
    threshold_before: float | None = None   # BatchTopK: the training's moving average it replaced


@dataclass(frozen=True, kw_only=True)
class ModelScore:
    """One predictor's held-out AUC and accuracy, each with its bootstrap interval (resampling
    the test part's prompt/conversation components); whether it has the length control, and its
    penalty."""

    auc: Estimate | None = None
    accuracy: Estimate | None = None
    length_control: bool | None = None
    l2: float | None = None


@dataclass(frozen=True, kw_only=True)
class ProbeTuning:
    """The dense probe's L2 penalty, chosen by cross-validation on the training part with whole
    prompts/conversations per fold: mean fold AUC for each penalty of the grid."""

    grid: list[float]
    cv_auc: list[float]
    chosen: float
    n_folds: int


@dataclass(frozen=True, kw_only=True)
class TopPair:
    """A pair on which a feature fires strongly."""

    pair: int          # row of the dataset
    activation: float
    n_judgments: int | None = None  # judgments of the same texts (prompt and both responses) in the data


@dataclass(frozen=True, kw_only=True)
class PropertyLink:
    """A feature's Pearson r with one text property's A − B difference, over ``n`` pairs.

    r > 0: the feature is positive where A has more of the property; ``low``/``high``: 95%
    Fisher interval. Names and definitions: :class:`likeable.protocol.properties.PropertyBank`.
    """

    name: str
    r: float
    low: float | None = None
    high: float | None = None
    n: int | None = None


@dataclass(frozen=True, kw_only=True)
class PhraseScore:
    """A phrase's log-odds z between the carrying and the other responses (z > 0: carrying)."""

    text: str
    z: float
    n_carrying: int | None = None  # carrying responses containing it
    n_other: int | None = None


@dataclass(frozen=True, kw_only=True)
class DescriptionResult:
    """One describer's account of a feature, and how far an annotator agrees with it.

    ``side`` "A": a positive activation goes with A having more of ``content`` (negative: B);
    "B": the reverse. ``fidelity``: Pearson r of the activation with the annotator's judgement
    ("does A show it more than B?", signed to the description's side) on ``fidelity_n``
    held-out pairs (``fidelity_on`` says which).
    """

    source: str
    text: str
    side: str | None = None
    content: str | None = None
    phrases: list[PhraseScore] | None = None
    properties: list[PropertyLink] | None = None
    fidelity: float | None = None
    fidelity_n: int | None = None
    fidelity_on: str | None = None
    n_pairs: int | None = None  # distinct pairs the describer saw


@dataclass(frozen=True, kw_only=True)
class Example:
    """A pair that activates a feature strongly, as text (long texts cut, marked with …)."""

    pair: int
    activation: float
    prompt: str | None = None      # the end of the conversation before the responses
    response_a: str | None = None
    response_b: str | None = None
    chosen: str | None = None      # "A", "B" or "tie"
    n_judgments: int | None = None  # judgments of the same texts in the data (this one included)


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A condition that should worry a reader, with what it is and what to do."""

    kind: str      # normalized_mse, stopped_early, l0_off_k, few_test_pairs, wide_ci, dead_features, ...
    message: str


@dataclass(frozen=True, kw_only=True)
class FeatureResult:
    """One encoder feature: its effect on the choice, where it fires, what it seems to be.

    ``coefficient``/``std_error``/``p_value``: a per-feature logistic with the length control;
    ``share_active``: share of all pairs where it fires; ``description`` (and ``fidelity``, the
    annotator's agreement with it) only for described features — the primary one of
    ``descriptions`` (the configured describer's, else the offline one); ``matched_attribute``
    and ``attribute_correlation`` only on synthetic data; ``examples`` as text.
    """

    feature: int
    coefficient: float | None = None
    std_error: float | None = None
    p_value: float | None = None
    share_active: float | None = None
    n_active_train: int | None = None
    top_pairs: list[TopPair] | None = None
    description: str | None = None
    fidelity: float | None = None
    matched_attribute: str | None = None
    attribute_correlation: float | None = None
    q_value: float | None = None       # Benjamini–Hochberg over the features with a p-value
    bonferroni: bool | None = None     # p < 0.05 / features tested
    direction: str | None = None                    # what a positive / negative activation means, in words
    properties: list[PropertyLink] | None = None    # strongest property associations over all pairs
    descriptions: list[DescriptionResult] | None = None  # the offline one first, then any LLM one
    examples: list[Example] | None = None           # strongest distinct pairs, positive then negative


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """Synthetic data only: how well the features and decoder rows find the planted attributes."""

    per_attribute: dict[str, float] | None = None      # best |correlation| of any feature
    mean_best_correlation: float | None = None
    n_recovered_at_0_8: int | None = field(default=None, metadata=_key("n_recovered_at_0.8"))
    direction_cosine: dict[str, float] | None = None   # best |cosine| of any decoder row
    directions_recovered: int | None = None            # cosine > 0.9
    n_planted: int | None = None
    # Whether the offline description of each attribute's best feature quotes one of the
    # attribute's planted words on the side the feature's sign says.
    named: dict[str, bool] | None = None
    n_named: int | None = None


@dataclass(frozen=True, kw_only=True)
class FewShotCurve:
    """Mean per-user held-out AUC after ``shots`` training pairs per user, one curve per model.

    Written flat: ``{"shots": [...], "<model>": [...], ...}``.
    """

    shots: list[int]
    n_draws: int | None = None                   # random draws each random curve averages
    low: dict[str, list[float]] | None = None    # 2.5th percentile over the draws, per curve
    high: dict[str, list[float]] | None = None   # 97.5th percentile
    curves: dict[str, list[float]] = field(default_factory=dict, metadata=REST)


@dataclass(frozen=True, kw_only=True)
class WeightRecovery:
    """Synthetic data only: learned per-user utilities against the planted user weights."""

    mean_user_correlation: float | None = None
    overall_correlation: float | None = None


@dataclass(frozen=True, kw_only=True)
class FeatureVariance:
    """How much one feature's weight varies between users, and whether that beats chance.

    ``variance``: the between-user variance τ² of the feature's per-user offset (empirical
    Bayes; 0: it does not vary); ``statistic``: the variance-component score statistic
    Σ_u (Σ_{i∈u} x_ij r_i)² on the population model's residuals; ``p_value``: its permutation
    p-value (users' labels shuffled, see ``Personalization.variance_null``); ``q_value``:
    Benjamini–Hochberg over the features; ``significant``: q < 0.05.
    """

    feature: int | None = None   # None for the length column
    name: str | None = None
    variance: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    significant: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Personalization:
    """Per-user models against the population's, as mean per-user held-out AUC.

    ``auc``/``gain``: the same numbers with bootstrap intervals (``resampled`` says over what);
    ``feature_variance``: which features vary by person.
    """

    population_auc: float
    per_user_auc: float
    shrunk_auc: float
    drift_auc: float
    few_shot: FewShotCurve
    shrinkage: float | None = None           # (older reports) chosen on validation
    per_user_shrinkage: float | None = None  # (older reports) the same, offsets around zero
    n_users: int | None = None
    gain_over_population: float | None = None
    weight_recovery: WeightRecovery | None = None
    auc: dict[str, Estimate] | None = None        # population, per_user_only, shrunk, drift
    gain: Estimate | None = None                  # shrunk − population, paired
    gain_per_user_only: Estimate | None = None    # per_user_only − population, paired
    gain_significant: bool | None = None          # gain's interval above 0
    user_gains: dict[str, float] | None = None    # each user's shrunk − population AUC
    resampled: str | None = None                  # "users" or "test prompts within each user"
    shrinkage_method: str | None = None
    feature_variance: list[FeatureVariance] | None = None
    variance_null: str | None = None              # how the permutation null shuffled users
    n_varying: int | None = None                  # features whose variance is significant


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """What was analysed and how it was split."""

    source: str | None = None
    n_pairs: int | None = None
    n_ties: int | None = None
    n_users: int | None = None
    n_train: int | None = None
    n_validation: int | None = None
    n_test: int | None = None
    n_components: int | None = None
    n_distinct_pairs: int | None = None   # distinct texts (prompt and both responses, either order)
    coerced: dict[str, int] | None = None  # per column: values the loader turned into text


@dataclass(frozen=True, kw_only=True)
class ProtocolResult:
    """Everything :func:`likeable.evaluate` found; the report's JSON is :func:`to_plain` of it.

    ``prediction``, ``fraction_of_signal`` and ``selected_features`` are keyed by model name
    (``length``, ``dense``, ``all_features``, ``top_<n>``); every model but ``length`` has the
    length control. ``fraction_of_signal``: (AUC − 0.5) / (AUC_dense − 0.5);
    ``fraction_beyond_length``: (AUC − AUC_length) / (AUC_dense − AUC_length), the share of the
    dense probe's signal beyond length. ``extra`` keeps sections this version does not know
    (read from a report written elsewhere).
    """

    encoder: EncoderHealth
    prediction: dict[str, ModelScore]
    fraction_of_signal: dict[str, float]
    selected_features: dict[str, list[int]] | None = None
    features: list[FeatureResult]
    fraction_of_signal_ci: dict[str, Estimate] | None = None    # the same with its interval
    fraction_beyond_length: dict[str, Estimate] | None = None   # (AUC − AUC_len) / (AUC_dense − AUC_len)
    dense_tuning: ProbeTuning | None = None
    recovery: Recovery | None = None
    personalization: Personalization | None = None
    sessions: SessionResult | None = None
    dataset: DatasetSummary | None = None
    config: dict | None = None
    timings_s: dict[str, float] | None = None
    seconds_per_10k_pairs: float | None = None
    findings: list[str] | None = None     # the plain-sentence summary the report opens with
    warnings: list[Notice] | None = None  # conditions that should worry a reader
    extra: dict = field(default_factory=dict, metadata=REST)


# --------------------------------------------------------------------------------------
# Hand-offs between steps (never written)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Row ids of each part (no prompt or conversation crosses parts) and of its decided pairs."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    train_decided: np.ndarray       # the part's rows without ties
    validation_decided: np.ndarray
    test_decided: np.ndarray
    n_components: int
    components: np.ndarray | None = None  # component (prompt/conversation group) of every pair


@dataclass(frozen=True)
class PairInputs:
    """What every model sees of a pair."""

    delta: np.ndarray           # e(A) − e(B), float32 (n_pairs, dim)
    length_control: np.ndarray  # length of A − B in words, standardised on train, float32 (n_pairs, 1)


@dataclass(frozen=True)
class Encoded:
    """The trained encoder, every pair's code and the encoder's health."""

    encoder: SparseEncoder
    codes: SparseCodes
    health: EncoderHealth


@dataclass(frozen=True)
class Prediction:
    """The prediction step's scores and the population model later steps build on."""

    scores: dict[str, ModelScore]
    fraction_of_signal: dict[str, float]
    selected_features: dict[str, list[int]]
    population: PreferenceModel            # all features, with the length control
    fraction_of_signal_ci: dict[str, Estimate] | None = None
    fraction_beyond_length: dict[str, Estimate] | None = None
    dense_tuning: ProbeTuning | None = None


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------
def to_plain(value: Any) -> Any:
    """JSON-ready copy: records by field (see the module notes), numpy to Python, NaN/Inf to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out, rest = {}, {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("rest"):
                rest = item
            elif item is not None or f.metadata.get("keep_none"):
                out[f.metadata.get("key", f.name)] = to_plain(item)
        out.update((str(k), to_plain(v)) for k, v in rest.items())
        return out
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def from_plain(cls: type, data: Any, path: str = "") -> Any:
    """The record ``cls`` read from JSON-like ``data`` (see the module notes).

    Raises
    ------
    ValueError
        A required field is missing, a key is unknown, or a value has the wrong shape; the
        message names the field by its path (e.g. ``personalization.drift_auc``).
    """
    where = path or "the results"
    if not isinstance(data, dict):
        raise ValueError(f"{where} should be an object (dict), got {type(data).__name__}")
    hints = _hints(cls)
    known = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if not f.metadata.get("rest")}
    rest_field = next((f for f in dataclasses.fields(cls) if f.metadata.get("rest")), None)
    missing = [key for key, f in known.items() if key not in data and _required(f)]
    if missing:
        raise ValueError(f"{where} lack{'s' if path else ''} the keys {[_join(path, k) for k in missing]}")
    unknown = [key for key in data if key not in known]
    if unknown and rest_field is None:
        raise ValueError(f"{where} has unknown keys {[_join(path, k) for k in unknown]}")
    kwargs = {f.name: _read(hints[f.name], data[key], _join(path, key)) for key, f in known.items() if key in data}
    if rest_field is not None:
        value_type = typing.get_args(hints[rest_field.name])
        kwargs[rest_field.name] = {key: _read(value_type[1], data[key], _join(path, key)) if value_type else data[key]
                                   for key in unknown}
    return cls(**kwargs)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_HINTS: dict = {}


def _hints(cls: type) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _read(tp: Any, value: Any, path: str) -> Any:
    """``value`` as the type ``tp`` (hints used here: records, list[T], dict[str, T], scalars, ndarray)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # X | None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if value is None:
        return math.nan if tp is float else None
    if dataclasses.is_dataclass(tp):
        return from_plain(tp, value, path)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{path} should be a list, got {type(value).__name__}")
        return [_read(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{path} should be an object (dict), got {type(value).__name__}")
        return {str(k): _read(args[1], v, _join(path, str(k))) for k, v in value.items()}
    if tp is np.ndarray:
        return np.array(value, dtype=np.float64)  # null -> NaN
    if tp in (float, int, str, bool):
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ValueError(f"{path} should be a {tp.__name__}, got {value!r}") from None
    return value

"""Preference data in: loaders for JSONL / JSONL.gz / Parquet / CSV; the synthetic default
(made in :mod:`likeable.protocol.synthetic`) is re-exported here.

Every loader returns a :class:`PreferenceDataset` with the canonical fields ``prompt``,
``response_a``, ``response_b``, ``label`` (1 = A preferred, 0 = B preferred, 0.5 = tie), and
optionally ``user_id`` and ``conversation_id``. :func:`synthetic` also carries embeddings and
the ground truth (planted directions, attribute names, user weights) so every metric of the
protocol can be checked against what was planted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._core import FormatError
from .._validation import fspath
from .synthetic import ATTRIBUTE_NAMES, SESSION_DIMENSIONS, synthetic, synthetic_candidates

__all__ = ["PreferenceDataset", "load", "synthetic", "synthetic_candidates", "ATTRIBUTE_NAMES", "SESSION_DIMENSIONS"]

CANONICAL = ("prompt", "response_a", "response_b", "label", "user_id", "conversation_id")
REQUIRED = ("prompt", "response_a", "response_b", "label")


@dataclass
class PreferenceDataset:
    """Pairs of responses with a preference label.

    Attributes
    ----------
    prompt, response_a, response_b : list of str
        Texts (for synthetic data, generated stand-ins built from attribute words).
    label : ndarray of float32, shape (n,)
        1 = A preferred, 0 = B preferred, 0.5 = tie (ties are used for training the encoder only).
    user_id, conversation_id : ndarray of str or None
    embeddings_a, embeddings_b : ndarray or None
        Response embeddings when the data come with them (synthetic); otherwise an embedder
        computes them.
    truth : dict
        Ground truth for synthetic data: ``directions`` (n_attributes x dim), ``attribute_names``,
        ``attributes_a``/``attributes_b`` (n x n_attributes), ``user_weights`` (n_users x
        n_attributes), ``user_names``, ``population_weights``.
    source : str
        Where the data came from (path or ``synthetic(...)``).
    """

    prompt: list
    response_a: list
    response_b: list
    label: np.ndarray
    user_id: np.ndarray | None = None
    conversation_id: np.ndarray | None = None
    embeddings_a: np.ndarray | None = None
    embeddings_b: np.ndarray | None = None
    truth: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.label)
        self.label = np.asarray(self.label, dtype=np.float32)
        for name in ("prompt", "response_a", "response_b"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows but label has {n}")
        bad = ~np.isin(self.label, (0.0, 0.5, 1.0))
        if bad.any():
            raise ValueError(f"label must be 1 (A preferred), 0 (B preferred) or 0.5 (tie); "
                             f"row {int(np.flatnonzero(bad)[0])} has {self.label[bad][0]!r}")
        for name in ("user_id", "conversation_id"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray([str(v) for v in value], dtype=object)
                if len(value) != n:
                    raise ValueError(f"{name} has {len(value)} rows but label has {n}")
                setattr(self, name, value)
        for name in ("embeddings_a", "embeddings_b"):
            value = getattr(self, name)
            if value is not None:
                value = np.ascontiguousarray(value, dtype=np.float32)
                if value.ndim != 2 or value.shape[0] != n:
                    raise ValueError(f"{name} must have shape (n_pairs={n}, dim), got {value.shape}")
                setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def has_users(self) -> bool:
        return self.user_id is not None and len(np.unique(self.user_id)) > 1

    @property
    def has_embeddings(self) -> bool:
        return self.embeddings_a is not None and self.embeddings_b is not None

    def length_difference(self) -> np.ndarray:
        """Length of A minus length of B in words (the length control of the protocol)."""
        if "length_a" in self.truth:
            return (self.truth["length_a"] - self.truth["length_b"]).astype(np.float64)
        a = np.fromiter((len(t.split()) for t in self.response_a), np.float64, len(self))
        b = np.fromiter((len(t.split()) for t in self.response_b), np.float64, len(self))
        return a - b

    def subset(self, rows: Any) -> "PreferenceDataset":
        """The pairs at ``rows`` (integer ids or a boolean mask); ground truth per pair follows."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        pick = lambda seq: [seq[i] for i in rows]  # noqa: E731
        truth = dict(self.truth)
        for key in ("attributes_a", "attributes_b", "length_a", "length_b"):
            if key in truth:
                truth[key] = truth[key][rows]
        opt = lambda a: None if a is None else a[rows]  # noqa: E731
        return PreferenceDataset(pick(self.prompt), pick(self.response_a), pick(self.response_b),
                                 self.label[rows], opt(self.user_id), opt(self.conversation_id),
                                 opt(self.embeddings_a), opt(self.embeddings_b), truth, self.source)

    def __repr__(self) -> str:
        users = len(np.unique(self.user_id)) if self.user_id is not None else 0
        ties = int((self.label == 0.5).sum())
        return (f"<likeable.PreferenceDataset(n_pairs={len(self)}, n_users={users}, ties={ties}, "
                f"embedded={self.has_embeddings}, source={self.source!r})>")


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------
def load(path: Any, format: str | None = None, columns: Mapping[str, str] | None = None) -> PreferenceDataset:
    """Load preference pairs from JSONL, JSONL.gz, Parquet or CSV.

    Parameters
    ----------
    path : str or os.PathLike
    format : {"jsonl", "parquet", "csv"}, optional
        Inferred from the extension when omitted (``.jsonl``, ``.json``, ``.jsonl.gz``,
        ``.parquet``, ``.csv``, ``.csv.gz``).
    columns : mapping, optional
        Canonical field -> column in the file, e.g. ``{"prompt": "question", "label": "pref"}``.
        Unmapped canonical fields are looked up under their own name. Without a mapping, the
        HH-RLHF layout (``chosen``/``rejected`` dialogues) and the two-objective layout
        (``prompt``, ``responses``, ``label`` as the index of the preferred response,
        ``objective`` as the user) are recognised.

    Returns
    -------
    PreferenceDataset

    Raises
    ------
    FileNotFoundError, ValueError
        Unreadable file (names the file and the reader's complaint) or a missing column (names
        the column and lists those present).
    """
    path = fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, expected a data file")
    fmt = (format or _infer_format(path)).lower()
    table = _read_table(path, fmt)
    try:
        names = table.column_names
        data = {name: table.column(name).to_pylist() for name in names}
    except UnicodeDecodeError as exc:  # e.g. a CSV whose bytes are not UTF-8
        raise FormatError(f"could not read {path} as {fmt}: text is not valid UTF-8 ({exc})") from None
    columns = dict(columns or {})
    unknown = set(columns) - set(CANONICAL)
    if unknown:
        raise ValueError(f"columns maps unknown fields {sorted(unknown)}; canonical fields are {list(CANONICAL)}")

    if not columns and {"chosen", "rejected"} <= set(names) and "responses" not in names:
        ds = _from_hh_rlhf(data, path)
    elif not columns and {"prompt", "responses", "label"} <= set(names):
        ds = _from_two_objectives(data, path)
    else:
        ds = _from_columns(data, names, columns, path)
    return ds


def _infer_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    for ext, fmt in ((".jsonl", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl"),
                     (".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv")):
        if lower.endswith(ext):
            return fmt
    raise ValueError(f"cannot tell the format of {path} from its name; pass format='jsonl', "
                     "'parquet' or 'csv'")


def _read_table(path: str, fmt: str):
    import pyarrow as pa

    try:
        if fmt == "jsonl":
            import pyarrow.json as pj

            # JSONL rows can be large dialogues: a generous block size avoids straddling errors.
            return pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 26))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if fmt == "csv":
            import pyarrow.csv as pc

            return pc.read_csv(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, EOFError) as exc:
        raise FormatError(f"could not read {path} as {fmt}: {exc}") from None
    raise ValueError(f"unknown format {fmt!r}; use 'jsonl', 'parquet' or 'csv'")


def _column(data: dict, names: Sequence[str], column: str, field_name: str, path: str) -> list:
    if column not in data:
        raise ValueError(f"{path}: missing column {column!r} for field {field_name!r}; "
                         f"columns present: {list(names)}. Pass columns={{{field_name!r}: ...}} "
                         "to map it.")
    return data[column]


def _from_columns(data: dict, names, columns: dict, path: str) -> PreferenceDataset:
    fields = {}
    for name in CANONICAL:
        col = columns.get(name, name)
        if name in REQUIRED:
            fields[name] = _column(data, names, col, name, path)
        elif col in data:
            fields[name] = data[col]
        elif name in columns:
            _column(data, names, col, name, path)  # mapped but absent: raise
    return PreferenceDataset(
        prompt=[_text(v) for v in fields["prompt"]], response_a=[_text(v) for v in fields["response_a"]],
        response_b=[_text(v) for v in fields["response_b"]], label=_parse_labels(fields["label"], path),
        user_id=fields.get("user_id"), conversation_id=fields.get("conversation_id"), source=path)


def _text(value) -> str:
    return "" if value is None else str(value)


def _parse_labels(values: list, path: str) -> np.ndarray:
    """1/0/0.5, booleans, or the strings A/B/tie."""
    words = {"a": 1.0, "b": 0.0, "tie": 0.5, "true": 1.0, "false": 0.0}
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        if isinstance(v, str):
            key = v.strip().lower()
            if key in words:
                out[i] = words[key]
                continue
            try:
                v = float(key)
            except ValueError:
                raise ValueError(f"{path}: row {i} has label {v!r}; expected 1 (A), 0 (B), 0.5 (tie) "
                                 "or 'A'/'B'/'tie'") from None
        if v is None or v not in (0, 0.5, 1):
            raise ValueError(f"{path}: row {i} has label {v!r}; expected 1 (A), 0 (B) or 0.5 (tie)")
        out[i] = float(v)
    return out


_ASSISTANT = "Assistant:"


def split_dialogue(text: str) -> tuple[str, str]:
    """(prompt, last assistant response) of an HH-RLHF dialogue."""
    cut = text.rfind(_ASSISTANT)
    if cut < 0:
        return "", text.strip()
    return text[:cut].strip(), text[cut + len(_ASSISTANT):].strip()


def _from_hh_rlhf(data: dict, path: str) -> PreferenceDataset:
    prompts, a, b = [], [], []
    for chosen, rejected in zip(data["chosen"], data["rejected"]):
        prompt, resp_chosen = split_dialogue(_text(chosen))
        _, resp_rejected = split_dialogue(_text(rejected))
        prompts.append(prompt)
        a.append(resp_chosen)
        b.append(resp_rejected)
    n = len(prompts)
    # HH-RLHF always lists the chosen response first; alternate sides so a label-blind model
    # cannot score above chance from position alone.
    swap = np.arange(n) % 2 == 1
    for i in np.flatnonzero(swap):
        a[i], b[i] = b[i], a[i]
    label = np.where(swap, 0.0, 1.0).astype(np.float32)
    return PreferenceDataset(prompts, a, b, label, source=path)


def _from_two_objectives(data: dict, path: str) -> PreferenceDataset:
    prompts, a, b, labels = [], [], [], []
    for i, (prompt, responses, label) in enumerate(zip(data["prompt"], data["responses"], data["label"])):
        if not isinstance(responses, (list, tuple)) or len(responses) != 2:
            raise ValueError(f"{path}: row {i} has 'responses' that is not a list of two strings")
        if label not in (0, 1):
            raise ValueError(f"{path}: row {i} has label {label!r}; the two-objective format "
                             "stores the index (0 or 1) of the preferred response")
        prompts.append(_text(prompt))
        a.append(_text(responses[0]))
        b.append(_text(responses[1]))
        labels.append(1.0 if label == 0 else 0.0)  # label is the index of the preferred response
    users = data.get("objective") or data.get("user_id")
    return PreferenceDataset(prompts, a, b, np.asarray(labels, np.float32), user_id=users, source=path)

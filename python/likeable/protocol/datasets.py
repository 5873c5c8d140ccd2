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
from .._io import open_regular
from .._json import check_stream_nesting
from .._validation import ArgumentError, fspath, label_value
from .synthetic import ATTRIBUTE_NAMES, SESSION_DIMENSIONS, synthetic, synthetic_candidates

__all__ = ["PreferenceDataset", "load", "synthetic", "synthetic_candidates", "ATTRIBUTE_NAMES", "SESSION_DIMENSIONS",
           "SCHEMA_HELP"]

CANONICAL = ("prompt", "response_a", "response_b", "label", "user_id", "conversation_id",
             "embedding_a", "embedding_b")
REQUIRED = ("prompt", "response_a", "response_b", "label")

# What `likeable analyze --help` prints about the data; README "Your data" says the same.
SCHEMA_HELP = """your data (one row per preference pair):
  prompt                the question or conversation so far (text)
  response_a            the first response (text)
  response_b            the second response (text)
  label                 1, "A" or true: A chosen; 0, "B" or false: B chosen; 0.5 or "tie"
  user_id               who chose (optional; enables per-user weights)
  conversation_id       groups pairs of one conversation (optional)
  embedding_a           vector of response_a (optional: with embedding_b, no --embedder)
  embedding_b           vector of response_b (lists or fixed-size lists of numbers)

formats: .jsonl .json .ndjson .jsonl.gz .parquet .pq .csv .csv.gz (or --format).
Other column names: --columns prompt=question,label=pref. Other label words:
--labels good=1,bad=0. Recognised without --columns: HH-RLHF (chosen, rejected
dialogues) and the two-objective layout (prompt, responses, label = index of the
preferred response, objective = user). In Python, likeable.datasets.load also takes
pandas or polars DataFrames, pyarrow Tables and Hugging Face datasets.Dataset."""


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
    coerced : dict
        Per column, how many values the loader turned into text (JSON booleans or numbers in
        a column of strings, written as JSON: ``true``, ``42``).
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
    coerced: dict = field(default_factory=dict)

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
def load(path: Any, format: str | None = None, columns: Mapping[str, str] | None = None,
         labels: Mapping[Any, Any] | None = None) -> PreferenceDataset:
    """Load preference pairs from a file or a table already in memory.

    The canonical schema (one row per pair) is ``prompt``, ``response_a``, ``response_b``
    (text), ``label`` (1 / ``"A"`` / true: A preferred; 0 / ``"B"`` / false: B preferred;
    0.5 / ``"tie"``), and optionally ``user_id``, ``conversation_id`` and ``embedding_a``,
    ``embedding_b`` (one vector per row: list or fixed-size-list columns, arrays in a
    DataFrame, tensor columns). With both embedding columns the protocol uses them instead
    of an embedder.

    Parameters
    ----------
    path : str, os.PathLike, or a table
        A JSONL, JSONL.gz, Parquet or CSV file; or a pandas or polars DataFrame, a pyarrow
        Table, or a Hugging Face ``datasets.Dataset`` (one split).
    format : {"jsonl", "parquet", "csv"}, optional
        Files only; inferred from the extension when omitted (``.jsonl``, ``.json``,
        ``.ndjson``, ``.jsonl.gz``, ``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``).
    columns : mapping, optional
        Canonical field -> column, e.g. ``{"prompt": "question", "label": "pref"}``.
        Unmapped canonical fields are looked up under their own name. Without a mapping, the
        HH-RLHF layout (``chosen``/``rejected`` dialogues) and the two-objective layout
        (``prompt``, ``responses``, ``label`` as the index of the preferred response,
        ``objective`` as the user) are recognised.
    labels : mapping, optional
        Label value -> label, for labels in other words, e.g. ``{"good": 1, "bad": 0}``.

    Returns
    -------
    PreferenceDataset

    Raises
    ------
    FileNotFoundError, TypeError, ValueError
        Unreadable file (names the file and the reader's complaint), an unsupported object,
        a missing column (names the column and lists those present) or a bad label.
    """
    from .._arrow import to_arrow_table

    table = to_arrow_table(path, "path")
    if table is not None:
        if format is not None:
            raise ValueError(f"format={format!r} applies to files, not to {_describe(path)}")
        where = _describe(path)
    else:
        try:
            where = fspath(path)
        except TypeError:
            raise TypeError(f"path must be a file path, a pandas or polars DataFrame, a pyarrow Table or a "
                            f"datasets.Dataset, got {type(path).__name__}") from None
        if not os.path.exists(where):
            raise FileNotFoundError(f"no such file: {where}")
        if os.path.isdir(where):
            raise IsADirectoryError(f"{where} is a folder, expected a data file")
        fmt = (format or _infer_format(where)).lower()
        table = _read_table(where, fmt)
    columns = dict(columns or {})
    unknown = set(columns) - set(CANONICAL)
    if unknown:
        tail = f"maps unknown fields {sorted(unknown)}; canonical fields are {list(CANONICAL)}"
        raise ArgumentError(f"columns {tail}", f"--columns {tail}")
    names = list(table.column_names)
    if not columns and {"chosen", "rejected"} <= set(names) and "responses" not in names:
        layout, wanted = _from_hh_rlhf, ("chosen", "rejected")
    elif not columns and {"prompt", "responses", "label"} <= set(names):
        layout, wanted = _from_two_objectives, ("prompt", "responses", "label", "objective", "user_id")
    else:
        return _with_coerced(_from_columns(table, names, columns, labels, where), table)
    if labels:
        head = (f"{where} is in the {'HH-RLHF' if layout is _from_hh_rlhf else 'two-objective'} layout, "
                "whose labels need no mapping")
        raise ArgumentError(f"{head}; drop labels=", f"{head}; drop --labels")
    return _with_coerced(layout(_texts_of(table, [n for n in wanted if n in names], where), where), table)


def _with_coerced(ds: PreferenceDataset, table) -> PreferenceDataset:
    ds.coerced = _coerced_counts(table)
    return ds


def _describe(obj) -> str:
    kind = type(obj).__name__
    module = type(obj).__module__.split(".")[0]
    return {"pandas": "the pandas DataFrame", "polars": "the polars DataFrame",
            "datasets": "the datasets.Dataset"}.get(module, f"the {module} {kind}")


def _texts_of(table, names, where: str) -> dict:
    try:
        return {name: table.column(name).to_pylist() for name in names}
    except UnicodeDecodeError as exc:  # e.g. a CSV whose bytes are not UTF-8
        raise FormatError(f"could not read {where}: text is not valid UTF-8 ({exc})") from None


def _infer_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    for ext, fmt in ((".jsonl", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl"),
                     (".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv")):
        if lower.endswith(ext):
            return fmt
    head = f"cannot tell the format of {path} from its name"
    raise ArgumentError(f"{head}; pass format='jsonl', 'parquet' or 'csv'", f"{head}; pass --format jsonl, parquet or csv")


def _read_table(path: str, fmt: str):
    import pyarrow as pa

    if fmt not in ("jsonl", "parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}; use 'jsonl', 'parquet' or 'csv'")
    try:
        # one open file for every read: a FIFO or a device is refused before anything blocks on it
        with open_regular(path) as fh:
            def stream():  # the file from its start, as a stream of its own (readers close theirs)
                own = os.fdopen(os.dup(fh.fileno()), "rb")
                own.seek(0)
                if path.lower().endswith(".gz"):
                    return pa.CompressedInputStream(pa.PythonFile(own, "r"), "gzip")
                return own

            if fmt == "jsonl":
                import pyarrow.json as pj

                # nesting first: pyarrow's reader overflows the C stack on deep nesting
                with stream() as source:
                    check_stream_nesting(source, path, "a JSON line")
                try:
                    with stream() as source:
                        # JSONL rows can be large dialogues: a generous block size avoids straddling errors.
                        table = pj.read_json(source, read_options=pj.ReadOptions(block_size=1 << 26))
                except pa.ArrowInvalid as exc:
                    if "changed from" not in str(exc):  # a column of mixed types, e.g. true in a text column
                        raise
                    table = _read_jsonl_mixed(fh, path)
            elif fmt == "parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(fh)
            else:
                import pyarrow.csv as pc

                with stream() as source:
                    table = pc.read_csv(source)
            table.column_names  # noqa: B018  (column names that are not UTF-8 fail here, not later)
    except (FileNotFoundError, IsADirectoryError, PermissionError, FormatError):
        raise
    except UnicodeDecodeError as exc:
        raise FormatError(f"could not read {path} as {fmt}: text is not valid UTF-8 ({exc})") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, EOFError) as exc:
        raise FormatError(f"could not read {path} as {fmt}: {exc}") from None
    return table


def _missing(where: str, names, column: str, field_name: str) -> ArgumentError:
    head = f"{where}: missing column {column!r} for field {field_name!r}; columns present: {list(names)}"
    return ArgumentError(f"{head}. Pass columns={{{field_name!r}: ...}} to map it.",
                         f"{head}. Pass --columns {field_name}=COLUMN to map it.")


_COERCED_KEY = b"likeable.coerced"


def _read_jsonl_mixed(raw, path: str):
    """JSONL whose columns mix types (``raw``: the open file, nesting already checked), read line
    by line: in a column that holds strings, JSON booleans, numbers (and lists or objects) become
    their JSON text; the counts go in the table's metadata (see :func:`_coerced_counts`)."""
    import gzip
    import io
    import json

    import pyarrow as pa

    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw) if path.lower().endswith(".gz") else raw
    text = io.TextIOWrapper(binary, encoding="utf-8")
    try:
        lines = list(text)
    finally:
        text.detach()  # the caller closes the file
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FormatError(f"could not read {path} as jsonl: line {number}: {exc}") from None
            if not isinstance(rows[-1], dict):
                raise FormatError(f"could not read {path} as jsonl: line {number} is not an object")
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns, coerced = {}, {}
    for name in names:
        values, count = _as_text_where_mixed([row.get(name) for row in rows])
        columns[name] = pa.array(values)
        if count:
            coerced[name] = count
    return pa.table(columns).replace_schema_metadata({_COERCED_KEY: json.dumps(coerced).encode()})


def _as_text_where_mixed(values: list) -> tuple[list, int]:
    """Values of one column with non-strings as JSON text when the column (or, for a column of
    lists, its items) holds strings; and how many were changed."""
    import json

    def fix(items: list) -> tuple[list, int]:
        if not any(isinstance(v, str) for v in items):
            return items, 0
        out = [v if v is None or isinstance(v, str) else json.dumps(v) for v in items]
        return out, sum(v is not None and not isinstance(v, str) for v in items)

    if all(v is None or isinstance(v, list) for v in values):  # e.g. "responses": a list per row
        fixed = [fix(v) if v is not None else (None, 0) for v in values]
        if any(isinstance(item, str) for v in values if v for item in v):
            return [v for v, _ in fixed], sum(n for _, n in fixed)
        return values, 0
    return fix(values)


def _coerced_counts(table) -> dict:
    """Per column, the values :func:`_read_jsonl_mixed` turned into text (empty for other reads)."""
    import json

    metadata = table.schema.metadata or {}
    return json.loads(metadata[_COERCED_KEY]) if _COERCED_KEY in metadata else {}


def _from_columns(table, names, columns: dict, labels, where: str) -> PreferenceDataset:
    present = {}
    for name in CANONICAL:
        col = columns.get(name, name)
        if col in names:
            present[name] = col
        elif name in REQUIRED or name in columns:
            raise _missing(where, names, col, name)
    if ("embedding_a" in present) != ("embedding_b" in present):
        have, lack = ("embedding_a", "embedding_b") if "embedding_a" in present else ("embedding_b", "embedding_a")
        raise _missing(where, names, columns.get(lack, lack), lack)
    from .._arrow import embedding_matrix

    embeddings = {name: embedding_matrix(table.column(present[name]), present[name])
                  for name in ("embedding_a", "embedding_b") if name in present}
    text_fields = [name for name in present if name not in embeddings]
    data = _texts_of(table, [present[name] for name in text_fields], where)
    fields = {name: data[present[name]] for name in text_fields}
    ds = PreferenceDataset(
        prompt=[_text(v) for v in fields["prompt"]], response_a=[_text(v) for v in fields["response_a"]],
        response_b=[_text(v) for v in fields["response_b"]], label=_parse_labels(fields["label"], where, labels),
        user_id=fields.get("user_id"), conversation_id=fields.get("conversation_id"),
        embeddings_a=embeddings.get("embedding_a"), embeddings_b=embeddings.get("embedding_b"), source=where)
    if ds.has_embeddings and ds.embeddings_a.shape[1] != ds.embeddings_b.shape[1]:
        raise ValueError(f"{where}: embedding_a has {ds.embeddings_a.shape[1]} dimensions but embedding_b "
                         f"has {ds.embeddings_b.shape[1]}")
    return ds


def _text(value) -> str:
    return "" if value is None else str(value)


def _parse_labels(values: list, where: str, mapping: Mapping[Any, Any] | None = None) -> np.ndarray:
    """1/0/0.5, booleans, the words A/B/tie/true/false, or words given in ``mapping``."""
    mapping = dict(mapping or {})
    by_text = {str(k).strip().lower(): v for k, v in mapping.items()}
    for key, value in mapping.items():
        if label_value(value) is None:
            tail = f"maps {key!r} to {value!r}; a label is 1 (A), 0 (B), 0.5 (tie) or 'A'/'B'/'tie'"
            raise ArgumentError(f"labels {tail}", f"--labels {tail}")

    def mapped(v):
        try:
            if v in mapping:
                return mapping[v]
        except TypeError:  # an unhashable value: only its text can match
            pass
        return by_text.get(str(v).strip().lower(), v)

    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        value = label_value(mapped(v) if mapping else v)
        if value is None:
            head = f"{where}: row {i} has label {v!r}; expected 1 (A), 0 (B), 0.5 (tie) or 'A'/'B'/'tie'"
            raise ArgumentError(f"{head}, or map other words with labels={{'good': 1, 'bad': 0}}",
                                f"{head}, or map other words with --labels good=1,bad=0")
        out[i] = value
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

"""Offline encoding and scoring on Ray Data (``pip install "likeable[ray]"``).

likeable plugs into Ray Data instead of growing a scheduler: each function returns a lazy
``ray.data.Dataset`` built with ``map_batches`` over an actor class that loads the model once
per actor (from safetensors bytes shipped with the task, never re-trained on a worker).

Embeddings come in as Ray tensor columns, list or fixed-size-list columns
(:func:`embedding_matrix` reads any of them). Sparse codes travel as two Arrow list columns
that are CSR by construction: ``feature_ids`` (list<int32>) and ``feature_values``
(list<float32>) — one row per input row.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._arrow import embedding_matrix, is_vector_type
from .sparse import SparseCodes

__all__ = ["encode_dataset", "score_dataset", "encode_parquet", "score_parquet", "to_arrow", "codes_to_arrow",
           "codes_from_arrow", "embedding_matrix", "IDS_COLUMN", "VALUES_COLUMN"]

IDS_COLUMN = "feature_ids"
VALUES_COLUMN = "feature_values"


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError('likeable.ray needs Ray Data: pip install "likeable[ray]"') from None
    return ray


def codes_to_arrow(codes: SparseCodes):
    """Two Arrow list arrays (ids, values) sharing the CSR buffers where offsets fit int32."""
    import pyarrow as pa

    offsets = pa.array(codes.indptr.astype(np.int32) if codes.nnz < 2**31 else codes.indptr)
    list_type = pa.ListArray if offsets.type == pa.int32() else pa.LargeListArray
    return (list_type.from_arrays(offsets, pa.array(codes.indices, type=pa.int32())),
            list_type.from_arrays(offsets, pa.array(codes.values, type=pa.float32())))


def codes_from_arrow(ids, values, n_features: int) -> SparseCodes:
    """SparseCodes from the two list columns (chunked or not); validates ids against n_features."""
    import pyarrow as pa

    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if ids.null_count or values.null_count:
        raise ValueError(f"{IDS_COLUMN}/{VALUES_COLUMN} contain nulls")
    id_offsets = np.asarray(ids.offsets, dtype=np.int64)
    if not np.array_equal(id_offsets, np.asarray(values.offsets, dtype=np.int64)):
        raise ValueError(f"{IDS_COLUMN} and {VALUES_COLUMN} differ in length on some row")
    start = id_offsets[0]
    flat_ids = np.asarray(ids.values[start:id_offsets[-1]]) if len(ids) else np.zeros(0, np.int32)
    flat_values = np.asarray(values.values[start:id_offsets[-1]]) if len(values) else np.zeros(0, np.float32)
    return SparseCodes(id_offsets - start, flat_ids.astype(np.int32), flat_values.astype(np.float32),
                       (len(ids), n_features))


class _EncodeActor:
    """Loads the encoder (and embedder) once per actor; encodes Arrow batches."""

    def __init__(self, encoder_bytes: bytes, embedder: Any, text_column: str | None,
                 embedding_column: str | None, keep_columns: bool, device: str | None = None) -> None:
        from .encoder import SparseEncoder

        self.device = device  # "cuda" on GPU actors (num_gpus > 0): host batches encoded on the GPU
        self.encoder = SparseEncoder.from_bytes(encoder_bytes, source="<ray task>")
        if embedder is not None:
            from .protocol.embed import as_embedder

            embedder = as_embedder(embedder)
        self.embedder = embedder
        self.text_column = text_column
        self.embedding_column = embedding_column
        self.keep_columns = keep_columns

    def __call__(self, batch):
        if self.text_column is not None:
            texts = batch.column(self.text_column).to_pylist()
            X = self.embedder.embed(texts)
        else:
            X = embedding_matrix(batch.column(self.embedding_column), self.embedding_column)
        codes = self.encoder.encode(X, threads=1, device=self.device) if len(X) \
            else SparseCodes.empty(0, self.encoder.n_features)
        ids, values = codes_to_arrow(codes)
        out = batch if self.keep_columns else batch.select([])
        return out.append_column(IDS_COLUMN, ids).append_column(VALUES_COLUMN, values)


class _ScoreActor:
    """Loads the user preferences once per actor; scores (user, code) rows."""

    def __init__(self, users_bytes: bytes, user_column: str, output_column: str, output: str,
                 device: str | None = None) -> None:
        from .preferences import UserPreferences

        self.device = device
        self.users = UserPreferences.from_bytes(users_bytes, source="<ray task>")
        self.user_column = user_column
        self.output_column = output_column
        self.output = output

    def __call__(self, batch):
        import pyarrow as pa

        n_features = self.users.n_features_in_
        codes = codes_from_arrow(batch.column(IDS_COLUMN), batch.column(VALUES_COLUMN), n_features)
        user_ids = batch.column(self.user_column).to_pylist()
        if self.output == "proba":
            scores = self.users.predict_proba(codes, user_ids, device=self.device)
        else:
            scores = self.users.decision_function(codes, user_ids, device=self.device)
        return batch.append_column(self.output_column, pa.array(np.asarray(scores, np.float32)))


def _check_column(ds, name: str, vectors: bool = False) -> None:
    schema = ds.schema()
    names = list(schema.names) if schema is not None else []
    if name not in names:
        raise ValueError(f"the dataset has no column {name!r}; it has {names}")
    column_type = schema.types[names.index(name)]
    if vectors and not is_vector_type(column_type):  # fail here, not inside an actor
        raise TypeError(f"column {name!r} must hold embedding vectors (a list, fixed-size list or "
                        f"tensor column of numbers), got {column_type}")


def _actor_options(batch_size: int, num_gpus: float, actors) -> dict:
    import ray.data

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if actors is None:
        pool = ray.data.ActorPoolStrategy(size=1)
    elif isinstance(actors, tuple):
        pool = ray.data.ActorPoolStrategy(min_size=actors[0], max_size=actors[1])
    else:
        pool = ray.data.ActorPoolStrategy(size=int(actors))
    options = {"batch_size": batch_size, "batch_format": "pyarrow", "zero_copy_batch": True, "compute": pool}
    if num_gpus:
        options["num_gpus"] = num_gpus
    return options


def encode_dataset(ds, encoder, *, text_column: str | None = None, embedding_column: str | None = None,
                   embedder: Any = None, batch_size: int = 4096, num_gpus: float = 0,
                   actors: int | tuple[int, int] | None = None, keep_columns: bool = True):
    """Encode a Ray Dataset's rows into sparse codes (lazy; returns a Ray Dataset).

    Give exactly one of ``embedding_column`` or ``text_column`` together with an ``embedder``
    (anything :func:`likeable.as_embedder` takes, e.g. :class:`likeable.OnnxEmbedder`, which
    pickles as its configuration and re-opens the model on each actor). The embedding column
    may be a Ray tensor column (what ``ray.data.from_numpy``, ``from_items`` and ``from_pandas``
    make of arrays: ``ArrowTensorType``/``ArrowTensorTypeV2``), a list or fixed-size-list
    column (Parquet ``list<float>`` or ``fixed_size_list<float, d>``), of any numeric dtype.
    Adds the ``feature_ids`` and ``feature_values`` list columns (CSR rows); the other
    columns pass through unchanged. ``num_gpus`` asks Ray for GPU actors,
    which then encode on the GPU (``likeable.gpu``).
    """
    _require_ray()
    if (text_column is None) == (embedding_column is None):
        raise ValueError("give exactly one of text_column= or embedding_column=")
    if text_column is not None and embedder is None:
        raise ValueError("text_column= needs an embedder= (e.g. likeable.OnnxEmbedder)")
    if embedder is not None:
        from .protocol.embed import as_embedder

        embedder = as_embedder(embedder)  # refuse what cannot embed here, not on an actor
    _check_column(ds, text_column or embedding_column, vectors=embedding_column is not None)
    return ds.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={"encoder_bytes": encoder.to_bytes(), "embedder": embedder,
                               "text_column": text_column, "embedding_column": embedding_column,
                               "keep_columns": keep_columns, "device": "cuda" if num_gpus else None},
        **_actor_options(batch_size, num_gpus, actors))


def score_dataset(ds, users, *, user_column: str = "user_id", output_column: str = "score",
                  output: str = "utility", batch_size: int = 4096, num_gpus: float = 0,
                  actors: int | tuple[int, int] | None = None):
    """Score each (user, code) row of an encoded Ray Dataset with per-user weights.

    Rows need ``user_column`` and the ``feature_ids``/``feature_values`` columns written by
    :func:`encode_dataset`. ``output="utility"`` adds ``w_user · code`` (a candidate's
    utility); ``output="proba"`` adds P(A preferred) for pair codes. Unseen users get the
    population weights.
    """
    _require_ray()
    if output not in ("utility", "proba"):
        raise ValueError(f"output must be 'utility' or 'proba', got {output!r}")
    for name in (user_column, IDS_COLUMN, VALUES_COLUMN):
        _check_column(ds, name)
    return ds.map_batches(
        _ScoreActor,
        fn_constructor_kwargs={"users_bytes": users.to_bytes(), "user_column": user_column,
                               "output_column": output_column, "output": output,
                               "device": "cuda" if num_gpus else None},
        **_actor_options(batch_size, num_gpus, actors))


def encode_parquet(source: str, destination: str, encoder, **kwargs) -> None:
    """Parquet in, Parquet out: read ``source``, :func:`encode_dataset`, write ``destination``."""
    ray = _require_ray()
    encode_dataset(ray.data.read_parquet(source), encoder, **kwargs).write_parquet(destination)


def score_parquet(source: str, destination: str, users, **kwargs) -> None:
    """Parquet in, Parquet out: read encoded ``source``, :func:`score_dataset`, write ``destination``."""
    ray = _require_ray()
    score_dataset(ray.data.read_parquet(source), users, **kwargs).write_parquet(destination)


def to_arrow(ds):
    """Materialise a (small) Ray Dataset as one Arrow table in the driver."""
    ray = _require_ray()
    import pyarrow as pa

    return pa.concat_tables(ray.get(ds.to_arrow_refs()))

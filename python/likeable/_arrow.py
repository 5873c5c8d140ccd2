"""Arrow in: embedding columns of every shape users hold them in, and tables from DataFrames.

Embedding columns come as Arrow ``list``/``large_list``/``fixed_size_list`` of numbers (Parquet
files, polars ``Array``/``List``, pandas columns of arrays), as Ray Data tensor columns
(``ArrowTensorType``, ``ArrowTensorTypeV2``, ``ArrowVariableShapedTensorType``) or as Arrow's
own ``arrow.fixed_shape_tensor``. All become one (n, d) float32 matrix, read from the Arrow
buffers without a Python loop.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["embedding_matrix", "is_vector_type", "to_arrow_table"]


def is_vector_type(arrow_type) -> bool:
    """Whether a column of this Arrow type can hold embedding vectors (see the module notes)."""
    import pyarrow as pa

    if not isinstance(arrow_type, pa.DataType):
        return True  # e.g. a pandas-backed Ray schema: checked when the rows are read
    if isinstance(arrow_type, pa.BaseExtensionType):
        arrow_type = arrow_type.storage_type
        if pa.types.is_struct(arrow_type) and arrow_type.get_field_index("data") >= 0:
            arrow_type = arrow_type.field("data").type
    return ((pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
             or pa.types.is_fixed_size_list(arrow_type))
            and (pa.types.is_floating(arrow_type.value_type) or pa.types.is_integer(arrow_type.value_type)))


def _chunks(column) -> list:
    import pyarrow as pa

    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def embedding_matrix(column, name: str = "embedding") -> np.ndarray:
    """An Arrow column of vectors (chunked or not, any of the layouts above) as (n, d) float32."""
    parts = [_chunk_matrix(chunk, name) for chunk in _chunks(column) if len(chunk)]
    if not parts:
        return np.zeros((0, 0), np.float32)
    widths = {p.shape[1] for p in parts}
    if len(widths) > 1:
        raise ValueError(f"column {name!r} holds embeddings of different lengths {sorted(widths)}")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _vector_width(shape, name: str) -> int:
    dims = [int(s) for s in shape]
    if any(s < 0 for s in dims) or sum(s > 1 for s in dims) > 1:
        raise ValueError(f"column {name!r} holds tensors of shape {tuple(dims)}; expected one "
                         "embedding vector per row")
    return math.prod(dims)


def _chunk_matrix(array, name: str) -> np.ndarray:
    import pyarrow as pa

    if array.null_count:
        raise ValueError(f"column {name!r} has null embeddings (first at row "
                         f"{int(np.flatnonzero(np.asarray(array.is_null()))[0])})")
    width = None
    if isinstance(array.type, pa.BaseExtensionType):
        shape = getattr(array.type, "shape", None)  # Ray tensor types, arrow.fixed_shape_tensor
        if shape is not None and all(s is not None for s in shape):
            width = _vector_width(shape, name)
        array = array.storage
        if pa.types.is_struct(array.type):  # Ray's variable-shaped tensors: {data, shape}
            array = array.field("data")
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size if width is None else width
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        offsets = np.asarray(array.offsets)
        lengths = np.diff(offsets)
        if width is None:
            width = int(lengths[0])
        if (lengths != width).any():
            row = int(np.flatnonzero(lengths != width)[0])
            raise ValueError(f"column {name!r} holds embeddings of different lengths "
                             f"(row 0 has {width}, row {row} has {int(lengths[row])})")
    else:
        raise TypeError(f"column {name!r} must hold vectors (a list, fixed-size list or tensor "
                        f"column of numbers), got {array.type}")
    values = array.flatten()  # honours slices and offsets
    if values.null_count:
        raise ValueError(f"column {name!r} has null values inside an embedding")
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise TypeError(f"column {name!r} must hold numbers, got {values.type} items")
    flat = values.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat, dtype=np.float32).reshape(len(array), width)


def to_arrow_table(data: Any, what: str = "data"):
    """A pyarrow Table from a pyarrow Table/RecordBatch, pandas or polars DataFrame, or a
    Hugging Face ``datasets.Dataset``; None for anything else."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    kind = type(data).__name__
    if module == "pandas" and kind == "DataFrame":
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise TypeError(f"{what}: could not convert the pandas DataFrame to Arrow ({exc})") from None
    if module == "polars" and kind in ("DataFrame", "LazyFrame"):
        frame = data.collect() if kind == "LazyFrame" else data
        return frame.to_arrow()
    if module == "datasets":
        if kind == "Dataset":
            return data.with_format("arrow")[:]  # applies any select/shuffle index mapping
        if kind in ("DatasetDict", "IterableDatasetDict"):
            raise TypeError(f"{what} is a DatasetDict with splits {list(data)}; pass one split, "
                            f"e.g. data[{next(iter(data), 'train')!r}]")
        if kind == "IterableDataset":
            raise TypeError(f"{what} is a streaming IterableDataset; load it without streaming=True "
                            "or materialise it with datasets.Dataset.from_generator")
    return None

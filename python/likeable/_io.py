"""Atomic, checked file writes and safetensors read/write with friendly errors."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Mapping

import numpy as np

from ._core import FormatError
from ._validation import fspath


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved model is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def tensors_to_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, object]) -> bytes:
    """safetensors bytes; metadata values are JSON-encoded under one key, ``likeable``."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                metadata={"likeable": json.dumps(dict(metadata), sort_keys=True)})


def tensors_from_bytes(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict]:
    """Inverse of :func:`tensors_to_bytes`; any damage raises :class:`FormatError` naming ``source``."""
    from safetensors import safe_open  # noqa: F401  (import check: clear error if missing)
    from safetensors.numpy import load

    if len(data) < 8:
        raise FormatError(f"{source}: file is too short to be safetensors ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise FormatError(f"{source}: not a safetensors file or truncated "
                          f"(header says {header_len} bytes, file has {len(data)})")
    try:
        header = json.loads(data[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{source}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{source}: safetensors header is not a JSON object")
    raw_meta = (header.get("__metadata__") or {}).get("likeable")
    if raw_meta is None:
        raise FormatError(f"{source}: no likeable metadata: not a file written by likeable")
    try:
        metadata = json.loads(raw_meta)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: likeable metadata is not valid JSON ({exc})") from None
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise FormatError(f"{source}: damaged safetensors data ({exc})") from None
    return tensors, metadata


def read_file_bytes(path) -> bytes:
    path = fspath(path)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a folder, expected a file") from None

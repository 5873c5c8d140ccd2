"""Atomic, checked file writes and safetensors read/write with friendly errors."""
from __future__ import annotations

import json
import os
import tempfile
import zlib
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


_CHECKSUM_KEY = "likeable_crc32"


def _parse_header(data: bytes, source: str) -> tuple[dict, int]:
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
    return header, 8 + header_len


def _checksum(header: dict, payload: memoryview) -> str:
    """CRC32 over the parsed header (minus the checksum itself) and the tensor bytes.

    safetensors has no checksum of its own; this makes a flipped bit anywhere — a tensor
    value, a shape, a metadata field — a FormatError instead of a silently different model.
    """
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != _CHECKSUM_KEY}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True).encode()
    return f"{zlib.crc32(payload, zlib.crc32(canonical)):08x}"


def tensors_to_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, object]) -> bytes:
    """safetensors bytes; metadata JSON-encoded under ``likeable``, plus a CRC32 of everything."""
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    meta = {"likeable": json.dumps(dict(metadata), sort_keys=True)}
    draft = save(arrays, metadata=meta)
    header, data_start = _parse_header(draft, "<draft>")
    # The tensor layout does not depend on the metadata, so the draft's checksum holds for the final file.
    meta[_CHECKSUM_KEY] = _checksum(header, memoryview(draft)[data_start:])
    return save(arrays, metadata=meta)


def tensors_from_bytes(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict]:
    """Inverse of :func:`tensors_to_bytes`; any damage raises :class:`FormatError` naming ``source``."""
    from safetensors.numpy import load

    header, data_start = _parse_header(data, source)
    stored = header.get("__metadata__") or {}
    raw_meta = stored.get("likeable")
    if raw_meta is None:
        raise FormatError(f"{source}: no likeable metadata: not a file written by likeable")
    unknown = set(stored) - {"likeable", _CHECKSUM_KEY}
    if unknown:
        raise FormatError(f"{source}: unexpected metadata keys {sorted(unknown)} (file is corrupted or foreign)")
    checksum = stored.get(_CHECKSUM_KEY)  # absent only in files from before checksums (still read)
    if checksum is not None and checksum != _checksum(header, memoryview(data)[data_start:]):
        raise FormatError(f"{source}: checksum mismatch (file is corrupted)")
    try:
        metadata = json.loads(raw_meta)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: likeable metadata is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise FormatError(f"{source}: likeable metadata is not a JSON object")
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

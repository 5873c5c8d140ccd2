"""Atomic, checked file writes, safe reads, and safetensors read/write with friendly errors."""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import zlib
from typing import Any, BinaryIO, Mapping

import numpy as np

from . import _json
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


def _parse_header(data: bytes, source: str, compact: bool = False) -> tuple[dict, int]:
    """The header and where the tensor bytes start. ``compact``: the header must be written as
    safetensors writes it, JSON without whitespace (outside strings) padded with spaces, so a
    changed whitespace byte, which the parsed header would not show, is caught too."""
    if len(data) < 8:
        raise FormatError(f"{source}: file is too short to be safetensors ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise FormatError(f"{source}: not a safetensors file or truncated "
                          f"(header says {header_len} bytes, file has {len(data)})")
    raw = bytes(data[8:8 + header_len])
    scan = _json.check_nesting(raw.rstrip(b" "), source, "the safetensors header")
    if compact and scan.first_space >= 0:
        raise FormatError(f"{source}: whitespace at byte {8 + scan.first_space} inside the safetensors header "
                          "(file is corrupted)")
    header = _json.loads(raw, source, "the safetensors header", checked=True)
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


def tensors_from_bytes(data: bytes, source: str = "<bytes>", *,
                       require_checksum: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Inverse of :func:`tensors_to_bytes`; any damage raises :class:`FormatError` naming ``source``.

    ``require_checksum=False`` only for formats that had files before checksums existed (the
    encoder's version 1, kept readable).
    """
    from safetensors.numpy import load

    header, data_start = _parse_header(data, source, compact=True)
    stored = header.get("__metadata__") or {}
    if not isinstance(stored, dict):
        raise FormatError(f"{source}: __metadata__ is not a JSON object")
    raw_meta = stored.get("likeable")
    if raw_meta is None:
        raise FormatError(f"{source}: no likeable metadata: not a file written by likeable")
    unknown = set(stored) - {"likeable", _CHECKSUM_KEY}
    if unknown:
        raise FormatError(f"{source}: unexpected metadata keys {sorted(unknown)} (file is corrupted or foreign)")
    checksum = stored.get(_CHECKSUM_KEY)
    if checksum is None and require_checksum:
        raise FormatError(f"{source}: the {_CHECKSUM_KEY} checksum is missing (file is damaged or not written by "
                          "likeable)")
    if checksum is not None and checksum != _checksum(header, memoryview(data)[data_start:]):
        raise FormatError(f"{source}: checksum mismatch (file is corrupted)")
    if not isinstance(raw_meta, str):
        raise FormatError(f"{source}: likeable metadata is not a JSON string")
    metadata = _json.loads(raw_meta, source, "the likeable metadata")
    if not isinstance(metadata, dict):
        raise FormatError(f"{source}: likeable metadata is not a JSON object")
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise FormatError(f"{source}: damaged safetensors data ({exc})") from None
    return tensors, metadata


def open_regular(path) -> BinaryIO:
    """A regular file opened for binary reading, without ever blocking: a FIFO (which would block
    ``open`` until a writer comes, and a read for ever) or a device (which may never end) is
    refused with ValueError before anything is read."""
    path = fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a folder, expected a file") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a folder, expected a file")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file (a pipe, socket or device): refused, since reading it "
                             "could block forever")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file_bytes(path) -> bytes:
    with open_regular(path) as fh:
        return fh.read()


def read_json_file(path, what: str = "JSON") -> Any:
    """A JSON file, nesting checked before parsing; damage is a FormatError naming the file."""
    path = fspath(path)
    return _json.loads(read_file_bytes(path), path, what)


# --- typed reads of a file's metadata ---------------------------------------------------------
_MISSING = object()


class Fields:
    """Fields of a file's JSON metadata read with their types checked: a value that is missing,
    of the wrong type, not finite or out of range is a FormatError naming the file and the field
    (never the OverflowError of ``int(Infinity)`` or a NaN that loads silently)."""

    def __init__(self, meta: Any, source: str, where: str = "") -> None:
        if not isinstance(meta, dict):
            raise FormatError(f"{source}: {where or 'metadata'} is not a JSON object")
        self.meta, self.source, self.where = meta, source, where

    def _bad(self, name: str, why: str) -> FormatError:
        field = f"{self.where}.{name}" if self.where else name
        return FormatError(f"{self.source}: field {field!r} {why}")

    def _get(self, name: str, default: Any) -> Any:
        if name in self.meta:
            return self.meta[name]
        if default is _MISSING:
            raise self._bad(name, "is missing")
        return default

    def int(self, name: str, minimum: int | None = 0, maximum: int | None = None, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(name, f"must be an integer, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self._bad(name, f"is {value}, outside [{minimum}, {maximum if maximum is not None else '...'}]")
        return value

    def float(self, name: str, default: Any = _MISSING) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._bad(name, f"must be a finite number, got {value!r}")
        return float(value)

    def bool(self, name: str, default: Any = _MISSING) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self._bad(name, f"must be true or false, got {value!r}")
        return value

    def dict(self, name: str) -> "Fields":
        return Fields(self._get(name, _MISSING), self.source, f"{self.where}.{name}" if self.where else name)

    def list(self, name: str, item_types: tuple | None = None) -> list:
        item_types = item_types or (str, int)  # (the default cannot name int here: the method above is int)
        value = self._get(name, _MISSING)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, item_types) for v in value):
            names = "/".join(t.__name__ for t in item_types)
            raise self._bad(name, f"must be a list of {names}, got {type(value).__name__}")
        return value


def check_tensor(tensors: dict, name: str, source: str, dtype, shape: tuple | None = None, *, ndim: int | None = None,
                 finite: bool = True, optional: bool = False) -> np.ndarray | None:
    """A stored tensor with its dtype and shape (``None`` in ``shape``: any length) checked, and
    finite; FormatError naming the file and the tensor otherwise."""
    if name not in tensors:
        if optional:
            return None
        raise FormatError(f"{source}: tensor {name!r} is missing")
    arr = tensors[name]
    want_ndim = len(shape) if shape is not None else ndim
    if arr.dtype != np.dtype(dtype) or (want_ndim is not None and arr.ndim != want_ndim) or (
            shape is not None and any(w is not None and w != got for w, got in zip(shape, arr.shape))):
        raise FormatError(f"{source}: tensor {name!r} is {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} "
                          f"{shape if shape is not None else f'of {want_ndim} dimensions'}")
    if finite and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise FormatError(f"{source}: tensor {name!r} holds NaN or infinite values")
    return arr

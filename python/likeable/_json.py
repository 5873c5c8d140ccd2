"""JSON read safely: nesting checked before parsing, damage reported as FormatError.

Parsers recurse once per level of nesting: Python's ``json`` raises ``RecursionError`` on a few
thousand levels, and pyarrow's JSON reader overflows the C stack and kills the process on one
line nested 20,000 deep (and takes 30 s over 14 KB of nesting). Every JSON text likeable reads
(data files, safetensors headers and metadata, ``cfg.json``, reports, configs) is scanned first
by the core (a byte loop, no parsing) and refused when it nests deeper than :data:`MAX_NESTING`.
"""
from __future__ import annotations

import json
from typing import Any, BinaryIO

from . import _core
from ._core import FormatError

#: Deepest nesting of arrays/objects read anywhere: preference data holds lists of messages
#: (3-4 levels), headers and configs 2-3; parsers fail in the thousands.
MAX_NESTING = 100

_CHUNK = 16 << 20


def nesting(data: bytes | bytearray | memoryview | str) -> "_core.JsonScan":
    """The core's scan of one JSON text (depth, max_depth, first_space)."""
    scan = _core.JsonScan()
    scan.feed(data.encode("utf-8") if isinstance(data, str) else data)
    return scan


def check_nesting(data: bytes | bytearray | memoryview | str, source: str, what: str = "JSON",
                  limit: int = MAX_NESTING) -> "_core.JsonScan":
    """FormatError naming ``source`` when ``data`` nests deeper than ``limit``; else the scan."""
    scan = nesting(data)
    _refuse_deep(scan.max_depth, source, what, limit)
    return scan


def check_stream_nesting(fh: BinaryIO, source: str, what: str = "JSON", limit: int = MAX_NESTING) -> None:
    """The same for a (binary, possibly decompressing) file read in chunks, stopping at the first
    level too deep; leaves ``fh`` at its end."""
    scan = _core.JsonScan()
    while chunk := fh.read(_CHUNK):
        scan.feed(chunk)
        _refuse_deep(scan.max_depth, source, what, limit)


def _refuse_deep(depth: int, source: str, what: str, limit: int) -> None:
    if depth > limit:
        raise FormatError(f"{source}: {what} nests arrays/objects more than {limit} levels deep (at least {depth}); "
                          "refused before parsing")


def loads(data: bytes | bytearray | str, source: str, what: str = "JSON", limit: int = MAX_NESTING,
          checked: bool = False) -> Any:
    """``json.loads`` after the nesting check (``checked``: done already); any failure is a
    FormatError naming ``source``."""
    if not checked:
        check_nesting(data, source, what, limit)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise FormatError(f"{source}: {what} is not valid JSON ({exc})") from None

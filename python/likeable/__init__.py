"""likeable: an inference engine for interpretable personalization.

Embed responses, encode pair differences into sparse interpretable features, learn what
each person likes over those features, and retrieve what they will like — with a compiled
C++ core under a thin Python API.
"""
from __future__ import annotations

from . import _core
from ._core import FormatError
from ._validation import NotFittedError
from .sparse import SparseCodes
from . import datasets
from .embed import OnnxEmbedder
from .report import Report

__version__ = "0.1.0"

__all__ = [
    "FormatError",
    "NotFittedError",
    "SparseCodes",
    "OnnxEmbedder",
    "Report",
    "datasets",
    "num_threads",
]


def num_threads(threads: int | None = None) -> int:
    """Threads a call with ``threads=`` will use (argument, else LIKEABLE_NUM_THREADS, else all cores)."""
    from ._validation import resolve_threads

    return resolve_threads(threads)

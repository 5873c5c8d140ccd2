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
from .attributes import AttributeBank
from .preferences import (DriftWeights, FeatureEffects, PreferenceModel, Selection, UnknownUserError,
                          UserPreferences, drift_weights)

__version__ = "0.1.0"

__all__ = [
    "AttributeBank",
    "DriftWeights",
    "FeatureEffects",
    "PreferenceModel",
    "Selection",
    "UnknownUserError",
    "UserPreferences",
    "drift_weights",
    "FormatError",
    "NotFittedError",
    "SparseCodes",
    "num_threads",
]


def num_threads(threads: int | None = None) -> int:
    """Threads a call with ``threads=`` will use (argument, else LIKEABLE_NUM_THREADS, else all cores)."""
    from ._validation import resolve_threads

    return resolve_threads(threads)

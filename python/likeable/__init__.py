"""likeable: an inference engine for interpretable personalization.

Embed responses, encode pair differences into sparse interpretable features, learn what
each person likes over those features, and retrieve what they will like — with a compiled
C++ core under a thin Python API.
"""
from __future__ import annotations

import os



def _load_openblas() -> None:
    """Load OpenBLAS from the scipy-openblas32 wheel before the core needs it.

    The extension's rpath finds it when both are installed side by side; this also covers
    virtual environments that see the wheel in another site-packages.
    """
    import ctypes
    import glob
    import os

    import scipy_openblas32

    candidates = glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "lib" + scipy_openblas32.get_library() + ".*"))
    if candidates:
        ctypes.CDLL(candidates[0], mode=ctypes.RTLD_GLOBAL)


_load_openblas()
# Idle OpenMP workers sleep instead of spinning: spinning workers steal the core from the
# caller between calls (a small fit ran 15x slower on a busy 2-core machine). Users may override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _core  # noqa: E402
from ._core import FormatError  # noqa: E402
from ._memory import max_memory, set_max_memory  # noqa: E402
from ._validation import NotFittedError, max_threads  # noqa: E402
from .attributes import AttributeBank  # noqa: E402
from .encoder import EncoderStats, SparseEncoder  # noqa: E402
from .index import SparseIndex  # noqa: E402
from .preferences import (DriftWeights, FeatureEffects, PreferenceModel, Selection,  # noqa: E402
                          UnknownUserError, UserPreferences, drift_weights)
from .sparse import SparseCodes  # noqa: E402
from . import gpu  # noqa: E402
from .protocol import datasets  # noqa: E402
from .protocol.embed import (CallableEmbedder, Embedder, OnnxEmbedder,  # noqa: E402
                             SentenceTransformerEmbedder, as_embedder)
from .protocol.embed_http import OpenAIEmbedder  # noqa: E402
from .protocol.evaluate import EvalConfig, evaluate  # noqa: E402
from .protocol.report import Report  # noqa: E402

# `likeable.datasets` is public: the same module object, importable by its old name.
import sys as _sys  # noqa: E402

_sys.modules[__name__ + ".datasets"] = datasets

__version__ = "0.1.0"

__all__ = [
    "EvalConfig",
    "evaluate",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "CallableEmbedder",
    "SentenceTransformerEmbedder",
    "Embedder",
    "as_embedder",
    "Report",
    "datasets",
    "gpu",
    "AttributeBank",
    "DriftWeights",
    "FeatureEffects",
    "PreferenceModel",
    "Selection",
    "UnknownUserError",
    "UserPreferences",
    "drift_weights",
    "max_memory",
    "set_max_memory",
    "EncoderStats",
    "FormatError",
    "NotFittedError",
    "SparseCodes",
    "SparseEncoder",
    "SparseIndex",
    "num_threads",
    "max_threads",
]


def num_threads(threads: int | None = None) -> int:
    """Threads a call with ``threads=`` will use (argument, else LIKEABLE_NUM_THREADS, else all cores)."""
    from ._validation import resolve_threads

    return resolve_threads(threads)

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest

# ../shared beside the checkout holds real data and the ONNX model; a user's clone has none.
# LIKEABLE_SHARED points elsewhere (a git worktree whose parent folder has no shared/).
SHARED = Path(os.environ.get("LIKEABLE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder beside the checkout)")
    return path


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Fresh random inputs per test, reproducible from the test's name."""
    seed = zlib.crc32(request.node.nodeid.encode())  # str hash() is salted per process
    return np.random.default_rng(seed)

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest

# ../shared beside the checkout holds real data and the ONNX model; a user's clone has none.
# LIKEABLE_SHARED names it elsewhere (a git worktree is not beside it).
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


@pytest.fixture(params=["simd", "portable"])
def kernel_path(request):
    """Runs a test once with the kernels' SIMD paths and once with their portable loops (the
    core's one switch: likeable._core.set_simd_enabled), so the portable loops are tested on
    machines that have AVX2 too. On CPUs without the features both runs take the portable path."""
    from likeable import _core

    before = _core.simd_enabled()
    _core.set_simd_enabled(request.param == "simd")
    yield request.param
    _core.set_simd_enabled(before)


@pytest.fixture
def simd_switch():
    """A context manager turning the core's SIMD kernels on or off for a block, for tests that
    compare the two paths inside one test."""
    import contextlib

    from likeable import _core

    @contextlib.contextmanager
    def switch(enabled: bool):
        before = _core.simd_enabled()
        _core.set_simd_enabled(enabled)
        try:
            yield
        finally:
            _core.set_simd_enabled(before)

    return switch


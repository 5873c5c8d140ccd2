from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

# ../shared beside the checkout holds real data and the ONNX model; a user's clone has none.
# LIKEABLE_SHARED names it elsewhere (a git worktree is not beside it).
SHARED = Path(os.environ.get("LIKEABLE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


# Tests write only to temporary folders: hypothesis keeps its example database and constants
# under .hypothesis/ in the working directory unless told otherwise (children inherit this).
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    _hypothesis_dir = tempfile.mkdtemp(prefix="likeable-hypothesis-")
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = _hypothesis_dir
    atexit.register(shutil.rmtree, _hypothesis_dir, ignore_errors=True)


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder beside the checkout)")
    return path


@pytest.fixture(scope="session")
def minilm_cache(tmp_path_factory) -> Path:
    """One MiniLM embedding cache for the session's real-data tests (one embedding pass each run)."""
    return tmp_path_factory.mktemp("likeable-minilm")


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




class Isolated:
    """Runs Python source in a fresh interpreter: what may crash the process runs there, so a
    crash fails the calling test instead of ending pytest. The child imports the same likeable
    and inherits the environment (the sanitizer runtimes under .ci/sanitize, so an ASan/UBSan
    report aborts the child and fails the test)."""

    def __init__(self) -> None:
        import likeable

        self.package_root = str(Path(likeable.__file__).resolve().parents[1])

    def run(self, source: str, timeout: float = 180) -> tuple[int, str]:
        """(return code, output); a negative return code is the signal that killed the child."""
        import subprocess
        import sys
        import textwrap

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([self.package_root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], env=env, capture_output=True,
                              text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr

    def survives(self, source: str, timeout: float = 180, marker: str = "SURVIVED") -> str:
        """Runs ``source``, which must print ``marker`` at its end; asserts the child got there and
        exited 0 (not killed by a signal, not ended by a runtime). Returns its output."""
        code, output = self.run(source, timeout)
        assert code >= 0, f"the child process was killed by signal {-code}:\n{output[-3000:]}"
        assert code == 0 and marker in output, f"the child process exited with {code}:\n{output[-3000:]}"
        return output


@pytest.fixture
def isolated() -> Isolated:
    return Isolated()

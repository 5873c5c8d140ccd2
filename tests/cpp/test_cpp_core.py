"""The C++ core's own unit tests (tests/cpp: doctest, registered with CTest), built and run from
pytest so that the README's test command runs them too; and a C++ program linking the installed
core (likeable::core) as a serving stack would.

They build the core without Python (LIKEABLE_BUILD_PYTHON=OFF) in a folder under the system's
temporary directory, kept between runs so that a rebuild only recompiles what changed. doctest
comes from Debian's doctest-dev (.ci/run installs it): where it is absent the tests skip, saying
so, except under CI, where they fail.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # the first build compiles the core (about a minute on 2 cores)


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"the C++ tests must run in CI: {reason}")
    pytest.skip(reason)


def _cmake() -> str:
    path = shutil.which("cmake")
    if path is None:
        try:
            import cmake  # the PyPI package

            path = str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
        except ImportError:
            _unavailable("cmake is not installed (pip install cmake)")
    return path


def _run(args: list[str], what: str, timeout: int = 900, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(args)}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done


@pytest.fixture(scope="module")
def cpp_build() -> Path:
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("the sanitizer run (.ci/sanitize) builds and runs the C++ tests itself")
    cmake = _cmake()
    key = hashlib.sha1(f"{ROOT}|{sys.executable}".encode()).hexdigest()[:12]
    build = Path(tempfile.gettempdir()) / f"likeable-cpp-tests-{key}"
    generator = ["-G", "Ninja"] if shutil.which("ninja") and not (build / "Makefile").exists() else []
    configure = subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
         "-DLIKEABLE_BUILD_PYTHON=OFF", "-DLIKEABLE_BUILD_TESTS=ON", f"-DPython_EXECUTABLE={sys.executable}"],
        capture_output=True, text=True, timeout=600)
    if configure.returncode != 0:
        if "LIKEABLE_DOCTEST_MISSING" in configure.stdout + configure.stderr:
            _unavailable("doctest is not installed (Debian/Ubuntu: apt-get install doctest-dev)")
        pytest.fail(f"configuring the C++ tests failed:\n{configure.stdout[-6000:]}\n{configure.stderr[-6000:]}")
    _run([cmake, "--build", str(build), "--parallel", str(os.cpu_count() or 2)], "building the C++ tests")
    return build


def test_cpp_unit_tests_pass(cpp_build):
    ctest = str(Path(_cmake()).with_name("ctest"))
    done = _run([ctest, "--test-dir", str(cpp_build), "--output-on-failure", "--no-tests=error"], "ctest")
    print(done.stdout[-3000:])
    assert "100% tests passed" in done.stdout


def test_installed_core_links_into_a_cpp_program(cpp_build, tmp_path):
    cmake = _cmake()
    prefix = tmp_path / "prefix"
    _run([cmake, "--install", str(cpp_build), "--prefix", str(prefix)], "installing the core")
    assert (prefix / "include" / "likeable" / "index" / "index.h").exists()
    build = tmp_path / "consumer"
    _run([cmake, "-S", str(ROOT / "tests" / "cpp" / "consumer"), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
          "-DCMAKE_BUILD_TYPE=Release"], "configuring the consumer")
    _run([cmake, "--build", str(build)], "building the consumer")
    done = _run([str(build / "consumer")], "running the consumer", timeout=60)
    assert done.stdout.startswith("ok")

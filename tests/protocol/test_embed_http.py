"""OpenAIEmbedder against real server processes speaking the OpenAI embeddings API.

``embeddings_server.py`` (beside this file) serves the shared all-MiniLM-L6-v2 through
onnxruntime from the API's description; where llama-cpp-python's server is installed (from
../shared/wheels, see ../shared/README.md) the same client runs against it too.
"""
import importlib.util
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from likeable import OnnxEmbedder, OpenAIEmbedder

SERVER = Path(__file__).with_name("embeddings_server.py")
TEXTS = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.", "Hello!",
         "Preference data tells us what people like, one pair at a time.", "Hello!", "ünïcödé téxt"]


def _start(args: list[str]):
    proc = subprocess.Popen([sys.executable, str(SERVER), *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


@pytest.fixture
def server(request):
    model = shared_path("models", "all-MiniLM-L6-v2")
    procs = []

    def start(*extra: str) -> str:
        proc, url = _start(["--model-dir", str(model), *extra])
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def _stats(url: str) -> dict:
    import json

    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.loads(r.read())


def test_matches_the_local_model_and_batches_concurrently(server, tmp_path):
    url = server("--delay", "0.05")
    emb = OpenAIEmbedder("all-minilm", base_url=url, batch_size=2, concurrency=3)
    out = emb.embed(TEXTS)
    reference = OnnxEmbedder(shared_path("models", "all-MiniLM-L6-v2"), threads=1).embed(TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, atol=2e-5)  # also: answers re-ordered by 'index'
    stats = _stats(url)
    assert stats["texts"] == 5  # the repeated "Hello!" went out once
    assert stats["requests"] == 3 and stats["max_in_flight"] >= 2
    assert emb.dim == 384 and emb.embed([]).shape == (0, 384)


def test_per_token_answers_are_pooled(server):
    url = server("--per-token")
    reference = OnnxEmbedder(shared_path("models", "all-MiniLM-L6-v2"), threads=1).embed(TEXTS[:3])
    np.testing.assert_allclose(OpenAIEmbedder("m", base_url=url).embed(TEXTS[:3]), reference, atol=2e-5)
    first = OpenAIEmbedder("m", base_url=url, token_pooling="first", normalize=False).embed(TEXTS[:1])
    assert abs(float(first[0] @ reference[0])) < 0.99 * np.linalg.norm(first[0])  # not the mean


def test_retries_refusals_with_back_off(server):
    url = server("--fail-first", "2", "--fail-status", "429")
    out = OpenAIEmbedder("m", base_url=url, max_retries=3).embed(TEXTS[:2])
    assert out.shape == (2, 384) and _stats(url)["requests"] == 3
    url = server("--fail-first", "5", "--fail-status", "503")
    with pytest.raises(RuntimeError, match="HTTP 503"):
        OpenAIEmbedder("m", base_url=url, max_retries=1).embed(TEXTS[:2])
    assert _stats(url)["requests"] == 2


def test_disk_cache_is_keyed_by_model_and_text(server, tmp_path):
    url = server()
    cache = tmp_path / "cache"
    first = OpenAIEmbedder("all-minilm", base_url=url, cache_dir=cache).embed(TEXTS)
    again = OpenAIEmbedder("all-minilm", base_url=url, cache_dir=cache).embed(TEXTS[::-1])
    np.testing.assert_array_equal(again, first[::-1])
    assert _stats(url)["texts"] == 5  # the second run sent nothing
    OpenAIEmbedder("another-model", base_url=url, cache_dir=cache).embed(TEXTS[:1])
    assert _stats(url)["texts"] == 6
    # cached vectors need no server at all
    offline = OpenAIEmbedder("all-minilm", base_url="http://127.0.0.1:9/v1", cache_dir=cache, max_retries=0)
    np.testing.assert_array_equal(offline.embed(TEXTS[:2]), first[:2])


def test_clear_errors(server):
    url = server()
    with pytest.raises(ValueError, match="384-dimensional.*expected 100"):
        OpenAIEmbedder("m", base_url=url, dim=100).embed(TEXTS[:1])
    with pytest.raises(RuntimeError, match="HTTP 400.*dimensions"):
        OpenAIEmbedder("m", base_url=url, dimensions=128, max_retries=3).embed(TEXTS[:1])
    with pytest.raises(ConnectionError, match="could not reach http://127.0.0.1:9/v1/embeddings.*server running"):
        OpenAIEmbedder("m", base_url="http://127.0.0.1:9/v1", max_retries=0).embed(["x"])
    with pytest.raises(RuntimeError, match="HTTP 404"):
        OpenAIEmbedder("m", base_url=url.removesuffix("/v1") + "/nope").embed(["x"])
    with pytest.raises(ValueError, match="no model"):
        OpenAIEmbedder(base_url=url)
    with pytest.raises(ValueError, match="http"):
        OpenAIEmbedder("m", base_url="localhost:8000")
    with pytest.raises(TypeError, match="not one string"):
        OpenAIEmbedder("m", base_url=url).embed("hello")


def test_pickles_for_ray_actors(server, tmp_path):
    import pickle

    url = server()
    emb = OpenAIEmbedder("m", base_url=url, cache_dir=tmp_path)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb)).embed(TEXTS[:2]), emb.embed(TEXTS[:2]))


def _llama_server(port: int):
    model = shared_path("models", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
    # looked up, not imported: the server runs in its own process
    if any(importlib.util.find_spec(name) is None for name in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette")):
        pytest.skip("llama-cpp-python[server] is not installed "
                    "(pip install ../shared/wheels/llama_cpp_python-*.whl 'llama-cpp-python[server]')")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "512", "--embedding", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/models", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail("llama_cpp.server did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_against_llama_cpp_server(tmp_path):
    proc, url = _llama_server(_free_port())
    try:
        emb = OpenAIEmbedder("smollm2", base_url=url, cache_dir=tmp_path, batch_size=2, concurrency=2)
        out = emb.embed(TEXTS)
        assert out.shape == (len(TEXTS), 576) and np.isfinite(out).all()  # per-token answers, pooled
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(out[2], out[4])
        with pytest.raises(ValueError, match="576-dimensional.*expected 384"):
            OpenAIEmbedder("smollm2", base_url=url, dim=384).embed(["other text"])
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # the server is gone: cached texts still embed, new ones say where the server should be
    np.testing.assert_array_equal(OpenAIEmbedder("smollm2", base_url=url, cache_dir=tmp_path).embed(TEXTS), out)
    with pytest.raises(ConnectionError, match="could not reach"):
        OpenAIEmbedder("smollm2", base_url=url, cache_dir=tmp_path, max_retries=0).embed(["never sent"])

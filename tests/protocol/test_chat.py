"""The OpenAI-compatible client and the LLM describer: a scripted stub server, then a real one."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from likeable.protocol.chat import ChatClient
from likeable.protocol.describe import ChatDescriber, TextCorpus, fidelity

from conftest import shared_path


class _Stub(BaseHTTPRequestHandler):
    calls: list = []
    fail_first: int = 0          # answer 503 to this many requests first
    delay: float = 0.0
    in_flight = 0
    max_in_flight = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with cls.lock:
            cls.calls.append((self.path, self.headers.get("Authorization"), body))
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
            failing = cls.fail_first > 0
            cls.fail_first -= failing
        try:
            time.sleep(cls.delay)
            content = body["messages"][0]["content"]
            if failing:
                return self._send(503, b"busy", {"Retry-After": "0"})
            if "bad request" in content:
                return self._send(400, b"no such model")
            if "Which response" in content:
                reply = "A" if "Response A: loud" in content else "B"
            else:
                reply = '{"description": "Loudness"}'
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
            self._send(200, data, {"Content-Type": "application/json"})
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def _send(self, code, data, headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    _Stub.calls, _Stub.fail_first, _Stub.delay, _Stub.max_in_flight = [], 0, 0.0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def test_client_request_cache_and_environment(stub_server, tmp_path, monkeypatch):
    monkeypatch.setenv("LIKEABLE_LLM_BASE_URL", stub_server)
    monkeypatch.setenv("LIKEABLE_LLM_MODEL", "stub-model")
    monkeypatch.setenv("LIKEABLE_LLM_API_KEY", "sk-test")
    client = ChatClient(cache_dir=tmp_path / "llm")
    assert client.complete("describe LOUD TEXT", max_tokens=9) == '{"description": "Loudness"}'
    path, auth, body = _Stub.calls[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert body == {"model": "stub-model", "temperature": 0, "max_tokens": 9,
                    "messages": [{"role": "user", "content": "describe LOUD TEXT"}]}
    # the same request again, even from a fresh client, comes from the disk cache
    again = ChatClient(cache_dir=tmp_path / "llm")
    assert again.complete("describe LOUD TEXT", max_tokens=9) == '{"description": "Loudness"}'
    assert len(_Stub.calls) == 1 and again.n_cached == 1 and again.n_requests == 0
    assert len(os.listdir(tmp_path / "llm")) == 1
    with pytest.raises(RuntimeError, match="HTTP 400"):  # not retried
        client.complete("bad request")
    assert len(_Stub.calls) == 2


def test_client_retries_with_backoff(stub_server):
    _Stub.fail_first = 2
    client = ChatClient(model="m", base_url=stub_server, max_retries=3, backoff=0.01)
    assert client.complete("describe it") == '{"description": "Loudness"}'
    assert client.n_requests == 3 and len(_Stub.calls) == 3
    _Stub.fail_first = 5
    _Stub.calls = []
    with pytest.raises(RuntimeError, match="HTTP 503"):  # still busy after the retries
        ChatClient(model="m", base_url=stub_server, max_retries=1, backoff=0.01).complete("describe it")
    assert len(_Stub.calls) == 2


def test_client_runs_requests_concurrently_in_order(stub_server):
    _Stub.delay = 0.2
    client = ChatClient(model="m", base_url=stub_server, concurrency=4)
    prompts = [f"Which response? Response A: {'loud' if i % 2 else 'soft'}" for i in range(8)]
    assert client.complete_many(prompts) == ["B", "A"] * 4
    assert _Stub.max_in_flight >= 2
    assert ChatClient(model="m", base_url=stub_server, concurrency=1).complete_many(prompts[:2]) == ["B", "A"]


def test_client_errors(monkeypatch):
    monkeypatch.delenv("LIKEABLE_LLM_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ValueError, match="no model"):
        ChatClient()
    with pytest.raises(ValueError, match="concurrency"):
        ChatClient(model="m", concurrency=0)
    closed = ChatClient(model="m", base_url="http://127.0.0.1:9/v1", timeout=2, max_retries=1, backoff=0.01)
    with pytest.raises(ConnectionError, match="could not reach http://127.0.0.1:9/v1.* after 2 attempt.*LIKEABLE_LLM_BASE_URL"):
        closed.complete("hi")
    with pytest.raises(ConnectionError, match="could not reach"):
        closed.complete_many(["a", "b", "c"])


def _pairs():
    a = ["loud one", "quiet one", "loud two", "quiet two", "same", "loud three"]
    b = ["quiet x", "loud x", "quiet y", "loud y", "same too", "quiet z"]
    act = np.array([1.0, -1.0, 0.8, -0.7, 0.0, 0.9])
    return TextCorpus(["p"] * 6, a, b), act


def test_chat_describer_protocol_against_stub(stub_server, tmp_path):
    d = ChatDescriber(model="m", base_url=stub_server, cache_dir=tmp_path / "c", n_contrast=1)
    corpus, act = _pairs()
    ex = corpus.examples(0, act, np.arange(6), n=4, n_contrast=1)
    got = d.describe(ex)
    assert got.text == "A-side: Loudness" and got.content == "Loudness" and got.side == "A"
    assert got.source == "llm:m" and got.n_pairs == 4
    prompt = _Stub.calls[0][2]["messages"][0]["content"]
    assert "STRONG example 4" in prompt and "CONTROL example 1" in prompt and "same" in prompt
    judged = d.annotate(got, corpus, np.arange(6))
    np.testing.assert_array_equal(judged, [1, -1, 1, -1, -1, 1])
    assert fidelity(act, judged) > 0.8
    assert d.judge("loudness", "loud one", "quiet one") == 1.0
    assert d(["LOUD"], ["quiet"]) == "Loudness" and d([], []) == "(no examples)"


# --- the real thing: llama-cpp-python's OpenAI-compatible server with SmolLM2 ---------
@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    model = shared_path("models", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed "
                                                   "(pip install ../shared/wheels/llama_cpp_python-*.whl)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("the llama-cpp server exited while starting")
                time.sleep(0.25)
        else:
            pytest.fail("the llama-cpp server did not answer within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_chat_describer_against_real_local_server(llama_server, tmp_path):
    """Protocol only: never what the 135M model says."""
    cache = tmp_path / "cache"
    d = ChatDescriber(model="smollm2", base_url=llama_server, cache_dir=cache, max_chars=120, n_contrast=1,
                      concurrency=2, timeout=120)
    corpus, act = _pairs()
    got = d.describe(corpus.examples(0, act, np.arange(6), n=2, n_contrast=1))
    assert isinstance(got.content, str) and got.content and got.text == f"A-side: {got.content}"
    judged = d.annotate(got, corpus, np.arange(4))
    assert judged.shape == (4,) and set(judged.tolist()) <= {-1.0, 0.0, 1.0}
    score = fidelity(act[:4], judged)
    assert np.isnan(score) or -1.0 <= score <= 1.0
    n_files = len(os.listdir(cache))
    assert n_files == 5 and d.client.n_requests == 5  # one description, four judgements
    # a re-run is served from the cache: no new request reaches the server
    again = ChatDescriber(model="smollm2", base_url=llama_server, cache_dir=cache, max_chars=120, n_contrast=1)
    assert again.describe(corpus.examples(0, act, np.arange(6), n=2, n_contrast=1)) == got
    np.testing.assert_array_equal(again.annotate(got, corpus, np.arange(4)), judged)
    assert again.client.n_requests == 0 and again.client.n_cached == 5


def test_protocol_with_an_llm_describer(stub_server, tmp_path):
    """Both descriptions per described feature, each with its fidelity; the LLM's is the primary one."""
    import likeable as lk

    ds = lk.datasets.synthetic(600, 4, 8, seed=2)
    describer = ChatDescriber(model="m", base_url=stub_server, cache_dir=tmp_path / "c", max_examples=5)
    cfg = lk.EvalConfig(epochs=5, n_boot=50, few_shot=(5,), threads=2, n_described=2, n_fidelity_pairs=6,
                        sessions=False, describer=describer)
    features = lk.evaluate(ds, config=cfg).result.features
    described = [f for f in features if f.descriptions]
    assert len(described) == 2
    for f in described:
        offline, llm = f.descriptions
        assert offline.source == "offline" and offline.fidelity_n > 6
        assert llm.source == "llm:m" and llm.text == "A-side: Loudness" and llm.fidelity_n == 6
        assert f.description == llm.text and f.direction.startswith("positive when A has more")
    prompts = [c[2]["messages"][0]["content"] for c in _Stub.calls]
    assert sum("STRONG example 5" in p for p in prompts) == 2
    # 2 descriptions + 2 x 6 judgements; a judgement both features ask for is answered by the cache
    judged = sum("Which response shows the property more" in p for p in prompts)
    assert judged <= 12 and describer.client.n_requests + describer.client.n_cached == 14

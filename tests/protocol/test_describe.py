import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from likeable.protocol.describe import ChatDescriber, DistinctiveWords, fidelity


def test_distinctive_words_finds_planted_words(rng):
    filler = ["the answer is here", "some text about it", "a response to you"]
    more = [f"{rng.choice(filler)} joke funny laugh" for _ in range(10)]
    less = [str(rng.choice(filler)) for _ in range(10)]
    words = DistinctiveWords(n_words=3).top_words(more, less)
    assert set(words) == {"joke", "funny", "laugh"}
    assert DistinctiveWords()([], []) == "(no distinctive words)"
    # swapping the sides finds nothing funny
    assert "joke" not in DistinctiveWords().top_words(less, more)


class _Stub(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, self.headers.get("Authorization"), body))
        content = body["messages"][0]["content"]
        if "Which response" in content:
            reply = "A" if "Response A: loud" in content else "B"
        elif "fail" in content:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        else:
            reply = '"Loudness"\nextra'
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    _Stub.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def test_chat_describer_against_stub(stub_server, tmp_path, monkeypatch):
    monkeypatch.setenv("LIKEABLE_LLM_BASE_URL", stub_server)
    monkeypatch.setenv("LIKEABLE_LLM_MODEL", "stub-model")
    monkeypatch.setenv("LIKEABLE_LLM_API_KEY", "sk-test")
    d = ChatDescriber(cache_dir=tmp_path / "llm")
    assert d(["LOUD TEXT", "LOUDER"], ["quiet", "hush"]) == "Loudness"
    path, auth, body = _Stub.calls[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "stub-model"
    assert "LOUD TEXT" in body["messages"][0]["content"]
    # second identical request comes from the disk cache, even for a fresh client
    assert ChatDescriber(cache_dir=tmp_path / "llm")(["LOUD TEXT", "LOUDER"], ["quiet", "hush"]) == "Loudness"
    assert len(_Stub.calls) == 1
    assert d.judge("loudness", "loud one", "quiet one") == 1.0
    assert d.judge("loudness", "quiet one", "loud one") == -1.0
    with pytest.raises(RuntimeError, match="HTTP 500"):
        d.chat("please fail")


def test_chat_describer_errors(monkeypatch):
    monkeypatch.delenv("LIKEABLE_LLM_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ValueError, match="no model"):
        ChatDescriber()
    closed = ChatDescriber(model="m", base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(ConnectionError, match="could not reach"):
        closed.chat("hi")


def test_fidelity():
    a = np.array([2.0, 1.0, -1.0, -2.0, 0.0])
    assert fidelity(a, [1, 1, -1, -1, 0]) > 0.9
    assert fidelity(a, [-1, -1, 1, 1, 0]) < -0.9
    assert np.isnan(fidelity(a, [1, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="shape"):
        fidelity(a, [1, 2])

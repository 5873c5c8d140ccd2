"""A minimal OpenAI-compatible embeddings server for the tests (a separate process).

Serves ``POST /v1/embeddings`` as the OpenAI API does (``input`` a string or a list of
strings; ``data`` items with ``object``, ``index`` and ``embedding``; ``usage``), computing
all-MiniLM-L6-v2 vectors with onnxruntime one text at a time: mean pooling, L2 norm. Written
from the API's description, independent of likeable's embedders, so a test can compare the
two. Test knobs: ``--per-token`` answers one vector per token (as llama.cpp's server does for
models without pooling); ``--fail-first N --fail-status S`` refuses the first N requests;
``--delay`` holds each request so concurrency shows. ``GET /stats`` reports the requests seen
and the most in flight at once. Prints ``PORT <n>`` when ready.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--per-token", action="store_true")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(f"{args.model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    session = ort.InferenceSession(f"{args.model_dir}/model.onnx", providers=["CPUExecutionProvider"])
    lock = threading.Lock()
    stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "texts": 0}

    def tokens(text: str) -> np.ndarray:
        ids = np.asarray([tokenizer.encode(text).ids], np.int64)
        with lock:  # one session, one run at a time
            hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                        "token_type_ids": np.zeros_like(ids)})[0][0]
        return hidden.astype(np.float64)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path == "/stats":
                with lock:
                    self._reply(200, dict(stats))
            else:
                self._reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                stats["requests"] += 1
                stats["in_flight"] += 1
                stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
                refuse = stats["requests"] <= args.fail_first
            try:
                time.sleep(args.delay)
                if self.path != "/v1/embeddings":
                    return self._reply(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                if refuse:
                    return self._reply(args.fail_status, {"error": {"message": "busy", "type": "server_error"}},
                                       {"Retry-After": "0"})
                if "dimensions" in body:
                    return self._reply(400, {"error": {"message": "This model does not support 'dimensions'",
                                                       "type": "invalid_request_error"}})
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                if any(not isinstance(t, str) or not t for t in texts):
                    return self._reply(400, {"error": {"message": "'input' must hold non-empty strings",
                                                       "type": "invalid_request_error"}})
                data, n_tokens = [], 0
                for i, text in enumerate(texts):
                    hidden = tokens(text)
                    n_tokens += hidden.shape[0]
                    if args.per_token:
                        vector = hidden.tolist()
                    else:
                        mean = hidden.mean(axis=0)
                        vector = (mean / np.linalg.norm(mean)).tolist()
                    data.append({"object": "embedding", "index": i, "embedding": vector})
                with lock:
                    stats["texts"] += len(texts)
                data.reverse()  # clients must order by index, not by position
                self._reply(200, {"object": "list", "data": data, "model": body.get("model", ""),
                                  "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}})
            finally:
                with lock:
                    stats["in_flight"] -= 1

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

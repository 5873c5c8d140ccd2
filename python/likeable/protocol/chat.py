"""A small client for any OpenAI-compatible ``/chat/completions`` endpoint.

What the LLM describer needs and nothing more: one user message in, the assistant's text
out; many requests at once on a thread pool; retries with exponential back-off (and the
server's ``Retry-After``) on connection errors, timeouts, HTTP 429 and 5xx; an on-disk cache
keyed by the request, so a re-run costs nothing; and a clear error when the endpoint cannot
be reached. Standard library only (``urllib``), so the default install needs no HTTP package.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .._io import atomic_write_bytes

__all__ = ["ChatClient"]

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ChatClient:
    """Send prompts to an OpenAI-compatible chat endpoint.

    Parameters
    ----------
    model : str, optional
        Model name; default ``$LIKEABLE_LLM_MODEL``, then ``$OPENAI_MODEL``.
    base_url : str, optional
        Endpoint root such as ``http://localhost:8000/v1``; default ``$LIKEABLE_LLM_BASE_URL``,
        then ``$OPENAI_BASE_URL``, then ``https://api.openai.com/v1``.
    api_key : str, optional
        Default ``$LIKEABLE_LLM_API_KEY``, then ``$OPENAI_API_KEY`` (may be empty for local servers).
    cache_dir : str or os.PathLike, optional
        Replies are cached here, one small JSON file per distinct request.
    timeout : float
        Seconds per attempt.
    max_retries : int
        Further attempts after a failed one (connection error, timeout, HTTP 408/409/425/429/5xx).
    backoff : float
        Seconds before the first retry; doubled each time (with jitter), capped at 30 s.
    concurrency : int
        Requests in flight at once in :meth:`complete_many`.
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 cache_dir=None, timeout: float = 60.0, max_retries: int = 4, backoff: float = 1.0,
                 concurrency: int = 4) -> None:
        self.model = model or os.environ.get("LIKEABLE_LLM_MODEL") or os.environ.get("OPENAI_MODEL")
        if not self.model:
            raise ValueError("no model: pass model= or set LIKEABLE_LLM_MODEL / OPENAI_MODEL")
        self.base_url = (base_url or os.environ.get("LIKEABLE_LLM_BASE_URL")
                         or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else (
            os.environ.get("LIKEABLE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "")
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        if max_retries < 0 or concurrency < 1 or timeout <= 0 or backoff < 0:
            raise ValueError("need max_retries >= 0, concurrency >= 1, timeout > 0 and backoff >= 0")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.concurrency = int(concurrency)
        self._lock = threading.Lock()
        self.n_requests = 0      # HTTP attempts made (retries included)
        self.n_cached = 0        # replies served from the disk cache

    # ------------------------------------------------------------------------------
    def complete(self, prompt: str, max_tokens: int | None = None) -> str:
        """One user message in, the assistant's text out (from the cache when it holds it)."""
        body = {"model": self.model, "temperature": 0, "messages": [{"role": "user", "content": prompt}]}
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        payload = json.dumps(body, sort_keys=True).encode()
        key = hashlib.sha256(self.base_url.encode() + b"\0" + payload).hexdigest()
        cached = self._cache_read(key)
        if cached is not None:
            with self._lock:
                self.n_cached += 1
            return cached
        text = self._post_with_retries(payload)
        self._cache_write(key, text)
        return text

    def complete_many(self, prompts: Sequence[str], max_tokens: int | None = None) -> list[str]:
        """:meth:`complete` for each prompt, ``concurrency`` at a time, replies in prompt order.

        The first error stops the remaining requests and is raised here.
        """
        prompts = list(prompts)
        if len(prompts) <= 1 or self.concurrency == 1:
            return [self.complete(p, max_tokens) for p in prompts]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="likeable-chat")
        try:
            futures = [pool.submit(self.complete, p, max_tokens) for p in prompts]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------------------
    def _post_with_retries(self, payload: bytes) -> str:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.n_requests += 1
            wait = None
            try:
                request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                return self._content(raw)
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code not in _RETRY_STATUS:
                    raise RuntimeError(f"{self.base_url}: HTTP {exc.code} from chat/completions: {detail}") from None
                last = f"HTTP {exc.code}: {detail}"
                wait = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            if attempt < self.max_retries:
                delay = min(30.0, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
                time.sleep(wait if wait is not None else delay)
        raise ConnectionError(
            f"could not reach {self.base_url} after {self.max_retries + 1} tries ({last}); is the server "
            "running? Set LIKEABLE_LLM_BASE_URL (or pass base_url=) to an OpenAI-compatible endpoint, "
            "or leave the LLM describer off to use the offline one")

    def _content(self, raw: bytes) -> str:
        try:
            reply = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"{self.base_url}: reply is not JSON ({exc})") from None
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.base_url}: unexpected reply shape: {str(reply)[:300]}") from None
        return "" if text is None else str(text)

    def _cache_read(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        try:
            with open(os.path.join(self.cache_dir, key + ".json"), "rb") as fh:
                return json.loads(fh.read())["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cache_write(self, key: str, text: str) -> None:
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            atomic_write_bytes(os.path.join(self.cache_dir, key + ".json"), json.dumps({"content": text}).encode())

    def __repr__(self) -> str:
        return f"<likeable.ChatClient(model={self.model!r}, base_url={self.base_url!r})>"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (dates are ignored), capped at 60."""
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None

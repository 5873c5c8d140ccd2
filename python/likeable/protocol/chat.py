"""A small client for any OpenAI-compatible ``/chat/completions`` endpoint.

What the LLM describer needs and nothing more: one user message in, the assistant's text
out; many requests at once on a thread pool; retries with exponential back-off (and the
server's ``Retry-After``) on connection errors, timeouts and "try later" statuses (the
transport of :mod:`likeable.protocol._http`, shared with the embedding client); an on-disk cache
keyed by the request, so a re-run costs nothing; and a clear error when the endpoint cannot
be reached. Standard library only (``urllib``), so the default install needs no HTTP package.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .._io import atomic_write_bytes, read_json_file
from ._http import post_json

__all__ = ["ChatClient"]


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
        Further attempts after a failed one (connection error, timeout, HTTP 408/425/429/502/503/504).
    backoff : float
        Seconds before the first retry; doubled each time (with jitter), capped at 60 s.
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
        text = self._post(body)
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
    def _post(self, body: dict) -> str:
        try:
            reply = post_json(f"{self.base_url}/chat/completions", body, api_key=self.api_key, timeout=self.timeout,
                              max_retries=self.max_retries, backoff=self.backoff, on_attempt=self._count_request)
        except ConnectionError as exc:
            raise ConnectionError(
                f"{exc} Set LIKEABLE_LLM_BASE_URL (or pass base_url=) to an OpenAI-compatible endpoint, "
                "or leave the LLM describer off to use the offline one") from None
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.base_url}: unexpected reply shape: {str(reply)[:300]}") from None
        return "" if text is None else str(text)

    def _count_request(self) -> None:
        with self._lock:
            self.n_requests += 1

    def _cache_read(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        try:
            return read_json_file(os.path.join(self.cache_dir, key + ".json"), "a chat cache entry")["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cache_write(self, key: str, text: str) -> None:
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            atomic_write_bytes(os.path.join(self.cache_dir, key + ".json"), json.dumps({"content": text}).encode())

    def __repr__(self) -> str:
        return f"<likeable.ChatClient(model={self.model!r}, base_url={self.base_url!r})>"


"""Embeddings from a served model: any OpenAI-compatible ``/v1/embeddings`` endpoint."""
from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from .._validation import check_positive_int
from ._http import post_json
from .embed import EmbeddingCache, as_embeddings, embed_unique

__all__ = ["OpenAIEmbedder"]

_TOKEN_POOLINGS = ("mean", "first", "last")


class OpenAIEmbedder:
    """Embeddings from a model behind an OpenAI-compatible server (vLLM, text-embeddings-inference,
    Ollama, llama.cpp, LM Studio, or OpenAI itself).

    Texts go out in batches of ``batch_size``, ``concurrency`` requests at a time; refused or
    failed requests (rate limits, an overloaded server, dropped connections) are retried with
    exponential back-off. With ``cache_dir`` every vector is kept on disk under a key of the
    model name and the text, so a re-run sends only new texts. Servers that answer one vector
    per token (llama.cpp's server for models without a pooling layer) are pooled here.

    Parameters
    ----------
    model : str, optional
        The served model's name; default ``$LIKEABLE_EMBED_MODEL``. It names the vectors in
        the cache, so give each model its own name.
    base_url : str, optional
        Endpoint root such as ``http://localhost:8000/v1``; default ``$LIKEABLE_EMBED_BASE_URL``,
        then ``$OPENAI_BASE_URL``, then ``https://api.openai.com/v1``.
    api_key : str, optional
        Default ``$LIKEABLE_EMBED_API_KEY``, then ``$OPENAI_API_KEY`` (may be empty for local servers).
    dim : int, optional
        The width to expect; an answer of any other width is an error. Learnt from the first
        answer when omitted.
    dimensions : int, optional
        Ask the server for shorter (Matryoshka) vectors; sent as ``dimensions``.
    batch_size, concurrency : int
        Texts per request; requests in flight at once.
    max_retries : int
        Retries per request before giving up.
    timeout : float
        Seconds per request.
    token_pooling : {"mean", "first", "last"}
        How to pool a per-token answer into one vector.
    normalize : bool
        L2-normalise each vector.
    cache_dir : str or os.PathLike, optional
    progress : bool
        Show a progress bar over requests.
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None, *,
                 dim: int | None = None, dimensions: int | None = None, batch_size: int = 64,
                 concurrency: int = 4, max_retries: int = 4, timeout: float = 60.0, token_pooling: str = "mean",
                 normalize: bool = True, cache_dir=None, progress: bool = False) -> None:
        self.model = model or os.environ.get("LIKEABLE_EMBED_MODEL")
        if not self.model:
            raise ValueError("no model: pass model= (the served model's name) or set LIKEABLE_EMBED_MODEL")
        self.base_url = (base_url or os.environ.get("LIKEABLE_EMBED_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        self.api_key = api_key if api_key is not None else (
            os.environ.get("LIKEABLE_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY") or "")
        self._dim = None if dim is None else check_positive_int(dim, "dim")
        self.dimensions = None if dimensions is None else check_positive_int(dimensions, "dimensions")
        if self._dim is None and self.dimensions is not None:
            self._dim = self.dimensions
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.concurrency = check_positive_int(concurrency, "concurrency")
        self.max_retries = check_positive_int(max_retries, "max_retries", minimum=0)
        self.timeout = float(timeout)
        if token_pooling not in _TOKEN_POOLINGS:
            raise ValueError(f"token_pooling must be one of {_TOKEN_POOLINGS}, got {token_pooling!r}")
        self.token_pooling = token_pooling
        self.normalize = bool(normalize)
        self.progress = bool(progress)
        self.cache_dir = cache_dir
        self._cache = None if cache_dir is None else EmbeddingCache(cache_dir, self.cache_key)

    @property
    def dim(self) -> int:
        """The vectors' width (one probe request when neither given nor seen yet)."""
        if self._dim is None:
            self._request(["probe"])
        return self._dim

    @property
    def cache_key(self) -> str:
        """Hash of the model name and the settings that change its vectors."""
        recipe = f"openai|{self.model}|{self.dimensions}|{self.token_pooling}|{self.normalize}"
        return hashlib.sha256(recipe.encode()).hexdigest()[:32]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), float32; distinct texts sent once."""
        return embed_unique(texts, self._embed_new, self._cache, lambda: self.dim, store=False)

    __call__ = embed

    # ------------------------------------------------------------------------------
    def _embed_new(self, texts: list[str]) -> np.ndarray:
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        if self._dim is None:  # the first answer fixes the width every later one must have
            first = self._request(batches[0])
            self._store(batches[0], first)
            done, rest = [first], batches[1:]
        else:
            done, rest = [], batches
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(batches), initial=len(done), desc="embed", unit="request")
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(rest)))) as pool:
            futures = [pool.submit(self._request, batch) for batch in rest]
            try:
                for batch, future in zip(rest, futures):
                    vectors = future.result()
                    self._store(batch, vectors)  # kept even if a later request fails
                    done.append(vectors)
                    if bar is not None:
                        bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            finally:
                if bar is not None:
                    bar.close()
        return np.concatenate(done)

    def _store(self, texts: list[str], vectors: np.ndarray) -> None:
        if self._cache is not None:
            for text, vector in zip(texts, vectors):
                self._cache.put(EmbeddingCache.key(text), vector)

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        url = f"{self.base_url}/embeddings"
        reply = post_json(url, body, api_key=self.api_key, timeout=self.timeout, max_retries=self.max_retries)
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            got = f"{len(data)} embeddings" if isinstance(data, list) else f"{str(reply)[:200]!r}"
            raise RuntimeError(f"{url}: expected {len(texts)} embeddings in 'data', got {got}")
        if all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in data):
            data = sorted(data, key=lambda item: item["index"])
        vectors = as_embeddings([self._vector(item, url) for item in data], len(texts), url)
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"{url} answered {vectors.shape[1]}-dimensional embeddings for model {self.model!r}, "
                             f"expected {self._dim} (dim={self._dim}); is it serving another model?")
        self._dim = vectors.shape[1]
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _vector(self, item: Any, url: str) -> np.ndarray:
        raw = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(raw, str):  # base64 float32, whatever was asked for
            return np.frombuffer(base64.b64decode(raw), dtype="<f4").astype(np.float32)
        try:
            arr = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            arr = np.zeros(0)
        if arr.ndim == 2 and arr.shape[0] > 0:  # one vector per token: pool them here
            return {"mean": arr.mean(axis=0), "first": arr[0], "last": arr[-1]}[self.token_pooling]
        if arr.ndim != 1 or arr.size == 0:
            raise RuntimeError(f"{url}: an item's 'embedding' is not a vector of numbers: {str(raw)[:200]}")
        return arr

    def __repr__(self) -> str:
        return f"<likeable.OpenAIEmbedder(model={self.model!r}, base_url={self.base_url!r})>"

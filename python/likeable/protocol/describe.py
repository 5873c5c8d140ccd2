"""Names for features: an offline distinctive-words describer and an OpenAI-compatible client.

A describer is any callable ``describer(more, less) -> str``: ``more`` are responses that
carry more of the feature (the side its activation points to), ``less`` their paired
responses. An annotator is any callable ``annotator(description, response_a, response_b)``
returning +1 (A shows it more), -1 (B) or 0 (tie), used to measure a description's fidelity.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from typing import Sequence

import numpy as np

from .._io import atomic_write_bytes, read_json_file
from ._http import post_json

__all__ = ["DistinctiveWords", "ChatDescriber", "fidelity"]

_WORD = re.compile(r"[a-z][a-z']+")
_STOP = frozenset(
    "the a an and or of to in on for is are was were be been it this that with as at by from "
    "you your i we they he she it's i'm not no but if so do does did can could would should will "
    "have has had there their them what which who how about some any all just than then too very "
    "my me our us his her its".split())


def _tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class DistinctiveWords:
    """Offline describer: the words most over-represented on the feature's side.

    Scores each word by its log-odds ratio between ``more`` and ``less`` texts with an
    informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) and joins the top
    ``n_words``. Needs no network and no model.

    Parameters
    ----------
    n_words : int
    prior : float
        Pseudo-count added to every word (smooths rare words).
    """

    def __init__(self, n_words: int = 3, prior: float = 0.5) -> None:
        self.n_words = n_words
        self.prior = prior

    def __call__(self, more: Sequence[str], less: Sequence[str]) -> str:
        words = self.top_words(more, less)
        return ", ".join(words) if words else "(no distinctive words)"

    def top_words(self, more: Sequence[str], less: Sequence[str]) -> list[str]:
        """Words ranked by z-scored log-odds of appearing in ``more`` rather than ``less``."""
        c_more = Counter(w for t in more for w in _tokens(t))
        c_less = Counter(w for t in less for w in _tokens(t))
        vocab = sorted(set(c_more) | set(c_less))
        if not vocab:
            return []
        m = np.array([c_more[w] for w in vocab], np.float64) + self.prior
        l = np.array([c_less[w] for w in vocab], np.float64) + self.prior  # noqa: E741
        log_odds = np.log(m / (m.sum() - m)) - np.log(l / (l.sum() - l))
        z = log_odds / np.sqrt(1.0 / m + 1.0 / l)
        order = np.argsort(-z, kind="stable")
        return [vocab[i] for i in order[: self.n_words] if z[i] > 0]

    def __repr__(self) -> str:
        return f"<likeable.DistinctiveWords(n_words={self.n_words}, prior={self.prior})>"


class ChatDescriber:
    """Describe features (and judge pairs) with any OpenAI-compatible chat endpoint.

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
        Responses are cached here keyed by the request's hash, so re-runs cost nothing.
    timeout : float
        Seconds per request.
    max_examples : int
        Pairs shown per feature.
    max_chars : int
        Each response is cut to this many characters in the prompt.
    max_retries : int
        Retries (with back-off) when the server is unreachable, overloaded or rate-limiting.
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 cache_dir=None, timeout: float = 60.0, max_examples: int = 10, max_chars: int = 400,
                 max_retries: int = 2) -> None:
        self.model = model or os.environ.get("LIKEABLE_LLM_MODEL") or os.environ.get("OPENAI_MODEL")
        if not self.model:
            raise ValueError("no model: pass model= or set LIKEABLE_LLM_MODEL / OPENAI_MODEL")
        self.base_url = (base_url or os.environ.get("LIKEABLE_LLM_BASE_URL")
                         or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else (
            os.environ.get("LIKEABLE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "")
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.timeout = timeout
        self.max_examples = max_examples
        self.max_chars = max_chars
        self.max_retries = max_retries

    # -- describer -----------------------------------------------------------------
    def __call__(self, more: Sequence[str], less: Sequence[str]) -> str:
        shown = list(zip(more, less))[: self.max_examples]
        lines = [f"Pair {i + 1}:\n  MORE: {self._cut(m)}\n  LESS: {self._cut(l)}"
                 for i, (m, l) in enumerate(shown)]  # noqa: E741
        prompt = ("Each pair below shows a response that has MORE of some property and one that has "
                  "LESS of it. Name the property in at most six words. Reply with the name only.\n\n"
                  + "\n".join(lines))
        if not shown:
            return "(no examples)"
        lines = self.chat(prompt).strip().splitlines() or [""]
        return lines[0].strip().strip('"').strip()

    # -- annotator -----------------------------------------------------------------
    def judge(self, description: str, response_a: str, response_b: str) -> float:
        """+1 if A shows ``description`` more, -1 if B does, 0 for a tie."""
        prompt = (f"Property: {description}\n\nResponse A: {self._cut(response_a)}\n\n"
                  f"Response B: {self._cut(response_b)}\n\nWhich response shows the property more? "
                  "Answer with exactly one of: A, B, tie.")
        answer = self.chat(prompt).strip().lower()
        if answer.startswith("a"):
            return 1.0
        if answer.startswith("b"):
            return -1.0
        return 0.0

    # -- transport -----------------------------------------------------------------
    def chat(self, prompt: str) -> str:
        """One user message in, the assistant's text out (cached on disk when enabled)."""
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}
        payload = json.dumps(body, sort_keys=True).encode()
        key = hashlib.sha256(self.base_url.encode() + b"\0" + payload).hexdigest()
        cached = self._cache_read(key)
        if cached is not None:
            return cached
        reply = post_json(f"{self.base_url}/chat/completions", body, api_key=self.api_key, timeout=self.timeout,
                          max_retries=self.max_retries)
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{self.base_url}: unexpected reply shape: {str(reply)[:300]}") from None
        self._cache_write(key, text)
        return text

    def _cut(self, text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= self.max_chars else text[: self.max_chars] + "…"

    def _cache_read(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        try:
            path = os.path.join(self.cache_dir, key + ".json")
            return read_json_file(path, "a description cache entry")["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cache_write(self, key: str, text: str) -> None:
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            atomic_write_bytes(os.path.join(self.cache_dir, key + ".json"),
                               json.dumps({"content": text}).encode())

    def __repr__(self) -> str:
        return f"<likeable.ChatDescriber(model={self.model!r}, base_url={self.base_url!r})>"


def fidelity(activations, judgements) -> float:
    """Pearson correlation of a feature's activation with an annotator's +1/0/−1 judgements.

    NaN when either side is constant.
    """
    a = np.asarray(activations, np.float64)
    j = np.asarray(judgements, np.float64)
    if a.shape != j.shape:
        raise ValueError(f"activations ({a.shape}) and judgements ({j.shape}) differ in shape")
    if a.size < 2 or a.std() == 0 or j.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, j)[0, 1])

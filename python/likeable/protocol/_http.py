"""JSON over HTTP for the OpenAI-compatible clients: retries with back-off, plain errors."""
from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from typing import Callable

from .. import _json
from .._core import FormatError

# Statuses that say "try again later" (overloaded, rate-limited, a gateway in between); any
# other error status is the request's fault and is raised at once.
RETRY_STATUSES = frozenset({408, 425, 429, 502, 503, 504})


def post_json(url: str, body: dict, *, api_key: str = "", timeout: float = 60.0, max_retries: int = 3,
              backoff: float = 0.5, on_attempt: Callable[[], None] | None = None) -> dict:
    """POST ``body`` as JSON and return the parsed reply.

    Connection failures, timeouts and :data:`RETRY_STATUSES` are retried up to ``max_retries``
    times, waiting ``backoff * 2**attempt`` seconds (with jitter, or the server's Retry-After).
    ``on_attempt`` is called before each HTTP attempt (a client counting its requests).

    Raises
    ------
    ConnectionError
        The server could not be reached (after the retries).
    RuntimeError
        An HTTP error status, or a reply that is not JSON.
    """
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    for attempt in range(max_retries + 1):
        if on_attempt is not None:
            on_attempt()
        request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
            break
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code not in RETRY_STATUSES or attempt == max_retries:
                raise RuntimeError(f"{url}: HTTP {exc.code}: {detail}") from None
            _wait(backoff, attempt, exc.headers.get("Retry-After"))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            if attempt == max_retries:
                reason = getattr(exc, "reason", exc)
                raise ConnectionError(f"could not reach {url} ({reason}) after {attempt + 1} attempt(s); "
                                      "is the server running at that address?") from None
            _wait(backoff, attempt, None)
    try:
        return _json.loads(raw, url, "the reply")  # nesting checked first: a server cannot crash us
    except FormatError as exc:
        raise RuntimeError(f"{exc}: {raw[:200]!r}") from None


def _wait(backoff: float, attempt: int, retry_after: str | None) -> None:
    try:
        delay = float(retry_after) if retry_after is not None else None
    except ValueError:
        delay = None  # an HTTP date: fall back to our own schedule
    if delay is None:
        delay = backoff * (2 ** attempt) * (0.5 + random.random())
    time.sleep(min(delay, 60.0))

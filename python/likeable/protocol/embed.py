"""Text embeddings: one small protocol, and the embedders that speak it.

An embedder has ``embed(texts) -> float32 array (len(texts), dim)``, a ``dim`` and a stable
``cache_key`` (what identifies its vectors in an on-disk cache). :func:`as_embedder` turns
what users already hold into one: an :class:`OnnxEmbedder` folder, a served model
(:class:`likeable.OpenAIEmbedder`), a sentence-transformers model object, or any callable.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .._validation import check_positive_int, fspath

__all__ = ["Embedder", "as_embedder", "OnnxEmbedder", "CallableEmbedder", "SentenceTransformerEmbedder",
           "EmbeddingCache"]

_POOLINGS = ("mean", "cls", "last", "max")


@runtime_checkable
class Embedder(Protocol):
    """What the protocol needs of an embedder."""

    @property
    def dim(self) -> int: ...

    @property
    def cache_key(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def as_embedder(obj: Any) -> Embedder:
    """An :class:`Embedder` for ``obj``: an embedder as is, a folder path as an
    :class:`OnnxEmbedder`, a sentence-transformers model, or any callable ``texts -> (n, dim)``."""
    if isinstance(obj, Embedder):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if text.startswith(("http://", "https://")):
            raise TypeError(f"{text} is a server address: use likeable.OpenAIEmbedder(model=..., base_url={text!r})")
        return OnnxEmbedder(text)
    if _is_sentence_transformer(obj):
        return SentenceTransformerEmbedder(obj)
    if callable(obj):
        return CallableEmbedder(obj)
    raise TypeError(f"cannot embed with a {type(obj).__name__}: pass a model folder, likeable.OnnxEmbedder, "
                    "likeable.OpenAIEmbedder, a sentence-transformers model or a callable texts -> array")


def _is_sentence_transformer(obj: Any) -> bool:
    return (type(obj).__module__.startswith("sentence_transformers")
            or (hasattr(obj, "encode") and hasattr(obj, "get_sentence_embedding_dimension")))


def check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    return texts


def as_embeddings(vectors: Any, n: int, source: str, dim: int | None = None) -> np.ndarray:
    """``vectors`` checked as n finite rows (of ``dim`` columns when known), float32 C order."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source} returned something that is not an (n, dim) array of numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{source} returned an array of shape {arr.shape} for {n} texts; expected ({n}, dim)")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{source} returned {arr.shape[1]}-dimensional embeddings; expected {dim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{source} returned NaN or Inf embeddings")
    return np.ascontiguousarray(arr)


class EmbeddingCache:
    """One float32 file per text under ``folder/namespace/``, named by the text's SHA-256.

    Entries are written to a temporary file and renamed, so readers never see half of one;
    a damaged entry reads as absent and is recomputed.
    """

    def __init__(self, folder, namespace: str) -> None:
        self.folder = fspath(folder, "cache_dir")
        self.namespace = namespace

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path(self, key: str) -> str:
        return os.path.join(self.folder, self.namespace, key[:2], key + ".f32")

    def get(self, key: str) -> np.ndarray | None:
        try:
            with open(self.path(key), "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        if len(data) == 0 or len(data) % 4:
            return None
        return np.frombuffer(data, dtype=np.float32).copy()

    def put(self, key: str, vector: np.ndarray) -> None:
        path = self.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.part"
        with open(tmp, "wb") as fh:
            fh.write(np.ascontiguousarray(vector, np.float32).tobytes())
        os.replace(tmp, path)


def embed_unique(texts: Sequence[str], compute: Callable[[list[str]], np.ndarray],
                 cache: EmbeddingCache | None, dim: Callable[[], int], store: bool = True) -> np.ndarray:
    """Embeddings of ``texts``: each distinct text once, cached ones read from ``cache``.

    ``compute(new_texts)`` embeds the rest (and may store them itself: ``store=False``).
    """
    texts = check_texts(texts)
    if not texts:
        return np.zeros((0, dim()), np.float32)
    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    unique = list(unique)
    keys = [EmbeddingCache.key(t) for t in unique] if cache else []
    cached = [cache.get(k) for k in keys] if cache else [None] * len(unique)
    todo = [i for i, c in enumerate(cached) if c is None]
    fresh = compute([unique[i] for i in todo]) if todo else None
    width = fresh.shape[1] if fresh is not None else cached[0].shape[0]
    out = np.empty((len(unique), width), np.float32)
    for i, c in enumerate(cached):
        if c is not None:
            if c.shape[0] != width:
                raise ValueError(f"the embedding cache in {cache.folder} holds {c.shape[0]}-d vectors for this "
                                 f"model, which now gives {width}-d ones; clear {cache.path('')[:-5]}")
            out[i] = c
    if todo:
        out[todo] = fresh
        if cache and store:
            for row, i in enumerate(todo):
                cache.put(keys[i], fresh[row])
    return out[inverse.ravel()]


# --------------------------------------------------------------------------------------
class CallableEmbedder:
    """Any function ``texts -> (n, dim)`` array as an :class:`Embedder`.

    Parameters
    ----------
    fn : callable
    dim : int, optional
        Checked on every call; found with one probe call when omitted.
    cache_key : str, optional
        Names the function's vectors in a cache; needed with ``cache_dir`` (a function's
        name says nothing about its weights).
    cache_dir : str or os.PathLike, optional
    batch_size : int, optional
        Call ``fn`` on at most this many texts at a time.
    """

    def __init__(self, fn: Callable, dim: int | None = None, cache_key: str | None = None, cache_dir=None,
                 batch_size: int | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if cache_dir is not None and cache_key is None:
            raise ValueError("cache_dir needs a cache_key naming the model behind this function")
        self.fn = fn
        self._dim = None if dim is None else check_positive_int(dim, "dim")
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, "batch_size")
        name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        self._cache_key = cache_key or hashlib.sha256(name.encode()).hexdigest()[:32]
        self._cache = None if cache_dir is None else EmbeddingCache(cache_dir, self._cache_key)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._call(["probe"]).shape[1])
        return self._dim

    @property
    def cache_key(self) -> str:
        return self._cache_key

    def _call(self, texts: list[str]) -> np.ndarray:
        step = self.batch_size or max(1, len(texts))
        parts = [as_embeddings(self.fn(texts[i:i + step]), len(texts[i:i + step]), "the embedding function",
                               self._dim) for i in range(0, len(texts), step)]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if self._dim is None:
            self._dim = out.shape[1]
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_unique(texts, self._call, self._cache, lambda: self.dim)

    __call__ = embed

    def __repr__(self) -> str:
        return f"<likeable.CallableEmbedder({getattr(self.fn, '__qualname__', type(self.fn).__name__)})>"


class SentenceTransformerEmbedder:
    """A sentence-transformers model object (``SentenceTransformer(...)``) as an :class:`Embedder`.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
    batch_size : int
    normalize : bool
        L2-normalise (``normalize_embeddings=True``).
    cache_key : str, optional
        Default: the model's name or path, its maximum sequence length and ``normalize``.
    cache_dir : str or os.PathLike, optional
    """

    def __init__(self, model: Any, batch_size: int = 64, normalize: bool = True, cache_key: str | None = None,
                 cache_dir=None, progress: bool = False) -> None:
        if not _is_sentence_transformer(model):
            raise TypeError(f"model must be a sentence_transformers.SentenceTransformer, got {type(model).__name__}")
        self.model = model
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.normalize = bool(normalize)
        self.progress = bool(progress)
        if cache_key is None:
            name = _model_name(model)
            if name is None and cache_dir is not None:
                raise ValueError("cannot tell which model this is: pass cache_key= to use cache_dir")
            cache_key = hashlib.sha256(
                f"st|{name}|{getattr(model, 'max_seq_length', None)}|{self.normalize}".encode()).hexdigest()[:32]
        self._cache_key = cache_key
        self._cache = None if cache_dir is None else EmbeddingCache(cache_dir, cache_key)
        self._dim = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self.model.get_sentence_embedding_dimension() or int(self._run(["probe"]).shape[1])
        return int(self._dim)

    @property
    def cache_key(self) -> str:
        return self._cache_key

    def _run(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=self.normalize, show_progress_bar=self.progress)
        return as_embeddings(vectors, len(texts), "the sentence-transformers model", self._dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_unique(texts, self._run, self._cache, lambda: self.dim)

    __call__ = embed

    def __repr__(self) -> str:
        return f"<likeable.SentenceTransformerEmbedder({_model_name(self.model)!r}, normalize={self.normalize})>"


def _model_name(model: Any) -> str | None:
    try:
        return model[0].auto_model.config._name_or_path or None
    except (TypeError, IndexError, KeyError, AttributeError):
        return getattr(model, "name_or_path", None)


from .embed_onnx import OnnxEmbedder  # noqa: E402  (it builds on the helpers above)

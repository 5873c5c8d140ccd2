"""Text embeddings with onnxruntime + tokenizers, batched by length, cached on disk."""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np

from .._validation import check_positive_int, fspath

__all__ = ["OnnxEmbedder"]

_POOLINGS = ("mean", "cls")


class OnnxEmbedder:
    """Sentence embeddings from an ONNX transformer (e.g. all-MiniLM-L6-v2).

    Texts are sorted by token length and batched so padding stays small, run through
    onnxruntime (the CUDA execution provider when onnxruntime-gpu offers it), pooled over the
    attention mask and optionally L2-normalised. With ``cache_dir`` every embedding is kept
    on disk under a key of the model file's hash and the text's hash, so re-running a
    protocol embeds only new texts.

    Parameters
    ----------
    model_path : str or os.PathLike
        The ``.onnx`` file, or a folder holding ``model.onnx`` and ``tokenizer.json``.
    tokenizer_path : str or os.PathLike, optional
        A ``tokenizer.json`` for the ``tokenizers`` package; defaults to the model's folder.
    pooling : {"mean", "cls"}
    normalize : bool
        L2-normalise each embedding.
    max_length : int
        Truncate inputs at this many tokens.
    batch_size : int
    cache_dir : str or os.PathLike, optional
        Folder for the embedding cache (created on first use). None disables caching.
    providers : list of str, optional
        onnxruntime execution providers; by default CUDA when available, then CPU.
    threads : int, optional
        Intra-op threads for onnxruntime (default: onnxruntime's choice).
    progress : bool
        Show a progress bar over batches.
    """

    def __init__(self, model_path, tokenizer_path=None, pooling: str = "mean", normalize: bool = True,
                 max_length: int = 256, batch_size: int = 64, cache_dir=None, providers=None,
                 threads: int | None = None, progress: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = fspath(model_path, "model_path")
        if os.path.isdir(model_path):
            folder = model_path
            model_path = os.path.join(folder, "model.onnx")
        else:
            folder = os.path.dirname(os.path.abspath(model_path))
        tokenizer_path = fspath(tokenizer_path, "tokenizer_path") if tokenizer_path is not None \
            else os.path.join(folder, "tokenizer.json")
        for path, what in ((model_path, "ONNX model"), (tokenizer_path, "tokenizer.json")):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{what} not found: {path}")
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.max_length = check_positive_int(max_length, "max_length")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.cache_dir = None if cache_dir is None else fspath(cache_dir, "cache_dir")
        self.progress = bool(progress)
        # What pickling ships: the configuration, never the session (re-opened where unpickled).
        self._init_args = dict(model_path=model_path, tokenizer_path=tokenizer_path, pooling=pooling,
                               normalize=normalize, max_length=max_length, batch_size=batch_size,
                               cache_dir=cache_dir, providers=providers, threads=threads, progress=progress)

        try:
            self._tokenizer = Tokenizer.from_file(tokenizer_path)
        except Exception as exc:  # tokenizers raises its own exception type
            raise ValueError(f"could not read tokenizer {tokenizer_path}: {exc}") from None
        # As shipped the tokenizer pads everything to 128; pad per batch instead.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer.enable_truncation(self.max_length)

        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = check_positive_int(threads, "threads")
        try:
            self._session = ort.InferenceSession(model_path, sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"could not load ONNX model {model_path}: {exc}") from None
        self.providers = self._session.get_providers()
        self._input_names = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._input_names:
            raise ValueError(f"{model_path}: expected inputs input_ids and attention_mask, "
                             f"got {sorted(self._input_names)}")
        self._model_key: str | None = None

    def __getstate__(self) -> dict:
        return self._init_args

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding width (from the model's output shape, or one probe run if symbolic)."""
        shape = self._session.get_outputs()[0].shape
        if isinstance(shape[-1], int):
            return shape[-1]
        return int(self._run(["probe"]).shape[1])

    @property
    def model_key(self) -> str:
        """Hash of the model file, tokenizer and pooling settings (the cache namespace)."""
        if self._model_key is None:
            h = hashlib.sha256()
            for path in (self.model_path, self.tokenizer_path):
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        h.update(block)
            h.update(f"{self.pooling}|{self.normalize}|{self.max_length}".encode())
            self._model_key = h.hexdigest()[:32]
        return self._model_key

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    def embed(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), float32.

        Duplicate texts are embedded once; cached texts are read from disk.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        progress = self.progress if progress is None else progress
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True) if texts \
            else (np.zeros(0, object), np.zeros(0, np.int64))
        unique = list(unique)
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in unique] if self.cache_dir else []
        cached = [self._cache_get(k) for k in keys] if self.cache_dir else [None] * len(unique)
        todo = [i for i, c in enumerate(cached) if c is None]
        fresh = self._embed_sorted([unique[i] for i in todo], progress)
        dim = fresh.shape[1] if len(todo) else (cached[0].shape[0] if cached else self.dim)
        out = np.empty((len(unique), dim), np.float32)
        for i, c in enumerate(cached):
            if c is not None:
                out[i] = c
        if todo:
            out[todo] = fresh
            if self.cache_dir:
                for row, i in enumerate(todo):
                    self._cache_put(keys[i], fresh[row])
        return out[inverse.ravel()] if len(texts) else np.zeros((0, dim), np.float32)

    # ------------------------------------------------------------------------------
    def _embed_sorted(self, texts: list[str], progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((sum(e.attention_mask) for e in encodings), np.int64, len(texts))
        order = np.argsort(-lengths, kind="stable")  # similar lengths share a batch: little padding
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="embed", unit="batch")
        result = None
        for batch in batches:
            emb = self._run([texts[i] for i in batch])
            if result is None:
                result = np.empty((len(texts), emb.shape[1]), np.float32)
            result[batch] = emb
        return result

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0].astype(np.float32, copy=False)
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)

    def _cache_file(self, key: str) -> str:
        return os.path.join(self.cache_dir, self.model_key, key[:2], key + ".f32")

    def _cache_get(self, key: str) -> np.ndarray | None:
        path = self._cache_file(key)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        if len(data) == 0 or len(data) % 4:
            return None  # damaged entry: recompute
        return np.frombuffer(data, dtype=np.float32).copy()

    def _cache_put(self, key: str, vector: np.ndarray) -> None:
        path = self._cache_file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.part"
        with open(tmp, "wb") as fh:
            fh.write(np.ascontiguousarray(vector, np.float32).tobytes())
        os.replace(tmp, path)  # readers never see a half-written entry

    def __repr__(self) -> str:
        return (f"<likeable.OnnxEmbedder(model={os.path.basename(self.model_path)!r}, pooling={self.pooling!r}, "
                f"normalize={self.normalize}, max_length={self.max_length}, providers={self.providers})>")

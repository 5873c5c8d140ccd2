"""Sentence embeddings from an ONNX transformer with onnxruntime + tokenizers."""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np

from .._io import read_json_file
from .._validation import check_positive_int, fspath
from .embed import _POOLINGS, EmbeddingCache, embed_unique

__all__ = ["OnnxEmbedder", "find_onnx_model", "read_pooling"]

# sentence-transformers' pooling config keys and the pooling each names
_ST_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
             "pooling_mode_lasttoken": "last", "pooling_mode_max_tokens": "max"}
_UNSUPPORTED_ST_MODES = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")


def find_onnx_model(folder: str) -> str:
    """``model.onnx`` in ``folder`` or in its ``onnx/`` subfolder (the Hugging Face layout)."""
    for candidate in (os.path.join(folder, "model.onnx"), os.path.join(folder, "onnx", "model.onnx")):
        if os.path.isfile(candidate):
            return candidate
    onnx_dir = os.path.join(folder, "onnx")
    others = sorted(f for f in (os.listdir(onnx_dir) if os.path.isdir(onnx_dir) else []) if f.endswith(".onnx"))
    head = f"ONNX model not found in {folder}: looked for model.onnx and onnx/model.onnx"
    if others:
        choice = os.path.join(onnx_dir, others[0])
        error = FileNotFoundError(f"{head}; onnx/ holds {others}: pass the one to use, e.g. OnnxEmbedder({choice!r})")
        error.cli_message = f"{head}; onnx/ holds {others}: pass the one to use, e.g. --embedder {choice}"
        raise error
    raise FileNotFoundError(f"{head}; export one with `optimum-cli export onnx --model MODEL_NAME FOLDER` "
                            "(pip install optimum[exporters])")


def read_pooling(folder: str) -> str | None:
    """The pooling a model folder declares: sentence-transformers' ``1_Pooling/config.json``
    (or a ``pooling_config.json`` beside the model); None when there is none."""
    for path in (os.path.join(folder, "1_Pooling", "config.json"), os.path.join(folder, "pooling_config.json")):
        if not os.path.isfile(path):
            continue
        try:
            config = read_json_file(path, "the pooling config")  # nesting checked, regular files only
        except (OSError, ValueError) as exc:
            raise ValueError(f"could not read the pooling config {path}: {exc}") from None
        if isinstance(config.get("pooling_mode"), str):  # newer sentence-transformers spell it out
            mode = {"lasttoken": "last", "mean_tokens": "mean", "cls_token": "cls"}.get(
                config["pooling_mode"], config["pooling_mode"])
        else:
            if any(config.get(key) for key in _UNSUPPORTED_ST_MODES):
                raise ValueError(f"{path}: pooling {[k for k in _UNSUPPORTED_ST_MODES if config.get(k)]} is not "
                                 f"supported; pass pooling= one of {_POOLINGS}")
            modes = [name for key, name in _ST_MODES.items() if config.get(key)]
            if len(modes) != 1:
                raise ValueError(f"{path}: expected exactly one pooling mode, found {modes or 'none'}; "
                                 f"pass pooling= one of {_POOLINGS}")
            mode = modes[0]
        if mode not in _POOLINGS:
            raise ValueError(f"{path}: pooling {mode!r} is not supported; pass pooling= one of {_POOLINGS}")
        return mode
    return None


class OnnxEmbedder:
    """Sentence embeddings from an ONNX transformer (e.g. all-MiniLM-L6-v2, BGE, GTE, E5).

    Texts are sorted by token length and batched so padding stays small, run through
    onnxruntime (the CUDA execution provider when onnxruntime-gpu offers it), pooled over the
    attention mask and optionally L2-normalised. With ``cache_dir`` every embedding is kept
    on disk under a key of the model file's hash and the text's hash, so re-running a
    protocol embeds only new texts.

    Parameters
    ----------
    model_path : str or os.PathLike
        The ``.onnx`` file, or a model folder: ``model.onnx`` at its root, or the Hugging Face
        layout with ``onnx/model.onnx``; ``tokenizer.json`` beside the model or at the root.
    tokenizer_path : str or os.PathLike, optional
        A ``tokenizer.json`` for the ``tokenizers`` package; found in the folder when omitted.
    pooling : {"mean", "cls", "last", "max"}, optional
        Default: what the folder's sentence-transformers ``1_Pooling/config.json`` (or a
        ``pooling_config.json``) declares, else mean. ``cls`` is the first token (BGE,
        Arctic, GTE), ``last`` the last non-padding token (decoder embedders such as E5-Mistral).
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

    def __init__(self, model_path, tokenizer_path=None, pooling: str | None = None, normalize: bool = True,
                 max_length: int = 256, batch_size: int = 64, cache_dir=None, providers=None,
                 threads: int | None = None, progress: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        given = fspath(model_path, "model_path")
        if os.path.isdir(given):
            root = given
            model_path = find_onnx_model(root)
        elif not os.path.exists(given):
            raise FileNotFoundError(f"ONNX model not found: {given} does not exist")
        else:
            model_path = given
            root = os.path.dirname(os.path.abspath(model_path))
        folder = os.path.dirname(os.path.abspath(model_path))
        if os.path.basename(folder) == "onnx" and not os.path.isdir(given):
            root = os.path.dirname(folder)  # a model file inside the Hugging Face layout
        if tokenizer_path is None:
            candidates = [os.path.join(folder, "tokenizer.json"), os.path.join(root, "tokenizer.json")]
            tokenizer_path = next((c for c in candidates if os.path.isfile(c)), candidates[-1])
        tokenizer_path = fspath(tokenizer_path, "tokenizer_path")
        if not os.path.isfile(tokenizer_path):
            raise FileNotFoundError(f"tokenizer.json not found: {tokenizer_path} (pass tokenizer_path=)")
        if pooling is None:
            pooling = read_pooling(root) or (read_pooling(folder) if folder != root else None) or "mean"
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
        # Tokenizers are often shipped padding everything to a fixed length; pad per batch
        # instead, keeping the tokenizer's own pad token and side.
        padding = self._tokenizer.padding or {}
        pad_token = padding.get("pad_token") or next(
            (t for t in ("[PAD]", "<pad>", "<|endoftext|>", "</s>") if self._tokenizer.token_to_id(t) is not None),
            "[PAD]")
        pad_id = padding.get("pad_id", self._tokenizer.token_to_id(pad_token) or 0)
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token,
                                       direction=padding.get("direction", "right").lower())
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
        self._cache: EmbeddingCache | None = None

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
    def cache_key(self) -> str:
        """Hash of the model file, tokenizer and pooling settings (the cache namespace)."""
        if self._model_key is None:
            h = hashlib.sha256()
            for path in (self.model_path, self.tokenizer_path):
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        h.update(block)
            # the same recipe as earlier versions, so existing caches stay valid
            h.update(f"{self.pooling}|{self.normalize}|{self.max_length}".encode())
            self._model_key = h.hexdigest()[:32]
        return self._model_key

    model_key = cache_key  # the earlier name

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    def embed(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), float32.

        Duplicate texts are embedded once; cached texts are read from disk.
        """
        progress = self.progress if progress is None else progress
        if self.cache_dir and self._cache is None:
            self._cache = EmbeddingCache(self.cache_dir, self.cache_key)
        return embed_unique(texts, lambda new: self._embed_sorted(new, progress), self._cache, lambda: self.dim)

    # ------------------------------------------------------------------------------
    def _embed_sorted(self, texts: list[str], progress: bool) -> np.ndarray:
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
        if "position_ids" in self._input_names:  # decoder exports: positions count real tokens only
            feeds["position_ids"] = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        hidden = self._session.run(None, feeds)[0].astype(np.float32, copy=False)
        pooled = hidden if hidden.ndim == 2 else pool_tokens(hidden, mask, self.pooling)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)

    def _cache_file(self, key: str) -> str:
        return EmbeddingCache(self.cache_dir, self.cache_key).path(key)

    def __repr__(self) -> str:
        return (f"<likeable.OnnxEmbedder(model={os.path.basename(self.model_path)!r}, pooling={self.pooling!r}, "
                f"normalize={self.normalize}, max_length={self.max_length}, providers={self.providers})>")


def pool_tokens(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """(batch, tokens, dim) token vectors to (batch, dim) under the attention mask."""
    if pooling == "cls":
        first = np.argmax(mask > 0, axis=1)  # the first real token (left padding puts pads first)
        return hidden[np.arange(hidden.shape[0]), first]
    if pooling == "last":
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
        return hidden[np.arange(hidden.shape[0]), last]
    m = mask[:, :, None].astype(np.float32)
    if pooling == "max":
        return np.where(m > 0, hidden, -np.inf).max(axis=1)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)

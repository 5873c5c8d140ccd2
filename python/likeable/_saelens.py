"""SAE folders as the community writes them: sae_lens and EleutherAI's sparsify.

sae_lens: ``cfg.json`` + ``sae_weights.safetensors`` with ``W_enc`` (d_in x d_sae), ``b_enc``,
``W_dec`` (d_sae x d_in), ``b_dec`` and, for JumpReLU, ``threshold`` (d_sae). ``cfg.json``
holds ``architecture`` ("topk", "jumprelu", "standard", "batchtopk", ...), ``d_in``, ``d_sae``,
``k``, ``apply_b_dec_to_input``, ``normalize_activations``, ``rescale_acts_by_decoder_norm``
(newer) or ``activation_fn_str``/``activation_fn_kwargs`` (older). sparsify: ``cfg.json``
(``d_in``, ``num_latents`` or ``expansion_factor``, ``k``, ``activation``, ``skip_connection``,
``transcode``) + ``sae.safetensors`` with ``encoder.weight`` (d_sae x d_in), ``encoder.bias``,
``W_dec``, ``b_dec``. Both encode ``relu(top-k of (x - b_dec) W_enc + b_enc)`` (TopK) or keep
entries above a per-feature threshold (JumpReLU), which likeable's TopK and threshold modes
compute exactly; scalings the formats apply at run time are folded into the weights.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ._core import FormatError
from ._io import _parse_header, atomic_write_bytes, read_file_bytes, read_json_file

CFG_FILE = "cfg.json"
SAE_LENS_WEIGHTS = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
LAYOUTS = ("sae_lens", "sparsify")
_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def read_folder(path: str) -> dict[str, Any]:
    """Keyword arguments for :meth:`SparseEncoder.from_weights` from an sae_lens or sparsify folder."""
    cfg_path = os.path.join(path, CFG_FILE)
    if not os.path.isfile(cfg_path):
        inner = sorted(d for d in os.listdir(path) if os.path.isfile(os.path.join(path, d, CFG_FILE)))
        hint = f"; it holds SAE folders {inner[:5]}: load one of them" if inner else ""
        raise FileNotFoundError(f"{path} is a folder without {CFG_FILE}: not an sae_lens or sparsify SAE{hint}")
    try:
        cfg = read_json_file(cfg_path, CFG_FILE)
    except OSError as exc:
        raise FormatError(f"{cfg_path}: not readable ({exc})") from None
    if not isinstance(cfg, dict):
        raise FormatError(f"{cfg_path}: not a JSON object")
    for name, read in ((SAE_LENS_WEIGHTS, _from_sae_lens), (SPARSIFY_WEIGHTS, _from_sparsify)):
        if os.path.isfile(os.path.join(path, name)):
            tensors = read_safetensors(os.path.join(path, name))
            try:
                return read(cfg, tensors, path)
            except (TypeError, ValueError, OverflowError, AttributeError, KeyError) as exc:
                if isinstance(exc, FormatError):
                    raise
                # a cfg.json field of the wrong type or an impossible value (k = Infinity, ...)
                raise FormatError(f"{path}: {CFG_FILE} or the weights hold a value likeable cannot use ({exc})") \
                    from None
    raise FileNotFoundError(f"{path}: has {CFG_FILE} but neither {SAE_LENS_WEIGHTS} (sae_lens) nor "
                            f"{SPARSIFY_WEIGHTS} (sparsify)")


def _need(tensors: dict, names, where: str) -> list[np.ndarray]:
    missing = [n for n in names if n not in tensors]
    if missing:
        raise FormatError(f"{where}: missing tensors {missing}; it has {sorted(tensors)}")
    return [tensors[n] for n in names]


def _from_sae_lens(cfg: dict, tensors: dict, path: str) -> dict[str, Any]:
    where = os.path.join(path, SAE_LENS_WEIGHTS)
    arch = cfg.get("architecture", "standard")
    activation = cfg.get("activation_fn_str", "relu")  # sae_lens before 6 spelled TopK this way
    if arch == "standard" and activation == "topk":
        arch = "topk"
    if arch not in ("topk", "jumprelu", "standard", "batchtopk", "matryoshka_batchtopk") or activation not in (
            "relu", "topk"):
        raise FormatError(f"{path}: sae_lens architecture {arch!r} (activation {activation!r}) is not supported; "
                          "likeable encodes topk, jumprelu, batchtopk and plain ReLU SAEs")
    normalize = cfg.get("normalize_activations") or "none"
    if normalize != "none":
        raise FormatError(f"{path}: normalize_activations={normalize!r} rescales inputs at run time, which likeable "
                          "does not; fold the scaling into the weights (sae_lens: fold_activation_norm_scaling_factor) "
                          "and save again")
    W_enc, b_enc, W_dec, b_dec = (a.astype(np.float64) for a in _need(tensors, ("W_enc", "b_enc", "W_dec", "b_dec"),
                                                                        where))
    if W_enc.ndim != 2 or W_dec.shape != W_enc.T.shape:
        raise FormatError(f"{where}: W_enc {W_enc.shape} and W_dec {W_dec.shape} are not (d_in, d_sae) and (d_sae, d_in)")
    for key, want in (("d_in", W_enc.shape[0]), ("d_sae", W_enc.shape[1])):
        if key in cfg and cfg[key] != want:
            raise FormatError(f"{path}: {CFG_FILE} says {key}={cfg[key]} but the weights have {want}")
    if "scaling_factor" in tensors:  # old finetuning scale, applied to activations before decoding
        W_dec = W_dec * tensors["scaling_factor"].astype(np.float64)[:, None]
    if not cfg.get("apply_b_dec_to_input", True):  # encode x, not x - b_dec: fold it into b_enc
        b_enc = b_enc + b_dec @ W_enc
    threshold = None
    if arch == "topk":
        kwargs = cfg.get("activation_fn_kwargs") or {}
        k = cfg.get("k", kwargs.get("k") if isinstance(kwargs, dict) else None)
        if k is None:
            raise FormatError(f"{path}: a topk SAE without k in {CFG_FILE}")
        kind = "topk"
    else:
        if "threshold" in tensors:
            threshold = tensors["threshold"].astype(np.float64)
        elif "log_threshold" in tensors:
            threshold = np.exp(tensors["log_threshold"].astype(np.float64))
        elif "topk_threshold" in tensors:  # a BatchTopK training checkpoint: one global threshold
            threshold = np.full(W_enc.shape[1], float(tensors["topk_threshold"].reshape(-1)[0]))
        elif arch == "standard":
            threshold = np.zeros(W_enc.shape[1])  # plain ReLU: every positive pre-activation
        else:
            raise FormatError(f"{path}: a {arch} SAE without a threshold tensor")
        threshold = np.broadcast_to(threshold, (W_enc.shape[1],))
        # k is only the default of encode(k=...) here: thresholds decide what is kept
        k = _likeable_meta(cfg).get("k") or cfg.get("k") or min(32, W_enc.shape[1])
        kind = "batchtopk"
    k = _cfg_k(k, path)
    if cfg.get("rescale_acts_by_decoder_norm"):  # activations measured against unit decoder rows
        norms = np.linalg.norm(W_dec, axis=1)
        W_enc, b_enc, W_dec = W_enc * norms, b_enc * norms, W_dec / np.maximum(norms, 1e-30)[:, None]
        if threshold is not None:
            threshold = threshold * norms
    meta = _likeable_meta(cfg)
    return {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec, "threshold": threshold,
            "k": int(min(max(1, k), W_enc.shape[1])), "kind": kind,
            "matryoshka": meta.get("matryoshka") or _matryoshka(cfg, W_enc.shape[1])}


def _cfg_k(k: Any, path: str) -> int:
    """``k`` from a cfg.json: a finite number (an integer-valued float is accepted), never a
    bool, a string or Infinity, which would raise OverflowError in round()."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not np.isfinite(k) or k < 1:
        raise FormatError(f"{path}: {CFG_FILE} field 'k' must be a positive number, got {k!r}")
    return int(round(k))


def _matryoshka(cfg: dict, n_features: int):
    widths = cfg.get("matryoshka_widths")
    return [int(w) for w in widths] if widths and int(widths[-1]) <= n_features else None


def _likeable_meta(cfg: dict) -> dict:
    meta = cfg.get("metadata") or cfg.get("meta") or {}
    info = meta.get("likeable") if isinstance(meta, dict) else None
    return info if isinstance(info, dict) else {}


def _from_sparsify(cfg: dict, tensors: dict, path: str) -> dict[str, Any]:
    where = os.path.join(path, SPARSIFY_WEIGHTS)
    unsupported = [key for key in ("skip_connection", "transcode", "embed_skip", "gram_lookup") if cfg.get(key)]
    if cfg.get("activation", "topk") != "topk" or unsupported:
        raise FormatError(f"{path}: sparsify coder with activation={cfg.get('activation')!r} {unsupported} is not "
                          "supported; likeable encodes plain TopK autoencoders")
    enc_w, enc_b, W_dec, b_dec = _need(tensors, ("encoder.weight", "encoder.bias", "W_dec", "b_dec"), where)
    if enc_w.ndim != 2 or W_dec.shape != enc_w.shape:
        raise FormatError(f"{where}: encoder.weight {enc_w.shape} and W_dec {W_dec.shape} differ")
    if "d_in" in cfg and cfg["d_in"] != enc_w.shape[1]:
        raise FormatError(f"{path}: {CFG_FILE} says d_in={cfg['d_in']} but the weights have {enc_w.shape[1]}")
    if "k" not in cfg:
        raise FormatError(f"{path}: a sparsify coder without k in {CFG_FILE}")
    return {"W_enc": enc_w.T, "b_enc": enc_b, "W_dec": W_dec, "b_dec": b_dec, "threshold": None,
            "k": min(_cfg_k(cfg["k"], path), enc_w.shape[0]), "kind": "topk", "matryoshka": None}


def write_folder(encoder, path: str, layout: str) -> None:
    """Write ``encoder`` as an sae_lens or sparsify folder (created if needed)."""
    from safetensors.numpy import save

    if layout not in LAYOUTS:
        raise ValueError(f"format must be 'likeable' or one of {LAYOUTS}, got {layout!r}")
    if encoder.signed:
        raise ValueError(f"{layout} has no signed TopK (it keeps the largest positive activations): a signed "
                         "encoder saves only in likeable's own format")
    W_enc, b_enc, W_dec, b_dec = (np.ascontiguousarray(a, np.float32) for a in
                                  (encoder.W_enc, encoder.b_enc, encoder.W_dec, encoder.b_dec))
    d, M = W_enc.shape
    own = {"format": "likeable.SparseEncoder", "kind": encoder.kind, "k": int(encoder.k),
           "matryoshka": None if encoder.matryoshka is None else [int(p) for p in encoder.matryoshka]}
    if layout == "sparsify":
        if encoder.kind != "topk":
            raise ValueError("sparsify stores TopK coders only; save a BatchTopK encoder as format='sae_lens' "
                             "(a JumpReLU SAE)")
        cfg = {"activation": "topk", "expansion_factor": max(1, M // d), "normalize_decoder": True,
               "num_latents": M, "k": int(encoder.k), "multi_topk": False, "skip_connection": False,
               "transcode": False, "d_in": d}
        tensors = {"encoder.weight": np.ascontiguousarray(W_enc.T), "encoder.bias": b_enc, "W_dec": W_dec,
                   "b_dec": b_dec}
        weights = SPARSIFY_WEIGHTS
    else:
        cfg = {"d_in": d, "d_sae": M, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
               "normalize_activations": "none", "reshape_activations": "none", "metadata": {"likeable": own}}
        tensors = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
        if encoder.kind == "topk":
            cfg.update(architecture="topk", k=int(encoder.k), rescale_acts_by_decoder_norm=False)
        else:  # BatchTopK encodes by its learned thresholds: what sae_lens calls JumpReLU
            cfg["architecture"] = "jumprelu"
            tensors["threshold"] = np.ascontiguousarray(encoder.threshold, np.float32)
        weights = SAE_LENS_WEIGHTS
    os.makedirs(path, exist_ok=True)
    atomic_write_bytes(os.path.join(path, weights), save(tensors))
    atomic_write_bytes(os.path.join(path, CFG_FILE), json.dumps(cfg, indent=2).encode())


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Float tensors of a safetensors file as float32 (F32, F16, BF16 and F64 alike)."""
    try:
        data = read_file_bytes(path)
    except (OSError, ValueError) as exc:
        raise FormatError(f"could not read {path}: {exc}") from None
    header, start = _parse_header(data, path)  # nesting checked before parsing; FormatError on damage
    body = memoryview(data)[start:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: tensor {name!r} has a damaged header entry") from None
        if not (isinstance(dtype, str) and all(type(v) is int and v >= 0 for v in (*shape, start, end))):
            raise FormatError(f"{path}: tensor {name!r} has a damaged header entry (dtype, shape or offsets)")
        if dtype not in _DTYPES and dtype != "BF16":
            continue  # counters and ids (sparsity logs and the like) are not weights
        item = 2 if dtype in ("F16", "BF16") else np.dtype(_DTYPES[dtype]).itemsize
        if not (start <= end <= len(body)) or end - start != item * math.prod(shape):
            raise FormatError(f"{path}: tensor {name!r} does not fit the file (truncated or damaged)")
        raw = np.frombuffer(body[start:end], dtype="<u2" if dtype == "BF16" else _DTYPES[dtype])
        if dtype == "BF16":  # bfloat16 is the top half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float32).reshape(shape)
    return out

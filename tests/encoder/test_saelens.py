"""SparseEncoder.load/save with the folders sae_lens and sparsify write.

The files are written the way those libraries write them (field names of their configs,
tensor names, shapes and dtypes, from their source), and every encode is checked against
their encode formulas in numpy float64.
"""
import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save

import likeable as lk


def _weights(rng, d=12, m=40, scale=1.0):
    W_dec = rng.standard_normal((m, d)) * scale
    return {"W_enc": rng.standard_normal((d, m)) * 0.5, "b_enc": rng.standard_normal(m) * 0.1,
            "W_dec": W_dec, "b_dec": rng.standard_normal(d) * 0.1}


def _sae_lens_cfg(arch, d, m, **extra):
    """What sae_lens' SAEConfig.to_dict writes (6.x: 'metadata'; topk adds k and rescale_acts_by_decoder_norm)."""
    cfg = {"d_in": d, "d_sae": m, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.5.1", "sae_lens_training_version": "6.5.1", "model_name": "gpt2",
                        "hook_name": "blocks.6.hook_resid_post", "context_size": 128, "prepend_bos": True},
           "architecture": arch}
    cfg.update(extra)
    return cfg


def _write(folder, cfg, tensors, weights="sae_weights.safetensors"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    (folder / weights).write_bytes(save({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}))
    return folder


def _topk_reference(pre, k):
    """sae_lens TopK: top k of the pre-activations, then ReLU (dense, float64)."""
    out = np.zeros_like(pre)
    idx = np.argsort(-pre, axis=1, kind="stable")[:, :k]
    rows = np.arange(pre.shape[0])[:, None]
    out[rows, idx] = np.maximum(pre[rows, idx], 0)
    return out


def _f32(w):
    return {k: np.asarray(v, np.float32).astype(np.float64) for k, v in w.items()}


@pytest.mark.parametrize("rescale", [False, True])
def test_sae_lens_topk(tmp_path, rng, rescale):
    w = _weights(rng, scale=3.0)
    X = rng.standard_normal((50, 12))
    k = 5
    folder = _write(tmp_path / "topk", _sae_lens_cfg("topk", 12, 40, k=k, rescale_acts_by_decoder_norm=rescale), w)
    enc = lk.SparseEncoder.load(folder)
    assert enc.kind == "topk" and enc.k == k and not enc.signed
    f = _f32(w)
    pre = (X - f["b_dec"]) @ f["W_enc"] + f["b_enc"]
    norms = np.linalg.norm(f["W_dec"], axis=1)
    if rescale:  # sae_lens 6: hidden_pre * ||W_dec||, decode divides by it again
        pre = pre * norms
    acts = _topk_reference(pre, k)
    recon = (acts / norms if rescale else acts) @ f["W_dec"] + f["b_dec"]
    codes = enc.encode(X.astype(np.float32))
    np.testing.assert_allclose(codes.to_dense(), acts, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(enc.decode(codes), recon, rtol=2e-4, atol=2e-4)


def test_sae_lens_jumprelu_thresholds_map_to_threshold_mode(tmp_path, rng):
    w = _weights(rng)
    threshold = np.abs(rng.standard_normal(40)) * 0.5
    folder = _write(tmp_path / "jr", _sae_lens_cfg("jumprelu", 12, 40), {**w, "threshold": threshold})
    enc = lk.SparseEncoder.load(folder)
    assert enc.kind == "batchtopk"
    np.testing.assert_array_equal(enc.threshold, threshold.astype(np.float32))
    X = rng.standard_normal((60, 12))
    f = _f32(w)
    pre = (X - f["b_dec"]) @ f["W_enc"] + f["b_enc"]
    acts = np.maximum(pre, 0) * (pre > threshold.astype(np.float32))  # sae_lens JumpReLUSAE.encode
    codes = enc.encode(X.astype(np.float32))
    np.testing.assert_allclose(codes.to_dense(), acts, rtol=2e-4, atol=2e-4)
    assert codes.nnz == np.count_nonzero(acts)


def test_older_sae_lens_configs_and_training_checkpoints(tmp_path, rng):
    w = _weights(rng)
    X = rng.standard_normal((30, 12))
    f = _f32(w)
    # sae_lens 3-5: architecture 'standard' with activation_fn_str 'topk' and activation_fn_kwargs
    old = {"architecture": "standard", "d_in": 12, "d_sae": 40, "activation_fn_str": "topk",
           "activation_fn_kwargs": {"k": 4}, "apply_b_dec_to_input": False, "finetuning_scaling_factor": False,
           "context_size": 128, "model_name": "gpt2", "hook_name": "blocks.0.hook_resid_pre", "hook_layer": 0,
           "hook_head_index": None, "prepend_bos": True, "dataset_path": "x", "normalize_activations": "none",
           "dtype": "float32", "device": "cpu", "sae_lens_training_version": "3.0.0"}
    enc = lk.SparseEncoder.load(_write(tmp_path / "old", old, w))
    pre = X @ f["W_enc"] + f["b_enc"]  # apply_b_dec_to_input false: x itself is encoded
    np.testing.assert_allclose(enc.encode(X.astype(np.float32)).to_dense(), _topk_reference(pre, 4), atol=2e-4)
    # a plain ReLU SAE keeps every positive pre-activation
    relu = lk.SparseEncoder.load(_write(tmp_path / "relu", {**old, "activation_fn_str": "relu",
                                                             "apply_b_dec_to_input": True}, w))
    pre = (X - f["b_dec"]) @ f["W_enc"] + f["b_enc"]
    np.testing.assert_allclose(relu.encode(X.astype(np.float32)).to_dense(), np.maximum(pre, 0), atol=2e-4)
    # a BatchTopK training checkpoint: one global threshold (a float64 scalar buffer)
    folder = tmp_path / "btk"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps(_sae_lens_cfg("batchtopk", 12, 40, k=6.0, topk_threshold_lr=0.01)))
    (folder / "sae_weights.safetensors").write_bytes(
        save({**{k: v.astype(np.float32) for k, v in w.items()}, "topk_threshold": np.array(0.3)}))
    btk = lk.SparseEncoder.load(folder)
    assert btk.kind == "batchtopk" and btk.k == 6
    np.testing.assert_allclose(btk.threshold, 0.3)


def _bf16_safetensors(tensors):
    """A safetensors file with BF16 tensors, byte by byte (numpy has no bfloat16)."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        bits = (np.asarray(value, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(bits)]}
        blobs.append(bits)
        offset += len(bits)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def test_bfloat16_weights(tmp_path, rng):
    w = _weights(rng)
    folder = tmp_path / "bf16"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps(_sae_lens_cfg("topk", 12, 40, k=3, dtype="bfloat16")))
    (folder / "sae_weights.safetensors").write_bytes(_bf16_safetensors(w))
    enc = lk.SparseEncoder.load(folder)
    truncated = (np.asarray(w["W_dec"], np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    np.testing.assert_array_equal(enc.W_dec, truncated)


def test_sparsify_layout(tmp_path, rng):
    w = _weights(rng)
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": 40, "k": 6,
           "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": 12}
    tensors = {"encoder.weight": w["W_enc"].T, "encoder.bias": w["b_enc"], "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
    enc = lk.SparseEncoder.load(_write(tmp_path / "layers.6", cfg, tensors, "sae.safetensors"))
    X = rng.standard_normal((40, 12))
    f = _f32(w)
    pre = np.maximum((X - f["b_dec"]) @ f["W_enc"] + f["b_enc"], 0)  # sparsify: relu, then top k
    np.testing.assert_allclose(enc.encode(X.astype(np.float32)).to_dense(), _topk_reference(pre, 6), atol=2e-4)
    # sparsify saves one folder per hookpoint: the parent names them
    with pytest.raises(FileNotFoundError, match=r"holds SAE folders \['layers.6'\]"):
        lk.SparseEncoder.load(tmp_path)
    with pytest.raises(lk.FormatError, match="skip_connection"):
        lk.SparseEncoder.load(_write(tmp_path / "skip", {**cfg, "skip_connection": True}, tensors, "sae.safetensors"))


@pytest.mark.parametrize("kind,matryoshka", [("topk", None), ("topk", (8, 32)), ("batchtopk", None)])
def test_round_trip_through_sae_lens_folders(tmp_path, rng, kind, matryoshka):
    X = rng.standard_normal((400, 10)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=32, k=3, kind=kind, matryoshka=matryoshka, seed=0).fit(X, epochs=2,
                                                                                            progress=False)
    enc.save(tmp_path / "sae", format="sae_lens")
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    from likeable._saelens import read_safetensors

    tensors = read_safetensors(str(tmp_path / "sae" / "sae_weights.safetensors"))
    assert cfg["architecture"] == ("topk" if kind == "topk" else "jumprelu")
    assert (cfg["d_in"], cfg["d_sae"], cfg["apply_b_dec_to_input"], cfg["normalize_activations"]) == (10, 32, True, "none")
    assert {n: t.shape for n, t in tensors.items()} == {"W_enc": (10, 32), "b_enc": (32,), "W_dec": (32, 10),
                                                       "b_dec": (10,), **({"threshold": (32,)} if kind != "topk" else {})}
    back = lk.SparseEncoder.load(tmp_path / "sae")
    assert (back.kind, back.k, back.matryoshka and tuple(back.matryoshka)) == (kind, 3, matryoshka)
    assert back.encode(X) == enc.encode(X)
    if kind == "topk":
        enc.save(tmp_path / "sp", format="sparsify")
        assert lk.SparseEncoder.load(tmp_path / "sp").encode(X) == enc.encode(X)
        assert sorted(read_safetensors(str(tmp_path / "sp" / "sae.safetensors"))) == [
            "W_dec", "b_dec", "encoder.bias", "encoder.weight"]


def test_refusals(tmp_path, rng):
    X = rng.standard_normal((100, 6)).astype(np.float32)
    signed = lk.SparseEncoder(n_features=8, k=2, signed=True, seed=0).fit(X, epochs=1, progress=False)
    with pytest.raises(ValueError, match="no signed TopK"):
        signed.save(tmp_path / "s", format="sae_lens")
    with pytest.raises(ValueError, match="format must be"):
        signed.save(tmp_path / "s", format="onnx")
    batch = lk.SparseEncoder(n_features=8, k=2, kind="batchtopk", seed=0).fit(X, epochs=1, progress=False)
    with pytest.raises(ValueError, match="sparsify stores TopK"):
        batch.save(tmp_path / "b", format="sparsify")
    w = _weights(rng)
    with pytest.raises(lk.FormatError, match="'gated'"):
        lk.SparseEncoder.load(_write(tmp_path / "g", _sae_lens_cfg("gated", 12, 40), w))
    with pytest.raises(lk.FormatError, match="normalize_activations='layer_norm'"):
        lk.SparseEncoder.load(_write(tmp_path / "n", _sae_lens_cfg("topk", 12, 40, k=2,
                                                                    normalize_activations="layer_norm"), w))
    with pytest.raises(lk.FormatError, match="says d_in=99"):
        lk.SparseEncoder.load(_write(tmp_path / "d", _sae_lens_cfg("topk", 99, 40, k=2), w))
    with pytest.raises(lk.FormatError, match=r"missing tensors \['threshold'\]|without a threshold"):
        lk.SparseEncoder.load(_write(tmp_path / "t", _sae_lens_cfg("jumprelu", 12, 40), w))
    broken = _write(tmp_path / "x", _sae_lens_cfg("topk", 12, 40, k=2), w)
    data = (broken / "sae_weights.safetensors").read_bytes()
    (broken / "sae_weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(lk.FormatError, match="truncated"):
        lk.SparseEncoder.load(broken)
    (broken / "cfg.json").write_text("{not json")
    with pytest.raises(lk.FormatError, match="JSON"):
        lk.SparseEncoder.load(broken)

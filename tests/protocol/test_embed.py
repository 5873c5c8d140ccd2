import functools
import os

import numpy as np
import pytest

from conftest import shared_path
from likeable import OnnxEmbedder

SENTENCES = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog near the river bank today.",
             "Hello!", "", "Preference data tells us what people like, one pair at a time. " * 6,
             "Hello!", "Numbers: 3.14159 and 2.71828", "ünïcödé téxt wörks"]


@pytest.fixture(scope="module")
def model_dir():
    return shared_path("models", "all-MiniLM-L6-v2")


def _reference(model_dir, text):
    """One sentence at a time, no padding: onnxruntime then mean pooling and L2 in float64."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    enc = tok.encode(text)
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.asarray([enc.ids], np.int64)
    hidden = sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                             "token_type_ids": np.zeros_like(ids)})[0][0].astype(np.float64)
    v = hidden.mean(axis=0)
    return v / np.linalg.norm(v)


def test_matches_unbatched_reference(model_dir, tmp_path):
    emb = OnnxEmbedder(model_dir, batch_size=3, threads=1)
    out = emb.embed(SENTENCES)
    assert out.shape == (len(SENTENCES), 384) and out.dtype == np.float32
    for i in (0, 1, 4, 7):
        np.testing.assert_allclose(out[i], _reference(model_dir, SENTENCES[i]), atol=2e-5)
    np.testing.assert_array_equal(out[2], out[5])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # similar sentences are closer than unrelated ones
    close = emb.embed(["A cat is sitting on a mat."])[0]
    assert close @ out[0] > close @ out[6] + 0.3
    assert "all-MiniLM" not in repr(emb) and "model.onnx" in repr(emb)


def test_disk_cache_round_trip(model_dir, tmp_path):
    cache = tmp_path / "cache"
    emb = OnnxEmbedder(model_dir / "model.onnx", model_dir / "tokenizer.json", cache_dir=cache, threads=1)
    first = emb.embed(SENTENCES[:3])
    files = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
    assert len(files) == 3 and all(emb.model_key in f for f in files)
    # a cached text is read from disk: poison one entry and it comes back as written
    poisoned = np.full(384, 0.5, np.float32)
    key_file = emb._cache_file(__import__("hashlib").sha256(SENTENCES[0].encode()).hexdigest())
    with open(key_file, "wb") as fh:
        fh.write(poisoned.tobytes())
    again = OnnxEmbedder(model_dir, cache_dir=cache, threads=1).embed(SENTENCES[:3])
    np.testing.assert_array_equal(again[0], poisoned)
    np.testing.assert_array_equal(again[1:], first[1:])
    # a truncated entry is recomputed, not trusted
    with open(key_file, "wb") as fh:
        fh.write(b"abc")
    np.testing.assert_allclose(OnnxEmbedder(model_dir, cache_dir=cache, threads=1).embed(SENTENCES[:1])[0],
                               first[0], atol=1e-6)


def test_options_and_errors(model_dir, tmp_path):
    cls = OnnxEmbedder(model_dir, pooling="cls", normalize=False, threads=1, progress=True)
    out = cls.embed(SENTENCES[:2])
    assert abs(np.linalg.norm(out[0]) - 1.0) > 1e-3
    assert cls.embed([]).shape == (0, 384)
    with pytest.raises(TypeError, match="not one string"):
        cls.embed("hello")
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        cls.embed(["a", 3])
    with pytest.raises(ValueError, match="pooling"):
        OnnxEmbedder(model_dir, pooling="median")
    with pytest.raises(FileNotFoundError, match="ONNX model"):
        OnnxEmbedder(tmp_path)
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    (tmp_path / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    with pytest.raises(ValueError, match="could not load ONNX model"):
        OnnxEmbedder(tmp_path)


def test_embedder_pickles_as_its_configuration():
    import pickle

    folder = shared_path("models", "all-MiniLM-L6-v2")
    embedder = OnnxEmbedder(folder)
    clone = pickle.loads(pickle.dumps(embedder))
    texts = ["a short sentence", "another one, a little longer than the first"]
    np.testing.assert_array_equal(clone.embed(texts), embedder.embed(texts))


@functools.lru_cache(maxsize=1)
def _reference_model(model_dir):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    return tok, ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])


def _token_states(model_dir, text):
    """The model's per-token vectors for one text (no padding), float64."""
    tok, sess = _reference_model(model_dir)
    ids = np.asarray([tok.encode(text).ids], np.int64)
    return sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                           "token_type_ids": np.zeros_like(ids)})[0][0].astype(np.float64)


def _hf_layout(model_dir, root, pooling_config=None):
    """A Hugging Face style folder: onnx/model.onnx, tokenizer.json at the root (links, not copies)."""
    (root / "onnx").mkdir(parents=True)
    os.symlink(model_dir / "model.onnx", root / "onnx" / "model.onnx")
    os.symlink(model_dir / "tokenizer.json", root / "tokenizer.json")
    if pooling_config is not None:
        (root / "1_Pooling").mkdir()
        (root / "1_Pooling" / "config.json").write_text(__import__("json").dumps(pooling_config))
    return root


ST_POOLING = {"word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
              "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
              "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True}


@pytest.mark.parametrize("mode,key", [("cls", "pooling_mode_cls_token"), ("last", "pooling_mode_lasttoken"),
                                      ("max", "pooling_mode_max_tokens"), ("mean", "pooling_mode_mean_tokens")])
def test_hf_layout_and_pooling_from_the_folder(model_dir, tmp_path, mode, key):
    folder = _hf_layout(model_dir, tmp_path / "hf", {**ST_POOLING, key: True})
    emb = OnnxEmbedder(folder, batch_size=3, threads=1)
    assert emb.pooling == mode and emb.model_path.endswith(os.path.join("onnx", "model.onnx"))
    out = emb.embed(SENTENCES[:5])
    for i in range(5):
        states = _token_states(model_dir, SENTENCES[i])
        v = {"cls": states[0], "last": states[-1], "max": states.max(axis=0), "mean": states.mean(axis=0)}[mode]
        np.testing.assert_allclose(out[i], v / np.linalg.norm(v), atol=3e-5)
    # the model file itself, inside the layout, finds the same tokenizer and pooling
    assert OnnxEmbedder(folder / "onnx" / "model.onnx", threads=1).pooling == mode
    assert OnnxEmbedder(folder, pooling="mean", threads=1).pooling == "mean"  # an argument wins


def test_pooling_config_of_the_shared_model_and_bad_configs(model_dir, tmp_path):
    assert OnnxEmbedder(model_dir, threads=1).pooling == "mean"  # its pooling_config.json says mean
    folder = _hf_layout(model_dir, tmp_path / "two", {**ST_POOLING, "pooling_mode_cls_token": True,
                                                      "pooling_mode_mean_tokens": True})
    with pytest.raises(ValueError, match="exactly one pooling mode"):
        OnnxEmbedder(folder)
    folder = _hf_layout(model_dir, tmp_path / "sqrt", {**ST_POOLING, "pooling_mode_mean_sqrt_len_tokens": True})
    with pytest.raises(ValueError, match="not supported; pass pooling="):
        OnnxEmbedder(folder)


def test_missing_model_says_where_it_looked(model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"looked for model.onnx and onnx/model.onnx.*optimum-cli export onnx"):
        OnnxEmbedder(tmp_path / "empty")
    quantized = tmp_path / "q"
    (quantized / "onnx").mkdir(parents=True)
    os.symlink(model_dir / "model.onnx", quantized / "onnx" / "model_quantized.onnx")
    with pytest.raises(FileNotFoundError, match=r"onnx/ holds \['model_quantized.onnx'\]"):
        OnnxEmbedder(quantized)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxEmbedder(tmp_path / "nowhere")

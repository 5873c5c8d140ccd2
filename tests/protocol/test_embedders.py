"""The embedder protocol: as_embedder, callables, sentence-transformers models, the shared cache."""
import os

import numpy as np
import pytest

import likeable as lk
from likeable.protocol.embed import EmbeddingCache


def _features(texts):
    return np.array([[len(t), t.count(" "), t.count("a")] for t in texts], np.float64)


class FakeSentenceTransformer:
    """Stands in for sentence_transformers.SentenceTransformer (not installed here): the same
    ``encode`` signature and dimension query, and a record of the calls."""

    def __init__(self):
        self.calls = []

    def get_sentence_embedding_dimension(self):
        return 3

    def encode(self, sentences, batch_size=32, show_progress_bar=None, convert_to_numpy=True,
               normalize_embeddings=False):
        self.calls.append((list(sentences), batch_size, normalize_embeddings))
        out = _features(sentences).astype(np.float32)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def test_as_embedder_wraps_what_users_hold():
    fn_emb = lk.as_embedder(_features)
    assert isinstance(fn_emb, lk.CallableEmbedder) and isinstance(fn_emb, lk.Embedder)
    assert lk.as_embedder(fn_emb) is fn_emb
    assert isinstance(lk.as_embedder(FakeSentenceTransformer()), lk.SentenceTransformerEmbedder)
    with pytest.raises(TypeError, match="server address.*OpenAIEmbedder"):
        lk.as_embedder("http://localhost:8000/v1")
    with pytest.raises(TypeError, match="cannot embed with a int"):
        lk.as_embedder(3)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        lk.as_embedder("/no/such/model")


def test_callable_embedder(tmp_path):
    texts = ["a cat", "banana bread", "a cat", "x"]
    emb = lk.CallableEmbedder(_features, batch_size=2)
    out = emb.embed(texts)
    np.testing.assert_array_equal(out, _features(texts).astype(np.float32))
    assert out.dtype == np.float32 and emb.dim == 3 and emb.embed([]).shape == (0, 3)
    assert emb.cache_key == lk.CallableEmbedder(_features).cache_key  # stable across instances
    with pytest.raises(ValueError, match="returned an array of shape"):
        lk.CallableEmbedder(lambda t: np.zeros((len(t) + 1, 2))).embed(["a"])
    with pytest.raises(ValueError, match="2-dimensional embeddings; expected 5"):
        lk.CallableEmbedder(lambda t: np.zeros((len(t), 2)), dim=5).embed(["a"])
    with pytest.raises(ValueError, match="NaN"):
        lk.CallableEmbedder(lambda t: np.full((len(t), 2), np.nan)).embed(["a"])
    with pytest.raises(ValueError, match="cache_key"):
        lk.CallableEmbedder(_features, cache_dir=tmp_path)
    seen = []

    def counting(batch):
        seen.extend(batch)
        return _features(batch)

    cached = lk.CallableEmbedder(counting, cache_key="features-v1", cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.embed(texts), out)
    np.testing.assert_array_equal(lk.CallableEmbedder(counting, cache_key="features-v1", cache_dir=tmp_path)
                                  .embed(texts[::-1]), out[::-1])
    assert sorted(seen) == sorted(set(texts))  # each distinct text computed once, then read from disk


def test_sentence_transformer_model_object(tmp_path):
    model = FakeSentenceTransformer()
    emb = lk.SentenceTransformerEmbedder(model, batch_size=7, cache_key="fake-st", cache_dir=tmp_path)
    out = emb.embed(["a cat", "a dog", "a cat"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert model.calls == [(["a cat", "a dog"], 7, True)] and emb.dim == 3
    emb.embed(["a dog"])
    assert len(model.calls) == 1  # from the cache
    with pytest.raises(ValueError, match="cannot tell which model"):
        lk.SentenceTransformerEmbedder(FakeSentenceTransformer(), cache_dir=tmp_path)
    with pytest.raises(TypeError, match="SentenceTransformer"):
        lk.SentenceTransformerEmbedder(_features)


def test_evaluate_takes_any_embedder():
    syn = lk.datasets.synthetic(n_pairs=300, n_users=3, n_features=8, seed=2)
    table = {i: v for i, v in enumerate(list(syn.response_a) + list(syn.response_b))}
    lookup = {t: np.concatenate([syn.embeddings_a, syn.embeddings_b])[i] for i, t in table.items()}
    text_only = lk.datasets.PreferenceDataset(syn.prompt, syn.response_a, syn.response_b, syn.label, syn.user_id)
    config = lk.EvalConfig(progress=False, epochs=2, n_features=16, k=2, matryoshka=None, threads=1)
    report = lk.evaluate(text_only, embedder=lambda texts: np.stack([lookup[t] for t in texts]), config=config)
    assert report.results["prediction"]["dense"]["auc"]["value"] > 0.6


def test_cache_layout_and_damage(tmp_path):
    cache = EmbeddingCache(tmp_path, "ns")
    key = cache.key("hello")
    assert cache.get(key) is None
    cache.put(key, np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(cache.get(key), [0, 1, 2])
    assert cache.path(key) == os.path.join(str(tmp_path), "ns", key[:2], key + ".f32")
    with open(cache.path(key), "wb") as fh:
        fh.write(b"abc")
    assert cache.get(key) is None

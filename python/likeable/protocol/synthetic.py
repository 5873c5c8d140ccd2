"""Synthetic data with a known answer: planted directions, attribute strengths, users' tastes.

The one generator of the project. The protocol's synthetic default (:func:`synthetic`), the
session simulation's fresh candidates and hidden users (:func:`synthetic_candidates`,
:func:`simulated_user_weights`) and the encoder demo's and benchmarks' planted sparse
mixtures (:func:`planted_embeddings`) are all drawn from the same four primitives:
:func:`random_directions`, :func:`attribute_strengths`, :func:`embed_attributes` and
:func:`user_tastes`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .._validation import check_positive_int

__all__ = ["synthetic", "synthetic_candidates", "simulated_user_weights", "planted_embeddings",
           "random_directions", "attribute_strengths", "embed_attributes", "user_tastes",
           "ATTRIBUTE_NAMES", "ATTRIBUTE_WORDS", "SESSION_DIMENSIONS"]

# The seven dimensions of the multi-session simulation come first so a synthetic dataset
# with n_features >= 7 plants all of them.
SESSION_DIMENSIONS = ("emotional tone", "formality", "knowledge level", "reference to earlier turns",
                      "length", "humour", "callbacks")
ATTRIBUTE_NAMES = SESSION_DIMENSIONS + (
    "hedging", "lists", "code", "politeness", "empathy", "examples", "safety warnings",
    "questions back", "citations", "enthusiasm", "brevity", "jargon", "storytelling",
    "step by step", "refusal")
# Words a synthetic response carries when it has an attribute: the offline describer can
# then name planted features from text alone.
ATTRIBUTE_WORDS = {
    "emotional tone": ("feel", "heart", "warmly"), "formality": ("furthermore", "regards", "hereby"),
    "knowledge level": ("theorem", "mechanism", "empirical"),
    "reference to earlier turns": ("earlier", "previously", "mentioned"),
    "length": ("additionally", "moreover", "elaborate"), "humour": ("joke", "funny", "laugh"),
    "callbacks": ("remember", "callback", "again"), "hedging": ("perhaps", "might", "possibly"),
    "lists": ("first", "second", "third"), "code": ("function", "return", "variable"),
    "politeness": ("please", "thank", "kindly"), "empathy": ("understand", "sorry", "hear"),
    "examples": ("example", "instance", "suppose"), "safety warnings": ("careful", "danger", "warning"),
    "questions back": ("what", "which", "clarify"), "citations": ("source", "according", "study"),
    "enthusiasm": ("great", "awesome", "love"), "brevity": ("short", "brief", "quick"),
    "jargon": ("synergy", "leverage", "paradigm"), "storytelling": ("once", "story", "journey"),
    "step by step": ("step", "then", "next"), "refusal": ("cannot", "unable", "decline"),
}
_FILLER = ("the", "a", "answer", "response", "topic", "this", "that", "is", "and", "of", "to", "it",
           "can", "be", "about", "here", "some", "you", "we", "there")


# --------------------------------------------------------------------------------------
# Primitives
# --------------------------------------------------------------------------------------
def random_directions(n: int, dim: int, rng: np.random.Generator, orthonormal: bool = True) -> np.ndarray:
    """``n`` unit directions in ``dim`` dimensions, float32 (n, dim).

    Orthonormal (needs ``dim >= n``) or independent random unit vectors.
    """
    if orthonormal:
        return np.linalg.qr(rng.standard_normal((dim, n)))[0].T.astype(np.float32)
    directions = rng.standard_normal((n, dim)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions


def attribute_strengths(n: int, n_attributes: int, rng: np.random.Generator, density: float = 0.15,
                        n_active: int | None = None, low: float = 0.5, high: float = 1.5) -> np.ndarray:
    """Sparse non-negative strengths, float32 (n, n_attributes), each non-zero ~ U(low, high).

    Each attribute is present with chance ``density``, or (``n_active`` given) exactly
    ``n_active`` distinct attributes per row are.
    """
    if n_active is None:
        present = rng.random((n, n_attributes)) < density
        return (present * rng.uniform(low, high, (n, n_attributes))).astype(np.float32)
    # Distinct attributes per row by ranking random keys (vectorised sampling without replacement).
    chosen = np.argpartition(rng.random((n, n_attributes)), n_active - 1, axis=1)[:, :n_active]
    strengths = np.zeros((n, n_attributes), np.float32)
    np.put_along_axis(strengths, chosen, rng.uniform(low, high, (n, n_active)).astype(np.float32), axis=1)
    return strengths


def embed_attributes(strengths: np.ndarray, directions: np.ndarray, noise: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Embeddings ``strengths @ directions`` plus Gaussian noise of scale ``noise``, float32."""
    out = strengths @ directions
    out += noise * rng.standard_normal(out.shape).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


def user_tastes(n_users: int, n_dims: int, rng: np.random.Generator, mean_scale: float = 1.0,
                spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hidden weights: a shared mean ~ N(0, mean_scale²) plus personal deviations of scale ``spread``.

    Returns ``(mean (n_dims,), weights (n_users, n_dims))``, float64.
    """
    mean = rng.normal(0.0, mean_scale, n_dims)
    return mean, mean + spread * rng.standard_normal((n_users, n_dims))


# --------------------------------------------------------------------------------------
# What the protocol, the simulation and the demos draw
# --------------------------------------------------------------------------------------
def synthetic(n_pairs: int = 4000, n_users: int = 20, n_features: int = 12, seed: int = 0, *,
              dim: int = 64, noise: float = 0.05, attribute_density: float = 0.15,
              user_spread: float = 1.5, label_scale: float = 3.0, n_varying: int | None = None):
    """Embedded preference pairs with planted interpretable directions and known users.

    Each response has sparse non-negative attribute strengths over ``n_features`` named
    attributes (the seven session dimensions first); its embedding is the attribute
    strengths times orthonormal planted directions, plus Gaussian noise. Each simulated user
    has weights over the attributes: a shared population taste plus, on the first
    ``n_varying`` attributes, a personal deviation of scale ``user_spread`` (on the others
    everyone agrees). Pair labels are Bernoulli(sigmoid(label_scale * w_user · (a_A − a_B))),
    so no metric needs an embedder and every one has a ground truth.

    Parameters
    ----------
    n_pairs, n_users, n_features : int
    seed : int
    dim : int
        Embedding width (>= n_features so directions are orthonormal).
    noise : float
        Standard deviation of the per-coordinate embedding noise.
    attribute_density : float
        Chance that a response carries a given attribute.
    user_spread : float
        Scale of each user's deviation from the population weights.
    label_scale : float
        Sharpness of the simulated choices.
    n_varying : int, optional
        Attributes on which users differ (default: the seven session dimensions, or all
        attributes when there are no more than seven).

    Returns
    -------
    PreferenceDataset
        With ``embeddings_a/b`` and ``truth`` (``directions``, ``attribute_names``,
        ``attributes_a/b``, ``user_weights``, ``user_names``, ``population_weights``,
        ``varying`` (bool per attribute: users differ on it), ``length_a/b``, ``label_scale``).
    """
    # datasets re-exports this module's public names, so it is imported here, not at the top.
    from .datasets import PreferenceDataset

    n_pairs = check_positive_int(n_pairs, "n_pairs")
    n_users = check_positive_int(n_users, "n_users")
    n_features = check_positive_int(n_features, "n_features")
    if n_features > len(ATTRIBUTE_NAMES):
        raise ValueError(f"n_features must be at most {len(ATTRIBUTE_NAMES)} (named attributes), got {n_features}")
    if dim < n_features:
        raise ValueError(f"dim={dim} must be >= n_features={n_features}")
    rng = np.random.default_rng(seed)
    names = list(ATTRIBUTE_NAMES[:n_features])
    directions = random_directions(n_features, dim, rng)
    attrs_a = attribute_strengths(n_pairs, n_features, rng, attribute_density)
    attrs_b = attribute_strengths(n_pairs, n_features, rng, attribute_density)
    emb_a = embed_attributes(attrs_a, directions, noise, rng)
    emb_b = embed_attributes(attrs_b, directions, noise, rng)
    population, user_weights = user_tastes(n_users, n_features, rng, spread=user_spread)
    n_varying = len(SESSION_DIMENSIONS) if n_varying is None and n_features > len(SESSION_DIMENSIONS) else n_varying
    varying = np.arange(n_features) < (n_features if n_varying is None else n_varying)
    user_weights[:, ~varying] = population[~varying]  # everyone agrees on these
    user_names = np.asarray([f"user{u:03d}" for u in range(n_users)], dtype=object)
    user_index = rng.integers(0, n_users, n_pairs)
    margin = label_scale * np.einsum("ij,ij->i", user_weights[user_index], attrs_a - attrs_b)
    label = (rng.random(n_pairs) < 1.0 / (1.0 + np.exp(-margin))).astype(np.float32)
    text_a, len_a = _texts(attrs_a, names, rng)
    text_b, len_b = _texts(attrs_b, names, rng)
    n_prompts = max(1, n_pairs // 2)  # about two pairs share each prompt
    prompt_ids = rng.integers(0, n_prompts, n_pairs)
    prompts = [f"synthetic prompt {p}" for p in prompt_ids]
    truth = {"directions": directions, "attribute_names": names, "attributes_a": attrs_a,
             "attributes_b": attrs_b, "user_weights": user_weights, "user_names": list(user_names),
             "population_weights": population, "varying": varying, "length_a": len_a, "length_b": len_b,
             "label_scale": label_scale, "noise": noise, "attribute_density": attribute_density}
    return PreferenceDataset(prompts, text_a, text_b, label, user_id=user_names[user_index],
                             embeddings_a=emb_a, embeddings_b=emb_b, truth=truth,
                             source=f"synthetic(n_pairs={n_pairs}, n_users={n_users}, "
                                    f"n_features={n_features}, seed={seed})")


def _texts(attrs: np.ndarray, names: list, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """Words stand in for text: a response mentions its attributes' words, so describers and
    the length control work as on real data. Returns (texts, lengths in words)."""
    length_col = names.index("length") if "length" in names else None
    out, lengths = [], np.empty(len(attrs), np.float32)
    for i, row in enumerate(attrs):
        words = list(rng.choice(_FILLER, 6))
        for j in np.flatnonzero(row):
            vocab = ATTRIBUTE_WORDS[names[j]]
            words.extend(vocab[k % len(vocab)] for k in range(int(round(2 * row[j]))))
        if length_col is not None:
            words.extend(rng.choice(_FILLER, int(round(8 * row[length_col]))))
        rng.shuffle(words)
        out.append(" ".join(words))
        lengths[i] = len(words)
    return out, lengths


def synthetic_candidates(truth: Mapping, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh responses drawn like :func:`synthetic`'s: (attributes, embeddings)."""
    directions = truth["directions"]
    attrs = attribute_strengths(n, directions.shape[0], rng, truth["attribute_density"])
    return attrs, embed_attributes(attrs, directions, truth["noise"], rng)


def simulated_user_weights(n_users: int, seed: int = 0, spread: float = 1.0) -> np.ndarray:
    """Hidden tastes over the seven session dimensions: a shared mean plus personal deviations."""
    _, weights = user_tastes(n_users, len(SESSION_DIMENSIONS), np.random.default_rng(seed), 0.5, spread)
    return weights


def planted_embeddings(n_rows: int, n_dims: int, n_planted: int, active: int, noise: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that are sparse positive mixtures of ``n_planted`` random unit directions.

    Each row mixes exactly ``active`` distinct directions with weights ~ U(0.5, 2.0), plus
    Gaussian noise. Returns ``(X, directions)``: X (n_rows x n_dims) float32, directions
    (n_planted x n_dims).
    """
    rng = np.random.default_rng(seed)
    directions = random_directions(n_planted, n_dims, rng, orthonormal=False)
    strengths = attribute_strengths(n_rows, n_planted, rng, n_active=active, low=0.5, high=2.0)
    return embed_attributes(strengths, directions, noise, rng), directions

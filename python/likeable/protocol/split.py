"""Train / validation / test splits that never put one prompt or conversation on two sides."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["group_components", "split_by_components", "distinct_pairs"]


def group_components(*groupings: Sequence | None) -> np.ndarray:
    """Connected-component id of every pair, linking pairs that share any group key.

    Each grouping (prompts, conversation ids, ...) assigns every pair a key; two pairs are
    linked when they share a key in any grouping, and linking is transitive.

    Returns
    -------
    ndarray of int64, shape (n_pairs,)
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    groupings = [g for g in groupings if g is not None]
    if not groupings:
        raise ValueError("give at least one grouping (prompts or conversation ids)")
    n = len(groupings[0])
    if any(len(g) != n for g in groupings):
        raise ValueError(f"groupings have different lengths: {[len(g) for g in groupings]}")
    if n == 0:
        return np.zeros(0, np.int64)
    # Bipartite graph pairs <-> keys; components of it are the components of pairs.
    cols, offset = [], 0
    for g in groupings:
        # A dict factorises long prompt strings without copying them into fixed-width arrays.
        ids: dict = {}
        inverse = np.fromiter((ids.setdefault(str(key), len(ids)) for key in g), np.int64, n)
        cols.append(inverse + n + offset)
        offset += len(ids)
    rows = np.tile(np.arange(n), len(groupings))
    cols = np.concatenate(cols)
    size = n + offset
    graph = sp.coo_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(size, size)).tocsr()
    _, labels = connected_components(graph, directed=False)
    _, component = np.unique(labels[:n], return_inverse=True)
    return component.astype(np.int64)


def split_by_components(components: np.ndarray, fractions: Sequence[float] = (0.7, 0.1, 0.2),
                        seed: int = 0) -> tuple[np.ndarray, ...]:
    """Row ids of each part, assigning whole components so no key crosses parts.

    Components are shuffled and assigned greedily to the part furthest below its target
    size, so part sizes come within one component of ``fractions``.

    Parameters
    ----------
    components : ndarray of int, shape (n_pairs,)
        From :func:`group_components`.
    fractions : sequence of float
        Target share of pairs in each part (normalised to sum to one).
    seed : int

    Returns
    -------
    tuple of ndarray of int64, one per fraction
    """
    components = np.asarray(components)
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or fractions.size == 0 or (fractions < 0).any() or fractions.sum() <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    n = components.shape[0]
    ids, sizes = np.unique(components, return_counts=True)
    order = np.random.default_rng(seed).permutation(ids.size)
    targets = fractions * n
    filled = np.zeros(fractions.size)
    part_of = np.empty(ids.size, np.int64)
    for c in order:  # loop over components (not pairs); cheap relative to embedding
        part = int(np.argmax(targets - filled))
        part_of[c] = part
        filled[part] += sizes[c]
    _, inverse = np.unique(components, return_inverse=True)
    pair_part = part_of[inverse.ravel()]
    return tuple(np.flatnonzero(pair_part == p).astype(np.int64) for p in range(fractions.size))


def distinct_pairs(dataset) -> np.ndarray:
    """Id of each pair's texts: pairs with the same prompt and the same two responses (in either
    order) share one id, e.g. one pair judged by several annotators. Pairs without response
    texts (embeddings only) are each their own. int64 (n_pairs,), ids 0..D-1 in order of first
    appearance."""
    ids: dict = {}
    keys = ((p, *sorted((a, b))) if (a or b) else row
            for row, (p, a, b) in enumerate(zip(dataset.prompt, dataset.response_a, dataset.response_b)))
    return np.fromiter((ids.setdefault(key, len(ids)) for key in keys), np.int64, len(dataset))

"""The BatchTopK inference threshold that keeps a given mean number of features per row."""
from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from .sparse import SparseCodes


def calibrated_threshold(encode_topk: Callable[[int], SparseCodes], n_rows: int, n_features: int, l0: float,
                         signed: bool) -> float:
    """The threshold under which rows keep ``l0`` features on average (``l0·n`` in all).

    It is the ``(l0·n + 1)``-th largest key (the pre-activation, or its magnitude when
    ``signed``) over all rows, read from the core's top-k codes (``encode_topk(k)``); k
    starts at ``2·l0`` and doubles until no row's top k could hide another key above the
    threshold (a full row whose smallest kept key beats it), so the result is exact. 0 when
    fewer than ``l0·n`` keys are positive (then every positive key fires).

    Training keeps the ``k·batch`` largest keys of each batch and tracks their cut-off with a
    running average; early stopping ends training before that average settles, so encoding
    with it kept 1.5–3× k features per row.
    """
    if isinstance(l0, bool) or not (isinstance(l0, numbers.Real) and 0 < l0 <= n_features):
        raise ValueError(f"l0 must be in (0, n_features={n_features}], got {l0!r}")
    target = int(round(l0 * n_rows))
    k = min(n_features, max(1, 2 * math.ceil(l0)))
    while True:
        codes = encode_topk(k)
        keys = np.abs(codes.values) if signed else codes.values  # top-k keeps keys > 0 only
        if keys.size > target:
            threshold = float(np.partition(keys, keys.size - target - 1)[keys.size - target - 1])
        else:
            threshold = 0.0
        full = np.flatnonzero(np.diff(codes.indptr) == k)
        if k == n_features or not full.size:
            return threshold
        smallest = keys[codes.indptr[full][:, None] + np.arange(k)].min(axis=1)
        if not (smallest > threshold).any():
            return threshold
        k = min(n_features, 2 * k)

"""The ``likeable`` command line: ``likeable demo`` runs the main job on synthetic data."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

import numpy as np


def planted_embeddings(n_rows: int, n_dims: int, n_planted: int, active: int, noise: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that are sparse positive mixtures of ``n_planted`` random unit directions.

    Returns ``(X, directions)``: X (n_rows x n_dims) float32, directions (n_planted x n_dims).
    """
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((n_planted, n_dims)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    # `active` distinct directions per row, drawn by ranking random keys (vectorised sampling).
    chosen = np.argpartition(rng.random((n_rows, n_planted)), active - 1, axis=1)[:, :active]
    weights = rng.uniform(0.5, 2.0, (n_rows, active)).astype(np.float32)
    X = np.einsum("ra,rad->rd", weights, directions[chosen])
    X += noise * rng.standard_normal((n_rows, n_dims)).astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32), directions


def _encoder_demo(*, n_rows: int = 20000, n_dims: int = 64, n_planted: int = 128,
                  n_features: int = 256, k: int = 4, epochs: int = 40, lr: float = 1e-2,
                  seed: int = 0, threads: int | None = None, progress: bool = True,
                  out: Callable[[str], None] = print) -> dict:
    """Train the encoder on planted sparse directions; report recovery and encode throughput."""
    from .encoder import SparseEncoder

    X, directions = planted_embeddings(n_rows, n_dims, n_planted, min(k, n_planted), 0.02, seed)
    out(f"synthetic embeddings: {n_rows} rows x {n_dims} dims, {n_planted} planted directions, "
        f"{min(k, n_planted)} active per row")
    enc = SparseEncoder(n_features=n_features, k=k, seed=seed, threads=threads)
    start = time.perf_counter()
    enc.fit(X, epochs=epochs, lr=lr, patience=3, progress=progress)
    fit_s = time.perf_counter() - start
    cosine = np.abs(enc.W_dec @ directions.T).max(axis=0)  # best decoder row per planted direction
    recovered = int((cosine > 0.9).sum())
    stats = enc.stats(X)
    start = time.perf_counter()
    enc.encode(X)
    encode_s = time.perf_counter() - start
    rows_per_s = n_rows / max(encode_s, 1e-9)
    out(f"trained {enc!r} in {fit_s:.2f} s ({len(enc.history_)} epochs)")
    out(f"recovered {recovered} of {n_planted} planted directions (cosine > 0.9)")
    out(f"normalized MSE {stats.normalized_mse:.4f}, dead features {stats.dead_fraction:.1%}, "
        f"mean active {stats.mean_active:.2f}")
    out(f"encode throughput: {rows_per_s:,.0f} rows/s ({encode_s * 1e3:.1f} ms for {n_rows} rows, "
        f"{enc._threads(threads)} threads)")
    return {"recovered": recovered, "n_planted": n_planted, "normalized_mse": stats.normalized_mse,
            "fit_seconds": fit_s, "encode_rows_per_second": rows_per_s}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="likeable", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the encoder on synthetic planted directions and report")
    demo.add_argument("--rows", type=_positive_int, default=20000, help="synthetic rows")
    demo.add_argument("--dims", type=_positive_int, default=64, help="embedding width d")
    demo.add_argument("--planted", type=_positive_int, default=128, help="planted directions")
    demo.add_argument("--features", type=_positive_int, default=256, help="encoder features M")
    demo.add_argument("--k", type=_positive_int, default=4, help="active features per row")
    demo.add_argument("--epochs", type=_positive_int, default=40)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=_positive_int, default=None,
                      help="threads (default: LIKEABLE_NUM_THREADS or all cores)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        if args.k > args.features:
            print(f"likeable demo: --k {args.k} exceeds --features {args.features}", file=sys.stderr)
            return 2
        _encoder_demo(n_rows=args.rows, n_dims=args.dims, n_planted=args.planted,
                      n_features=args.features, k=args.k, epochs=args.epochs, seed=args.seed,
                      threads=args.threads, progress=not args.no_progress)
    return 0


if __name__ == "__main__":  # python -m likeable.cli
    sys.exit(main())

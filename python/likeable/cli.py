"""The ``likeable`` command: ``demo`` (the whole protocol on synthetic data), ``analyze`` and ``bench``."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Sequence

import numpy as np

__all__ = ["main"]


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


def _write_report(report, out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "report.json")
    html_path = os.path.join(out_dir, "report.html")
    report.to_json(json_path)
    report.to_html(html_path)
    return json_path, html_path


def _summary(report) -> str:
    r = report.results
    lines = [f"encoder: normalized MSE {r['encoder']['normalized_mse']:.3f}, "
             f"dead {r['encoder']['dead_fraction']:.2f}, mean active {r['encoder']['mean_active']:.2f}"]
    for name, p in r["prediction"].items():
        a = p["auc"]
        fos = r["fraction_of_signal"].get(name)
        lines.append(f"  {name:>13}: AUC {_f(a['value'])} [{_f(a['low'])}, {_f(a['high'])}]"
                     f"  fraction of dense signal {_f(fos)}")
    if "personalization" in r:
        p = r["personalization"]
        lines.append("personalization (mean per-user held-out AUC): "
                     + ", ".join(f"{k} {_f(p[k])}" for k in ("population_auc", "per_user_auc", "shrunk_auc",
                                                             "drift_auc")))
    if "recovery" in r:
        lines.append(f"planted directions: mean best |corr| {_f(r['recovery']['mean_best_correlation'])}")
    if "personalization" in r and "weight_recovery" in r["personalization"]:
        lines.append(f"planted user weights: mean correlation "
                     f"{_f(r['personalization']['weight_recovery']['mean_user_correlation'])}")
    if "sessions" in r:
        lik = r["sessions"]["likability"]
        lines.append("likability by session (share of oracle): "
                     + "; ".join(f"{k} " + " ".join(_f(v) for v in vals) for k, vals in lik.items() if k != "oracle"))
    if "recovery" in r and "directions_recovered" in r["recovery"]:
        rec = r["recovery"]
        lines.append(f"recovered {rec['directions_recovered']} of {rec['n_planted']} planted directions "
                     f"(cosine > 0.9)")
    if "encode_rows_per_s" in r["encoder"]:
        lines.append(f"encode throughput: {r['encoder']['encode_rows_per_s']:,.0f} rows/s")
    lines.append(f"wall time {r['timings_s']['total']:.1f} s ({r['seconds_per_10k_pairs']:.1f} s per 10k pairs)")
    return "\n".join(lines)


def _f(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _cmd_demo(args) -> int:
    from .protocol import datasets
    from .protocol.evaluate import EvalConfig, evaluate

    if args.k > args.features:
        raise ValueError(f"--k {args.k} exceeds --features {args.features}")
    if args.encoder_only:
        _encoder_demo(n_rows=args.rows, n_dims=args.dims, n_planted=args.planted, n_features=args.features,
                      k=args.k, epochs=args.epochs, seed=args.seed, threads=args.threads,
                      progress=not args.quiet)
        return 0
    ds = datasets.synthetic(n_pairs=args.rows, n_users=args.users, n_features=args.planted, seed=args.seed,
                            dim=max(args.dims, args.planted))
    matryoshka = (8, args.features) if args.features > 8 else None
    config = EvalConfig(seed=args.seed, progress=not args.quiet, threads=args.threads, epochs=args.epochs,
                        n_features=args.features, k=args.k, matryoshka=matryoshka,
                        sessions=args.planted >= len(datasets.SESSION_DIMENSIONS))
    report = evaluate(ds, config=config)
    json_path, html_path = _write_report(report, args.out)
    print(_summary(report))
    print(f"wrote {json_path} and {html_path}")
    return 0


def _parse_pairs(text: str | None, flag: str, pair: str, example: str) -> dict | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{flag} expects {pair} pairs separated by commas, e.g. {flag} {example}; "
                             f"got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _parse_columns(text: str | None) -> dict | None:
    return _parse_pairs(text, "--columns", "field=column", "prompt=question,label=pref")


def default_cache_dir() -> str:
    """Where the CLI keeps embeddings and LLM answers: the user's cache folder (platformdirs)."""
    from platformdirs import user_cache_dir

    return user_cache_dir("likeable", appauthor=False)


def _embedder(args, cache: str | None):
    """The --embedder: a model folder or .onnx file, or an OpenAI-compatible server URL."""
    if args.embedder.startswith(("http://", "https://")):
        if not args.embedding_model:
            raise ValueError(f"--embedder {args.embedder} is a server: name its model with --embedding-model NAME")
        from .protocol.embed_http import OpenAIEmbedder

        return OpenAIEmbedder(args.embedding_model, base_url=args.embedder, cache_dir=cache, progress=not args.quiet)
    from .protocol.embed import OnnxEmbedder

    return OnnxEmbedder(args.embedder, cache_dir=cache, progress=not args.quiet, threads=args.threads)


def _cmd_analyze(args) -> int:
    from .protocol import datasets
    from .protocol.evaluate import EvalConfig, evaluate

    if args.k > args.features:
        raise ValueError(f"--k {args.k} exceeds --features {args.features}")
    labels = _parse_pairs(args.labels, "--labels", "value=label", "good=1,bad=0")
    ds = datasets.load(args.data, format=args.format, columns=_parse_columns(args.columns), labels=labels)
    cache = None if args.no_cache else args.cache
    embedder = None
    if not ds.has_embeddings:
        if not args.embedder:
            raise ValueError(f"{args.data} has no embedding_a/embedding_b columns: pass --embedder MODEL_DIR "
                             "(an ONNX model folder) or --embedder URL --embedding-model NAME (a served model)")
        embedder = _embedder(args, os.path.join(cache, "embeddings") if cache else None)
    describer = None
    if args.llm_model:
        from .protocol.describe import ChatDescriber

        describer = ChatDescriber(model=args.llm_model, base_url=args.llm_base_url,
                                  cache_dir=os.path.join(cache, "llm") if cache else None)
    config = EvalConfig(seed=args.seed, progress=not args.quiet, threads=args.threads, describer=describer,
                        n_features=args.features, k=args.k, epochs=args.epochs,
                        matryoshka=None if args.features <= 8 else (8, args.features))
    report = evaluate(ds, embedder=embedder, config=config)
    json_path, html_path = _write_report(report, args.out)
    print(_summary(report))
    print(f"wrote {json_path} and {html_path}")
    return 0


def kernel_table(n_rows: int = 20000, dim: int = 384, n_features: int = 4096, k: int = 32,
                 n_queries: int = 1000, n_users: int = 1000, threads: int | None = None,
                 gpu: bool = False, seed: int = 0) -> list[dict]:
    """Throughput of the core kernels on this machine (random weights and data of the given sizes).

    encode: rows/s and GFLOP/s of the encoder GEMM (2·n·d·M flops); search: queries/s and GB/s
    of postings read by exact search (8 bytes per posting of each query feature); score:
    user-item scores/s and GB/s of user weights streamed (4 bytes per weight per item nnz).
    """
    from .encoder import SparseEncoder
    from .index import SparseIndex
    from .preferences import PreferenceModel, UserPreferences

    rng = np.random.default_rng(seed)
    W_dec = rng.standard_normal((n_features, dim)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    enc = SparseEncoder.from_weights(np.ascontiguousarray(W_dec.T), np.zeros(n_features, np.float32), W_dec,
                                     np.zeros(dim, np.float32), k=k, signed=True, threads=threads)
    X = rng.standard_normal((n_rows, dim)).astype(np.float32)
    rows = []

    def best_of(fn, repeat=3):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return min(times), out

    t, codes = best_of(lambda: enc.encode(X))
    rows.append({"kernel": f"encode (d={dim}, M={n_features}, k={k})", "rows_per_s": n_rows / t,
                 "throughput": f"{2.0 * n_rows * dim * n_features / t / 1e9:.1f} GFLOP/s"})
    index = SparseIndex(codes, approximate=False, threads=threads)
    queries = codes[np.arange(min(n_queries, n_rows))]
    t, _ = best_of(lambda: index.search(queries, k=10))
    posting_len = np.bincount(codes.indices, minlength=n_features)
    touched = float(posting_len[queries.indices].sum()) * 8.0
    rows.append({"kernel": f"search exact (n={n_rows}, k=10)", "rows_per_s": len(queries) / t,
                 "throughput": f"{touched / t / 1e9:.2f} GB/s"})
    labels = (rng.random(n_rows) < 0.5).astype(np.float32)
    user_ids = rng.integers(0, n_users, n_rows).astype(str)
    prefs = UserPreferences(population=PreferenceModel(l2=1.0), shrinkage=3.0, threads=threads).fit(
        codes, labels, user_ids)
    users = list(np.unique(user_ids))
    t, _ = best_of(lambda: prefs.score(users, codes))
    rows.append({"kernel": f"score ({len(users)} users x {n_rows} items)", "rows_per_s": len(users) * n_rows / t,
                 "throughput": f"{len(users) * codes.nnz * 4.0 / t / 1e9:.2f} GB/s"})
    if gpu:
        rows.extend(_gpu_rows(enc, X, codes, prefs, users, queries, best_of))
    return rows


def _gpu_rows(enc, X, codes, prefs, users, queries, best_of) -> list[dict]:
    """The same kernels on the GPU (inputs already on the device; each timing synchronises)."""
    from . import gpu
    from .index import SparseIndex

    if not gpu.available():
        return [{"kernel": "gpu", "rows_per_s": float("nan"), "throughput": f"skipped: {gpu.unavailable_reason()}"}]
    import cupy as cp

    def synced(fn):
        def run():
            out = fn()
            cp.cuda.get_current_stream().synchronize()
            return out
        return run

    X_dev, codes_dev = cp.asarray(X), gpu.DeviceSparseCodes.from_host(codes)
    n, dim = X.shape
    synced(lambda: enc.encode(X_dev))()  # warm-up: weights to the device, kernels loaded
    t, _ = best_of(synced(lambda: enc.encode(X_dev)))
    name = gpu.device_info()["name"]
    out = [{"kernel": f"gpu encode ({name})", "rows_per_s": n / t,
            "throughput": f"{2.0 * n * dim * enc.n_features / t / 1e12:.2f} TFLOP/s"}]
    index = SparseIndex(codes, approximate=False)
    q_dev = cp.asarray(queries.to_dense())
    synced(lambda: index.search(q_dev, k=10))()
    t, _ = best_of(synced(lambda: index.search(q_dev, k=10)))
    out.append({"kernel": "gpu search exact", "rows_per_s": q_dev.shape[0] / t,
                "throughput": f"{q_dev.shape[0] * codes.nnz * 4.0 / t / 1e9:.1f} GB/s"})
    synced(lambda: prefs.score(users, codes_dev))()
    t, _ = best_of(synced(lambda: prefs.score(users, codes_dev)))
    out.append({"kernel": "gpu score", "rows_per_s": len(users) * n / t,
                "throughput": f"{len(users) * codes.nnz * 4.0 / t / 1e9:.1f} GB/s"})
    return out


def _cmd_bench(args) -> int:
    rows = kernel_table(n_rows=args.rows, gpu=args.gpu, threads=args.threads)
    print(f"machine: {os.cpu_count()} cores, threads={args.threads or 'all'}")
    print(f"{'kernel':<28}{'rows/s':>14}{'throughput':>22}")
    for row in rows:
        print(f"{row['kernel']:<28}{row['rows_per_s']:>14,.0f}{row['throughput']:>22}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option (options without one say in words what happens); the data
    schema below the options kept as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from .protocol.datasets import SCHEMA_HELP

    parser = argparse.ArgumentParser(prog="likeable", description=__doc__, formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=_positive_int, default=None,
                        help="threads (default: LIKEABLE_NUM_THREADS or all cores)")
    common.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="hide the progress bars")
    common.add_argument("--seed", type=int, default=0, help="seed of the splits, the encoder and the simulation")

    demo = sub.add_parser("demo", parents=[common], formatter_class=_HelpFormatter,
                          help="run the whole protocol on synthetic data and write likeable-report/")
    demo.add_argument("--out", default="likeable-report", help="output folder")
    demo.add_argument("--rows", type=_positive_int, default=4000, help="synthetic preference pairs")
    demo.add_argument("--users", type=_positive_int, default=20, help="simulated users")
    demo.add_argument("--dims", type=_positive_int, default=64, help="embedding width d")
    demo.add_argument("--planted", type=_positive_int, default=12, help="planted attributes (directions)")
    demo.add_argument("--features", type=_positive_int, default=32, help="encoder features M")
    demo.add_argument("--k", type=_positive_int, default=4, help="active features per pair")
    demo.add_argument("--epochs", type=_positive_int, default=30, help="encoder training epochs")
    demo.add_argument("--encoder-only", action="store_true",
                      help="only train the encoder on planted sparse directions and time encode")
    demo.set_defaults(func=_cmd_demo)

    analyze = sub.add_parser("analyze", parents=[common], formatter_class=_HelpFormatter, epilog=SCHEMA_HELP,
                             help="run the protocol on your preference data",
                             description="Run the protocol on a preference data file and write a report.")
    analyze.add_argument("data", help="JSONL, JSONL.gz, Parquet or CSV file (see 'your data' below)")
    analyze.add_argument("--embedder", default=None,
                         help="ONNX model folder (model.onnx or onnx/model.onnx, tokenizer.json) or .onnx file, "
                              "or the URL of an OpenAI-compatible server (with --embedding-model); "
                              "not needed when the data has embedding_a/embedding_b columns")
    analyze.add_argument("--embedding-model", default=None, help="model name to ask an --embedder URL for")
    analyze.add_argument("--out", default="likeable-report", help="output folder")
    analyze.add_argument("--format", default=None, choices=["jsonl", "parquet", "csv"],
                         help="file format (default: from the file's extension)")
    analyze.add_argument("--columns", default=None, metavar="FIELD=COLUMN,...",
                         help="map canonical fields to your columns, e.g. prompt=question,label=pref")
    analyze.add_argument("--labels", default=None, metavar="VALUE=LABEL,...",
                         help="map your label values to 1 (A chosen), 0 (B chosen) or 0.5 (tie), e.g. good=1,bad=0")
    analyze.add_argument("--cache", default=default_cache_dir(), metavar="DIR",
                         help="cache of embeddings and LLM answers")
    analyze.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    analyze.add_argument("--features", type=_positive_int, default=32, help="encoder dictionary size M")
    analyze.add_argument("--k", type=_positive_int, default=4, help="active features per pair")
    analyze.add_argument("--epochs", type=_positive_int, default=30, help="encoder training epochs")
    analyze.add_argument("--llm-model", default=None, help="describe features with this chat model")
    analyze.add_argument("--llm-base-url", default=None,
                         help="OpenAI-compatible endpoint (default: LIKEABLE_LLM_BASE_URL, OPENAI_BASE_URL or OpenAI's)")
    analyze.set_defaults(func=_cmd_analyze)

    bench = sub.add_parser("bench", parents=[common], formatter_class=_HelpFormatter,
                           help="kernel throughput on this machine")
    bench.add_argument("--gpu", action="store_true", help="also time the GPU kernels when available")
    bench.add_argument("--rows", type=_positive_int, default=20000, help="rows encoded, indexed and scored")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cache", None) == "":  # the earlier way to turn the cache off
        args.no_cache = True
    try:
        return args.func(args)
    except (FileNotFoundError, IsADirectoryError, ValueError, TypeError, ConnectionError, RuntimeError) as exc:
        # the command line's words where the error has them (--columns label=COL, not columns={...})
        message = getattr(exc, "cli_message", None) or str(exc)
        print(f"likeable {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

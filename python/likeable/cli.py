"""The ``likeable`` command: ``demo`` (the whole protocol on synthetic data), ``analyze`` and ``bench``.

Argument parsing and calls only: the protocol, the report and the measurements live in
:mod:`likeable.protocol`.
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _matryoshka(n_features: int) -> tuple | None:
    return (8, n_features) if n_features > 8 else None


def _write_report(report, out_dir: str) -> int:
    """report.json and report.html into ``out_dir``; prints the summary."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "report.json")
    html_path = os.path.join(out_dir, "report.html")
    report.to_json(json_path)
    report.to_html(html_path)
    print(report.summary())
    print(f"wrote {json_path} and {html_path}")
    return 0


def _cmd_demo(args) -> int:
    from .protocol import datasets
    from .protocol.evaluate import EvalConfig, evaluate

    if args.k > args.features:
        raise ValueError(f"--k {args.k} exceeds --features {args.features}")
    if args.encoder_only:
        from .protocol.bench import encoder_demo

        encoder_demo(n_rows=args.rows, n_dims=args.dims, n_planted=args.planted, n_features=args.features,
                     k=args.k, epochs=args.epochs, seed=args.seed, threads=args.threads, progress=not args.quiet)
        return 0
    ds = datasets.synthetic(n_pairs=args.rows, n_users=args.users, n_features=args.planted, seed=args.seed,
                            dim=max(args.dims, args.planted))
    config = EvalConfig(seed=args.seed, progress=not args.quiet, threads=args.threads, epochs=args.epochs,
                        n_features=args.features, k=args.k, matryoshka=_matryoshka(args.features),
                        sessions=args.planted >= len(datasets.SESSION_DIMENSIONS))
    return _write_report(evaluate(ds, config=config), args.out)


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
                        n_features=args.features, k=args.k, epochs=args.epochs, matryoshka=_matryoshka(args.features))
    return _write_report(evaluate(ds, embedder=embedder, config=config), args.out)


def _cmd_bench(args) -> int:
    from .protocol.bench import format_kernel_table, kernel_table

    print(format_kernel_table(kernel_table(n_rows=args.rows, gpu=args.gpu, threads=args.threads), args.threads))
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

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


def _parse_columns(text: str | None) -> dict | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"--columns expects field=column pairs separated by commas, got {part!r}")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _cmd_analyze(args) -> int:
    from .protocol import datasets
    from .protocol.embed import OnnxEmbedder
    from .protocol.evaluate import EvalConfig, evaluate

    ds = datasets.load(args.data, format=args.format, columns=_parse_columns(args.columns))
    embedder = OnnxEmbedder(args.embedder, cache_dir=args.cache, progress=not args.quiet, threads=args.threads)
    describer = None
    if args.llm_model:
        from .protocol.describe import ChatDescriber

        describer = ChatDescriber(model=args.llm_model, base_url=args.llm_base_url,
                                  cache_dir=os.path.join(args.cache, "llm") if args.cache else None)
    config = EvalConfig(seed=args.seed, progress=not args.quiet, threads=args.threads, describer=describer,
                        n_features=args.features, k=args.k, epochs=args.epochs, matryoshka=_matryoshka(args.features))
    return _write_report(evaluate(ds, embedder=embedder, config=config), args.out)


def _cmd_bench(args) -> int:
    from .protocol.bench import format_kernel_table, kernel_table

    print(format_kernel_table(kernel_table(n_rows=args.rows, gpu=args.gpu, threads=args.threads), args.threads))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="likeable", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=_positive_int, default=None,
                        help="threads (default: LIKEABLE_NUM_THREADS or all cores)")
    common.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="hide the progress bars")
    common.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser("demo", parents=[common],
                          help="run the whole protocol on synthetic data and write likeable-report/")
    demo.add_argument("--out", default="likeable-report", help="output folder (default: likeable-report)")
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

    analyze = sub.add_parser("analyze", parents=[common], help="run the protocol on a preference data file")
    analyze.add_argument("data", help="JSONL, JSONL.gz, Parquet or CSV file")
    analyze.add_argument("--embedder", required=True, help="folder with model.onnx and tokenizer.json")
    analyze.add_argument("--out", default="likeable-report")
    analyze.add_argument("--format", default=None, choices=["jsonl", "parquet", "csv"])
    analyze.add_argument("--columns", default=None, help="field=column,... e.g. prompt=question,label=pref")
    analyze.add_argument("--cache", default=".likeable-cache", help="embedding/LLM cache folder ('' to disable)")
    analyze.add_argument("--features", type=int, default=32, help="encoder dictionary size M")
    analyze.add_argument("--k", type=int, default=4, help="active features per pair")
    analyze.add_argument("--epochs", type=int, default=30, help="encoder training epochs")
    analyze.add_argument("--llm-model", default=None, help="describe features with this chat model")
    analyze.add_argument("--llm-base-url", default=None, help="OpenAI-compatible endpoint")
    analyze.set_defaults(func=_cmd_analyze)

    bench = sub.add_parser("bench", parents=[common], help="kernel throughput on this machine")
    bench.add_argument("--gpu", action="store_true", help="also time the GPU kernels when available")
    bench.add_argument("--rows", type=int, default=20000)
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "cache", None) == "":
        args.cache = None
    try:
        return args.func(args)
    except (FileNotFoundError, IsADirectoryError, ValueError) as exc:
        print(f"likeable {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks: pytest-benchmark, each likeable entry beside a named peer in the same group.

Mark the peer with ``benchmark.extra_info["peer"] = "<name>"``; at the end of the run a
table prints every entry's mean time and its speed-up over the group's peer (peer time /
our time), which is the number RESULTS.md records. Run: ``python -m pytest benchmarks/FILE``.
"""
from __future__ import annotations

import platform
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder beside the checkout)")
    return path


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list] = {}
    for bench in session.benchmarks:
        if bench.stats:
            groups.setdefault(bench.group or "", []).append(bench)
    write = terminalreporter.write_line
    write("")
    write(f"speed-ups against the named peer ({platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} cpus)")
    for group, benches in sorted(groups.items()):
        peers = [b for b in benches if b.extra_info.get("peer")]
        write(f"[{group}]")
        for b in sorted(benches, key=lambda b: b.stats.mean):
            line = f"  {b.name:60s} mean {b.stats.mean * 1e3:10.3f} ms"
            if peers and not b.extra_info.get("peer"):
                for p in peers:
                    line += f"   {p.stats.mean / b.stats.mean:6.2f}x vs {p.extra_info['peer']}"
            extra = {k: v for k, v in b.extra_info.items() if k != "peer"}
            if extra:
                line += "   " + ", ".join(f"{k}={v}" for k, v in extra.items())
            write(line)

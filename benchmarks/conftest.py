"""Benchmarks: pytest-benchmark, each likeable entry beside a named peer in the same group.

Mark the peer with ``benchmark.extra_info["peer"] = "<name>"``; at the end of the run a
table prints every entry's mean time and its speed-up over the group's peer (peer time /
our time), which is the number RESULTS.md records. Run: ``python -m pytest benchmarks/FILE``.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder beside the checkout)")
    return path


# Lines of the interleaved comparisons (below), printed at the end of the run.
INTERLEAVED: list[str] = []


def interleaved(contenders: dict, rounds: int = 5, warmup: int = 1) -> dict:
    """Times each contender `rounds` times, alternating them (and reversing the order every other
    round), after `warmup` untimed calls each: on a shared machine, load swings then hit every
    contender alike. Returns {name: [seconds per round]}."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times = {name: [] for name in contenders}
    for r in range(rounds):
        for name in (list(contenders) if r % 2 == 0 else list(reversed(contenders))):
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def report_interleaved(group: str, times: dict, ours: str, peers: list, extra: dict | None = None) -> dict:
    """Records min and median of each contender and ours' speed-up over each peer (peer time /
    ours, on min and on median), with the load average before and after; returns the ratios."""
    load = os.getloadavg()
    out = {}
    lines = [f"[{group}] load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
             f"{len(next(iter(times.values())))} interleaved rounds" + (f", {extra}" if extra else "")]
    for name, ts in times.items():
        line = f"  {name:40s} min {min(ts) * 1e3:10.2f} ms   median {statistics.median(ts) * 1e3:10.2f} ms"
        if name == ours:
            for p in peers:
                r_min, r_med = min(times[p]) / min(ts), statistics.median(times[p]) / statistics.median(ts)
                out[p] = (r_min, r_med)
                line += f"   {r_min:5.2f}x / {r_med:5.2f}x vs {p} (min / median)"
        lines.append(line)
    INTERLEAVED.extend(lines)
    return out


def pytest_terminal_summary(terminalreporter, config):
    if INTERLEAVED:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"interleaved comparisons ({platform.processor() or platform.machine()}, "
                                    f"{os.cpu_count()} cpus)")
        for line in INTERLEAVED:
            terminalreporter.write_line(line)
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
          f"{os.cpu_count()} cpus)")
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

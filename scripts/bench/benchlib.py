"""Shared helpers for the benchmark scripts: repo path, a local atlasql cluster, statistics.

The scripts in this folder are run by path (``python scripts/bench/commit.py``), so this module
is imported as a sibling; it puts the repository root on ``sys.path`` so that ``tests.cluster``
and the packages import whether or not the project is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.cluster import Cluster  # noqa: E402 - needs the repo root on sys.path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``q`` in 0..100).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    >>> percentile([1.0, 2.0, 3.0, 4.0], 99)
    4.0
    """
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return float(sorted_values[int(min(rank, len(sorted_values))) - 1])


def summarize(latencies_s: Sequence[float], elapsed_s: float | None = None) -> dict[str, float]:
    """ops, ops/s (over ``elapsed_s``, else over the summed latencies) and p50/p90/p99 in ms."""
    xs = sorted(latencies_s)
    elapsed = elapsed_s if elapsed_s is not None else sum(xs)
    return {
        "ops": len(xs),
        "ops_per_s": len(xs) / elapsed if elapsed > 0 else float("nan"),
        "p50_ms": percentile(xs, 50) * 1000,
        "p90_ms": percentile(xs, 90) * 1000,
        "p99_ms": percentile(xs, 99) * 1000,
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain aligned table (floats with one or two decimals)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:  # NaN
                return "-"
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    left = [all(isinstance(row[i], str) for row in rows) for i in range(len(headers))]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for r in cells:
        print(
            " | ".join(
                c.ljust(w) if left[i] else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        print(f"results written to {path}")


@contextmanager
def work_dir(nodes_dir: str | None, prefix: str) -> Iterator[Path]:
    """A fresh directory for node data: under ``nodes_dir`` if given (kept), else a temp dir."""
    if nodes_dir:
        root = Path(nodes_dir).resolve() / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        root.mkdir(parents=True)
        print(f"data directories under {root} (kept)")
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def atlasql_cluster(root: Path, n: int = 3) -> Iterator[Cluster]:
    """Start ``n`` real ``atlasql start`` processes, bootstrap them, stop them on exit."""
    cluster = Cluster(root, n=n, secret="bench-secret")
    try:
        t0 = time.monotonic()
        cluster.start_all()
        cluster.init()
        print(
            f"atlasql: {n} nodes up and initialised in {time.monotonic() - t0:.1f}s "
            f"({cluster.addrs()})"
        )
        yield cluster
    finally:
        cluster.stop_all()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its closing ')' are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def log_alarms(
    root: Path, pattern: str = "n*.log", words: tuple[str, ...] = ("CRITICAL", "ERROR", "Traceback")
) -> list[str]:
    """Lines of the nodes' logs that hold one of ``words``: printed so a run never hides them."""
    found: list[str] = []
    for path in sorted(root.glob(pattern)):
        lines = path.read_text(errors="replace").splitlines()
        for k, line in enumerate(lines):
            if line.startswith("Traceback"):
                # Name the exception: the first unindented line after the traceback header.
                tail = next((x for x in lines[k + 1 :] if x and not x[0].isspace()), "?")
                found.append(f"{path.name}: {line} -> {tail[:200]}")
            elif any(w in line for w in words):
                found.append(f"{path.name}: {line[:200]}")
    return found


def print_alarms(alarms: list[str]) -> None:
    if alarms:
        print(
            f"\nWARNING: the atlasql node logs hold {len(alarms)} CRITICAL/ERROR lines "
            "(likely a server bug; the figures above may not be trustworthy). First ones:"
        )
        for line in alarms[:5]:
            print(f"  {line}")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The flags every benchmark takes: where to keep node directories, and a JSON copy."""
    parser.add_argument(
        "--nodes-dir",
        default=None,
        help="put (and keep) data directories here instead of a temp dir",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="also write results here")

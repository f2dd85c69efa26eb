"""Scan and aggregate queries over a table split into many ranges, vs one local SQLite file.

Starts 3 atlasql nodes, creates ``t(id INTEGER PRIMARY KEY, g, x, y, s)``, splits it into
``--ranges`` (30) ranges at evenly spaced keys *before* loading, then loads ``--rows``
(1,000,000) deterministic pseudo-random rows in key order, each ``executemany`` batch inside one
range's span (a batch that spans ranges is refused: multi-range writes need transactions). The
same rows go into one local SQLite file (stdlib ``sqlite3``, one transaction). Then each query
runs once to warm up and ``--repeat`` (5) times timed, on atlasql and on SQLite:

* Q1 ``SELECT count(*), sum(x), avg(y) FROM t WHERE x < 500``
* Q2 ``SELECT g, count(*), sum(x), avg(y) FROM t GROUP BY g`` (100 groups)
* Q3 the Q1 aggregates over ``id >= N/3 AND id < 2N/3`` (about a third of the ranges)
* Q4 ``SELECT max(x), min(y), total(x) FROM t``

Every atlasql result is compared with SQLite's (floats with a relative tolerance of 1e-9, since
sums of floats may be added in another order). Target (distributed SQL issue): atlasql p50
within 2x of the single SQLite file's. Nothing here is an assertion on timings: this is a report.

    python scripts/bench/scan.py --rows 20000 --ranges 5 --repeat 2    # smoke test
    python scripts/bench/scan.py                                       # full: 1M rows, 30 ranges
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    add_common_args,
    atlasql_cluster,
    log_alarms,
    print_alarms,
    print_table,
    summarize,
    work_dir,
    write_json,
)

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path

RATIO_TARGET = 2.0  # atlasql p50 / SQLite p50 must be <= this
REL_TOL = 1e-9  # relative tolerance when comparing float results
SCHEMA = (
    "CREATE TABLE t(id INTEGER PRIMARY KEY, g INTEGER NOT NULL, x INTEGER NOT NULL, "
    "y REAL NOT NULL, s TEXT)"
)
INSERT = "INSERT INTO t VALUES (?,?,?,?,?)"
GROUPS = 100

Row = tuple[Any, ...]


# -- data ------------------------------------------------------------------------------------


def generate(rows: int, seed: int, batch: int, bounds: Sequence[int]) -> Iterator[list[Row]]:
    """Rows ``id`` 0..rows-1 in key order, in batches of at most ``batch`` rows that never cross
    one of ``bounds`` (the ranges' start keys): each batch lies inside one range's span.

    The same ``seed`` gives the same rows, so the atlasql and SQLite loads see identical data.

    >>> [[r[0] for r in b] for b in generate(5, 1, 2, [3])]
    [[0, 1], [2], [3, 4]]
    """
    rng = random.Random(seed)
    cuts = sorted({b for b in bounds if 0 < b < rows} | {rows})
    start = 0
    for end in cuts:
        while start < end:
            stop = min(start + batch, end)
            yield [
                (
                    i,
                    i % GROUPS,
                    rng.randrange(1000),
                    rng.random() * 100.0,
                    f"s{rng.randrange(10**9):09d}",
                )
                for i in range(start, stop)
            ]
            start = stop


def split_points(rows: int, ranges: int) -> list[int]:
    """Evenly spaced split keys: ``rows * i // ranges`` for i = 1..ranges-1.

    >>> split_points(100, 4)
    [25, 50, 75]
    """
    return [rows * i // ranges for i in range(1, ranges)]


def parse_start(key: Any) -> int | None:
    """The integer start key of a ``SHOW RANGES`` row (``/123``); None for ``-inf``/others.

    >>> parse_start("/123"), parse_start("-inf")
    (123, None)
    """
    text = str(key)
    if not text.startswith("/"):
        return None
    try:
        return int(text[1:])
    except ValueError:
        return None


# -- queries and results ---------------------------------------------------------------------


@dataclass
class Query:
    name: str
    sql: str
    sort: bool = False  # compare rows sorted by their first column (GROUP BY, no ORDER BY)


def queries(rows: int) -> list[Query]:
    lo, hi = rows // 3, 2 * rows // 3
    return [
        Query("Q1 filter x<500", "SELECT count(*), sum(x), avg(y) FROM t WHERE x < 500"),
        Query(
            "Q2 group by g",
            "SELECT g, count(*), sum(x), avg(y) FROM t GROUP BY g",
            sort=True,
        ),
        Query(
            "Q3 id range 1/3",
            f"SELECT count(*), sum(x), avg(y) FROM t WHERE id >= {lo} AND id < {hi}",
        ),
        Query("Q4 max/min/total", "SELECT max(x), min(y), total(x) FROM t"),
    ]


def same_value(a: Any, b: Any) -> bool:
    """Equal, or both floats within ``REL_TOL``; an int where SQLite has a float differs.

    >>> same_value(1.0, 1.0 + 1e-12), same_value(3, 3), same_value(3, 3.0), same_value(None, None)
    (True, True, False, True)
    """
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0) or (a != a and b != b)
    return type(a) is type(b) and a == b


def differences(got: list[Row], want: list[Row], limit: int = 3) -> list[str]:
    """Human-readable differences between atlasql's rows and SQLite's (empty = same)."""
    if len(got) != len(want):
        return [f"{len(got)} rows from atlasql, {len(want)} from SQLite"]
    out = []
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        if len(a) != len(b) or not all(same_value(x, y) for x, y in zip(a, b, strict=True)):
            out.append(f"row {k}: atlasql {a!r} vs SQLite {b!r}")
            if len(out) >= limit:
                break
    return out


def first_column(row: Row) -> tuple[bool, Any]:
    """Sort key: the first column, NULLs last."""
    return (row[0] is None, 0 if row[0] is None else row[0])


@dataclass
class Timing:
    """Runs of one query on one system: the last result and each run's wall time."""

    latencies: list[float] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    error: str = ""

    def stats(self) -> dict[str, float]:
        if not self.latencies:
            return {"p50_ms": float("nan"), "min_ms": float("nan")}
        return {
            "p50_ms": summarize(self.latencies)["p50_ms"],
            "min_ms": min(self.latencies) * 1000,
        }


def run_query(
    execute: Callable[[str], Sequence[Sequence[Any]]], sql: str, repeat: int, sort: bool
) -> Timing:
    """One warm-up run, then ``repeat`` timed runs of ``execute(sql) -> rows``."""
    timing = Timing()
    try:
        rows = [tuple(r) for r in execute(sql)]
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows = [tuple(r) for r in execute(sql)]
            timing.latencies.append(time.perf_counter() - t0)
        timing.rows = sorted(rows, key=first_column) if sort else rows
    except (sqlfront.Error, sqlite3.Error) as exc:
        timing.error = f"{type(exc).__name__}: {exc}"
    return timing


# -- loads -----------------------------------------------------------------------------------


def load_atlasql(
    conn: sqlfront.Connection, args: argparse.Namespace, bounds: Sequence[int]
) -> float:
    """Insert every row, one ``executemany`` per batch; returns the seconds spent inserting."""
    spent = 0.0
    done = 0
    last_print = time.monotonic()
    for batch in generate(args.rows, args.seed, args.batch, bounds):
        t0 = time.perf_counter()
        conn.executemany(INSERT, batch)
        spent += time.perf_counter() - t0
        done += len(batch)
        if time.monotonic() - last_print >= 10:
            last_print = time.monotonic()
            print(f"  {done}/{args.rows} rows, {done / spent:.0f} rows/s", flush=True)
    return spent


def load_sqlite(path: Path, args: argparse.Namespace) -> tuple[sqlite3.Connection, float]:
    """The same rows into one SQLite file, one transaction; returns it and the seconds spent
    inserting and committing (row generation excluded, as for atlasql)."""
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    db.commit()
    spent = 0.0
    db.execute("BEGIN")
    for batch in generate(args.rows, args.seed, args.batch, []):
        t0 = time.perf_counter()
        db.executemany(INSERT, batch)
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    db.commit()
    spent += time.perf_counter() - t0
    return db, spent


def print_ranges(ranges: list[Row], per_line: int = 3) -> None:
    """``r<id> [start, end) <leader>``, a few per line."""
    cells = [f"r{r[0]} [{r[2]}, {r[3]}) {r[6] or '-'}" for r in ranges]
    width = max((len(c) for c in cells), default=0)
    for k in range(0, len(cells), per_line):
        print("  " + "  ".join(c.ljust(width) for c in cells[k : k + per_line]).rstrip())


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows loaded (default 1000000)")
    parser.add_argument(
        "--ranges", type=int, default=30, help="ranges the table is split into (default 30)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per query after 1 warm-up (default 5)"
    )
    parser.add_argument(
        "--batch", type=int, default=20_000, help="max rows per executemany (default 20000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the row data (default 1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="deadline of each atlasql statement, seconds (default 600)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.ranges < 1 or args.repeat < 1 or args.batch < 1:
        parser.error("--rows, --ranges, --repeat and --batch must be >= 1")
    if args.ranges > args.rows:
        parser.error("--ranges must not exceed --rows")

    qs = queries(args.rows)
    atlas: dict[str, Timing] = {}
    lite: dict[str, Timing] = {}
    ranges: list[Row] = []
    with work_dir(args.nodes_dir, "bench-scan") as root:
        (root / "atlasql").mkdir()
        with atlasql_cluster(root / "atlasql") as cluster:
            conn = sqlfront.connect(cluster.addrs(), timeout=args.timeout)
            conn.execute(SCHEMA)
            points = split_points(args.rows, args.ranges)
            t0 = time.monotonic()
            if points:
                values = ", ".join(f"({k})" for k in points)
                conn.execute(f"ALTER TABLE t SPLIT AT VALUES {values}")
            split_s = time.monotonic() - t0
            ranges = [tuple(r) for r in conn.execute("SHOW RANGES FROM TABLE t").fetchall()]
            print(
                f"split t at {len(points)} keys in {split_s:.1f}s: {len(ranges)} ranges "
                "(id [start, end) leader):"
            )
            print_ranges(ranges)
            if len(ranges) != args.ranges:
                print(f"WARNING: expected {args.ranges} ranges, SHOW RANGES lists {len(ranges)}")
            starts = [parse_start(r[2]) for r in ranges]
            bounds = [k for k in starts if k is not None]
            if len(bounds) != len(ranges) - 1:
                print("note: could not read every start key; batching at the split points")
                bounds = points

            print(
                f"atlasql: loading {args.rows} rows in batches of <= {args.batch} ...", flush=True
            )
            atlas_load_s = load_atlasql(conn, args, bounds)
            print(f"atlasql: loaded in {atlas_load_s:.1f}s", flush=True)
            print("sqlite: loading the same rows ...", flush=True)
            db, lite_load_s = load_sqlite(root / "scan.sqlite", args)
            print(f"sqlite: loaded in {lite_load_s:.1f}s", flush=True)

            for q in qs:
                print(f"{q.name}: atlasql ...", flush=True)
                atlas[q.name] = run_query(
                    lambda sql: conn.execute(sql).fetchall(), q.sql, args.repeat, q.sort
                )
                print(f"{q.name}: sqlite ...", flush=True)
                lite[q.name] = run_query(
                    lambda sql: db.execute(sql).fetchall(), q.sql, args.repeat, q.sort
                )
            db.close()
            conn.close()
        alarms = log_alarms(root / "atlasql")

    # -- report
    print()
    load_rows = [
        ["atlasql", args.rows, atlas_load_s, args.rows / atlas_load_s],
        ["sqlite", args.rows, lite_load_s, args.rows / lite_load_s],
    ]
    print_table(["load", "rows", "seconds", "rows/s"], load_rows)
    print(f"load: atlasql / sqlite time = {atlas_load_s / lite_load_s:.1f}x")
    print()

    results: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for q in qs:
        a, s = atlas[q.name], lite[q.name]
        sa, ss = a.stats(), s.stats()
        ratio = sa["p50_ms"] / ss["p50_ms"] if ss["p50_ms"] > 0 else float("nan")
        diff = [] if a.error or s.error else differences(a.rows, s.rows)
        table.append(
            [q.name, sa["p50_ms"], sa["min_ms"], ss["p50_ms"], ss["min_ms"], ratio, "<= 2.0"]
        )
        results.append(
            {
                "query": q.name,
                "sql": q.sql,
                "atlasql": {**sa, "runs_ms": [x * 1000 for x in a.latencies], "error": a.error},
                "sqlite": {**ss, "runs_ms": [x * 1000 for x in s.latencies], "error": s.error},
                "ratio_p50": ratio,
                "met": ratio <= RATIO_TARGET,
                "result_rows": len(s.rows),
                "matches": not (a.error or s.error or diff),
                "differences": diff,
            }
        )
    print_table(
        [
            "query",
            "atlasql p50 ms",
            "atlasql min ms",
            "sqlite p50 ms",
            "sqlite min ms",
            "ratio (p50)",
            "target",
        ],
        table,
    )
    print()
    for q, r in zip(qs, results, strict=True):
        verdict = "met" if r["met"] else "MISSED"
        print(
            f"{q.name}: ratio atlasql p50 / sqlite p50 = {r['ratio_p50']:.3f}, "
            f"target <= {RATIO_TARGET:.1f}: {verdict}"
        )
    mismatches = 0
    for q, r in zip(qs, results, strict=True):
        for who, err in (("atlasql", r["atlasql"]["error"]), ("sqlite", r["sqlite"]["error"])):
            if err:
                print(f"ERROR {q.name} on {who}: {err}")
        if r["differences"]:
            mismatches += 1
            print(f"\n*** MISMATCH {q.name}: atlasql's result differs from SQLite's ***")
            print(f"    {q.sql}")
            for line in r["differences"]:
                print(f"    {line}")
    if not mismatches and all(r["matches"] for r in results):
        print(f"results: all {len(qs)} queries match SQLite (floats to {REL_TOL:g} relative)")
    print_alarms(alarms)

    write_json(
        args.json,
        {
            "benchmark": "scan",
            "args": vars(args),
            "ranges": [
                {"range_id": r[0], "start_key": r[2], "end_key": r[3], "leader": r[6]}
                for r in ranges
            ],
            "load": {
                "atlasql_seconds": atlas_load_s,
                "atlasql_rows_per_s": args.rows / atlas_load_s,
                "sqlite_seconds": lite_load_s,
                "sqlite_rows_per_s": args.rows / lite_load_s,
            },
            "queries": results,
            "mismatches": mismatches,
            "atlasql_log_alarms": alarms,
            "targets": {"ratio_p50_max": RATIO_TARGET},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

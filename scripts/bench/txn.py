"""Transaction commit latency with simulated geography (transactions issue).

The cluster and schema of ``geo.py`` (imported from it): nine real nodes, three per region
(n1-n3 us-east, n4-n6 us-west, n7-n9 eu-west), started with ``--rtt-matrix`` so that every
inter-node message is delayed by half the configured round trip of its two regions (us-east <->
eu-west 64 ms), database ``geo`` with one table homed in each region (``LOCALITY REGIONAL BY
TABLE IN 'region'``, ids 1..1000) and a GLOBAL table. On top of that ``t_us_east`` is split with
``ALTER TABLE t_us_east SPLIT AT VALUES (501)``, so it has two ranges, both homed in us-east;
then the script waits until every range is placed and led from its home region.

A client connected to one node only (n1 in us-east, n7 in eu-west for case 5) times the whole
transaction, from sending ``BEGIN`` until ``COMMIT`` returns, sequentially, each iteration on
rows no other iteration of the run has touched lately (so there are no conflicts; a 40001 would
be rolled back, retried, counted and its retries included in that iteration's time):

1. autocommit ``UPDATE t_us_east SET v = v + 1 WHERE id = ?`` (the baseline, no BEGIN/COMMIT);
2. ``BEGIN; UPDATE`` one row of one us-east range ``; COMMIT`` (the one-entry fast path);
3. ``BEGIN;`` one UPDATE on each of the two us-east ranges ``; COMMIT`` (2PC within a region);
4. ``BEGIN;`` UPDATE a us-east row, then a eu-west row ``; COMMIT`` (2PC across regions; the
   record range, the first one written, is in us-east), client in us-east;
5. the same as 4 with the client in eu-west;
6. ``BEGIN; SELECT v ...; UPDATE ... SET v = <read + 1> ...; COMMIT`` on one us-east range
   (read-modify-write: one more statement round trip than case 2).

The table gives p50/p99 per case, the p50 relative to case 1's, and for the cross-region cases
the configured RTT of the two regions and p50/RTT. Nothing here is an assertion: this is a
report. On 2 cores the nine idle nodes already keep about one core busy, so in-region figures
measure the machine more than geography; compare the cases of the same run.

    python scripts/bench/txn.py --quick       # 30 transactions + 5 warm-up per case, ~3-5 min
    python scripts/bench/txn.py               # 100 transactions + 10 warm-up per case
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from benchlib import (
    add_common_args,
    log_alarms,
    print_alarms,
    print_table,
    summarize,
    work_dir,
    write_json,
)
from geo import (
    PRIMARY,
    REGIONS,
    ROWS,
    RTT_MS,
    create_schema,
    describe,
    range_details,
    rtt_ms,
    start_cluster,
    table_leaders,
    table_of,
    wait_placement,
)

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path
from tests.cluster import Cluster  # noqa: E402

EAST = table_of("us-east")
EU = table_of("eu-west")
SPLIT = ROWS // 2 + 1  # t_us_east: ids 1..SPLIT-1 in one range, SPLIT..ROWS in the other
MAX_ATTEMPTS = 5  # per iteration, on 40001


class Ids:
    """Row ids of one half-open span [lo, hi), handed out in turn (wrapping around), so that
    consecutive transactions never touch a row whose intents may still be resolving."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi, self.next = lo, hi, lo

    def __call__(self) -> int:
        got = self.next
        self.next = self.next + 1 if self.next + 1 < self.hi else self.lo
        return got


@dataclass
class Case:
    number: int
    label: str
    client: str  # client region
    explicit: bool  # BEGIN ... COMMIT (else one autocommit statement)
    rmw: bool  # SELECT the row, then UPDATE it to the value read + 1
    rows: list[tuple[str, Ids]]  # (table, ids) of the rows written, in statement order
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    errors: int = 0
    first_error: str = ""
    leaders_before: str = ""
    leaders_after: str = ""

    @property
    def regions(self) -> list[str]:
        """Home regions of the rows written, in order, without repeats."""
        out: list[str] = []
        for table, _ in self.rows:
            home = next(r for r in REGIONS if table_of(r) == table)
            if home not in out:
                out.append(home)
        return out

    @property
    def rtt(self) -> float | None:
        """The configured RTT between the regions of the rows (None if only one region)."""
        regions = self.regions
        return rtt_ms(regions[0], regions[1]) if len(regions) == 2 else None


def make_cases() -> list[Case]:
    # One cursor per range, shared by the cases that write there, so that the cases walk on
    # where the previous one stopped: a row comes back only after the range's other ~500.
    east_a, east_b, eu = Ids(1, SPLIT), Ids(SPLIT, ROWS + 1), Ids(1, ROWS + 1)
    return [
        Case(1, "autocommit UPDATE, 1 range", "us-east", False, False, [(EAST, east_a)]),
        Case(2, "txn: 1 UPDATE, 1 range (fast path)", "us-east", True, False, [(EAST, east_a)]),
        Case(
            3,
            "txn: 2 UPDATEs, 2 us-east ranges (2PC)",
            "us-east",
            True,
            False,
            [(EAST, east_a), (EAST, east_b)],
        ),
        Case(
            4,
            "txn: UPDATE us-east + eu-west (2PC)",
            "us-east",
            True,
            False,
            [(EAST, east_b), (EU, eu)],
        ),
        Case(
            5,
            "txn: UPDATE us-east + eu-west (2PC)",
            "eu-west",
            True,
            False,
            [(EAST, east_b), (EU, eu)],
        ),
        Case(6, "txn: SELECT + UPDATE, 1 range (RMW)", "us-east", True, True, [(EAST, east_a)]),
    ]


# ---------------------------------------------------------------------------------------------
# one transaction
# ---------------------------------------------------------------------------------------------


def run_body(conn: sqlfront.Connection, case: Case, picks: list[tuple[str, int]]) -> None:
    """BEGIN (if explicit), the statements, COMMIT; raises on an error or a wrong answer,
    after rolling back whatever is open."""
    try:
        if case.explicit:
            conn.execute("BEGIN")
        for table, key in picks:
            params: tuple[int, ...]
            if case.rmw:
                row = conn.execute(f"SELECT v FROM {table} WHERE id = ?", (key,)).fetchone()
                if row is None or not isinstance(row[0], int):
                    raise RuntimeError(f"SELECT v FROM {table} WHERE id = {key}: {row!r}")
                sql, params = f"UPDATE {table} SET v = ? WHERE id = ?", (row[0] + 1, key)
            else:
                sql, params = f"UPDATE {table} SET v = v + 1 WHERE id = ?", (key,)
            cur = conn.execute(sql, params)
            if cur.rowcount != 1:
                raise RuntimeError(f"{sql} {params}: rowcount {cur.rowcount}")
        if case.explicit:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlfront.Error:
                pass
        raise


def run_one(conn: sqlfront.Connection, case: Case) -> tuple[float, int]:
    """One iteration on fresh rows: seconds from the first BEGIN to the COMMIT that succeeded,
    and the number of 40001 retries. Raises on any other error, or after MAX_ATTEMPTS."""
    picks = [(table, ids()) for table, ids in case.rows]
    t0 = time.perf_counter()
    for attempt in range(MAX_ATTEMPTS):
        try:
            run_body(conn, case, picks)
            return time.perf_counter() - t0, attempt
        except sqlfront.OperationalError as exc:
            if exc.sqlstate != "40001" or attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def measure(
    cluster: Cluster, case: Case, iterations: int, warmup: int, ranges_of: dict[str, list[int]]
) -> None:
    node = REGIONS[case.client][0]
    conn = sqlfront.connect(cluster.addr(node), timeout=30)
    tables = sorted({t for t, _ in case.rows})
    try:
        conn.execute("USE geo")
        gateway = conn.execute("SELECT gateway_region()").fetchone()
        if gateway != (case.client,):
            print(f"WARNING: n{node} says its gateway region is {gateway}, expected {case.client}")
        case.leaders_before = leaders(cluster, ranges_of, tables)
        t0 = time.monotonic()
        for k in range(warmup + iterations):
            try:
                dt, retries = run_one(conn, case)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                case.errors += 1
                case.first_error = case.first_error or f"{type(exc).__name__}: {exc}"
                time.sleep(0.01)
                continue
            case.retries += retries
            if k >= warmup:
                case.latencies.append(dt)
        case.leaders_after = leaders(cluster, ranges_of, tables)
    finally:
        conn.close()
    s = summarize(case.latencies)
    moved = case.leaders_before != case.leaders_after
    print(
        f"  case {case.number} ({case.client} via n{node}): {case.label:38s} "
        f"p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  ({time.monotonic() - t0:.1f}s; "
        f"leaders {case.leaders_before}"
        + (f" -> {case.leaders_after} MOVED" if moved else "")
        + (f"; {case.retries} retries" if case.retries else "")
        + (f"; {case.errors} errors" if case.errors else "")
        + ")",
        flush=True,
    )


def leaders(cluster: Cluster, ranges_of: dict[str, list[int]], tables: list[str]) -> str:
    return " ".join(f"{t}:{table_leaders(cluster, ranges_of, t)}" for t in tables)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def split_east(cluster: Cluster) -> None:
    conn = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=60)
    try:
        conn.execute("USE geo")
        got = conn.execute(f"ALTER TABLE {EAST} SPLIT AT VALUES ({SPLIT})").fetchall()
        print(f"  {EAST} split at {SPLIT}: {got}", flush=True)
    finally:
        conn.close()


def result_row(case: Case, base_p50: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "case": case.number,
        "label": case.label,
        "client_region": case.client,
        "explicit_transaction": case.explicit,
        "read_modify_write": case.rmw,
        "tables": [t for t, _ in case.rows],
        "row_regions": case.regions,
        "rtt_ms": case.rtt,
        "retries": case.retries,
        "errors": case.errors,
        "leaders_before": case.leaders_before,
        "leaders_after": case.leaders_after,
    }
    out.update(summarize(case.latencies))
    out["p50_vs_autocommit"] = out["p50_ms"] / base_p50 if base_p50 > 0 else float("nan")
    out["p50_vs_rtt"] = out["p50_ms"] / case.rtt if case.rtt else None
    if case.first_error:
        out["first_error"] = case.first_error
    return out


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        [
            "case",
            "client region",
            "p50 ms",
            "p99 ms",
            "p50 / case 1 p50",
            "RTT ms",
            "p50 / RTT",
        ],
        [
            [
                f"{r['case']}. {r['label']}",
                r["client_region"],
                r["p50_ms"],
                r["p99_ms"],
                r["p50_vs_autocommit"],
                "-" if r["rtt_ms"] is None else float(r["rtt_ms"]),
                "-" if r["p50_vs_rtt"] is None else r["p50_vs_rtt"],
            ]
            for r in rows
        ],
    )
    for r in rows:
        if r["errors"] or r["retries"]:
            print(
                f"case {r['case']}: {r['retries']} 40001 retries, {r['errors']} failed "
                f"iterations" + (f" (first: {r['first_error'][:200]})" if r["errors"] else "")
            )
        if r["leaders_before"] != r["leaders_after"]:
            print(
                f"note: case {r['case']}: leaders moved {r['leaders_before']} -> "
                f"{r['leaders_after']} during the iterations"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="measured transactions per case (default 100; --quick 30)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured transactions before each case (default 10; --quick 5)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="--iterations 30 --warmup 5 unless given"
    )
    parser.add_argument(
        "--placement-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every range to be placed (default 120)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.iterations is None:
        args.iterations = 30 if args.quick else 100
    if args.warmup is None:
        args.warmup = 5 if args.quick else 10
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be >= 1 and --warmup >= 0")

    cases = make_cases()
    placement: dict[str, Any] = {}
    with work_dir(args.nodes_dir, "bench-txn") as root:
        cluster = start_cluster(root)
        try:
            print("schema: database geo as in geo.py, then the us-east table split ...", flush=True)
            create_schema(cluster)
            split_east(cluster)
            print(
                f"placement: waiting (<= {args.placement_timeout:g}s) for every range to be "
                "placed with its leader in its home region ...",
                flush=True,
            )
            ok, took, ranges = wait_placement(cluster, args.placement_timeout)
            placement = {"converged": ok, "seconds": took, "ranges": [describe(r) for r in ranges]}
            if ok:
                print(f"placement: converged in {took:.1f}s", flush=True)
            else:
                print(f"WARNING: placement did NOT converge in {took:.0f}s; measuring anyway:")
            ranges_of: dict[str, list[int]] = {}
            for r in ranges:
                print(f"  {describe(r)}")
                ranges_of.setdefault(str(r[1]), []).append(int(r[0]))
            probe = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=30)
            try:
                probe.execute("USE geo")
                east = range_details(probe, EAST)
            finally:
                probe.close()
            if len(east) != 2:
                print(f"WARNING: {EAST} has {len(east)} ranges, expected 2 (case 3 is not 2PC)")
            print(
                f"measuring ({args.iterations} transactions + {args.warmup} warm-up per case) ...",
                flush=True,
            )
            for case in cases:
                measure(cluster, case, args.iterations, args.warmup, ranges_of)
        finally:
            cluster.stop_all()
        alarms = log_alarms(root)

    base = summarize(cases[0].latencies)["p50_ms"]
    rows = [result_row(c, base) for c in cases]
    print()
    if not placement.get("converged"):
        print("NOTE: placement had not converged when the measurements started (see above).")
    report(rows)
    print_alarms(alarms)
    write_json(
        args.json,
        {
            "benchmark": "txn",
            "args": vars(args),
            "rtt_ms": RTT_MS,
            "regions": {r: [f"n{n}" for n in nodes] for r, nodes in REGIONS.items()},
            "placement": placement,
            "results": rows,
            "atlasql_log_alarms": alarms,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

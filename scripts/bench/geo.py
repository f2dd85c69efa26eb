"""Geo latencies (geo issue) on one machine with simulated geography.

Nine real nodes, three per region (n1-n3 us-east, n4-n6 us-west, n7-n9 eu-west), started with
``--rtt-matrix`` so that every inter-node message (Raft and forwarded gRPC) is delayed by half
the configured round trip of its two regions. One database with the three regions, one table
homed in each region, one GLOBAL table and one REGIONAL BY ROW table. For each region, a
client connected only to a node of that region measures home-region writes, inserts and
consistent reads, remote writes and reads (each remote region apart), follower reads of every
table (``AS OF SYSTEM TIME follower_read_timestamp()``: served by the nearest replica, a
non-voter in the client's region for the other regions' tables), GLOBAL reads, and inserts
into the REGIONAL BY ROW table keyed without its region (each checks the other regions for the
key: the bench reports the cost). Then the baseline: every table is re-homed to us-east (all
leaders and voters there) and each region's client runs its home-table writes and reads
again. Last, the leader of the us-east table is killed and the time to the first successful
write, and after its restart the time until the leadership is in us-east again, are measured.
Nothing here is an assertion: this is a report.

    python scripts/bench/geo.py --quick       # 50 requests per operation, ~3-5 min on 2 cores
    python scripts/bench/geo.py               # 200 requests per operation
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from benchlib import (
    add_common_args,
    log_alarms,
    print_alarms,
    print_table,
    summarize,
    work_dir,
    write_json,
)

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path
from tests.cluster import Cluster, wait_for  # noqa: E402

REGIONS: dict[str, tuple[int, ...]] = {
    "us-east": (1, 2, 3),
    "us-west": (4, 5, 6),
    "eu-west": (7, 8, 9),
}
PRIMARY = "us-east"
RTT_MS: dict[str, dict[str, float]] = {
    "us-east": {"us-west": 66, "eu-west": 64},
    "us-west": {"eu-west": 146},
}
ROWS = 1000  # preloaded rows per table, ids 1..ROWS
FRESH_BASE = 1_000_000  # fresh insert ids start above this
HOME_WRITE_MS = 5.0  # home-region write p50 target
HOME_READ_MS = 3.0  # consistent read of a home-region row p50 target
FOLLOWER_READ_MS = 3.0  # follower read of any row from any region p50 target
REMOTE_WRITE_FACTOR = 1.2  # remote-row write p50 <= this x RTT to the row's home region
FAILOVER_S = 2.0  # first write after the leader's death
LEADER_HOME_S = 10.0  # leadership back in the home region after the restart
# Measure the steady state: every range placed and the allocator done spreading leaders.
PLACED_PREFIXES = ("placement matches",)

Row = tuple[Any, ...]


def rtt_ms(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return float(RTT_MS.get(a, {}).get(b, RTT_MS.get(b, {}).get(a, 0.0)))


def table_of(region: str) -> str:
    return "t_" + region.replace("-", "_")


# ---------------------------------------------------------------------------------------------
# cluster and schema
# ---------------------------------------------------------------------------------------------


def start_cluster(root: Path) -> Cluster:
    matrix = root / "rtt.json"
    matrix.write_text(json.dumps(RTT_MS) + "\n")
    regions = {n: r for r, nodes in REGIONS.items() for n in nodes}
    cluster = Cluster(
        root,
        n=len(regions),
        secret="bench-secret",
        extra_args=("--rtt-matrix", str(matrix)),
        regions=regions,
    )
    t0 = time.monotonic()
    try:
        cluster.start_all()
        cluster.init()
        conn = sqlfront.connect(cluster.addrs())
        try:
            wait_for(
                f"SHOW NODES to list {cluster.n} nodes",
                lambda: len(conn.execute("SHOW NODES").fetchall()) == cluster.n,
                timeout=60,
                interval=0.5,
            )
        finally:
            conn.close()
    except BaseException:
        cluster.stop_all()
        raise
    print(
        f"atlasql: {cluster.n} nodes up, initialised and registered in "
        f"{time.monotonic() - t0:.1f}s (RTT matrix {matrix})",
        flush=True,
    )
    return cluster


def create_schema(cluster: Cluster) -> None:
    conn = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=60)
    try:
        others = ", ".join(f"'{r}'" for r in REGIONS if r != PRIMARY)
        conn.execute(f"CREATE DATABASE geo PRIMARY REGION '{PRIMARY}' REGIONS {others}")
        conn.execute("USE geo")
        for region in REGIONS:
            conn.execute(
                f"CREATE TABLE {table_of(region)}(id INTEGER PRIMARY KEY, v INTEGER) "
                f"LOCALITY REGIONAL BY TABLE IN '{region}'"
            )
        conn.execute("CREATE TABLE g(id INTEGER PRIMARY KEY, v INTEGER) LOCALITY GLOBAL")
        # REGIONAL BY ROW keyed by id alone: an insert checks the other regions for the key
        # (global uniqueness); the bench reports what that costs.
        conn.execute("CREATE TABLE rbr(id INTEGER PRIMARY KEY, v INTEGER) LOCALITY REGIONAL BY ROW")
    finally:
        conn.close()
    # Preload each table through a gateway of its home region (GLOBAL: the primary region).
    loads = [(table_of(r), REGIONS[r][0]) for r in REGIONS] + [("g", REGIONS[PRIMARY][0])]
    for table, node in loads:
        t0 = time.monotonic()
        c = sqlfront.connect(cluster.addr(node), timeout=120)
        try:
            c.execute("USE geo")
            c.executemany(f"INSERT INTO {table} VALUES (?, 0)", [(i,) for i in range(1, ROWS + 1)])
            got = c.execute(f"SELECT count(*) FROM {table}").fetchone()
        finally:
            c.close()
        print(
            f"  {table}: {ROWS} rows loaded through n{node} in {time.monotonic() - t0:.1f}s "
            f"(count(*) = {got[0] if got else None!r})",
            flush=True,
        )


def range_details(conn: sqlfront.Connection, table: str | None = None) -> list[Row]:
    what = f"FROM TABLE {table} " if table else ""
    return [tuple(r) for r in conn.execute(f"SHOW RANGES {what}WITH DETAILS").fetchall()]


def placed(row: Row) -> bool:
    return str(row[9]).startswith(PLACED_PREFIXES) and bool(row[6]) and row[6] == row[4]


def wait_placement(cluster: Cluster, timeout: float) -> tuple[bool, float, list[Row]]:
    """Poll SHOW RANGES WITH DETAILS until every range is placed and led from its home."""
    conn = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=30)
    conn.execute("USE geo")
    t0 = time.monotonic()
    last_print = t0
    rows: list[Row] = []
    try:
        while True:
            try:
                rows = range_details(conn)
            except sqlfront.DatabaseError as exc:
                print(f"  SHOW RANGES WITH DETAILS failed: {exc}", flush=True)
                rows = []
            done = bool(rows) and all(placed(r) for r in rows)
            elapsed = time.monotonic() - t0
            if done:
                return True, elapsed, rows
            if elapsed >= timeout:
                return False, elapsed, rows
            if time.monotonic() - last_print >= 5:
                last_print = time.monotonic()
                waiting = [r for r in rows if not placed(r)]
                print(
                    f"  {elapsed:4.0f}s: {len(rows) - len(waiting)}/{len(rows)} ranges placed",
                    flush=True,
                )
                for r in waiting:
                    print(f"    {describe(r)}", flush=True)
            time.sleep(0.5)
    finally:
        conn.close()


def describe(r: Row) -> str:
    return (
        f"r{r[0]} {r[1]}: home {r[4] or '-'}, leader {r[5] or '-'} ({r[6] or '-'}), "
        f"voters {r[7]}, non-voters {r[8] or '-'}; allocator: {r[9]}"
    )


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


@dataclass
class Op:
    client: str  # client region
    kind: str  # "write", "insert", "read", "follower read", "global read", "checked insert"
    home: str  # home region of the table
    table: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    leader_before: str = ""  # leader of the table's range(s) before and after the requests
    leader_after: str = ""

    @property
    def rtt(self) -> float:
        return rtt_ms(self.client, self.home)

    @property
    def remote(self) -> bool:
        return self.table != "g" and self.home != self.client

    def label(self) -> str:
        name = {
            "write": "write",
            "insert": "insert (fresh key)",
            "read": "consistent read",
            "global read": "GLOBAL read",
        }.get(self.kind, self.kind)
        if self.kind == "follower read":
            return f"follower read ({'GLOBAL' if self.table == 'g' else self.home} row)"
        if self.kind == "checked insert":
            return "insert, REGIONAL BY ROW, global unique check"
        if self.remote:
            return f"remote {name} (RTT {self.rtt:g} ms)"
        return name if self.table == "g" else f"home-region {name}"

    def bound(self) -> float | None:
        """The p50 target in ms, or None."""
        if self.kind == "follower read":
            return FOLLOWER_READ_MS
        if self.table == "g":
            return None
        if self.kind == "write":
            return REMOTE_WRITE_FACTOR * self.rtt if self.remote else HOME_WRITE_MS
        if self.kind == "insert" and not self.remote:
            return HOME_WRITE_MS  # (the home-region writes: UPDATEs and such INSERTs)
        if self.kind == "read" and not self.remote:
            return HOME_READ_MS
        return None

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_region": self.client,
            "operation": self.kind,
            "label": self.label(),
            "table": self.table,
            "table_home": self.home,
            "rtt_ms": self.rtt,
            "remote": self.remote,
            "errors": self.errors,
            "target_p50_ms": self.bound(),
            "leader_before": self.leader_before,
            "leader_after": self.leader_after,
        }
        out.update(summarize(self.latencies))
        bound = self.bound()
        out["met"] = None if bound is None else bool(out["p50_ms"] <= bound)
        if self.first_error:
            out["first_error"] = self.first_error
        return out


class Fresh:
    """Fresh insert keys, unique over the whole run."""

    def __init__(self) -> None:
        self.next = FRESH_BASE

    def __call__(self) -> int:
        self.next += 1
        return self.next


def statement(op: Op, rng: random.Random, fresh: Fresh) -> tuple[str, tuple[int], str]:
    """SQL, parameters, and what a correct answer is ("1 row" affected or "a row" read)."""
    if op.kind == "write":
        return f"UPDATE {op.table} SET v = v + 1 WHERE id = ?", (rng.randint(1, ROWS),), "dml"
    if op.kind in ("insert", "checked insert"):
        return f"INSERT INTO {op.table}(id, v) VALUES (?, 0)", (fresh(),), "dml"
    if op.kind == "follower read":
        return (
            f"SELECT v FROM {op.table} AS OF SYSTEM TIME follower_read_timestamp() WHERE id = ?",
            (rng.randint(1, ROWS),),
            "read",
        )
    return f"SELECT v FROM {op.table} WHERE id = ?", (rng.randint(1, ROWS),), "read"


def run_one(conn: sqlfront.Connection, op: Op, rng: random.Random, fresh: Fresh) -> float:
    """Run one statement; its latency in seconds. Raises on an error or a wrong answer."""
    sql, params, expect = statement(op, rng, fresh)
    t0 = time.perf_counter()
    cur = conn.execute(sql, params)
    row = cur.fetchone() if expect == "read" else None
    dt = time.perf_counter() - t0
    if expect == "read" and row is None:
        raise RuntimeError(f"{sql} {params}: no row")
    if expect == "dml" and cur.rowcount != 1:
        raise RuntimeError(f"{sql} {params}: rowcount {cur.rowcount}")
    return dt


def measure_op(
    conn: sqlfront.Connection,
    op: Op,
    requests: int,
    warmup: int,
    rng: random.Random,
    fresh: Fresh,
) -> None:
    for k in range(warmup + requests):
        try:
            dt = run_one(conn, op, rng, fresh)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            op.errors += 1
            op.first_error = op.first_error or f"{type(exc).__name__}: {exc}"
            time.sleep(0.01)
            continue
        if k >= warmup:
            op.latencies.append(dt)


def table_leaders(cluster: Cluster, ranges_of: dict[str, list[int]], table: str) -> str:
    """The leaders of ``table``'s ranges as the nodes' Admin Status reports them ("n2"; "?"
    if none reports one), read straight from the nodes (no simulated delay, not timed)."""
    leaders: dict[int, int] = {}
    for i in sorted(cluster.procs):
        try:
            st = cluster.status(i)
        except grpc.RpcError:
            continue
        for r in st.replicas:
            if r.is_leader:
                leaders[int(r.range_id)] = i
    return ",".join(
        f"n{leaders[rid]}" if rid in leaders else "?" for rid in ranges_of.get(table, [])
    )


def measure_region(
    cluster: Cluster,
    client: str,
    args: argparse.Namespace,
    rng: random.Random,
    fresh: Fresh,
    ranges_of: dict[str, list[int]],
) -> list[Op]:
    ops = [
        Op(client, "write", client, table_of(client)),
        Op(client, "insert", client, table_of(client)),
        Op(client, "read", client, table_of(client)),
    ]
    for other in REGIONS:
        if other != client:
            ops.append(Op(client, "write", other, table_of(other)))
            ops.append(Op(client, "read", other, table_of(other)))
    ops.append(Op(client, "global read", PRIMARY, "g"))
    ops.append(Op(client, "checked insert", client, "rbr"))
    for home in REGIONS:
        ops.append(Op(client, "follower read", home, table_of(home)))
    ops.append(Op(client, "follower read", PRIMARY, "g"))
    return run_ops(cluster, client, ops, args, rng, fresh, ranges_of)


def run_ops(
    cluster: Cluster,
    client: str,
    ops: list[Op],
    args: argparse.Namespace,
    rng: random.Random,
    fresh: Fresh,
    ranges_of: dict[str, list[int]],
) -> list[Op]:
    """Measure ``ops`` in order through a connection to the client region's first node."""
    node = REGIONS[client][0]
    conn = sqlfront.connect(cluster.addr(node), timeout=30)
    conn.execute("USE geo")
    gateway = conn.execute("SELECT gateway_region()").fetchone()
    if gateway != (client,):
        print(f"WARNING: n{node} says its gateway region is {gateway}, expected {client}")
    try:
        for op in ops:
            t0 = time.monotonic()
            op.leader_before = table_leaders(cluster, ranges_of, op.table)
            measure_op(conn, op, args.requests, args.warmup, rng, fresh)
            op.leader_after = table_leaders(cluster, ranges_of, op.table)
            s = summarize(op.latencies)
            moved = op.leader_before != op.leader_after
            print(
                f"  {client} via n{node}: {op.label():40s} on {op.table:10s} "
                f"p50 {s['p50_ms']:7.2f} ms  ({time.monotonic() - t0:.1f}s"
                + (f", {op.errors} errors" if op.errors else "")
                + (f"; leader moved {op.leader_before} -> {op.leader_after}" if moved else "")
                + ")",
                flush=True,
            )
    finally:
        conn.close()
    return ops


def rehome_all(cluster: Cluster, timeout: float) -> tuple[bool, float, list[Row]]:
    """Baseline layout: every regional table homed in the primary region."""
    conn = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=60)
    try:
        conn.execute("USE geo")
        for region in REGIONS:
            if region != PRIMARY:
                conn.execute(
                    f"ALTER TABLE {table_of(region)} SET LOCALITY REGIONAL BY TABLE IN '{PRIMARY}'"
                )
    finally:
        conn.close()
    return wait_placement(cluster, timeout)


def measure_baseline(
    cluster: Cluster,
    client: str,
    args: argparse.Namespace,
    rng: random.Random,
    fresh: Fresh,
    ranges_of: dict[str, list[int]],
) -> list[Op]:
    """The client's home-table writes and reads with that table led from the primary region."""
    ops = [Op(client, kind, PRIMARY, table_of(client)) for kind in ("write", "read")]
    return run_ops(cluster, client, ops, args, rng, fresh, ranges_of)


def report_baseline(geo_rows: list[dict[str, Any]], base_rows: list[dict[str, Any]]) -> None:
    geo = {(r["client_region"], r["operation"], r["table"]): r for r in geo_rows}
    table = []
    for b in base_rows:
        g = geo.get((b["client_region"], b["operation"], b["table"]))
        if g is None:
            continue
        table.append(
            [
                b["client_region"],
                f"{b['operation']} of its own rows ({b['table']})",
                g["p50_ms"],
                b["p50_ms"],
                b["p50_ms"] / g["p50_ms"] if g["p50_ms"] else float("nan"),
            ]
        )
    print(f"baseline: the same rows with every leader in {PRIMARY} (single-region layout)")
    print_table(
        ["client region", "operation", "geo p50 ms", "baseline p50 ms", "baseline / geo"], table
    )
    print()


# ---------------------------------------------------------------------------------------------
# failover
# ---------------------------------------------------------------------------------------------


def poll(fn: Callable[[], bool], timeout: float, interval: float) -> float | None:
    """Seconds until ``fn()`` is true (errors count as false), or None after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if fn():
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(interval)
    return None


def failover(cluster: Cluster, timeout: float) -> dict[str, Any]:
    table = table_of(PRIMARY)
    probe = sqlfront.connect(cluster.addr(REGIONS[PRIMARY][0]), timeout=30)
    probe.execute("USE geo")
    (before,) = range_details(probe, table)
    probe.close()
    out: dict[str, Any] = {"table": table, "range_id": before[0], "leader_before": before[5]}
    print(f"failover: {describe(before)}", flush=True)
    if not str(before[5]).startswith("n"):
        out["error"] = f"{table}'s range has no leader to kill: {before[5]!r}"
        print(f"ERROR: {out['error']}")
        return out
    leader = int(str(before[5])[1:])
    survivor = next((n for n in REGIONS[PRIMARY] if n != leader), None)
    if survivor is None:
        survivor = next(n for n in sorted(cluster.procs) if n != leader)
    out["client_node"] = f"n{survivor}"
    conn = sqlfront.connect(cluster.addr(survivor), timeout=10)
    conn.execute("USE geo")
    conn.execute("SELECT 1")

    cluster.kill(leader)
    killed_at = time.monotonic()
    attempts = errors = 0
    first_error = last_error = ""
    first_write: float | None = None
    while time.monotonic() - killed_at < timeout:
        attempts += 1
        try:
            conn.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")
            first_write = time.monotonic() - killed_at
            break
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            last_error = f"{type(exc).__name__}: {exc}"
            first_error = first_error or last_error
            time.sleep(0.02)
    out.update(
        killed=f"n{leader}",
        first_write_s=first_write,
        attempts=attempts,
        failed_attempts=errors,
        first_error=first_error,
        last_error=last_error,
    )
    shown = "none" if first_write is None else f"{first_write:.2f}s"
    print(
        f"failover: killed n{leader}; first successful write through n{survivor} after {shown} "
        f"({attempts} attempts, {errors} failed"
        + (f"; first error: {first_error[:160]}" if first_error else "")
        + ")",
        flush=True,
    )
    (after,) = range_details(conn, table)
    out.update(leader_after_kill=after[5], leader_region_after_kill=after[6])
    print(f"failover: after the kill: {describe(after)}", flush=True)

    restart_at = time.monotonic()
    cluster.start(leader)
    out["restart_healthy_s"] = time.monotonic() - restart_at
    already = after[6] == PRIMARY
    home = poll(lambda: range_details(conn, table)[0][6] == PRIMARY, LEADER_HOME_S * 6, 0.25)
    out.update(leader_home_already=already, leader_home_s=0.0 if already else home)
    (final,) = range_details(conn, table)
    out.update(leader_final=final[5], leader_region_final=final[6])
    if already:
        print(
            f"failover: the leadership never left {PRIMARY} (another {PRIMARY} voter took over): "
            f"time to leader home = 0; n{leader} restarted, healthy after "
            f"{out['restart_healthy_s']:.1f}s; now {describe(final)}",
            flush=True,
        )
    else:
        shown = "never (timed out)" if home is None else f"{home:.2f}s"
        print(
            f"failover: n{leader} restarted (healthy after {out['restart_healthy_s']:.1f}s); "
            f"leader back in {PRIMARY} after {shown} from the restart; now {describe(final)}",
            flush=True,
        )
    conn.close()
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def report(rows: list[dict[str, Any]], fo: dict[str, Any]) -> list[str]:
    table = []
    for r in rows:
        bound = r["target_p50_ms"]
        table.append(
            [
                r["client_region"],
                r["label"],
                "GLOBAL" if r["table"] == "g" else r["table_home"],
                r["p50_ms"],
                r["p90_ms"],
                r["p99_ms"],
                "-" if bound is None else f"<= {bound:.1f}",
                verdict(r["met"]),
            ]
        )
    print_table(
        [
            "client region",
            "operation",
            "table home",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "target",
            "met?",
        ],
        table,
    )
    for r in rows:
        if r["errors"]:
            print(
                f"errors: {r['client_region']} {r['label']} on {r['table']}: {r['errors']} "
                f"(first: {r.get('first_error', '')[:200]})"
            )
    for r in rows:
        if r["leader_before"] != r["leader_after"]:
            print(
                f"note: {r['client_region']} {r['label']}: the leader of {r['table']} moved "
                f"{r['leader_before']} -> {r['leader_after']} during the requests"
            )
    print()
    lines: list[str] = []

    def summary(
        title: str, picked: list[dict[str, Any]], name: Callable[[dict[str, Any]], str]
    ) -> None:
        met = sum(1 for r in picked if r["met"])
        parts = ", ".join(f"{name(r)} {r['p50_ms']:.1f}" for r in picked)
        state = "met" if met == len(picked) else "MISSED"
        lines.append(f"{title}: {parts} -> {state} ({met}/{len(picked)})")

    summary(
        f"home-region write (UPDATE by key, INSERT of a fresh key) p50 <= {HOME_WRITE_MS:g} ms",
        [r for r in rows if r["operation"] in ("write", "insert") and not r["remote"]],
        lambda r: f"{r['client_region']} {'update' if r['operation'] == 'write' else 'insert'}",
    )
    summary(
        f"consistent read of a home-region row p50 <= {HOME_READ_MS:g} ms",
        [r for r in rows if r["operation"] == "read" and not r["remote"]],
        lambda r: r["client_region"],
    )
    summary(
        f"follower read of any row from any region p50 <= {FOLLOWER_READ_MS:g} ms",
        [r for r in rows if r["operation"] == "follower read"],
        lambda r: f"{r['client_region']}<-{'GLOBAL' if r['table'] == 'g' else r['table_home']}",
    )
    summary(
        f"remote-row write p50 <= {REMOTE_WRITE_FACTOR:g} x RTT",
        [r for r in rows if r["operation"] == "write" and r["remote"]],
        lambda r: f"{r['client_region']}->{r['table_home']} (<= {r['target_p50_ms']:.1f})",
    )
    first = fo.get("first_write_s")
    if first is None:
        lines.append(
            f"failover: first write after killing the leader of {fo.get('table')}: none "
            f"({fo.get('error') or fo.get('last_error', '')}) target <= {FAILOVER_S:g} s -> MISSED"
        )
    else:
        state = "met" if first <= FAILOVER_S else "MISSED"
        lines.append(
            f"failover: first write after killing {fo['killed']} (leader of {fo['table']}): "
            f"{first:.2f} s, target <= {FAILOVER_S:g} s -> {state}"
        )
    if "leader_home_s" in fo:
        home = fo["leader_home_s"]
        if fo.get("leader_home_already"):
            lines.append(
                f"leader back in {PRIMARY} after the restart: 0 s (it never left {PRIMARY}: "
                f"{fo['leader_after_kill']} took over), target <= {LEADER_HOME_S:g} s -> met"
            )
        elif home is None:
            lines.append(
                f"leader back in {PRIMARY} after the restart: never within "
                f"{LEADER_HOME_S * 6:g} s, target <= {LEADER_HOME_S:g} s -> MISSED"
            )
        else:
            state = "met" if home <= LEADER_HOME_S else "MISSED"
            lines.append(
                f"leader back in {PRIMARY} after the restart: {home:.2f} s "
                f"(from the restart command), target <= {LEADER_HOME_S:g} s -> {state}"
            )
    for line in lines:
        print(line)
    return lines


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="measured requests per (client region, operation, table) (default 200; --quick 50)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured requests before each measurement (default 20; --quick 5)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="--requests 50 --warmup 5 unless given"
    )
    parser.add_argument(
        "--placement-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for every range to be placed (default 120)",
    )
    parser.add_argument(
        "--failover-timeout",
        type=float,
        default=60.0,
        help="seconds to retry the write after the leader's death (default 60)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the row ids (default 1)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 50 if args.quick else 200
    if args.warmup is None:
        args.warmup = 5 if args.quick else 20
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be >= 1 and --warmup >= 0")

    rng = random.Random(args.seed)
    fresh = Fresh()
    ops: list[Op] = []
    base_ops: list[Op] = []
    fo: dict[str, Any] = {}
    placement: dict[str, Any] = {}
    with work_dir(args.nodes_dir, "bench-geo") as root:
        cluster = start_cluster(root)
        try:
            print(
                "schema: database geo, tables t_us_east, t_us_west, t_eu_west, g, rbr ...",
                flush=True,
            )
            create_schema(cluster)
            print(
                f"placement: waiting (<= {args.placement_timeout:g}s) for every range to be "
                "placed with its leader in its home region ...",
                flush=True,
            )
            ok, took, ranges = wait_placement(cluster, args.placement_timeout)
            placement = {
                "converged": ok,
                "seconds": took,
                "ranges": [describe(r) for r in ranges],
            }
            if ok:
                print(f"placement: converged in {took:.1f}s", flush=True)
            else:
                print(
                    f"WARNING: placement did NOT converge in {took:.0f}s; measuring anyway, "
                    "the figures below may not reflect home-region placement:"
                )
            ranges_of: dict[str, list[int]] = {}
            for r in ranges:
                print(f"  {describe(r)}")
                ranges_of.setdefault(str(r[1]), []).append(int(r[0]))
            for client in REGIONS:
                print(
                    f"measuring from {client} ({args.requests} requests + {args.warmup} "
                    "warm-up per operation) ...",
                    flush=True,
                )
                ops += measure_region(cluster, client, args, rng, fresh, ranges_of)
            print(f"baseline: re-homing every table to {PRIMARY} ...", flush=True)
            ok, took, ranges = rehome_all(cluster, args.placement_timeout)
            print(
                f"baseline: placement {'converged' if ok else 'did NOT converge'} in {took:.1f}s",
                flush=True,
            )
            placement["baseline_converged"] = ok
            for client in REGIONS:
                base_ops += measure_baseline(cluster, client, args, rng, fresh, ranges_of)
            try:
                fo = failover(cluster, args.failover_timeout)
            except Exception as exc:  # noqa: BLE001 - reported; the latency table still prints
                fo = {"table": table_of(PRIMARY), "error": f"{type(exc).__name__}: {exc}"}
                print(f"ERROR: failover measurement failed: {fo['error']}", flush=True)
        finally:
            cluster.stop_all()
        alarms = log_alarms(root)

    rows = [op.row() for op in ops]
    print()
    if not placement.get("converged"):
        print("NOTE: placement had not converged when the measurements started (see above).")
    base_rows = [op.row() for op in base_ops]
    report_baseline(rows, base_rows)
    lines = report(rows, fo)
    print_alarms(alarms)
    write_json(
        args.json,
        {
            "benchmark": "geo",
            "args": vars(args),
            "rtt_ms": RTT_MS,
            "regions": {r: [f"n{n}" for n in nodes] for r, nodes in REGIONS.items()},
            "placement": placement,
            "results": rows,
            "baseline": base_rows,
            "failover": fo,
            "summary": lines,
            "atlasql_log_alarms": alarms,
            "targets": {
                "home_write_p50_ms_max": HOME_WRITE_MS,
                "home_read_p50_ms_max": HOME_READ_MS,
                "remote_write_p50_max_rtt_factor": REMOTE_WRITE_FACTOR,
                "failover_first_write_s_max": FAILOVER_S,
                "leader_home_after_restart_s_max": LEADER_HOME_S,
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

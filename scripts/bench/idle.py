"""Idle cost of many ranges: CPU per node and leadership stability on a quiet 3-node cluster.

Starts 3 atlasql nodes, creates R ranges (today one table = one range replicated on all three
nodes, so R tables ``t{i}``), waits until every range has a leader, then leaves the cluster
alone for ``--idle`` seconds while it

* reads utime+stime of every node process from /proc/<pid>/stat at the start and the end
  (reported as % of one core), and
* polls every node's Admin Status every ``--poll`` seconds and counts leadership changes: a
  replica whose term went up, or whose known leader changed to another node.

Target (engine issue): idle CPU <= 10% of one core per node, 0 leader changes.

    python scripts/bench/idle.py                       # 1000 ranges, 60 s idle
    python scripts/bench/idle.py --ranges 50 --idle 10 # quick check
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import benchlib
from benchlib import (
    add_common_args,
    atlasql_cluster,
    cpu_seconds,
    log_alarms,
    print_alarms,
    print_table,
    work_dir,
    write_json,
)

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path

CPU_TARGET = 10.0  # % of one core per node


@dataclass
class NodeView:
    """What one node reported at the last poll, and the changes seen since the first one."""

    replicas: dict[int, tuple[bool, int, int]] = field(
        default_factory=dict
    )  # id -> (is_leader, leader, term)
    changes: int = 0
    unreachable_polls: int = 0


def snapshot(cluster: benchlib.Cluster, i: int) -> dict[int, tuple[bool, int, int]]:
    st = cluster.status(i)
    return {r.range_id: (r.is_leader, r.leader, r.term) for r in st.replicas}


def count_changes(
    before: dict[int, tuple[bool, int, int]], after: dict[int, tuple[bool, int, int]]
) -> int:
    """Replicas whose term went up, or whose known leader moved to another node.

    >>> count_changes({2: (True, 1, 3)}, {2: (False, 2, 4)})
    1
    >>> count_changes({2: (False, 1, 3)}, {2: (False, 0, 3), 3: (False, 1, 1)})
    0
    """
    n = 0
    for rid, (_, leader, term) in after.items():
        if rid not in before:
            continue
        _, old_leader, old_term = before[rid]
        if term > old_term or (leader and old_leader and leader != old_leader):
            n += 1
    return n


def create_ranges(cluster: benchlib.Cluster, target: int, timeout: float) -> tuple[int, float]:
    """CREATE TABLE t0..t{target-1} through the driver until done or ``timeout``."""
    conn = sqlfront.connect(cluster.addrs())
    cur = conn.cursor()
    t0 = time.monotonic()
    last_print = t0
    created = 0
    try:
        while created < target:
            now = time.monotonic()
            if now - t0 > timeout:
                print(f"create timeout ({timeout:g}s) reached at {created} of {target} ranges")
                break
            cur.execute(f"CREATE TABLE t{created}(id INTEGER PRIMARY KEY, v)")
            created += 1
            if time.monotonic() - last_print >= 5 or created == target:
                last_print = time.monotonic()
                el = last_print - t0
                print(
                    f"  created {created}/{target} tables in {el:.1f}s ({created / el:.1f}/s)",
                    flush=True,
                )
    except sqlfront.Error as exc:
        print(f"CREATE TABLE t{created} failed: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    return created, time.monotonic() - t0


def wait_for_leaders(cluster: benchlib.Cluster, timeout: float) -> tuple[int, int, float]:
    """Poll until every range seen on any node has a leader; return (ranges, led, seconds)."""
    t0 = time.monotonic()
    ranges: set[int] = set()
    led: set[int] = set()
    while True:
        ranges, led = set(), set()
        for i in range(1, cluster.n + 1):
            try:
                for rid, (is_leader, _, _) in snapshot(cluster, i).items():
                    ranges.add(rid)
                    if is_leader:
                        led.add(rid)
            except Exception:  # noqa: BLE001 - an unreachable node just delays the wait
                pass
        if ranges and ranges == led or time.monotonic() - t0 > timeout:
            return len(ranges), len(led), time.monotonic() - t0
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranges", type=int, default=1000, help="tables to create (default 1000)")
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds measured (60)")
    parser.add_argument(
        "--poll",
        type=float,
        default=5.0,
        help="seconds between Status polls during the idle window (5)",
    )
    parser.add_argument(
        "--create-timeout",
        type=float,
        default=900.0,
        help="stop creating tables after this many seconds (900)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=120.0,
        help="max seconds to wait for every range to have a leader (120)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="extra quiet seconds before the idle window starts (5)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.ranges < 1 or args.idle <= 0 or args.poll <= 0:
        parser.error("--ranges must be >= 1, --idle and --poll > 0")

    with work_dir(args.nodes_dir, "bench-idle") as root:
        with atlasql_cluster(root) as cluster:
            print(f"creating {args.ranges} tables (one range each) ...", flush=True)
            created, create_s = create_ranges(cluster, args.ranges, args.create_timeout)
            rate = created / create_s if create_s > 0 else float("nan")
            print(f"created {created} tables in {create_s:.1f}s ({rate:.1f}/s)")

            n_ranges, n_led, settle_s = wait_for_leaders(cluster, args.settle_timeout)
            print(
                f"{n_led}/{n_ranges} ranges (meta included) have a leader after "
                f"{settle_s:.1f}s; quiet for {args.settle:g}s more",
                flush=True,
            )
            time.sleep(args.settle)

            nodes = list(range(1, cluster.n + 1))
            views = {i: NodeView() for i in nodes}
            for i in nodes:
                views[i].replicas = snapshot(cluster, i)
            pids = {i: cluster.procs[i].pid for i in nodes}
            cpu0 = {i: cpu_seconds(pids[i]) for i in nodes}
            t0 = time.monotonic()
            print(f"idle for {args.idle:g}s (Status poll every {args.poll:g}s) ...", flush=True)
            while True:
                left = t0 + args.idle - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(args.poll, left))
                for i in nodes:
                    try:
                        now = snapshot(cluster, i)
                    except Exception:  # noqa: BLE001 - counted and reported
                        views[i].unreachable_polls += 1
                        continue
                    views[i].changes += count_changes(views[i].replicas, now)
                    views[i].replicas = now
            wall = time.monotonic() - t0
            cpu1 = {i: cpu_seconds(pids[i]) for i in nodes}
        alarms = log_alarms(root)

    rows: list[dict[str, Any]] = []
    for i in nodes:
        v = views[i]
        rows.append(
            {
                "node": f"n{i}",
                "ranges": len(v.replicas),
                "leaders": sum(1 for is_leader, _, _ in v.replicas.values() if is_leader),
                "cpu_pct": 100.0 * (cpu1[i] - cpu0[i]) / wall,
                "leader_changes": v.changes,
                "unreachable_polls": v.unreachable_polls,
            }
        )
    print()
    print(f"{created} tables created at {rate:.1f}/s; idle window {wall:.1f}s")
    print_table(
        ["node", "ranges", "leaders", "cpu % of one core", "leader changes"],
        [[r["node"], r["ranges"], r["leaders"], r["cpu_pct"], r["leader_changes"]] for r in rows],
    )
    for r in rows:
        if r["unreachable_polls"]:
            print(f"{r['node']}: Status failed on {r['unreachable_polls']} polls")
    worst_cpu = max(r["cpu_pct"] for r in rows)
    changes = sum(r["leader_changes"] for r in rows)
    ok = worst_cpu <= CPU_TARGET and changes == 0
    print(
        f"\ntarget: idle CPU <= {CPU_TARGET:g}% per node, 0 leader changes "
        f"(at {created + 1} ranges incl. meta)"
    )
    print(
        f"seen:   max idle CPU {worst_cpu:.1f}% per node, {changes} leader changes "
        f"(summed over the nodes' views) -> {'meets' if ok else 'misses'}"
    )
    if created < args.ranges:
        print(f"note: only {created} of {args.ranges} ranges were created")
    print_alarms(alarms)

    write_json(
        args.json,
        {
            "benchmark": "idle",
            "args": vars(args),
            "created": created,
            "create_seconds": create_s,
            "create_rate": rate,
            "idle_seconds": wall,
            "nodes": rows,
            "targets": {"cpu_pct_max": CPU_TARGET, "leader_changes": 0},
            "meets": ok,
            "atlasql_log_alarms": alarms,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Snapshot catch-up: a wiped replica of a large range catches up without any election.

Starts 3 atlasql nodes with a small Raft log limit (``--raft-log-max-entries``, so the range's
log gets compacted and a wiped follower can only catch up from a snapshot), loads
``--size-mb`` of random BLOBs into ``big(id INTEGER PRIMARY KEY, payload BLOB)`` with
multi-row INSERTs, then:

* picks a follower of ``big``'s range (preferring one that leads no range at all), kills it
  and deletes its whole data directory;
* records every range's (term, leader) on the two survivors, restarts the wiped node, and
  times until its replica file ``ranges/r{id}.sqlite`` holds as many loaded rows as the
  leader's (read with sqlite3 in read-only URI mode; errors while the file is swapped in are
  ignored);
* meanwhile a background writer inserts one small row into ``big`` through the leader's node
  every ``--writer-interval`` (50 ms) and records each write's latency (a snapshot that stalls
  the leader's tick thread shows up as a latency spike), and the survivors' Admin Status is
  polled every second: a term that went up, or a leader that moved, is an election.

Target (engine issue): a 200 MB range catching up a wiped replica causes no election anywhere.
Nothing here is an assertion: this is a report.

    python scripts/bench/snapshot.py --size-mb 20     # quick, ~1 min
    python scripts/bench/snapshot.py                  # full: 200 MB
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
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

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path
from tests.cluster import Cluster, wait_for  # noqa: E402

WRITER_BASE = 1_000_000_000  # ids of the writer's and the padding rows; loaded rows are below
MB = 1024 * 1024


# -- replica files ---------------------------------------------------------------------------


def count_rows(path: Path, where: str = "") -> int | None:
    """Rows of ``big`` in one replica file, read-only; None while missing or being swapped."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        return int(db.execute(f"SELECT count(*) FROM big {where}").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()


def replica_path(cluster: Cluster, node: int, range_id: int) -> Path:
    return cluster.data_dir(node) / "ranges" / f"r{range_id}.sqlite"


def dir_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


# -- cluster views ---------------------------------------------------------------------------


def views(cluster: Cluster, nodes: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """(node, range) -> (term, leader) as each node reports it."""
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for i in nodes:
        for r in cluster.status(i).replicas:
            out[(i, r.range_id)] = (int(r.term), int(r.leader))
    return out


def elections(
    before: dict[tuple[int, int], tuple[int, int]], after: dict[tuple[int, int], tuple[int, int]]
) -> list[str]:
    """Replicas whose term went up or whose known leader moved (each one = an election seen).

    >>> elections({(1, 2): (3, 1)}, {(1, 2): (4, 2)})
    ['n1 r2: term 3->4 leader n1->n2']
    >>> elections({(1, 2): (3, 1)}, {(1, 2): (3, 1), (1, 5): (1, 1)})
    []
    """
    seen = []
    for key, (term, leader) in sorted(after.items()):
        if key not in before:
            continue
        old_term, old_leader = before[key]
        if term > old_term or (leader and old_leader and leader != old_leader):
            seen.append(
                f"n{key[0]} r{key[1]}: term {old_term}->{term} leader n{old_leader}->n{leader}"
            )
    return seen


def wait_all_led(cluster: Cluster, nodes: list[int], timeout: float) -> bool:
    """Every range seen on ``nodes`` has a leader among ``nodes`` that they all agree on."""

    def ok() -> bool:
        v = views(cluster, nodes)
        ranges = {rid for _, rid in v}
        for rid in ranges:
            leaders = {v[(i, rid)][1] for i in nodes if (i, rid) in v}
            if len(leaders) != 1 or next(iter(leaders)) not in nodes:
                return False
        return True

    try:
        wait_for("every range led by a survivor", ok, timeout=timeout, interval=0.5)
        return True
    except AssertionError:
        return False


# -- load ------------------------------------------------------------------------------------


def load(
    cluster: Cluster, size_mb: float, row_kb: int, stmt_kb: int, clients: int, randomblob: bool
) -> tuple[int, float, int]:
    """Insert ~``size_mb`` of payload with multi-row INSERTs; returns (rows, seconds, stmts)."""
    row_bytes = row_kb * 1024
    rows_total = max(1, int(size_mb * MB) // row_bytes)
    per_stmt = max(1, (stmt_kb * 1024) // row_bytes)
    if randomblob:
        one = f"(?, randomblob({row_bytes}))"
    else:
        one = "(?, ?)"
    full_sql = "INSERT INTO big(id, payload) VALUES " + ",".join([one] * per_stmt)
    # Statements are dealt to the client threads round-robin: (first id, row count).
    stmts = [(s, min(per_stmt, rows_total - s)) for s in range(0, rows_total, per_stmt)]
    errors: list[str] = []
    done_rows = [0]
    lock = threading.Lock()
    t0 = time.monotonic()
    last = [t0]

    def worker(k: int) -> None:
        conn = sqlfront.connect(
            cluster.addrs(*([k % cluster.n + 1] + list(range(1, cluster.n + 1)))), timeout=120
        )
        try:
            cur = conn.cursor()
            for first, n in stmts[k::clients]:
                sql = (
                    full_sql
                    if n == per_stmt
                    else ("INSERT INTO big(id, payload) VALUES " + ",".join([one] * n))
                )
                params: list[Any] = []
                for rid in range(first, first + n):
                    params.append(rid)
                    if not randomblob:
                        params.append(os.urandom(row_bytes))
                cur.execute(sql, params)
                with lock:
                    done_rows[0] += n
                    now = time.monotonic()
                    if now - last[0] >= 10:
                        last[0] = now
                        mb = done_rows[0] * row_bytes / MB
                        print(
                            f"  loaded {mb:.0f} MB in {now - t0:.0f}s ({mb / (now - t0):.1f} MB/s)",
                            flush=True,
                        )
        except Exception as exc:  # noqa: BLE001 - reported, the run stops
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"load failed: {errors[0]}")
    return done_rows[0], time.monotonic() - t0, len(stmts)


# -- background writer -----------------------------------------------------------------------


class Writer(threading.Thread):
    """Inserts one small row every ``interval`` seconds and records each write's latency."""

    def __init__(self, addrs: str, interval: float) -> None:
        super().__init__(daemon=True, name="bench-writer")
        self.addrs = addrs
        self.interval = interval
        self.stop_event = threading.Event()
        self.latencies: list[float] = []
        self.started: list[float] = []  # monotonic start time of each successful write
        self.errors = 0
        self.first_error = ""
        self.next_id = WRITER_BASE + 500_000_000

    def run(self) -> None:
        conn = sqlfront.connect(self.addrs, timeout=30)
        cur = conn.cursor()
        try:
            # One unmeasured write warms the connection up (channel, catalog, leader cache).
            cur.execute("INSERT INTO big(id, payload) VALUES (?, ?)", (self.next_id, b"w"))
            self.next_id += 1
            while not self.stop_event.is_set():
                t0 = time.monotonic()
                try:
                    cur.execute(
                        "INSERT INTO big(id, payload) VALUES (?, ?)", (self.next_id, b"w" * 64)
                    )
                    self.latencies.append(time.monotonic() - t0)
                    self.started.append(t0)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    self.errors += 1
                    if not self.first_error:
                        self.first_error = f"{type(exc).__name__}: {exc}"[:300]
                self.next_id += 1
                left = self.interval - (time.monotonic() - t0)
                if left > 0:
                    self.stop_event.wait(left)
        finally:
            conn.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


# -- main ------------------------------------------------------------------------------------


def log_lines(root: Path, node: int, pattern: str, since: int = 0) -> list[str]:
    path = root / f"n{node}.log"
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()[since:]
    rx = re.compile(pattern)
    return [x for x in lines if rx.search(x)]


def log_len(root: Path, node: int) -> int:
    path = root / f"n{node}.log"
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200.0, help="payload to load (200)")
    parser.add_argument(
        "--log-max-entries",
        type=int,
        default=1000,
        help="--raft-log-max-entries of every node (1000)",
    )
    parser.add_argument("--row-kb", type=int, default=16, help="payload bytes per row, KiB (16)")
    parser.add_argument(
        "--stmt-kb",
        type=int,
        default=1024,
        help="payload per multi-row INSERT statement, KiB (1024)",
    )
    parser.add_argument(
        "--load-clients", type=int, default=2, help="concurrent loading connections (2)"
    )
    parser.add_argument(
        "--randomblob",
        action="store_true",
        help="payload as randomblob(N) rewritten by the gateway instead of "
        "bound bytes (each statement then carries hex text: 2x larger)",
    )
    parser.add_argument(
        "--writer-interval",
        type=float,
        default=0.05,
        help="seconds between background writes during catch-up (0.05)",
    )
    parser.add_argument(
        "--catchup-timeout",
        type=float,
        default=600.0,
        help="give up waiting for the wiped replica after this many s (600)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the node directories (under --nodes-dir, else under the temp dir)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.size_mb <= 0 or args.row_kb < 1 or args.stmt_kb < args.row_kb:
        parser.error("--size-mb > 0, --row-kb >= 1, --stmt-kb >= --row-kb")
    nodes_dir = args.nodes_dir or (tempfile.gettempdir() if args.keep else None)

    result: dict[str, Any] = {"benchmark": "snapshot", "args": vars(args)}
    with work_dir(nodes_dir, "bench-snapshot") as root:
        cluster = Cluster(
            root,
            n=3,
            secret="bench-secret",
            extra_args=("--raft-log-max-entries", str(args.log_max_entries)),
        )
        writer: Writer | None = None
        try:
            t0 = time.monotonic()
            cluster.start_all()
            cluster.init()
            print(
                f"atlasql: 3 nodes up and initialised in {time.monotonic() - t0:.1f}s "
                f"(--raft-log-max-entries {args.log_max_entries}; {cluster.addrs()})"
            )
            conn = sqlfront.connect(cluster.addrs(), timeout=60)
            conn.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, payload BLOB)")
            range_id = max(r.range_id for r in cluster.status(1).replicas)

            # 1. load
            print(
                f"loading {args.size_mb:g} MB into big (range {range_id}): {args.row_kb} KiB "
                f"rows, {args.stmt_kb} KiB statements, {args.load_clients} clients ...",
                flush=True,
            )
            rows, load_s, n_stmts = load(
                cluster, args.size_mb, args.row_kb, args.stmt_kb, args.load_clients, args.randomblob
            )
            loaded_mb = rows * args.row_kb * 1024 / MB
            print(
                f"loaded {rows} rows = {loaded_mb:.1f} MB in {n_stmts} statements, "
                f"{load_s:.1f}s ({loaded_mb / load_s:.1f} MB/s)",
                flush=True,
            )
            leader = wait_for("big's leader", lambda: cluster.leader_of(range_id), timeout=30)

            # The wiped follower must need a snapshot: push the log past the limit with
            # small rows if the load did not, and wait for the leader to compact it.
            compacted = f"range {range_id}: log compacted"
            pad = 0
            t_pad = time.monotonic()
            while not log_lines(root, leader, re.escape(compacted)):
                if time.monotonic() - t_pad > 120:
                    print(
                        "WARNING: the leader's log was not compacted within 120s; the wiped "
                        "replica may catch up by log replay instead of a snapshot"
                    )
                    break
                conn.executemany(
                    "INSERT INTO big(id, payload) VALUES (?, ?)",
                    [(WRITER_BASE + pad + k, b"p") for k in range(50)],
                )
                pad += 50
                time.sleep(0.05)
            if pad:
                print(
                    f"padded the log with {pad} small writes until it was compacted "
                    f"({time.monotonic() - t_pad:.1f}s)"
                )
            conn.close()
            leader = wait_for("big's leader", lambda: cluster.leader_of(range_id), timeout=30)
            st = {r.range_id: r for r in cluster.status(leader).replicas}[range_id]
            leader_file = replica_path(cluster, leader, range_id)
            print(
                f"range {range_id}: leader n{leader}, term {st.term}, commit {st.commit_index}, "
                f"last {st.last_index}; replica file {leader_file.stat().st_size / MB:.1f} MB"
            )

            # 2. victim: a follower of big, preferably leading no range at all
            leads: dict[int, set[int]] = {i: set() for i in cluster.procs}
            for i in cluster.procs:
                for r in cluster.status(i).replicas:
                    if r.is_leader:
                        leads[i].add(int(r.range_id))
            followers = [i for i in sorted(cluster.procs) if i != leader]
            victim = min(followers, key=lambda i: (len(leads[i]), i))
            survivors = [i for i in sorted(cluster.procs) if i != victim]
            if leads[victim]:
                print(
                    f"note: every follower leads some range; n{victim} leads "
                    f"{sorted(leads[victim])}, so its kill itself causes elections there "
                    "(waited out before the baseline)"
                )
            wiped_bytes = dir_bytes(cluster.data_dir(victim))
            print(
                f"killing n{victim} (follower) and deleting its data dir "
                f"({wiped_bytes / MB:.1f} MB)",
                flush=True,
            )
            cluster.kill(victim)
            shutil.rmtree(cluster.data_dir(victim))
            if leads[victim] and not wait_all_led(cluster, survivors, 30):
                print("WARNING: the survivors did not agree on leaders within 30s")
            before = views(cluster, survivors)
            target_rows = count_rows(leader_file, f"WHERE id < {WRITER_BASE}")
            log_mark = {i: log_len(root, i) for i in survivors}

            writer = Writer(
                cluster.addrs(leader, *[i for i in survivors if i != leader]), args.writer_interval
            )
            writer.start()
            time.sleep(0.5)  # a few writes before the restart: the baseline latency
            victim_file = replica_path(cluster, victim, range_id)
            print(
                f"restarting n{victim}; waiting until its replica holds the {target_rows} "
                f"loaded rows ...",
                flush=True,
            )
            t_start = time.monotonic()
            cluster.start(victim, wait=False)
            caught_up_s: float | None = None
            seen: list[str] = []
            polls_failed = 0
            last_poll = 0.0
            last_print = t_start
            while True:
                now = time.monotonic()
                if count_rows(victim_file, f"WHERE id < {WRITER_BASE}") == target_rows:
                    caught_up_s = now - t_start
                    break
                if now - t_start > args.catchup_timeout:
                    break
                if cluster.procs[victim].poll() is not None:
                    print(f"n{victim} exited; log tail:\n{cluster.log_tail(victim)}")
                    break
                if now - last_poll >= 1.0:
                    last_poll = now
                    try:
                        for e in elections(before, views(cluster, survivors)):
                            if e not in seen:
                                seen.append(e)
                                print(f"  election seen at +{now - t_start:.1f}s: {e}")
                    except Exception:  # noqa: BLE001 - counted and reported
                        polls_failed += 1
                if now - last_print >= 10:
                    last_print = now
                    size = victim_file.stat().st_size if victim_file.exists() else 0
                    print(
                        f"  +{now - t_start:.0f}s: n{victim} replica file {size / MB:.1f} MB",
                        flush=True,
                    )
                time.sleep(0.1)
            if caught_up_s is not None:
                print(f"n{victim} caught up in {caught_up_s:.2f}s", flush=True)
            else:
                print(f"n{victim} did NOT catch up within {time.monotonic() - t_start:.0f}s")
            time.sleep(1.0)  # a little after the swap: the writer's next writes count too
            writer.stop()
            after = views(cluster, survivors)
            for e in elections(before, after):
                if e not in seen:
                    seen.append(e)

            # after the writer stopped, the wiped replica should converge to the leader's rows
            converged = False
            try:
                wait_for(
                    "replica converged",
                    lambda: (
                        count_rows(victim_file) is not None
                        and count_rows(victim_file) == count_rows(leader_file)
                    ),
                    timeout=30,
                )
                converged = True
            except AssertionError:
                pass
            victim_view = {r.range_id: r for r in cluster.status(victim).replicas}
            vr = victim_view.get(range_id)
            snap_sent = log_lines(
                root, leader, rf"range {range_id}: sending snapshot", log_mark[leader]
            )
            snap_fail = [
                x
                for i in survivors
                for x in log_lines(
                    root, i, rf"range {range_id}: (snapshot to|n\d+ refused snapshot)", log_mark[i]
                )
            ]
            installed = log_lines(root, victim, rf"range {range_id}: installed snapshot")
        finally:
            if writer is not None and writer.is_alive():
                writer.stop()
            cluster.stop_all()
        alarms = log_alarms(root)

    w = summarize(writer.latencies) if writer and writer.latencies else {}
    max_ms = max(writer.latencies) * 1000 if writer and writer.latencies else float("nan")
    max_at = float("nan")
    if writer and writer.latencies:
        k = writer.latencies.index(max(writer.latencies))
        max_at = writer.started[k] - t_start
    mbps = loaded_mb / caught_up_s if caught_up_s else float("nan")
    print()
    print(
        f"range {range_id}: leader n{leader}, wiped follower n{victim}; snapshots sent by the "
        f"leader: {len(snap_sent)}, installed by n{victim}: {len(installed)}, failed/refused: "
        f"{len(snap_fail)}; after the writer stopped the wiped replica "
        f"{'matches' if converged else 'does NOT match'} the leader's row count"
    )
    if vr is not None:
        print(
            f"n{victim} view of range {range_id}: term {vr.term}, leader n{vr.leader}, "
            f"commit {vr.commit_index}, applied {vr.applied_index}, last {vr.last_index}"
        )
    if w:
        print(
            f"writer: {w['ops']} writes every {args.writer_interval * 1000:.0f} ms through "
            f"n{leader}, p50 {w['p50_ms']:.1f} ms, p99 {w['p99_ms']:.1f} ms, "
            f"max {max_ms:.1f} ms (sent {max_at:+.2f}s from the restart), "
            f"errors {writer.errors if writer else 0}"
        )
    if writer and writer.first_error:
        print(f"writer first error: {writer.first_error}")
    print_table(
        [
            "size MB",
            "load s",
            "catch-up s",
            "MB/s",
            "elections on survivors",
            "writer max latency ms",
            "writer errors",
        ],
        [
            [
                loaded_mb,
                load_s,
                caught_up_s if caught_up_s is not None else float("nan"),
                mbps,
                len(seen),
                max_ms,
                writer.errors if writer else 0,
            ]
        ],
    )
    for e in seen:
        print(f"  election: {e}")
    if polls_failed:
        print(f"Status polls of the survivors failed {polls_failed} times")
    ok = caught_up_s is not None and not seen
    print("\ntarget: catch-up with 0 elections")
    print(
        f"seen:   {'caught up' if caught_up_s is not None else 'no catch-up'}"
        + (f" in {caught_up_s:.1f}s" if caught_up_s is not None else "")
        + f", {len(seen)} elections -> {'meets' if ok else 'misses'}"
    )
    for line in snap_fail[:5]:
        print(f"  {line[:200]}")
    print_alarms(alarms)

    result.update(
        {
            "range_id": range_id,
            "leader": leader,
            "victim": victim,
            "rows": rows,
            "size_mb": loaded_mb,
            "load_seconds": load_s,
            "statements": n_stmts,
            "padding_writes": pad,
            "catchup_seconds": caught_up_s,
            "catchup_mb_per_s": mbps,
            "elections": seen,
            "writer": {
                **w,
                "max_ms": max_ms,
                "max_at_s": max_at,
                "errors": writer.errors if writer else 0,
                "first_error": writer.first_error if writer else "",
            },
            "snapshots_sent": len(snap_sent),
            "snapshots_installed": len(installed),
            "snapshot_failures": snap_fail,
            "converged": converged,
            "meets": ok,
            "atlasql_log_alarms": alarms,
        }
    )
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

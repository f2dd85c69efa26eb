"""Log compaction and snapshots (engine issue, item 7): a range's log is compacted once the
engine has applied it, and a wiped replica catches up from a SQLite-backup snapshot streamed
by the leader, without any election."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import sqlfront
from tests.cluster import Cluster, wait_for


def _rows(path: Path) -> int | None:
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()


def _terms(c: Cluster, nodes: list[int]) -> dict[tuple[int, int], int]:
    return {(i, r.range_id): r.term for i in nodes for r in c.status(i).replicas}


def test_wiped_replica_catches_up_from_snapshot_without_elections(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=3, extra_args=("--raft-log-max-entries", "40"))
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        for i in range(300):  # one log entry each (executemany would be one entry)
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 100))
        range_id = next(r.range_id for r in c.status(1).replicas if r.range_id != 1)
        leader = wait_for("leader", lambda: c.leader_of(range_id))
        # The leader's log was compacted: it no longer starts at index 1.
        status = {r.range_id: r for r in c.status(leader).replicas}
        assert status[range_id].last_index > 300
        victim = next(i for i in (1, 2, 3) if i != leader)
        c.kill(victim)
        shutil.rmtree(c.data_dir(victim))
        survivors = [i for i in (1, 2, 3) if i != victim]
        before = _terms(c, survivors)
        c.start(victim)
        replica = c.data_dir(victim) / "ranges" / f"r{range_id}.sqlite"
        wait_for("wiped replica caught up", lambda: _rows(replica) == 300, timeout=60)
        conn.execute("INSERT INTO t VALUES (1000, 'after')")
        wait_for("new write reaches it", lambda: _rows(replica) == 301, timeout=30)
        after = _terms(c, survivors)
        assert after == before, f"elections happened: {before} -> {after}"
        logs = (tmp_path / f"n{leader}.log").read_text()
        assert "sending snapshot" in logs
        assert "log compacted" in logs
    finally:
        c.stop_all()


def test_restart_after_compaction_resumes_applying(tmp_path: Path) -> None:
    """pysyncobj restarts applying at index 2, which compaction removed: the replica must resume
    from its engine's applied index instead, or it never applies (or serves a read) again."""
    c = Cluster(tmp_path, n=3, extra_args=("--raft-log-max-entries", "40"))
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        for i in range(200):  # one log entry each, so the log is compacted
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x"))
        assert all("log compacted" in (tmp_path / f"n{i}.log").read_text() for i in (1, 2, 3))
        for node in (1, 2, 3):  # restart every node, leaders included
            c.kill(node)
            c.start(node)
            conn.execute("INSERT INTO t VALUES (?, 'after restart')", (1000 + node,))
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (203,)
        for node in (1, 2, 3):
            replica = c.data_dir(node) / "ranges" / "r2.sqlite"
            wait_for(f"n{node} applied everything", lambda r=replica: _rows(r) == 203)
    finally:
        c.stop_all()

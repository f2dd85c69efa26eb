"""Lock promises (sqlfront/txn.py, raftgroups ``promise_term``): a COMMIT does not go back to a
range it only read when that range's leader promised its term (so its lock table) outlives
the moment COMMIT starts; a leader that hands over (here: an operator's RELOCATE LEADER) does
so only after its promises ran out, so a read whose locks moved away is still caught."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import sqlfront
from tests.cluster import Cluster, running, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("promises"), n=3, metrics=True) as c:
        yield c


def _events(c: Cluster, node: int, event: str) -> float:
    return c.metric(f'atlasql_txn_events_total{{event="{event}"}}', node)


def _two_ranges(conn: sqlfront.Connection, table: str) -> tuple[int, int]:
    """``table`` split at k = 100 with rows 1 and 101; the (low, high) range ids."""
    conn.execute(f"CREATE TABLE {table}(k INTEGER PRIMARY KEY, v INTEGER)")
    conn.executemany(f"INSERT INTO {table} VALUES (?, 0)", [(1,), (101,)])
    conn.execute(f"ALTER TABLE {table} SPLIT AT VALUES (100)")
    ranges = [int(r[0]) for r in conn.execute(f"SHOW RANGES FROM TABLE {table}").fetchall()]
    assert len(ranges) == 2
    return ranges[0], ranges[1]


def test_read_only_range_is_not_checked_again_at_commit(cluster: Cluster) -> None:
    c = cluster
    conn = sqlfront.connect(c.addr(1))
    _two_ranges(conn, "p1")
    before = (_events(c, 1, "reader_unchecked"), _events(c, 1, "commit_fast"))
    conn.execute("BEGIN")
    assert conn.execute("SELECT v FROM p1 WHERE k = 1").fetchone() == (0,)
    conn.execute("UPDATE p1 SET v = 5 WHERE k = 101")
    conn.execute("COMMIT")
    after = (_events(c, 1, "reader_unchecked"), _events(c, 1, "commit_fast"))
    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 1.0)
    assert conn.execute("SELECT k, v FROM p1 ORDER BY k").fetchall() == [(1, 0), (101, 5)]


def test_commit_after_the_read_range_changed_leader_restarts(cluster: Cluster) -> None:
    """The read's locks went with the old leader's term: COMMIT must not trust them. The
    transfer waits for the promise to run out, so COMMIT checks, and restarts (40001)."""
    c = cluster
    conn = sqlfront.connect(c.addr(1))
    low, _high = _two_ranges(conn, "p2")
    other = sqlfront.connect(c.addr(2))
    conn.execute("BEGIN")
    assert conn.execute("SELECT v FROM p2 WHERE k = 1").fetchone() == (0,)
    leader = wait_for("a leader", lambda: c.leader_of(low))
    target = 2 if leader != 2 else 3
    assert other.execute(f"ALTER RANGE {low} RELOCATE LEADER TO {target}").fetchone() == (
        low,
        target,
    )
    conn.execute("UPDATE p2 SET v = 7 WHERE k = 101")
    with pytest.raises(sqlfront.OperationalError) as info:
        conn.execute("COMMIT")
    assert info.value.sqlstate == "40001", info.value
    assert not conn.in_transaction
    assert conn.execute("SELECT k, v FROM p2 ORDER BY k").fetchall() == [(1, 0), (101, 0)]


def test_leader_transfer_is_not_held_off_by_a_stream_of_readers(cluster: Cluster) -> None:
    """Transactions reading the range back to back keep renewing promises; a transfer blocks
    new ones, waits for the last to run out and completes; the readers restart at worst."""
    c = cluster
    conn = sqlfront.connect(c.addr(1))
    low, _high = _two_ranges(conn, "p3")
    leader = wait_for("a leader", lambda: c.leader_of(low))
    target = 2 if leader != 2 else 3
    stop = threading.Event()
    done: list[int] = []
    errors: list[str] = []

    def reader() -> None:
        r = sqlfront.connect(c.addr(1))
        while not stop.is_set():
            try:
                r.execute("BEGIN")
                r.execute("SELECT v FROM p3 WHERE k = 1").fetchone()
                r.execute("COMMIT")
                done.append(1)
            except sqlfront.Error as exc:
                if getattr(exc, "sqlstate", "") != "40001":
                    errors.append(str(exc))
                if r.in_transaction:
                    r.execute("ROLLBACK")

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for("readers running", lambda: len(done) >= 20)
        other = sqlfront.connect(c.addr(3))
        assert other.execute(f"ALTER RANGE {low} RELOCATE LEADER TO {target}").fetchone() == (
            low,
            target,
        )
        assert wait_for("new leader", lambda: c.leader_of(low) == target)
        running = len(done)
        wait_for("readers still running", lambda: len(done) >= running + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:3]

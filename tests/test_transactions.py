"""Transactions (issue 6): BEGIN/COMMIT/ROLLBACK/SAVEPOINT as in SQLite, serializable isolation
with 40001 restarts, the one-entry fast path, two-phase commit across ranges, recovery of a
coordinator that died between the phases, and sessions whose client vanished."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import sqlfront
from proto import pb
from tests.cluster import Cluster, wait_for


def _accounts(conn: sqlfront.Connection, table: str, n: int = 30, splits: str = "10, 20") -> None:
    conn.execute(f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")
    conn.executemany(f"INSERT INTO {table} VALUES (?, 100)", [(i,) for i in range(n)])
    conn.execute(
        f"ALTER TABLE {table} SPLIT AT VALUES " + ", ".join(f"({s})" for s in splits.split(","))
    )


def _sqlstate(exc: pytest.ExceptionInfo[sqlfront.DatabaseError]) -> str:
    return str(exc.value.sqlstate)


def test_commit_rollback_savepoints_behave_as_in_sqlite(module_cluster: Cluster) -> None:
    c = module_cluster
    a = sqlfront.connect(c.addr(1))
    b = sqlfront.connect(c.addr(2))
    _accounts(a, "sem")
    a.execute("BEGIN")
    assert a.in_transaction
    a.execute("UPDATE sem SET bal = bal - 30 WHERE id = 1")
    a.execute("UPDATE sem SET bal = bal + 30 WHERE id = 25")
    # A transaction reads its own writes; nobody else sees them before COMMIT.
    assert a.execute("SELECT id, bal FROM sem WHERE id IN (1, 25) ORDER BY id").fetchall() == [
        (1, 70),
        (25, 130),
    ]
    assert a.execute("SELECT sum(bal) FROM sem").fetchone() == (3000,)
    assert b.execute("SELECT bal FROM sem WHERE id = 25").fetchone() == (100,)
    a.execute("COMMIT")
    assert not a.in_transaction
    assert b.execute("SELECT id, bal FROM sem WHERE id IN (1, 25) ORDER BY id").fetchall() == [
        (1, 70),
        (25, 130),
    ]
    # ROLLBACK undoes everything, on every range.
    a.execute("BEGIN")
    assert a.execute("DELETE FROM sem WHERE id >= 5").rowcount == 25
    assert a.execute("SELECT count(*) FROM sem").fetchone() == (5,)
    a.execute("ROLLBACK")
    assert b.execute("SELECT count(*), sum(bal) FROM sem").fetchone() == (30, 3000)
    # Savepoints: ROLLBACK TO keeps the transaction and what came before the savepoint.
    a.execute("BEGIN")
    a.execute("INSERT INTO sem VALUES (100, 1)")
    a.execute("SAVEPOINT one")
    a.execute("INSERT INTO sem VALUES (101, 1)")
    a.execute("SAVEPOINT two")
    a.execute("INSERT INTO sem VALUES (5000, 1)")
    a.execute("ROLLBACK TO one")
    assert a.execute("SELECT id FROM sem WHERE id >= 100 ORDER BY id").fetchall() == [(100,)]
    a.execute("INSERT INTO sem VALUES (102, 1)")
    a.execute("RELEASE one")
    a.execute("COMMIT")
    assert b.execute("SELECT id FROM sem WHERE id >= 100 ORDER BY id").fetchall() == [
        (100,),
        (102,),
    ]
    # A SAVEPOINT outside a transaction starts one; RELEASE of it commits.
    a.execute("SAVEPOINT outer_sp")
    a.execute("DELETE FROM sem WHERE id >= 100")
    assert b.execute("SELECT count(*) FROM sem WHERE id >= 100").fetchone() == (2,)
    a.execute("RELEASE SAVEPOINT outer_sp")
    assert not a.in_transaction
    assert b.execute("SELECT count(*) FROM sem WHERE id >= 100").fetchone() == (0,)
    # A failing statement is undone alone; the transaction goes on (as in SQLite).
    a.execute("BEGIN")
    a.execute("UPDATE sem SET bal = 0 WHERE id = 2")
    with pytest.raises(sqlfront.IntegrityError):
        a.execute("INSERT INTO sem VALUES (3, 1), (40, 1)")
    with pytest.raises(sqlfront.NotSupportedError):
        a.execute("CREATE TABLE nope(x)")
    assert a.in_transaction
    a.execute("COMMIT")
    assert b.execute("SELECT bal FROM sem WHERE id = 2").fetchone() == (0,)
    assert b.execute("SELECT count(*) FROM sem WHERE id = 40").fetchone() == (0,)
    # Errors name the problem.
    for sql, code in (
        ("COMMIT", "25P01"),
        ("ROLLBACK", "25P01"),
        ("RELEASE nothing", "3B001"),
        ("ROLLBACK TO nothing", "3B001"),
    ):
        with pytest.raises(sqlfront.DatabaseError) as info:
            a.execute(sql)
        assert _sqlstate(info) == code, sql
    a.execute("BEGIN")
    with pytest.raises(sqlfront.DatabaseError) as info:
        a.execute("BEGIN")
    assert _sqlstate(info) == "25001"
    a.execute("ROLLBACK")


def test_driver_autocommit_off_wraps_statements_in_transactions(module_cluster: Cluster) -> None:
    c = module_cluster
    a = sqlfront.connect(c.addr(3), autocommit=False)
    watcher = sqlfront.connect(c.addr(1))
    a.execute("CREATE TABLE drv(k INTEGER PRIMARY KEY, v TEXT)")  # DDL: on its own
    assert not a.in_transaction
    a.execute("INSERT INTO drv VALUES (1, 'a')")
    assert a.in_transaction
    assert watcher.execute("SELECT count(*) FROM drv").fetchone() == (0,)
    a.commit()
    assert watcher.execute("SELECT count(*) FROM drv").fetchone() == (1,)
    a.execute("INSERT INTO drv VALUES (2, 'b')")
    a.rollback()
    assert watcher.execute("SELECT count(*) FROM drv").fetchone() == (1,)
    a.execute("INSERT INTO drv VALUES (3, 'c')")
    a.autocommit = True  # commits the open transaction, as sqlite3 does
    assert watcher.execute("SELECT k FROM drv ORDER BY k").fetchall() == [(1,), (3,)]
    a.execute("INSERT INTO drv VALUES (4, 'd')")  # autocommit again
    assert watcher.execute("SELECT count(*) FROM drv").fetchone() == (3,)
    b = sqlfront.connect(c.addr(3), autocommit=False)
    b.execute("INSERT INTO drv VALUES (5, 'e')")
    b.close()  # closing rolls back
    assert watcher.execute("SELECT count(*) FROM drv WHERE k = 5").fetchone() == (0,)


def test_conflicts_restart_with_40001_and_deadlocks_end_quickly(module_cluster: Cluster) -> None:
    c = module_cluster
    a = sqlfront.connect(c.addr(1))
    b = sqlfront.connect(c.addr(2))
    _accounts(a, "dl")
    a.execute("BEGIN")
    b.execute("BEGIN")  # younger
    a.execute("UPDATE dl SET bal = bal + 1 WHERE id = 1")
    b.execute("UPDATE dl SET bal = bal + 1 WHERE id = 25")
    outcome: dict[str, object] = {}

    def older() -> None:
        try:
            a.execute("UPDATE dl SET bal = bal + 1 WHERE id = 25")  # waits for b
            a.execute("COMMIT")
            outcome["a"] = "committed"
        except sqlfront.DatabaseError as exc:
            outcome["a"] = exc.sqlstate

    t = threading.Thread(target=older)
    started = time.monotonic()
    t.start()
    with pytest.raises(sqlfront.OperationalError) as info:
        b.execute("UPDATE dl SET bal = bal + 1 WHERE id = 1")  # younger: restarts at once
    assert _sqlstate(info) == "40001"
    # The failed transaction accepts only ROLLBACK.
    with pytest.raises(sqlfront.DatabaseError) as info2:
        b.execute("SELECT 1 FROM dl")
    assert _sqlstate(info2) == "25P02"
    b.execute("ROLLBACK")
    t.join(timeout=10)
    assert outcome == {"a": "committed"}
    assert time.monotonic() - started < 5.0
    assert b.execute("SELECT bal FROM dl WHERE id IN (1, 25) ORDER BY id").fetchall() == [
        (101,),
        (101,),
    ]
    # Serializable read-modify-write: two transactions read then write the same row; one
    # restarts instead of both succeeding (no lost update).
    a.execute("BEGIN")
    b.execute("BEGIN")
    assert a.execute("SELECT bal FROM dl WHERE id = 7").fetchone() == (100,)
    assert b.execute("SELECT bal FROM dl WHERE id = 7").fetchone() == (100,)
    results = []
    for conn in (b, a):
        try:
            conn.execute("UPDATE dl SET bal = ? WHERE id = 7", (100 + 5,))
            conn.execute("COMMIT")
            results.append("ok")
        except sqlfront.DatabaseError as exc:
            results.append(str(exc.sqlstate))
            conn.execute("ROLLBACK")
    assert sorted(results) == ["40001", "ok"]
    assert a.execute("SELECT bal FROM dl WHERE id = 7").fetchone() == (105,)


def _range_commit_index(c: Cluster, range_id: int) -> int:
    leader = c.leader_of(range_id)
    assert leader is not None
    for r in c.status(leader).replicas:
        if r.range_id == range_id:
            return int(r.commit_index)
    raise AssertionError(range_id)


def test_single_range_transaction_is_one_log_entry(module_cluster: Cluster) -> None:
    c = module_cluster
    conn = sqlfront.connect(c.addr(1))
    conn.execute("CREATE TABLE one(k INTEGER PRIMARY KEY, v INTEGER)")
    conn.executemany("INSERT INTO one VALUES (?, 0)", [(k,) for k in range(10)])
    range_id = int(conn.execute("SHOW RANGES FROM TABLE one").fetchone()[0])
    before = _range_commit_index(c, range_id)
    conn.execute("BEGIN")
    conn.execute("SELECT v FROM one WHERE k = 1")
    for k in range(5):
        conn.execute("UPDATE one SET v = v + 1 WHERE k = ?", (k,))
    conn.execute("INSERT INTO one VALUES (99, 1)")
    conn.execute("COMMIT")
    assert _range_commit_index(c, range_id) - before == 1  # the whole transaction: one entry
    assert conn.execute("SELECT sum(v) FROM one").fetchone() == (6,)


def _leader_kill_safe_cluster(tmp_path: Path) -> Cluster:
    c = Cluster(tmp_path, n=3, extra_args=("--txn-timeout", "3"))
    c.start_all()
    c.init()
    return c


@pytest.mark.parametrize("point", ["after_prepare", "after_commit"])
def test_coordinator_killed_between_phases_is_resolved(tmp_path: Path, point: str) -> None:
    """The gateway running a two-range transaction dies after the intents were written (no
    record: recovery aborts it everywhere) or after the record said COMMITTED (recovery
    applies the intents everywhere): never half."""
    c = _leader_kill_safe_cluster(tmp_path)
    try:
        setup = sqlfront.connect(c.addr(1))
        _accounts(setup, "bank", splits="15")
        coordinator = 3
        conn = sqlfront.connect(c.addr(coordinator))
        conn.execute("BEGIN")
        conn.execute("UPDATE bank SET bal = bal - 40 WHERE id = 2")
        conn.execute("UPDATE bank SET bal = bal + 40 WHERE id = 20")
        c.inject(coordinator, pb.FaultRequest(txn_crash=point))
        with pytest.raises(sqlfront.DatabaseError):
            conn.execute("COMMIT")
        wait_for("coordinator gone", lambda: c.procs[coordinator].poll() is not None, timeout=10)
        reader = sqlfront.connect(c.addr(1))
        expected = [(2, 60), (20, 140)] if point == "after_commit" else [(2, 100), (20, 100)]

        def settled() -> bool:
            try:
                got = reader.execute("SELECT id, bal FROM bank WHERE id IN (2, 20) ORDER BY id")
                return got.fetchall() == expected
            except sqlfront.DatabaseError:
                return False

        wait_for(f"transaction resolved ({point})", settled, timeout=30)
        assert reader.execute("SELECT sum(bal) FROM bank").fetchone() == (3000,)
        # Its rows are free again: another transaction writes them.
        reader.execute("BEGIN")
        reader.execute("UPDATE bank SET bal = bal + 1 WHERE id IN (2, 20)")
        reader.execute("COMMIT")
        c.start(coordinator)

        def consistent() -> bool:
            check = reader.execute("CHECK CONSISTENCY FROM TABLE bank").fetchall()
            return len(check) == 6 and all(row[-1] == "consistent" for row in check)

        wait_for("every replica consistent", consistent, timeout=30)
    finally:
        c.stop_all()


def test_transaction_of_a_vanished_client_is_aborted(tmp_path: Path) -> None:
    c = _leader_kill_safe_cluster(tmp_path)
    try:
        setup = sqlfront.connect(c.addr(1))
        _accounts(setup, "idle", splits="15")
        gone = sqlfront.connect(c.addr(2))
        gone.execute("BEGIN")
        gone.execute("UPDATE idle SET bal = 0 WHERE id IN (1, 20)")
        # The client says nothing more (no COMMIT, no ROLLBACK, no close).
        other = sqlfront.connect(c.addr(1))
        started = time.monotonic()

        def writable() -> bool:
            try:
                other.execute("UPDATE idle SET bal = 7 WHERE id IN (1, 20)")
                return True
            except sqlfront.OperationalError as exc:
                assert exc.sqlstate == "40001"
                return False

        wait_for("locks of the vanished session released", writable, timeout=30)
        assert time.monotonic() - started < 20
        assert other.execute("SELECT bal FROM idle WHERE id IN (1, 20)").fetchall() == [(7,), (7,)]
        with pytest.raises(sqlfront.DatabaseError):
            gone.execute("COMMIT")  # its transaction is gone
    finally:
        c.stop_all()

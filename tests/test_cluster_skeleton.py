"""System tests of the walking skeleton: real node processes, driven through the public
CLI and the DB-API driver (issue 2, "What must hold")."""

from __future__ import annotations

import sqlite3
import time

import pytest

import sqlfront
from tests.cluster import Cluster, atlasql, wait_for


def _table_range(c: Cluster, table: str) -> int:
    """The range id of ``table`` (the only non-meta range on the nodes)."""
    conn = sqlfront.connect(c.addr(1))
    try:
        conn.execute(f"SELECT count(*) FROM {table}")
    finally:
        conn.close()
    ids = {r.range_id for r in c.status(1).replicas if r.range_id != 1}
    assert len(ids) == 1, ids
    return ids.pop()


def _replica_rows(c: Cluster, node: int, range_id: int, sql: str) -> list[tuple[object, ...]]:
    path = c.data_dir(node) / "ranges" / f"r{range_id}.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_write_anywhere_read_anywhere_survives_leader_kill(cluster: Cluster) -> None:
    c = cluster
    c1 = sqlfront.connect(c.addr(1))
    c1.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")

    c2 = sqlfront.connect(c.addr(2))
    cur = c2.cursor()
    cur.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(100)])
    assert cur.rowcount == 100

    c3 = sqlfront.connect(c.addr(3))
    rows = c3.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert rows == [(i, f"v{i}") for i in range(100)]

    range_id = _table_range(c, "t")
    leader = wait_for("a leader", lambda: c.leader_of(range_id))
    c.kill(leader)
    survivor = next(i for i in (1, 2, 3) if i != leader)
    conn = sqlfront.connect(c.addr(survivor))
    t0 = time.monotonic()
    conn.execute("INSERT INTO t VALUES (100, 'after-kill')")
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0, f"write after leader kill took {elapsed:.2f}s"

    c.start(leader)
    wait_for(
        f"n{leader} catching up",
        lambda: (
            _replica_rows(c, leader, range_id, "SELECT count(*), max(id) FROM t") == [(101, 100)]
        ),
        timeout=30,
    )
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (101,)


def test_random_is_the_same_on_every_replica(cluster: Cluster) -> None:
    c = cluster
    conn = sqlfront.connect(c.addrs())
    conn.execute(
        "CREATE TABLE r(id INTEGER PRIMARY KEY, x, b BLOB, ts TEXT DEFAULT CURRENT_TIMESTAMP)"
    )
    conn.execute("INSERT INTO r(id, x, b) VALUES (1, random(), randomblob(8))")
    conn.execute("INSERT INTO r(id, x) VALUES (2, datetime('now'))")
    range_id = _table_range(c, "r")
    expected = conn.execute("SELECT id, x, b, ts FROM r ORDER BY id").fetchall()
    assert expected[0][1] is not None and expected[0][3] is not None
    for node in (1, 2, 3):
        wait_for(
            f"n{node} replica equal",
            lambda node=node: (
                _replica_rows(c, node, range_id, "SELECT id, x, b, ts FROM r ORDER BY id")
                == expected
            ),
        )


def test_bad_input_gets_clear_errors_and_node_keeps_serving(cluster: Cluster) -> None:
    c = cluster
    conn = sqlfront.connect(c.addr(1))
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")

    with pytest.raises(sqlfront.ProgrammingError) as syntax:
        conn.execute("SELECT * FROMM t")
    assert syntax.value.sqlstate == "42601"
    assert syntax.value.position > 0

    with pytest.raises(sqlfront.ProgrammingError) as table:
        conn.execute("SELECT * FROM nope")
    assert table.value.sqlstate == "42P01" and "nope" in str(table.value)

    with pytest.raises(sqlfront.ProgrammingError) as column:
        conn.execute("SELECT nope FROM t")
    assert column.value.sqlstate == "42703" and "nope" in str(column.value)

    with pytest.raises(sqlfront.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1, 'a')") and conn.execute(
            "INSERT INTO t VALUES (1, 'b')"
        )

    # A malformed protobuf request is rejected by the server, which keeps serving.
    import grpc

    from proto import pb

    with grpc.insecure_channel(c.addr(1)) as ch:
        raw = ch.unary_unary("/atlasql.v1.SQL/Execute")
        with pytest.raises(grpc.RpcError) as bad:
            raw(b"\xff\xff\xff\xff garbage", timeout=5)
        assert bad.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
        # A well-formed message whose Value has no kind set is reported, not crashed on.
        execute = ch.unary_unary(
            "/atlasql.v1.SQL/Execute",
            request_serializer=pb.ExecuteRequest.SerializeToString,
            response_deserializer=pb.ExecuteResponse.FromString,
        )
        resp = execute(pb.ExecuteRequest(sql="SELECT ?", params=[pb.Value()]), timeout=5)
        assert resp.error.code == "08P01"

    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_cli_sql_and_init_twice(cluster: Cluster) -> None:
    c = cluster
    res = atlasql(
        "sql",
        "--host",
        c.addr(2),
        "-e",
        "CREATE TABLE k(a INTEGER PRIMARY KEY, b)",
        "-e",
        "INSERT INTO k VALUES (1, 'x'), (2, NULL)",
        "-e",
        "SELECT * FROM k",
    )
    assert res.returncode == 0, res.stderr
    assert "x" in res.stdout and "(2 rows)" in res.stdout
    again = atlasql("init", "--host", c.addr(1))
    assert again.returncode != 0 and "already initialised" in again.stderr
    bad = atlasql("sql", "--host", c.addr(1), "-e", "SELEC 1")
    assert bad.returncode != 0 and "42601" in bad.stderr

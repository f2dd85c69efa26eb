"""Operator actions through the Admin service: drain a node (its leaders move away and it
refuses client work) and decommission a node (its replicas move to other nodes)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

import sqlfront
from proto import pb, rpc
from tests.cluster import Cluster, atlasql, wait_for


def test_drain_then_decommission_a_node(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=4)
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        for name in ("a", "b", "c"):
            conn.execute(f"CREATE TABLE {name}(id INTEGER PRIMARY KEY)")
            conn.executemany(f"INSERT INTO {name} VALUES (?)", [(i,) for i in range(20)])
        victim = 4  # not a meta replica (the meta range lives on n1-n3)
        with grpc.insecure_channel(c.addr(1)) as ch:
            cat = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
        holds = [r.range_id for r in cat.ranges if victim in r.replicas]
        assert holds, "the 4-node placement should put some ranges on n4"
        wait_for(
            "n4 opened its replicas",
            lambda: {r.range_id for r in c.status(victim).replicas} >= set(holds),
        )
        for range_id in holds:
            conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO {victim}")

        listed = atlasql("node", "ls", "--host", c.addr(1), "--format", "csv")
        assert listed.returncode == 0, listed.stderr
        assert "n4," in listed.stdout and "live" in listed.stdout
        ranges = atlasql("range", "ls", "--host", c.addr(2), "--table", "a")
        assert ranges.returncode == 0 and "(1 row)" in ranges.stdout, ranges.stdout

        drained = atlasql("node", "drain", str(victim), "--host", c.addr(1))
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert f"{len(holds)} leaders moved, 0 left" in drained.stdout
        assert not [r for r in c.status(victim).replicas if r.is_leader]
        with pytest.raises(sqlfront.OperationalError):
            sqlfront.connect(c.addr(victim), timeout=3).execute("SELECT 1")

        gone = atlasql("node", "decommission", str(victim), "--host", c.addr(1), timeout=180)
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert f"{len(holds)}/{len(holds)} replicas moved" in gone.stdout
        wait_for("n4 holds no replica", lambda: not c.status(victim).replicas, timeout=30)
        status = atlasql("node", "status", str(victim), "--host", c.addr(1), "--format", "csv")
        assert status.returncode == 0 and "n4," in status.stdout and " MB," in status.stdout
        for name in ("a", "b", "c"):
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (20,)
        report = conn.execute("CHECK CONSISTENCY").fetchall()
        assert all(r[4] == "consistent" for r in report), report
        assert victim not in {r[1] for r in report}

        bad = atlasql("node", "drain", "9", "--host", c.addr(1))
        assert bad.returncode == 1 and "no reachable node n9" in bad.stderr
        unreachable = atlasql("node", "ls", "--host", "127.0.0.1:1")
        assert unreachable.returncode == 1 and "cannot reach 127.0.0.1:1" in unreachable.stderr
    finally:
        c.stop_all()


def test_prometheus_metrics_count_statements_and_raft_state(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=3, metrics=True)
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addr(1))
        conn.execute("CREATE TABLE m(id INTEGER PRIMARY KEY)")
        for i in range(5):
            conn.execute("INSERT INTO m VALUES (?)", (i,))
        with pytest.raises(sqlfront.ProgrammingError):
            conn.execute("SELECT * FROM nope")

        text = c.metrics_text(1)
        assert 'atlasql_sql_statements_total{kind="INSERT"} 5.0' in text
        assert 'atlasql_sql_errors_total{code="42P01"} 1.0' in text
        assert "atlasql_sql_statement_seconds_bucket" in text
        assert "atlasql_replicas 2.0" in text  # the meta range and m's range
        assert c.metric("atlasql_leaders") == 2.0
        conn.execute("ALTER TABLE m SPLIT AT VALUES (3)")
        wait_for(  # every replica applies the split (followers learn its commit a bit later)
            "three replicas split", lambda: c.metric("atlasql_range_splits_total") == 3.0
        )
        conn.execute("SELECT count(*) FROM m AS OF SYSTEM TIME follower_read_timestamp()")
        assert c.metric("atlasql_follower_reads_total") == 2.0  # one per range, nearest replica
    finally:
        c.stop_all()

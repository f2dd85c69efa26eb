"""Operator actions through the Admin service: drain a node (its leaders move away and it
refuses client work) and decommission a node (its replicas move to other nodes)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

import sqlfront
from proto import pb, rpc
from tests.cluster import Cluster, wait_for


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
        holds = [r.range_id for r in c.status(victim).replicas]
        assert holds, "the 4-node placement should put some ranges on n4"
        for range_id in holds:
            conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO {victim}")

        with grpc.insecure_channel(c.addr(1)) as ch:
            admin = rpc.AdminStub(ch)
            drained = admin.Drain(pb.DrainRequest(node_id=victim, timeout_seconds=30), timeout=60)
            assert not drained.error.code, drained.error.message
            assert drained.leaders_moved >= len(holds) and drained.leaders_left == 0
            assert not [r for r in c.status(victim).replicas if r.is_leader]
            with pytest.raises(sqlfront.OperationalError):
                sqlfront.connect(c.addr(victim), timeout=3).execute("SELECT 1")

            steps = list(admin.Decommission(pb.DecommissionRequest(node_id=victim), timeout=120))
        assert steps[-1].done and steps[-1].replicas_moved == steps[-1].replicas_total
        assert not [s for s in steps if s.error.code], [s.error.message for s in steps]
        wait_for("n4 holds no replica", lambda: not c.status(victim).replicas, timeout=30)
        for name in ("a", "b", "c"):
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (20,)
        report = conn.execute("CHECK CONSISTENCY").fetchall()
        assert all(r[4] == "consistent" for r in report), report
        assert victim not in {r[1] for r in report}
    finally:
        c.stop_all()

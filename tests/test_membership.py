"""Replica membership changes (engine issue, item 8): add a non-voter, promote it to voter,
move voters, remove replicas, while the data stays complete and consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc

import sqlfront
from proto import pb, rpc
from tests.cluster import Cluster, wait_for


def _rows(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            return int(db.execute("SELECT count(*) FROM m").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


def test_add_nonvoter_promote_and_remove_replicas(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=4, metrics=True)
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE m(id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO m VALUES (?, ?)", [(i, "v") for i in range(50)])
        descs = {r.range_id for i in c.procs for r in c.status(i).replicas if r.range_id != 1}
        assert len(descs) == 1
        range_id = descs.pop()
        with grpc.insecure_channel(c.addr(1)) as ch:
            cat = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
        holders = sorted(next(r.replicas for r in cat.ranges if r.range_id == range_id))
        assert len(holders) == 3
        for i in holders:  # each replica opens as its node learns of the range
            wait_for(
                f"n{i} opened its replica",
                lambda i=i: any(r.range_id == range_id for r in c.status(i).replicas),
            )
        spare = next(i for i in c.procs if i not in holders)
        replica = c.data_dir(spare) / "ranges" / f"r{range_id}.sqlite"

        row = conn.execute(f"ALTER RANGE {range_id} ADD NONVOTER {spare}").fetchone()
        assert row[2] == f"n{spare}"
        wait_for("non-voter caught up", lambda: _rows(replica) == 50, timeout=30)
        conn.execute("INSERT INTO m VALUES (50, 'after non-voter')")
        wait_for("non-voter follows new writes", lambda: _rows(replica) == 51, timeout=30)

        leaving = holders[0]
        row = conn.execute(
            f"ALTER RANGE {range_id} RELOCATE VOTERS FROM {leaving} TO {spare}"
        ).fetchone()
        new_voters = {int(x[1:]) for x in row[1].split(",")}
        assert new_voters == (set(holders) - {leaving}) | {spare}
        assert row[2] == ""
        gone = c.data_dir(leaving) / "ranges" / f"r{range_id}.sqlite"
        wait_for("removed replica deleted", lambda: not gone.exists(), timeout=30)
        # Nothing of the removed replica keeps ticking on its old node: every range there
        # quiesces (a removed range left in the tick set kept the node's loop at 100 Hz).
        wait_for(
            f"n{leaving} has no range ticking",
            lambda: c.metric("atlasql_ranges_active", leaving) == 0,
            timeout=30,
        )

        # The new voter set can lose one node and still write.
        conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO {spare}")
        conn.execute("INSERT INTO m VALUES (51, 'on the new voter set')")
        assert conn.execute("SELECT count(*) FROM m").fetchone() == (52,)
        report = wait_for(
            "consistent",
            lambda: (lambda rows: rows if all(r[4] == "consistent" for r in rows) else None)(
                conn.execute("CHECK CONSISTENCY FROM TABLE m").fetchall()
            ),
            timeout=30,
        )
        assert {r[1] for r in report} == new_voters

        # Bad requests are refused with a reason and change nothing.
        for bad, reason in (
            (f"ALTER RANGE {range_id} ADD VOTER {spare}", "already holds a replica"),
            (f"ALTER RANGE {range_id} REMOVE NONVOTER {spare}", "is not a nonvoter"),
            (f"ALTER RANGE {range_id} ADD VOTER 42", "no node n42"),
            ("ALTER RANGE 1 ADD VOTER 4", "meta range"),
        ):
            try:
                conn.execute(bad)
            except sqlfront.Error as exc:
                assert reason in str(exc), (bad, str(exc))
            else:
                raise AssertionError(f"{bad} was accepted")
        # Late acks from the removed replica are ignored quietly, not "malformed".
        for i in c.procs:
            assert "malformed message" not in (tmp_path / f"n{i}.log").read_text(), i
    finally:
        c.stop_all()

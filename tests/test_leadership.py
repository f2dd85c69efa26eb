"""Leadership transfer (engine issue, item 8 in part): ALTER RANGE n RELOCATE LEADER TO node
moves a range's leader while writes keep succeeding."""

from __future__ import annotations

import threading

import pytest

import sqlfront
from tests.cluster import Cluster, wait_for


def test_relocate_leader_moves_it_and_writes_continue(cluster: Cluster) -> None:
    c = cluster
    conn = sqlfront.connect(c.addrs())
    conn.execute("CREATE TABLE w(id INTEGER PRIMARY KEY)")
    range_id = next(r.range_id for r in c.status(1).replicas if r.range_id != 1)
    stop = threading.Event()
    written: list[int] = []
    failures: list[str] = []

    def writer() -> None:
        w = sqlfront.connect(c.addrs())
        i = 0
        while not stop.is_set():
            i += 1
            try:
                w.execute("INSERT INTO w VALUES (?)", (i,))
                written.append(i)
            except sqlfront.Error as exc:
                failures.append(str(exc))

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        for target in (3, 1, 2, 3):
            row = conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO {target}").fetchone()
            assert row == (range_id, target)
            assert wait_for(f"n{target} leads", lambda t=target: c.leader_of(range_id) == t)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not failures, failures[:3]
    assert len(written) > 0
    assert conn.execute("SELECT count(*) FROM w").fetchone() == (len(written),)

    with pytest.raises(sqlfront.Error) as bad:
        conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO 9")
    assert "n9 holds no replica" in str(bad.value)

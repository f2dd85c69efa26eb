"""Pre-vote (Raft thesis §9.6): a follower cut off from the cluster does not bump its term, so
when it comes back it does not depose the healthy leader (engine hardening)."""

from __future__ import annotations

import time

import sqlfront
from tests.cluster import Cluster, wait_for


def _view(c: Cluster, node: int) -> dict[int, tuple[int, int]]:
    return {r.range_id: (r.term, r.leader) for r in c.status(node).replicas}


def test_returning_partitioned_follower_does_not_disrupt_the_leader(cluster: Cluster) -> None:
    c = cluster
    conn = sqlfront.connect(c.addrs())
    conn.execute("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO p VALUES (1)")
    range_id = next(r.range_id for r in c.status(1).replicas if r.range_id != 1)
    leader = wait_for("leader", lambda: c.leader_of(range_id))
    follower = next(i for i in (1, 2, 3) if i != leader)
    majority = [i for i in (1, 2, 3) if i != follower]
    before = {i: _view(c, i) for i in majority}

    c.partition(follower)
    t_end = time.monotonic() + 3.0  # several election timeouts (0.5-1.0 s)
    while time.monotonic() < t_end:
        conn.execute("INSERT INTO p VALUES (?)", (int(time.monotonic() * 1e6),))
    isolated = _view(c, follower)
    c.heal()
    wait_for(
        "follower caught up",
        lambda: (
            sqlfront.connect(c.addr(follower)).execute("SELECT count(*) FROM p").fetchone()
            == conn.execute("SELECT count(*) FROM p").fetchone()
        ),
    )
    after = {i: _view(c, i) for i in majority}
    assert after == before, f"the majority saw an election: {before} -> {after}"
    for rid, (term, _) in isolated.items():
        assert term == before[leader][rid][0], f"isolated node bumped range {rid}'s term"

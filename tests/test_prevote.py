"""Pre-vote (Raft thesis §9.6): a follower cut off from the cluster does not bump its term, so
when it comes back it does not depose the healthy leader (engine hardening)."""

from __future__ import annotations

import time
from pathlib import Path

import sqlfront
from tests.cluster import Cluster, running, wait_for


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


def test_followers_of_a_dead_leader_elect_in_one_term(tmp_path: Path) -> None:
    """Quiesced followers notice a dead leader's node together (the same node heartbeat was
    their last); both winning a pre-vote and standing would split the vote and cost a whole
    election timeout. One of them steps back: the new leader is elected in the next term."""
    with running(tmp_path, n=3, metrics=True) as c:
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE d(id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO d VALUES (1)")
        range_id = next(r.range_id for r in c.status(1).replicas if r.range_id != 1)
        for _round in range(2):
            leader = wait_for("leader", lambda: c.leader_of(range_id))
            others = [i for i in (1, 2, 3) if i != leader]
            term = _view(c, leader)[range_id][0]
            wait_for(
                "the followers quiesced",
                lambda o=others: c.metric("atlasql_ranges_active", *o) == 0,  # type: ignore[misc]
                timeout=30,
                interval=0.02,
            )
            c.kill(leader)
            new = wait_for(
                "a new leader",
                lambda o=others: next(  # type: ignore[misc]
                    (i for i in o if _view(c, i)[range_id][1] == i), None
                ),
            )
            assert _view(c, new)[range_id][0] == term + 1, "split vote: more than one election"
            c.start(leader)
            wait_for(
                "the restarted node follows the new leader",
                lambda old=leader, n=new: (
                    range_id in _view(c, old)  # type: ignore[misc]
                    and _view(c, old)[range_id][1] == n
                ),
            )

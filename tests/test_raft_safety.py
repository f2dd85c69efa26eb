"""Raft §5.3 regression tests: a follower truncates only at a term conflict, and stale acks do
not move the leader's nextIndex below matchIndex (engine issue, item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proto import pb
from raftgroups.codec import encode_command
from raftgroups.group import RaftTiming, RangeGroup
from raftgroups.journal import LogStore, RangeJournal
from raftgroups.safety import clamp_ack, plan_append
from storage import Engine


class RecordingTransport:
    """Stands in for NodeTransport: records what the group sends (unit test of pure logic)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int, dict[str, Any]]] = []
        self.peers: set[int] = set()

    def send(self, peer: int, range_id: int, message: dict[str, Any]) -> bool:
        self.sent.append((peer, range_id, message))
        return True


def _cmd(i: int) -> bytes:
    return b"\x00" + encode_command(
        pb.Command(write=pb.SqlWrite(sql=f"INSERT INTO t VALUES ({i})"))
    )


def _append(
    prev: int, prev_term: int, entries: list[tuple[int, int]], commit: int, term: int = 1
) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": commit,
        "prevLogIdx": prev,
        "prevLogTerm": prev_term,
        "entries": [[_cmd(i), i, t] for i, t in entries],
    }


@pytest.fixture
def follower(tmp_path: Path) -> tuple[RangeGroup, RecordingTransport]:
    transport = RecordingTransport()
    store = LogStore(str(tmp_path / "log.db"))
    engine = Engine(str(tmp_path / "r9.sqlite"))
    engine.apply(1, lambda e: e.execute("CREATE TABLE t(x)"))  # applied index 1 = NO_OP slot
    group = RangeGroup(
        range_id=9,
        node_id=2,
        peers=[1, 2, 3],
        engine=engine,
        journal=RangeJournal(store, 9),
        node_transport=transport,  # type: ignore[arg-type]
        timing=RaftTiming(election_min=30, election_max=40, heartbeat=1, leader_fallback=5),
        wake=lambda: None,
    )
    return group, transport


def _acks(t: RecordingTransport) -> list[dict[str, Any]]:
    return [m for _, _, m in t.sent if m["type"] == "next_node_idx"]


def test_stale_shorter_resend_does_not_drop_acknowledged_entries(follower: Any) -> None:
    group, transport = follower
    group.deliver(1, _append(1, 0, [(2, 1), (3, 1), (4, 1), (5, 1)], commit=1))
    assert group.journal.last_index == 5
    ack = {k: v for k, v in _acks(transport)[-1].items() if k != "hb"}  # hb: lease tag
    assert ack == {"type": "next_node_idx", "next_node_idx": 6, "reset": False, "success": True}
    # A delayed copy of an earlier, shorter AppendEntries arrives after the longer one.
    group.deliver(1, _append(1, 0, [(2, 1), (3, 1)], commit=3))
    assert group.journal.last_index == 5, "acknowledged entries 4 and 5 were truncated"
    ack = _acks(transport)[-1]
    assert ack["success"] and ack["next_node_idx"] == 4
    # The commit index learnt from the stale message is capped at what it verified.
    assert group.raftCommitIndex == 3
    # A heartbeat with an old prevLogIdx and no entries truncates nothing either.
    group.deliver(1, _append(2, 1, [], commit=5))
    assert group.journal.last_index == 5
    assert group.raftCommitIndex == 2 or group.raftCommitIndex == 3


def test_term_conflict_still_truncates(follower: Any) -> None:
    group, _ = follower
    group.deliver(1, _append(1, 0, [(2, 1), (3, 1), (4, 1)], commit=1))
    # A new leader (term 2) overwrites index 3.. with its own entries.
    group.deliver(3, _append(2, 1, [(3, 2)], commit=1, term=2))
    assert [(e[1], e[2]) for e in group.journal] == [(1, 0), (2, 1), (3, 2)]


def test_entries_survive_restart_of_the_journal(tmp_path: Path, follower: Any) -> None:
    group, _ = follower
    group.deliver(1, _append(1, 0, [(2, 1), (3, 1)], commit=1))
    group.journal._store.flush()
    reopened = RangeJournal(LogStore(str(tmp_path / "log.db")), 9)
    assert [(e[1], e[2]) for e in reopened] == [(1, 0), (2, 1), (3, 1)]


def test_plan_append_forwards_plain_appends_unchanged() -> None:
    log = {1: 0, 2: 1}
    msg = _append(2, 1, [(3, 1)], commit=2)
    plan = plan_append(msg, 1, log.get, 2)
    assert plan.ack_next is None and plan.forward is not None
    assert plan.forward["prevLogIdx"] == 2 and len(plan.forward["entries"]) == 1


def test_stale_failed_ack_never_moves_next_index_below_match() -> None:
    stale = {"type": "next_node_idx", "next_node_idx": 2, "reset": True, "success": False}
    assert clamp_ack(stale, match_index=10)["next_node_idx"] == 11
    fresh = {"type": "next_node_idx", "next_node_idx": 12, "reset": True, "success": False}
    assert clamp_ack(fresh, match_index=10)["next_node_idx"] == 12


def test_a_paused_non_voter_is_resumed_after_its_snapshot(tmp_path: Path) -> None:
    """While a follower receives a snapshot the leader stops sending it AppendEntries; after
    it, the follower must be sent entries again, a non-voter as much as a voter (a non-voter
    left out was never sent another entry, and kept its leader from quiescing)."""
    store = LogStore(str(tmp_path / "log.db"))
    group = RangeGroup(
        range_id=9,
        node_id=1,
        peers=[1, 2, 3],
        engine=Engine(str(tmp_path / "r9.sqlite")),
        journal=RangeJournal(store, 9),
        node_transport=RecordingTransport(),  # type: ignore[arg-type]
        timing=RaftTiming(election_min=30, election_max=40, heartbeat=1, leader_fallback=5),
        wake=lambda: None,
        non_voters=[4],
    )
    connected = group._SyncObj__connectedNodes
    for peer in (2, 4):
        group.pause_peer(peer)
        assert peer not in {int(n.id) for n in connected}
        group.resume_peer(peer)
        assert peer in {int(n.id) for n in connected}, f"n{peer} still paused"

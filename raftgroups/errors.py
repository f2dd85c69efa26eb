"""Errors raised by the Raft layer.

::

    RaftError
    ├── NotLeaderError        not the leader; ``leader_hint`` names who is (0: unknown)
    ├── RangeNotFoundError    this node holds no replica of the range
    ├── ProposalTimeout       the entry's fate is unknown (it may still commit): ambiguous
    ├── ProposalDropped       the entry was not committed (lost leadership, queue full)
    ├── ReplicaStopped        the replica hit a disk or decode failure and stopped serving
    └── CodecError            bytes that are not a valid command or Raft message
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of Raft-layer errors."""


class NotLeaderError(RaftError):
    def __init__(self, range_id: int, leader_hint: int = 0) -> None:
        super().__init__(
            f"range {range_id}: not leader"
            + (f" (leader is n{leader_hint})" if leader_hint else " (leader unknown)")
        )
        self.range_id = range_id
        self.leader_hint = leader_hint


class RangeNotFoundError(RaftError):
    def __init__(self, range_id: int) -> None:
        super().__init__(f"range {range_id}: no replica on this node")
        self.range_id = range_id


class ProposalTimeout(RaftError):
    """Ambiguous: the entry may or may not commit."""


class ProposalDropped(RaftError):
    """The entry will not commit; safe to retry."""


class ReplicaStopped(RaftError):
    """The replica stopped after a disk or decode failure; it serves nothing until repaired."""


class CodecError(RaftError, ValueError):
    """Malformed command or Raft message."""

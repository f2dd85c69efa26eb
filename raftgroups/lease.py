"""Leader lease arithmetic (pure functions).

A leader may serve a consistent read without a Raft round while a majority of voters
(itself included) acknowledged one of its heartbeats sent less than ``duration`` ago.
Why that is safe here: a new leader needs a majority of *pre-votes*, and a voter grants one
only after hearing nothing from the current leader for ``election_min``; any majority shares
a voter with the lease's majority, so no new leader is elected before
``ack_send_time + election_min`` > lease expiry (``duration`` is a fraction of
``election_min``, leaving room for clock-rate drift between nodes). Leadership transfer skips
pre-vote, so a leader stops serving lease reads before it sends TimeoutNow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def lease_expiry(acked_send_times: Iterable[float], voters: int, duration: float) -> float:
    """When the lease ends, given, per *other* voter, the send time of the latest heartbeat
    it acknowledged in this term.

    >>> lease_expiry([10.0, 12.0], voters=3, duration=0.4)  # one other voter suffices
    12.4
    >>> lease_expiry([10.0], voters=5, duration=0.4)  # needs two others: no lease
    0.0
    >>> lease_expiry([], voters=1, duration=0.4)  # a single voter always holds its lease
    inf
    """
    need = voters // 2  # a majority is voters // 2 + 1, the leader included
    if need == 0:
        return math.inf
    times = sorted(acked_send_times, reverse=True)
    if len(times) < need:
        return 0.0
    return times[need - 1] + duration

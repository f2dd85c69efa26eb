"""Raft §5.3 guards in front of pysyncobj's message handling (pure functions).

pysyncobj 0.3.17 truncates a follower's log on *any* AppendEntries whose ``prevLogIdx`` is
below the follower's last index, even when every entry in it matches (a delayed, shorter
re-send, or a heartbeat with an old ``prevLogIdx``). An entry the leader already counted
toward commit can then vanish from a follower. And the leader resets ``nextIndex`` on any
failed ack, even a stale one, moving it below ``matchIndex``.

``plan_append`` rewrites an AppendEntries so pysyncobj only ever sees either an append at the
end of the log, or a truncation at the first *term conflict*; when nothing in the message is
new, it answers the message itself. ``clamp_ack`` keeps ``nextIndex`` above ``matchIndex``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class AppendPlan:
    """What to do with one AppendEntries.

    ``forward``: the message to hand to pysyncobj (None: nothing);
    ``ack_next``: when set, reply success with this ``next_node_idx`` ourselves.
    """

    forward: Message | None
    ack_next: int | None = None


def plan_append(
    message: Message, current_term: int, term_at: Callable[[int], int | None], last_index: int
) -> AppendPlan:
    """Make an AppendEntries safe for pysyncobj.

    >>> log = {1: 0, 2: 1, 3: 1, 4: 1, 5: 1}
    >>> stale = {"type": "append_entries", "term": 1, "commit_index": 5, "prevLogIdx": 1,
    ...          "prevLogTerm": 0, "entries": [[b"a", 2, 1], [b"b", 3, 1]]}
    >>> plan = plan_append(stale, 1, log.get, 5)
    >>> plan.ack_next, "prevLogIdx" in plan.forward, plan.forward["commit_index"]
    (4, False, 3)
    """
    if "prevLogIdx" not in message or int(message.get("term", -1)) < current_term:
        return AppendPlan(message)  # pysyncobj ignores stale terms / handles snapshots
    prev_idx = int(message["prevLogIdx"])
    prev_term = message["prevLogTerm"]
    if term_at(prev_idx) != prev_term:
        # Missing or mismatching previous entry: pysyncobj replies "reset" without truncating.
        return AppendPlan(message)
    entries = list(message.get("entries", []))
    verified, verified_term = prev_idx, prev_term
    j = 0
    while j < len(entries):
        idx, term = int(entries[j][1]), int(entries[j][2])
        if term_at(idx) != term:
            break  # first new entry, or first term conflict
        verified, verified_term = idx, term
        j += 1
    if j == len(entries) and verified < last_index:
        # Nothing new, and our log goes further: must not truncate. Let pysyncobj see only
        # the leader/term/commit part (commit capped at what this message verified), and
        # acknowledge what it verified ourselves.
        stripped = {
            k: v for k, v in message.items() if k not in ("prevLogIdx", "prevLogTerm", "entries")
        }
        stripped["commit_index"] = min(int(message["commit_index"]), verified)
        return AppendPlan(stripped, ack_next=verified + 1)
    rewritten = dict(message)
    rewritten["prevLogIdx"] = verified
    rewritten["prevLogTerm"] = verified_term
    rewritten["entries"] = entries[j:]
    # pysyncobj now truncates from verified+1 only if verified < last_index, which happens
    # only when entries[j] conflicts in term at verified+1: the truncation Raft requires.
    return AppendPlan(rewritten)


def clamp_ack(message: Message, match_index: int) -> Message:
    """Never let a failed (possibly stale) ack move ``nextIndex`` to or below ``matchIndex``.

    >>> clamp_ack({"type": "next_node_idx", "next_node_idx": 3, "reset": True,
    ...            "success": False}, 7)["next_node_idx"]
    8
    """
    if message.get("reset") and int(message.get("next_node_idx", 0)) <= match_index:
        message = dict(message)
        message["next_node_idx"] = match_index + 1
    return message

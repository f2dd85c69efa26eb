"""One range's Raft group: a pysyncobj ``SyncObj`` wrapped behind a small interface.

What we change in pysyncobj, and how (subclassing and injection; no copied code):

* the transport is ours (``GroupTransport``): no per-group port, no pickle on the wire;
* the log entries are protobuf ``Command``s, applied by ``fsm.apply``; we take over the
  library's private apply hook so that it never unpickles an entry;
* ticking is driven by the node's ``Store`` (``autoTick=False``): one loop for all groups;
* proposals are sent to followers at the end of the tick that appended them, all of that
  tick's new entries and the new commit index in one AppendEntries per follower, instead of
  waiting for the heartbeat timer (pysyncobj's ``appendEntriesUseBatch=False`` would send one
  message per proposal, each answered by its own ack);
* the journal is ours (``RangeJournal`` in a node-wide ``LogStore``, fsync'd with group commit
  before any message leaves the node);
* log compaction (which pickles the object) is disabled until SQLite-backup snapshots land.

Public surface: ``propose``, ``is_leader``, ``leader``, ``status``, ``tick``, ``deliver``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.config import FAIL_REASON
from pysyncobj.syncobj import _COMMAND_TYPE, _RAFT_STATE

from proto import pb
from storage import Engine, StatementResult, params_from_proto, row_to_proto, sqlstate

from . import fsm
from .codec import decode_command, encode_command
from .errors import (
    CodecError,
    NotLeaderError,
    ProposalDropped,
    ProposalTimeout,
    ReplicaStopped,
)
from .journal import RangeJournal, install
from .lease import lease_expiry
from .locks import LockConflict
from .meta import read_catalog
from .safety import clamp_ack, plan_append
from .transport import GroupTransport, NodeTransport, RaftPeer
from .txn import RangeTxns, failure

install()

log = logging.getLogger(__name__)

_REGULAR = bytes([_COMMAND_TYPE.REGULAR])
_AMBIGUOUS = {FAIL_REASON.UNKNOWN_OUTCOME}


# Seconds before a follower whose election is due asks again, while its leader's node looks
# alive or after a pre-vote round (randomised: candidates rarely collide).
_PREVOTE_RETRY = (0.05, 0.15)
# How long a leader holds back an AppendEntries that would only carry a new commit index,
# hoping to send it with the next entries instead (the store ticks active groups every 10 ms).
# Half a heartbeat: a client writing one row after another (a few ms apart) sends the commit
# index of each write with the next one, instead of a message and an ack per follower per
# write (etcd sends it only with the next append or heartbeat). Followers apply that much
# later; the leader answers as soon as it applied. 9-node geo cluster, CPU per sequential
# home-region write 6.4-8.5 -> 5.3-6.5 ms, p50 4.4-5.2 -> 3.5-4.4 ms (5 ms before).
COMMIT_LINGER = 0.025


@dataclasses.dataclass(frozen=True, kw_only=True)
class RaftTiming:
    """Raft timers in seconds (validated once at start-up)."""

    heartbeat: float = 0.05
    election_min: float = 0.5
    election_max: float = 1.0
    leader_fallback: float = 1.0
    # Unprepared transaction locks idle this long expire (their gateway is presumed gone).
    txn_idle_timeout: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < self.election_min <= self.election_max:
            raise ValueError("need 0 < heartbeat < election_min <= election_max")


def _no_split(group: RangeGroup, split: pb.SplitRange) -> None:
    raise RuntimeError(f"range {group.range_id}: no split handler installed")


class RangeGroup(SyncObj):  # type: ignore[misc]
    """The Raft group of one range on this node."""

    _request_ids = itertools.count(1)
    _SyncObj__readonlyNodes: set[Any]  # pysyncobj's non-voters (see _send_to_voters)
    _SyncObj__otherNodes: set[Any]  # pysyncobj's voting peers

    def __init__(
        self,
        *,
        range_id: int,
        node_id: int,
        peers: list[int],
        engine: Engine,
        journal: RangeJournal,
        node_transport: NodeTransport,
        timing: RaftTiming,
        wake: Callable[[], None],
        non_voters: list[int] | None = None,
    ) -> None:
        # The membership last applied through the log wins over what the caller was told
        # (the catalog may lag behind a ChangeReplicas).
        applied_config = engine.replica_config()
        if applied_config is not None:
            peers, non_voters = applied_config[0], applied_config[1]
        non_voters = [n for n in (non_voters or []) if n not in peers]
        self.voters = sorted(peers)
        self.non_voters = sorted(non_voters)
        # The descriptor generation at which this replica was added (0: unknown, e.g. reopened
        # after a restart, when it only applies configurations newer than its state).
        self.joined_generation = 0
        # Follower reads: the local time as of which this replica has applied everything its
        # leader had committed (an AppendEntries' commit index, once applied), and when the
        # store last quiesced the group.
        self.fresh_at = 0.0
        self._fresh_pending: tuple[int, float] | None = None
        self.quiesced_at = 0.0
        self.range_id = range_id
        self.node_id = node_id
        self.engine = engine
        self.stopped_reason: str | None = None
        self._wake = wake
        self._timing = timing
        self._quiet_since: float | None = None
        self._quiesce_after = 3 * timing.heartbeat
        self._pending_reads: set[int] = set()
        self._pending_lock = threading.Lock()
        self._sent_mark = (-1, -1)
        self._commit_due: float | None = None
        self._non_voters_due: float | None = None  # non-voters miss entries until then
        if len(journal) == 0 and engine.applied_index > 0:
            # A replica born with state (a split's right-hand side): its log starts with a
            # placeholder at that state's position, as after a snapshot.
            journal.add(bytes([_COMMAND_TYPE.NO_OP]), engine.applied_index, engine.applied_term)
            journal.setRaftCommitIndex(engine.applied_index)
        conf = SyncObjConf(
            autoTick=False,
            journalFile=journal,  # our durable RangeJournal (see journal.install)
            appendEntriesUseBatch=True,  # tick() sends what a tick appended or committed
            appendEntriesPeriod=timing.heartbeat,
            appendEntriesBatchSizeBytes=2**26,
            raftMinTimeout=timing.election_min,
            raftMaxTimeout=timing.election_max,
            leaderFallbackTimeout=timing.leader_fallback,
            connectionTimeout=max(3.5, timing.election_max),
            logCompactionMinEntries=2**62,
            logCompactionMinTime=2**40,
            commandsWaitLeader=True,
            dynamicMembershipChange=False,
            pollerType="select",
        )
        super().__init__(
            # A non-voter runs pysyncobj's read-only mode: it never votes or campaigns.
            RaftPeer(node_id) if node_id in peers else None,
            [RaftPeer(p) for p in peers if p != node_id],
            conf=conf,
            transportClass=functools.partial(GroupTransport, node_transport, range_id),
        )
        self.journal = journal
        # pysyncobj starts applying at index 2 after every restart; with a compacted log those
        # entries are gone and it would never apply again. Resume after what the engine has
        # durably applied (compaction never passes it, so the next entries are in the log).
        resume_at = min(engine.applied_index, journal.last_index)
        if resume_at > int(self.raftLastApplied):
            self._SyncObj__raftLastApplied = resume_at
        self._transport: GroupTransport = self._SyncObj__transport
        self._transport.tryGetReady()
        self._install_non_voters(self.non_voters)
        self._barrier_pending = False
        # Pre-vote (Raft thesis §9.6): an election starts only after a majority said it would
        # vote, so a node that was cut off cannot depose a healthy leader when it returns.
        self.is_live: Callable[[int], bool] = lambda node: False
        self.may_campaign: Callable[[], bool] = lambda: True
        self._prevote: tuple[int, set[int]] | None = None
        self._prevote_won = False
        self._granted_prevote_at = 0.0  # when we last granted another candidate's pre-vote
        self._skip_prevote = False
        self._last_leader_contact = 0.0
        # Leader lease (see lease.py): heartbeat sequences we sent and when, and per peer the
        # send time of the latest one it acknowledged in the current term.
        self._hb_seq = 0
        self._hb_sent: dict[int, float] = {}
        self._hb_acked: dict[int, float] = {}
        self._hb_term = -1
        self._last_hb_in = 0
        self._lease_blocked_until = 0.0
        self._lease_duration = 0.8 * timing.election_min
        self._term_promised_until = 0.0  # see promise_term
        self._promise_lock = threading.Lock()  # promise_term vs request_transfer and stop
        self.lease_reads = 0
        self._transport.on_send = self._annotate
        # Split hooks (the store creates and opens the right-hand replica).
        self.prepare_split: Callable[[RangeGroup, pb.SplitRange], None] = _no_split
        self.split_applied: Callable[[RangeGroup, pb.SplitRange], None] = _no_split
        # pysyncobj's own snapshot transfer would pickle the object; ours streams SQLite files.
        self._SyncObj__serializer.getTransmissionData = lambda node: None
        # Transactions: locks and provisional statements while this replica leads.
        self.txns = RangeTxns(self, idle_timeout=timing.txn_idle_timeout)

    # -- the apply hook ---------------------------------------------------------------------

    def _SyncObj__doApplyCommand(self, command: bytes) -> Any:  # noqa: N802 (library hook)
        """Replaces pysyncobj's apply (which unpickles entries) for every committed entry."""
        index = self._SyncObj__raftLastApplied + 1
        kind = command[:1]
        if kind != _REGULAR:
            # NO_OP entries written by each new leader; membership/version entries are never
            # proposed by us and are ignored rather than unpickled.
            if kind != bytes([_COMMAND_TYPE.NO_OP]):
                log.error(
                    "range %d: ignoring foreign entry type %r at %d", self.range_id, kind, index
                )
            return None
        try:
            cmd = decode_command(command[1:])
        except CodecError as exc:
            self.stop(f"undecodable entry at index {index}: {exc}")
            raise
        op = cmd.WhichOneof("op")
        if op == "read":
            return self._serve_read(cmd, index)
        fresh = index > self.engine.applied_index
        try:
            if op == "split" and fresh and fsm.split_refusal(self.engine, cmd.split) is None:
                # The right-hand replica is written (complete, synced) before the left side
                # commits; a crash in between re-applies the entry and finds it in place.
                self.prepare_split(self, cmd.split)
            result = fsm.apply(self.engine, cmd, index, self.journal.term_at(index) or 0)
        except Exception as exc:
            self.stop(f"apply failed at index {index}: {exc}")
            raise
        if op == "split" and fresh and not result.error.code:
            self.split_applied(self, cmd.split)
        if fresh and op is not None and op.startswith("txn_"):
            self.txns.applied(cmd, result)
        if cmd.WhichOneof("op") == "change_replicas":
            config = self.engine.replica_config()
            if config is not None:
                self._reconfigure(config[0], config[1])
        return result

    # -- membership ----------------------------------------------------------------------------

    def _peer_node(self, node_id: int) -> RaftPeer:
        node: RaftPeer = self._transport.node(node_id)
        return node

    def _install_non_voters(self, non_voters: list[int]) -> None:
        now = time.monotonic()
        last = self.journal.last_index
        for n in non_voters:
            if n == self.node_id:
                continue
            node = self._peer_node(n)
            self._SyncObj__readonlyNodes.add(node)
            self._SyncObj__connectedNodes.add(node)
            self._SyncObj__raftNextIndex.setdefault(node, last + 1)
            self._SyncObj__raftMatchIndex.setdefault(node, 0)
            self._SyncObj__lastResponseTime.setdefault(node, now)

    def _reconfigure(self, voters: list[int], non_voters: list[int]) -> None:
        """Make pysyncobj's membership match a newly applied ChangeReplicas (tick thread)."""
        now = time.monotonic()
        last = self.journal.last_index
        wanted = {n for n in voters if n != self.node_id}
        current = {int(n.id) for n in self._SyncObj__otherNodes}
        for n in wanted - current:
            node = self._peer_node(n)
            self._SyncObj__readonlyNodes.discard(node)
            self._SyncObj__otherNodes.add(node)
            self._SyncObj__connectedNodes.add(node)
            self._SyncObj__raftNextIndex.setdefault(node, last + 1)
            self._SyncObj__raftMatchIndex.setdefault(node, 0)
            self._SyncObj__lastResponseTime[node] = now
        for n in current - wanted:
            node = self._peer_node(n)
            self._SyncObj__otherNodes.discard(node)
            if n not in non_voters:
                self._SyncObj__connectedNodes.discard(node)
                self._SyncObj__raftNextIndex.pop(node, None)
                self._SyncObj__raftMatchIndex.pop(node, None)
        for node in list(self._SyncObj__readonlyNodes):
            if int(node.id) not in non_voters:
                self._SyncObj__readonlyNodes.discard(node)
                self._SyncObj__connectedNodes.discard(node)
        self._install_non_voters([n for n in non_voters if n not in voters])
        was_voter = self.node_id in self.voters
        self.voters, self.non_voters = (
            sorted(voters),
            sorted(n for n in non_voters if n not in voters),
        )
        is_voter = self.node_id in self.voters
        self_node: RaftPeer | None = RaftPeer(self.node_id) if was_voter else None
        if is_voter and not was_voter:
            self_node = RaftPeer(self.node_id)
        elif was_voter and not is_voter:
            if self._isLeader():
                self._SyncObj__setState(_RAFT_STATE.FOLLOWER)
                self._SyncObj__raftLeader = None
            if self.node_id in self.non_voters:
                self_node = None
        self._SyncObj__selfNode = self_node
        config = self.engine.replica_config()
        generation = config[2] if config is not None else 1
        if (
            self.node_id not in self.voters
            and self.node_id not in self.non_voters
            and generation >= self.joined_generation
        ):
            # Removed. (A replica catching up from an empty state replays the configurations
            # from before it joined, which do not list it: those do not stop it.)
            self.stop("removed from the range", expected=True)
        log.info(
            "range %d: replicas now voters=%s non-voters=%s",
            self.range_id,
            self.voters,
            self.non_voters,
        )

    def _serve_read(self, cmd: pb.Command, index: int) -> pb.CommandResult | None:
        if cmd.proposer != self.node_id:
            return None
        with self._pending_lock:
            if cmd.request_id not in self._pending_reads:
                return None
            self._pending_reads.discard(cmd.request_id)
        if not cmd.read.catalog and self.txns.read_blocked(cmd.read.locks):
            return failure(
                sqlstate.SERIALIZATION_FAILURE,
                "restart: rows held by a committing transaction",
                index,
            )
        return self._read_locally(cmd.read, index)

    def read_now(self, r: pb.SqlRead) -> pb.CommandResult:
        """A read of this replica's current state (follower reads; the caller checked that
        it is fresh enough)."""
        return self._read_locally(r, int(self._SyncObj__raftLastApplied))

    def _read_locally(self, r: pb.SqlRead, index: int) -> pb.CommandResult:
        """Run a read against this replica's engine (the caller proved it is consistent)."""
        if r.catalog:
            blob = read_catalog(self.engine).SerializeToString()
            return pb.CommandResult(
                columns=["catalog"],
                rows=[row_to_proto([blob])],
                returns_rows=True,
                applied_index=index,
            )
        moved = fsm.stale_plan(self.engine, r)
        if moved is not None:
            return fsm.result_to_proto(StatementResult(error=moved), index)
        res = self.engine.query(r.sql, params_from_proto(r.params, r.named_params))
        return fsm.result_to_proto(res, index)

    def stop(self, reason: str, *, expected: bool = False) -> None:
        """Stop serving after a disk or decode failure (or, ``expected``, after this replica
        was removed from the range): step down and never acknowledge again."""
        if self.stopped_reason is None:
            level = logging.INFO if expected else logging.CRITICAL
            log.log(level, "range %d: replica stopped: %s", self.range_id, reason)
            self.stopped_reason = reason
            if self._isLeader():
                # Tell the followers to elect now (Raft's TimeoutNow): quiesced followers
                # would otherwise wait for our node to look dead, and it may not.
                term = int(self._SyncObj__raftCurrentTerm)
                with self._promise_lock:
                    self._lease_blocked_until = float("inf")
                message = {"type": "timeout_now", "term": term}
                peers = self.peer_ids()

                def elect() -> None:
                    for peer in peers:
                        self._transport.send_now(peer, message)

                # Not before this term's promises have run out (see promise_term).
                wait = self._term_promised_until - time.monotonic()
                if wait > 0:
                    timer = threading.Timer(wait, elect)
                    timer.daemon = True
                    timer.start()
                else:
                    elect()
                self._SyncObj__setState(_RAFT_STATE.FOLLOWER)
                self._SyncObj__raftLeader = None

    # -- log compaction and snapshots ---------------------------------------------------------

    def first_index(self) -> int:
        return int(self.journal[0][1]) if len(self.journal) else 0

    def maybe_compact(self, max_entries: int, keep: int) -> bool:
        """Drop log entries the engine has durably applied, keeping the last ``keep``.

        Tick thread only. Entries are dropped only up to the engine's applied index, after a
        checkpoint makes that state durable in the database file; a follower that needs older
        entries gets a snapshot instead.
        """
        if len(self.journal) <= max_entries or self.stopped_reason is not None:
            return False
        applied = self.engine.applied_index
        last_applied = int(self._SyncObj__raftLastApplied)
        if last_applied - applied > keep and self._isLeader() and not self._barrier_pending:
            # Only reads/no-ops since the last write: a barrier entry moves the applied index.
            self._barrier_pending = True
            self._applyCommand(
                encode_command(pb.Command(barrier=pb.Barrier())),
                lambda res, err: setattr(self, "_barrier_pending", False),
                _COMMAND_TYPE.REGULAR,
            )
        target = min(applied, int(self._SyncObj__raftCommitIndex)) - keep
        first = self.first_index()
        if target <= first:
            return False
        self.engine.checkpoint()
        self.journal.deleteEntriesTo(target - first)
        log.info("range %d: log compacted to start at %d", self.range_id, self.first_index())
        return True

    def followers_needing_snapshot(self) -> list[int]:
        """Peers whose next entry is no longer in our log (leader only)."""
        if not self._isLeader() or self.stopped_reason is not None:
            return []
        return [int(p.id) for p in self._behind_log_start()]

    def _behind_log_start(self) -> set[Any]:
        """Followers (voters or not) whose next entry is before our log's first entry."""
        first = self.first_index()
        nxt = self._SyncObj__raftNextIndex
        peers = self._SyncObj__otherNodes | self._SyncObj__readonlyNodes
        return {p for p in peers if nxt.get(p, first + 1) <= first}

    def peer_restarted(self, peer: int) -> None:
        """``peer``'s node restarted (new incarnation). Tick thread only.

        As a follower: if ``peer`` was our leader, it is not any more.

        A restarted peer keeps its acknowledged entries (they are fsync'd), but a peer whose
        data directory was wiped does not; forget its matchIndex so its "reset" acks are
        believed and it is caught up (by snapshot if needed). Lowering matchIndex never
        lowers the commit index, so this is safe either way.
        """
        if not self._isLeader():
            if self.leader() == peer:
                # A node restarts as a follower: whatever it led, it leads no more. Forget it
                # so our pre-vote grants are not blocked by a "live" leader that is gone.
                self._SyncObj__raftLeader = None
                self._SyncObj__raftElectionDeadline = time.monotonic() + random.uniform(
                    self._timing.election_min, self._timing.election_max
                )
            return
        node = next((n for n in self._SyncObj__otherNodes if int(n.id) == peer), None)
        if node is not None:
            self._SyncObj__raftMatchIndex[node] = 0

    def request_transfer(self, target: int) -> bool:
        """Tick thread: send TimeoutNow to ``target`` if it has caught up; False otherwise."""
        with self._promise_lock:
            # The target skips pre-vote, so our lease guarantees nothing from now on (and no
            # new promise is made: a stream of readers cannot hold the transfer off).
            self._lease_blocked_until = time.monotonic() + 2 * self._timing.election_max
            if time.monotonic() < self._term_promised_until:
                return False  # a promise of this term is still running (the caller retries)
        box: dict[str, int] = {}
        self.transferLeadership(RaftPeer(target), lambda res, err: box.setdefault("err", err))
        return bool(box.get("err") == FAIL_REASON.SUCCESS)

    def pause_peer(self, peer: int) -> None:
        """Stop sending AppendEntries to ``peer`` while it receives a snapshot (pysyncobj
        would otherwise spin trying to send its own snapshot). Tick thread only."""
        self._SyncObj__connectedNodes.discard(RaftPeer(peer))

    def resume_peer(self, peer: int) -> None:
        """Send AppendEntries to ``peer`` (voter or non-voter) again. Tick thread only."""
        peers = self._SyncObj__otherNodes | self._SyncObj__readonlyNodes
        node = next((n for n in peers if int(n.id) == peer), None)
        if node is not None:
            self._SyncObj__connectedNodes.add(node)

    def install_snapshot(self, path: str, index: int, term: int, leader_term: int) -> int:
        """Replace this replica's state with a snapshot file (tick thread only).

        Returns the index the replica now holds. A snapshot no newer than what this replica
        has committed is ignored (the file is deleted).
        """
        if self.stopped_reason is not None:
            raise ReplicaStopped(f"range {self.range_id}: {self.stopped_reason}")
        if leader_term < int(self._SyncObj__raftCurrentTerm):
            raise ValueError(f"snapshot from a stale leader (term {leader_term})")
        committed = int(self.raftCommitIndex)
        if index <= committed:
            os.remove(path)
            return committed
        db_path = self.engine.path
        self.engine.close()
        Engine.remove_files(db_path)
        os.replace(path, db_path)
        self.engine = Engine(db_path)
        # The log restarts at the snapshot's position: a placeholder entry carries its term so
        # the next AppendEntries (prevLogIdx = index) matches.
        self.journal.clear()
        self.journal.add(bytes([_COMMAND_TYPE.NO_OP]), index, term)
        self._SyncObj__raftCommitIndex = index
        self._SyncObj__raftLastApplied = index
        self.journal.setRaftCommitIndex(index)
        log.info("range %d: installed snapshot at index %d (term %d)", self.range_id, index, term)
        return index

    # -- public surface ----------------------------------------------------------------------

    def is_leader(self) -> bool:
        return bool(self._isLeader()) and self.stopped_reason is None

    def leader(self) -> int:
        node = self._getLeader()
        return int(node.id) if node is not None else 0

    def propose(self, command: pb.Command, timeout: float) -> pb.CommandResult:
        """Append ``command`` to the log and wait until this replica has applied it.

        Raises ``NotLeaderError`` (safe to retry elsewhere), ``ProposalDropped`` (not
        committed, safe to retry) or ``ProposalTimeout`` (ambiguous).
        """
        if self.stopped_reason is not None:
            raise ReplicaStopped(f"range {self.range_id}: {self.stopped_reason}")
        if not self._isLeader():
            raise NotLeaderError(self.range_id, self.leader())
        op = command.WhichOneof("op")
        if op == "read":
            served = self._read_under_lease(command, timeout)
            if served is not None:
                return served
        elif op == "txn_step":
            return self.txns.step(command.txn_step, timeout)
        elif op in ("txn_prepare", "txn_commit"):
            return self.txns.propose_locked(command, timeout)
        elif op == "write" and not command.write.ddl_table:
            return self.txns.propose_write(command, timeout)
        return self.propose_entry(command, timeout)

    def propose_entry(self, command: pb.Command, timeout: float) -> pb.CommandResult:
        """Propose ``command`` as a log entry (no lock checks) and wait for its result."""
        own = pb.Command()
        own.CopyFrom(command)
        if own.WhichOneof("op") == "split":
            # The membership both halves get if the range never changed it through the log.
            del own.split.voters[:]
            del own.split.non_voters[:]
            own.split.voters.extend(self.voters)
            own.split.non_voters.extend(self.non_voters)
        return self._propose(own, timeout)

    def barrier(self, timeout: float) -> None:
        """Commit and apply an empty entry of this term (a read-index without the lease)."""
        self._propose(pb.Command(barrier=pb.Barrier()), timeout)

    def current_term(self) -> int:
        return int(self._SyncObj__raftCurrentTerm)

    def commit_index(self) -> int:
        return int(self._SyncObj__raftCommitIndex)

    def applied_index(self) -> int:
        return int(self._SyncObj__raftLastApplied)

    def wake(self) -> None:
        self._wake()

    def _propose(self, command: pb.Command, timeout: float) -> pb.CommandResult:
        command.proposer = self.node_id
        command.request_id = next(self._request_ids)
        is_read = command.WhichOneof("op") == "read"
        if is_read:
            with self._pending_lock:
                self._pending_reads.add(command.request_id)
        done = threading.Event()
        box: dict[str, Any] = {}

        def callback(result: Any, err: int) -> None:
            box["result"], box["err"] = result, err
            done.set()

        self._applyCommand(encode_command(command), callback, _COMMAND_TYPE.REGULAR)
        self._wake()
        try:
            if not done.wait(timeout):
                raise ProposalTimeout(f"range {self.range_id}: no result within {timeout:.1f}s")
        finally:
            if is_read:
                with self._pending_lock:
                    self._pending_reads.discard(command.request_id)
        err = box["err"]
        if err == FAIL_REASON.SUCCESS:
            result = box["result"]
            if result is None:  # read applied elsewhere (lost leadership mid-way)
                raise ProposalDropped(f"range {self.range_id}: read was not served")
            assert isinstance(result, pb.CommandResult)
            return result
        if err in _AMBIGUOUS:
            raise ProposalTimeout(f"range {self.range_id}: outcome unknown")
        if err in (FAIL_REASON.NOT_LEADER, FAIL_REASON.MISSING_LEADER):
            raise NotLeaderError(self.range_id, self.leader())
        raise ProposalDropped(f"range {self.range_id}: proposal dropped (reason {err})")

    def campaign_now(self) -> None:
        """Start an election on the next tick (used for brand-new ranges: no pre-vote)."""
        self._skip_prevote = True
        self._SyncObj__raftElectionDeadline = 0.0
        self._wake()

    # -- leader lease ------------------------------------------------------------------------

    def _annotate(self, peer: int, message: dict[str, Any]) -> dict[str, Any]:
        """Tick thread: tag outgoing heartbeats (leader) and acks (follower) for the lease."""
        mtype = message.get("type")
        if mtype == "append_entries" and self._isLeader():
            term = int(self._SyncObj__raftCurrentTerm)
            if term != self._hb_term:
                self._hb_term, self._hb_acked = term, {}
            self._hb_seq += 1
            self._hb_sent[self._hb_seq] = time.monotonic()
            if len(self._hb_sent) > 4096:
                for seq in sorted(self._hb_sent)[:2048]:
                    del self._hb_sent[seq]
            return {**message, "hb": self._hb_seq}
        if mtype == "next_node_idx":
            return {**message, "hb": self._last_hb_in}
        return message

    def stale_ack(self, from_node: int, message: dict[str, Any]) -> bool:
        """Whether ``message`` is an ack that tells this leader nothing new (the follower
        already had everything). A quiesced leader ignores those: under a long RTT the acks
        of its last heartbeats arrive after it quiesced, and waking for them made it send
        heartbeats again, whose acks woke it again, forever."""
        if message.get("type") != "next_node_idx" or not message.get("success"):
            return False
        if message.get("reset") or not self._isLeader():
            return False
        last = self.journal.last_index
        match = self._SyncObj__raftMatchIndex.get(RaftPeer(from_node))
        return match == last and int(message.get("next_node_idx", 0)) - 1 <= last

    def _note_ack(self, from_node: int, message: dict[str, Any]) -> None:
        sent = self._hb_sent.get(int(message.get("hb", 0)))
        if sent is not None and int(self._SyncObj__raftCurrentTerm) == self._hb_term:
            if sent > self._hb_acked.get(from_node, 0.0):
                self._hb_acked[from_node] = sent

    def lease_end(self, now: float) -> float:
        """When this leader's lease ends (monotonic clock); 0.0 if it holds none now."""
        if not self._isLeader() or self.stopped_reason is not None:
            return 0.0
        term = int(self._SyncObj__raftCurrentTerm)
        if now < self._lease_blocked_until or term != self._hb_term:
            return 0.0
        # Only once an entry of this term is committed does our commit index cover every
        # write acknowledged by earlier leaders.
        if self.journal.term_at(int(self._SyncObj__raftCommitIndex)) != term:
            return 0.0
        voters = {int(n.id) for n in self._SyncObj__otherNodes}
        acked = [t for p, t in self._hb_acked.items() if p in voters]
        end = lease_expiry(acked, len(voters) + 1, self._lease_duration)
        return end if now < end else 0.0

    def lease_valid(self, now: float) -> bool:
        """Whether this leader may serve a consistent read without a Raft round."""
        return self.lease_end(now) > 0.0

    def promise_term(self, now: float, term: int) -> float:
        """Promise that ``term``, if it is the current one, outlives the next seconds
        (returned; 0.0: no promise).

        Under the lease no other replica can win an election (see lease.py); the two ways
        this leader could hand over early, a leadership transfer and the TimeoutNow of a
        stopping replica, wait until every promise has run out. Transactions rely on it: a
        lock table lives as long as its term, so a promise says locks taken so far here
        cannot be lost before it runs out (the coordinator then skips their validation)."""
        with self._promise_lock:
            lease = self.lease_end(now)
            if not lease or self.current_term() != term:
                return 0.0  # (a promise about another term than the caller's says nothing)
            end = min(lease, now + self._lease_duration)
            self._term_promised_until = max(self._term_promised_until, end)
            return end - now

    def renew_lease(self, wait: float, term: int) -> float:
        """Send a heartbeat round now (no log entry) and wait up to ``wait`` seconds for the
        acks that extend the lease to its full length; the promise (``promise_term``) then
        possible. For readers of a quiesced range, whose lease runs down between requests."""
        start = time.monotonic()
        self._SyncObj__newAppendEntriesTime = 0.0  # pysyncobj: heartbeat round due now
        self._wake()
        deadline = start + wait
        while True:
            now = time.monotonic()
            if self.lease_end(now) >= start + self._lease_duration or now >= deadline:
                return self.promise_term(now, term)
            time.sleep(0.0005)

    def lease_duration(self) -> float:
        return self._lease_duration

    def _read_under_lease(self, cmd: pb.Command, timeout: float) -> pb.CommandResult | None:
        """Serve a read locally if the lease holds; None to fall back to a log read."""
        now = time.monotonic()
        if not self.lease_valid(now):
            return None
        commit = int(self._SyncObj__raftCommitIndex)
        deadline = now + timeout
        while int(self._SyncObj__raftLastApplied) < commit:
            if time.monotonic() > deadline:
                return None
            self._wake()
            time.sleep(0.0005)
        try:
            self.txns.read_wait(cmd.read.locks, max(deadline - time.monotonic(), 0.0))
        except (LockConflict, ProposalTimeout, NotLeaderError):
            return None
        out = self._read_locally(cmd.read, commit)
        # Check again *after* reading: if this process stalled (CPU starvation, GC) past the
        # lease, a new leader may have committed meanwhile; then the answer may be stale.
        if not self.lease_valid(time.monotonic()):
            return None
        self.lease_reads += 1
        return out

    # -- pre-vote ----------------------------------------------------------------------------

    def before_tick(self, now: float) -> None:
        """Tick thread, before each tick: turn a due election into a pre-vote round unless a
        majority already agreed (or the leader asked us to take over: TimeoutNow)."""
        if self.stopped_reason is not None or self._isLeader() or self._SyncObj__selfNode is None:
            self._prevote = None
            return
        if self._SyncObj__raftElectionDeadline >= now or not self._SyncObj__otherNodes:
            return
        if not self.may_campaign():
            self._SyncObj__raftElectionDeadline = now + self._timing.election_max
            return
        if (
            self._prevote_won
            and not self._skip_prevote
            and now - self._granted_prevote_at < _PREVOTE_RETRY[0]
        ):
            # Another voter won its pre-vote with ours just now (the followers of a dead
            # leader notice together): both electing themselves would split the vote and
            # cost a whole election timeout. Step back; one of us asks again first.
            self._prevote_won = False
            self._SyncObj__raftElectionDeadline = now + random.uniform(*_PREVOTE_RETRY)
            return
        if self._prevote_won or self._skip_prevote or self._SyncObj__transferInProgress:
            self._prevote_won = self._skip_prevote = False
            return  # let pysyncobj run the real election in this tick
        leader = self._getLeader()
        if leader is not None and self.is_live(int(leader.id)):
            # Its node still sends node heartbeats: no voter would grant a pre-vote
            # (_grant_prevote). Look again shortly instead of a whole election timeout
            # later, so a failover takes the liveness window, not up to twice it.
            self._SyncObj__raftElectionDeadline = now + random.uniform(*_PREVOTE_RETRY)
            return
        term = int(self._SyncObj__raftCurrentTerm) + 1
        self._prevote = (term, {self.node_id})
        # A refused pre-vote costs no term: ask again soon (the voters may have seen the
        # leader's node a moment later than we did).
        self._SyncObj__raftElectionDeadline = now + random.uniform(*_PREVOTE_RETRY)
        ask = {
            "type": "pre_vote",
            "term": term,
            "last_log_index": self.journal.last_index,
            "last_log_term": self.journal.term_at(self.journal.last_index) or 0,
        }
        for peer in self.peer_ids():
            self._transport.send_to(peer, dict(ask))

    def _grant_prevote(self, message: dict[str, Any], now: float, from_node: int) -> bool:
        if self._isLeader() or self.stopped_reason is not None:
            return False
        if int(message["term"]) < int(self._SyncObj__raftCurrentTerm):
            return False
        ours = (self.journal.term_at(self.journal.last_index) or 0, self.journal.last_index)
        theirs = (int(message["last_log_term"]), int(message["last_log_index"]))
        if theirs < ours:
            return False
        leader = self._getLeader()
        # No leader, or our leader itself is asking (it no longer leads), or it is gone.
        if leader is not None and int(leader.id) != from_node:
            heard_recently = now - self._last_leader_contact < self._timing.election_min
            if heard_recently or self.is_live(int(leader.id)):
                return False
        self._granted_prevote_at = now
        return True

    def _on_prevote_response(self, from_node: int, message: dict[str, Any]) -> None:
        if self._prevote is None or int(message["term"]) != self._prevote[0]:
            return
        if not message.get("granted"):
            return
        votes = self._prevote[1]
        votes.add(from_node)
        if len(votes) * 2 > len(self._SyncObj__otherNodes) + 1:
            self._prevote = None
            self._prevote_won = True
            self._SyncObj__raftElectionDeadline = 0.0

    # -- quiescence ------------------------------------------------------------------------

    def can_quiesce(self, now: float, is_live: Callable[[int], bool]) -> bool:
        """Whether this group may stop ticking: nothing in flight, everyone caught up.

        A quiesced leader sends no heartbeats and a quiesced follower runs no election timer;
        the store wakes the group on any message or proposal, and wakes followers whose
        leader's *node* stops sending node heartbeats (node-level liveness).
        """
        if self.stopped_reason is not None:
            return True
        last = self.journal.last_index
        commit = int(self._SyncObj__raftCommitIndex)
        if (
            commit != last
            or int(self._SyncObj__raftLastApplied) != commit
            or len(self._SyncObj__commandsQueue._FastQueue__queue) > 0
            or self._pending_reads
            or self._commit_due is not None  # followers must hear the commit index first
            or self._non_voters_due is not None
        ):
            self._quiet_since = None
            return False
        if self._isLeader():
            match = self._SyncObj__raftMatchIndex
            nxt = self._SyncObj__raftNextIndex
            connected = self._SyncObj__connectedNodes
            if any(
                match.get(p, 0) != last or nxt.get(p, 0) != last + 1 or p not in connected
                for p in self._SyncObj__otherNodes | self._SyncObj__readonlyNodes
            ):
                self._quiet_since = None
                return False
        else:
            leader = self._getLeader()
            if leader is None or not is_live(int(leader.id)):
                self._quiet_since = None
                return False
        if self._quiet_since is None:
            self._quiet_since = now
            return False
        # Stay awake for a few heartbeats so followers learn the final commit index.
        return now - self._quiet_since >= self._quiesce_after

    def resume(self, now: float, is_live: Callable[[int], bool]) -> None:
        """Called before the first tick after quiescence: restart timers from now."""
        self._quiet_since = None
        leader = self._getLeader()
        if self._isLeader():
            times = self._SyncObj__lastResponseTime
            for peer in self._SyncObj__otherNodes:
                if is_live(int(peer.id)):
                    times[peer] = now
        elif leader is not None and is_live(int(leader.id)):
            timing = self._timing
            self._SyncObj__raftElectionDeadline = now + random.uniform(
                timing.election_min, timing.election_max
            )

    def peer_ids(self) -> list[int]:
        nodes = self._SyncObj__otherNodes | self._SyncObj__readonlyNodes
        return [int(n.id) for n in nodes]

    def has_pending_work(self) -> bool:
        """True when another tick right away would make progress (commit or apply)."""
        last = self.journal.last_index
        commit = int(self._SyncObj__raftCommitIndex)
        if commit > int(self._SyncObj__raftLastApplied):
            return True
        return bool(self._isLeader()) and not self._SyncObj__otherNodes and commit < last

    def note_applied(self) -> None:
        """Tick thread, after a tick: an AppendEntries whose commit index is now applied makes
        this replica fresh as of that message's arrival."""
        pending = self._fresh_pending
        if pending is not None and int(self._SyncObj__raftLastApplied) >= pending[0]:
            self.fresh_at = max(self.fresh_at, pending[1])
            self._fresh_pending = None

    def caught_up(self) -> bool:
        commit = int(self._SyncObj__raftCommitIndex)
        return commit == self.journal.last_index and int(self._SyncObj__raftLastApplied) == commit

    def tick(self) -> None:
        self._onTick(0.0)
        if not self._isLeader():
            return
        now = time.monotonic()
        sent_last, sent_commit = self._sent_mark
        if self._non_voters_due is not None and now >= self._non_voters_due:
            self._SyncObj__sendAppendEntries()
        elif sent_last != self.journal.last_index:
            # New entries go to the voters at once. Non-voters do not count for commit:
            # they get them with the next full round (one heartbeat period at most), off
            # the commit path and batched: a follower read there is that much staler, and a
            # write costs no message and ack per non-voter (geo bench: the 9 nodes' CPU per
            # home-region write 9.8 -> 7.0 ms; it was 5 ms, one round per write).
            if self._SyncObj__readonlyNodes:
                self._send_to_voters()
                if self._non_voters_due is None:
                    self._non_voters_due = now + self._timing.heartbeat
            else:
                self._SyncObj__sendAppendEntries()
        elif sent_commit != int(self._SyncObj__raftCommitIndex):
            # Only the commit index moved: it rides on the next append (the common case
            # under load) or goes out alone after COMMIT_LINGER, saving a message and its
            # ack per follower per write. Followers apply that much later; the leader
            # answers the client as soon as it applied.
            if self._commit_due is None:
                self._commit_due = now + COMMIT_LINGER
            elif now >= self._commit_due:
                self._SyncObj__sendAppendEntries()

    def _send_to_voters(self) -> None:
        """An AppendEntries round for the voting followers only."""
        self._append_round(non_voters=False)

    def _append_round(self, *, non_voters: bool) -> None:
        """pysyncobj's AppendEntries round, skipping followers that need a snapshot:
        pysyncobj would try its own transfer for them (disabled: ours streams a SQLite
        file) and spin until appendEntriesPeriod ran out, on every round. Notes the log end
        and commit index the round told the followers about."""
        self._sent_mark = (self.journal.last_index, int(self._SyncObj__raftCommitIndex))
        voters, readonly = self._SyncObj__otherNodes, self._SyncObj__readonlyNodes
        behind = self._behind_log_start()
        if not behind and non_voters:
            SyncObj._SyncObj__sendAppendEntries(self)
            return
        self._SyncObj__otherNodes = voters - behind
        self._SyncObj__readonlyNodes = (readonly - behind) if non_voters else set()
        try:
            SyncObj._SyncObj__sendAppendEntries(self)
        finally:
            self._SyncObj__otherNodes, self._SyncObj__readonlyNodes = voters, readonly

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802 (library hook)
        """Every full AppendEntries round (ours after a tick, or pysyncobj's heartbeat)."""
        self._commit_due = None
        self._non_voters_due = None
        self._append_round(non_voters=True)

    def deliver(self, from_node: int, message: dict[str, Any]) -> None:
        """Hand one peer message to pysyncobj, through the Raft §5.3 guards (``safety``)."""
        mtype = message.get("type")
        if mtype == "pre_vote":
            granted = self._grant_prevote(message, time.monotonic(), from_node)
            self._transport.send_to(
                from_node,
                {"type": "pre_vote_response", "term": int(message["term"]), "granted": granted},
            )
            return
        if mtype == "pre_vote_response":
            self._on_prevote_response(from_node, message)
            return
        if mtype == "append_entries":
            if int(message.get("term", -1)) >= int(self._SyncObj__raftCurrentTerm):
                self._last_leader_contact = time.monotonic()
                self._last_hb_in = int(message.get("hb", 0))
                self._fresh_pending = (
                    int(message.get("commit_index", 0)),
                    self._last_leader_contact,
                )
            plan = plan_append(
                message,
                int(self._SyncObj__raftCurrentTerm),
                self.journal.term_at,
                self.journal.last_index,
            )
            if plan.forward is not None:
                self._transport.deliver(from_node, plan.forward)
            if plan.ack_next is not None:
                self._transport.send_to(
                    from_node,
                    {
                        "type": "next_node_idx",
                        "next_node_idx": plan.ack_next,
                        "reset": False,
                        "success": True,
                    },
                )
            return
        if mtype == "next_node_idx" and self._isLeader():
            if RaftPeer(from_node) not in self._SyncObj__raftMatchIndex:
                # A late ack from a replica this range no longer has (just removed):
                # nothing to update (pysyncobj would raise KeyError on it).
                log.debug(
                    "range %d: ack from n%d, not a replica: dropped", self.range_id, from_node
                )
                return
            self._note_ack(from_node, message)
            match = self._SyncObj__raftMatchIndex.get(RaftPeer(from_node), 0)
            message = clamp_ack(message, int(match))
        self._transport.deliver(from_node, message)

    def status(self) -> pb.ReplicaStatus:
        return pb.ReplicaStatus(
            range_id=self.range_id,
            is_leader=self.is_leader(),
            leader=self.leader(),
            applied_index=self.engine.applied_index,
            commit_index=int(self.raftCommitIndex),
            term=int(self.raftCurrentTerm),
            stopped=self.stopped_reason or "",
            last_index=self.journal.last_index,
        )

    def close(self) -> None:
        self.engine.close()

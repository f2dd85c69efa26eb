"""The node's store: every replica on this node, driven by one tick loop.

Messages from peers arrive on gRPC threads and are queued per replica; the tick thread delivers
them and ticks each group, so pysyncobj's state is only ever touched by that one thread.
Proposals wake the loop at once, so a commit does not wait for a timer.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from proto import pb
from storage import Engine

from . import fsm
from .errors import NotLeaderError, RangeNotFoundError, ReplicaStopped
from .group import RaftTiming, RangeGroup
from .journal import LogFailure, LogStore, RangeJournal
from .transport import NodeTransport

log = logging.getLogger(__name__)

_IDLE_WAIT = 0.01  # tick period of active ranges (heartbeats are 50 ms)
_SWEEP_PERIOD = 0.25
_EARLY_MAX = 64  # messages kept per range that has no replica here yet
_EARLY_RANGES = 256
_EARLY_TTL = 3.0
_SNAPSHOT_CHUNK = 1024 * 1024
_SNAPSHOT_TIMEOUT = 600.0  # how often quiesced followers check their leader's node liveness


class _Replica:
    __slots__ = ("group", "inbox")

    def __init__(self, group: RangeGroup) -> None:
        self.group = group
        self.inbox: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()


class Store:
    """All replicas of one node."""

    def __init__(
        self,
        *,
        node_id: int,
        data_dir: str,
        resolve: Callable[[int], str | None],
        secret: str = "",
        timing: RaftTiming | None = None,
        log_max_entries: int = 10_000,
        log_keep: int = 1_000,
    ) -> None:
        self.node_id = node_id
        self.ranges_dir = os.path.join(data_dir, "ranges")
        os.makedirs(self.ranges_dir, exist_ok=True)
        self.timing = timing or RaftTiming()
        self.transport = NodeTransport(node_id, resolve, self._on_message, secret)
        self.log_store = LogStore(os.path.join(data_dir, "raft.log.db"))
        self._replicas: dict[int, _Replica] = {}
        self._active: set[int] = set()  # ranges that tick; the others are quiesced
        self._resumed: set[int] = set()  # tick thread: active ranges told they are awake
        self._early: dict[int, collections.deque[tuple[float, int, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        self.log_max_entries = log_max_entries
        self.log_keep = min(log_keep, max(1, log_max_entries // 2))
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._snapshots_in_flight: set[tuple[int, int]] = set()
        self.snapshots_sent = 0
        self.snapshots_installed = 0
        self.draining = False  # operator drain: no replica here campaigns
        self.transport.on_peer_restart = self._on_peer_restart
        self._live_window = self.timing.election_max
        self._wake_event = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self.tick_errors = 0
        # Called (tick thread) when a split created a replica here: the node records it so
        # it is reopened after a restart, before the catalog knows the new range.
        self.on_split_child: Callable[[int, list[int], list[int]], None] = lambda r, v, n: None
        self.splits_applied = 0
        self.follower_reads = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="store-tick", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._wake_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.transport.close()
        with self._lock:
            replicas = list(self._replicas.values())
            self._replicas.clear()
        for rep in replicas:
            rep.group.close()
        self.log_store.close()

    def wake(self) -> None:
        self._wake_event.set()

    def activate(self, range_id: int) -> None:
        """Make a (possibly quiesced) range tick again, now."""
        with self._lock:
            if range_id in self._replicas:
                self._active.add(range_id)
        self._wake_event.set()

    def _on_peer_restart(self, peer: int) -> None:
        """A peer came back with a new incarnation: wake our ranges it replicates so their
        leaders tell it who leads before its election timer fires."""
        with self._lock:
            groups = [rep.group for rep in self._replicas.values() if peer in rep.group.peer_ids()]
            for group in groups:
                self._active.add(group.range_id)

        def forget() -> None:
            for group in groups:
                group.peer_restarted(peer)

        self._tasks.append(forget)
        self._wake_event.set()

    def _db_path(self, range_id: int) -> str:
        return os.path.join(self.ranges_dir, f"r{range_id}.sqlite")

    def ensure_replica(
        self,
        range_id: int,
        peers: list[int],
        *,
        campaign: bool = False,
        non_voters: list[int] | None = None,
        generation: int = 0,
    ) -> RangeGroup:
        """Open (or create) this node's replica of ``range_id`` with voters ``peers``.

        ``campaign``: for a brand-new range, start an election at once instead of waiting
        out an election timeout (the creator passes it to the first replica only).
        """
        with self._create_lock:  # one creator at a time: two opening one new file collide
            return self._ensure_replica(range_id, peers, campaign, non_voters or [], generation)

    def _ensure_replica(
        self,
        range_id: int,
        peers: list[int],
        campaign: bool,
        non_voters: list[int],
        generation: int = 0,
    ) -> RangeGroup:
        with self._lock:
            rep = self._replicas.get(range_id)
            if rep is not None:
                return rep.group
        db_path = self._db_path(range_id)
        engine = Engine(db_path)
        group = RangeGroup(
            range_id=range_id,
            node_id=self.node_id,
            peers=sorted(peers),
            engine=engine,
            journal=RangeJournal(self.log_store, range_id),
            node_transport=self.transport,
            timing=self.timing,
            wake=lambda: self.activate(range_id),
            non_voters=non_voters,
        )
        with self._lock:
            existing = self._replicas.get(range_id)
            if existing is not None:  # lost a race with another creator
                group.close()
                return existing.group
            if group.engine.applied_index == 0:
                group.joined_generation = generation  # brand new: it replays older configs
            group.is_live = self._is_live
            group.may_campaign = lambda: not self.draining
            group.prepare_split = self._prepare_split
            group.split_applied = self._split_applied
            rep = self._replicas[range_id] = _Replica(group)
            now = time.monotonic()
            for t, from_node, message in self._early.pop(range_id, ()):
                if now - t < _EARLY_TTL:
                    rep.inbox.append((from_node, message))
            self._active.add(range_id)
            self.transport.peers.update(p for p in group.peer_ids() if p != self.node_id)
        if campaign and int(group.raftCommitIndex) <= max(1, group.first_index()):
            group.campaign_now()
        log.info("n%d: opened replica of range %d (voters %s)", self.node_id, range_id, peers)
        self.wake()
        return group

    # -- splits ---------------------------------------------------------------------------------

    def _prepare_split(self, group: RangeGroup, split: pb.SplitRange) -> None:
        """Tick thread, while ``group`` applies ``split``: write the right-hand replica's file
        from the left's committed state, unless a replica of it already exists here (opened
        from the catalog before this replica caught up: its leader will send a snapshot)."""
        rhs = int(split.new_range_id)
        path = self._db_path(rhs)
        with self._lock:
            exists = rhs in self._replicas
        if exists or os.path.exists(path):
            log.info("range %d: split child %d already exists here", group.range_id, rhs)
            return
        voters, non_voters, generation = fsm.split_config(group.engine, split)
        stored = group.engine.span()
        copied = Engine.create_split_child(
            group.engine.path,
            path,
            table=stored[0] if stored is not None else split.table,
            start_key=split.split_key,
            end_key=split.span.end_key,
            base_index=fsm.SPLIT_BASE_INDEX,
            voters=voters,
            non_voters=non_voters,
            generation=generation,
            schema_version=group.engine.schema_version(),
            database=split.database,
        )
        log.info("range %d: split off range %d (%d rows)", group.range_id, rhs, copied)

    def _split_applied(self, group: RangeGroup, split: pb.SplitRange) -> None:
        """Tick thread, after the left side committed: open the right-hand replica."""
        rhs = int(split.new_range_id)
        config = group.engine.replica_config()
        voters, non_voters = (config[0], config[1]) if config else (group.voters, [])
        campaign = group.is_leader()
        self.splits_applied += 1
        self.on_split_child(rhs, list(voters), list(non_voters))

        def open_child() -> None:
            self.ensure_replica(rhs, list(voters), campaign=campaign, non_voters=list(non_voters))

        self._tasks.append(open_child)
        self._wake_event.set()

    def remove_replica(self, range_id: int) -> None:
        """Close and delete this node's replica (the range was dropped)."""
        with self._lock:
            rep = self._replicas.pop(range_id, None)
            # (left in _active, the id kept the tick loop at its 10 ms pace for good)
            self._active.discard(range_id)
            self._resumed.discard(range_id)
        if rep is not None:
            rep.group.close()
        db_path = self._db_path(range_id)
        Engine.remove_files(db_path)
        try:
            self.log_store.drop(range_id)
        except LogFailure:
            log.exception("range %d: could not drop its log", range_id)
        log.info("n%d: removed replica of range %d", self.node_id, range_id)

    def get(self, range_id: int) -> RangeGroup:
        with self._lock:
            rep = self._replicas.get(range_id)
        if rep is None:
            raise RangeNotFoundError(range_id)
        if rep.group.stopped_reason is not None:
            raise ReplicaStopped(f"range {range_id}: {rep.group.stopped_reason}")
        return rep.group

    def propose(self, range_id: int, command: pb.Command, timeout: float) -> pb.CommandResult:
        return self.get(range_id).propose(command, timeout)

    def metrics_snapshot(self) -> dict[str, Any]:
        """Figures for the node's metrics (read at scrape time)."""
        with self._lock:
            groups = [r.group for r in self._replicas.values()]
            active = len(self._active)
        return {
            "replicas": len(groups),
            "leaders": sum(1 for g in groups if g.is_leader()),
            "stopped": sum(1 for g in groups if g.stopped_reason is not None),
            "active": active,
            "term_sum": sum(int(g.raftCurrentTerm) for g in groups),
            "commits": sum(int(g.raftCommitIndex) for g in groups),
            "lease_reads": sum(g.lease_reads for g in groups),
            "snapshots_sent": self.snapshots_sent,
            "follower_reads": self.follower_reads,
            "splits_applied": self.splits_applied,
            "snapshots_installed": self.snapshots_installed,
            "flushes": self.log_store.flushes,
        }

    def follower_read(self, range_id: int, read: pb.SqlRead) -> pb.CommandResult | None:
        """Serve a read from this replica (voter or not) if its data is at most
        ``read.max_staleness_ms`` old; None if it is not fresh enough (the gateway then asks
        the leader).

        Freshness: a leader holding its lease is fresh now; a follower is fresh as of the
        arrival of the last AppendEntries whose commit index it has applied; a quiesced
        follower that was caught up stays fresh as of the last batch from its leader's node
        (batches from a peer arrive in order, a leader quiesces only once every replica holds
        every entry, and any new entry would have woken the group first), unless a batch
        from that node was lost since the group quiesced.
        """
        group = self.get(range_id)
        now = time.monotonic()
        fresh = group.fresh_at
        if group.is_leader() and group.lease_valid(now):
            fresh = now
        with self._lock:
            quiesced = range_id not in self._active
        leader = group.leader()
        if quiesced and leader and leader != self.node_id and group.caught_up():
            heard = self.transport.last_heard.get(leader, 0.0)
            gap = self.transport.gap_at.get(leader, 0.0)
            if heard > group.quiesced_at and gap < group.quiesced_at:
                fresh = max(fresh, heard)
        if now - fresh > read.max_staleness_ms / 1000.0:
            return None
        self.follower_reads += 1
        return group.read_now(read)

    def leaders(self) -> list[RangeGroup]:
        """The groups this node currently leads."""
        with self._lock:
            groups = [r.group for r in self._replicas.values()]
        return [g for g in groups if g.is_leader()]

    def replica_span(self, range_id: int) -> tuple[str, bytes, bytes, str] | None:
        """(table, start, end, database) of a local replica, open or only on disk; None if
        it holds no span record."""
        with self._lock:
            rep = self._replicas.get(range_id)
        if rep is not None:
            span = rep.group.engine.span()
            if span is None:
                return None
            return (*span, rep.group.engine.span_database())
        path = self._db_path(range_id)
        return Engine.read_span(path) if os.path.exists(path) else None

    def status(self) -> list[pb.ReplicaStatus]:
        with self._lock:
            groups = [r.group for r in self._replicas.values()]
        return [g.status() for g in groups]

    # -- the loop -----------------------------------------------------------------------------

    def _on_message(self, range_id: int, from_node: int, message: dict[str, Any]) -> None:
        with self._lock:
            rep = self._replicas.get(range_id)
            if rep is None:
                # A replica we don't have yet (typically a brand-new range whose first
                # replica campaigned before ours opened): keep a few messages briefly, so the
                # vote request is not lost until the next election timeout.
                early = self._early.setdefault(range_id, collections.deque(maxlen=_EARLY_MAX))
                early.append((time.monotonic(), from_node, message))
                if len(self._early) > _EARLY_RANGES:
                    self._early.pop(next(iter(self._early)))
                return
            if range_id not in self._active and rep.group.stale_ack(from_node, message):
                return  # a quiesced leader stays asleep (see RangeGroup.stale_ack)
            rep.inbox.append((from_node, message))
            self._active.add(range_id)
        self._wake_event.set()

    def _is_live(self, node: int) -> bool:
        return self.transport.is_live(node, self._live_window)

    def _sweep_quiesced(self) -> None:
        """Wake quiesced followers whose leader's node went silent, so they can elect."""
        with self._lock:
            sleeping = [
                (rid, rep.group) for rid, rep in self._replicas.items() if rid not in self._active
            ]
        for rid, group in sleeping:
            if group.stopped_reason is not None or group.is_leader():
                continue
            leader = group.leader()
            if not leader or not self._is_live(leader):
                self.activate(rid)

    def _loop(self) -> None:
        last_sweep = 0.0
        while self._running:
            with self._lock:
                idle = not self._active
            self._wake_event.wait(_SWEEP_PERIOD if idle else _IDLE_WAIT)
            self._wake_event.clear()
            now = time.monotonic()
            while self._tasks:
                try:
                    self._tasks.popleft()()
                except Exception:
                    log.exception("store task failed")
            if now - last_sweep >= _SWEEP_PERIOD:
                last_sweep = now
                self._sweep_quiesced()
                self._housekeeping()
            with self._lock:
                replicas = [
                    (rid, self._replicas[rid]) for rid in self._active if rid in self._replicas
                ]
            ticking: list[tuple[int, _Replica]] = []
            for rid, rep in replicas:
                group = rep.group
                if group.stopped_reason is not None:
                    rep.inbox.clear()
                    with self._lock:
                        self._active.discard(rid)
                    continue
                if rid not in self._resumed:
                    group.resume(now, self._is_live)
                    self._resumed.add(rid)
                if not self._guarded(group, functools.partial(self._deliver_inbox, rep)):
                    break
                ticking.append((rid, rep))
            # The acks (and votes) the messages produced leave as soon as what they
            # acknowledge is durable, before the groups apply what has been committed.
            if not self._flush_and_release():
                continue
            for rid, rep in ticking:
                if not self._guarded(rep.group, functools.partial(self._tick, rid, rep, now)):
                    break
            # Group commit: one fsync for everything the groups appended in this iteration,
            # and only then do their messages (appends, votes) leave the node.
            self._flush_and_release()

    def _deliver_inbox(self, rep: _Replica) -> None:
        group = rep.group
        while rep.inbox:
            from_node, message = rep.inbox.popleft()
            try:
                group.deliver(from_node, message)
            except (KeyError, TypeError, ValueError, IndexError):
                log.warning(
                    "range %d: malformed message from n%d dropped",
                    group.range_id,
                    from_node,
                    exc_info=True,
                )

    def _tick(self, rid: int, rep: _Replica, now: float) -> None:
        group = rep.group
        group.before_tick(now)
        group.tick()
        group.note_applied()
        if group.has_pending_work():
            self._wake_event.set()
        elif not rep.inbox and group.can_quiesce(now, self._is_live):
            with self._lock:
                if not rep.inbox:
                    self._active.discard(rid)
                    self._resumed.discard(rid)
                    group.quiesced_at = now

    def _guarded(self, group: RangeGroup, step: Callable[[], None]) -> bool:
        """Run one group's step; False when the node's log failed (stop this iteration)."""
        try:
            step()
        except LogFailure as exc:
            self._log_failed(str(exc))
            return False
        except Exception:
            self.tick_errors += 1
            log.exception("range %d: tick failed", group.range_id)
            if group.stopped_reason is None:
                time.sleep(0.01)
        return True

    def _flush_and_release(self) -> bool:
        """fsync what the groups wrote, then let the messages that depend on it go."""
        try:
            self.log_store.flush()
        except LogFailure as exc:
            self._log_failed(str(exc))
            return False
        self.transport.release()
        return True

    # -- compaction and snapshots ----------------------------------------------------------

    def _housekeeping(self) -> None:
        """Tick thread: compact long logs; start snapshot transfers for lagging followers."""
        with self._lock:
            groups = [
                (rid, self._replicas[rid].group) for rid in self._active if rid in self._replicas
            ]
        for rid, group in groups:
            try:
                group.maybe_compact(self.log_max_entries, self.log_keep)
            except LogFailure as exc:
                self._log_failed(str(exc))
                return
            except Exception:
                log.exception("range %d: compaction failed", rid)
            for peer in group.followers_needing_snapshot():
                key = (rid, peer)
                if key in self._snapshots_in_flight:
                    continue
                self._snapshots_in_flight.add(key)
                group.pause_peer(peer)
                threading.Thread(
                    target=self._send_snapshot,
                    args=(rid, peer),
                    daemon=True,
                    name=f"snapshot-r{rid}-n{peer}",
                ).start()

    def _send_snapshot(self, range_id: int, peer: int) -> None:
        """Off the tick thread: back up the range's SQLite file and stream it to ``peer``."""
        tmp = os.path.join(self.ranges_dir, f".snap-out-r{range_id}-n{peer}-{uuid.uuid4().hex}")
        try:
            group = self.get(range_id)
            leader_term = int(group.raftCurrentTerm)
            index, term = Engine.backup_to(group.engine.path, tmp)
            size = os.path.getsize(tmp)
            log.info(
                "range %d: sending snapshot at %d (%d bytes) to n%d", range_id, index, size, peer
            )

            def chunks() -> Any:
                yield pb.SnapshotChunk(
                    range_id=range_id,
                    from_node=self.node_id,
                    leader_term=leader_term,
                    index=index,
                    term=term,
                    total_bytes=size,
                )
                with open(tmp, "rb") as f:
                    while True:
                        data = f.read(_SNAPSHOT_CHUNK)
                        if not data:
                            return
                        yield pb.SnapshotChunk(data=data)

            ack = self.transport.stream_snapshot(peer, chunks(), timeout=_SNAPSHOT_TIMEOUT)
            if ack.HasField("error") and ack.error.code:
                log.warning("range %d: n%d refused snapshot: %s", range_id, peer, ack.error.message)
                return
            self.snapshots_sent += 1
            # As if the follower had acknowledged up to the snapshot: the leader continues
            # with normal AppendEntries from there.
            self._on_message(
                range_id,
                peer,
                {
                    "type": "next_node_idx",
                    "next_node_idx": int(ack.installed_index) + 1,
                    "reset": True,
                    "success": True,
                },
            )
        except Exception as exc:  # noqa: BLE001 - retried at the next housekeeping round
            log.warning("range %d: snapshot to n%d failed: %s", range_id, peer, exc)
            time.sleep(1.0)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

            def done() -> None:
                with self._lock:
                    rep = self._replicas.get(range_id)
                if rep is not None:
                    rep.group.resume_peer(peer)
                self._snapshots_in_flight.discard((range_id, peer))

            self._tasks.append(done)
            self.activate(range_id)

    def snapshot_path(self, range_id: int) -> str:
        """Where an incoming snapshot for ``range_id`` is written before installation."""
        return os.path.join(self.ranges_dir, f".snap-in-r{range_id}-{uuid.uuid4().hex}")

    def install_snapshot(
        self,
        range_id: int,
        path: str,
        index: int,
        term: int,
        leader_term: int,
        timeout: float = 60.0,
    ) -> int:
        """Hand a received snapshot to the tick thread and wait until it is installed."""
        group = self.get(range_id)
        done = threading.Event()
        box: dict[str, Any] = {}

        def task() -> None:
            try:
                box["index"] = group.install_snapshot(path, index, term, leader_term)
                self.snapshots_installed += 1
            except Exception as exc:  # noqa: BLE001 - reported to the sender
                box["error"] = exc
            finally:
                done.set()

        self._tasks.append(task)
        self.activate(range_id)
        if not done.wait(timeout):
            raise TimeoutError(f"range {range_id}: snapshot not installed within {timeout}s")
        if "error" in box:
            raise box["error"]
        return int(box["index"])

    def transfer_leadership(self, range_id: int, target: int, timeout: float) -> int:
        """Move ``range_id``'s leadership to ``target``; returns the leader at the end.

        Raises ``NotLeaderError`` if this node does not lead the range. Retries TimeoutNow
        until the target has caught up, then waits for it to win its election.
        """
        group = self.get(range_id)
        if target == self.node_id:
            if group.is_leader():
                return target
            raise NotLeaderError(range_id, group.leader())
        if target not in group.peer_ids():
            raise ValueError(f"n{target} holds no replica of range {range_id}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if group.leader() == target:
                return target
            if not group.is_leader():
                leader = group.leader()
                if leader and leader != target:
                    raise NotLeaderError(range_id, leader)
            else:
                sent = threading.Event()

                def task(sent: threading.Event = sent) -> None:
                    group.request_transfer(target)
                    sent.set()

                self._tasks.append(task)
                self.activate(range_id)
                sent.wait(1.0)
            time.sleep(0.05)
        return group.leader()

    def _log_failed(self, reason: str) -> None:
        """The durable log failed: nothing produced since the last flush may leave the node,
        and no replica here may acknowledge anything again."""
        self.transport.discard_outbox()
        with self._lock:
            replicas = list(self._replicas.values())
        for rep in replicas:
            rep.group.stop(reason)
        self.transport.stop_heartbeats()

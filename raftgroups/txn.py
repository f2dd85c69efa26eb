"""A range leader's side of transactions: statements run on top of a transaction's changes,
its locks, and the checks before its prepare/commit entries are proposed.

What is replicated (``fsm``): intents (TxnPrepare), the transaction record and the commit
(TxnCommit), resolution (TxnResolve), recovery (TxnRecover). What is not: the statements of an
open transaction (``TxnStep``: run provisionally by the leader, their changes go back to the
gateway as a changeset) and the locks (``locks.LockTable``, rebuilt by each new leader from
the prepared intents in its replica).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from proto import atlasql_pb2 as pb
from storage import params_from_proto, row_from_proto, row_to_proto, sqlstate
from storage.engine import Provisional

from . import fsm
from .errors import NotLeaderError, ProposalTimeout
from .locks import EVERYTHING, Interval, LockConflict, LockTable

if TYPE_CHECKING:
    from .group import RangeGroup

log = logging.getLogger(__name__)

# How long an unknown-outcome autocommit write keeps its rows locked (it may still apply).
_LINGER = 10.0
# How long a read step may wait for its leader's lease to be renewed (Coordinator.commit).
_RENEW_WAIT = 0.01
# Locks of a transaction whose prepare/commit entry is in flight never expire before this.
_COMMIT_GRACE = 30.0


def intervals(spans: Sequence[pb.Span]) -> tuple[Interval, ...]:
    """Lock intervals from the wire (none = the whole range)."""
    if not spans:
        return EVERYTHING
    return tuple((s.start_key, s.end_key or None) for s in spans)


def failure(code: str, message: str, index: int = 0) -> pb.CommandResult:
    out = pb.CommandResult(applied_index=index)
    out.error.code, out.error.message = code, message
    return out


class RangeTxns:
    """Locks and transaction steps of one range while this replica leads it."""

    def __init__(self, group: RangeGroup, *, idle_timeout: float = 15.0) -> None:
        self._group = group
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._table: LockTable | None = None
        self._term = -1

    # -- the lock table of the current term ---------------------------------------------------

    def _ready(self, timeout: float) -> None:
        """Wait until this leader has applied every entry committed before its term (then its
        replica holds every prepared intent); NotLeaderError if it is not the leader."""
        g = self._group
        deadline = time.monotonic() + timeout
        while True:
            if not g.is_leader() or g.stopped_reason is not None:
                raise NotLeaderError(g.range_id, g.leader())
            term = g.current_term()
            commit = g.commit_index()
            if g.journal.term_at(commit) == term and g.applied_index() >= commit:
                return
            if time.monotonic() > deadline:
                raise ProposalTimeout(f"range {g.range_id}: leader not ready for transactions")
            g.wake()
            time.sleep(0.001)

    def table(self, timeout: float = 5.0) -> LockTable:
        term = self._group.current_term()
        with self._lock:
            if self._table is not None and self._term == term:
                return self._table
        self._ready(timeout)
        with self._lock:
            term = self._group.current_term()
            if self._table is None or self._term != term:
                table = LockTable(idle_timeout=self._idle_timeout)
                engine = self._group.engine
                for txn_id, changeset, record in engine.intents():
                    table.mark_prepared(txn_id, engine.changed_keys(changeset), record)
                self._table, self._term = table, term
            return self._table

    def current(self) -> LockTable | None:
        """The lock table if one exists for the current term (no waiting)."""
        with self._lock:
            if self._table is not None and self._term == self._group.current_term():
                return self._table
            return None

    def applied(self, cmd: pb.Command, result: pb.CommandResult) -> None:
        """Tick thread, after an entry applied: update the locks it settles."""
        op = cmd.WhichOneof("op")
        if op not in ("txn_prepare", "txn_commit", "txn_resolve", "txn_recover"):
            return
        with self._lock:
            table = self._table if self._term == self._group.current_term() else None
            if table is None:
                return
            if op == "txn_prepare":
                p = cmd.txn_prepare
                if not result.error.code:
                    keys = self._group.engine.changed_keys(p.changeset)
                    table.mark_prepared(p.txn.txn_id, keys, p.record_range)
            elif op == "txn_commit":
                table.release(cmd.txn_commit.txn.txn_id)
            elif op == "txn_recover":
                # Its coordinator is gone: whatever it held here is no longer needed.
                if result.txn_status == "ABORTED":
                    table.release(cmd.txn_recover.txn_id)
            else:
                table.release(cmd.txn_resolve.txn_id)

    # -- autocommit statements ----------------------------------------------------------------

    def propose_write(self, command: pb.Command, timeout: float) -> pb.CommandResult:
        """An autocommit write: wait for transactions' locks on its rows, keep them from
        taking new ones until it has applied (``_LINGER`` longer if its outcome is unknown:
        it may still apply), and propose it."""
        table = self.table(timeout)
        try:
            token = table.begin_write(intervals(command.write.locks), timeout=min(timeout, 5.0))
        except LockConflict as exc:
            return failure(sqlstate.SERIALIZATION_FAILURE, exc.message)
        try:
            result = self._group.propose_entry(command, timeout)
        except ProposalTimeout:
            table.end_write(token, linger=_LINGER)
            raise
        table.end_write(token)
        return result

    def read_wait(self, spans: Sequence[pb.Span], timeout: float) -> None:
        """A consistent autocommit read at the leader: wait out prepared rows it would see."""
        self.table(timeout).wait_read(intervals(spans), timeout=min(timeout, 5.0))

    def read_blocked(self, spans: Sequence[pb.Span]) -> bool:
        """A log read (tick thread, cannot wait): is a prepared row in its way?"""
        engine = self._group.engine
        ivs = intervals(spans)
        for _txn, changeset, _record in engine.intents():
            for key in engine.changed_keys(changeset):
                if any(lo <= key and (hi is None or key < hi) for lo, hi in ivs):
                    return True
        return False

    # -- transaction steps --------------------------------------------------------------------

    def step(self, s: pb.TxnStep, timeout: float) -> pb.CommandResult:
        g = self._group
        try:
            table = self.table(timeout)
        except ProposalTimeout:
            return failure(sqlstate.SERIALIZATION_FAILURE, "restart transaction: leader not ready")
        if s.txn.incarnation and s.txn.incarnation != table.incarnation:
            return failure(
                sqlstate.SERIALIZATION_FAILURE,
                f"restart transaction: range {g.range_id} changed leader since it was first read",
            )
        txn_id = s.txn.txn_id
        out = pb.CommandResult(incarnation=table.incarnation)
        try:
            if s.kind == pb.TxnStep.RELEASE:
                # A read-only participant's commit: the locks must have been held throughout.
                held = table.holds(txn_id)
                table.release(txn_id)
                if not held:
                    raise LockConflict("restart transaction: its locks on this range expired")
                return out
            if s.kind in (pb.TxnStep.VALIDATE, pb.TxnStep.HEARTBEAT):
                if not table.touch(txn_id):
                    raise LockConflict("restart transaction: its locks on this range expired")
                if s.kind == pb.TxnStep.VALIDATE:
                    # The transaction is committing: it takes no new lock from now on.
                    table.committing(txn_id, _COMMIT_GRACE)
                    if not g.lease_valid(time.monotonic()):
                        g.barrier(timeout)  # still the leader, so the locks are still ours
                return out
            self._fresh(timeout)
            w = s.stmt
            moved = fsm.stale_plan(g.engine, w)
            if moved is not None:
                return failure(moved.code, moved.message)
            table.acquire(
                txn_id,
                s.txn.priority,
                shared=intervals(s.locks),
                known=bool(s.txn.incarnation),
                timeout=min(timeout, 2.0),
            )
            run = self._runner(s)
            if s.read_only:
                prov = run()
            else:
                prov = table.acquire_exclusive(
                    txn_id,
                    s.txn.priority,
                    lambda: (lambda p: (p, p.keys))(run()),
                    timeout=min(timeout, 2.0),
                )
        except LockConflict as exc:
            return failure(sqlstate.SERIALIZATION_FAILURE, exc.message)
        res = fsm.result_to_proto(prov.result, g.applied_index())
        res.incarnation = table.incarnation
        res.changeset = prov.changeset
        if s.read_only:
            # The locks this transaction holds here outlive the promise: its commit need not
            # come back to check them (Coordinator.commit). A lease run down (the range was
            # quiet) is renewed first if its voters answer within _RENEW_WAIT: a promise too
            # short to reach a remote gateway's COMMIT would cost it a round trip back here.
            # The promise is about the term of the lock table the locks were taken in.
            with self._lock:
                term = self._term if self._table is table else -1
            promise = g.promise_term(time.monotonic(), term)
            if 0 <= term and promise < g.lease_duration() / 2:
                promise = g.renew_lease(_RENEW_WAIT, term)
            res.lock_hold_ms = int(promise * 1000)
        if prov.moved_rows:
            res.moved_columns.extend(prov.moved_columns)
            res.moved_rows.extend(row_to_proto(r) for r in prov.moved_rows)
        return res

    def _runner(self, s: pb.TxnStep) -> Callable[[], Provisional]:
        engine = self._group.engine
        w = s.stmt

        def run() -> Provisional:
            if w.batch:
                return engine.provisional(
                    s.changeset,
                    w.sql,
                    batch=[row_from_proto(r) for r in w.batch],
                    trim_to_span=s.trim_to_span,
                )
            return engine.provisional(
                s.changeset,
                w.sql,
                params_from_proto(w.params, w.named_params),
                read_only=s.read_only,
                trim_to_span=s.trim_to_span,
                move_out=s.move_out,
            )

        return run

    def _fresh(self, timeout: float) -> None:
        """Make this replica's state at least as recent as every write acknowledged before
        now: under the lease, apply what is committed; else commit a barrier entry."""
        g = self._group
        if g.lease_valid(time.monotonic()):
            commit = g.commit_index()
            deadline = time.monotonic() + timeout
            while g.applied_index() < commit:
                if time.monotonic() > deadline:
                    raise LockConflict("restart transaction: leader is behind")
                g.wake()
                time.sleep(0.0005)
            return
        g.barrier(timeout)

    def propose_locked(self, cmd: pb.Command, timeout: float) -> pb.CommandResult:
        """Propose a TxnPrepare / TxnCommit after checking the transaction still holds its
        locks here (they protect every row its changes touch until the entry applies)."""
        g = self._group
        op = cmd.WhichOneof("op")
        meta = cmd.txn_prepare.txn if op == "txn_prepare" else cmd.txn_commit.txn
        table = self.table(timeout)
        if meta.incarnation != table.incarnation or not table.committing(
            meta.txn_id, _COMMIT_GRACE
        ):
            return failure(
                sqlstate.SERIALIZATION_FAILURE,
                f"restart transaction: its locks on range {g.range_id} were lost"
                " (leader change or timeout)",
            )
        result = g.propose_entry(cmd, timeout)
        if result.error.code and op == "txn_prepare":
            table.release(meta.txn_id)
        return result

    def stale_intents(self, age: float) -> list[tuple[bytes, int]]:
        table = self.current()
        return table.prepared_older_than(age) if table is not None else []

    def metrics(self) -> dict[str, int]:
        table = self.current()
        return table.snapshot() if table is not None else {}

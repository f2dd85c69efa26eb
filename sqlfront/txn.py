"""The gateway's transaction coordinator (see DESIGN.md, "Transactions").

A transaction lives on the gateway its client talks to (keyed by the client's session id).
Each statement runs on the leaders of the ranges it touches as a ``TxnStep``: the leader runs
it on top of the transaction's changes so far, takes its locks, and sends back the new
cumulative changes of that range (a SQLite session-extension changeset), which the gateway
keeps; nothing is replicated before COMMIT. COMMIT then:

* no writes: every participant releases its locks, checking they were held throughout;
* writes on one range (the fast path): readers' locks are validated, then one ``TxnCommit``
  entry on that range applies the changes (no extra round trip when it is the only range);
* a reader whose leader promised, with its last answer, that its term (hence its lock table)
  lasts past the moment COMMIT starts is not checked: every lock is held at that moment,
  which is all two-phase locking needs of shared locks; its locks are released afterwards.
  A leader promises only under its lease and hands over no earlier (``promise_term``), so a
  remote read costs one round trip, not two (the uniqueness probes of REGIONAL BY ROW);
* writes on several ranges: two-phase commit. Every other writer replicates its changes as
  an intent (``TxnPrepare``, in parallel, while readers are validated), then one entry on
  the *record range* (the first range written) writes the COMMITTED record and applies its
  own changes: that entry is the commit point. Intents are resolved afterwards, in the
  background; if the coordinator dies first, each participant's leader asks the record
  range (``TxnRecover``), which answers COMMITTED or writes ABORTED, and resolves.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent import futures

from proto import pb
from router import RangeSender, RangeUnavailableError
from storage import sqlstate

log = logging.getLogger(__name__)

_BACKGROUND = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="txn-resolve")
_PARALLEL = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="txn-phase")
# A restarted transaction keeps its priority (so it ages and eventually wins) if the session
# begins again within this many seconds.
PRIORITY_MEMORY = 10.0


class TxnError(Exception):
    """The transaction cannot go on: ``code`` 40001 (restart), 40003 (outcome unknown)..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Participant:
    desc: pb.RangeDescriptor
    schema_version: int
    changeset: bytes = b""
    incarnation: int = 0
    touched: float = 0.0
    prepared: bool = False  # a TxnPrepare was sent (an intent may exist)
    # Read-only so far: its leader promised the locks here cannot be lost before this
    # (monotonic, our clock; 0.0: no promise, COMMIT must validate them).
    held_until: float = 0.0


@dataclasses.dataclass
class Txn:
    txn_id: bytes
    priority: int
    started_by_savepoint: str = ""  # SAVEPOINT outside a transaction started it
    participants: dict[int, Participant] = dataclasses.field(default_factory=dict)
    savepoints: list[tuple[str, dict[int, bytes]]] = dataclasses.field(default_factory=list)
    failed: str = ""  # set after a restart error: only ROLLBACK is accepted
    last_used: float = dataclasses.field(default_factory=time.monotonic)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def changes(self) -> dict[int, bytes]:
        with self.lock:
            return {r: p.changeset for r, p in self.participants.items()}

    def restore(self, snapshot: dict[int, bytes]) -> None:
        """Back to ``snapshot`` (a savepoint, or the state before a failed statement); locks
        taken since stay held, as SQLite's rollback keeps its own locks."""
        with self.lock:
            for rid, p in self.participants.items():
                p.changeset = snapshot.get(rid, b"")


def new_txn(priority: int = 0) -> Txn:
    return Txn(os.urandom(16), priority or time.time_ns())


def _meta(txn: Txn, part: Participant) -> pb.TxnMeta:
    return pb.TxnMeta(txn_id=txn.txn_id, priority=txn.priority, incarnation=part.incarnation)


def range_span(desc: pb.RangeDescriptor) -> pb.Span:
    """The span a range descriptor says the range holds (what a statement is planned for)."""
    return pb.Span(start_key=desc.start_key, end_key=desc.end_key)


class Coordinator:
    """Runs transaction steps and commits through ``sender``."""

    def __init__(self, sender: RangeSender) -> None:
        self._sender = sender
        # Metrics hook: called with commit_readonly / commit_fast / commit_2pc / restart /
        # abort / unknown, and reader_unchecked per read-only participant COMMIT trusted.
        self.count: Callable[[str], None] = lambda event: None
        self.crash_at = ""  # fault injection (tests): exit at this point of a 2PC commit

    # -- statements ---------------------------------------------------------------------------

    def step(
        self,
        txn: Txn,
        desc: pb.RangeDescriptor,
        schema_version: int,
        stmt: pb.SqlWrite,
        *,
        read_only: bool,
        locks: list[pb.Span],
        trim: bool = False,
        move_out: bool = False,
    ) -> pb.CommandResult:
        """Run one statement of ``txn`` on one range; its result (errors included, as for an
        autocommit statement). A restart condition raises ``TxnError``."""
        with txn.lock:
            part = txn.participants.get(desc.range_id)
            if part is None:
                part = Participant(desc, schema_version)
            changeset, meta = part.changeset, _meta(txn, part)
        sent = time.monotonic()
        step = pb.TxnStep(
            txn=meta,
            changeset=changeset,
            stmt=stmt,
            read_only=read_only,
            locks=locks,
            trim_to_span=trim,
            move_out=move_out,
        )
        try:
            res = self._sender.send(desc, pb.Command(txn_step=step))
        except RangeUnavailableError as exc:
            raise TxnError(
                sqlstate.SERIALIZATION_FAILURE,
                f"restart transaction: range {desc.range_id} unavailable ({exc.message})",
            ) from exc
        code = res.error.code
        if code == sqlstate.SERIALIZATION_FAILURE:
            raise TxnError(code, res.error.message)
        if code in (sqlstate.RANGE_MOVED, sqlstate.SCHEMA_CHANGED) and meta.incarnation:
            raise TxnError(
                sqlstate.SERIALIZATION_FAILURE,
                f"restart transaction: range {desc.range_id} changed under it"
                f" ({res.error.message})",
            )
        if code in (sqlstate.RANGE_MOVED, sqlstate.SCHEMA_CHANGED):
            return res  # nothing held there yet: the gateway re-plans
        with txn.lock:
            part = txn.participants.setdefault(desc.range_id, part)
            part.incarnation = res.incarnation or part.incarnation
            part.touched = time.monotonic()
            if not code and not read_only:
                part.changeset = res.changeset
            # The promise runs from when the leader answered, which is after we sent; a
            # tenth off for the two clocks' rates.
            hold = res.lock_hold_ms / 1000 * 0.9 if read_only and not code else 0.0
            part.held_until = sent + hold if hold else 0.0
        return res

    # -- commit and abort ---------------------------------------------------------------------

    def commit(self, txn: Txn, *, session: tuple[str, int] = ("", 0)) -> None:
        """Commit ``txn``; raises ``TxnError`` (40001: it did not commit and released its
        locks; 40003: its outcome is unknown)."""
        with txn.lock:
            parts = list(txn.participants.values())
        writers = [p for p in parts if p.changeset]
        readers = [p for p in parts if not p.changeset]
        # Every lock is taken by now: this instant is the transaction's lock point. Readers
        # whose leader promised their locks outlive it need no check (two-phase locking
        # needs every lock held at one instant, not the shared ones until the end); the
        # others are checked, which also keeps them until the commit applies.
        now = time.monotonic()
        check = [p for p in readers if p.held_until <= now]
        promised = [p for p in readers if p.held_until > now]
        for _p in promised:
            self.count("reader_unchecked")
        if not writers:
            failed = self._parallel(
                [functools.partial(self._lock_step, txn, p, pb.TxnStep.RELEASE) for p in check]
            )
            self._release_later(txn, promised)
            if failed:
                self.count("restart")
                raise TxnError(sqlstate.SERIALIZATION_FAILURE, failed)
            self.count("commit_readonly")
            return
        record, others = writers[0], writers[1:]
        phase_one: list[Callable[[], str]] = [
            functools.partial(self._lock_step, txn, p, pb.TxnStep.VALIDATE) for p in check
        ]
        phase_one += [
            functools.partial(self._prepare, txn, p, record.desc.range_id) for p in others
        ]
        failed = self._parallel(phase_one)
        if others and not failed and self.crash_at == "after_prepare":
            fault_exit("after_prepare")
        if failed:
            self.abort(txn)
            self.count("restart")
            raise TxnError(sqlstate.SERIALIZATION_FAILURE, failed)
        commit = pb.TxnCommit(
            txn=_meta(txn, record),
            changeset=record.changeset,
            participants=[p.desc.range_id for p in writers],
            span=range_span(record.desc),
            schema_version=record.schema_version,
            record=bool(others),
        )
        cmd = pb.Command(txn_commit=commit)
        if session[0] and not others:
            cmd.session_id, cmd.seq = session
        try:
            res = self._sender.send(record.desc, cmd, idempotent=False)
        except RangeUnavailableError as exc:
            if exc.code == sqlstate.AMBIGUOUS_RESULT:
                # Prepared intents are settled by recovery from the record range.
                self._release_later(txn, readers)
                self.count("unknown")
                raise TxnError(
                    sqlstate.STATEMENT_COMPLETION_UNKNOWN,
                    f"the outcome of COMMIT is unknown: {exc.message}",
                ) from exc
            self.abort(txn)
            raise TxnError(
                sqlstate.SERIALIZATION_FAILURE, f"restart transaction: {exc.message}"
            ) from exc
        if res.error.code:
            self.abort(txn)
            self.count("restart")
            code = res.error.code
            if code in (sqlstate.RANGE_MOVED, sqlstate.SCHEMA_CHANGED):
                code = sqlstate.SERIALIZATION_FAILURE
            raise TxnError(code, res.error.message)
        if others and self.crash_at == "after_commit":
            fault_exit("after_commit")
        if others:
            self.count("commit_2pc")
            _BACKGROUND.submit(self._resolve_all, txn, others, record, True)
        else:
            self.count("commit_fast")
        self._release_later(txn, readers)

    def abort(self, txn: Txn) -> None:
        """Drop ``txn`` everywhere (in the background): locks released, intents resolved."""
        with txn.lock:
            parts = list(txn.participants.values())
            txn.participants.clear()
        self.count("abort")
        for p in parts:
            _BACKGROUND.submit(self._abort_one, txn, p)

    def heartbeat(self, txn: Txn, older_than: float) -> None:
        """Keep ``txn``'s locks alive on ranges it has not touched for ``older_than`` s."""
        now = time.monotonic()
        with txn.lock:
            parts = [p for p in txn.participants.values() if now - p.touched > older_than]
        for p in parts:
            if not self._lock_step(txn, p, pb.TxnStep.HEARTBEAT):
                p.touched = now

    # -- helpers ------------------------------------------------------------------------------

    def _parallel(self, jobs: list[Callable[[], str]]) -> str:
        """Run ``jobs`` (each returns '' or why it failed) in parallel; the first failure."""
        if not jobs:
            return ""
        if len(jobs) == 1:
            return jobs[0]()
        results = [f.result() for f in [_PARALLEL.submit(j) for j in jobs]]
        return next((r for r in results if r), "")

    def _lock_step(self, txn: Txn, part: Participant, kind: int) -> str:
        step = pb.TxnStep(txn=_meta(txn, part), kind=kind)  # type: ignore[arg-type]
        try:
            res = self._sender.send(part.desc, pb.Command(txn_step=step), budget=5.0)
        except RangeUnavailableError as exc:
            return f"restart transaction: range {part.desc.range_id}: {exc.message}"
        return res.error.message if res.error.code else ""

    def _prepare(self, txn: Txn, part: Participant, record_range: int) -> str:
        part.prepared = True
        prep = pb.TxnPrepare(
            txn=_meta(txn, part),
            changeset=part.changeset,
            record_range=record_range,
            span=range_span(part.desc),
            schema_version=part.schema_version,
        )
        try:
            res = self._sender.send(part.desc, pb.Command(txn_prepare=prep))
        except RangeUnavailableError as exc:
            return f"restart transaction: range {part.desc.range_id}: {exc.message}"
        return res.error.message if res.error.code else ""

    def _resolve_all(
        self, txn: Txn, parts: list[Participant], record: Participant, commit: bool
    ) -> None:
        ok = all(self.resolve(p.desc, txn.txn_id, commit) for p in parts)
        if ok and commit:
            try:
                self._sender.send(
                    record.desc, pb.Command(txn_forget=pb.TxnForget(txn_id=txn.txn_id))
                )
            except RangeUnavailableError:
                pass  # the record stays: harmless

    def resolve(self, desc: pb.RangeDescriptor, txn_id: bytes, commit: bool) -> bool:
        cmd = pb.Command(txn_resolve=pb.TxnResolve(txn_id=txn_id, commit=commit))
        try:
            res = self._sender.send(desc, cmd)
        except RangeUnavailableError as exc:
            log.info("resolving %s on range %d: %s", txn_id.hex(), desc.range_id, exc.message)
            return False  # recovery finishes it
        return not res.error.code

    def _abort_one(self, txn: Txn, part: Participant) -> None:
        # An intent may exist (a prepare that applied): resolve it; then drop the locks.
        if part.prepared:
            self.resolve(part.desc, txn.txn_id, False)
        self._lock_step(txn, part, pb.TxnStep.RELEASE)

    def _release_later(self, txn: Txn, parts: list[Participant]) -> None:
        for p in parts:
            _BACKGROUND.submit(self._lock_step, txn, p, pb.TxnStep.RELEASE)


def fault_exit(point: str) -> None:
    """Fault injection (tests): exit at once, as kill -9 would."""
    log.error("fault injection: node exits %s", point)
    logging.shutdown()
    os._exit(137)


def recover(sender: RangeSender, record: pb.RangeDescriptor, txn_id: bytes) -> bool | None:
    """The fate of an orphaned intent's transaction, from its record range (writing ABORTED
    if it has no record): True committed, False aborted, None unreachable."""
    try:
        res = sender.send(record, pb.Command(txn_recover=pb.TxnRecover(txn_id=txn_id)))
    except RangeUnavailableError:
        return None
    if res.error.code:
        return None
    return res.txn_status == "COMMITTED"

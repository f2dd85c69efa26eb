"""A range leader's lock table: two-phase locking for transactions, in memory.

Locks are on encoded row keys of the range's table (``storage.keys``): a transaction holds
*shared* locks on the key intervals it read and *exclusive* locks on the rows it changed,
until it commits or aborts. Conflicts follow strict two-phase locking:

* shared(T, interval) conflicts with another transaction's exclusive key inside it, and with
  an autocommit write in flight over it;
* exclusive(T, key) conflicts with another transaction's shared interval or exclusive key
  covering it, and with an autocommit write in flight over it;
* an autocommit write (one Raft entry, no locks held elsewhere) waits for every transaction
  lock in its intervals; an autocommit read waits only for *prepared* rows (whose commit
  point may have passed: reading the old value would be stale).

Waiting uses wait-die on the transactions' priorities (start times): an older requester
waits for younger holders, a younger one gives up at once with ``LockConflict`` (40001, the
client restarts with its original priority), so waits never form a cycle. Anyone may wait for
a holder that is committing or prepared (it will not wait for anything again). Every wait has a
deadline too. Autocommit statements hold nothing while they wait, so they cannot deadlock.

The table lives as long as its leader's term: a new leader builds a new one (a new
``incarnation``) from the prepared intents in its replica, so unprepared locks of the old
term are gone and their transactions fail validation (restart) instead of silently losing
isolation. Unprepared locks idle past ``idle_timeout`` expire the same way (a gateway that
died mid-transaction does not block its rows forever); prepared ones are resolved by
recovery from the transaction record.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

Interval = tuple[bytes, bytes | None]  # [lo, hi); hi None = +infinity
EVERYTHING: tuple[Interval, ...] = ((b"", None),)


class LockConflict(Exception):
    """The transaction must restart (SQLSTATE 40001); ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _contains(iv: Interval, key: bytes) -> bool:
    return iv[0] <= key and (iv[1] is None or key < iv[1])


def _overlap(a: Interval, b: Interval) -> bool:
    return (b[1] is None or a[0] < b[1]) and (a[1] is None or b[0] < a[1])


@dataclasses.dataclass
class _Holder:
    priority: int
    touched: float
    shared: list[Interval] = dataclasses.field(default_factory=list)
    exclusive: set[bytes] = dataclasses.field(default_factory=set)
    prepared: bool = False
    prepared_at: float = 0.0
    record_range: int = 0
    committing_until: float = 0.0  # a commit entry is in flight: never expire before this


class LockTable:
    """Locks of one range under one leader term. Thread-safe."""

    def __init__(
        self,
        *,
        idle_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.incarnation = random.getrandbits(62) | 1
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._txns: dict[bytes, _Holder] = {}
        self._writes: dict[int, tuple[tuple[Interval, ...], float]] = {}
        self._write_ids = itertools.count(1)
        self.waits = 0
        self.conflicts = 0

    # -- transactions -------------------------------------------------------------------------

    def holds(self, txn_id: bytes) -> bool:
        with self._cond:
            self._expire()
            return txn_id in self._txns

    def acquire(
        self,
        txn_id: bytes,
        priority: int,
        *,
        shared: Sequence[Interval] = (),
        exclusive: Iterable[bytes] = (),
        known: bool = False,
        timeout: float = 2.0,
    ) -> None:
        """Take locks for ``txn_id`` (all or none), waiting per wait-die. ``known``: the
        transaction already holds locks here (a vanished entry means they were lost)."""
        keys = set(exclusive)
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                self._expire()
                mine = self._txns.get(txn_id)
                if mine is None and known:
                    raise LockConflict("restart transaction: its locks on this range expired")
                blockers = self._blockers(txn_id, shared, keys)
                if not blockers:
                    if mine is None:
                        mine = self._txns[txn_id] = _Holder(priority, self._clock())
                    mine.touched = self._clock()
                    mine.shared.extend(iv for iv in shared if iv not in mine.shared)
                    mine.exclusive |= keys
                    return
                self._wait_or_die(txn_id, priority, blockers, deadline)

    def _blockers(
        self, txn_id: bytes, shared: Sequence[Interval], keys: set[bytes]
    ) -> list[tuple[int, bytes] | None]:
        """(priority, id) of the holders in the way (None: one that never waits for a lock: an
        autocommit write in flight, or a transaction that is committing or prepared, so
        waiting for it cannot close a cycle)."""
        out: list[tuple[int, bytes] | None] = []
        now = self._clock()
        for other, h in self._txns.items():
            if other == txn_id:
                continue
            if any(_contains(iv, k) for iv in shared for k in h.exclusive) or any(
                k in h.exclusive or any(_contains(iv, k) for iv in h.shared) for k in keys
            ):
                settled = h.prepared or h.committing_until > now
                out.append(None if settled else (h.priority, other))
        for ivs, _until in self._writes.values():
            if any(_overlap(a, b) for a in ivs for b in shared) or any(
                _contains(iv, k) for iv in ivs for k in keys
            ):
                out.append(None)
        return out

    def _wait_or_die(
        self,
        txn_id: bytes,
        priority: int,
        blockers: list[tuple[int, bytes] | None],
        deadline: float,
    ) -> None:
        # Ties on priority are broken by id, so two transactions never wait for each other.
        if any(b is not None and b < (priority, txn_id) for b in blockers):
            self.conflicts += 1
            raise LockConflict("restart transaction: an older transaction holds a conflicting lock")
        remaining = deadline - self._clock()
        if remaining <= 0:
            self.conflicts += 1
            raise LockConflict("restart transaction: lock wait timed out")
        self.waits += 1
        self._cond.wait(min(remaining, 0.05))

    def acquire_exclusive(
        self,
        txn_id: bytes,
        priority: int,
        compute: Callable[[], tuple[T, Sequence[bytes]]],
        *,
        timeout: float = 2.0,
    ) -> T:
        """Run ``compute`` (a statement on top of the transaction's changes, returning the
        keys it changed) and lock those keys, atomically: no other lock can be granted or
        released in between, so nothing changes under a result we keep. On a conflict, wait
        (wait-die) and run it again."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                self._expire()
                mine = self._txns.get(txn_id)
                if mine is None:
                    raise LockConflict("restart transaction: its locks on this range expired")
                value, keys = compute()
                wanted = set(keys) - mine.exclusive
                blockers = self._blockers(txn_id, (), wanted) if wanted else []
                if not blockers:
                    mine.exclusive |= wanted
                    mine.touched = self._clock()
                    return value
                self._wait_or_die(txn_id, priority, blockers, deadline)

    def touch(self, txn_id: bytes) -> bool:
        """Keep the transaction's locks alive; False if they are gone."""
        with self._cond:
            self._expire()
            h = self._txns.get(txn_id)
            if h is None:
                return False
            h.touched = self._clock()
            return True

    def committing(self, txn_id: bytes, grace: float) -> bool:
        """The transaction's commit (or prepare) entry is being proposed: its locks must not
        expire meanwhile. False if they are already gone."""
        with self._cond:
            self._expire()
            h = self._txns.get(txn_id)
            if h is None:
                return False
            h.committing_until = self._clock() + grace
            return True

    def mark_prepared(self, txn_id: bytes, keys: Iterable[bytes], record_range: int) -> None:
        """Its intent is in the replicated state now (or was found there by a new leader)."""
        with self._cond:
            h = self._txns.get(txn_id)
            if h is None:
                h = self._txns[txn_id] = _Holder(0, self._clock())
            h.exclusive |= set(keys)
            h.prepared, h.prepared_at, h.record_range = True, self._clock(), record_range

    def release(self, txn_id: bytes) -> None:
        with self._cond:
            if self._txns.pop(txn_id, None) is not None:
                self._cond.notify_all()

    def prepared_older_than(self, age: float) -> list[tuple[bytes, int]]:
        """(txn id, record range) of intents prepared at least ``age`` seconds ago."""
        cutoff = self._clock() - age
        with self._cond:
            return [
                (t, h.record_range)
                for t, h in self._txns.items()
                if h.prepared and h.prepared_at <= cutoff
            ]

    def _expire(self) -> None:
        now = self._clock()
        stale = [
            t
            for t, h in self._txns.items()
            if not h.prepared and h.committing_until < now and now - h.touched > self.idle_timeout
        ]
        for t in stale:
            del self._txns[t]
        expired = [w for w, (_ivs, until) in self._writes.items() if until and until < now]
        for w in expired:
            del self._writes[w]
        if stale or expired:
            self._cond.notify_all()

    # -- autocommit statements ----------------------------------------------------------------

    def begin_write(self, intervals: Sequence[Interval], timeout: float = 5.0) -> int:
        """An autocommit write is about to be proposed: wait until no transaction holds a
        lock in ``intervals``, then keep them from taking one until ``end_write``."""
        deadline = self._clock() + timeout
        ivs = tuple(intervals) or EVERYTHING
        with self._cond:
            while True:
                self._expire()
                if not self._txn_locks_in(ivs, prepared_only=False):
                    token = next(self._write_ids)
                    self._writes[token] = (ivs, 0.0)
                    return token
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self.conflicts += 1
                    raise LockConflict("restart transaction: rows locked by a transaction")
                self.waits += 1
                self._cond.wait(min(remaining, 0.05))

    def end_write(self, token: int, *, linger: float = 0.0) -> None:
        """The write applied (or failed). ``linger``: its outcome is unknown, so keep its
        intervals locked that much longer (it may still apply)."""
        with self._cond:
            if linger > 0 and token in self._writes:
                self._writes[token] = (self._writes[token][0], self._clock() + linger)
                return
            if self._writes.pop(token, None) is not None:
                self._cond.notify_all()

    def wait_read(self, intervals: Sequence[Interval], timeout: float = 5.0) -> None:
        """An autocommit read: wait while a prepared transaction holds a row it would see."""
        ivs = tuple(intervals) or EVERYTHING
        deadline = self._clock() + timeout
        with self._cond:
            while self._txn_locks_in(ivs, prepared_only=True):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self.conflicts += 1
                    raise LockConflict("restart transaction: rows held by a committing transaction")
                self.waits += 1
                self._cond.wait(min(remaining, 0.05))

    def _txn_locks_in(self, ivs: Sequence[Interval], *, prepared_only: bool) -> bool:
        for h in self._txns.values():
            if prepared_only and not h.prepared:
                continue
            if any(_contains(iv, k) for iv in ivs for k in h.exclusive):
                return True
            if not prepared_only and any(_overlap(a, b) for a in ivs for b in h.shared):
                return True
        return False

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            self._expire()
            return {
                "transactions": len(self._txns),
                "prepared": sum(1 for h in self._txns.values() if h.prepared),
                "writes_in_flight": len(self._writes),
            }

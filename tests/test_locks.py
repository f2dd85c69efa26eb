"""raftgroups.locks: the range leader's lock table (two-phase locking, wait-die, autocommit
writes and reads, expiry), as pure unit tests.

Age and expiry use an injected fake clock (no sleeping). Waiting behaviour uses threads and
``threading.Event``: a waiter is shown to be blocked by the table counting a wait while its
done-event stays unset, then shown to finish within a deadline once the holder goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftgroups.locks import EVERYTHING, Interval, LockConflict, LockTable

DEADLINE = 2.0  # a waiter must finish this soon after what blocks it goes away
BLOCKED = 0.05  # how long a blocked waiter must stay blocked once it has started waiting


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt


class Waiter:
    """Runs ``fn`` in a daemon thread; ``done`` is set when it returns or raises."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
        finally:
            self.done.set()

    def value(self) -> Any:
        """Wait (bounded) for the thread and return its result, re-raising its error."""
        assert self.done.wait(DEADLINE), "waiter did not finish within the deadline"
        self.thread.join(DEADLINE)
        if self.error is not None:
            raise self.error
        return self.result


def assert_blocked(table: LockTable, w: Waiter, waits_before: int = 0) -> None:
    """``w`` has started waiting in ``table`` (it counted a wait) and is still blocked."""
    limit = time.monotonic() + DEADLINE
    while table.waits <= waits_before and not w.done.is_set():
        assert time.monotonic() < limit, "waiter never started waiting"
        w.done.wait(0.002)
    assert not w.done.wait(BLOCKED), f"expected a blocked waiter, it finished: {w.error!r}"
    assert table.waits > waits_before


def can_lock(
    table: LockTable, *, shared: tuple[Interval, ...] = (), key: bytes | None = None
) -> bool:
    """Whether a fresh, youngest transaction could take these locks now (it releases them)."""
    probe = b"probe"
    try:
        table.acquire(probe, 10**9, shared=shared, exclusive=[key] if key else (), timeout=0)
    except LockConflict:
        return False
    table.release(probe)
    return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table() -> Iterator[LockTable]:
    yield LockTable()


# -- compatibility and interval bounds -------------------------------------------------------


def test_shared_shared_compatible(table: LockTable) -> None:
    table.acquire(b"a", 1, shared=[(b"b", b"x")], timeout=0)
    table.acquire(b"b", 2, shared=[(b"a", None)], timeout=0)
    table.acquire(b"c", 3, shared=list(EVERYTHING), timeout=0)
    assert all(table.holds(t) for t in (b"a", b"b", b"c"))
    assert table.conflicts == 0 and table.waits == 0


def test_own_locks_never_conflict(table: LockTable) -> None:
    table.acquire(b"a", 1, shared=[(b"a", None)], exclusive=[b"k"], timeout=0)
    table.acquire(b"a", 1, shared=[(b"k", b"l")], exclusive=[b"m", b"k"], timeout=0)
    assert table.holds(b"a")
    assert not can_lock(table, key=b"zzz")  # inside its shared interval


def test_exclusive_exclusive_same_key_only(table: LockTable) -> None:
    table.acquire(b"a", 1, exclusive=[b"k"], timeout=0)
    table.acquire(b"b", 2, exclusive=[b"k\x00", b"j"], timeout=0)
    with pytest.raises(LockConflict):
        table.acquire(b"c", 3, exclusive=[b"k"], timeout=0)


BOUNDS = [
    ((b"b", b"d"), b"a", False),
    ((b"b", b"d"), b"b", True),  # lo inclusive
    ((b"b", b"d"), b"c", True),
    ((b"b", b"d"), b"c\xff\xff", True),
    ((b"b", b"d"), b"d", False),  # hi exclusive
    ((b"b", b"d"), b"d\x00", False),
    ((b"b", None), b"b", True),
    ((b"b", None), b"\xff" * 8, True),  # None = +infinity
    ((b"b", None), b"a\xff", False),
    ((b"", None), b"", True),
]


@pytest.mark.parametrize(("iv", "key", "conflicts"), BOUNDS)
def test_exclusive_after_shared_interval_bounds(
    table: LockTable, iv: Interval, key: bytes, conflicts: bool
) -> None:
    table.acquire(b"reader", 1, shared=[iv], timeout=0)
    if conflicts:
        with pytest.raises(LockConflict):
            table.acquire(b"writer", 2, exclusive=[key], timeout=0)
        assert not table.holds(b"writer")
    else:
        table.acquire(b"writer", 2, exclusive=[key], timeout=0)
        assert table.holds(b"writer")


@pytest.mark.parametrize(("iv", "key", "conflicts"), BOUNDS)
def test_shared_after_exclusive_interval_bounds(
    table: LockTable, iv: Interval, key: bytes, conflicts: bool
) -> None:
    table.acquire(b"writer", 1, exclusive=[key], timeout=0)
    if conflicts:
        with pytest.raises(LockConflict):
            table.acquire(b"reader", 2, shared=[iv], timeout=0)
        assert not table.holds(b"reader")
    else:
        table.acquire(b"reader", 2, shared=[iv], timeout=0)
        assert table.holds(b"reader")


def test_acquire_is_all_or_none(table: LockTable) -> None:
    table.acquire(b"old", 1, exclusive=[b"k"], timeout=0)
    with pytest.raises(LockConflict):
        table.acquire(b"young", 2, shared=[(b"a", b"b")], exclusive=[b"j", b"k"], timeout=0)
    assert not table.holds(b"young")
    assert can_lock(table, key=b"j")
    assert can_lock(table, shared=((b"a", b"b"),))


# -- wait-die --------------------------------------------------------------------------------


def test_younger_requester_dies_at_once(table: LockTable) -> None:
    table.acquire(b"old", 1, exclusive=[b"k"])
    t0 = time.monotonic()
    with pytest.raises(LockConflict, match="older transaction"):
        table.acquire(b"young", 2, exclusive=[b"k"], timeout=5.0)
    assert table.waits == 0 and table.conflicts == 1  # it never waited
    assert time.monotonic() - t0 < 1.0
    assert not table.holds(b"young")


def test_younger_dies_if_any_unsettled_blocker_is_older(table: LockTable) -> None:
    table.acquire(b"prepared", 1, exclusive=[b"k"])
    table.mark_prepared(b"prepared", [b"k"], 7)
    table.acquire(b"older", 2, exclusive=[b"m"])
    with pytest.raises(LockConflict, match="older transaction"):
        table.acquire(b"young", 3, shared=[(b"a", None)], timeout=5.0)
    assert table.waits == 0


def test_older_requester_waits_then_gets_lock(table: LockTable) -> None:
    table.acquire(b"young", 2, shared=[(b"a", b"m")])
    w = Waiter(lambda: table.acquire(b"old", 1, exclusive=[b"c"], timeout=5.0))
    try:
        assert_blocked(table, w)
        assert not table.holds(b"old")
    finally:
        table.release(b"young")
    w.value()
    assert table.holds(b"old")
    assert not can_lock(table, key=b"c")
    assert can_lock(table, key=b"d")


def test_wait_times_out(table: LockTable) -> None:
    table.acquire(b"young", 2, exclusive=[b"k"])
    t0 = time.monotonic()
    with pytest.raises(LockConflict, match="timed out"):
        table.acquire(b"old", 1, exclusive=[b"k"], timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.2 <= elapsed < 2.0  # its own timeout, not the default
    assert table.waits > 0 and table.conflicts == 1
    assert not table.holds(b"old")


def test_wait_deadline_follows_the_injected_clock(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=1e9)
    table.acquire(b"young", 2, exclusive=[b"k"])
    w = Waiter(lambda: table.acquire(b"old", 1, exclusive=[b"k"], timeout=5.0))
    assert_blocked(table, w)
    clock.advance(5.1)
    with pytest.raises(LockConflict, match="timed out"):
        w.value()


@pytest.mark.parametrize("settled", ["prepared", "committing"])
def test_younger_waits_for_settled_older_holder(table: LockTable, settled: str) -> None:
    table.acquire(b"old", 1, exclusive=[b"k"])
    if settled == "prepared":
        table.mark_prepared(b"old", [b"k"], 3)
    else:
        assert table.committing(b"old", 60.0)
    w = Waiter(lambda: table.acquire(b"young", 2, shared=[(b"a", None)], timeout=5.0))
    try:
        assert_blocked(table, w)
        assert table.conflicts == 0
    finally:
        table.release(b"old")
    w.value()
    assert table.holds(b"young")


def test_committing_grace_over_makes_holder_plain_again(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=100.0)
    table.acquire(b"old", 1, exclusive=[b"k"])
    table.committing(b"old", 5.0)
    clock.advance(6.0)
    with pytest.raises(LockConflict, match="older transaction"):
        table.acquire(b"young", 2, exclusive=[b"k"], timeout=5.0)


# -- autocommit writes and reads -------------------------------------------------------------


def test_begin_write_ignores_non_overlapping_locks(table: LockTable) -> None:
    table.acquire(b"t", 1, shared=[(b"a", b"m")], exclusive=[b"z"])
    token = table.begin_write([(b"m", b"z")], timeout=0)  # [a,m) and [m,z) are disjoint
    table.end_write(token)
    assert table.snapshot()["writes_in_flight"] == 0


def test_begin_write_waits_for_txn_lock_and_txn_waits_for_write(table: LockTable) -> None:
    table.acquire(b"t", 1, shared=[(b"a", b"m")])
    w = Waiter(lambda: table.begin_write([(b"c", b"d")], timeout=5.0))
    try:
        assert_blocked(table, w)
    finally:
        table.release(b"t")
    token = w.value()
    assert table.snapshot()["writes_in_flight"] == 1

    # Now the write is in flight: even the oldest transaction waits (no dying) for it.
    before = table.waits
    r = Waiter(lambda: table.acquire(b"r", 0, shared=[(b"c\x00", b"e")], timeout=5.0))
    x = Waiter(lambda: table.acquire(b"x", 10**6, exclusive=[b"c"], timeout=5.0))
    try:
        assert_blocked(table, r, before)
        assert_blocked(table, x, before)
        assert can_lock(table, shared=((b"d", None),))  # outside the write's interval
        assert can_lock(table, key=b"d")
    finally:
        table.end_write(token)
    r.value()
    x.value()
    assert table.holds(b"r") and table.holds(b"x")


def test_begin_write_waits_for_exclusive_key_and_times_out(table: LockTable) -> None:
    table.acquire(b"t", 1, exclusive=[b"k"])
    with pytest.raises(LockConflict):
        table.begin_write([(b"k", b"l")], timeout=0)
    with pytest.raises(LockConflict):
        table.begin_write([], timeout=0)  # no intervals: everything
    token = table.begin_write([(b"a", b"k")], timeout=0)
    table.end_write(token)
    t0 = time.monotonic()
    with pytest.raises(LockConflict):
        table.begin_write([(b"a", None)], timeout=0.1)
    assert time.monotonic() - t0 >= 0.1


def test_end_write_linger_keeps_blocking_until_it_passes(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=1e9)
    token = table.begin_write([(b"a", b"m")])
    table.end_write(token, linger=10.0)
    assert table.snapshot()["writes_in_flight"] == 1
    with pytest.raises(LockConflict):
        table.acquire(b"t", 1, exclusive=[b"c"], timeout=0)
    clock.advance(9.0)
    w = Waiter(lambda: table.acquire(b"t", 1, exclusive=[b"c"], timeout=1000.0))
    try:
        assert_blocked(table, w)
    finally:
        clock.advance(1.5)  # past the linger: the waiter's next poll expires the write
    w.value()
    assert table.holds(b"t")
    assert table.snapshot()["writes_in_flight"] == 0


def test_end_write_without_linger_releases_and_wakes(table: LockTable) -> None:
    token = table.begin_write([(b"a", None)])
    w = Waiter(lambda: table.acquire(b"t", 5, exclusive=[b"q"], timeout=5.0))
    try:
        assert_blocked(table, w)
    finally:
        table.end_write(token)
    w.value()
    table.end_write(token)  # a second end_write is harmless
    assert table.holds(b"t")


def test_wait_read_ignores_unprepared_waits_for_prepared(table: LockTable) -> None:
    table.acquire(b"t", 1, shared=[(b"a", None)], exclusive=[b"k"])
    table.wait_read([(b"a", None)], timeout=0)  # unprepared: not in a read's way
    table.wait_read([], timeout=0)
    table.mark_prepared(b"t", [b"k", b"p"], 4)
    with pytest.raises(LockConflict):
        table.wait_read([(b"k", b"l")], timeout=0)
    with pytest.raises(LockConflict):
        table.wait_read([(b"p", None)], timeout=0)  # a key added by mark_prepared
    with pytest.raises(LockConflict):
        table.wait_read([], timeout=0)  # no intervals: everything
    table.wait_read([(b"a", b"k"), (b"k\x00", b"p")], timeout=0)  # around the keys
    w = Waiter(lambda: table.wait_read([(b"a", None)], timeout=5.0))
    try:
        assert_blocked(table, w)
    finally:
        table.release(b"t")
    w.value()


def test_wait_read_ignores_shared_of_prepared(table: LockTable) -> None:
    table.acquire(b"t", 1, shared=[(b"a", None)])
    table.mark_prepared(b"t", [], 4)
    table.wait_read([(b"a", None)], timeout=0)


# -- expiry and age (fake clock) -------------------------------------------------------------


def test_idle_unprepared_txn_expires(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=15.0)
    table.acquire(b"t", 1, exclusive=[b"k"])
    clock.advance(15.0)
    assert table.holds(b"t")  # exactly idle_timeout: not yet
    assert not can_lock(table, key=b"k")
    clock.advance(0.01)
    assert not table.holds(b"t")
    assert can_lock(table, key=b"k")
    assert not table.touch(b"t")
    assert not table.committing(b"t", 30.0)
    with pytest.raises(LockConflict, match="expired"):
        table.acquire(b"t", 1, exclusive=[b"j"], known=True)
    with pytest.raises(LockConflict, match="expired"):
        table.acquire_exclusive(b"t", 1, lambda: (None, [b"j"]))
    assert not table.holds(b"t")
    table.acquire(b"t", 1, exclusive=[b"j"])  # not known: a fresh entry
    assert table.holds(b"t")


def test_touch_and_acquire_keep_txn_alive(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=15.0)
    table.acquire(b"t", 1, exclusive=[b"k"])
    clock.advance(10.0)
    assert table.touch(b"t")
    clock.advance(10.0)
    table.acquire(b"t", 1, exclusive=[b"j"], known=True)
    clock.advance(10.0)
    assert table.holds(b"t")
    clock.advance(6.0)
    assert not table.holds(b"t")


def test_prepared_txn_never_expires(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=15.0)
    table.acquire(b"t", 1, exclusive=[b"k"])
    table.mark_prepared(b"t", [b"k"], 2)
    clock.advance(10_000.0)
    assert table.holds(b"t")
    assert not can_lock(table, key=b"k")


def test_committing_txn_does_not_expire_during_grace(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=15.0)
    table.acquire(b"t", 1, exclusive=[b"k"])
    assert table.committing(b"t", 30.0)
    clock.advance(29.0)
    assert table.holds(b"t")
    clock.advance(2.0)
    assert not table.holds(b"t")


def test_expiry_wakes_a_waiter(clock: FakeClock) -> None:
    table = LockTable(clock=clock, idle_timeout=15.0)
    table.acquire(b"young", 2, exclusive=[b"k"])
    w = Waiter(lambda: table.acquire(b"old", 1, exclusive=[b"k"], timeout=1000.0))
    try:
        assert_blocked(table, w)
    finally:
        clock.advance(16.0)
    w.value()
    assert table.holds(b"old") and not table.holds(b"young")


def test_known_acquire_after_release_raises(table: LockTable) -> None:
    table.acquire(b"t", 1, exclusive=[b"k"])
    table.acquire(b"t", 1, exclusive=[b"j"], known=True)
    table.release(b"t")
    with pytest.raises(LockConflict, match="expired"):
        table.acquire(b"t", 1, exclusive=[b"j"], known=True)
    table.release(b"never-there")  # harmless


def test_prepared_older_than_uses_clock(clock: FakeClock) -> None:
    table = LockTable(clock=clock)
    table.acquire(b"a", 1, exclusive=[b"k"])
    table.acquire(b"plain", 2, exclusive=[b"j"])
    table.mark_prepared(b"a", [b"k"], 7)
    clock.advance(3.0)
    table.mark_prepared(b"b", [b"m"], 9)  # found by a new leader: no entry before
    assert table.prepared_older_than(5.0) == []
    clock.advance(2.0)
    assert table.prepared_older_than(5.0) == [(b"a", 7)]  # exactly 5 s: included
    clock.advance(3.0)
    assert sorted(table.prepared_older_than(5.0)) == [(b"a", 7), (b"b", 9)]
    assert table.snapshot() == {"transactions": 3, "prepared": 2, "writes_in_flight": 0}
    table.release(b"a")
    assert table.prepared_older_than(0.0) == [(b"b", 9)]


# -- acquire_exclusive -----------------------------------------------------------------------


def test_acquire_exclusive_free_returns_value_and_locks(table: LockTable) -> None:
    table.acquire(b"t", 1)
    assert table.acquire_exclusive(b"t", 1, lambda: ("v", [b"k", b"j"])) == "v"
    assert not can_lock(table, key=b"k") and not can_lock(table, key=b"j")
    # Keys it already holds need nothing new.
    assert table.acquire_exclusive(b"t", 1, lambda: ("w", [b"k"]), timeout=0) == "w"


def test_acquire_exclusive_needs_an_entry(table: LockTable) -> None:
    calls: list[int] = []

    def compute() -> tuple[None, list[bytes]]:
        calls.append(1)
        return None, [b"k"]

    with pytest.raises(LockConflict):
        table.acquire_exclusive(b"t", 1, compute)
    assert calls == []


def test_acquire_exclusive_younger_dies(table: LockTable) -> None:
    table.acquire(b"old", 1, shared=[(b"a", None)])
    table.acquire(b"young", 2)
    calls: list[int] = []

    def compute() -> tuple[str, list[bytes]]:
        calls.append(1)
        return "v", [b"k"]

    with pytest.raises(LockConflict, match="older transaction"):
        table.acquire_exclusive(b"young", 2, compute, timeout=5.0)
    assert calls == [1]
    table.release(b"old")
    assert can_lock(table, key=b"k")


def test_acquire_exclusive_waits_and_reruns_compute(table: LockTable) -> None:
    table.acquire(b"young", 2, exclusive=[b"k"])
    table.acquire(b"old", 1)
    state = {"keys": [b"k", b"j"]}
    calls: list[list[bytes]] = []

    def compute() -> tuple[str, list[bytes]]:
        calls.append(list(state["keys"]))
        return f"run{len(calls)}", list(state["keys"])

    w = Waiter(lambda: table.acquire_exclusive(b"old", 1, compute, timeout=5.0))
    try:
        assert_blocked(table, w)
        assert calls and calls[0] == [b"k", b"j"]
        assert can_lock(table, key=b"j")  # nothing locked while blocked
        state["keys"] = [b"k", b"m"]  # what the statement changes now differs
        runs_before = len(calls)
    finally:
        table.release(b"young")
    value = w.value()
    assert len(calls) > runs_before
    assert value == f"run{len(calls)}"  # the result of the last run is the one returned
    assert calls[-1] == [b"k", b"m"]
    assert not can_lock(table, key=b"k") and not can_lock(table, key=b"m")
    assert can_lock(table, key=b"j")


def test_acquire_exclusive_runs_compute_under_the_mutex(table: LockTable) -> None:
    table.acquire(b"t", 1)
    seen: list[bool] = []

    def try_take_mutex() -> None:
        got = table._cond.acquire(blocking=False)
        if got:
            table._cond.release()
        seen.append(got)

    def compute() -> tuple[None, list[bytes]]:
        other = threading.Thread(target=try_take_mutex)
        other.start()
        other.join(DEADLINE)
        return None, [b"k"]

    table.acquire_exclusive(b"t", 1, compute)
    assert seen == [False]


# -- property: no two transactions ever hold conflicting locks -------------------------------

TXNS = {b"t1": 1, b"t2": 2, b"t3": 3}
KEYS = [b"", b"a", b"b", b"c", b"d"]
intervals = st.tuples(st.sampled_from(KEYS), st.sampled_from([*KEYS[1:], None])).filter(
    lambda iv: iv[1] is None or iv[0] < iv[1]
)
ops = st.one_of(
    st.tuples(
        st.just("acquire"),
        st.sampled_from(sorted(TXNS)),
        st.lists(intervals, max_size=2),
        st.lists(st.sampled_from(KEYS), max_size=2),
    ),
    st.tuples(st.just("release"), st.sampled_from(sorted(TXNS))),
    st.tuples(st.just("prepare"), st.sampled_from(sorted(TXNS))),
)


def _inside(iv: Interval, key: bytes) -> bool:
    return iv[0] <= key and (iv[1] is None or key < iv[1])


def _conflict(a: tuple[set[Interval], set[bytes]], b: tuple[set[Interval], set[bytes]]) -> bool:
    (a_sh, a_ex), (b_sh, b_ex) = a, b
    return (
        bool(a_ex & b_ex)
        or any(_inside(iv, k) for iv in a_sh for k in b_ex)
        or any(_inside(iv, k) for iv in b_sh for k in a_ex)
    )


@settings(deadline=None, max_examples=120)
@given(st.lists(ops, max_size=25))
def test_no_conflicting_locks_ever_held(steps: list[tuple[Any, ...]]) -> None:
    table = LockTable(clock=FakeClock(), idle_timeout=1e9)
    model: dict[bytes, tuple[set[Interval], set[bytes]]] = {}
    prepared: set[bytes] = set()
    for step in steps:
        kind, txn = step[0], step[1]
        if kind == "release":
            table.release(txn)
            model.pop(txn, None)
            prepared.discard(txn)
        elif kind == "prepare":
            if txn in model:
                table.mark_prepared(txn, model[txn][1], 1)
                prepared.add(txn)
        else:
            shared, keys = step[2], step[3]
            want = (set(shared), set(keys))
            blockers = [o for o in model if o != txn and _conflict(model[o], want)]
            if blockers:
                dies = any(o not in prepared and TXNS[o] < TXNS[txn] for o in blockers)
                with pytest.raises(LockConflict, match="older" if dies else "timed out"):
                    table.acquire(txn, TXNS[txn], shared=shared, exclusive=keys, timeout=0)
            else:
                table.acquire(txn, TXNS[txn], shared=shared, exclusive=keys, timeout=0)
                mine = model.setdefault(txn, (set(), set()))
                mine[0].update(want[0])
                mine[1].update(want[1])
        assert table.waits == 0
        # The table's own state agrees with the model and holds no conflicting pair.
        held = {t: (set(h.shared), set(h.exclusive)) for t, h in table._txns.items()}
        assert held == model
        names = sorted(held)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert not _conflict(held[a], held[b]), (a, b, held)

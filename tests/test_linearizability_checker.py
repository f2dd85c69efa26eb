"""Unit tests of the WGL linearizability checker in ``tests/linearizability.py`` (pure logic)."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.linearizability import Op, Result, check, describe

NEVER_WRITTEN = "never-written"


def r(client: int, out: object, call: float, ret: float | None, key: str | int = "x") -> Op:
    return Op(client, "read", key, None, out, call, ret)


def w(client: int, value: object, call: float, ret: float | None, key: str | int = "x") -> Op:
    return Op(client, "write", key, value, None, call, ret)


def cas(
    client: int,
    expected: object,
    new: object,
    out: bool | None,
    call: float,
    ret: float | None,
    key: str | int = "x",
) -> Op:
    return Op(client, "cas", key, (expected, new), out, call, ret)


# ---------------------------------------------------------------- generated histories


def linearizable_history(
    rng: random.Random,
    n_ops: int,
    n_clients: int,
    *,
    key: str | int = "x",
    n_values: int = 4,
    max_widen: float = 3.0,
    ambiguous_rate: float = 0.0,
    initial: object = None,
) -> list[Op]:
    """A random sequential run of a register (op k takes effect at time k), made concurrent by
    widening each op's [call, ret] around its linearization point. A client's ops never overlap
    each other. With ``ambiguous_rate`` some ops lose their return (they did take effect) and
    some ambiguous writes of fresh values that never took effect are added."""
    state = initial
    # client -> [(point, kind, value, output)]
    runs: dict[int, list[tuple[float, str, object, object]]] = {}
    for k in range(n_ops):
        point = float(k + 1)
        client = rng.randrange(n_clients)
        kind = rng.choice(("read", "read", "write", "cas"))
        value: object
        output: object
        if kind == "read":
            value, output = None, state
        elif kind == "write":
            value, output = rng.randrange(n_values), None
            state = value
        else:
            expected = state if rng.random() < 0.5 else rng.randrange(n_values)
            new = rng.randrange(n_values)
            value, output = (expected, new), state == expected
            if output:
                state = new
        runs.setdefault(client, []).append((point, kind, value, output))
    history: list[Op] = []
    for client, run in runs.items():
        for j, (point, kind, value, output) in enumerate(run):
            lo = (run[j - 1][0] + point) / 2 if j > 0 else 0.0
            hi = (point + run[j + 1][0]) / 2 if j + 1 < len(run) else point + max_widen
            call = max(lo, point - rng.uniform(0, max_widen))
            ret: float | None = min(hi, point + rng.uniform(0, max_widen))
            if rng.random() < ambiguous_rate:
                ret = None
            history.append(Op(client, kind, key, value, output, call, ret))
    if ambiguous_rate:
        for k in range(n_ops):
            if rng.random() < ambiguous_rate / 2:
                phantom = ("phantom", k)
                history.append(Op(n_clients + k, "write", key, phantom, None, k + 0.5, None))
    history.sort(key=lambda op: op.call)
    return history


def brute_force_linearizable(history: list[Op], initial: object = None) -> bool:
    """Tries every order (and every subset of the ambiguous writes/cas) of one key's ops."""
    required = [op for op in history if op.ret is not None]
    optional = [op for op in history if op.ret is None and op.kind != "read"]
    for n in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, n):
            for order in itertools.permutations(required + list(chosen)):
                if _respects_real_time(order) and _legal(order, initial):
                    return True
    return False


def reference_linearizable(history: list[Op], initial: object = None) -> bool:
    """Plain WGL on one key's ops, with Lowe's cache and none of check()'s refinements: an
    ambiguous op returns at +infinity and is a candidate like any other; the search succeeds
    once every completed op is linearized. Slow, but simple enough to trust."""
    ops = [op for op in history if op.ret is not None or op.kind != "read"]
    returns = [math.inf if op.ret is None else op.ret for op in ops]
    completed = sum(1 << i for i, op in enumerate(ops) if op.ret is not None)
    seen = {(0, initial)}
    todo = [(0, initial)]
    while todo:
        done, state = todo.pop()
        if done & completed == completed:
            return True
        left = [i for i in range(len(ops)) if not done >> i & 1]
        first_return = min(returns[i] for i in left)
        for i in left:
            if ops[i].call <= first_return:
                accepted, new_state = _apply(ops[i], state)
                config = (done | 1 << i, new_state)
                if accepted and config not in seen:
                    seen.add(config)
                    todo.append(config)
    return False


def _respects_real_time(order: tuple[Op, ...]) -> bool:
    for i, first in enumerate(order):
        for later in order[i + 1 :]:
            if later.ret is not None and later.ret < first.call:
                return False
    return True


def _legal(order: tuple[Op, ...], state: object) -> bool:
    for op in order:
        accepted, state = _apply(op, state)
        if not accepted:
            return False
    return True


def _apply(op: Op, state: object) -> tuple[bool, object]:
    """The register model: whether ``op`` can happen when the register holds ``state``, and
    the value after it. The output of an ambiguous cas is not checked."""
    if op.kind == "read":
        return state == op.output, state
    if op.kind == "write":
        return True, op.value
    assert isinstance(op.value, tuple)
    expected, new = op.value
    succeeded = state == expected
    accepted = op.ret is None or succeeded == op.output
    return accepted, new if succeeded else state


def perturbed(rng: random.Random, history: list[Op], changes: int) -> list[Op]:
    """``history`` with up to ``changes`` completed reads or cas given another output."""
    history = list(history)
    for _ in range(changes):
        changeable = [
            i for i, op in enumerate(history) if op.ret is not None and op.kind != "write"
        ]
        if not changeable:
            break
        i = rng.choice(changeable)
        op = history[i]
        output = rng.choice([None, 0, 1, 2]) if op.kind == "read" else not op.output
        history[i] = Op(op.client, op.kind, op.key, op.value, output, op.call, op.ret)
    return history


# ---------------------------------------------------------------- hand-written histories


def test_empty_history_is_linearizable() -> None:
    result = check([])
    assert result == Result(True, None, result.explanation, 0)


def test_sequential_history_ok() -> None:
    history = [
        r(1, None, 0, 1),
        w(1, 5, 2, 3),
        r(2, 5, 4, 5),
        cas(2, 5, 6, True, 6, 7),
        cas(1, 5, 7, False, 8, 9),
        r(1, 6, 10, 11),
        w(2, None, 12, 13),
        r(1, None, 14, 15),
    ]
    result = check(history)
    assert result.ok, result.explanation
    assert result.key is None
    assert result.states_explored >= len(history)


def test_initial_value() -> None:
    assert check([r(1, 3, 0, 1)], initial=3).ok
    assert not check([r(1, None, 0, 1)], initial=3).ok
    assert not check([r(1, 3, 0, 1)]).ok


@pytest.mark.parametrize("seen", [1, 2])
def test_read_overlapping_a_write_may_see_either_value(seen: int) -> None:
    history = [w(1, 1, 0, 1), w(1, 2, 2, 6), r(2, seen, 3, 4)]
    assert check(history).ok


def test_concurrent_reads_can_disagree_while_a_write_is_in_flight() -> None:
    # r2 sees the new value, r3 (which starts after r2 returned) still the old one: impossible.
    history = [w(1, 1, 0, 1), w(1, 2, 2, 10), r(2, 2, 3, 4), r(3, 1, 5, 6)]
    result = check(history)
    assert not result.ok
    # The other way round is fine: old value first, new value later.
    history = [w(1, 1, 0, 1), w(1, 2, 2, 10), r(2, 1, 3, 4), r(3, 2, 5, 6)]
    assert check(history).ok


def test_stale_read_after_a_completed_write_is_rejected() -> None:
    stale = r(2, 1, 4, 5, key="acct")
    history = [w(1, 1, 0, 1, key="acct"), w(1, 2, 2, 3, key="acct"), stale]
    result = check(history)
    assert not result.ok
    assert result.key == "acct"
    assert result.stuck[0] == stale
    assert "read('acct')=1" in result.explanation
    assert "{2}" in result.explanation  # the only value the register could hold there


def test_touching_intervals_count_as_concurrent() -> None:
    # The read is invoked at the instant the write returns: ordered either way.
    assert check([w(1, 1, 0, 1), w(1, 2, 2, 3), r(2, 1, 3, 4)]).ok


def test_cas_success_and_failure_semantics() -> None:
    assert check([w(1, 1, 0, 1), cas(1, 1, 2, True, 2, 3), r(1, 2, 4, 5)]).ok
    assert check([w(1, 1, 0, 1), cas(1, 0, 2, False, 2, 3), r(1, 1, 4, 5)]).ok
    assert check([cas(1, None, 1, True, 0, 1), r(1, 1, 2, 3)]).ok  # insert-if-absent
    # A failed cas leaves the register alone.
    assert not check([w(1, 1, 0, 1), cas(1, 0, 2, False, 2, 3), r(1, 2, 4, 5)]).ok


def test_cas_reporting_success_that_could_not_have_happened() -> None:
    bogus = cas(2, 0, 5, True, 2, 3)
    result = check([w(1, 1, 0, 1), bogus])
    assert not result.ok
    assert result.key == "x"
    assert result.stuck[0] == bogus


def test_cas_reporting_failure_that_must_have_succeeded() -> None:
    assert not check([w(1, 1, 0, 1), cas(2, 1, 5, False, 2, 3)]).ok


def test_two_cas_racing_only_one_may_win() -> None:
    base = [w(1, 0, 0, 1)]
    assert check([*base, cas(1, 0, 1, True, 2, 5), cas(2, 0, 2, False, 3, 4)]).ok
    assert not check([*base, cas(1, 0, 1, True, 2, 5), cas(2, 0, 2, True, 3, 4)]).ok


def test_concurrent_cas_chain_needs_the_right_order() -> None:
    # Tried first, cas(2->3) then cas(1->2) fails; the search must backtrack to the other order.
    history = [
        w(1, 1, 0, 1),
        cas(2, 2, 3, True, 2, 6),
        cas(3, 1, 2, True, 2, 6),
        r(1, 3, 7, 8),
    ]
    assert check(history).ok


def test_ambiguous_write_later_observed_is_ok() -> None:
    history = [w(1, 1, 0, 1), w(2, 2, 2, None), r(3, 2, 10, 11), r(3, 2, 12, 13)]
    assert check(history).ok


def test_ambiguous_write_never_observed_is_ok() -> None:
    history = [w(1, 1, 0, 1), w(2, 2, 2, None), r(3, 1, 10, 11), r(3, 1, 12, 13)]
    assert check(history).ok


def test_ambiguous_write_cannot_take_effect_twice_or_before_its_call() -> None:
    # Observed, then overwritten, then observed again: one write cannot explain both.
    history = [w(2, 2, 2, None), r(3, 2, 10, 11), w(1, 1, 12, 13), r(3, 2, 14, 15)]
    result = check(history)
    assert not result.ok
    assert result.stuck[0] == history[-1]
    assert "1 ambiguous op(s)" in result.explanation
    # Observed by a read that finished before the write was even sent.
    assert not check([r(3, 2, 0, 1), w(2, 2, 2, None)]).ok


def test_ambiguous_cas_may_go_either_way_and_ambiguous_reads_are_ignored() -> None:
    took = [w(1, 1, 0, 1), cas(2, 1, 2, False, 2, None), r(3, 2, 5, 6)]
    assert check(took).ok  # the reported output of an ambiguous cas is not trusted
    skipped = [w(1, 1, 0, 1), cas(2, 1, 2, None, 2, None), r(3, 1, 5, 6)]
    assert check(skipped).ok
    assert check([w(1, 1, 0, 1), r(2, 99, 2, None), r(3, 1, 5, 6)]).ok


def test_two_keys_are_independent() -> None:
    a = [w(1, 1, 0, 1, key="a"), r(2, 1, 2, 3, key="a")]
    b = [w(1, 1, 0, 1, key="b"), w(1, 2, 2, 3, key="b"), r(2, 1, 4, 5, key="b")]
    # Interleaved in time with each other: "a" alone is fine, "b" alone is not.
    history = sorted(a + b, key=lambda op: op.call)
    result = check(history)
    assert not result.ok
    assert result.key == "b"
    assert check(a).ok
    # Same values on another key do not excuse a stale read: keys never share a register.
    c = [w(1, 1, 0, 1, key=7), r(2, 2, 2, 3, key=7), w(3, 2, 0, 1, key=8)]
    result = check(c)
    assert not result.ok and result.key == 7


def test_malformed_ops_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        check([Op(1, "delete", "x", None, None, 0, 1)])
    with pytest.raises(ValueError, match="before it is called"):
        check([w(1, 1, 2, 1)])
    with pytest.raises(ValueError, match="pair"):
        check([Op(1, "cas", "x", 5, True, 0, 1)])
    with pytest.raises(ValueError, match="bool"):
        check([cas(1, 0, 1, None, 0, 1)])


def test_describe() -> None:
    assert describe(cas(3, 1, 2, True, 0.5, 1.25)) == "cas('x', 1->2)=True by c3 [0.5, 1.25]"
    assert describe(w(1, 4, 0, None, key=9)) == "write(9, 4) by c1 [0, ?]"


# ---------------------------------------------------------------- properties

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(
    rng=st.randoms(use_true_random=False),
    n_ops=st.integers(1, 60),
    n_clients=st.integers(1, 8),
    max_widen=st.floats(0, 8),
    ambiguous=st.booleans(),
    initial=st.sampled_from([None, 0]),
)
def test_widened_sequential_runs_are_linearizable(
    rng: random.Random,
    n_ops: int,
    n_clients: int,
    max_widen: float,
    ambiguous: bool,
    initial: object,
) -> None:
    history = linearizable_history(
        rng,
        n_ops,
        n_clients,
        max_widen=max_widen,
        ambiguous_rate=0.15 if ambiguous else 0.0,
        initial=initial,
    )
    result = check(history, initial)
    assert result.ok, result.explanation


@_SETTINGS
@given(
    rng=st.randoms(use_true_random=False),
    n_ops=st.integers(1, 60),
    n_clients=st.integers(1, 8),
    max_widen=st.floats(0, 8),
    pick=st.integers(0, 10**6),
)
def test_a_read_of_a_value_never_written_is_rejected(
    rng: random.Random, n_ops: int, n_clients: int, max_widen: float, pick: int
) -> None:
    history = linearizable_history(rng, n_ops, n_clients, max_widen=max_widen)
    reads = [i for i, op in enumerate(history) if op.kind == "read" and op.ret is not None]
    assume(reads)
    i = reads[pick % len(reads)]
    bad = history[i]
    history[i] = Op(bad.client, bad.kind, bad.key, bad.value, NEVER_WRITTEN, bad.call, bad.ret)
    result = check(history)
    assert not result.ok
    assert result.key == "x"
    assert result.stuck[0] == history[i]
    assert "'never-written'" in result.explanation


_time = st.integers(0, 6).map(float)
_val = st.sampled_from([None, 0, 1])


@st.composite
def _arbitrary_op(draw: st.DrawFn) -> Op:
    client = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["read", "write", "cas"]))
    call = draw(_time)
    ret = None if draw(st.integers(0, 2)) == 0 else call + draw(_time)
    if kind == "read":
        return Op(client, kind, "x", None, draw(_val), call, ret)
    if kind == "write":
        return Op(client, kind, "x", draw(_val), None, call, ret)
    out = draw(st.booleans()) if ret is not None else None
    return Op(client, kind, "x", (draw(_val), draw(_val)), out, call, ret)


@settings(max_examples=200, deadline=None)
@given(history=st.lists(_arbitrary_op(), max_size=6), initial=_val)
def test_agrees_with_brute_force_on_small_histories(history: list[Op], initial: object) -> None:
    expected = brute_force_linearizable(history, initial)
    assert reference_linearizable(history, initial) == expected
    result = check(history, initial)
    assert result.ok == expected, result.explanation


@_SETTINGS
@given(
    rng=st.randoms(use_true_random=False),
    n_ops=st.integers(2, 24),
    n_clients=st.integers(1, 5),
    max_widen=st.floats(0, 6),
    ambiguous_rate=st.sampled_from([0.0, 0.2, 0.5]),
    changes=st.integers(0, 2),
)
def test_agrees_with_plain_wgl_on_perturbed_histories(
    rng: random.Random,
    n_ops: int,
    n_clients: int,
    max_widen: float,
    ambiguous_rate: float,
    changes: int,
) -> None:
    """Histories with many ambiguous ops, linearizable or not (some outputs changed): the
    refinements of check() must not change the verdict of the plain search."""
    history = linearizable_history(
        rng, n_ops, n_clients, max_widen=max_widen, ambiguous_rate=ambiguous_rate, n_values=3
    )
    history = perturbed(rng, history, changes)
    result = check(history)
    assert result.ok == reference_linearizable(history), result.explanation


# ---------------------------------------------------------------- size


@pytest.mark.parametrize(
    ("n_ops", "n_clients", "max_widen", "ambiguous_rate"),
    [(2000, 10, 8.0, 0.02), (3000, 16, 20.0, 0.0)],
)
def test_thousands_of_ops_on_one_key_check_quickly(
    n_ops: int, n_clients: int, max_widen: float, ambiguous_rate: float
) -> None:
    rng = random.Random(20240611)
    history = linearizable_history(
        rng, n_ops, n_clients, max_widen=max_widen, ambiguous_rate=ambiguous_rate
    )
    started = time.perf_counter()
    result = check(history)
    elapsed = time.perf_counter() - started
    assert result.ok, result.explanation
    assert elapsed < 5.0, f"{elapsed:.2f}s, {result.states_explored} states"


def test_a_late_violation_in_a_long_history_is_found_quickly() -> None:
    rng = random.Random(7)
    history = linearizable_history(rng, 2000, 10, max_widen=8.0)
    reads = [i for i, op in enumerate(history) if op.kind == "read"]
    i = reads[-10]
    bad = history[i]
    history[i] = Op(bad.client, bad.kind, bad.key, bad.value, NEVER_WRITTEN, bad.call, bad.ret)
    started = time.perf_counter()
    result = check(history)
    elapsed = time.perf_counter() - started
    assert not result.ok
    assert result.stuck[0] == history[i]
    assert elapsed < 5.0, f"{elapsed:.2f}s, {result.states_explored} states"

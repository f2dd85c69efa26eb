"""A linearizability checker for histories of a key-value register (a test helper).

A *history* is a list of :class:`Op`: each one a read, write or compare-and-set on one key, with
the time it was invoked (``call``) and the time its answer came back (``ret``). The history is
*linearizable* when every op can be given a single instant between its call and its return such
that, taken in the order of those instants, the ops behave like a plain register: a read sees
the last value written, a cas succeeds exactly when the register held its expected value.

How :func:`check` decides it
----------------------------

* Registers on different keys are independent and linearizability is *local* (a history is
  linearizable iff each per-object sub-history is), so the history is split per key and each key
  is checked on its own.
* Each key is checked with the search of Wing and Gong (1993) as refined by Lowe (2017), the
  same approach that Knossos and Porcupine take. Every op contributes a *call* and a *return*
  event; the events, sorted by time, form a doubly-linked list. An op may be linearized next if
  it is *minimal*: its call comes before the first return still in the list (i.e. no remaining
  op finished before it started). The search walks the list from its head, takes the first
  minimal op that the register model accepts in the current state, applies it, unlinks its two
  events and starts again from the head; when it meets a return event before finding such an op
  it backtracks (re-links the last op it took and tries the next candidate). It succeeds when
  every completed op has been linearized.
* Lowe's improvement: a set of the (linearized-ops, register-value) configurations already
  reached is kept, and a configuration is never explored twice. Two orders of the same ops that
  leave the register with the same value lead to the same future, so this prunes the
  factorial blow-up to (at most) "subsets of the concurrency window times register values".
  The linearized set is a Python ``int`` used as a bitset (bit *i* = op *i* of that key).
* The search is an explicit loop with a stack of the ops taken, so long histories never hit
  the interpreter's recursion limit.

Conventions
-----------

* ``ret is None`` means the outcome is unknown (a timeout, a lost connection): the op may have
  taken effect at any instant after its call, or never. Such an op is given a return time of
  +infinity; an ambiguous write or cas is therefore never *required* to take effect (whatever
  is left of them at the end is linearized last, where nothing observes it), and an ambiguous
  cas is applied by the model without checking its reported output. Ambiguous reads constrain
  nothing and are dropped.
* Ambiguous writes/cas invoked after every completed op of the key has returned cannot explain
  any observation and are dropped too.
* Equal timestamps: a call at the same instant as another op's return is taken as *concurrent*
  with it (calls sort before returns), which errs on the side of accepting a history when the
  clock is too coarse to order the two events.
* Values are compared with ``==`` and must be hashable (they are kept in the configuration
  cache). ``None`` means "absent" (a NULL / missing row): a read that found nothing reports
  ``None``, and ``initial=None`` starts every register absent.
* On failure the result names the key, the op at which the search got stuck (the earliest
  op that no explored linearization could get past, with the register values it could have
  seen there), and the few ops that were concurrent with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import inf
from typing import Final

READ: Final = 0
WRITE: Final = 1
CAS: Final = 2
_KINDS: Final = {"read": READ, "write": WRITE, "cas": CAS}

# Search modes (see _KeyChecker.run).
_FRESH: Final = 0
_FORCED: Final = 1
_COMPLETED: Final = 2
_AMBIGUOUS: Final = 3
import os
_TWO_PASSES = os.environ.get("SINGLE") != "1"

# How many register values / concurrent ops a failure explanation lists at most.
_MAX_LISTED: Final = 6


class _NoBlock:
    """Marks "no ambiguous op taken since the last completed one" (distinct from any value)."""

    def __repr__(self) -> str:
        return "<no block>"


_NO_BLOCK: Final = _NoBlock()


class _Unobserved:
    """Stands for any register value that no op of the key reads or expects (cache keys only)."""

    def __repr__(self) -> str:
        return "<unobserved>"


_UNOBSERVED: Final = _Unobserved()


@dataclass(frozen=True)
class Op:
    """One operation of a history, on one key.

    ``value``: the value written (write), a pair ``(expected, new)`` (cas), ``None`` (read).
    ``output``: the value seen, ``None`` if absent (read); whether it succeeded (cas); ``None``
    (write). ``ret is None``: the outcome is unknown (see the module docstring).
    """

    client: int
    kind: str
    key: str | int
    value: object
    output: object
    call: float
    ret: float | None


@dataclass(frozen=True)
class Result:
    """The verdict of :func:`check`.

    ``key``: the first key found not linearizable (``None`` when ``ok``). ``stuck``: the ops the
    explanation names (the op the search could not get past first, then ops concurrent with
    it). ``states_explored``: distinct (linearized set, register value) configurations reached,
    summed over the keys checked.
    """

    ok: bool
    key: str | int | None
    explanation: str
    states_explored: int
    stuck: tuple[Op, ...] = field(default=())


def describe(op: Op) -> str:
    """A one-line human description of an op, e.g. ``cas('x', 1->2)=True by c3 [0.5, 1.25]``."""
    if op.kind == "read":
        what = f"read({op.key!r})={op.output!r}"
    elif op.kind == "write":
        what = f"write({op.key!r}, {op.value!r})"
    else:
        expected, new = _cas_args(op)
        outcome = "?" if op.ret is None else repr(op.output)
        what = f"cas({op.key!r}, {expected!r}->{new!r})={outcome}"
    ret = "?" if op.ret is None else f"{op.ret:g}"
    return f"{what} by c{op.client} [{op.call:g}, {ret}]"


def check(history: list[Op], initial: object = None) -> Result:
    """Whether ``history`` is linearizable for independent registers (one per key), each
    starting at ``initial`` (``None`` = absent). Raises ``ValueError`` on a malformed op."""
    by_key: dict[str | int, list[Op]] = {}
    for op in history:
        _validate(op)
        by_key.setdefault(op.key, []).append(op)
    explored = 0
    for key, ops in by_key.items():
        outcome = _KeyChecker(ops, initial).run()
        explored += outcome.states_explored
        if not outcome.ok:
            return Result(False, key, outcome.explanation, explored, outcome.stuck)
    return Result(
        True,
        None,
        f"linearizable: {len(history)} ops on {len(by_key)} key(s)",
        explored,
    )


def _validate(op: Op) -> None:
    if op.kind not in _KINDS:
        raise ValueError(f"unknown op kind {op.kind!r} (expected read, write or cas): {op!r}")
    if op.ret is not None and op.ret < op.call:
        raise ValueError(f"op returns before it is called: {op!r}")
    if op.kind == "cas":
        _cas_args(op)
        if op.ret is not None and not isinstance(op.output, bool):
            raise ValueError(f"a completed cas must report a bool output: {op!r}")


def _cas_args(op: Op) -> tuple[object, object]:
    if not isinstance(op.value, tuple) or len(op.value) != 2:
        raise ValueError(f"cas value must be a pair (expected, new): {op!r}")
    expected: object = op.value[0]
    new: object = op.value[1]
    return expected, new


@dataclass(frozen=True)
class _KeyOutcome:
    ok: bool
    explanation: str
    states_explored: int
    stuck: tuple[Op, ...]


class _KeyChecker:
    """The WGL search with Lowe's configuration cache, over the ops of one key."""

    def __init__(self, ops: list[Op], initial: object) -> None:
        self.initial = initial
        kept = [op for op in ops if op.ret is not None or op.kind != "read"]
        last_ret = max((op.ret for op in kept if op.ret is not None), default=None)
        if last_ret is None:
            kept = []
        else:
            kept = [op for op in kept if op.ret is not None or op.call <= last_ret]
        self.ops = kept
        n = len(kept)
        # Per op: kind code, first and second argument, expected output, completed?
        self.kind = [_KINDS[op.kind] for op in kept]
        self.arg1: list[object] = []
        self.arg2: list[object] = []
        for op in kept:
            if op.kind == "cas":
                expected, new = _cas_args(op)
                self.arg1.append(expected)
                self.arg2.append(new)
            else:
                self.arg1.append(op.value)
                self.arg2.append(None)
        self.out: list[object] = [op.output for op in kept]
        self.completed = [op.ret is not None for op in kept]
        # The values some op can tell apart from others: what completed reads returned and
        # what cas ops expected. Any other value is "unobserved": every read and cas fails on it.
        self.observable: set[object] = {
            self.out[i] for i in range(n) if self.completed[i] and self.kind[i] == READ
        }
        self.observable.update(self.arg1[i] for i in range(n) if self.kind[i] == CAS)
        # Ambiguous ops grouped by what they do (writing any unobserved value counts as the
        # same thing), each group in call order, with a sentinel at the end.
        self.group = [-1] * n
        self.members: list[list[int]] = []
        group_of: dict[tuple[int, object, object], int] = {}
        for i in sorted(range(n), key=lambda i: kept[i].call):
            if not self.completed[i]:
                written = self.arg1[i] if self.kind[i] == WRITE else self.arg2[i]
                if written not in self.observable:
                    written = _UNOBSERVED
                what = (self.kind[i], self.arg1[i] if self.kind[i] == CAS else None, written)
                g = group_of.setdefault(what, len(self.members))
                if g == len(self.members):
                    self.members.append([])
                self.group[i] = g
                self.members[g].append(i)
        for ops_of_group in self.members:
            ops_of_group.append(-1)

        # Events sorted by time; at equal times calls come first (concurrency wins).
        events: list[tuple[float, int, int]] = []
        for i, op in enumerate(kept):
            events.append((op.call, 0, i))
            events.append((inf if op.ret is None else op.ret, 1, i))
        events.sort()
        # Entry 0 is the head sentinel, 1..2n the events in order, 2n+1 the tail sentinel.
        size = 2 * n + 2
        self.head = 0
        self.tail = size - 1
        self.nxt = [min(e + 1, self.tail) for e in range(size)]
        self.prv = [max(e - 1, 0) for e in range(size)]
        self.op_of = [-1] * size
        # For a call entry: the index of its return entry; -1 for returns and sentinels.
        self.match = [-1] * size
        call_entry = [0] * n
        for pos, (_, is_return, i) in enumerate(events, start=1):
            self.op_of[pos] = i
            if is_return:
                self.match[call_entry[i]] = pos
            else:
                call_entry[i] = pos

    def run(self) -> _KeyOutcome:
        nxt, prv, match, op_of = self.nxt, self.prv, self.match, self.op_of
        kind, arg1, arg2, out, completed = self.kind, self.arg1, self.arg2, self.out, self.completed
        group, members, observable = self.group, self.members, self.observable
        head = self.head
        used = [0] * len(members)  # per group of ambiguous ops: how many are linearized
        remaining = sum(completed)
        two_passes = _TWO_PASSES and remaining < len(completed)
        # (completed ops linearized, register value, block start) -> the sets of ambiguous
        # ops linearized that were reached with it, kept as an antichain (no set contains
        # another): an explored configuration that took fewer ambiguous ops can do everything
        # a configuration that took more can, so the latter is skipped.
        cache: dict[tuple[int, object, object], list[int]] = {}
        explored = 0
        # (call entry taken, register value and block start before it, how it was taken)
        stack: list[tuple[int, object, object, int]] = []
        done = 0  # bitset of the completed ops linearized
        taken = 0  # bitset of the ambiguous ops linearized
        state = self.initial
        # The register value before the ambiguous ops taken since the last completed op.
        block: object = _NO_BLOCK
        # How the current candidate was reached: a fresh configuration (look for a forced move
        # first), a scan of completed ops, then (with two passes) a scan of ambiguous ones.
        mode = _FRESH
        backtrack = False
        entry = head
        # The furthest return entry the search got stuck at, what the register could hold
        # there, and the ops that were candidates at that point.
        frontier = -1
        frontier_states: list[object] = []
        frontier_candidates: list[int] = []
        while remaining:
            if backtrack:
                if not stack:
                    return self._failure(frontier, frontier_states, frontier_candidates, explored)
                # Undo the last choice and go on with the next candidate after it.
                entry, state, block, mode = stack.pop()
                ret_entry = match[entry]
                i = op_of[entry]
                if completed[i]:
                    done ^= 1 << i
                    remaining += 1
                else:
                    taken ^= 1 << i
                    used[group[i]] -= 1
                # Re-link in the reverse order of unlinking.
                nxt[prv[ret_entry]] = ret_entry
                prv[nxt[ret_entry]] = ret_entry
                nxt[prv[entry]] = entry
                prv[nxt[entry]] = entry
                if mode != _FORCED:  # a forced move had no alternative: keep undoing
                    backtrack = False
                    entry = nxt[entry]
                continue
            if mode == _FRESH:
                # A minimal completed op that leaves the value alone (an accepted read or
                # failed cas) can always be linearized first: take it without branching.
                mode = _COMPLETED
                entry = nxt[head]
                while match[entry] >= 0:
                    i = op_of[entry]
                    if completed[i] and kind[i] != WRITE:
                        if kind[i] == READ:
                            if state == out[i] and (block is _NO_BLOCK or block != out[i]):
                                break
                        elif not out[i] and state != arg1[i]:
                            if block is _NO_BLOCK or block == arg1[i]:
                                break
                    entry = nxt[entry]
                if match[entry] >= 0:
                    mode = _FORCED
                else:
                    entry = nxt[head]
            ret_entry = match[entry]
            if ret_entry >= 0:  # a call entry: a minimal op, try to linearize it now
                i = op_of[entry]
                if completed[i]:
                    if mode == _AMBIGUOUS:
                        entry = nxt[entry]
                        continue
                    k = kind[i]
                    if k == READ:
                        accepted = state == out[i]
                        new_state = state
                        needed = block is _NO_BLOCK or block != out[i]
                    elif k == WRITE:
                        accepted = True
                        new_state = arg1[i]
                        needed = block is _NO_BLOCK
                    else:
                        succeeded = state == arg1[i]
                        accepted = succeeded == out[i]
                        new_state = arg2[i] if succeeded else state
                        needed = block is _NO_BLOCK or (block == arg1[i]) != out[i]
                    # Right after ambiguous ops, only an op that they enable may come.
                    accepted = accepted and needed
                    new_block: object = _NO_BLOCK
                    new_done, new_taken = done | (1 << i), taken
                else:
                    g = group[i]
                    if (two_passes and mode != _AMBIGUOUS) or members[g][used[g]] != i:
                        # Ambiguous ops that do the same thing are interchangeable once
                        # callable: only the earliest unused one of them is tried.
                        entry = nxt[entry]
                        continue
                    # Only a write that starts a block, or a cas that changes the value.
                    if kind[i] == WRITE:
                        new_state = arg1[i]
                        accepted = block is _NO_BLOCK and new_state != state
                    else:
                        new_state = arg2[i]
                        accepted = state == arg1[i] and new_state != state
                    new_block = state if block is _NO_BLOCK else block
                    new_done, new_taken = done, taken | (1 << i)
                if accepted:
                    # Values no op can observe behave alike: one cache entry covers them all.
                    config = (
                        new_done,
                        new_state if new_state in observable else _UNOBSERVED,
                        new_block
                        if new_block is _NO_BLOCK or new_block in observable
                        else _UNOBSERVED,
                    )
                    seen = cache.get(config)
                    if seen is None:
                        cache[config] = [new_taken]
                        fresh = True
                    else:
                        fresh = all(old | new_taken != new_taken for old in seen)
                        if fresh:
                            seen[:] = [old for old in seen if old | new_taken != old]
                            seen.append(new_taken)
                    if fresh:
                        explored += 1
                        stack.append((entry, state, block, mode))
                        done, taken, state, block = new_done, new_taken, new_state, new_block
                        # Unlink the call entry, then its return entry.
                        nxt[prv[entry]] = nxt[entry]
                        prv[nxt[entry]] = prv[entry]
                        nxt[prv[ret_entry]] = nxt[ret_entry]
                        prv[nxt[ret_entry]] = prv[ret_entry]
                        if completed[i]:
                            remaining -= 1
                        else:
                            used[group[i]] += 1
                        mode = _FRESH
                        continue
                if mode == _FORCED:
                    backtrack = True  # already explored: this configuration leads nowhere
                    continue
                entry = nxt[entry]
                continue
            # A return entry: every candidate before it was tried in this pass.
            if two_passes and mode == _COMPLETED:
                mode = _AMBIGUOUS
                entry = nxt[head]
                continue
            if entry > frontier:
                frontier = entry
                frontier_states = [state]
                frontier_candidates = self._candidates(entry)
            elif entry == frontier and len(frontier_states) <= _MAX_LISTED:
                if all(state != other for other in frontier_states):
                    frontier_states.append(state)
            backtrack = True
        return _KeyOutcome(True, "linearizable", explored, ())

    def _candidates(self, stop: int) -> list[int]:
        """Ops whose call entries precede ``stop`` in the list as it is now."""
        found: list[int] = []
        entry = self.nxt[self.head]
        while entry != stop:
            found.append(self.op_of[entry])
            entry = self.nxt[entry]
        return found

    def _failure(
        self, frontier: int, states: list[object], candidates: list[int], explored: int
    ) -> _KeyOutcome:
        stuck_index = self.op_of[frontier]
        stuck = self.ops[stuck_index]
        before = sum(
            1
            for op in self.ops
            if op.ret is not None and stuck.ret is not None and op.ret < stuck.ret
        )
        shown_states = sorted((repr(s) for s in states[:_MAX_LISTED]), key=lambda r: (len(r), r))
        more_states = ", ..." if len(states) > _MAX_LISTED else ""
        concurrent = [self.ops[i] for i in candidates if i != stuck_index]
        listed = concurrent[:_MAX_LISTED]
        text = (
            f"cannot linearize {describe(stuck)}: in every order of the {before} op(s) that "
            f"returned before it (and of concurrent ones) the register then held one of "
            f"{{{', '.join(shown_states)}{more_states}}}"
        )
        if listed:
            more = (
                f" (+{len(concurrent) - len(listed)} more)" if len(concurrent) > len(listed) else ""
            )
            text += "; concurrent: " + "; ".join(describe(op) for op in listed) + more
        return _KeyOutcome(False, text, explored, (stuck, *listed))

"""A linearizability checker for histories of a key-value register (a test helper).

A *history* is a list of :class:`Op`: each a read, write or compare-and-set on one key, with the
time it was invoked (``call``) and the time its answer came back (``ret``). The history is
*linearizable* when every op can be given a single instant between its call and its return such
that, taken in the order of those instants, the ops behave like a plain register: a read sees
the last value written, a cas succeeds exactly when the register held its expected value.

How :func:`check` decides it
----------------------------

* Registers on different keys are independent and linearizability is *local* (a history is
  linearizable iff each per-object sub-history is), so the history is split per key and each key
  is checked on its own.
* Each key is checked with the search of Wing and Gong (1993) as refined by Lowe (2017), the
  approach Knossos and Porcupine take too. Every completed op contributes a *call* and a
  *return* event; the events, sorted by time, form a doubly-linked list. An op may be
  linearized next if it is *minimal*: its call comes before the first return still in the list
  (no remaining op finished before it started). The search walks the list from its head, takes
  the first minimal op the register model accepts in the current state, applies it, unlinks its
  two events and starts again from the head; when it meets a return event before finding such
  an op it backtracks (re-links the op it took last and tries the next candidate after it). It
  succeeds once every completed op is linearized. The search is a loop over an explicit stack,
  so long histories never hit the interpreter's recursion limit.
* Lowe's improvement: the configurations reached (set of linearized ops, register value) are
  remembered and never explored twice. Two orders of the same ops that leave the same value
  have the same futures, which cuts the factorial blow-up down to roughly "subsets of the
  concurrency window times values". The linearized set is a Python ``int`` used as a bitset.

Refinements on top of that (each keeps the search exact):

* A minimal completed op that leaves the value alone and is accepted now (a read of the current
  value, a failed cas) can always be linearized first, so it is taken without branching.
* Values that no op can tell apart (never returned by a completed read, never expected by a
  cas) are interchangeable: the cache treats them as one value.
* Ambiguous ops (see below) never return, so they would stay candidates forever and multiply
  the configurations; they are kept out of the list and handled sparingly. One may be taken
  once its call precedes the first return left in the list; completed candidates are tried
  before ambiguous ones; ambiguous ops that do the same thing are interchangeable, so only the
  earliest unused one of a kind is tried; a run of ambiguous ops is only taken right before a
  completed op that it enables (any linearization can be rearranged that way), starting with
  at most one write, its cas ops each changing the value; and a configuration is skipped when
  an explored one with the same completed ops, value and run start used fewer ambiguous ops
  (between runs, an unused write of *v* also counts as at least as good as an unused cas to
  *v*), since that one can do everything this one can.

Cost: a linearizable history is usually found almost greedily (a few configurations per op). A
history that is not linearizable is only rejected once every configuration up to the op that
cannot be placed has been ruled out; that stays fast without ambiguous ops, but many ambiguous
ops before the failure point (each may or may not have happened) can make it take much longer.

Conventions
-----------

* ``ret is None`` means the outcome is unknown (a timeout, a lost connection): the op may have
  taken effect at any instant after its call, or never. It is given a return time of +infinity;
  an ambiguous write or cas is never *required* to take effect, and an ambiguous cas is applied
  by the model without checking its reported output. Ambiguous reads constrain nothing and are
  dropped, as are ambiguous ops invoked after every completed op of the key has returned.
* Equal timestamps: a call at the same instant as another op's return counts as *concurrent*
  with it (calls sort before returns): a clock too coarse to order two events cannot make a
  correct history fail.
* Values are compared with ``==`` and must be hashable. ``None`` means "absent" (a NULL or
  missing row): a read that found nothing reports ``None``; ``initial=None`` starts absent.
* On failure the result names the key and the op at which the search got stuck: the earliest
  op that no linearization of what came before could get past, with the values the register
  could hold there and the completed ops concurrent with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import inf
from typing import Final

READ: Final = 0
WRITE: Final = 1
CAS: Final = 2
_KINDS: Final = {"read": READ, "write": WRITE, "cas": CAS}

# How the search reached the candidate it is looking at (see _KeyChecker.run).
_FRESH: Final = 0  # a new configuration: look for a forced move first
_FORCED: Final = 1  # a forced move: it has no alternative
_COMPLETED: Final = 2  # scanning the completed candidates
_AMBIGUOUS: Final = 3  # scanning the ambiguous candidates

# How many register values / concurrent ops a failure explanation lists at most.
_MAX_LISTED: Final = 6


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# "No ambiguous op taken since the last completed one" (distinct from every value).
_NO_RUN: Final = _Marker("<no run>")
# Any value that no op of the key reads or expects (in cache keys only).
_UNOBSERVED: Final = _Marker("<unobserved>")


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
    explanation names (the op the search could not get past first, then completed ops
    concurrent with it). ``states_explored``: configurations explored, summed over the keys
    checked.
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
    starting at ``initial`` (``None`` = absent). Keys are checked in order of first appearance;
    the first one that fails is reported. Raises ``ValueError`` on a malformed op."""
    by_key: dict[str | int, list[Op]] = {}
    for op in history:
        _validate(op)
        by_key.setdefault(op.key, []).append(op)
    explored = 0
    for key, ops in by_key.items():
        outcome = _KeyChecker(ops, initial).run()
        explored += outcome.states_explored
        if not outcome.ok:
            return Result(
                False, key, f"key {key!r}: {outcome.explanation}", explored, outcome.stuck
            )
    return Result(True, None, f"linearizable: {len(history)} ops on {len(by_key)} key(s)", explored)


def _validate(op: Op) -> None:
    if op.kind not in _KINDS:
        raise ValueError(f"unknown op kind {op.kind!r} (expected read, write or cas): {op!r}")
    if op.ret is not None and op.ret < op.call:
        raise ValueError(f"op returns before it is called: {op!r}")
    if op.kind == "cas":
        _cas_args(op)
        if op.ret is not None and not isinstance(op.output, bool):
            raise ValueError(f"a completed cas must report a bool output: {op!r}")


def _is_noop_cas(op: Op) -> bool:
    expected, new = _cas_args(op)
    return bool(expected == new)


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
            # An ambiguous op called after the last return can go last, where nothing sees
            # it; an ambiguous cas(v, v) changes nothing.
            kept = [
                op
                for op in kept
                if op.ret is not None
                or (op.call <= last_ret and not (op.kind == "cas" and _is_noop_cas(op)))
            ]
        self.ops = kept
        n = len(kept)
        # Per op: kind code, arguments (write: value; cas: expected, new), output, completed?
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
        # The values some op can tell apart: what completed reads returned, what cas expected.
        self.observable: set[object] = {
            self.out[i] for i in range(n) if self.completed[i] and self.kind[i] == READ
        }
        self.observable.update(self.arg1[i] for i in range(n) if self.kind[i] == CAS)

        # Ambiguous ops grouped by what they do (writing any unobserved value counts as the
        # same thing), each group in call order, with a -1 sentinel at the end.
        self.members: list[list[int]] = []
        group_of: dict[tuple[int, object, object], int] = {}
        for i in sorted(range(n), key=lambda i: kept[i].call):
            if self.completed[i]:
                continue
            written = self.arg1[i] if self.kind[i] == WRITE else self.arg2[i]
            if written not in self.observable:
                written = _UNOBSERVED
            what = (self.kind[i], self.arg1[i] if self.kind[i] == CAS else None, written)
            g = group_of.setdefault(what, len(self.members))
            if g == len(self.members):
                self.members.append([])
            self.members[g].append(i)
        for ops_of_group in self.members:
            ops_of_group.append(-1)
        self._pack_usage(group_of)

        # Events sorted by time; at equal times calls come first (concurrency wins). Entry 0
        # is the head sentinel, 1..m the events in order, m+1 the tail sentinel. Only the
        # completed ops' events are linked into the list; an ambiguous op (which never
        # returns) just has a call entry number, to compare with the first return in the list.
        events: list[tuple[float, int, int]] = [(op.call, 0, i) for i, op in enumerate(kept)]
        events += [(op.ret, 1, i) for i, op in enumerate(kept) if op.ret is not None]
        events.sort()
        size = len(events) + 2
        self.head = 0
        self.nxt = [0] * size
        self.prv = [0] * size
        self.op_of = [-1] * size
        # For a call entry in the list: the index of its return entry; -1 for the rest.
        self.match = [-1] * size
        self.call_entry = [0] * n
        last = self.head
        for pos, (_, is_return, i) in enumerate(events, start=1):
            self.op_of[pos] = i
            if is_return:
                self.match[self.call_entry[i]] = pos
            else:
                self.call_entry[i] = pos
                if not self.completed[i]:
                    continue
            self.nxt[last] = pos
            self.prv[pos] = last
            last = pos
        self.nxt[last] = size - 1
        self.prv[size - 1] = last

    def run(self) -> _KeyOutcome:
        nxt, prv, match, op_of = self.nxt, self.prv, self.match, self.op_of
        kind, arg1, arg2, out = self.kind, self.arg1, self.arg2, self.out
        members, observable = self.members, self.observable
        call_entry, dominates = self.call_entry, self._dominates
        head = self.head
        groups = len(members)
        used = [0] * groups  # per group of ambiguous ops: how many are linearized
        remaining = sum(self.completed)
        # (completed ops linearized, value, value before the open run of ambiguous ops) ->
        # the ambiguous usages it was explored with, none dominating another.
        cache: dict[tuple[int, object, object], list[int]] = {}
        explored = 0
        # (mode, call entry or group taken, first return entry then; value, run start and
        # usage before it)
        stack: list[tuple[int, int, int, object, object, int]] = []
        done = 0  # bitset of the completed ops linearized
        usage = 0  # how many ops of each group are linearized, packed (see _pack_usage)
        unit = self.unit
        state = self.initial
        run_start: object = _NO_RUN  # the value before the ambiguous ops taken since the
        # last completed op
        mode = _FRESH
        backtrack = False
        entry = head  # the candidate call entry (completed ops)
        g = 0  # the candidate group (ambiguous ops)
        first_return = 0  # while trying ambiguous ops: the first return entry in the list
        frontier = _Frontier(self)
        while remaining:
            if backtrack:
                if not stack:
                    return self._failure(frontier, explored)
                # Undo the last choice and go on with the next candidate after it.
                mode, taken, first_return, state, run_start, usage = stack.pop()
                if mode == _AMBIGUOUS:
                    used[taken] -= 1
                    g = taken + 1
                    backtrack = False
                    continue
                i = op_of[taken]
                done ^= 1 << i
                remaining += 1
                # Re-link in the reverse order of unlinking.
                ret_entry = match[taken]
                nxt[prv[ret_entry]] = ret_entry
                prv[nxt[ret_entry]] = ret_entry
                nxt[prv[taken]] = taken
                prv[nxt[taken]] = taken
                if mode != _FORCED:  # a forced move had no alternative: keep undoing
                    backtrack = False
                    entry = nxt[taken]
                continue
            if mode == _FRESH:
                # A minimal completed op that is accepted now and leaves the value alone (a
                # read, a failed cas) can always go first: take it without branching.
                mode = _COMPLETED
                entry = nxt[head]
                while match[entry] >= 0:
                    i = op_of[entry]
                    k = kind[i]
                    if k == READ:
                        if state == out[i] and (run_start is _NO_RUN or run_start != out[i]):
                            mode = _FORCED
                            break
                    elif k == CAS and not out[i] and state != arg1[i]:
                        if run_start is _NO_RUN or run_start == arg1[i]:
                            mode = _FORCED
                            break
                    entry = nxt[entry]
                if mode != _FORCED:
                    entry = nxt[head]
            if mode == _AMBIGUOUS:
                if g == groups:  # every candidate was tried: stuck at first_return
                    frontier.stuck(first_return, state)
                    backtrack = True
                    continue
                i = members[g][used[g]]
                if i < 0 or call_entry[i] > first_return:
                    g += 1  # none left in this group, or not called yet
                    continue
                # Ambiguous ops of one group are interchangeable: only the earliest unused
                # one is tried. A run starts with at most one write; its cas ops must change
                # the value.
                if kind[i] == WRITE:
                    new_state = arg1[i]
                    accepted = run_start is _NO_RUN and new_state != state
                else:
                    new_state = arg2[i]
                    accepted = state == arg1[i] and new_state != state
                new_run = state if run_start is _NO_RUN else run_start
                new_done = done
                new_usage = usage + unit[g]
                taken = g
            else:
                ret_entry = match[entry]
                if ret_entry < 0:  # a return entry: every completed candidate was tried
                    if groups:
                        mode = _AMBIGUOUS
                        g = 0
                        first_return = entry
                        continue
                    frontier.stuck(entry, state)
                    backtrack = True
                    continue
                i = op_of[entry]
                k = kind[i]
                if k == READ:
                    accepted = state == out[i]
                    new_state = state
                    enabled = run_start is _NO_RUN or run_start != out[i]
                elif k == WRITE:
                    accepted = True
                    new_state = arg1[i]
                    enabled = run_start is _NO_RUN
                else:
                    succeeded = state == arg1[i]
                    accepted = succeeded == out[i]
                    new_state = arg2[i] if succeeded else state
                    enabled = run_start is _NO_RUN or (run_start == arg1[i]) != out[i]
                # Right after a run of ambiguous ops, only an op the run enables may come.
                accepted = accepted and enabled
                new_run = _NO_RUN
                new_done = done | (1 << i)
                new_usage = usage
                taken = entry
            if accepted:
                # Values no op can observe behave alike: one cache entry covers them all.
                config = (
                    new_done,
                    new_state if new_state in observable else _UNOBSERVED,
                    new_run if new_run is _NO_RUN or new_run in observable else _UNOBSERVED,
                )
                seen = cache.get(config)
                closed = new_run is _NO_RUN
                if seen is None:
                    cache[config] = [new_usage]
                    fresh = True
                elif any(not old or dominates(old, new_usage, closed) for old in seen):
                    fresh = False
                else:
                    seen[:] = [old for old in seen if not dominates(new_usage, old, closed)]
                    seen.append(new_usage)
                    fresh = True
                if fresh:
                    explored += 1
                    stack.append((mode, taken, first_return, state, run_start, usage))
                    done, usage, state, run_start = new_done, new_usage, new_state, new_run
                    if mode == _AMBIGUOUS:
                        used[g] += 1
                    else:
                        # Unlink the call entry, then its return entry.
                        ret_entry = match[entry]
                        nxt[prv[entry]] = nxt[entry]
                        prv[nxt[entry]] = prv[entry]
                        nxt[prv[ret_entry]] = nxt[ret_entry]
                        prv[nxt[ret_entry]] = prv[ret_entry]
                        remaining -= 1
                    mode = _FRESH
                    continue
            if mode == _FORCED:
                backtrack = True  # explored before: this configuration leads nowhere
            elif mode == _AMBIGUOUS:
                g += 1
            else:
                entry = nxt[entry]
        return _KeyOutcome(True, "linearizable", explored, ())

    def _pack_usage(self, group_of: dict[tuple[int, object, object], int]) -> None:
        """Sets up the packed form of "how many ops of each group are linearized": one int,
        with a field per group wide enough for the group's size plus a guard bit, so that
        comparing two usages field by field is a few int operations."""
        width = max((len(m) for m in self.members), default=1).bit_length() + 1
        self.field_mask = (1 << width) - 1
        self.unit = [1 << (g * width) for g in range(len(self.members))]
        guard = 1 << (width - 1)
        self.guards = sum(unit * guard for unit in self.unit)
        # Between runs, an unused write of v can stand in for an unused cas to v: per such v,
        # the write group's shift and the shifts of the cas groups to v.
        self.stand_ins: list[tuple[int, list[int]]] = []
        cas_to: dict[object, list[int]] = {}
        for (kind, _, written), g in group_of.items():
            if kind == CAS:
                cas_to.setdefault(written, []).append(g)
        plain = set(range(len(self.members)))  # groups compared field by field
        for written, cas_groups in cas_to.items():
            write_group = group_of.get((WRITE, None, written))
            if write_group is not None:
                shifts = [c * width for c in cas_groups]
                self.stand_ins.append((write_group * width, shifts))
                plain.difference_update(cas_groups)
        self.plain_guards = sum(self.unit[g] * guard for g in plain)
        self.plain_mask = sum(self.unit[g] * self.field_mask for g in plain)

    def _dominates(self, a: int, b: int, closed: bool) -> bool:
        """Whether a configuration that linearized the ambiguous ops counted by ``a`` can do
        everything one with ``b`` can (same completed ops, value and run start): it used no
        more of any group. Between runs (``closed``) an unused write of *v* can also stand in
        for a cas to *v* that ``a`` used more of; inside a run it cannot (a run has at most one
        write, first)."""
        if not a:
            return True
        if not closed or not self.stand_ins:
            guards = self.guards
            return ((b | guards) - a) & guards == guards
        guards, mask, field = self.plain_guards, self.plain_mask, self.field_mask
        if (((b & mask) | guards) - (a & mask)) & guards != guards:
            return False
        for write_shift, cas_shifts in self.stand_ins:
            spare = ((b >> write_shift) & field) - ((a >> write_shift) & field)
            for shift in cas_shifts:
                spare -= max(0, ((a >> shift) & field) - ((b >> shift) & field))
            if spare < 0:
                return False
        return True

    def _failure(self, frontier: _Frontier, explored: int) -> _KeyOutcome:
        entry = frontier.entry
        stuck_index = self.op_of[entry]
        stuck = self.ops[stuck_index]
        stuck_ret = inf if stuck.ret is None else stuck.ret
        before = sum(1 for op in self.ops if op.ret is not None and op.ret < stuck_ret)
        states = frontier.states
        shown = sorted((repr(s) for s in states[:_MAX_LISTED]), key=lambda r: (len(r), r))
        if len(states) > _MAX_LISTED:
            shown.append("...")
        concurrent = [self.ops[i] for i in frontier.candidates if i != stuck_index]
        ambiguous = sum(
            1 for i, call in enumerate(self.call_entry) if not self.completed[i] and call < entry
        )
        listed = concurrent[:_MAX_LISTED]
        text = (
            f"cannot linearize {describe(stuck)}: whatever order the {before} op(s) that "
            f"returned before it take (with those concurrent with it), the register then holds "
            f"one of {{{', '.join(shown)}}}"
        )
        if listed:
            more = len(concurrent) - len(listed)
            text += "; concurrent: " + "; ".join(describe(op) for op in listed)
            text += f" (+{more} more)" if more else ""
        if ambiguous:
            text += f"; {ambiguous} ambiguous op(s) called before it may have taken effect"
        return _KeyOutcome(False, text, explored, (stuck, *listed))


class _Frontier:
    """The furthest return entry the search got stuck at: no linearization it tried got past
    that op. Keeps the values the register held there and the completed ops that were
    candidates then, for the failure explanation."""

    def __init__(self, checker: _KeyChecker) -> None:
        self.checker = checker
        self.entry = -1
        self.states: list[object] = []
        self.candidates: list[int] = []

    def stuck(self, entry: int, state: object) -> None:
        if entry > self.entry:
            self.entry = entry
            self.states = [state]
            self.candidates = []
            checker = self.checker
            at = checker.nxt[checker.head]
            while at != entry:
                self.candidates.append(checker.op_of[at])
                at = checker.nxt[at]
        elif entry == self.entry and len(self.states) <= _MAX_LISTED:
            if all(state != other for other in self.states):
                self.states.append(state)

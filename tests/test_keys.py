"""storage.keys: the byte order of encoded keys is SQLite's ORDER BY order (issue 4, item 2).

The oracle is the SQLite every replica runs (apsw): values are stored in a column without
affinity, sorted with ORDER BY, and compared with the order of their encodings.
"""

from __future__ import annotations

import doctest
import math
import struct
import sys
from collections.abc import Sequence

import apsw
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import storage.keys
from storage import SqlValue
from storage.keys import (
    decode_key,
    encode_key,
    encode_prefix,
    encode_value,
    next_key,
    prefix_end,
)

FAST = settings(deadline=None, max_examples=300)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT_EDGES = [
    INT64_MIN,
    INT64_MIN + 1,
    INT64_MAX,
    INT64_MAX - 1,
    -(2**53) - 1,
    -(2**53),
    2**53,
    2**53 + 1,
    2**62 + 1,
    -1,
    0,
    1,
]
FLOAT_EDGES = [
    -0.0,
    0.0,
    math.inf,
    -math.inf,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    sys.float_info.max,
    -sys.float_info.max,
    float(2**53),
    float(2**63),
    -float(2**63),
    float(2**64),
    0.5,
    -1.5,
    1.0000000000000002,
]

ints = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(INT_EDGES)
floats = st.floats(allow_nan=False) | st.sampled_from(FLOAT_EDGES)
# Integers next to a float's value, where rounding in a naive encoding would mis-order them.
near_ints = st.tuples(st.floats(min_value=-(2.0**63), max_value=2.0**63), st.integers(-2, 2)).map(
    lambda p: max(INT64_MIN, min(INT64_MAX, int(p[0]) + p[1]))
)
texts = st.text(
    alphabet=st.sampled_from("\x00\x01a\xffé€😀") | st.characters(codec="utf-8"), max_size=8
)
blobs = st.binary(max_size=8) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=5).map(bytes)
values: st.SearchStrategy[SqlValue] = st.one_of(st.none(), ints, near_ints, floats, texts, blobs)
# A small pool so that composite keys often tie on leading components.
pooled: st.SearchStrategy[SqlValue] = st.sampled_from(
    [None, 0, 0.0, -0.0, 2, 2.0, 2.5, -1, "", "a", "a\x00", b"", b"\x00"]
)
components = pooled | values


def _sqlite() -> apsw.Connection:
    return apsw.Connection(":memory:")


def _sqlite_sorted(rows: Sequence[Sequence[SqlValue]], ncols: int) -> list[tuple[SqlValue, ...]]:
    """SQLite's ORDER BY c0, c1, ... of ``rows`` in a table whose columns have no affinity."""
    db = _sqlite()
    cols = ", ".join(f"c{i}" for i in range(ncols))
    db.execute(f"CREATE TABLE v({cols})")
    marks = ", ".join("?" * ncols)
    db.executemany(f"INSERT INTO v VALUES ({marks})", [tuple(r) for r in rows])
    return [tuple(r) for r in db.execute(f"SELECT {cols} FROM v ORDER BY {cols}")]


def _sqlite_cmp(a: SqlValue, b: SqlValue) -> int:
    """-1, 0 or 1 as SQLite compares two values (no affinity applies between bound values)."""
    db = _sqlite()
    row = next(db.execute("SELECT ? < ?, ? = ?, ? IS NULL, ? IS NULL", (a, b, a, b, a, b)))
    lt, eq, a_null, b_null = row
    if a_null or b_null:  # NULL compares as smallest and equal to NULL in ORDER BY
        return (1 if not a_null else 0) - (1 if not b_null else 0)
    return -1 if lt else (0 if eq else 1)


def _cmp(x: bytes, y: bytes) -> int:
    return (x > y) - (x < y)


def _equivalent(a: SqlValue, b: SqlValue) -> bool:
    """Equal under SQLite's comparison: numbers by exact value, others by type and content."""
    if isinstance(a, float) and math.isnan(a):
        a = None  # SQLite stores NaN as NULL
    if isinstance(b, float) and math.isnan(b):
        b = None
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num):
        return a == b  # Python compares int and float exactly
    return type(a) is type(b) and a == b


def _identical(a: SqlValue, b: SqlValue) -> bool:
    """Same type and value; floats bit-for-bit (so -0.0 differs from 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    return type(a) is type(b) and a == b


def _normalise(v: SqlValue) -> SqlValue:
    return None if isinstance(v, float) and math.isnan(v) else v


def test_docstring_examples_run() -> None:
    assert doctest.testmod(storage.keys).failed == 0


@FAST
@given(st.lists(values | st.just(math.nan), max_size=25))
def test_sorting_by_encoded_value_is_sqlite_order_by(vals: list[SqlValue]) -> None:
    theirs = [r[0] for r in _sqlite_sorted([(v,) for v in vals], 1)]
    ours = sorted(vals, key=encode_value)
    assert len(ours) == len(theirs)
    # Numerically equal int/real values may tie in either order: compare by equivalence.
    for mine, sqlites in zip(ours, theirs, strict=True):
        assert _equivalent(mine, sqlites), (ours, theirs)


def _clip(i: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, i))


# Pairs of numbers a few units (or ulps) apart: where a lossy numeric encoding would collapse or
# mis-order them (large ints beyond 2**53, an int next to a float of nearly the same value).
near_pairs = st.tuples(
    st.floats(min_value=-(2.0**63), max_value=2.0**63, allow_subnormal=True),
    st.integers(-3, 3),
    st.integers(-3, 3),
    st.booleans(),
).map(
    lambda p: (
        (_clip(int(p[0]) + p[1]), _clip(int(p[0]) + p[2]))
        if p[3]
        else (p[0], _clip(int(p[0]) + p[1]))
    )
)


@FAST
@given(st.tuples(values, values) | near_pairs)
@example((INT64_MAX, INT64_MAX - 1))
@example((2**62 + 1, 2**62))
@example((2**53 + 1, float(2**53)))
@example((INT64_MAX, float(2**63)))
@example((INT64_MIN, -float(2**63)))
@example((-0.0, 0))
@example(("a", "a\x00"))
@example((b"a\x00", b"a\x01"))
@example((math.inf, ""))
def test_pairs_compare_as_sqlite_compares(pair: tuple[SqlValue, SqlValue]) -> None:
    a, b = pair
    expected = _sqlite_cmp(a, b)
    # The prefix (no type trailer) is equal exactly when SQLite says equal.
    assert _cmp(encode_prefix([a]), encode_prefix([b])) == expected
    if expected:
        assert _cmp(encode_value(a), encode_value(b)) == expected
    elif not _identical(a, b):
        # 2 vs 2.0: a deterministic type tiebreak, never equality (the bytes must round-trip).
        assert encode_value(a) != encode_value(b)


@FAST
@given(st.lists(st.tuples(components, components, components), max_size=20))
def test_composite_keys_sort_as_sqlite_order_by_columns(rows: list[tuple[SqlValue, ...]]) -> None:
    theirs = _sqlite_sorted(rows, 3)
    ours = sorted(rows, key=encode_key)
    for mine, sqlites in zip(ours, theirs, strict=True):
        assert all(_equivalent(x, y) for x, y in zip(mine, sqlites, strict=True)), (ours, theirs)


@FAST
@given(st.lists(components, max_size=4), st.lists(components, max_size=4))
def test_composite_prefix_compares_like_the_tuple(x: list[SqlValue], y: list[SqlValue]) -> None:
    expected = 0
    for a, b in zip(x, y, strict=False):
        expected = _sqlite_cmp(a, b)
        if expected:
            break
    else:
        expected = (len(x) > len(y)) - (len(x) < len(y))
    assert _cmp(encode_prefix(x), encode_prefix(y)) == expected
    if expected:
        assert _cmp(encode_key(x), encode_key(y)) == expected


@FAST
@given(st.lists(values | st.just(math.nan), max_size=5))
@example([-0.0, 0.0, 0, 2, 2.0, math.inf, -math.inf, 5e-324])
@example([INT64_MIN, INT64_MAX, "\x00", b"\x00\xff", "", b"", None])
def test_decode_round_trips_type_and_value(vals: list[SqlValue]) -> None:
    got = decode_key(encode_key(vals))
    assert len(got) == len(vals)
    for before, after in zip(vals, got, strict=True):
        assert _identical(_normalise(before), after), (vals, got)
    assert decode_key(encode_value(vals[0]) if vals else b"") == (
        (_normalise(vals[0]),) if vals else ()
    )


@FAST
@given(st.lists(components, min_size=1, max_size=3), st.lists(components, max_size=3))
def test_a_key_sorts_before_its_extensions(head: list[SqlValue], tail: list[SqlValue]) -> None:
    extended = encode_key(head + tail)
    if tail:
        assert encode_key(head) < extended
    prefix = encode_prefix(head)
    end = prefix_end(prefix)
    assert prefix <= extended
    assert end == b"" or extended < end
    # Keys SQLite deems equal on the head (2 vs 2.0) share the prefix, so a split at a prefix
    # never separates them.
    retyped = [float(v) if isinstance(v, int) and abs(v) < 2**53 else v for v in head]
    assert encode_prefix(retyped) == prefix


@FAST
@given(st.lists(components, min_size=1, max_size=3), st.lists(components, min_size=1, max_size=3))
def test_prefix_end_bounds_exactly_the_keys_with_that_head(
    head: list[SqlValue], other: list[SqlValue]
) -> None:
    prefix = encode_prefix(head)
    key = encode_key(other)
    inside = prefix <= key < prefix_end(prefix)
    same_head = len(other) >= len(head) and all(
        _equivalent(a, b) for a, b in zip(head, other, strict=False)
    )
    assert inside == same_head


small_bytes = st.binary(max_size=4) | st.lists(st.sampled_from([0, 1, 0xFE, 0xFF]), max_size=4).map(
    bytes
)


@FAST
@given(small_bytes, small_bytes)
def test_prefix_end_is_the_least_upper_bound_of_a_prefix(k: bytes, s: bytes) -> None:
    end = prefix_end(k)
    if end == b"":  # +infinity: k is empty or all 0xFF
        assert k.strip(b"\xff") == b""
        return
    assert k < end
    assert s.startswith(k) == (k <= s < end)


@FAST
@given(small_bytes, small_bytes)
def test_next_key_is_the_immediate_successor(k: bytes, s: bytes) -> None:
    assert k < next_key(k)
    assert not (k < s < next_key(k))


@FAST
@given(
    st.binary(max_size=24)
    | st.builds(
        lambda v, cut: encode_key(v)[:cut], st.lists(values, max_size=3), st.integers(0, 40)
    )
)
def test_decoding_garbage_raises_value_error_or_round_trips(raw: bytes) -> None:
    try:
        got = decode_key(raw)
    except ValueError:
        return
    assert encode_key(got) == raw or encode_prefix(got) == raw


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (2**63, ValueError),
        (INT64_MIN - 1, ValueError),
        ("\ud800", ValueError),
        (object(), TypeError),
    ],
)
def test_values_sqlite_cannot_store_are_rejected(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_key([value])  # type: ignore[list-item]


def test_nan_is_stored_as_null_by_sqlite_and_encodes_as_null() -> None:
    db = _sqlite()
    db.execute("CREATE TABLE v(x)")
    db.execute("INSERT INTO v VALUES (?)", (math.nan,))
    assert list(db.execute("SELECT x FROM v")) == [(None,)]
    assert encode_value(math.nan) == encode_value(None)


def test_booleans_encode_as_the_integers_sqlite_stores() -> None:
    assert encode_value(True) == encode_value(1)
    assert decode_key(encode_value(False)) == (0,)


def test_integer_sorts_before_equal_real_by_type_tiebreak() -> None:
    assert encode_value(2) < encode_value(2.0)
    assert encode_value(0) < encode_value(0.0) < encode_value(-0.0)
    assert encode_key([2.0, "a"]) < encode_key([2, "b"])  # SQLite: 2 = 2.0, then 'a' < 'b'

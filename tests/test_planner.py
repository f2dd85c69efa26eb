"""Planning over ranges (pure logic): key intervals from WHERE clauses, INSERT keys, partial
aggregates. The system tests (test_splits, test_differential) run the same paths for real."""

from __future__ import annotations

import doctest
import math
import sqlite3

import pytest
from sqlglot import exp

import router.catalog
import sqlfront.aggregates
import sqlfront.gateway
import sqlfront.planner
import storage.spans
from sqlfront.aggregates import PARTIAL_TABLE, plan_aggregate
from sqlfront.dialect import parse
from sqlfront.planner import Params, insert_keys, key_intervals, overlaps, table_shape
from storage.keys import encode_prefix


@pytest.mark.parametrize(
    "module",
    [sqlfront.aggregates, sqlfront.planner, sqlfront.gateway, storage.spans, router.catalog],
)
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


INT_TABLE = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"
TEXT_TABLE = "CREATE TABLE u(name TEXT PRIMARY KEY, n INT) WITHOUT ROWID"
SPANS = [
    (b"", encode_prefix([10])),
    (encode_prefix([10]), encode_prefix([20])),
    (encode_prefix([20]), b""),
]


def _touched(create: str, name: str, where: str, params: tuple[object, ...] = ()) -> list[int]:
    shape = table_shape(name, create)
    tree = parse(f"SELECT * FROM {name} WHERE {where}")[0]
    p = Params(list(params), {})  # type: ignore[arg-type]
    p.number(tree)
    intervals = key_intervals(tree.args.get("where"), shape, p)
    return [i for i, (s, e) in enumerate(SPANS) if overlaps(s, e, intervals)]


@pytest.mark.parametrize(
    ("where", "params", "ranges"),
    [
        ("id = 5", (), [0]),
        ("id = 10", (), [1]),
        ("rowid = 25", (), [2]),
        ("id IN (1, 25)", (), [0, 2]),
        ("id BETWEEN 12 AND 19", (), [1]),
        ("id >= 10 AND id < 20", (), [1]),
        ("id > 19", (), [1, 2]),
        ("id < 10", (), [0]),
        ("19 < id", (), [1, 2]),
        ("id = ?", (15,), [1]),
        ("v = 'x' AND id = ?", (25,), [2]),
        ("id = '15'", (), [0, 1, 2]),  # text vs INTEGER affinity: SQLite converts; no narrowing
        ("id = 5 OR id = 25", (), [0, 1, 2]),  # OR: not analysed
        ("id = 5 AND id = 25", (), []),  # contradiction: no range can hold a row
        ("id = ?", (), [0, 1, 2]),  # unbound
    ],
)
def test_key_intervals_pick_ranges(
    where: str, params: tuple[object, ...], ranges: list[int]
) -> None:
    assert _touched(INT_TABLE, "t", where, params) == ranges


def test_text_keys_and_collations() -> None:
    spans_text = _touched(TEXT_TABLE, "u", "name = 'a'")
    assert spans_text == [2]  # text sorts after every number
    nocase = "CREATE TABLE c(name TEXT PRIMARY KEY COLLATE NOCASE)"
    assert not table_shape("c", nocase).binary_key
    assert _touched(nocase, "c", "name = 'a'") == [0, 1, 2]


def test_insert_keys_use_sqlite_affinity_and_defaults() -> None:
    shape = table_shape("t", INT_TABLE)
    keys = insert_keys(
        shape, INT_TABLE, "INSERT INTO t VALUES ('7', 'a'), (8.0, 'b')", None, (), True
    )
    assert keys == [encode_prefix([7]), encode_prefix([8])]
    assert insert_keys(shape, INT_TABLE, "INSERT INTO t(v) VALUES ('a')", None, (), False) == [None]
    err = insert_keys(shape, INT_TABLE, "INSERT INTO t VALUES (1, 'a'), (1, 'b')", None, (), True)
    assert isinstance(err, str) and "UNIQUE" in err


def _run_split(sql: str, rows: list[tuple[object, ...]], chunks: int) -> list[tuple[object, ...]]:
    """Run ``sql`` the distributed way (partials per chunk of rows, merged) in plain SQLite."""
    tree = parse(sql)[0]
    assert isinstance(tree, exp.Select)
    plan = plan_aggregate(tree)
    assert plan is not None, sql
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE {PARTIAL_TABLE}({', '.join(plan.partial_columns)})")
    for i in range(chunks):
        part = sqlite3.connect(":memory:")
        part.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, g, x, y)")
        part.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows[i::chunks])
        partial = part.execute(plan.partial_sql).fetchall()
        marks = ", ".join("?" * len(plan.partial_columns))
        db.executemany(f"INSERT INTO {PARTIAL_TABLE} VALUES ({marks})", partial)
    return db.execute(plan.final_sql).fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*), count(x), sum(x), total(x), min(y), max(y), avg(x) FROM t",
        "SELECT g, count(*), sum(x), avg(y) FROM t GROUP BY g ORDER BY g",
        "SELECT g % 2, max(x) - min(x) FROM t WHERE x > 3 GROUP BY g % 2 ORDER BY 1",
        "SELECT g, count(*) FROM t GROUP BY 1 HAVING count(*) > 3 ORDER BY 2 DESC, 1 LIMIT 2",
        "SELECT count(*), sum(x), avg(y) FROM t WHERE x > 1000",  # no rows anywhere
    ],
)
def test_partial_aggregates_equal_one_scan(sql: str) -> None:
    rows = [(i, i % 4, i * 3 if i % 5 else None, i / 7 if i % 3 else "t") for i in range(1, 60)]
    whole = sqlite3.connect(":memory:")
    whole.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, g, x, y)")
    whole.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    expected = whole.execute(sql).fetchall()
    for chunks in (1, 3, 7):
        got = _run_split(sql, rows, chunks)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                if isinstance(y, float):
                    assert isinstance(x, float) and math.isclose(x, y, rel_tol=1e-12), (a, b)
                else:
                    assert x == y and type(x) is type(y), (a, b)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(DISTINCT x) FROM t",
        "SELECT group_concat(x) FROM t",
        "SELECT x, max(y) FROM t",  # bare column: SQLite picks the max row's x
        "SELECT g, count(*) AS n FROM t GROUP BY g HAVING n > 1",
        "SELECT sum(x) OVER () FROM t",
        "SELECT count(*) FROM t WHERE x = ?",
        "SELECT id FROM t",
    ],
)
def test_not_split(sql: str) -> None:
    tree = parse(sql)[0]
    assert isinstance(tree, exp.Select)
    assert plan_aggregate(tree) is None

"""Deterministic writes (sqlfront/rewrite.py): every replica must compute the same rows.

The reference for each time rewrite is SQLite itself running the *original* statement under a
VFS whose clock is pinned to the gateway's ``now``; the rewritten text runs on a normal clock.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator

import apsw
import pytest
from sqlglot import exp

from sqlfront.dialect import SqlError, parse
from sqlfront.rewrite import (
    fill_defaults,
    nondeterministic_defaults,
    rewrite_nondeterministic,
    sqlite_now,
    to_sql,
)
from storage.sqlstate import FEATURE_NOT_SUPPORTED

NOW = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.UTC)
_UNIX_EPOCH_JULIAN_MS = 210_866_760_000_000


class _PinnedClockVFS(apsw.VFS):
    """The default VFS with ``xCurrentTimeInt64`` frozen, so SQLite's 'now' is ``NOW``."""

    def __init__(self, name: str, now: datetime.datetime) -> None:
        self.ms = int(now.timestamp() * 1000) + _UNIX_EPOCH_JULIAN_MS
        super().__init__(name, base="")

    def xCurrentTimeInt64(self) -> int:  # noqa: N802 - apsw's name
        return self.ms


@pytest.fixture(scope="module")
def pinned_vfs() -> Iterator[str]:
    vfs = _PinnedClockVFS("atlasql-test-pinned", NOW)
    yield "atlasql-test-pinned"
    vfs.unregister()


TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, v)"


def _rows(sql: str, *, vfs: str | None = None, schema: str = TABLE) -> list[tuple[object, ...]]:
    connection = apsw.Connection(":memory:", vfs=vfs) if vfs else apsw.Connection(":memory:")
    connection.execute(schema)
    connection.execute(sql)
    return list(connection.execute("SELECT * FROM t ORDER BY 1"))


def _rewrite(sql: str, seed: int = 42) -> tuple[str, bool]:
    [statement] = parse(sql)
    new, changed = rewrite_nondeterministic(statement, now=NOW, rng=random.Random(seed))
    return (to_sql(new) if changed else sql), changed


def test_pinned_clock_vfs_really_pins_now(pinned_vfs: str) -> None:
    connection = apsw.Connection(":memory:", vfs=pinned_vfs)
    [(now,)] = list(connection.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    assert now == sqlite_now(NOW) == "2024-02-29 23:59:58.123"


def test_random_rewrite_is_reproducible_and_replicas_agree() -> None:
    sql = "INSERT INTO t VALUES (1, random()), (2, random() % 10), (3, -random())"
    first, changed = _rewrite(sql)
    second, _ = _rewrite(sql)
    assert changed and first == second
    assert "RANDOM" not in first.upper()
    replica_a, replica_b = _rows(first), _rows(first)
    assert replica_a == replica_b
    assert all(isinstance(v, int) for _, v in replica_a)


def test_random_covers_the_signed_64_bit_range() -> None:
    values = [
        _rows(_rewrite("INSERT INTO t VALUES (1, random())", seed)[0])[0][1] for seed in range(40)
    ]
    assert all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in values)
    assert min(values) < 0 < max(values)


def test_extreme_random_values_stay_integers() -> None:
    class Extremes(random.Random):
        def randint(self, a: int, b: int) -> int:
            return a

    [statement] = parse("INSERT INTO t VALUES (1, random()), (2, 0 - random())")
    new, _ = rewrite_nondeterministic(statement, now=NOW, rng=Extremes())
    rows = _rows(to_sql(new))
    assert rows[0] == (1, -(2**63))
    assert isinstance(rows[1][1], float)  # 0 - INT64_MIN overflows to REAL, as in SQLite


def test_randomblob_becomes_a_blob_literal_of_the_requested_size() -> None:
    sql = "INSERT INTO t VALUES (1, randomblob(16)), (2, randomblob(0)), (3, hex(randomblob(2)))"
    rewritten, changed = _rewrite(sql)
    assert changed and "X'" in rewritten.upper()
    rows = _rows(rewritten)
    assert rows == _rows(rewritten)
    assert [len(rows[0][1]), len(rows[1][1]), len(rows[2][1])] == [16, 1, 4]
    assert isinstance(rows[0][1], bytes)


def test_randomblob_of_a_column_is_rejected() -> None:
    with pytest.raises(SqlError) as caught:
        _rewrite("UPDATE t SET v = randomblob(id)")
    assert caught.value.code == FEATURE_NOT_SUPPORTED
    assert "randomblob" in caught.value.message


@pytest.mark.parametrize(
    "call",
    [
        "date('now')",
        "date()",
        "time('NOW')",
        "datetime('now', '+1 day')",
        "datetime()",
        "julianday('now')",
        "unixepoch('now')",
        "unixepoch()",
        "strftime('%Y-%m-%d %H:%M:%f')",
        "strftime('%s', 'now', 'start of month')",
        "timediff('now', '2024-01-01')",
        "CURRENT_TIMESTAMP",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "datetime(julianday('now') + random() * 0)",
    ],
)
def test_time_rewrite_gives_what_sqlite_computes_at_the_gateway_time(
    call: str, pinned_vfs: str
) -> None:
    sql = f"INSERT INTO t VALUES (1, {call})"
    rewritten, changed = _rewrite(sql)
    assert changed
    assert "'now'" not in rewritten.lower() and "CURRENT_" not in rewritten
    assert _rows(rewritten) == _rows(sql, vfs=pinned_vfs)


def test_rewrite_reaches_every_clause_of_a_write(pinned_vfs: str) -> None:
    schema = TABLE + "; CREATE TABLE log (at, id); INSERT INTO t VALUES (1, 'x'), (2, 'y')"
    sql = (
        "WITH c AS (SELECT date('now') AS d) "
        "INSERT INTO t (id, v) SELECT 3, d FROM c WHERE date('now') > '2000-01-01' "
        "ON CONFLICT (id) DO UPDATE SET v = datetime('now') RETURNING id, time('now')"
    )
    rewritten, changed = _rewrite(sql)
    assert changed and "'now'" not in rewritten
    assert _rows(rewritten, schema=schema) == _rows(sql, vfs=pinned_vfs, schema=schema)
    update = "UPDATE t SET v = CURRENT_TIMESTAMP WHERE id IN (SELECT id FROM t WHERE v < date())"
    rewritten, _ = _rewrite(update)
    assert _rows(rewritten, schema=schema) == _rows(update, vfs=pinned_vfs, schema=schema)


def test_deterministic_statement_is_not_regenerated() -> None:
    [statement] = parse("insert into t values (1, date('2024-01-01', '+1 day'))")
    new, changed = rewrite_nondeterministic(statement, now=NOW, rng=random.Random(0))
    assert not changed and new is statement


def test_localtime_over_a_column_is_rejected() -> None:
    with pytest.raises(SqlError) as caught:
        _rewrite("UPDATE t SET v = datetime(v, 'localtime')")
    assert caught.value.code == FEATURE_NOT_SUPPORTED
    assert "localtime" in caught.value.message


def test_localtime_over_literals_is_evaluated_at_the_gateway() -> None:
    rewritten, changed = _rewrite("INSERT INTO t VALUES (1, datetime('now', 'localtime'))")
    assert changed
    assert "localtime" not in rewritten and "DATETIME" not in rewritten.upper()
    [(_, value)] = _rows(rewritten)
    assert isinstance(value, str) and len(value) == 19


@pytest.mark.parametrize("function", ["changes", "total_changes", "last_insert_rowid"])
def test_connection_dependent_functions_are_rejected(function: str) -> None:
    with pytest.raises(SqlError) as caught:
        _rewrite(f"INSERT INTO t VALUES (1, {function}())")
    assert caught.value.code == FEATURE_NOT_SUPPORTED
    assert function in caught.value.message


def test_column_defaults_and_views_are_left_alone() -> None:
    for sql in [
        "CREATE TABLE u (a DEFAULT CURRENT_TIMESTAMP, b DEFAULT (random()))",
        "CREATE VIEW v AS SELECT random(), date('now')",
    ]:
        [statement] = parse(sql)
        assert rewrite_nondeterministic(statement, now=NOW, rng=random.Random(0))[1] is False


def test_naive_now_is_refused() -> None:
    with pytest.raises(SqlError):
        sqlite_now(datetime.datetime(2024, 1, 1))


SCHEMA = (
    "CREATE TABLE e (id INTEGER PRIMARY KEY, name TEXT, n INT DEFAULT 7, "
    "created TEXT DEFAULT CURRENT_TIMESTAMP, day DEFAULT (date('now', '+1 day')), "
    "token BLOB DEFAULT (randomblob(8)), r INT DEFAULT (abs(random()) % 100))"
)
COLUMNS = ["id", "name", "n", "created", "day", "token", "r"]


def test_nondeterministic_defaults_are_found() -> None:
    assert nondeterministic_defaults(SCHEMA) == {
        "created": "CURRENT_TIMESTAMP",
        "day": "(DATE('now', '+1 day'))",
        "token": "(RANDOMBLOB(8))",
        "r": "(ABS(RANDOM()) % 100)",
    }
    assert nondeterministic_defaults("CREATE TABLE x (a DEFAULT 1, b) WITHOUT ROWID") == {}


def _filled(sql: str, seed: int = 3) -> tuple[str, bool]:
    [statement] = parse(sql)
    assert isinstance(statement, exp.Insert)
    new, changed = fill_defaults(
        statement, COLUMNS, nondeterministic_defaults(SCHEMA), now=NOW, rng=random.Random(seed)
    )
    return (to_sql(new) if changed else sql), changed


def _e_rows(sql: str, *, vfs: str | None = None) -> list[tuple[object, ...]]:
    connection = apsw.Connection(":memory:", vfs=vfs) if vfs else apsw.Connection(":memory:")
    connection.execute(SCHEMA + "; CREATE TABLE src (x)")
    connection.execute("INSERT INTO src VALUES ('a'), ('b')")
    connection.execute(sql)
    return list(connection.execute("SELECT * FROM e ORDER BY id"))


def test_insert_with_column_list_gets_defaults_filled_per_row() -> None:
    filled, changed = _filled("INSERT INTO e (id, name) VALUES (1, 'a'), (2, 'b')")
    assert changed
    assert filled == _filled("INSERT INTO e (id, name) VALUES (1, 'a'), (2, 'b')")[0]
    rows = _e_rows(filled)
    assert rows == _e_rows(filled)
    assert [row[:5] for row in rows] == [
        (1, "a", 7, "2024-02-29 23:59:58", "2024-03-01"),
        (2, "b", 7, "2024-02-29 23:59:58", "2024-03-01"),
    ]
    assert rows[0][5] != rows[1][5] and len(rows[0][5]) == 8  # each row its own random value


def test_explicit_columns_are_not_overridden() -> None:
    sql = "INSERT INTO e (id, created, day, token, r) VALUES (1, 'c', 'd', x'00', 5)"
    assert _filled(sql) == (sql, False)
    assert _filled("INSERT INTO e VALUES (1, 'a', 1, 'c', 'd', x'00', 5)")[1] is False


def test_default_values_becomes_explicit(pinned_vfs: str) -> None:
    filled, changed = _filled("INSERT INTO e DEFAULT VALUES")
    assert changed and "DEFAULT VALUES" not in filled
    [row] = _e_rows(filled)
    [expected] = _e_rows("INSERT INTO e DEFAULT VALUES", vfs=pinned_vfs)
    assert row[:5] == expected[:5]


def test_insert_select_with_random_default_is_rejected() -> None:
    with pytest.raises(SqlError) as caught:
        _filled("INSERT INTO e (name) SELECT x FROM src")
    assert caught.value.code == FEATURE_NOT_SUPPORTED


def test_insert_select_with_time_defaults_appends_columns(pinned_vfs: str) -> None:
    sql = "INSERT INTO e (name, token, r) SELECT x, x'01', 1 FROM src"
    filled, changed = _filled(sql)
    assert changed
    assert _e_rows(filled) == _e_rows(sql, vfs=pinned_vfs)

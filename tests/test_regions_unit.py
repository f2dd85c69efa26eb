"""The geo grammar and the REGIONAL BY ROW table rewrite (pure functions)."""

from __future__ import annotations

import apsw
import pytest

from sqlfront.regions import (
    GeoSyntaxError,
    describe_locality,
    parse_locality,
    regional_by_row_table,
    row_region_column,
    unique_per_region,
)


def _columns_and_key(sql: str) -> tuple[list[str], list[str]]:
    db = apsw.Connection(":memory:")
    db.execute(sql)
    info = db.execute("PRAGMA table_info(t)").fetchall()
    key = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]]
    return [str(r[1]) for r in info], key


def test_localities_parse_and_describe() -> None:
    assert parse_locality("REGIONAL BY ROW") == "row:crdb_region"
    assert parse_locality("regional by row as home") == "row:home"
    assert row_region_column("row:home:per-region") == "home"
    assert unique_per_region("row:home:per-region") and not unique_per_region("row:home")
    assert row_region_column("table:us-east") == "" and row_region_column("global") == ""
    assert describe_locality("row:crdb_region") == "REGIONAL BY ROW"
    assert describe_locality("row:home:per-region") == (
        "REGIONAL BY ROW AS home (key unique per region)"
    )
    with pytest.raises(GeoSyntaxError):
        parse_locality("REGIONAL BY COLUMN")


@pytest.mark.parametrize(
    ("create", "columns", "key", "per_region"),
    [
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, n TEXT)",
            ["id", "n", "crdb_region"],
            ["crdb_region", "id"],
            False,
        ),
        (
            "CREATE TABLE t(a TEXT, b INT, v, PRIMARY KEY (a, b)) WITHOUT ROWID",
            ["a", "b", "v", "crdb_region"],
            ["crdb_region", "a", "b"],
            False,
        ),
        (
            "CREATE TABLE t(crdb_region TEXT NOT NULL, id INT, PRIMARY KEY (id, crdb_region))",
            ["crdb_region", "id"],
            ["crdb_region", "id"],
            True,
        ),
    ],
)
def test_regional_by_row_key_starts_with_the_region(
    create: str, columns: list[str], key: list[str], per_region: bool
) -> None:
    sql, unique = regional_by_row_table(create, "crdb_region", "us-east")
    assert unique is per_region
    assert sql.endswith("WITHOUT ROWID")
    assert _columns_and_key(sql) == (columns, key)
    db = apsw.Connection(":memory:")
    db.execute(sql)
    if "crdb_region TEXT NOT NULL," not in create:
        db.execute(
            "INSERT INTO t(id) VALUES (1)"
            if "id" in columns
            else "INSERT INTO t(a, b) VALUES ('x', 1)"
        )
        assert db.execute("SELECT crdb_region FROM t").fetchall() == [("us-east",)]


@pytest.mark.parametrize(
    ("create", "words"),
    [
        ("CREATE TABLE t(a, b)", "needs a PRIMARY KEY"),
        ("CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT)", "AUTOINCREMENT"),
        ("CREATE TABLE t AS SELECT 1", "column"),
    ],
)
def test_regional_by_row_errors_name_the_problem(create: str, words: str) -> None:
    with pytest.raises(GeoSyntaxError, match=words):
        regional_by_row_table(create, "crdb_region", "us-east")

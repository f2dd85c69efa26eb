"""Parsing, syntax errors with positions, and statement splitting (sqlfront/dialect.py)."""

from __future__ import annotations

import apsw
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from sqlfront.dialect import (
    AtlasDialect,
    SqlError,
    is_complete,
    parse,
    split_statements,
    syntax_check,
)
from storage.sqlstate import FEATURE_NOT_SUPPORTED, SYNTAX_ERROR


def test_dialect_subclass_works_with_sqlglot_registry() -> None:
    assert sqlglot.parse_one("SELECT 1", dialect=AtlasDialect).sql(dialect=AtlasDialect) == (
        "SELECT 1"
    )
    assert sqlglot.Dialect.get_or_raise("atlasdialect").__class__ is AtlasDialect


@pytest.mark.parametrize(
    ("sql", "token", "position"),
    [
        ("SELEC 1", "SELEC", 1),
        ("SELECT * FROMM t", "FROMM", 10),
        ("CREATE TABEL t (a)", "TABEL", 8),  # sqlglot falls back to a Command; SQLite refuses
        ("DELETE t", "t", 8),  # sqlglot accepts
        ("SELECT a,, b FROM t", ",", 10),  # sqlglot accepts and drops the empty item
        ("SELECT 'é', * FROMM t", "FROMM", 15),  # characters, not UTF-8 bytes
    ],
)
def test_typo_is_a_syntax_error_at_the_offending_token(sql: str, token: str, position: int) -> None:
    with pytest.raises(SqlError) as caught:
        parse(sql)
    error = caught.value
    assert error.code == SYNTAX_ERROR
    assert error.message == f'syntax error at or near "{token}"'
    assert error.position == position
    assert sql[position - 1 : position - 1 + len(token)] == token
    assert str(error).endswith(f"(line 1, column {position})")


@pytest.mark.parametrize("sql", ["INSERT INTO t VALUES (1,", "SELECT 1 +", "UPDATE t SET"])
def test_truncated_statement_is_a_syntax_error_at_end_of_input(sql: str) -> None:
    with pytest.raises(SqlError) as caught:
        parse(sql)
    assert caught.value.code == SYNTAX_ERROR
    assert caught.value.message == "syntax error at end of input"
    assert caught.value.position == len(sql) + 1


def test_error_in_second_statement_reports_line_and_column_in_whole_script() -> None:
    sql = "SELECT 1;\n  SELECT *\n  FROMM t;"
    with pytest.raises(SqlError) as caught:
        parse(sql)
    error = caught.value
    assert (error.line, error.column) == (3, 3)
    assert sql[error.position - 1 :].startswith("FROMM")


def test_unterminated_string_is_an_unrecognized_token() -> None:
    with pytest.raises(SqlError) as caught:
        parse("SELECT 'abc")
    assert caught.value.code == SYNTAX_ERROR
    assert caught.value.position == 8
    assert "unrecognized token" in caught.value.message


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", "/* c */ ;  ;"])
def test_empty_input_is_an_empty_statement_error(sql: str) -> None:
    with pytest.raises(SqlError) as caught:
        parse(sql)
    assert (caught.value.code, caught.value.message, caught.value.position) == (
        SYNTAX_ERROR,
        "empty statement",
        0,
    )
    assert str(caught.value) == "empty statement"


def test_valid_sqlite_that_sqlglot_cannot_parse_is_feature_not_supported() -> None:
    with pytest.raises(SqlError) as caught:
        parse("UPDATE OR IGNORE t SET a = 1")
    assert caught.value.code == FEATURE_NOT_SUPPORTED
    assert caught.value.position == 8


def test_missing_tables_are_not_syntax_errors() -> None:
    syntax_check("SELECT * FROM nowhere JOIN elsewhere USING (id)")
    syntax_check("INSERT INTO t VALUES (?, :name)")
    [statement] = parse("DELETE FROM nowhere WHERE id = ?")
    assert isinstance(statement, exp.Delete)


def test_script_parses_to_one_expression_per_statement() -> None:
    statements = parse("CREATE TABLE t (a); INSERT INTO t VALUES (';'); SELECT a FROM t")
    assert [type(s) for s in statements] == [exp.Create, exp.Insert, exp.Select]


def test_trigger_body_is_kept_whole() -> None:
    trigger = (
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; "
        "INSERT INTO u VALUES (2); END"
    )
    statements = parse(trigger + "; SELECT 1")
    assert len(statements) == 2
    assert statements[0].sql(dialect=AtlasDialect) == trigger


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT strftime('%f')",  # sqlglot's SQLite dialect would add CURRENT_TIMESTAMP
        "CREATE TABLE t (a INTEGER) STRICT",  # sqlglot's SQLite dialect drops STRICT
        "INSERT OR REPLACE INTO t VALUES (1)",
    ],
)
def test_round_trip_keeps_sqlite_semantics(sql: str) -> None:
    assert parse(sql)[0].sql(dialect=AtlasDialect).upper() == sql.upper()


def test_replace_into_parses_as_insert_or_replace() -> None:
    [statement] = parse("REPLACE INTO t VALUES (1)")
    assert isinstance(statement, exp.Insert)
    assert statement.sql(dialect=AtlasDialect) == "INSERT OR REPLACE INTO t VALUES (1)"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b'; SELECT \"c;d\"", ["SELECT 'a;b'", 'SELECT "c;d"']),
        ("SELECT `x;` , [y;z] FROM t", ["SELECT `x;` , [y;z] FROM t"]),
        ("SELECT 'it''s;'; SELECT 2", ["SELECT 'it''s;'", "SELECT 2"]),
        ("SELECT 1 -- no; split\n; SELECT 2", ["SELECT 1 -- no; split", "SELECT 2"]),
        ("SELECT /* ; */ 1;;;\n\n", ["SELECT /* ; */ 1"]),
        ("  ; -- only\n ; /* c */", []),
        (
            "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END; SELECT 3",
            [
                "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END",
                "SELECT 3",
            ],
        ),
        ("SELECT 1; SELECT 'unterminated;", ["SELECT 1", "SELECT 'unterminated;"]),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    assert split_statements(script) == expected


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("SELECT 1;", True),
        ("SELECT 1;  -- trailing comment", True),
        ("SELECT 1; /* block */  ", True),
        ("SELECT 1", False),
        ("SELECT ';'", False),
        ("SELECT 1 -- ;", False),
        ("SELECT 1 /* ; */", False),
        ("SELECT 1 /* unterminated ;", False),
        ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;", False),
        ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;", True),
        ("", False),
    ],
)
def test_is_complete(text: str, complete: bool) -> None:
    assert is_complete(text) is complete
    # The rule is SQLite's own, except that SQLite wants a newline after a trailing "--" comment.
    assert apsw.complete(text + "\n") is complete


_pieces = st.sampled_from(
    [
        "SELECT",
        " ",
        "\n",
        ";",
        "'",
        '"',
        "`",
        "[",
        "]",
        "--",
        "/*",
        "*/",
        "x",
        "END",
        "CREATE",
        "TEMP",
        "TRIGGER",
        "EXPLAIN",
        "é",
        "1",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=12).map("".join))
def test_is_complete_agrees_with_sqlite3_complete(text: str) -> None:
    assert is_complete(text) == apsw.complete(text + "\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, max_size=12).map("".join))
def test_split_pieces_are_found_in_order_in_the_script(text: str) -> None:
    position = 0
    for piece in split_statements(text):
        assert piece and piece == piece.strip()
        found = text.find(piece, position)
        assert found >= 0
        position = found + len(piece)

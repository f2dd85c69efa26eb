"""Golden tests of sqlfront.format: what the shell and ``atlasql sql --format`` print."""

from __future__ import annotations

import json

import pytest

from sqlfront.format import format_result, format_status, format_value, statement_kind

COLUMNS = ["id", "name", "score", "data"]
ROWS: list[tuple[object, ...]] = [
    (1, "alice", 3.5, b"\xde\xad\xbe\xef"),
    (22, None, None, None),
    (333, "NULL", -0.25, b""),
]


def test_table_aligns_numbers_right_text_left_and_counts_rows() -> None:
    assert format_result(COLUMNS, ROWS) == "\n".join(
        [
            " id  | name  | score |    data",
            "-----+-------+-------+------------",
            "   1 | alice |   3.5 | \\xdeadbeef",
            "  22 | NULL  |  NULL | NULL",
            " 333 | NULL  | -0.25 | \\x",
            "(3 rows)",
        ]
    )


def test_table_null_string_distinguishes_null_from_text_null() -> None:
    out = format_result(["v"], [(None,), ("NULL",)], null="<null>")
    assert out == "\n".join(["   v", "--------", " <null>", " NULL", "(2 rows)"])


def test_table_single_row_and_empty_result_footers() -> None:
    assert format_result(["n"], [(7,)]) == " n\n---\n 7\n(1 row)"
    assert format_result(["long_name"], []) == " long_name\n-----------\n(0 rows)"


def test_table_multiline_cell_marks_continuation_with_plus() -> None:
    out = format_result(["a", "b"], [("one\ntwo", 1), ("x", 2)])
    assert out == "\n".join(
        [
            "  a  | b",
            "-----+---",
            " one+| 1",
            " two |",
            " x   | 2",
            "(2 rows)",
        ]
    )


def test_table_without_columns_prints_only_the_count() -> None:
    assert format_result([], [()]) == "(1 row)"


def test_csv_quotes_delimiters_and_writes_header() -> None:
    out = format_result(["a", "b"], [(1, 'x,"y"'), (None, b"\x01")], "csv")
    assert out == 'a,b\n1,"x,""y"""\nNULL,\\x01'


def test_tsv_uses_tabs() -> None:
    out = format_result(["a", "b"], [(1, "x y"), (2.5, None)], "tsv")
    assert out == "a\tb\n1\tx y\n2.5\tNULL"


def test_json_is_an_array_of_objects_with_blobs_as_hex() -> None:
    out = format_result(["id", "v", "b"], [(1, None, b"\xff"), (2, "é", b"")], "json")
    assert out == (
        '[\n  {"id": 1, "v": null, "b": "\\\\xff"},\n  {"id": 2, "v": "é", "b": "\\\\x"}\n]'
    )
    assert json.loads(out) == [{"id": 1, "v": None, "b": "\\xff"}, {"id": 2, "v": "é", "b": "\\x"}]


def test_json_empty_result_and_duplicate_column_names() -> None:
    assert format_result(["a"], [], "json") == "[]"
    out = format_result(["a", "a"], [(1, 2)], "json")
    assert json.loads(out) == [{"a": 1, "a_2": 2}]


def test_json_keeps_non_finite_floats_valid() -> None:
    out = format_result(["x"], [(float("inf"),)], "json")
    assert json.loads(out) == [{"x": "inf"}]


def test_markdown_pipe_table_escapes_pipes_and_newlines() -> None:
    out = format_result(["id", "txt"], [(1, "a|b"), (10, "l1\nl2")], "markdown")
    assert out == "\n".join(
        [
            "|  id | txt      |",
            "|----:|----------|",
            "|   1 | a\\|b     |",
            "|  10 | l1<br>l2 |",
        ]
    )


def test_unknown_format_and_ragged_rows_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        format_result(["a"], [(1,)], "xml")
    with pytest.raises(ValueError, match="row 1 has 2 values for 1 columns"):
        format_result(["a"], [(1, 2)])


def test_format_value_renders_each_storage_class() -> None:
    assert [format_value(v) for v in (None, -5, 0.1, "t", b"\x00\x10")] == [
        "NULL",
        "-5",
        "0.1",
        "t",
        "\\x0010",
    ]


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("  /* c */ -- line\n update t set a = 1", "UPDATE"),
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        ("create temp table t (a)", "CREATE TABLE"),
        ("DROP INDEX i", "DROP INDEX"),
        ("ALTER DATABASE d ADD REGION r", "ALTER DATABASE"),
        ("", ""),
    ],
)
def test_statement_kind_reads_leading_keywords(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind


def test_format_status_counts_dml_and_names_ddl() -> None:
    assert format_status(3, "UPDATE") == "UPDATE 3"
    assert format_status(0, "delete") == "DELETE 0"
    assert format_status(-1, "CREATE TABLE") == "CREATE TABLE"
    assert format_status(-1, "") == "OK"

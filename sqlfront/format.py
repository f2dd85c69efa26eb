"""Result formatting for the shell and the CLI: table, csv, tsv, json and markdown.

Pure functions over column names and rows of SQLite values (None, int, float, str, bytes):

>>> print(format_result(["id", "name"], [(1, "alice"), (22, None)]))
 id | name
----+-------
  1 | alice
 22 | NULL
(2 rows)

Conventions shared by the text formats: NULL prints as the ``null`` string (``NULL`` by default,
as CockroachDB's CLI does), blobs print as ``\\x`` followed by lowercase hex (PostgreSQL's bytea
text form), floats print as Python's shortest round-trip ``repr``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["FORMATS", "format_result", "format_status", "format_value", "statement_kind"]

FORMATS: Final = ("table", "csv", "tsv", "json", "markdown")
"""The accepted values of ``fmt``."""

Row = Sequence[object]


def format_value(value: object, *, null: str = "NULL") -> str:
    """The text form of one value.

    >>> [format_value(v) for v in (None, 7, 2.5, "x", b"\\xde\\xad")]
    ['NULL', '7', '2.5', 'x', '\\\\xdead']
    """
    if value is None:
        return null
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_columns(width: int, rows: Sequence[Row]) -> list[bool]:
    """A column is numeric (right-aligned) when all its non-NULL values are numbers."""
    result: list[bool] = []
    for i in range(width):
        values = [row[i] for row in rows if row[i] is not None]
        result.append(bool(values) and all(_is_number(v) for v in values))
    return result


def format_result(
    columns: Sequence[str], rows: Sequence[Row], fmt: str = "table", *, null: str = "NULL"
) -> str:
    """Render a result set as text, without a trailing newline.

    Args:
        columns: The column names.
        rows: The rows, each with one value per column.
        fmt: One of ``table``, ``csv``, ``tsv``, ``json``, ``markdown``.
        null: How NULL is written in the text formats (json always uses ``null``).

    Returns:
        The rendered text.

    Raises:
        ValueError: ``fmt`` is unknown or a row's length differs from the column count.

    >>> print(format_result(["a", "b"], [(1, "x,y")], "csv"))
    a,b
    1,"x,y"
    """
    for number, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise ValueError(f"row {number} has {len(row)} values for {len(columns)} columns")
    if fmt == "table":
        return _table(columns, rows, null)
    if fmt == "csv":
        return _delimited(columns, rows, ",", null)
    if fmt == "tsv":
        return _delimited(columns, rows, "\t", null)
    if fmt == "json":
        return _json(columns, rows)
    if fmt == "markdown":
        return _markdown(columns, rows, null)
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _row_count(n: int) -> str:
    return "(1 row)" if n == 1 else f"({n} rows)"


def _table(columns: Sequence[str], rows: Sequence[Row], null: str) -> str:
    """psql's aligned format: a cell spanning several lines marks each continued line by ``+``."""
    if not columns:
        return _row_count(len(rows))
    numeric = _numeric_columns(len(columns), rows)
    cells = [[format_value(v, null=null).splitlines() or [""] for v in row] for row in rows]
    header = [name.splitlines() or [""] for name in columns]
    widths = [
        max(len(line) for cell in [header[i], *(r[i] for r in cells)] for line in cell)
        for i in range(len(columns))
    ]
    out: list[str] = []

    def emit(row: list[list[str]], align_numbers: bool, center: bool) -> None:
        for k in range(max(len(cell) for cell in row)):
            parts: list[str] = []
            for i, cell in enumerate(row):
                text = cell[k] if k < len(cell) else ""
                if center:  # like psql: odd padding goes to the right
                    left = (widths[i] - len(text)) // 2
                    text = (" " * left + text).ljust(widths[i])
                elif align_numbers and numeric[i]:
                    text = text.rjust(widths[i])
                else:
                    text = text.ljust(widths[i])
                marker = "+" if k + 1 < len(cell) else " "
                parts.append(" " + text + marker)
            out.append("|".join(parts).rstrip())

    emit(header, align_numbers=False, center=True)
    out.append("+".join("-" * (w + 2) for w in widths))
    for row in cells:
        emit(row, align_numbers=True, center=False)
    out.append(_row_count(len(rows)))
    return "\n".join(out)


def _delimited(columns: Sequence[str], rows: Sequence[Row], delimiter: str, null: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(v, null=null) for v in row])
    return buffer.getvalue().rstrip("\n")


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return format_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN/Infinity: keep the document valid
    return value


def _unique_names(columns: Sequence[str]) -> list[str]:
    """JSON objects need distinct keys: a repeated name gets ``_2``, ``_3`` ... appended."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for name in columns:
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}_{count}")
    return names


def _json(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """A JSON array with one object per row, one row per line."""
    if not rows:
        return "[]"
    names = _unique_names(columns)
    lines = [
        json.dumps(
            {name: _json_value(v) for name, v in zip(names, row, strict=True)},
            ensure_ascii=False,
        )
        for row in rows
    ]
    return "[\n  " + ",\n  ".join(lines) + "\n]"


def _markdown_cell(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")
    )


def _markdown(columns: Sequence[str], rows: Sequence[Row], null: str) -> str:
    """A GitHub-flavoured pipe table; numeric columns are right-aligned with ``---:``."""
    if not columns:
        return ""
    numeric = _numeric_columns(len(columns), rows)
    header = [_markdown_cell(name) for name in columns]
    body = [[_markdown_cell(format_value(v, null=null)) for v in row] for row in rows]
    widths = [max(3, len(header[i]), *(len(r[i]) for r in body)) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if numeric[i] else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(r) for r in body)])


# ---------------------------------------------------------------------------------------------
# Status lines for statements without a result set
# ---------------------------------------------------------------------------------------------

_COUNTED: Final = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT"})
_OBJECT_VERBS: Final = frozenset({"CREATE", "DROP", "ALTER"})
_OBJECT_SKIP: Final = frozenset({"OR", "REPLACE", "UNIQUE", "TEMP", "TEMPORARY", "VIRTUAL"})
_LEADING_NOISE: Final = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
_WORD: Final = re.compile(r"[A-Za-z_]+")


def statement_kind(sql: str) -> str:
    """The statement's tag from its leading keywords, as the shell's status line prints it.

    Comments and whitespace in front are skipped; ``CREATE``/``DROP``/``ALTER`` keep the object
    type; ``INSERT OR REPLACE`` is an ``INSERT``. Returns ``""`` when there is no keyword.

    >>> statement_kind("-- add one\\ninsert or replace into t values (1)")
    'INSERT'
    >>> statement_kind("CREATE UNIQUE INDEX i ON t (a)")
    'CREATE INDEX'
    >>> statement_kind("  ")
    ''
    """
    noise = _LEADING_NOISE.match(sql)
    rest = sql[noise.end() :] if noise else sql
    words: list[str] = [str(w).upper() for w in _WORD.findall(rest[:200])]
    if not words:
        return ""
    verb = words[0]
    if verb in _OBJECT_VERBS:
        for word in words[1:]:
            if word not in _OBJECT_SKIP:
                return f"{verb} {word}"
    return verb


def format_status(rows_affected: int, statement_kind: str) -> str:
    """The status line printed for a statement without a result set (CockroachDB style).

    >>> format_status(1, "INSERT")
    'INSERT 1'
    >>> format_status(-1, "CREATE TABLE")
    'CREATE TABLE'
    >>> format_status(0, "")
    'OK'
    """
    kind = statement_kind.strip().upper()
    if kind in _COUNTED and rows_affected >= 0:
        return f"{kind} {rows_affected}"
    return kind or "OK"

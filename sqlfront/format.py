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
import textwrap
from collections.abc import Sequence
from typing import Final

__all__ = [
    "FORMATS",
    "format_expanded",
    "format_result",
    "format_status",
    "format_value",
    "statement_kind",
]

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
    columns: Sequence[str],
    rows: Sequence[Row],
    fmt: str = "table",
    *,
    null: str = "NULL",
    expanded: bool = False,
    max_width: int | None = None,
) -> str:
    """Render a result set as text, without a trailing newline.

    Args:
        columns: The column names.
        rows: The rows, each with one value per column.
        fmt: One of ``table``, ``csv``, ``tsv``, ``json``, ``markdown``.
        null: How NULL is written in the text formats (json always uses ``null``).
        expanded: For ``table``: one ``-[ RECORD n ]`` block per row (psql's ``\\x``).
        max_width: For ``table``: wrap cells so that lines fit this many characters (a wrapped
            line is marked by ``.`` where a newline in the value is marked by ``+``); ``None``
            never wraps.

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
        if expanded:
            return format_expanded(columns, rows, null=null)
        return _table(columns, rows, null, max_width)
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


_Cell = list[tuple[str, str]]
"""A cell's display lines, each with its right-margin marker: ``+`` newline, ``.`` wrapped."""


def _cell_lines(text: str, width: int | None) -> _Cell:
    lines = text.splitlines() or [""]
    out: _Cell = []
    for number, line in enumerate(lines, start=1):
        pieces = [line]
        if width is not None and len(line) > width:
            pieces = textwrap.wrap(
                line, width, break_on_hyphens=False, expand_tabs=False, replace_whitespace=False
            ) or [""]
        for k, piece in enumerate(pieces, start=1):
            if k < len(pieces):
                out.append((piece, "."))
            else:
                out.append((piece, "+" if number < len(lines) else " "))
    return out


def _fit_widths(natural: list[int], minimum: list[int], budget: int) -> list[int]:
    """Shrink the widest columns until the widths sum to ``budget`` (water-filling).

    >>> _fit_widths([5, 40, 30], [3, 3, 3], 45)
    [5, 20, 20]
    """
    widths = list(natural)
    while sum(widths) > budget:
        widest = max(widths)
        if widest <= 1 or all(w <= m for w, m in zip(widths, minimum, strict=True)):
            break
        excess = sum(widths) - budget
        at_top = [i for i, w in enumerate(widths) if w == widest and w > minimum[i]]
        if not at_top:
            break
        lower = max([w for w in widths if w < widest] + [max(minimum[i] for i in at_top)])
        step = max(1, min(widest - lower, -(-excess // len(at_top))))
        for i in at_top:
            widths[i] = max(minimum[i], widths[i] - step)
    return widths


def _table(
    columns: Sequence[str], rows: Sequence[Row], null: str, max_width: int | None = None
) -> str:
    """psql's aligned format: a cell spanning several lines marks each continued line by ``+``."""
    if not columns:
        return _row_count(len(rows))
    numeric = _numeric_columns(len(columns), rows)
    texts = [[format_value(v, null=null) for v in row] for row in rows]
    header = [_cell_lines(name, None) for name in columns]
    natural = [
        max(
            [len(line) for line, _ in header[i]]
            + [len(line) for r in texts for line in (r[i].splitlines() or [""])]
        )
        for i in range(len(columns))
    ]
    widths = natural
    wrap_at: list[int | None] = [None] * len(columns)
    if max_width is not None:
        budget = max_width - 3 * len(columns) + 1  # " x |" per column, no trailing bar
        minimum = [
            min(n, max(10, max(len(line) for line, _ in header[i]))) for i, n in enumerate(natural)
        ]
        widths = _fit_widths(natural, minimum, budget)
        wrap_at = [w if w < n else None for w, n in zip(widths, natural, strict=True)]
    cells = [[_cell_lines(text, wrap_at[i]) for i, text in enumerate(r)] for r in texts]
    out: list[str] = []

    def emit(row: list[_Cell], align_numbers: bool, center: bool) -> None:
        for k in range(max(len(cell) for cell in row)):
            parts: list[str] = []
            for i, cell in enumerate(row):
                text, marker = cell[k] if k < len(cell) else ("", " ")
                if center:  # like psql: odd padding goes to the right
                    left = (widths[i] - len(text)) // 2
                    text = (" " * left + text).ljust(widths[i])
                elif align_numbers and numeric[i]:
                    text = text.rjust(widths[i])
                else:
                    text = text.ljust(widths[i])
                parts.append(" " + text + marker)
            out.append("|".join(parts).rstrip())

    emit(header, align_numbers=False, center=True)
    out.append("+".join("-" * (w + 2) for w in widths))
    for row in cells:
        emit(row, align_numbers=True, center=False)
    out.append(_row_count(len(rows)))
    return "\n".join(out)


def format_expanded(columns: Sequence[str], rows: Sequence[Row], *, null: str = "NULL") -> str:
    """psql's expanded display (``\\x``): one block per row, one line per column.

    >>> print(format_expanded(["id", "name"], [(1, "ada"), (2, None)]))
    -[ RECORD 1 ]
    id   | 1
    name | ada
    -[ RECORD 2 ]
    id   | 2
    name | NULL
    """
    if not rows:
        return "(0 rows)"
    names = [name.replace("\n", " ") for name in columns]
    name_width = max((len(n) for n in names), default=0)
    values = [[(format_value(v, null=null).splitlines() or [""]) for v in row] for row in rows]
    value_width = max((len(line) for r in values for cell in r for line in cell), default=0)
    total = name_width + 3 + value_width
    out: list[str] = []
    for number, row in enumerate(values, start=1):
        head = f"-[ RECORD {number} ]"
        if len(head) < name_width + 1:
            head = head.ljust(name_width + 1, "-") + "+"
        out.append(head.ljust(total, "-"))
        for name, cell in zip(names, row, strict=True):
            for k, line in enumerate(cell):
                label = name if k == 0 else ""
                marker = "+" if k + 1 < len(cell) else ""
                out.append(f"{label.ljust(name_width)} | {line}{marker}".rstrip())
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

"""Which rows a range holds: a table's key columns and SQL for "key inside/outside a span".

A range of a table holds the rows whose key lies in ``[start_key, end_key)``, where keys are
``storage.keys`` encodings of the table's primary key (the rowid for rowid tables and
``INTEGER PRIMARY KEY`` aliases). Span bounds are key *prefixes*: a bound of m values
compares with the first m key columns. SQLite compares row values exactly as the encoding
orders them (for BINARY collation), so a replica can test "is this row in my span" with an
indexed row-value comparison instead of decoding every key.

>>> outside_sql('t', ['rowid'], 1)
'SELECT 1 FROM "t" WHERE ("rowid") < (?) LIMIT 1'
>>> inside_condition(['a', 'b'], 2, 1)
'("a", "b") >= (?, ?) AND ("a") < (?)'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .keys import decode_key
from .values import SqlValue


def quote(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def key_columns_from_info(table_info: Sequence[Sequence[Any]], without_rowid: bool) -> list[str]:
    """Key columns from ``PRAGMA table_info`` rows (cid, name, type, notnull, dflt, pk).

    ``['rowid']`` for rowid tables without a declared key and for ``INTEGER PRIMARY KEY``.

    >>> key_columns_from_info([(0, 'id', 'INTEGER', 0, None, 1)], False)
    ['rowid']
    >>> key_columns_from_info([(0, 'a', 'TEXT', 0, None, 2), (1, 'b', 'INT', 0, None, 1)], True)
    ['b', 'a']
    >>> key_columns_from_info([(0, 'v', 'TEXT', 0, None, 0)], False)
    ['rowid']
    """
    pks = sorted((int(r[5]), str(r[1]), str(r[2] or "")) for r in table_info if int(r[5]) > 0)
    if not pks:
        return ["rowid"]
    if len(pks) == 1 and pks[0][2].strip().upper() == "INTEGER" and not without_rowid:
        return ["rowid"]
    return [name for _, name, _ in pks]


def _cols(key_columns: Sequence[str], m: int) -> str:
    return "(" + ", ".join(quote(c) for c in key_columns[:m]) + ")"


def _marks(m: int) -> str:
    return "(" + ", ".join("?" * m) + ")"


def bound_values(key: bytes) -> tuple[SqlValue, ...]:
    """The values of a span bound (empty bound: no values)."""
    return decode_key(key) if key else ()


def inside_condition(key_columns: Sequence[str], start_len: int, end_len: int) -> str:
    """``key >= start AND key < end`` for bounds of the given lengths (0 = unbounded)."""
    parts = []
    if start_len:
        parts.append(f"{_cols(key_columns, start_len)} >= {_marks(start_len)}")
    if end_len:
        parts.append(f"{_cols(key_columns, end_len)} < {_marks(end_len)}")
    return " AND ".join(parts) or "1"


def outside_sql(table: str, key_columns: Sequence[str], start_len: int) -> str:
    """A probe for a row below a start bound (index-friendly)."""
    return (
        f"SELECT 1 FROM {quote(table)} WHERE {_cols(key_columns, start_len)} < "
        f"{_marks(start_len)} LIMIT 1"
    )


def beyond_sql(table: str, key_columns: Sequence[str], end_len: int) -> str:
    """A probe for a row at or above an end bound (index-friendly)."""
    return (
        f"SELECT 1 FROM {quote(table)} WHERE {_cols(key_columns, end_len)} >= "
        f"{_marks(end_len)} LIMIT 1"
    )


__all__ = [
    "beyond_sql",
    "bound_values",
    "inside_condition",
    "key_columns_from_info",
    "outside_sql",
    "quote",
]

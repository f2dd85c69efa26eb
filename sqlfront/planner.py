"""Planning over ranges: a table's key shape, the key spans a WHERE clause can touch, and the
keys of the rows an INSERT writes. Pure logic (SQLite in memory, no network).

A range holds the rows of one table whose key (``storage.keys`` encoding of the primary key,
or the rowid) lies in its span. The gateway uses this module to send a statement only to the
ranges that can hold its rows:

* ``key_intervals``: from the top-level ``AND`` of a WHERE clause, the constraints on the first
  key column that a literal (or bound parameter) makes exact (``=``, ``IN``, ``<``, ``<=``,
  ``>``, ``>=``, ``BETWEEN``), as half-open byte intervals; anything else means "all ranges".
  A literal is used only when SQLite would compare it to the column without conversion
  surprises (numbers for numeric affinity and rowids, strings for TEXT affinity, anything for
  BLOB affinity), and never for a column with a non-BINARY collation.
* ``insert_keys``: the keys of the rows an INSERT writes, found by running it in an empty
  in-memory copy of the table (so defaults, affinity and expressions are SQLite's own); rows
  whose key SQLite assigns (rowid) are reported as ``None``.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from storage import Engine, SqlValue
from storage.keys import encode_prefix, prefix_end
from storage.spans import quote

from .dialect import parse

Interval = tuple[bytes, bytes | None]  # [lo, hi); hi None = +infinity
EVERYTHING: list[Interval] = [(b"", None)]


@dataclasses.dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]  # ("rowid",) for rowid keys
    rowid_alias: str | None  # the INTEGER PRIMARY KEY column, if any
    affinity: Mapping[str, str]  # lower-case column name -> INTEGER/REAL/NUMERIC/TEXT/BLOB
    binary_key: bool  # every key column compares with BINARY collation
    without_rowid: bool
    unique_beyond_key: bool  # a UNIQUE constraint or index other than the key
    binary_columns: bool  # no column declares a collation (grouping/ordering is BINARY)

    def key_names(self) -> set[str]:
        """Names that denote the first key column in SQL."""
        first = self.key_columns[0].lower()
        if first == "rowid":
            names = {"rowid", "oid", "_rowid_"}
            if self.rowid_alias:
                names.add(self.rowid_alias.lower())
            return names
        return {first}

    def key_affinity(self) -> str:
        first = self.key_columns[0]
        return "INTEGER" if first == "rowid" else self.affinity.get(first.lower(), "BLOB")


def affinity_of(declared: str) -> str:
    """SQLite's column affinity rules (section 3.1 of "Datatypes In SQLite").

    >>> [affinity_of(t) for t in ("BIGINT", "VARCHAR(9)", "", "DOUBLE", "DECIMAL")]
    ['INTEGER', 'TEXT', 'BLOB', 'REAL', 'NUMERIC']
    """
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


@functools.lru_cache(maxsize=512)
def table_shape(name: str, create_sql: str, index_sql: tuple[str, ...] = ()) -> TableShape:
    engine = Engine(":memory:")
    try:
        res = engine.execute(create_sql)
        if res.error is not None:
            raise ValueError(f"cannot plan for {name}: {res.error.message}")
        for sql in index_sql:
            engine.execute(sql)
        keys = engine.key_columns(name)
        info = engine.query(f"PRAGMA table_info({quote(name)})").rows
        without_rowid = engine.query(f"SELECT rowid FROM {quote(name)} LIMIT 0").error is not None
        # (seq, name, unique, origin, partial); origin 'pk' is the key itself
        indexes = engine.query(f"PRAGMA index_list({quote(name)})").rows
    finally:
        engine.close()
    columns = tuple(str(r[1]) for r in info)
    affinity = {str(r[1]).lower(): affinity_of(str(r[2] or "")) for r in info}
    pk = [r for r in info if int(r[5]) > 0]
    alias = str(pk[0][1]) if keys == ["rowid"] and len(pk) == 1 else None
    return TableShape(
        name=name,
        columns=columns,
        key_columns=tuple(keys),
        rowid_alias=alias,
        affinity=affinity,
        binary_key=not _collated_columns(create_sql) & {k.lower() for k in keys},
        binary_columns=not _collated_columns(create_sql),
        without_rowid=without_rowid,
        unique_beyond_key=any(int(r[2]) and str(r[3]) != "pk" for r in indexes),
    )


def _collated_columns(create_sql: str) -> set[str]:
    """Columns declared with a COLLATE clause (other than BINARY)."""
    tree = parse(create_sql)[0]
    out: set[str] = set()
    for col in tree.find_all(exp.ColumnDef):
        for c in col.constraints:
            kind = c.args.get("kind")
            if isinstance(kind, exp.CollateColumnConstraint) and kind.name.upper() != "BINARY":
                out.add(col.name.lower())
    return out


# -- WHERE analysis -----------------------------------------------------------------------------


class _Unbound(LookupError):
    """A value the planner cannot know (expression, unbound parameter ...)."""


def is_positional(node: exp.Expr) -> bool:
    """A bare ``?`` (sqlglot names it '?', with no ``this``)."""
    return isinstance(node, exp.Placeholder) and not node.args.get("this")


class Params:
    """The statement's parameters, resolved the way SQLite numbers them."""

    def __init__(self, positional: Sequence[SqlValue], named: Mapping[str, SqlValue]) -> None:
        self._positional = list(positional)
        self._named = dict(named)
        self._next = 0
        self._order: dict[int, int] = {}

    def number(self, tree: exp.Expr) -> None:
        """Give each bare ``?`` its position (textual order, as SQLite does)."""
        for node in tree.walk(bfs=False):
            if is_positional(node):
                self._order[id(node)] = self._next
                self._next += 1

    def value(self, node: exp.Placeholder) -> SqlValue:
        name = str(node.args.get("this") or "")
        if is_positional(node):
            pos = self._order.get(id(node))
            if pos is None or pos >= len(self._positional):
                raise _Unbound
            return self._positional[pos]
        if name.isdigit():
            pos = int(name) - 1
            if pos >= len(self._positional):
                raise _Unbound
            return self._positional[pos]
        for key in (name, name.lstrip(":@$")):
            if key in self._named:
                return self._named[key]
        raise _Unbound


def _literal(node: exp.Expr, params: Params | None) -> SqlValue:
    if isinstance(node, exp.Paren):
        return _literal(node.this, params)
    if isinstance(node, exp.Neg):
        inner = _literal(node.this, params)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
        raise _Unbound
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text, 0) if text.lower().startswith("0x") else int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError as exc:
                raise _Unbound from exc
    if isinstance(node, exp.Placeholder) and params is not None:
        return params.value(node)
    if isinstance(node, exp.Null):
        return None
    raise _Unbound


def _comparable(value: SqlValue, affinity: str) -> bool:
    """Whether SQLite compares ``value`` with a column of ``affinity`` as-is (so its key
    encoding orders it correctly)."""
    if value is None:
        return False  # comparisons with NULL are never true: no narrowing needed or safe
    if affinity in ("INTEGER", "REAL", "NUMERIC"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if affinity == "TEXT":
        return isinstance(value, str)
    return True  # BLOB affinity: no conversion


def _is_key(node: exp.Expr, shape: TableShape) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() in shape.key_names()


def _point(v: SqlValue) -> Interval:
    k = encode_prefix([v])
    return (k, prefix_end(k))


def _conjunct(node: exp.Expr, shape: TableShape, params: Params | None) -> list[Interval] | None:
    """Intervals one conjunct allows for the first key column (None: no constraint known)."""
    aff = shape.key_affinity()

    def val(n: exp.Expr) -> SqlValue:
        v = _literal(n, params)
        if not _comparable(v, aff):
            raise _Unbound
        return v

    try:
        if isinstance(node, exp.Paren):
            return _conjunct(node.this, shape, params)
        if isinstance(node, exp.In) and _is_key(node.this, shape) and not node.args.get("query"):
            if node.args.get("not"):
                return None
            return [_point(val(e)) for e in node.expressions]
        if isinstance(node, exp.Between) and _is_key(node.this, shape):
            lo, hi = val(node.args["low"]), val(node.args["high"])
            return [(encode_prefix([lo]), prefix_end(encode_prefix([hi])))]
        ops = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
        if isinstance(node, ops):
            left, right = node.this, node.expression
            flipped = False
            if not _is_key(left, shape) and _is_key(right, shape):
                left, right, flipped = right, left, True
            if not _is_key(left, shape):
                return None
            k = encode_prefix([val(right)])
            kind = type(node).__name__
            if flipped:
                kind = {"GT": "LT", "LT": "GT", "GTE": "LTE", "LTE": "GTE"}.get(kind, kind)
            if kind == "EQ":
                return [(k, prefix_end(k))]
            if kind == "GT":
                return [(prefix_end(k), None)]
            if kind == "GTE":
                return [(k, None)]
            if kind == "LT":
                return [(b"", k)]
            return [(b"", prefix_end(k))]
    except _Unbound:
        return None
    return None


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo = max(lo1, lo2)
            his = [h for h in (hi1, hi2) if h is not None]
            hi = min(his) if his else None
            if hi is None or lo < hi:
                out.append((lo, hi))
    return out


def key_intervals(
    where: exp.Expr | None, shape: TableShape, params: Params | None
) -> list[Interval]:
    """Key intervals the rows matching ``where`` lie in (EVERYTHING when unknown)."""
    if where is None or not shape.binary_key:
        return EVERYTHING
    cond = where.this if isinstance(where, exp.Where) else where
    conjuncts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]
    result = EVERYTHING
    for c in conjuncts:
        got = _conjunct(c, shape, params)
        if got is not None:
            result = _intersect(result, got)
    return result


def overlaps(start: bytes, end: bytes, intervals: list[Interval]) -> bool:
    """Whether the span [start, end) (empty end = +inf) meets any interval."""
    for lo, hi in intervals:
        if (hi is None or start < hi) and (not end or end > lo):
            return True
    return False


# -- INSERT keys --------------------------------------------------------------------------------

_scratch = threading.local()


def insert_keys(
    shape: TableShape,
    create_sql: str,
    sql: str,
    rows: Sequence[Sequence[Any]] | None,
    params: Sequence[Any] | Mapping[str, Any],
    explicit_key: bool,
) -> list[bytes | None] | str:
    """Keys of the rows ``sql`` (an INSERT into ``shape``) writes, one per row, ``None`` for
    a key SQLite assigns. A string is an error message (the statement fails in SQLite too).

    ``rows``: executemany rows (each runs ``sql`` once); otherwise ``params``.
    ``explicit_key``: whether the INSERT names the key columns (else the rowid is assigned).
    """
    engine = Engine(":memory:")
    try:
        engine.execute(create_sql)
        batches = rows if rows is not None else [params]
        for row in batches:
            res = engine.execute(sql, row)
            if res.error is not None:
                return res.error.message
        if shape.key_columns == ("rowid",) and not explicit_key:
            count = engine.query(f"SELECT count(*) FROM {quote(shape.name)}").rows[0][0]
            return [None] * int(count)
        cols = ", ".join(quote(c) for c in shape.key_columns)
        got = engine.query(f"SELECT {cols} FROM {quote(shape.name)}")
        if got.error is not None:
            return got.error.message
        return [encode_prefix(list(r)) for r in got.rows]
    finally:
        engine.close()


__all__ = [
    "EVERYTHING",
    "Interval",
    "Params",
    "is_positional",
    "TableShape",
    "affinity_of",
    "insert_keys",
    "key_intervals",
    "overlaps",
    "table_shape",
]

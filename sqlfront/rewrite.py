"""Deterministic writes: turn per-replica values into literals at the gateway.

A write is replicated by shipping its SQL text through the range's Raft log, and every replica
runs that text (architecture invariant 1: apply is a pure function of state and entry). Anything
whose value depends on the node or the moment of execution -- ``random()``,
``randomblob(N)``, ``'now'`` in the date/time functions, ``CURRENT_TIMESTAMP`` -- must
therefore be fixed once, at the gateway, before the statement is proposed. This module does that
as pure functions of the statement, an injected ``now`` and an injected ``random.Random``:

* :func:`rewrite_nondeterministic` replaces those calls by literals;
* :func:`nondeterministic_defaults` finds ``DEFAULT`` clauses with the same problem, and
  :func:`fill_defaults` makes an ``INSERT`` spell such columns out;
* :func:`to_sql` regenerates the text replicas will run. Callers regenerate only when a rewrite
  reported a change, and ship the client's original text otherwise.

Functions that depend on the connection (``changes()``, ``total_changes()``,
``last_insert_rowid()``) and ``'localtime'``/``'utc'`` over non-literal values have no
deterministic equivalent and are rejected with ``FEATURE_NOT_SUPPORTED``.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Callable

import apsw
from sqlglot import exp

from sqlfront.dialect import TIME_FUNCTIONS, AtlasDialect, SqlError, parse
from storage.sqlstate import FEATURE_NOT_SUPPORTED, INVALID_PARAMETER

__all__ = [
    "fill_defaults",
    "nondeterministic_defaults",
    "rewrite_nondeterministic",
    "sqlite_now",
    "to_sql",
]

_CONNECTION_FUNCTIONS = frozenset({"changes", "total_changes", "last_insert_rowid"})
_ZONE_MODIFIERS = frozenset({"localtime", "utc"})
# Index of the (first) time-value argument; ``None`` where the function has no default 'now'.
_TIME_VALUE_INDEX = {name: 0 for name in TIME_FUNCTIONS} | {"strftime": 1, "timediff": None}
_TABLE_OPTIONS = re.compile(r"\)\s*(?:(?:WITHOUT\s+ROWID|STRICT)\s*,?\s*)+$", re.IGNORECASE)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Statements whose body is evaluated later, on every replica, rather than once now.
_DEFERRED_CREATE_KINDS = frozenset({"VIEW", "TRIGGER", "INDEX"})


def sqlite_now(now: datetime.datetime) -> str:
    """Formats ``now`` the way SQLite's ``'now'`` reads: UTC, millisecond precision.

    Args:
        now: A timezone-aware instant.

    Raises:
        SqlError: ``INVALID_PARAMETER`` if ``now`` is naive.

    Example:
        >>> sqlite_now(datetime.datetime(2024, 2, 29, 23, 59, 58, 123999, datetime.UTC))
        '2024-02-29 23:59:58.123'
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise SqlError(INVALID_PARAMETER, "the gateway clock must give timezone-aware times")
    utc = now.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return None


def _string_value(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    return None


def _is_now(node: exp.Expr) -> bool:
    value = _string_value(node)
    return value is not None and value.lower() == "now"


def _int_value(node: exp.Expr) -> int | None:
    sign = 1
    while isinstance(node, (exp.Paren, exp.Neg)):
        if isinstance(node, exp.Neg):
            sign = -sign
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this)
        try:
            return sign * (int(text, 16) if text.lower().startswith("0x") else int(text))
        except ValueError:
            return None
    return None


def _is_literal(node: exp.Expr) -> bool:
    return all(
        isinstance(n, (exp.Literal, exp.Paren, exp.Neg, exp.Null, exp.HexString, exp.Boolean))
        for n in node.walk()
    )


def _literal(value: object) -> exp.Expr:
    """A SQL literal for a value SQLite returned."""
    if value is None:
        return exp.Null()
    if isinstance(value, bytes):
        return exp.HexString(this=value.hex().upper())
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (int, float)):
        literal = exp.Literal.number(repr(abs(value)))
        return exp.Paren(this=exp.Neg(this=literal)) if value < 0 else literal
    raise TypeError(f"unexpected SQLite value {value!r}")


def _evaluate_at_gateway(call: exp.Expr) -> exp.Expr:
    """Evaluates a literal-only call with the gateway's SQLite and returns its value."""
    connection = apsw.Connection(":memory:")
    try:
        rows = list(connection.execute(f"SELECT {call.sql(dialect=AtlasDialect)}"))
    except apsw.Error as error:
        raise SqlError(FEATURE_NOT_SUPPORTED, f"cannot evaluate {call.sql()}: {error}") from None
    finally:
        connection.close()
    return _literal(rows[0][0])


def _rewrite_time_call(node: exp.Anonymous, name: str, now_literal: str) -> exp.Expr | None:
    """Fixes 'now' in one date/time call; returns the replacement or None if unchanged."""
    args = list(node.expressions)
    changed = False
    index = _TIME_VALUE_INDEX[name]
    if index is not None and len(args) == index:
        args.append(exp.Literal.string(now_literal))  # date() means date('now')
        changed = True
    for i, arg in enumerate(args):
        if _is_now(arg):
            args[i] = exp.Literal.string(now_literal)
            changed = True
    call = exp.Anonymous(this=node.this, expressions=args) if changed else node
    modifiers = {(_string_value(a) or "").strip().lower() for a in args}
    zone = sorted(modifiers & _ZONE_MODIFIERS)
    if zone:
        if all(_is_literal(a) for a in args):
            return _evaluate_at_gateway(call)
        raise SqlError(
            FEATURE_NOT_SUPPORTED,
            f"'{zone[0]}' in {name}() depends on the node's time zone; "
            "only literal arguments can be converted at the gateway",
        )
    return call if changed else None


def _random_literal(rng: random.Random) -> exp.Expr:
    return _literal(rng.randint(_INT64_MIN, _INT64_MAX))


def _replacement(node: exp.Expr, now_literal: str, rng: random.Random) -> exp.Expr | None:
    """The literal that replaces ``node``, None when ``node`` is deterministic."""
    if isinstance(node, exp.Rand):
        if node.args.get("this") is not None:
            raise SqlError(FEATURE_NOT_SUPPORTED, "random() takes no argument in SQLite")
        return _random_literal(rng)
    if isinstance(node, exp.CurrentTimestamp):
        return exp.Literal.string(now_literal[:19])
    if isinstance(node, exp.CurrentDate):
        return exp.Literal.string(now_literal[:10])
    if isinstance(node, exp.CurrentTime):
        return exp.Literal.string(now_literal[11:19])
    name = _function_name(node)
    if name is None:
        return None
    if name in _CONNECTION_FUNCTIONS:
        raise SqlError(
            FEATURE_NOT_SUPPORTED,
            f"{name}() depends on the connection, not on the data, and cannot be used in a write",
        )
    if name == "randomblob":
        assert isinstance(node, exp.Anonymous)
        size = _int_value(node.expressions[0]) if len(node.expressions) == 1 else None
        if size is None:
            raise SqlError(
                FEATURE_NOT_SUPPORTED,
                "randomblob() in a write needs a literal integer size",
            )
        return exp.HexString(this=rng.randbytes(max(size, 1)).hex().upper())
    if name in TIME_FUNCTIONS:
        assert isinstance(node, exp.Anonymous)
        return _rewrite_time_call(node, name, now_literal)
    return None


def _skip(node: exp.Expr) -> bool:
    """Column and table constraints: evaluated later, per row, so never rewritten here."""
    return isinstance(node, exp.ColumnConstraint) or (
        isinstance(node, exp.Schema) and isinstance(node.parent, exp.Create)
    )


_REWRITTEN_CALLS = frozenset({*_CONNECTION_FUNCTIONS, "randomblob", *TIME_FUNCTIONS})
_REWRITTEN_NODES = (exp.Rand, exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)


def _candidate(node: exp.Expr) -> bool:
    """Whether ``_replacement`` may act on ``node`` (a cheap test, no side effects)."""
    return isinstance(node, _REWRITTEN_NODES) or _function_name(node) in _REWRITTEN_CALLS


def _rewrite(
    expr: exp.Expr, replace: Callable[[exp.Expr], exp.Expr | None]
) -> tuple[exp.Expr, bool]:
    if isinstance(expr, exp.Create) and str(expr.args.get("kind", "")).upper() in (
        _DEFERRED_CREATE_KINDS
    ):
        return expr, False
    # Most writes have nothing to replace: find that out without copying the tree.
    if not any(_candidate(n) for n in expr.walk(bfs=False, prune=_skip) if not _skip(n)):
        return expr, False
    root = expr.copy()
    # Reversed pre-order: every node comes after all of its descendants.
    nodes = list(root.walk(bfs=False, prune=_skip))
    changed = False
    for node in reversed(nodes):
        if _skip(node):
            continue
        new = replace(node)
        if new is not None:
            changed = True
            if node is root:
                root = new
            else:
                node.replace(new)
    return (root, True) if changed else (expr, False)


def rewrite_nondeterministic(
    expr: exp.Expr, *, now: datetime.datetime, rng: random.Random
) -> tuple[exp.Expr, bool]:
    """Replaces node- and time-dependent calls in a write by literals.

    ``random()`` becomes a signed 64-bit integer, ``randomblob(N)`` a blob literal of ``N``
    bytes, ``'now'`` (also the implied one of ``date()``, ``strftime('%s')`` ...) the gateway's
    ``now`` at millisecond precision, ``CURRENT_TIMESTAMP``/``CURRENT_DATE``/``CURRENT_TIME``
    their UTC text. Column ``DEFAULT`` clauses and ``CREATE VIEW``/``TRIGGER``/``INDEX`` bodies
    are left alone: they are evaluated later (see :func:`fill_defaults`).

    Args:
        expr: A parsed statement; it is not modified.
        now: The gateway's clock reading (timezone-aware).
        rng: The source of randomness, injected so tests are reproducible.

    Returns:
        ``(statement, changed)``: a rewritten copy and True, or ``expr`` itself and False.

    Raises:
        SqlError: ``FEATURE_NOT_SUPPORTED`` for ``changes()``, ``total_changes()``,
            ``last_insert_rowid()``, ``randomblob()`` of a non-literal size, and
            ``'localtime'``/``'utc'`` over non-literal arguments.

    Example:
        >>> now = datetime.datetime(2024, 5, 1, 12, 0, 0, 250000, datetime.UTC)
        >>> [stmt] = parse("INSERT INTO t VALUES (date('now', '+1 day'), CURRENT_TIME)")
        >>> new, changed = rewrite_nondeterministic(stmt, now=now, rng=random.Random(7))
        >>> changed, to_sql(new)
        (True, "INSERT INTO t VALUES (DATE('2024-05-01 12:00:00.250', '+1 day'), '12:00:00')")
    """
    now_text: list[str] = []

    def replace(node: exp.Expr) -> exp.Expr | None:
        if not _candidate(node):
            return None
        if not now_text:
            now_text.append(sqlite_now(now))
        return _replacement(node, now_text[0], rng)

    return _rewrite(expr, replace)


def _create_tree(create_table_sql: str) -> exp.Expr:
    """A CREATE TABLE's tree (sqlglot does not know WITHOUT ROWID: the table options, which
    hold no columns or defaults, are dropped first)."""
    statements = parse(create_table_sql)
    if isinstance(statements[0], exp.Command) and len(statements) == 1:
        statements = parse(_TABLE_OPTIONS.sub(")", create_table_sql.rstrip().rstrip(";")))
    return statements[0]


def table_columns(create_table_sql: str) -> list[str]:
    """The column names of a CREATE TABLE, in order.

    >>> table_columns("CREATE TABLE t (a INTEGER, b, PRIMARY KEY (b, a)) WITHOUT ROWID")
    ['a', 'b']
    """
    schema = _create_tree(create_table_sql).this
    if not isinstance(schema, exp.Schema):
        return []
    # An untyped column without constraints parses as a bare identifier.
    return [c.name for c in schema.expressions if isinstance(c, (exp.ColumnDef, exp.Identifier))]


def _is_nondeterministic(expr: exp.Expr) -> bool:
    """Whether evaluating ``expr`` twice may give different values (see the rewrite rules)."""
    probe = random.Random(0)
    now = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    try:
        _, changed = rewrite_nondeterministic(exp.Paren(this=expr.copy()), now=now, rng=probe)
    except SqlError:
        return True
    return changed


def nondeterministic_defaults(create_table_sql: str) -> dict[str, str]:
    """Finds the columns of a ``CREATE TABLE`` whose ``DEFAULT`` differs per evaluation.

    Args:
        create_table_sql: The table's ``CREATE TABLE`` statement (as in ``sqlite_schema``).

    Returns:
        ``{column name: default expression SQL}`` for defaults using ``CURRENT_TIMESTAMP``,
        ``CURRENT_DATE``, ``CURRENT_TIME``, ``random()``, ``randomblob()`` or a date/time
        function on ``'now'``.

    Raises:
        SqlError: if the text is not a valid ``CREATE TABLE`` with a column list.

    Example:
        >>> nondeterministic_defaults(
        ...     "CREATE TABLE t (id INTEGER PRIMARY KEY, n DEFAULT 0,"
        ...     " at TEXT DEFAULT CURRENT_TIMESTAMP, tag BLOB DEFAULT (randomblob(4))) STRICT")
        {'at': 'CURRENT_TIMESTAMP', 'tag': '(RANDOMBLOB(4))'}
    """
    create = _create_tree(create_table_sql)
    schema = create.this if isinstance(create, exp.Create) else None
    if not isinstance(schema, exp.Schema):
        raise SqlError(
            FEATURE_NOT_SUPPORTED, "expected one CREATE TABLE statement with a column list"
        )
    found: dict[str, str] = {}
    for column in schema.expressions:
        if not isinstance(column, exp.ColumnDef):
            continue
        for constraint in column.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.DefaultColumnConstraint) and _is_nondeterministic(kind.this):
                found[column.name] = kind.this.sql(dialect=AtlasDialect)
    return found


def _default_literal(sql: str, *, now: datetime.datetime, rng: random.Random) -> exp.Expr:
    [select] = parse(f"SELECT {sql}")
    assert isinstance(select, exp.Select)
    value, _ = rewrite_nondeterministic(select.expressions[0], now=now, rng=rng)
    return value


def fill_defaults(
    insert: exp.Insert,
    table_columns: list[str],
    nd_defaults: dict[str, str],
    *,
    now: datetime.datetime,
    rng: random.Random,
) -> tuple[exp.Insert, bool]:
    """Spells out, as literals, the non-deterministic defaults an ``INSERT`` leaves implicit.

    Columns missing from an explicit column list (or all of them under ``DEFAULT VALUES``) that
    have a non-deterministic default are appended to the column list, with each ``VALUES`` row
    getting its own value. For ``INSERT ... SELECT`` the value is appended to the select list;
    that needs a single ``SELECT`` and a default that is the same for every row (the time
    functions, not ``random()``).

    Args:
        insert: A parsed ``INSERT``; it is not modified.
        table_columns: The table's columns in declaration order.
        nd_defaults: :func:`nondeterministic_defaults` of the table.
        now: The gateway's clock reading (timezone-aware).
        rng: The source of randomness.

    Returns:
        ``(insert, changed)``: a rewritten copy and True, or ``insert`` itself and False.

    Raises:
        SqlError: ``FEATURE_NOT_SUPPORTED`` for the ``INSERT ... SELECT`` forms above.

    Example:
        >>> now = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
        >>> [ins] = parse("INSERT INTO t (id) VALUES (1), (2)")
        >>> new, changed = fill_defaults(ins, ["id", "at"], {"at": "CURRENT_DATE"}, now=now,
        ...                              rng=random.Random(1))
        >>> to_sql(new)
        "INSERT INTO t (id, at) VALUES (1, '2024-05-01'), (2, '2024-05-01')"
    """
    if not nd_defaults:
        return insert, False
    target = insert.this
    body = insert.expression
    if isinstance(target, exp.Schema):
        listed = {str(c.name).lower() for c in target.expressions}
    elif insert.args.get("default"):
        listed = set()
    else:
        return insert, False  # no column list: SQLite requires a value for every column
    nd_lower = {name.lower(): sql for name, sql in nd_defaults.items()}
    missing = [c for c in table_columns if c.lower() in nd_lower and c.lower() not in listed]
    if not missing:
        return insert, False

    new = insert.copy()
    if isinstance(body, exp.Values):
        values = new.expression
        for row in values.expressions:
            for column in missing:
                row.append(
                    "expressions", _default_literal(nd_lower[column.lower()], now=now, rng=rng)
                )
    elif isinstance(body, exp.Select):
        per_row = [c for c in missing if uses_random(nd_lower[c.lower()])]
        if per_row:
            raise SqlError(
                FEATURE_NOT_SUPPORTED,
                f"INSERT ... SELECT cannot fill column {per_row[0]!r}, whose default is random "
                "per row; list the column explicitly",
            )
        select = new.expression
        for column in missing:
            select.append(
                "expressions", _default_literal(nd_lower[column.lower()], now=now, rng=rng)
            )
    elif body is None and insert.args.get("default"):
        row = exp.Tuple(
            expressions=[_default_literal(nd_lower[c.lower()], now=now, rng=rng) for c in missing]
        )
        new.set("expression", exp.Values(expressions=[row]))
        new.set("default", False)
    else:
        raise SqlError(
            FEATURE_NOT_SUPPORTED,
            f"cannot fill the default of column {missing[0]!r} for this form of INSERT; "
            "list the column explicitly",
        )

    columns = [exp.to_identifier(c) for c in missing]
    if isinstance(new.this, exp.Schema):
        for identifier in columns:
            new.this.append("expressions", identifier)
    else:
        new.set("this", exp.Schema(this=new.this, expressions=columns))
    return new, True


def uses_random(sql: str) -> bool:
    """Whether a default expression calls random() or randomblob()."""
    [select] = parse(f"SELECT {sql}")
    return any(isinstance(n, exp.Rand) or _function_name(n) == "randomblob" for n in select.walk())


def to_sql(expr: exp.Expr) -> str:
    """Regenerates the SQL text replicas will run.

    Call it only when a rewrite reported a change; otherwise ship the client's own text.

    Example:
        >>> to_sql(parse("insert into t values (x'00ff', 1)")[0])
        "INSERT INTO t VALUES (x'00ff', 1)"
    """
    return expr.sql(dialect=AtlasDialect)

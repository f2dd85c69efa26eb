"""The atlasql SQL dialect: parsing, statement splitting and syntax errors.

atlasql speaks SQLite's SQL (plus, later, the geo extensions such as ``LOCALITY REGIONAL BY
ROW``). Statements are parsed with sqlglot through :class:`AtlasDialect`; because sqlglot is
more permissive than SQLite in places (``CREATE TABEL t (a)`` falls back to an opaque
``Command``, ``DELETE t`` parses, ``SELECT a,, b`` drops the empty item), every parsed statement
is also *compiled* (never run) by SQLite itself, so a typo is reported at the gateway with a
position instead of surfacing later on every replica.

Error reporting follows PostgreSQL's wording (``syntax error at or near "FROMM"``) and carries
a SQLSTATE-like code plus a 1-based character position, line and column.

Splitting follows SQLite's own ``sqlite3_complete`` rules: ``;`` ends a statement unless it is
inside a string, a quoted identifier, a comment or the body of ``CREATE TRIGGER ... END``.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Iterator
from typing import Any

import apsw
import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from storage.sqlstate import FEATURE_NOT_SUPPORTED, SYNTAX_ERROR

__all__ = [
    "AtlasDialect",
    "SqlError",
    "is_complete",
    "parse",
    "split_statements",
    "syntax_check",
]

# SQLite's date/time functions. sqlglot's SQLite dialect turns some of them into typed nodes
# whose regenerated text is *not* the same call (``strftime('%f')`` comes back as
# ``STRFTIME('%f', CURRENT_TIMESTAMP)``, which loses the milliseconds), so atlasql keeps all of
# them as plain function calls: what the user wrote is what every replica runs.
TIME_FUNCTIONS = ("date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff")


def _anonymous(name: str) -> Any:
    def build(args: list[exp.Expr]) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=args)

    return build


class AtlasDialect(SQLite):
    """SQLite's dialect as sqlglot knows it, with round-trip fixes atlasql depends on.

    Differences from ``sqlglot.dialects.sqlite.SQLite``:

    * the date/time functions parse as plain calls (exact round trip, see ``TIME_FUNCTIONS``);
    * ``REPLACE INTO t ...`` parses as ``INSERT OR REPLACE INTO t ...`` (SQLite's own alias)
      instead of falling back to an opaque command;
    * the ``STRICT`` table option is kept when a ``CREATE TABLE`` is regenerated;
    * DECIMAL/NUMERIC and BOOLEAN print as NUMERIC (sqlglot: REAL, INTEGER), keeping affinity.

    Example:
        >>> tree = sqlglot.parse_one("SELECT strftime('%f')", dialect=AtlasDialect)
        >>> tree.sql(dialect=AtlasDialect)
        "SELECT STRFTIME('%f')"
    """

    class Tokenizer(SQLite.Tokenizer):
        """SQLite's tokenizer, except that ``REPLACE`` no longer swallows the statement."""

        COMMANDS = SQLite.Tokenizer.COMMANDS - {TokenType.REPLACE}

    class Parser(SQLite.Parser):  # type: ignore[misc,valid-type]
        """SQLite's parser with the time functions kept verbatim and ``REPLACE INTO``."""

        FUNCTIONS = {
            **SQLite.Parser.FUNCTIONS,
            **{name.upper(): _anonymous(name) for name in TIME_FUNCTIONS},
        }

        STATEMENT_PARSERS = {
            **SQLite.Parser.STATEMENT_PARSERS,
            TokenType.REPLACE: lambda self: self._parse_replace_into(),
        }

        def _parse_replace_into(self) -> exp.Expr:
            statement: exp.Expr = self._parse_insert()
            statement.set("alternative", "REPLACE")
            return statement

    class Generator(SQLite.Generator):  # type: ignore[misc,valid-type]
        """SQLite's generator that also prints the ``STRICT`` table option."""

        PROPERTIES_LOCATION = {
            **SQLite.Generator.PROPERTIES_LOCATION,
            exp.StrictProperty: exp.Properties.Location.POST_SCHEMA,
        }
        # sqlglot prints DECIMAL/NUMERIC as REAL and BOOLEAN as INTEGER; in SQLite those
        # have NUMERIC affinity (CAST(3 AS NUMERIC) is 3, CAST(3 AS REAL) is 3.0).
        TYPE_MAPPING = {
            **SQLite.Generator.TYPE_MAPPING,
            exp.DataType.Type.DECIMAL: "NUMERIC",
            exp.DataType.Type.BOOLEAN: "NUMERIC",
        }


class SqlError(Exception):
    """A SQL statement was rejected before or while being planned.

    Attributes:
        code: SQLSTATE-like code from ``storage.sqlstate`` (``42601`` for a syntax error).
        message: Human-readable description, without the position.
        position: 1-based character offset into the statement text, 0 when unknown.
        line: 1-based line of ``position``, 0 when unknown.
        column: 1-based column of ``position``, 0 when unknown.

    Example:
        >>> str(SqlError(SYNTAX_ERROR, 'syntax error at or near "FROMM"', position=10, line=1,
        ...              column=10))
        'syntax error at or near "FROMM" (line 1, column 10)'
    """

    def __init__(
        self, code: str, message: str, *, position: int = 0, line: int = 0, column: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.line = line
        self.column = column

    @classmethod
    def at(cls, code: str, message: str, text: str, offset: int) -> SqlError:
        """Builds an error located at 0-based character ``offset`` of ``text``.

        Example:
            >>> e = SqlError.at(SYNTAX_ERROR, "oops", "SELECT 1\\nFROMM t", 9)
            >>> (e.position, e.line, e.column)
            (10, 2, 1)
        """
        offset = max(0, min(offset, len(text)))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return cls(code, message, position=offset + 1, line=line, column=column)

    def __str__(self) -> str:
        if self.position and self.line:
            return f"{self.message} (line {self.line}, column {self.column})"
        return self.message

    def __repr__(self) -> str:
        return f"SqlError({self.code!r}, {self.message!r}, position={self.position})"


# --------------------------------------------------------------------------------------------
# Lexical scanning (SQLite's rules) and statement splitting
# --------------------------------------------------------------------------------------------


class _Tok(enum.IntEnum):
    """Token classes of SQLite's ``sqlite3_complete`` state machine."""

    SEMI = 0
    WS = 1  # whitespace and comments
    OTHER = 2
    EXPLAIN = 3
    CREATE = 4
    TEMP = 5
    TRIGGER = 6
    END = 7


_KEYWORDS = {
    "explain": _Tok.EXPLAIN,
    "create": _Tok.CREATE,
    "temp": _Tok.TEMP,
    "temporary": _Tok.TEMP,
    "trigger": _Tok.TRIGGER,
    "end": _Tok.END,
}

# States: 0 nothing seen yet, 1 between statements, 2 inside a statement, 3 after EXPLAIN,
# 4 after CREATE [TEMP], 5 inside a trigger body, 6 after ";" in a trigger body, 7 after ";END".
_START = 1
_TRANSITIONS: tuple[tuple[int, ...], ...] = (
    #   SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    (1, 0, 2, 3, 4, 2, 2, 2),
    (1, 1, 2, 3, 4, 2, 2, 2),
    (1, 2, 2, 2, 2, 2, 2, 2),
    (1, 3, 3, 2, 4, 2, 2, 2),
    (1, 4, 2, 2, 2, 4, 5, 2),
    (6, 5, 5, 5, 5, 5, 5, 5),
    (6, 6, 5, 5, 5, 5, 5, 7),
    (1, 7, 5, 5, 5, 5, 5, 5),
)
_TRIGGER_STATES = frozenset({5, 6, 7})
_SPACE = frozenset(" \t\n\f\r\v")
_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _is_id_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "_$") or not c.isascii()


def _scan(text: str) -> Iterator[tuple[_Tok, int, int, bool]]:
    """Yields ``(token class, start, end, terminated)`` for every lexical unit of ``text``.

    ``terminated`` is False only for a string, quoted identifier or block comment that runs
    to the end of the text.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == ";":
            yield _Tok.SEMI, i, i + 1, True
            i += 1
        elif c in _SPACE:
            j = i + 1
            while j < n and text[j] in _SPACE:
                j += 1
            yield _Tok.WS, i, j, True
            i = j
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j + 1
            yield _Tok.WS, i, j, True
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                yield _Tok.WS, i, n, False
                return
            yield _Tok.WS, i, j + 2, True
            i = j + 2
        elif c in _QUOTES:
            close = _QUOTES[c]
            j = i + 1
            while True:
                k = text.find(close, j)
                if k < 0:
                    yield _Tok.OTHER, i, n, False
                    return
                if close != "]" and text.startswith(close * 2, k):
                    j = k + 2  # doubled quote is an escaped quote
                    continue
                break
            yield _Tok.OTHER, i, k + 1, True
            i = k + 1
        elif _is_id_char(c):
            j = i + 1
            while j < n and _is_id_char(text[j]):
                j += 1
            yield _KEYWORDS.get(text[i:j].lower(), _Tok.OTHER), i, j, True
            i = j
        else:
            yield _Tok.OTHER, i, i + 1, True
            i += 1


def _statement_spans(script: str) -> list[tuple[int, int, bool]]:
    """Returns ``(start, end, is_trigger)`` of each non-empty statement, whitespace stripped.

    The end excludes the terminating ``;``. Comments are part of a statement's text, but a
    piece made only of comments and whitespace is dropped.
    """
    spans: list[tuple[int, int, bool]] = []
    state = 0
    piece_start = 0
    has_token = False
    trigger = False

    def flush(piece_end: int) -> None:
        if not has_token:
            return
        first, last = piece_start, piece_end
        while first < last and script[first] in _SPACE:
            first += 1
        while last > first and script[last - 1] in _SPACE:
            last -= 1
        spans.append((first, last, trigger))

    for tok, start, end, _ in _scan(script):
        new_state = _TRANSITIONS[state][tok]
        if tok == _Tok.SEMI and new_state == _START:
            flush(start)
            state, piece_start, has_token, trigger = _START, end, False, False
            continue
        state = new_state
        has_token = has_token or tok != _Tok.WS
        trigger = trigger or state in _TRIGGER_STATES
    flush(len(script))
    return spans


def split_statements(script: str) -> list[str]:
    """Splits a script into statements on ``;`` outside strings, comments and trigger bodies.

    Statements keep their exact text (comments included) minus surrounding whitespace and the
    terminating ``;``; empty statements (only whitespace, comments or ``;``) are dropped.

    Args:
        script: Any number of SQL statements.

    Returns:
        The statements, in order.

    Example:
        >>> split_statements("SELECT 'a;b'; ; -- done;\\nSELECT 2;")
        ["SELECT 'a;b'", '-- done;\\nSELECT 2']
    """
    return [script[start:end] for start, end, _ in _statement_spans(script)]


def is_complete(text: str) -> bool:
    """Tells whether ``text`` ends a statement, so that an interactive shell can submit it.

    True when the last token outside strings, comments and trigger bodies is ``;`` (trailing
    whitespace and comments are ignored); this is SQLite's ``sqlite3_complete`` rule, except
    that a trailing ``--`` comment needs no newline (a shell line arrives without one).

    Example:
        >>> is_complete("SELECT 1; -- bye"), is_complete("SELECT ';"), is_complete("SELECT 1")
        (True, False, False)
    """
    state = 0
    for tok, _, _, terminated in _scan(text):
        if not terminated:
            return False
        state = _TRANSITIONS[state][tok]
    return state == _START


# --------------------------------------------------------------------------------------------
# SQLite as the second line of defence
# --------------------------------------------------------------------------------------------

_local = threading.local()
_NEAR = re.compile(r'^near "(?P<token>.*)": syntax error$', re.DOTALL)
_UNRECOGNIZED = re.compile(r'^unrecognized token: "(?P<token>.*)"$', re.DOTALL)


def _checker() -> apsw.Connection:
    """A per-thread in-memory SQLite used only to compile statements, never to run them."""
    connection: apsw.Connection | None = getattr(_local, "connection", None)
    if connection is None:
        connection = apsw.Connection(":memory:")
        _local.connection = connection
    return connection


def _char_offset(text: str, byte_offset: int) -> int:
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def _sqlite_syntax_error(statement: str) -> tuple[str, int] | None:
    """Compiles one statement with SQLite; returns ``(message, 0-based offset)`` of a syntax error.

    Anything that is not a syntax error (``no such table``, missing bindings ...) is ignored:
    the checker has no schema.
    """
    try:
        cursor = _checker().execute(statement, can_cache=False, explain=1)
        cursor.close(True)
        return None
    except apsw.SQLError as error:
        reason = str(error).removeprefix("SQLError: ")
        offset = getattr(error, "error_offset", -1)
        position = _char_offset(statement, offset) if offset >= 0 else -1
        if reason == "incomplete input":
            return "syntax error at end of input", len(statement.rstrip())
        match = _NEAR.match(reason)
        if match:
            token = match["token"]
            if position < 0:
                position = max(statement.find(token), 0)
            return f'syntax error at or near "{token}"', position
        match = _UNRECOGNIZED.match(reason)
        if match:
            token = match["token"]
            if position < 0:
                position = max(statement.find(token), 0)
            return f'syntax error: unrecognized token "{token}"', position
        if "syntax error" in reason:
            return f"syntax error: {reason}", max(position, 0)
        return None
    except apsw.Error:
        return None


def syntax_check(sql: str) -> None:
    """Asks SQLite to compile (not run) each statement of ``sql``; raises on a syntax error.

    The check uses a private, empty in-memory database, so errors about missing tables,
    columns or functions are ignored: only ``syntax error``, ``incomplete input`` and
    ``unrecognized token`` count.

    Args:
        sql: One statement or a script.

    Raises:
        SqlError: ``SYNTAX_ERROR`` with the position of the offending token in ``sql``.

    Example:
        >>> syntax_check("SELECT * FROM no_such_table")
        >>> try:
        ...     syntax_check("SELECT 1;\\nSELECT * FROMM t")
        ... except SqlError as error:
        ...     print(error.code, error.position, error)
        42601 20 syntax error at or near "FROMM" (line 2, column 10)
    """
    for start, end, _ in _statement_spans(sql):
        found = _sqlite_syntax_error(sql[start:end])
        if found is not None:
            message, offset = found
            raise SqlError.at(SYNTAX_ERROR, message, sql, start + offset)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _sqlite_checkable(statement: exp.Expr) -> bool:
    """Whether SQLite can compile ``statement``: False for atlasql-only syntax (geo extensions).

    There are no extensions yet; when the dialect gains them, they return False here.
    """
    del statement
    return True


def _sqlglot_error_offset(text: str, error: ParseError) -> tuple[str, int]:
    """Returns ``(description, 0-based offset)`` of the first sqlglot parse error in ``text``."""
    if not error.errors:
        return str(error), 0
    info = error.errors[0]
    description = str(info.get("description") or "invalid syntax")
    highlight = str(info.get("highlight") or "")
    line, col = int(info.get("line") or 0), int(info.get("col") or 0)
    if line <= 0:
        return description, 0
    line_start = 0
    for _ in range(line - 1):
        line_start = text.find("\n", line_start) + 1
    end = line_start + col  # sqlglot's col is the 1-based column of the token's last character
    start = end - len(highlight)
    if not 0 <= start <= len(text) or text[start:end] != highlight:
        start = max(text.rfind(highlight, 0, end), 0) if highlight else max(end - 1, 0)
    return description, start


def _parse_one_statement(sql: str, start: int, end: int, trigger: bool) -> list[exp.Expr]:
    text = sql[start:end]
    if trigger:
        # sqlglot would cut the trigger body at its inner semicolons; keep it whole and opaque.
        head, _, rest = text.partition(" ")
        return [exp.Command(this=head.upper(), expression=exp.Literal.string(rest.strip()))]
    try:
        statements = [s for s in sqlglot.parse(text, dialect=AtlasDialect) if s is not None]
    except ParseError as error:
        found = _sqlite_syntax_error(text)
        if found is not None:
            message, offset = found
            raise SqlError.at(SYNTAX_ERROR, message, sql, start + offset) from None
        # SQLite accepts what sqlglot cannot parse: a gap in atlasql, not a user mistake.
        description, offset = _sqlglot_error_offset(text, error)
        token = error.errors[0].get("highlight") if error.errors else None
        near = f' at or near "{token}"' if token else ""
        detail = f" ({description})" if "<Token" not in description else ""
        raise SqlError.at(
            FEATURE_NOT_SUPPORTED,
            f"atlasql cannot parse this statement{near}{detail}",
            sql,
            start + offset,
        ) from None
    except TokenError as error:
        found = _sqlite_syntax_error(text)
        message, offset = found if found is not None else (f"syntax error: {error}", 0)
        raise SqlError.at(SYNTAX_ERROR, message, sql, start + offset) from None
    if any(_sqlite_checkable(s) for s in statements):
        found = _sqlite_syntax_error(text)
        if found is not None:
            message, offset = found
            raise SqlError.at(SYNTAX_ERROR, message, sql, start + offset)
    return statements


def parse(sql: str) -> list[exp.Expr]:
    """Parses one statement or a script with :class:`AtlasDialect`.

    Each statement is parsed by sqlglot and compiled (not run) by SQLite; ``CREATE TRIGGER``
    statements become opaque ``exp.Command`` nodes holding their exact text.

    Args:
        sql: The SQL text as the client sent it.

    Returns:
        One expression per statement.

    Raises:
        SqlError: ``SYNTAX_ERROR`` for empty input or invalid syntax, located at the offending
            token; ``FEATURE_NOT_SUPPORTED`` for valid SQLite that sqlglot cannot parse
            (for example ``UPDATE OR IGNORE``).

    Example:
        >>> [e.sql(dialect=AtlasDialect) for e in parse("SELECT 1; select x from t")]
        ['SELECT 1', 'SELECT x FROM t']
        >>> try:
        ...     parse("SELECT * FROMM t")
        ... except SqlError as error:
        ...     print(error.code, error.position, error)
        42601 10 syntax error at or near "FROMM" (line 1, column 10)
    """
    spans = _statement_spans(sql)
    if not spans:
        raise SqlError(SYNTAX_ERROR, "empty statement")
    statements: list[exp.Expr] = []
    for start, end, trigger in spans:
        statements.extend(_parse_one_statement(sql, start, end, trigger))
    if not statements:
        raise SqlError(SYNTAX_ERROR, "empty statement")
    return statements

"""The psql-like SQL shell: ``atlasql sql`` and ``atlasql demo`` without ``-e`` land here.

Three ways in, one behaviour per statement (result table or status line on stdout, errors on
stderr as ``ERROR:``/``SQLSTATE:`` plus a caret under the statement when the position is known):

- ``statements`` given (``-e``): run them, stop at the first error unless ``on_error="continue"``;
- stdin is not a terminal: read it whole and run it the same way;
- otherwise an interactive prompt (prompt_toolkit) with SQL highlighting, history in
  ``~/.atlasql_history``, multi-line input submitted at a complete ``;``-terminated statement,
  and meta-commands (``\\?`` lists them). Errors never end the interactive shell.

This module only talks to the cluster through the DB-API driver; it holds no server code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TextIO

from sqlfront.dialect import is_complete, split_statements
from sqlfront.driver import Connection, DatabaseError, Error, connect
from sqlfront.format import FORMATS, format_result, format_status, statement_kind

__all__ = [
    "CONTINUATION_PROMPT",
    "HISTORY_FILE",
    "PROMPT",
    "caret_lines",
    "run_shell",
    "should_submit",
]

HISTORY_FILE: Final = "~/.atlasql_history"
PROMPT: Final = "atlasql> "
CONTINUATION_PROMPT: Final = "      -> "
ON_ERROR_CHOICES: Final = ("stop", "continue")

_HELP: Final = """\
Meta-commands:
  \\q                                   quit (Ctrl-D works too)
  \\?                                   show this help
  \\format [table|csv|tsv|json|markdown] show or set the output format
  \\timing [on|off]                     toggle or set printing of each statement's time
End a statement with ';' to run it; Ctrl-C clears the current input."""


@dataclass
class _State:
    """What the meta-commands can change during a session."""

    fmt: str
    timing: bool = False
    blank_after_result: bool = False


class _Prompter(Protocol):
    """What the interactive loop needs from prompt_toolkit's ``PromptSession``."""

    def prompt(self) -> str: ...


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def run_shell(
    addresses: str,
    *,
    statements: list[str] | None = None,
    fmt: str = "table",
    on_error: str = "stop",
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Connect to ``addresses`` and run statements from ``statements``, stdin or a prompt.

    Args:
        addresses: ``"host:port[,host:port...]"``, passed to :func:`sqlfront.driver.connect`.
        statements: Texts to run (each may hold several ``;``-separated statements); when
            given, stdin is not read.
        fmt: Output format for result sets: table, csv, tsv, json or markdown.
        on_error: ``"stop"`` returns at the first failing statement, ``"continue"`` goes on
            (the exit code is still 1 when anything failed).
        stdin: Where piped SQL is read from (default ``sys.stdin``); a terminal means
            interactive mode.
        stdout: Where results go (default ``sys.stdout``).
        stderr: Where errors go (default ``sys.stderr``).

    Returns:
        The process exit code: 0 on success, 1 when a statement or the connection failed,
        2 for a bad ``fmt``/``on_error``.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    source = stdin if stdin is not None else sys.stdin
    if fmt not in FORMATS:
        print(f"ERROR: unknown format {fmt!r}: expected one of {', '.join(FORMATS)}", file=err)
        return 2
    if on_error not in ON_ERROR_CHOICES:
        print(f"ERROR: unknown on_error {on_error!r}: expected stop or continue", file=err)
        return 2
    try:
        conn = connect(addresses)
    except Error as exc:
        _print_error(exc, "", err)
        return 1
    try:
        state = _State(fmt=fmt)
        if statements is not None:
            return _run_texts(conn, statements, state, on_error, out, err)
        if not source.isatty():
            return _run_texts(conn, [source.read()], state, on_error, out, err)
        state.blank_after_result = True
        return _interactive(conn, state, _make_session(), out, err)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Running statements
# ---------------------------------------------------------------------------------------------


def _run_texts(
    conn: Connection, texts: list[str], state: _State, on_error: str, out: TextIO, err: TextIO
) -> int:
    failed = False
    for text in texts:
        for sql in split_statements(text):
            if not _run_one(conn, sql, state, out, err):
                failed = True
                if on_error == "stop":
                    return 1
    return 1 if failed else 0


def _run_one(conn: Connection, sql: str, state: _State, out: TextIO, err: TextIO) -> bool:
    """Run one statement and print its result or error; True when it succeeded."""
    started = time.perf_counter()
    try:
        cursor = conn.execute(sql)
        if cursor.description is not None:
            columns = [entry[0] for entry in cursor.description]
            text = format_result(columns, cursor.fetchall(), state.fmt)
        else:
            text = format_status(cursor.rowcount, statement_kind(sql))
    except Error as exc:
        _print_error(exc, sql, err)
        ok = False
    else:
        print(text, file=out)
        if state.blank_after_result:
            print(file=out)
        ok = True
    if state.timing:
        print(f"Time: {(time.perf_counter() - started) * 1000:.3f} ms", file=out)
    out.flush()
    return ok


def _print_error(exc: Error, sql: str, err: TextIO) -> None:
    """``ERROR: ...``, ``SQLSTATE: ...`` and, when known, the offending line with a caret."""
    if isinstance(exc, DatabaseError):
        print(f"ERROR: {exc.message}", file=err)
        if exc.sqlstate:
            print(f"SQLSTATE: {exc.sqlstate}", file=err)
        for line in caret_lines(sql, position=exc.position, line=exc.line, column=exc.column):
            print(line, file=err)
    else:
        print(f"ERROR: {exc}", file=err)
    err.flush()


def caret_lines(sql: str, *, position: int = 0, line: int = 0, column: int = 0) -> list[str]:
    """psql's pointer at a problem: the statement's line and a caret under the column.

    Uses ``line``/``column`` when both are known, else the 1-based character ``position``.

    >>> for text in caret_lines("SELECT *\\nFROM nope", position=15):
    ...     print(text)
    LINE 2: FROM nope
                 ^
    """
    lines = sql.split("\n")
    if not (line > 0 and column > 0):
        if position <= 0 or position > len(sql) + 1:
            return []
        before = sql[: position - 1]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1)
    if line > len(lines):
        return []
    prefix = f"LINE {line}: "
    text = lines[line - 1].rstrip("\r").replace("\t", " ")
    return [prefix + text, " " * (len(prefix) + column - 1) + "^"]


# ---------------------------------------------------------------------------------------------
# Interactive mode
# ---------------------------------------------------------------------------------------------


def should_submit(text: str) -> bool:
    """Whether Enter submits the buffer: a complete statement, a meta-command, or nothing.

    >>> should_submit("\\\\q"), should_submit("")
    (True, True)
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return True
    return is_complete(text)


def _make_session() -> _Prompter:
    """A prompt_toolkit session: SQL highlighting, file history, Enter submits when complete."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.lexers import PygmentsLexer
    from pygments.lexers.sql import SqlLexer

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if should_submit(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    path = os.path.expanduser(HISTORY_FILE)
    history: History
    try:
        with open(path, "a", encoding="utf-8"):
            pass
        history = FileHistory(path)
    except OSError:
        history = InMemoryHistory()  # read-only home: keep the session usable

    def continuation(width: int, line_number: int, wrap_count: int) -> str:
        return CONTINUATION_PROMPT

    session: PromptSession[str] = PromptSession(
        message=PROMPT,
        lexer=PygmentsLexer(SqlLexer),
        history=history,
        multiline=True,
        key_bindings=bindings,
        prompt_continuation=continuation,
    )
    return session


def _interactive(
    conn: Connection, state: _State, session: _Prompter, out: TextIO, err: TextIO
) -> int:
    print(f"# Connected to atlasql at {conn.current_address}.", file=out)
    print("# Enter \\? for help, \\q to quit.", file=out)
    while True:
        try:
            text = session.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C: drop the current input
        except EOFError:
            return 0  # Ctrl-D
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith("\\"):
            if not _meta_command(stripped, state, out, err):
                return 0
            continue
        for sql in split_statements(text):
            try:
                _run_one(conn, sql, state, out, err)
            except KeyboardInterrupt:
                print("ERROR: cancelled by Ctrl-C (the statement may still complete)", file=err)
                break


_MetaHandler = Callable[[list[str], _State, TextIO, TextIO], bool]


def _meta_command(text: str, state: _State, out: TextIO, err: TextIO) -> bool:
    """Run one meta-command; False means quit."""
    name, *args = text.split()
    handler = _META_COMMANDS.get(name)
    if handler is None:
        print(f"ERROR: invalid command {name}. Try \\? for help.", file=err)
        return True
    return handler(args, state, out, err)


def _meta_quit(args: list[str], state: _State, out: TextIO, err: TextIO) -> bool:
    return False


def _meta_help(args: list[str], state: _State, out: TextIO, err: TextIO) -> bool:
    print(_HELP, file=out)
    return True


def _meta_format(args: list[str], state: _State, out: TextIO, err: TextIO) -> bool:
    if not args:
        print(f"Output format is {state.fmt}.", file=out)
    elif len(args) == 1 and args[0] in FORMATS:
        state.fmt = args[0]
        print(f"Output format is {state.fmt}.", file=out)
    else:
        print(f"ERROR: \\format expects one of {', '.join(FORMATS)}", file=err)
    return True


def _meta_timing(args: list[str], state: _State, out: TextIO, err: TextIO) -> bool:
    if not args:
        state.timing = not state.timing
    elif len(args) == 1 and args[0].lower() in ("on", "off"):
        state.timing = args[0].lower() == "on"
    else:
        print("ERROR: \\timing expects on, off or nothing", file=err)
        return True
    print(f"Timing is {'on' if state.timing else 'off'}.", file=out)
    return True


_META_COMMANDS: Final[dict[str, _MetaHandler]] = {
    "\\q": _meta_quit,
    "\\?": _meta_help,
    "\\format": _meta_format,
    "\\timing": _meta_timing,
}

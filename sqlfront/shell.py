"""The psql-like SQL shell: ``atlasql sql`` and ``atlasql demo`` without ``-e`` land here.

Three ways in, one behaviour per statement (result table or status line on stdout, errors on
stderr as ``ERROR:``/``SQLSTATE:`` plus a caret under the statement when the position is known):

- ``statements`` given (``-e``): run them, stop at the first error unless ``on_error="continue"``;
- stdin is not a terminal: read it whole and run it the same way;
- otherwise an interactive prompt (prompt_toolkit) with SQL highlighting, history in
  ``~/.atlasql_history``, multi-line input submitted at a complete ``;``-terminated statement,
  TAB completion from the live catalog, a pager for long results, and Ctrl-C that stops
  waiting for a running statement. Errors never end the interactive shell.

Meta-commands (``\\?`` lists them) work in all three: a line starting with ``\\`` is one.
Their pure parts (parsing, listings, completion) live in :mod:`sqlfront.shellmeta`; this module
does the I/O: the DB-API driver for SQL and an admin gRPC channel for the catalog and cluster
status. It holds no server code.
"""

from __future__ import annotations

import os
import pydoc
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TextIO

import grpc

from proto import pb, rpc
from sqlfront.dialect import is_complete
from sqlfront.driver import Connection, DatabaseError, Error, connect
from sqlfront.format import FORMATS, format_result, format_status, statement_kind
from sqlfront.shellcopy import CopyError, run_copy
from sqlfront.shellmeta import (
    DEFAULT_DATABASE,
    HELP,
    CatalogView,
    Listing,
    MetaCommand,
    MetaSyntaxError,
    catalog_view,
    complete,
    database_names,
    describe_table,
    indexes_listing,
    nodes_listing,
    parse_meta,
    ranges_listing,
    regions_listing,
    split_script,
    tables_listing,
)

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
ADMIN_TIMEOUT: Final = 5.0
MAX_INCLUDE_DEPTH: Final = 16
CANCELLED_MESSAGE: Final = (
    "Cancel: stopped waiting for the statement. atlasql has no server-side cancellation yet,\n"
    "so the statement may still complete on the server."
)
_DDL: Final = frozenset({"CREATE", "DROP", "ALTER"})

# The generated stub class is untyped; give its constructor a typed name.
_new_admin_stub: Callable[[grpc.Channel], rpc.AdminStub] = rpc.AdminStub


class _Quit(Exception):
    """``\\q`` inside a script or an interactive line."""


class _Cancelled(Exception):
    """Ctrl-C while waiting for a statement."""


@dataclass
class _State:
    """What the meta-commands can change during a session."""

    fmt: str
    timing: bool = False
    expanded: bool = False
    pager: bool = True
    interactive: bool = False
    variables: dict[str, str] = field(default_factory=lambda: {"null": "NULL"})


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
    database: str = "",
) -> int:
    """Connect to ``addresses`` and run statements from ``statements``, stdin or a prompt.

    Args:
        addresses: ``"host:port[,host:port...]"``, passed to :func:`sqlfront.driver.connect`.
        statements: Texts to run (each may hold several ``;``-separated statements and
            meta-command lines); when given, stdin is not read.
        fmt: Output format for result sets: table, csv, tsv, json or markdown.
        on_error: ``"stop"`` returns at the first failing statement, ``"continue"`` goes on
            (the exit code is still 1 when anything failed).
        stdin: Where piped SQL is read from (default ``sys.stdin``); a terminal means
            interactive mode.
        stdout: Where results go (default ``sys.stdout``).
        stderr: Where errors go (default ``sys.stderr``).
        database: The database to start in (default ``defaultdb``).

    Returns:
        The process exit code: 0 on success, 1 when a statement, a meta-command or the
        connection failed, 2 for a bad ``fmt``/``on_error``, 130 when interrupted by Ctrl-C
        outside the interactive prompt.
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
        conn = connect(addresses, database=database)
    except Error as exc:
        _print_error(exc, "", err)
        return 1
    shell = Shell(addresses, conn, _State(fmt=fmt), out, err)
    try:
        if statements is not None:
            return shell.run_texts(statements, on_error)
        if not source.isatty():
            return shell.run_texts([source.read()], on_error)
        shell.state.interactive = True
        session = _make_session(lambda: prompt_for(conn))
        _attach_completer(session, shell)
        return shell.interactive(session)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=err)
        return 130
    finally:
        shell.close()


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


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


class _MetaError(Exception):
    """A meta-command failed; the message is printed as ``ERROR: ...``."""


# ---------------------------------------------------------------------------------------------
# The shell
# ---------------------------------------------------------------------------------------------


@dataclass
class _Result:
    columns: list[str] | None
    rows: Sequence[Sequence[object]]
    rowcount: int
    hops: Sequence[tuple[str, str, float]] = ()


class Shell:
    """One session: a connection, display settings, the output target and a catalog cache."""

    def __init__(
        self, addresses: str, conn: Connection, state: _State, out: TextIO, err: TextIO
    ) -> None:
        self.addresses = addresses
        self.conn = conn
        self.state = state
        self.terminal = out
        self.out = out
        self.err = err
        self.view = CatalogView()
        self._admin: tuple[str, grpc.Channel] | None = None
        self._depth = 0
        self.failures = 0
        self._interrupted = False  # a Ctrl-C arrived since the prompt returned
        self._waiting = False  # the main thread waits for a statement: Ctrl-C cancels it

    def close(self) -> None:
        self._set_output(None)
        if self._admin is not None:
            self._admin[1].close()
            self._admin = None
        self.conn.close()

    # -- scripts -------------------------------------------------------------------------------

    def run_texts(self, texts: Iterable[str], on_error: str) -> int:
        """Run scripts (statements and meta-command lines); the exit code."""
        try:
            for text in texts:
                if not self.run_script(text, stop_on_error=on_error == "stop"):
                    if on_error == "stop":
                        return 1
        except _Quit:
            pass
        return 1 if self.failures else 0

    def run_script(self, text: str, *, stop_on_error: bool) -> bool:
        """Run every item of one script; False when any failed (stops there if asked)."""
        ok = True
        for item in split_script(text):
            good = self.run_meta(item.text) if item.meta else self.run_sql(item.text)
            if not good:
                ok = False
                self.failures += 1
                if stop_on_error:
                    break
        return ok

    # -- SQL -----------------------------------------------------------------------------------

    def run_sql(self, sql: str) -> bool:
        """Run one statement and print its result or error; True when it succeeded."""
        started = time.perf_counter()
        try:
            result = self._execute(sql)
        except _Cancelled:
            print(CANCELLED_MESSAGE, file=self.err)
            self.err.flush()
            return False
        except Error as exc:
            _print_error(exc, sql, self.err)
            ok = False
        else:
            if result.columns is not None:
                self.emit_result(result.columns, result.rows)
            else:
                self.emit(format_status(result.rowcount, statement_kind(sql)))
            ok = True
        if self.state.timing:
            self.emit(f"Time: {(time.perf_counter() - started) * 1000:.3f} ms", blank=False)
            for where, what, ms in result.hops if ok else ():
                self.emit(f"  {ms:9.3f} ms  {where}: {what}", blank=False)
        if ok and statement_kind(sql).split(" ")[0] in _DDL and self.state.interactive:
            self.refresh_catalog(quiet=True)
        return ok

    def _execute(self, sql: str) -> _Result:
        if not self.state.interactive:
            return _run_statement(self.conn, sql)
        return self._execute_cancellable(sql)

    def _execute_cancellable(self, sql: str) -> _Result:
        """Run on a worker thread so that Ctrl-C (SIGINT, in the main thread) can stop waiting.

        There is no cancellation RPC yet: a cancelled statement keeps running on the server.
        Its connection is left to the worker (closed when the answer arrives) and the shell
        continues on a fresh connection, so later statements are not queued behind it.
        """
        conn = self.conn
        box: dict[str, object] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = _run_statement(conn, sql)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()
                if box.get("abandoned"):
                    conn.close()

        worker = threading.Thread(target=work, name="atlasql-statement", daemon=True)
        try:
            self._waiting = True
            worker.start()
            if self._interrupted:  # Ctrl-C between the prompt and here: it meant this one
                raise KeyboardInterrupt
            done.wait()
        except KeyboardInterrupt:
            box["abandoned"] = True
            if done.is_set():  # the answer raced the Ctrl-C: show it after all
                conn.close()
            else:
                # Closing the channel cancels the call: the server stops the statement.
                conn.close()
                self._reconnect()
                raise _Cancelled from None
        finally:
            self._waiting = False
            self._interrupted = False
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["result"]  # type: ignore[return-value]

    def _reconnect(self) -> None:
        try:
            self.conn = connect(self.addresses, database=self.conn.database)
            self.conn.trace = self.state.timing
        except Error as exc:
            _print_error(exc, "", self.err)

    # -- output --------------------------------------------------------------------------------

    def emit_result(self, columns: list[str], rows: Sequence[Sequence[object]]) -> None:
        width = self._terminal_size().columns if self._to_terminal() else None
        self.emit(
            format_result(
                columns,
                rows,
                self.state.fmt,
                null=self.state.variables.get("null", "NULL"),
                expanded=self.state.expanded,
                max_width=width,
            )
        )

    def emit_listing(self, listing: Listing) -> None:
        if listing.title and self.state.fmt == "table":
            self.emit(listing.title, blank=False)
        self.emit_result(list(listing.columns), listing.rows)
        if listing.notes:
            self.emit("\n".join(listing.notes))

    def emit(self, text: str, *, blank: bool = True) -> None:
        """Print ``text`` (through the pager when it is taller or wider than the terminal)."""
        if self._to_terminal() and self._pager_wanted() and self._too_big(text):
            self._page(text + "\n")
        else:
            print(text, file=self.out)
        if blank and self.state.interactive:
            print(file=self.out)
        self.out.flush()

    def _to_terminal(self) -> bool:
        return self.state.interactive and self.out is self.terminal and _isatty(self.out)

    def _terminal_size(self) -> os.terminal_size:
        return shutil.get_terminal_size((100, 24))

    def _pager_wanted(self) -> bool:
        return self.state.pager and os.environ.get("ATLASQL_PAGER", "").lower() != "off"

    def _too_big(self, text: str) -> bool:
        size = self._terminal_size()
        lines = text.split("\n")
        return len(lines) > size.lines - 2 or max(len(line) for line in lines) > size.columns

    def _page(self, text: str) -> None:
        command = os.environ.get("ATLASQL_PAGER") or os.environ.get("PAGER")
        if not command and shutil.which("less"):
            command = "less -FRSX"
        previous = _ignore_sigint()
        try:
            if command:
                subprocess.run(command, shell=True, input=text, text=True, check=False)
            else:
                pydoc.pager(text)
        except OSError:
            print(text, file=self.out, end="")
        finally:
            _restore_sigint(previous)

    def _set_output(self, path: str | None) -> None:
        if self.out is not self.terminal:
            self.out.close()
        self.out = self.terminal
        if path is not None:
            self.out = open(os.path.expanduser(path), "w", encoding="utf-8")  # noqa: SIM115

    # -- cluster metadata ----------------------------------------------------------------------

    def _admin_stub(self) -> rpc.AdminStub:
        address = self.conn.current_address
        if self._admin is None or self._admin[0] != address:
            if self._admin is not None:
                self._admin[1].close()
            self._admin = (address, grpc.insecure_channel(address))
        return _new_admin_stub(self._admin[1])

    def refresh_catalog(self, *, quiet: bool = False) -> CatalogView:
        """Fetch the catalog from the gateway; keeps the cached one when that fails."""
        try:
            resp = self._admin_stub().GetCatalog(pb.CatalogRequest(), timeout=ADMIN_TIMEOUT)
        except grpc.RpcError as exc:
            if quiet:
                return self.view
            raise _MetaError(
                f"cannot read the catalog from {self.conn.current_address}: {_rpc_text(exc)}"
            ) from None
        if resp.HasField("error") and resp.error.code:
            if quiet:
                return self.view
            raise _MetaError(f"cannot read the catalog: {resp.error.message} ({resp.error.code})")
        self.view = catalog_view(resp.catalog, self.conn.database)
        return self.view

    def cluster_status(self) -> pb.ClusterStatusResponse:
        try:
            resp: pb.ClusterStatusResponse = self._admin_stub().ClusterStatus(
                pb.ClusterStatusRequest(), timeout=ADMIN_TIMEOUT
            )
            return resp
        except grpc.RpcError as exc:
            raise _MetaError(
                f"cannot read the cluster status from {self.conn.current_address}: {_rpc_text(exc)}"
            ) from None

    # -- meta-commands -------------------------------------------------------------------------

    def run_meta(self, line: str) -> bool:
        """Run one meta-command line; False when it failed. Raises ``_Quit`` for ``\\q``."""
        try:
            command = parse_meta(line)
            handler = _META_HANDLERS.get(command.name)
            if handler is None:
                raise _MetaError(f"invalid command \\{command.name}. Try \\? for help.")
            handler(self, command)
        except (_MetaError, MetaSyntaxError) as exc:
            print(f"ERROR: {exc}", file=self.err)
            self.err.flush()
            return False
        return True

    # -- interactive ---------------------------------------------------------------------------

    def _on_sigint(self, signum: int, frame: object) -> None:
        """Ctrl-C outside the prompt: cancels the statement being waited for, or the next one
        when it comes between the prompt handing over a line and that statement starting."""
        self._interrupted = True
        if self._waiting:
            raise KeyboardInterrupt

    def interactive(self, session: _Prompter) -> int:
        print(f"# Connected to atlasql at {self.conn.current_address}.", file=self.terminal)
        print("# Enter \\? for help, \\q to quit.", file=self.terminal)
        self.refresh_catalog(quiet=True)
        try:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: keep Python's KeyboardInterrupt
            previous = None
        try:
            return self._loop(session)
        finally:
            _restore_sigint(previous)

    def _loop(self, session: _Prompter) -> int:
        while True:
            self._interrupted = False  # a Ctrl-C while results printed is spent
            try:
                text = session.prompt()
            except KeyboardInterrupt:
                continue  # Ctrl-C: drop the current input
            except EOFError:
                return 0  # Ctrl-D
            if not text.strip():
                continue
            try:
                self.run_script(text, stop_on_error=True)
            except _Quit:
                return 0
            except KeyboardInterrupt:
                print("\nInterrupted.", file=self.err)


def _run_statement(conn: Connection, sql: str) -> _Result:
    cursor = conn.execute(sql)
    hops = list(getattr(cursor, "hops", ()))
    if cursor.description is None:
        return _Result(None, [], cursor.rowcount, hops)
    return _Result([d[0] for d in cursor.description], cursor.fetchall(), cursor.rowcount, hops)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rpc_text(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else ""
    return f"{code.name if code else 'error'}{': ' + details if details else ''}"


def _ignore_sigint() -> object:
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return None


def _restore_sigint(previous: object) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Meta-command handlers
# ---------------------------------------------------------------------------------------------


def _on_off(command: MetaCommand, current: bool) -> bool:
    if not command.args:
        return not current
    if len(command.args) == 1 and command.args[0].lower() in ("on", "off"):
        return command.args[0].lower() == "on"
    raise _MetaError(f"\\{command.name} expects on, off or nothing")


def _no_args(command: MetaCommand) -> None:
    if command.args:
        raise _MetaError(f"\\{command.name} takes no arguments")


def _one_optional(command: MetaCommand) -> str | None:
    if len(command.args) > 1:
        raise _MetaError(f"\\{command.name} takes at most one argument")
    return command.args[0] if command.args else None


def _meta_quit(shell: Shell, command: MetaCommand) -> None:
    raise _Quit


def _meta_help(shell: Shell, command: MetaCommand) -> None:
    shell.emit(HELP)


def _meta_format(shell: Shell, command: MetaCommand) -> None:
    if len(command.args) == 1 and command.args[0] in FORMATS:
        shell.state.fmt = command.args[0]
    elif command.args:
        raise _MetaError(f"\\format expects one of {', '.join(FORMATS)}")
    shell.emit(f"Output format is {shell.state.fmt}.")


def _meta_timing(shell: Shell, command: MetaCommand) -> None:
    shell.state.timing = _on_off(command, shell.state.timing)
    if hasattr(shell.conn, "trace"):
        shell.conn.trace = shell.state.timing  # the server times each hop of a SELECT
    shell.emit(f"Timing is {'on' if shell.state.timing else 'off'}.")


def _meta_expanded(shell: Shell, command: MetaCommand) -> None:
    shell.state.expanded = _on_off(command, shell.state.expanded)
    shell.emit(f"Expanded display is {'on' if shell.state.expanded else 'off'}.")


def _meta_list_databases(shell: Shell, command: MetaCommand) -> None:
    _no_args(command)
    names = database_names(shell.refresh_catalog().catalog)
    shell.emit_listing(Listing(("database_name",), [(d,) for d in names], "List of databases"))


def _meta_connect(shell: Shell, command: MetaCommand) -> None:
    name = _one_optional(command)
    if name is not None:
        try:
            shell.conn.execute(f'USE "{name}"' if not name.isidentifier() else f"USE {name}")
        except DatabaseError as exc:
            raise _MetaError(str(exc)) from None
        shell.refresh_catalog(quiet=True)
        shell.emit(f'You are now connected to database "{shell.conn.database}".')
        return
    current = shell.conn.database or DEFAULT_DATABASE
    shell.emit(f'You are connected to database "{current}" at {shell.conn.current_address}.')


def _meta_tables(shell: Shell, command: MetaCommand) -> None:
    shell.emit_listing(tables_listing(shell.refresh_catalog(), _one_optional(command)))


def _meta_describe(shell: Shell, command: MetaCommand) -> None:
    name = _one_optional(command)
    view = shell.refresh_catalog()
    if name is None:
        shell.emit_listing(tables_listing(view))
        return
    if view.table(name) is None:
        raise _MetaError(f'Did not find any table named "{name}".')
    listing = describe_table(view, name, shell.cluster_status())
    assert listing is not None
    shell.emit_listing(listing)


def _meta_indexes(shell: Shell, command: MetaCommand) -> None:
    shell.emit_listing(indexes_listing(shell.refresh_catalog(), _one_optional(command)))


def _meta_nodes(shell: Shell, command: MetaCommand) -> None:
    _no_args(command)
    shell.emit_listing(nodes_listing(shell.cluster_status()))


def _meta_regions(shell: Shell, command: MetaCommand) -> None:
    _no_args(command)
    shell.emit_listing(regions_listing(shell.cluster_status()))


def _meta_ranges(shell: Shell, command: MetaCommand) -> None:
    table = _one_optional(command)
    view = shell.refresh_catalog()
    if table is not None and view.table(table) is None:
        raise _MetaError(f'Did not find any table named "{table}".')
    shell.emit_listing(ranges_listing(view, shell.cluster_status(), table))


def _meta_output(shell: Shell, command: MetaCommand) -> None:
    path = _one_optional(command)
    try:
        shell._set_output(path)
    except OSError as exc:
        raise _MetaError(f"\\o {path}: {exc.strerror or exc}") from None


def _meta_include(shell: Shell, command: MetaCommand) -> None:
    if len(command.args) != 1:
        raise _MetaError("\\i expects one file name")
    path = os.path.expanduser(command.args[0])
    if shell._depth >= MAX_INCLUDE_DEPTH:
        raise _MetaError(f"\\i {path}: files nested more than {MAX_INCLUDE_DEPTH} deep")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise _MetaError(f"\\i {path}: {exc.strerror or exc}") from None
    shell._depth += 1
    try:
        ok = shell.run_script(text, stop_on_error=True)
    finally:
        shell._depth -= 1
    if not ok:
        raise _MetaError(f"\\i {path}: stopped at the first error")


def _meta_copy(shell: Shell, command: MetaCommand) -> None:
    def columns_of(table: str) -> list[str] | None:
        info = shell.refresh_catalog().table(table)
        return info.column_names() if info is not None else None

    progress = shell.terminal if shell.state.interactive else None
    try:
        status = run_copy(shell.conn, command.args, columns_of, progress)
    except CopyError as exc:
        raise _MetaError(str(exc)) from None
    except Error as exc:
        raise _MetaError(f"\\copy: {exc}; nothing was loaded from the failing batch") from None
    shell.emit(status)


def _meta_set(shell: Shell, command: MetaCommand) -> None:
    variables = shell.state.variables
    if not command.args:
        shell.emit("\n".join(f"{k} = '{v}'" for k, v in sorted(variables.items())))
        return
    name, *values = command.args
    variables[name] = "".join(values)


def _meta_unset(shell: Shell, command: MetaCommand) -> None:
    if len(command.args) != 1:
        raise _MetaError("\\unset expects one variable name")
    shell.state.variables.pop(command.args[0], None)
    if command.args[0] == "null":
        shell.state.variables["null"] = "NULL"


def _meta_pset(shell: Shell, command: MetaCommand) -> None:
    if not command.args:
        state = shell.state
        shell.emit(
            "\n".join(
                [
                    f"expanded   {'on' if state.expanded else 'off'}",
                    f"format     {state.fmt}",
                    f"null       '{state.variables.get('null', 'NULL')}'",
                    f"pager      {'on' if state.pager else 'off'}",
                ]
            )
        )
        return
    option, *rest = command.args
    sub = MetaCommand(f"pset {option}", tuple(rest))
    if option == "pager":
        shell.state.pager = _on_off(sub, shell.state.pager)
        shell.emit(f"Pager usage is {'on' if shell.state.pager else 'off'}.")
    elif option == "expanded":
        _meta_expanded(shell, sub)
    elif option == "format":
        _meta_format(shell, MetaCommand("format", tuple(rest)))
    elif option == "null":
        shell.state.variables["null"] = "".join(rest)
        shell.emit(f'Null display is "{shell.state.variables["null"]}".')
    else:
        raise _MetaError(
            f"\\pset: unknown option {option!r}: expected pager, expanded, format or null"
        )


def _meta_echo(shell: Shell, command: MetaCommand) -> None:
    shell.emit(" ".join(command.args), blank=False)


_META_HANDLERS: Final[dict[str, Callable[[Shell, MetaCommand], None]]] = {
    "q": _meta_quit,
    "quit": _meta_quit,
    "?": _meta_help,
    "h": _meta_help,
    "format": _meta_format,
    "timing": _meta_timing,
    "x": _meta_expanded,
    "l": _meta_list_databases,
    "c": _meta_connect,
    "connect": _meta_connect,
    "dt": _meta_tables,
    "d": _meta_describe,
    "di": _meta_indexes,
    "nodes": _meta_nodes,
    "regions": _meta_regions,
    "ranges": _meta_ranges,
    "o": _meta_output,
    "i": _meta_include,
    "copy": _meta_copy,
    "set": _meta_set,
    "unset": _meta_unset,
    "pset": _meta_pset,
    "echo": _meta_echo,
}


# ---------------------------------------------------------------------------------------------
# The prompt
# ---------------------------------------------------------------------------------------------


def should_submit(text: str) -> bool:
    """Whether Enter submits the buffer: a complete statement, a meta-command, or nothing.

    >>> should_submit("\\\\q"), should_submit(""), should_submit("SELECT 1")
    (True, True, False)
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return True
    return is_complete(text)


def _attach_completer(session: _Prompter, shell: Shell) -> None:
    """TAB completion from the shell's catalog cache (skipped for a stand-in session)."""
    if not hasattr(session, "completer"):
        return
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document

    class CatalogCompleter(Completer):
        def get_completions(
            self, document: Document, complete_event: CompleteEvent
        ) -> Iterable[Completion]:
            replace, words = complete(
                document.text_before_cursor,
                shell.view,
                list(shell.state.variables),
                after=document.text_after_cursor,
            )
            for word in words:
                yield Completion(word, start_position=-replace)

    session.completer = CatalogCompleter()


def prompt_for(conn: Connection) -> str:
    """``atlasql> ``, or, as psql marks an open transaction, ``atlasql*> `` (``atlasql!> ``
    once a statement in it failed with a restart: only ROLLBACK is accepted)."""
    return {"open": "atlasql*> ", "failed": "atlasql!> "}.get(conn.transaction_status, PROMPT)


def _make_session(message: Callable[[], str] = lambda: PROMPT) -> _Prompter:
    """A prompt_toolkit session: SQL highlighting, file history, Enter submits when complete
    (or accepts the highlighted completion)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.lexers import PygmentsLexer
    from pygments.lexers.sql import SqlLexer

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.complete_state is not None and buffer.complete_state.current_completion:
            buffer.apply_completion(buffer.complete_state.current_completion)
            return
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
        message=message,
        lexer=PygmentsLexer(SqlLexer),
        history=history,
        multiline=True,
        key_bindings=bindings,
        prompt_continuation=continuation,
        complete_while_typing=False,
    )
    return session

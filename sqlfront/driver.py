"""A PEP 249 (DB-API 2.0) client for atlasql, shaped like the standard library's ``sqlite3``.

>>> import sqlfront.driver as driver
>>> (driver.apilevel, driver.threadsafety, driver.paramstyle)
('2.0', 1, 'qmark')

Usage::

    conn = connect("127.0.0.1:26257,127.0.0.1:26258")
    cur = conn.execute("SELECT id, name FROM users WHERE id = ?", (1,))
    print(cur.fetchall())

A connection talks to one node (the gateway) at a time. When the node cannot be reached (gRPC
``UNAVAILABLE``) the same request is sent to the next address of the list, round-robin, each
address at most once per call. Every request carries the connection's ``session_id`` and a
``seq`` number that is reused by such a retry, so the cluster applies an ambiguous write at most
once (architecture invariant 6).

Transactions: with ``autocommit`` true (the default, as ``connect()`` has always behaved) every
statement commits on its own unless the application runs ``BEGIN`` ... ``COMMIT`` itself. With
``autocommit`` false (``connect(..., autocommit=False)`` or ``conn.autocommit = False``) the driver
opens a transaction before the first SELECT/INSERT/UPDATE/DELETE/REPLACE/WITH/VALUES statement,
and ``commit()``/``rollback()`` end it (DDL outside a transaction runs on its own). Transactions
are serializable; a conflict raises ``OperationalError`` with ``sqlstate == "40001"``: roll back
and run the transaction again. A transaction lives on the node the connection talks to, so the
driver never fails over in the middle of one (the transaction is then lost: 40001).

Exception tree (PEP 249)::

    Exception
    ├── Warning
    └── Error
        ├── InterfaceError          misuse of the driver, bad address list
        └── DatabaseError           carries .sqlstate, .position, .line, .column
            ├── DataError           SQLSTATE class 22
            ├── OperationalError    08 (connection), 40 (retry), 53, 57, 58, AQ (routing)
            ├── IntegrityError      23
            ├── InternalError       XX
            ├── ProgrammingError    42, closed connection/cursor, unsupported parameter
            └── NotSupportedError   0A, transactions
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import pb, rpc
from storage.errors import ValueTypeError
from storage.sqlstate import CONNECTION_FAILURE
from storage.values import SqlValue, params_to_proto, row_from_proto, row_to_proto

# Statements before which autocommit=False opens a transaction (DDL runs on its own).
_TXN_STATEMENT_RE = re.compile(r"^\s*(?:SELECT|WITH|INSERT|UPDATE|DELETE|REPLACE|VALUES)\b", re.I)

__all__ = [
    "apilevel",
    "threadsafety",
    "paramstyle",
    "connect",
    "Connection",
    "Cursor",
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "error_from_proto",
    "Binary",
    "Date",
    "Time",
    "Timestamp",
    "DateFromTicks",
    "TimeFromTicks",
    "TimestampFromTicks",
    "STRING",
    "BINARY",
    "NUMBER",
    "DATETIME",
    "ROWID",
]

apilevel: Final = "2.0"
threadsafety: Final = 1  # threads may share the module, not connections
paramstyle: Final = "qmark"

MAX_MESSAGE_BYTES: Final = 256 * 1024 * 1024
BATCH_BYTES: Final = 16 * 1024 * 1024
"""executemany sends its parameter rows in requests of about this size; each is one atomic
Raft entry (all its rows apply or none)."""
"""gRPC send/receive limit: large enough for big result sets and blobs."""

_CHANNEL_OPTIONS: Final = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly to a node that restarts (gRPC's default backoff starts at 1 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

Parameters = Sequence[object] | Mapping[str, object]

# The generated stub class is untyped; give its constructor a typed name.
_new_sql_stub: Callable[[grpc.Channel], rpc.SQLStub] = rpc.SQLStub

# ---------------------------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------------------------


class Warning(Exception):  # noqa: A001 - the name is fixed by PEP 249
    """Important warnings (PEP 249); atlasql does not raise it yet."""


class Error(Exception):
    """Base class of every error raised by the driver."""


class InterfaceError(Error):
    """The driver itself was misused (for example a malformed address list)."""


class DatabaseError(Error):
    """An error reported by, or about, the database.

    Attributes:
        message: The message without position information.
        sqlstate: The SQLSTATE-like code (``"42P01"`` ...), empty when unknown.
        position: 1-based character offset of the problem in the statement, 0 when unknown.
        line: 1-based line of the problem, 0 when unknown.
        column: 1-based column of the problem, 0 when unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str = "",
        position: int = 0,
        line: int = 0,
        column: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.position = position
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line > 0 and self.column > 0:
            return f"{self.message} (at line {self.line}, column {self.column})"
        if self.position > 0:
            return f"{self.message} (at position {self.position})"
        return self.message


class DataError(DatabaseError):
    """A problem with the processed data (SQLSTATE class 22)."""


class OperationalError(DatabaseError):
    """The database could not do the work: unreachable, overloaded, retry needed, cancelled."""


class IntegrityError(DatabaseError):
    """A constraint was violated (SQLSTATE class 23)."""


class InternalError(DatabaseError):
    """The database hit an internal error (SQLSTATE class XX)."""


class ProgrammingError(DatabaseError):
    """A mistake in the statement or its use: syntax, unknown table, closed cursor ..."""


class NotSupportedError(DatabaseError):
    """A feature atlasql does not support (SQLSTATE class 0A, transactions)."""


_OPERATIONAL_CLASSES: Final = frozenset({"08", "40", "53", "57", "58", "AQ"})


def _class_for_code(code: str) -> type[DatabaseError]:
    """The exception class for a SQLSTATE-like code.

    >>> _class_for_code("42P01").__name__
    'ProgrammingError'
    >>> _class_for_code("AQ001").__name__
    'OperationalError'
    >>> _class_for_code("99999").__name__
    'DatabaseError'
    """
    cls = code[:2].upper()
    if cls == "42":
        return ProgrammingError
    if cls == "23":
        return IntegrityError
    if cls == "22":
        return DataError
    if cls == "0A":
        return NotSupportedError
    if cls in _OPERATIONAL_CLASSES:
        return OperationalError
    if cls == "XX":
        return InternalError
    return DatabaseError


def error_from_proto(error: pb.Error) -> DatabaseError:
    """Turn a wire ``Error`` into the matching PEP 249 exception (not raised).

    >>> exc = error_from_proto(pb.Error(code="23505", message="UNIQUE failed", position=8))
    >>> type(exc).__name__, exc.sqlstate, str(exc)
    ('IntegrityError', '23505', 'UNIQUE failed (at position 8)')
    """
    cls = _class_for_code(error.code)
    return cls(
        error.message or f"database error {error.code}",
        sqlstate=error.code,
        position=error.position,
        line=error.line,
        column=error.column,
    )


# ---------------------------------------------------------------------------------------------
# Type objects and constructors (PEP 249). SQLite stores dates as text, so the date/time
# constructors return ISO 8601 strings, the same text sqlite3's default adapters produce.
# ---------------------------------------------------------------------------------------------


class _TypeObject:
    """Compares equal to any of the type codes it groups."""

    def __init__(self, *values: str) -> None:
        self._values = frozenset(values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _TypeObject):
            return self._values == other._values
        return other in self._values

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"_TypeObject({', '.join(sorted(self._values))})"


STRING: Final = _TypeObject("TEXT", "VARCHAR", "CHAR", "CLOB", "STRING")
BINARY: Final = _TypeObject("BLOB", "BYTES")
NUMBER: Final = _TypeObject("INTEGER", "INT", "REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL")
DATETIME: Final = _TypeObject("DATE", "TIME", "DATETIME", "TIMESTAMP")
ROWID: Final = _TypeObject("ROWID")


def Binary(value: bytes | bytearray | memoryview) -> bytes:  # noqa: N802 - PEP 249 name
    """A BLOB parameter value.

    >>> Binary(bytearray(b"ab"))
    b'ab'
    """
    return bytes(value)


def Date(year: int, month: int, day: int) -> str:  # noqa: N802 - PEP 249 name
    """A date as ISO text.

    >>> Date(2024, 2, 29)
    '2024-02-29'
    """
    return datetime.date(year, month, day).isoformat()


def Time(hour: int, minute: int, second: int) -> str:  # noqa: N802 - PEP 249 name
    """A time of day as ISO text.

    >>> Time(7, 5, 0)
    '07:05:00'
    """
    return datetime.time(hour, minute, second).isoformat()


def Timestamp(  # noqa: N802 - PEP 249 name
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> str:
    """A timestamp as the text SQLite's ``datetime()`` produces.

    >>> Timestamp(2024, 2, 29, 13, 45, 0)
    '2024-02-29 13:45:00'
    """
    return datetime.datetime(year, month, day, hour, minute, second).isoformat(" ")


def DateFromTicks(ticks: float) -> str:  # noqa: N802 - PEP 249 name
    """The local date of a POSIX timestamp, as ISO text."""
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> str:  # noqa: N802 - PEP 249 name
    """The local time of day of a POSIX timestamp, as ISO text."""
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> str:  # noqa: N802 - PEP 249 name
    """The local date and time of a POSIX timestamp, as SQLite-style text."""
    return Timestamp(*time.localtime(ticks)[:6])


# ---------------------------------------------------------------------------------------------
# Addresses and gRPC plumbing
# ---------------------------------------------------------------------------------------------


def parse_addresses(addresses: str) -> list[str]:
    """Split ``"host:port[,host:port...]"`` into a list, checking each entry.

    >>> parse_addresses(" 127.0.0.1:26257, [::1]:26258 ")
    ['127.0.0.1:26257', '[::1]:26258']

    Raises:
        InterfaceError: An entry is empty or lacks a valid port.
    """
    result: list[str] = []
    for raw in addresses.split(","):
        entry = raw.strip()
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InterfaceError(
                f"invalid address {entry!r} in {addresses!r}: expected host:port[,host:port...]"
            )
        result.append(entry)
    return result


def _status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if callable(code):
        value = code()
        if isinstance(value, grpc.StatusCode):
            return value
    return None


def _status_details(exc: grpc.RpcError) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        text = details()
        if isinstance(text, str) and text:
            return text
    return str(exc)


# ---------------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------------


class Connection:
    """A PEP 249 connection to an atlasql cluster through one gateway node at a time.

    Use :func:`connect` rather than building one directly.
    """

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, addresses: Sequence[str], *, timeout: float, database: str) -> None:
        if not addresses:
            raise InterfaceError("no address given")
        if timeout <= 0:
            raise InterfaceError(f"timeout must be positive, got {timeout}")
        self._addresses: tuple[str, ...] = tuple(addresses)
        self._timeout = timeout
        self._database = database
        self._settings: dict[str, str] = {}
        self.trace = False
        """Ask the server to time every hop of each SELECT (``Cursor.hops``; atlasql only)."""
        self._session_id = uuid.uuid4().hex
        self._seq = 0
        self._lock = threading.Lock()
        self._index = 0
        self._channel: grpc.Channel | None = None
        self._stub: rpc.SQLStub | None = None
        self._closed = False
        self._uncommitted_writes = False
        self._autocommit = True
        self._txn_status = ""  # the server's view: "" (none), "open", "failed"

    # -- properties --------------------------------------------------------------------------

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every gateway address this connection may use, in failover order."""
        return self._addresses

    @property
    def current_address(self) -> str:
        """The address requests are sent to now."""
        return self._addresses[self._index]

    @property
    def session_id(self) -> str:
        """The random session id sent with every request (for exactly-once retries)."""
        return self._session_id

    @property
    def database(self) -> str:
        """The session's database, sent with every request (empty = ``defaultdb``); ``USE d``
        or ``SET database = d`` changes it."""
        return self._database

    @property
    def timeout(self) -> float:
        """The per-attempt gRPC deadline, in seconds."""
        return self._timeout

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def autocommit(self) -> bool:
        """True: each statement commits on its own (unless you run BEGIN). False: a
        transaction is opened before the first statement and ended by commit()/rollback().
        Turning it on commits an open transaction (as sqlite3 does)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._check_open()
        value = bool(value)
        if value and not self._autocommit and self.in_transaction:
            self.commit()
        self._autocommit = value

    @property
    def transaction_status(self) -> str:
        """ "" (no transaction), "open", or "failed" (a restart error: only ROLLBACK is
        accepted until the transaction ends)."""
        return self._txn_status

    @property
    def in_transaction(self) -> bool:
        """True while the session has an open (or failed, awaiting ROLLBACK) transaction."""
        return self._txn_status != ""

    # -- PEP 249 -----------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        """A new cursor on this connection."""
        self._check_open()
        return Cursor(self)

    def close(self) -> None:
        """Close the gRPC channel; further use raises ``ProgrammingError``. Idempotent."""
        if self._closed:
            return
        if self.in_transaction:
            try:
                self._request(pb.ExecuteRequest(sql="ROLLBACK"))
            except Error:
                pass  # the server aborts it anyway once the session goes quiet
        self._closed = True
        self._drop_channel()

    def commit(self) -> None:
        """Commit the open transaction (no-op without one).

        Raises:
            OperationalError: sqlstate 40001: the transaction conflicted and was rolled back
                (run it again); 40003: the outcome is unknown.
        """
        self._check_open()
        self._uncommitted_writes = False
        if self.in_transaction:
            self._request(pb.ExecuteRequest(sql="COMMIT"))

    def rollback(self) -> None:
        """Roll back the open transaction.

        Without one, in autocommit mode, statements have already committed on their own; so
        after a statement that may have written since the last ``commit()``/``rollback()``,
        pretending to roll back would be a lie.

        Raises:
            NotSupportedError: autocommit mode, and a statement that may have changed data
                ran since the last ``commit()`` or ``rollback()``.
        """
        self._check_open()
        if self.in_transaction:
            self._uncommitted_writes = False
            self._request(pb.ExecuteRequest(sql="ROLLBACK"))
            return
        if self._uncommitted_writes:
            self._uncommitted_writes = False
            raise NotSupportedError(
                "nothing to roll back: every statement since the last commit() committed on"
                " its own (autocommit is on; use BEGIN or autocommit=False)",
                sqlstate="0A000",
            )

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        """Shortcut: a new cursor that has executed ``sql`` (like ``sqlite3``)."""
        return self.cursor().execute(sql, parameters)

    def executemany(
        self, sql: str, seq_of_parameters: Iterator[Parameters] | Sequence[Parameters]
    ) -> Cursor:
        """Shortcut: a new cursor that has run ``sql`` once per parameter set."""
        return self.cursor().executemany(sql, seq_of_parameters)

    def __enter__(self) -> Connection:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Best effort: release the channel of a connection nobody closed.
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - interpreter shutdown may have torn grpc down
                pass

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed database.")

    def _open_channel(self) -> rpc.SQLStub:
        if self._stub is None:
            self._channel = grpc.insecure_channel(self.current_address, options=_CHANNEL_OPTIONS)
            self._stub = _new_sql_stub(self._channel)
        return self._stub

    def _drop_channel(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def _advance(self) -> None:
        self._drop_channel()
        self._index = (self._index + 1) % len(self._addresses)

    def _check_health(self, deadline: float) -> None:
        """Find a node that answers the gRPC health check, failing over across addresses.

        The time left until ``deadline`` is shared among the addresses not tried yet.

        Raises:
            OperationalError: No address reported SERVING in time.
        """
        problems: list[str] = []
        for attempt in range(len(self._addresses)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problems.append(f"{self.current_address}: not tried (timeout)")
                self._advance()
                continue
            per_address = remaining / (len(self._addresses) - attempt)
            self._open_channel()
            assert self._channel is not None
            stub = health_pb2_grpc.HealthStub(self._channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=per_address)
            except grpc.RpcError as exc:
                code = _status_code(exc)
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    return  # a server answered, it just has no health service
                problems.append(f"{self.current_address}: {_status_details(exc)}")
                self._advance()
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            problems.append(f"{self.current_address}: {status}")
            self._advance()
        raise OperationalError(
            "could not connect to any node: " + "; ".join(problems),
            sqlstate=CONNECTION_FAILURE,
        )

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _execute(self, sql: str, parameters: Parameters | None) -> pb.ExecuteResponse:
        """Send one statement, failing over to the next address when the node is unavailable.

        Raises:
            ProgrammingError: A parameter cannot be sent (unsupported type, bad shape).
            OperationalError: No address could serve the request.
            DatabaseError: The statement failed on the server (the mapped subclass).
        """
        self._check_open()
        if not isinstance(sql, str):
            raise ProgrammingError(f"sql must be a str, not {type(sql).__name__}")
        try:
            positional, named = params_to_proto(parameters)
        except ValueTypeError as exc:
            raise ProgrammingError(f"Error binding parameter: {exc}") from exc
        self._implicit_begin(sql)
        response = self._request(pb.ExecuteRequest(sql=sql, params=positional, named_params=named))
        if not response.returns_rows or response.rows_affected > 0:
            self._uncommitted_writes = True
        return response

    def _execute_batch(self, sql: str, rows: list[pb.Row]) -> pb.ExecuteResponse:
        """executemany: many parameter rows in one request (one atomic Raft entry)."""
        self._check_open()
        self._implicit_begin(sql)
        response = self._request(pb.ExecuteRequest(sql=sql, batch=rows))
        self._uncommitted_writes = True
        return response

    def _implicit_begin(self, sql: str) -> None:
        if not self._autocommit and not self.in_transaction and _TXN_STATEMENT_RE.match(sql):
            self._request(pb.ExecuteRequest(sql="BEGIN"))

    def _request(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Stamp the session and a new sequence number, send, and raise a server error."""
        request.session_id = self._session_id
        request.seq = self._next_seq()
        request.database = self._database
        request.trace = self.trace
        for key, value in self._settings.items():
            request.settings[key] = value
        request.in_txn = self.in_transaction
        response = self._send(request)
        self._txn_status = response.txn_status
        if response.HasField("error") and (response.error.code or response.error.message):
            raise error_from_proto(response.error)
        if response.database:  # USE d / SET database = d
            self._database = response.database
        for key, value in response.settings.items():  # SET ...: "" unsets
            if value:
                self._settings[key] = value
            else:
                self._settings.pop(key, None)
        return response

    def _send(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Send ``request`` unchanged (same ``seq``) to each address at most once."""
        problems: list[str] = []
        for _ in range(len(self._addresses)):
            stub = self._open_channel()
            address = self.current_address
            try:
                response: pb.ExecuteResponse = stub.Execute(request, timeout=self._timeout)
                return response
            except grpc.RpcError as exc:
                code = _status_code(exc)
                if request.in_txn and code in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    # The transaction lives on this node: another node cannot continue it.
                    self._txn_status = ""
                    self._advance()
                    raise OperationalError(
                        f"the transaction was lost with {address}: {_status_details(exc)};"
                        " run it again",
                        sqlstate="40001",
                    ) from exc
                if code == grpc.StatusCode.UNAVAILABLE:
                    problems.append(f"{address}: {_status_details(exc)}")
                    self._advance()
                    continue
                if code == grpc.StatusCode.DEADLINE_EXCEEDED and not self._reachable():
                    # The node stopped answering altogether (not merely a slow statement).
                    problems.append(f"{address}: deadline exceeded and node unreachable")
                    self._advance()
                    continue
                name = code.name if code is not None else "UNKNOWN"
                raise OperationalError(
                    f"request to {address} failed: {name}: {_status_details(exc)}",
                    sqlstate=CONNECTION_FAILURE,
                ) from exc
        raise OperationalError(
            "no node could serve the request, tried " + "; ".join(problems),
            sqlstate=CONNECTION_FAILURE,
        )

    def _reachable(self) -> bool:
        """A quick health probe of the current address (after a deadline was exceeded)."""
        if self._channel is None:
            return False
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=min(self._timeout, 2.0))
        except grpc.RpcError as exc:
            return bool(_status_code(exc) == grpc.StatusCode.UNIMPLEMENTED)
        return True


def connect(
    addresses: str,
    *,
    timeout: float = 30.0,
    database: str = "",
    autocommit: bool = True,
) -> Connection:
    """Connect to an atlasql cluster.

    The first address answering the standard gRPC health check becomes the gateway; the others
    are kept for failover.

    Args:
        addresses: ``"host:port[,host:port...]"``, any nodes of the cluster.
        timeout: Seconds allowed for the health check over all addresses, and the deadline of
            each statement attempt.
        database: The database name sent with every statement (empty = default).
        autocommit: True: each statement commits on its own. False: statements run in a
            transaction that ``commit()``/``rollback()`` end (see the module docstring).

    Returns:
        An open :class:`Connection`.

    Raises:
        InterfaceError: ``addresses`` is malformed or ``timeout`` is not positive.
        OperationalError: No address answered within ``timeout``.
    """
    conn = Connection(parse_addresses(addresses), timeout=timeout, database=database)
    conn._autocommit = bool(autocommit)
    try:
        conn._check_health(time.monotonic() + timeout)
    except BaseException:
        conn.close()
        raise
    return conn


# ---------------------------------------------------------------------------------------------
# Cursor
# ---------------------------------------------------------------------------------------------

Description = tuple[tuple[str, None, None, None, None, None, None], ...]


class Cursor:
    """A PEP 249 cursor. The whole result of a statement arrives at once and is buffered."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        self.rowcount = -1
        self.lastrowid: int | None = None
        # (where, what, ms) per hop of the last SELECT, when the connection's ``trace`` is on
        self.hops: list[tuple[str, str, float]] = []
        self._description: Description | None = None
        self._rows: list[tuple[SqlValue, ...]] = []
        self._pos = 0
        self._closed = False

    @property
    def description(self) -> Description | None:
        """One 7-tuple per result column (name, then six ``None``), or None without rows."""
        return self._description

    def close(self) -> None:
        """Forget the result; further use raises ``ProgrammingError``."""
        self._closed = True
        self._rows = []

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        """Run one statement with ``?`` (sequence) or ``:name`` (mapping) parameters.

        Returns:
            This cursor, so calls can be chained (``cur.execute(...).fetchall()``).
        """
        self._check_open()
        self._reset()
        response = self.connection._execute(sql, parameters)
        self._load(response)
        return self

    def executemany(
        self, sql: str, seq_of_parameters: Iterator[Parameters] | Sequence[Parameters]
    ) -> Cursor:
        """Run ``sql`` once per parameter set; ``rowcount`` is the total of affected rows."""
        self._check_open()
        self._reset()
        total = 0
        batch: list[pb.Row] = []
        size = 0
        for parameters in seq_of_parameters:
            if isinstance(parameters, Mapping):
                # named parameters travel one statement at a time
                response = self.connection._execute(sql, parameters)
                total += self._absorb(response)
                continue
            try:
                row = row_to_proto(parameters)
            except ValueTypeError as exc:
                raise ProgrammingError(f"Error binding parameter: {exc}") from exc
            batch.append(row)
            size += row.ByteSize()
            if size >= BATCH_BYTES:
                total += self._absorb(self.connection._execute_batch(sql, batch))
                batch, size = [], 0
        if batch:
            total += self._absorb(self.connection._execute_batch(sql, batch))
        self.rowcount = total
        return self

    def _absorb(self, response: pb.ExecuteResponse) -> int:
        if response.returns_rows:
            raise ProgrammingError("executemany() can only execute DML statements.")
        if response.last_insert_rowid:
            self.lastrowid = int(response.last_insert_rowid)
        return max(int(response.rows_affected), 0)

    def fetchone(self) -> tuple[SqlValue, ...] | None:
        """The next row, or None when the result is exhausted."""
        self._check_open()
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[SqlValue, ...]]:
        """Up to ``size`` (default ``arraysize``) further rows."""
        self._check_open()
        count = self.arraysize if size is None else size
        rows = self._rows[self._pos : self._pos + max(count, 0)]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> list[tuple[SqlValue, ...]]:
        """Every remaining row."""
        self._check_open()
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return rows

    def setinputsizes(self, sizes: object) -> None:
        """No-op (PEP 249)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """No-op (PEP 249)."""

    def __iter__(self) -> Iterator[tuple[SqlValue, ...]]:
        return self

    def __next__(self) -> tuple[SqlValue, ...]:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def __enter__(self) -> Cursor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        self.connection._check_open()

    def _reset(self) -> None:
        self._description = None
        self._rows = []
        self._pos = 0
        self.rowcount = -1

    def _load(self, response: pb.ExecuteResponse) -> None:
        self.hops = [(h.where, h.what, h.ms) for h in response.hops]
        if response.returns_rows:
            self._description = tuple(
                (name, None, None, None, None, None, None) for name in response.columns
            )
            try:
                self._rows = [row_from_proto(row) for row in response.rows]
            except ValueTypeError as exc:
                raise InterfaceError(f"malformed response from the server: {exc}") from exc
            # -1 for queries (like sqlite3); the changed rows for a write with RETURNING
            self.rowcount = int(response.rows_affected) if response.rows_affected >= 0 else -1
        else:
            self.rowcount = int(response.rows_affected)
        if response.last_insert_rowid:
            self.lastrowid = int(response.last_insert_rowid)

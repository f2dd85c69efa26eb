"""One replica's SQLite file, opened through apsw.

The engine knows nothing about Raft; it offers the two things the state machine needs:

* ``apply(index, fn)``: run ``fn`` inside one SQLite transaction that also records ``index`` as
  the applied Raft index, so after any crash each entry has been applied exactly once
  (invariant 2);
* ``execute``/``query``: run one SQL statement and return a ``StatementResult``, mapping SQLite
  errors to SQLSTATE-like codes. A SQL error is a *result* (every replica records the same one);
  an I/O or corruption error raises ``EngineFailure`` and the replica must stop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import apsw

from . import sqlstate
from .errors import EngineFailure
from .keys import encode_key, encode_prefix
from .spans import (
    beyond_sql,
    bound_values,
    inside_condition,
    key_columns_from_info,
    outside_sql,
    quote,
)

T = TypeVar("T")

# PRAGMAs are fixed, so every replica runs SQLite the same way. synchronous=NORMAL (WAL): an
# engine commit may be lost on power failure, but atomically with its applied index, and the
# entries are still in the fsync'd Raft log, so they are re-applied (exactly once) at restart.
# Whoever truncates the log must first make the engine durable (``checkpoint``).
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA recursive_triggers=OFF",
    "PRAGMA trusted_schema=OFF",
)

_INTERNAL_PREFIX = "_atlas_"
_INTERNAL_LIKE = _INTERNAL_PREFIX.replace("_", "\\_") + "%"  # LIKE pattern, ESCAPE '\'
_NO_SPAN_CACHE = object()
_INT64_MAX = 2**63 - 1

_INSERT_RE = re.compile(r"^\s*(?:insert|replace)\b", re.I)
_WRITE_RE = re.compile(r"^\s*(?:insert|replace|update|delete)\b", re.I)
_WITH_RE = re.compile(r"^\s*with\b", re.I)
_WRITE_WORD_RE = re.compile(r"\b(?:insert|replace|update|delete)\b", re.I)

_FATAL = (
    apsw.IOError,
    apsw.CorruptError,
    apsw.FullError,
    apsw.CantOpenError,
    apsw.NotADBError,
    apsw.ReadOnlyError,
)


@dataclasses.dataclass(frozen=True, slots=True)
class SqlFailure:
    """A SQL error as a value: what every replica records identically."""

    code: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class StatementResult:
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    rows_affected: int = -1
    last_insert_rowid: int = 0
    returns_rows: bool = False
    error: SqlFailure | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Provisional:
    """A statement run on top of a transaction's changes (see ``Engine.provisional``)."""

    result: StatementResult
    changeset: bytes  # the transaction's cumulative changes on this replica
    keys: tuple[bytes, ...]  # encoded keys of every row those changes touch
    moved_columns: tuple[str, ...] = ()  # move_out: the rows that left the span
    moved_rows: tuple[tuple[Any, ...], ...] = ()


def classify_sqlite_error(exc: apsw.Error) -> SqlFailure:
    """Map an apsw exception to a SQLSTATE-like code.

    >>> classify_sqlite_error(apsw.SQLError("SQLError: no such table: t")).code
    '42P01'
    """
    text = str(exc)
    msg = re.sub(r"^[A-Za-z]+Error: ", "", text)
    low = msg.lower()
    if isinstance(exc, apsw.ConstraintError):
        if "unique" in low or "primary key" in low:
            code = sqlstate.UNIQUE_VIOLATION
        elif "not null" in low:
            code = sqlstate.NOT_NULL_VIOLATION
        elif "foreign key" in low:
            code = sqlstate.FOREIGN_KEY_VIOLATION
        elif "check" in low:
            code = sqlstate.CHECK_VIOLATION
        else:
            code = sqlstate.INTEGRITY_VIOLATION
    elif isinstance(exc, apsw.MismatchError):
        code = sqlstate.DATATYPE_MISMATCH
    elif isinstance(exc, apsw.InterruptError):
        code = sqlstate.QUERY_CANCELED
        msg = "canceling statement due to user request"
    elif isinstance(exc, apsw.BindingsError):
        code = sqlstate.INVALID_PARAMETER
    elif isinstance(exc, apsw.TooBigError):
        code = sqlstate.DATA_EXCEPTION
    elif "no such table" in low or "no such view" in low:
        code = sqlstate.UNDEFINED_TABLE
    elif "no such column" in low:
        code = sqlstate.UNDEFINED_COLUMN
    elif "no such index" in low or "no such function" in low:
        code = sqlstate.UNDEFINED_OBJECT
    elif "already exists" in low:
        code = sqlstate.DUPLICATE_TABLE if "table" in low else sqlstate.DUPLICATE_OBJECT
    elif "syntax error" in low or "incomplete input" in low or "unrecognized token" in low:
        code = sqlstate.SYNTAX_ERROR
    elif "datatype mismatch" in low:
        code = sqlstate.DATATYPE_MISMATCH
    elif "constraint failed" in low:
        code = sqlstate.INTEGRITY_VIOLATION
    else:
        code = sqlstate.INTERNAL_ERROR if isinstance(exc, apsw.InternalError) else "42000"
    return SqlFailure(code=code, message=msg)


def _id_list(text: Any) -> list[int]:
    """'1,2,3' -> [1, 2, 3]"""
    return [int(x) for x in str(text).split(",") if x]


def _canonical(value: Any) -> bytes:
    """Type-tagged bytes of one value, for checksums."""
    if value is None:
        return b"N"
    if isinstance(value, int):
        return b"I" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"R" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode()
        return b"T" + struct.pack(">I", len(data)) + data
    data = bytes(value)
    return b"B" + struct.pack(">I", len(data)) + data


class Engine:
    """A replica's SQLite database. Not thread-safe: the owner serialises calls."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn = apsw.Connection(path)
            self._conn.set_busy_timeout(5000)
            for pragma in _PRAGMAS:
                self._conn.execute(pragma)
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}applied("
                "id INTEGER PRIMARY KEY CHECK (id = 1), applied_index INTEGER NOT NULL,"
                " applied_term INTEGER NOT NULL DEFAULT 0)"
            )
            cols = [
                r[1]
                for r in self._conn.execute(
                    f"PRAGMA table_info({_INTERNAL_PREFIX}applied)"
                ).fetchall()
            ]
            if "applied_term" not in cols:
                self._conn.execute(
                    f"ALTER TABLE {_INTERNAL_PREFIX}applied ADD COLUMN applied_term INTEGER"
                    " NOT NULL DEFAULT 0"
                )
            self._conn.execute(f"INSERT OR IGNORE INTO {_INTERNAL_PREFIX}applied VALUES (1, 0, 0)")
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}sessions("
                "session_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, result BLOB NOT NULL)"
            )
        except _FATAL as exc:
            raise EngineFailure(f"cannot open {path}: {exc}") from exc
        self._applied, self._applied_term = self._read_applied()
        self._span_cache: object = _NO_SPAN_CACHE
        self.changeset_conflicts = 0

    # -- applied index -----------------------------------------------------------------------

    def _read_applied(self) -> tuple[int, int]:
        row = self._conn.execute(
            f"SELECT applied_index, applied_term FROM {_INTERNAL_PREFIX}applied WHERE id = 1"
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def applied_term(self) -> int:
        """The Raft term of the entry at ``applied_index`` (snapshots carry it)."""
        return self._applied_term

    def apply(self, index: int, fn: Callable[[Engine], T], term: int = 0) -> T:
        """Run ``fn`` and record ``index`` as applied, in one SQLite transaction.

        ``fn`` must turn SQL errors into results (``execute`` does); any exception escaping
        ``fn`` rolls the whole transaction back and is re-raised (``EngineFailure`` for I/O).
        """
        with self._lock:
            if index <= self._applied:
                raise ValueError(f"entry {index} already applied (applied index {self._applied})")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self)
                    self._conn.execute(
                        f"UPDATE {_INTERNAL_PREFIX}applied SET applied_index = ?, applied_term = ?"
                        " WHERE id = 1",
                        (index, term),
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._span_cache = _NO_SPAN_CACHE
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except _FATAL as exc:
                raise EngineFailure(f"{self.path}: {exc}") from exc
            self._applied, self._applied_term = index, term
            return result

    # -- statements ----------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] = (),
        verify: Callable[[], SqlFailure | None] | None = None,
    ) -> StatementResult:
        """Run one statement inside a savepoint; a SQL error rolls back just this statement.

        ``verify`` runs after a successful statement; a failure it returns rolls the
        statement back and becomes the result.
        """
        with self._lock:
            self._conn.execute("SAVEPOINT atlas_stmt")
            result = self._run(sql, params)
            if result.error is None and verify is not None:
                failure = verify()
                if failure is not None:
                    result = StatementResult(error=failure)
            if result.error is not None:
                self._conn.execute("ROLLBACK TO atlas_stmt")
            self._conn.execute("RELEASE atlas_stmt")
            return result

    def rowids_exhausted(self, table: str) -> bool:
        """Whether ``table`` holds the largest rowid (the next automatic rowid would be random)."""
        with self._lock:
            try:
                row = self._conn.execute(
                    f'SELECT max(rowid) FROM "{table.replace(chr(34), chr(34) * 2)}"'
                ).fetchone()
            except apsw.SQLError:
                return False  # WITHOUT ROWID table, or no such table (the INSERT reports it)
        return row is not None and row[0] == _INT64_MAX

    def execute_many(
        self,
        sql: str,
        rows: Sequence[Sequence[Any]],
        verify: Callable[[], SqlFailure | None] | None = None,
    ) -> StatementResult:
        """Run one statement per parameter row in a savepoint: all rows apply, or none."""
        with self._lock:
            conn = self._conn
            conn.execute("SAVEPOINT atlas_batch")
            total = 0
            last_rowid = 0
            for number, row in enumerate(rows, start=1):
                res = self._run(sql, row)
                if res.error is not None:
                    conn.execute("ROLLBACK TO atlas_batch")
                    conn.execute("RELEASE atlas_batch")
                    return StatementResult(
                        error=SqlFailure(
                            res.error.code, f"row {number} of the batch: {res.error.message}"
                        )
                    )
                if res.returns_rows:
                    conn.execute("ROLLBACK TO atlas_batch")
                    conn.execute("RELEASE atlas_batch")
                    return StatementResult(
                        error=SqlFailure(
                            sqlstate.SYNTAX_ERROR, "executemany() can only execute DML statements"
                        )
                    )
                total += max(res.rows_affected, 0)
                last_rowid = res.last_insert_rowid or last_rowid
            failure = verify() if verify is not None else None
            if failure is not None:
                conn.execute("ROLLBACK TO atlas_batch")
                conn.execute("RELEASE atlas_batch")
                return StatementResult(error=failure)
            conn.execute("RELEASE atlas_batch")
            return StatementResult(rows_affected=total, last_insert_rowid=last_rowid)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> StatementResult:
        """Run a read-only statement outside any Raft entry."""
        with self._lock:
            return self._run(sql, params, read_only=True)

    def _run(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any],
        *,
        read_only: bool = False,
    ) -> StatementResult:
        conn = self._conn
        description: list[tuple[str, ...]] = []
        cursor = conn.cursor()

        def trace(cur: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
            description.clear()
            try:
                description.extend(d[0] for d in cur.description)  # type: ignore[misc]
            except apsw.ExecutionCompleteError:
                pass
            return True

        cursor.exec_trace = trace
        before = conn.total_changes()
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        try:
            rows = tuple(tuple(r) for r in cursor.execute(sql, params))
        except apsw.ReadOnlyError as exc:
            if read_only:
                return StatementResult(
                    error=SqlFailure(sqlstate.READ_ONLY, "cannot modify data in a read-only query")
                )
            raise EngineFailure(f"{self.path}: {exc}") from exc
        except _FATAL as exc:
            raise EngineFailure(f"{self.path}: {exc}") from exc
        except apsw.Error as exc:
            return StatementResult(error=classify_sqlite_error(exc))
        finally:
            if read_only:
                conn.execute("PRAGMA query_only=OFF")
        columns = tuple(str(c) for c in description)
        changed = conn.total_changes() != before
        if changed:
            affected = conn.changes()
        elif _WRITE_RE.match(sql) or (_WITH_RE.match(sql) and _WRITE_WORD_RE.search(sql)):
            affected = 0  # a write that changed nothing (with or without RETURNING)
        else:
            affected = -1 if not changed else conn.changes()
        return StatementResult(
            columns=columns,
            rows=rows,
            rows_affected=affected,
            # Only meaningful right after an INSERT that inserted: otherwise it is connection
            # state, which differs between replicas (e.g. after a restart).
            last_insert_rowid=conn.last_insert_rowid() if changed and _INSERT_RE.match(sql) else 0,
            returns_rows=bool(columns),
        )

    # -- transactions: provisional changes, intents, records ----------------------------------

    def provisional(
        self,
        changeset: bytes,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] = (),
        *,
        batch: Sequence[Sequence[Any]] | None = None,
        read_only: bool = False,
        trim_to_span: bool = False,
        move_out: bool = False,
    ) -> Provisional:
        """Run ``sql`` on top of a transaction's ``changeset`` without keeping anything.

        The changeset is applied, the statement runs, and the cumulative change (what the
        transaction has written on this replica so far) is captured with SQLite's session
        extension; then everything is rolled back. With ``trim_to_span``, rows the statement
        wrote outside this replica's span are dropped (an INSERT whose other rows belong to
        other ranges); a write that leaves rows outside the span otherwise fails (0A000).
        """
        with self._lock:
            conn = self._conn
            conn.execute("SAVEPOINT atlas_prov")
            try:
                session = None
                if not read_only:  # a read changes nothing: its changeset stays as it was
                    session = apsw.Session(conn, "main")
                    session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
                    session.table_filter(lambda name: not name.startswith(_INTERNAL_PREFIX))
                    session.attach()
                if changeset:
                    failure = self._apply_changes(changeset, strict=True)
                    if failure:
                        return Provisional(
                            StatementResult(
                                error=SqlFailure(
                                    sqlstate.SERIALIZATION_FAILURE,
                                    f"restart transaction: {failure}",
                                )
                            ),
                            changeset,
                            (),
                        )
                if session is None:
                    return Provisional(self._run(sql, params, read_only=True), changeset, ())
                if batch is not None:
                    result = self.execute_many(sql, batch)
                else:
                    result = self.execute(sql, params)
                moved: tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]] = ((), ())
                if result.error is None and move_out and self.rows_outside_span():
                    moved = self._outside_rows()
                    self._trim_outside_span()
                elif result.error is None:
                    trimmed = self._trim_outside_span() if trim_to_span else 0
                    if trimmed:
                        result = dataclasses.replace(
                            result,
                            rows_affected=max(result.rows_affected - trimmed, 0),
                            last_insert_rowid=0,
                        )
                    elif not trim_to_span and self.rows_outside_span():
                        result = StatementResult(
                            error=SqlFailure(
                                sqlstate.FEATURE_NOT_SUPPORTED,
                                "this statement moves a row to a key another range holds;"
                                " moving rows between ranges is not supported",
                            )
                        )
                if result.error is not None:
                    return Provisional(result, changeset, ())
                out = session.changeset()
                session.close()
                return Provisional(result, out, tuple(self._changed_keys(out)), moved[0], moved[1])
            finally:
                conn.execute("ROLLBACK TO atlas_prov")
                conn.execute("RELEASE atlas_prov")

    def _outside_rows(self) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
        """(columns, rows) of the rows outside the span (a plain rowid table: rowid too)."""
        span = self.span()
        assert span is not None
        table, start, end = span
        keys = self.key_columns(table)
        info: list[Any] = self._conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
        names = [str(r[1]) for r in info]
        alias = keys == ["rowid"] and not any(int(r[5]) == 1 for r in info)
        select = (["rowid"] if alias else []) + names
        cols = ", ".join(quote(c) if c != "rowid" else "rowid" for c in select)
        lo, hi = bound_values(start), bound_values(end)
        where = []
        params: list[Any] = []
        if lo:
            where.append(f"NOT ({inside_condition(keys, len(lo), 0)})")
            params.extend(lo)
        if hi:
            where.append(f"({inside_condition(keys, 0, len(hi))}) IS NOT 1")
            params.extend(hi)
        rows = self._conn.execute(
            f"SELECT {cols} FROM {quote(table)} WHERE {' OR '.join(where)}", params
        ).fetchall()
        return tuple(select), tuple(tuple(r) for r in rows)

    def _trim_outside_span(self) -> int:
        span = self.span()
        if span is None:
            return 0
        table, start, end = span
        keys = self.key_columns(table)
        removed = 0
        lo, hi = bound_values(start), bound_values(end)
        if lo:
            where = inside_condition(keys, len(lo), 0)
            self._conn.execute(f"DELETE FROM {quote(table)} WHERE NOT ({where})", lo)
            removed += int(self._conn.changes())
        if hi:
            removed += self.delete_from_key(table, end)
        return removed

    def _changed_keys(self, changeset: bytes) -> Iterator[bytes]:
        """The encoded keys of the rows ``changeset`` touches (the range's lock keys)."""
        orders: dict[str, list[int] | None] = {}
        for ch in apsw.Changeset.iter(changeset):
            if ch.name not in orders:
                info: list[Any] = self._conn.execute(
                    f"PRAGMA table_info({quote(ch.name)})"
                ).fetchall()
                declared = sorted((int(r[5]), int(r[0])) for r in info if int(r[5]) > 0)
                # Several key columns: the key is in declaration order; one: its position.
                orders[ch.name] = [cid for _, cid in declared] if len(declared) > 1 else None
            values = ch.old if ch.op == "DELETE" or ch.new is None else ch.new
            if ch.op == "UPDATE" and ch.old is not None:
                values = ch.old  # an UPDATE's key columns are in its old values
            assert values is not None
            order = orders[ch.name]
            if order is None:
                order = sorted(ch.pk_columns)
            yield encode_key([values[i] for i in order])  # type: ignore[misc]

    def changed_keys(self, changeset: bytes) -> list[bytes]:
        with self._lock:
            return list(self._changed_keys(changeset))

    def _apply_changes(self, changeset: bytes, *, strict: bool) -> str:
        """Apply ``changeset``; '' on success, else what conflicted. ``strict``: any conflict
        aborts (provisional runs: the transaction's locks should have prevented it); else
        conflicts resolve deterministically (replace / skip) and are counted."""
        conflicts: list[str] = []

        def on_conflict(reason: int, change: Any) -> int:
            conflicts.append(f"{change.op} on {change.name} (conflict {reason})")
            if strict:
                return int(apsw.SQLITE_CHANGESET_ABORT)
            if reason in (apsw.SQLITE_CHANGESET_DATA, apsw.SQLITE_CHANGESET_CONFLICT):
                return int(apsw.SQLITE_CHANGESET_REPLACE)
            return int(apsw.SQLITE_CHANGESET_OMIT)

        try:
            apsw.Changeset.apply(changeset, self._conn, conflict=on_conflict)
        except apsw.AbortError:
            return "; ".join(conflicts) or "changeset aborted"
        except _FATAL as exc:
            raise EngineFailure(f"{self.path}: {exc}") from exc
        except apsw.Error as exc:
            return f"changeset could not apply: {exc}"
        if conflicts:
            self.changeset_conflicts += len(conflicts)
        return ""

    def apply_changeset(self, changeset: bytes) -> None:
        """Inside ``apply`` only: make a transaction's changes on this replica permanent."""
        failure = self._apply_changes(changeset, strict=False)
        if failure:
            raise EngineFailure(f"{self.path}: {failure}")

    def _ensure_txn_tables(self) -> None:
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}intents(txn_id BLOB PRIMARY KEY,"
            " changeset BLOB NOT NULL, record_range INTEGER NOT NULL,"
            " prepared_index INTEGER NOT NULL)"
        )
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}txn_records(txn_id BLOB PRIMARY KEY,"
            " status TEXT NOT NULL, participants TEXT NOT NULL)"
        )

    def put_intent(self, txn_id: bytes, changeset: bytes, record_range: int, index: int) -> None:
        """Inside ``apply`` only: a prepared transaction's changes, kept until resolved."""
        self._ensure_txn_tables()
        self._conn.execute(
            f"INSERT OR IGNORE INTO {_INTERNAL_PREFIX}intents VALUES (?, ?, ?, ?)",
            (txn_id, changeset, record_range, index),
        )

    def take_intent(self, txn_id: bytes) -> bytes | None:
        """Inside ``apply`` only: remove a prepared transaction's changes, returning them."""
        self._ensure_txn_tables()
        row = self._conn.execute(
            f"SELECT changeset FROM {_INTERNAL_PREFIX}intents WHERE txn_id = ?", (txn_id,)
        ).fetchone()
        if row is None:
            return None
        self._conn.execute(f"DELETE FROM {_INTERNAL_PREFIX}intents WHERE txn_id = ?", (txn_id,))
        return bytes(row[0])

    def intents(self) -> list[tuple[bytes, bytes, int]]:
        """(txn id, changeset, record range) of every prepared, unresolved transaction."""
        with self._lock:
            try:
                rows: list[Any] = self._conn.execute(
                    f"SELECT txn_id, changeset, record_range FROM {_INTERNAL_PREFIX}intents"
                ).fetchall()
            except apsw.SQLError:
                return []
        return [(bytes(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def txn_record(self, txn_id: bytes) -> tuple[str, str] | None:
        """(status, participants) of a transaction record held here, or None."""
        with self._lock:
            try:
                row = self._conn.execute(
                    f"SELECT status, participants FROM {_INTERNAL_PREFIX}txn_records"
                    " WHERE txn_id = ?",
                    (txn_id,),
                ).fetchone()
            except apsw.SQLError:
                return None
        return (str(row[0]), str(row[1])) if row else None

    def put_txn_record(self, txn_id: bytes, status: str, participants: str) -> None:
        """Inside ``apply`` only."""
        self._ensure_txn_tables()
        self._conn.execute(
            f"INSERT OR REPLACE INTO {_INTERNAL_PREFIX}txn_records VALUES (?, ?, ?)",
            (txn_id, status, participants),
        )

    def drop_txn_record(self, txn_id: bytes) -> None:
        """Inside ``apply`` only."""
        self._ensure_txn_tables()
        self._conn.execute(f"DELETE FROM {_INTERNAL_PREFIX}txn_records WHERE txn_id = ?", (txn_id,))

    # -- exactly-once bookkeeping ---------------------------------------------------------------

    def session_result(self, session_id: str) -> tuple[int, bytes] | None:
        row = self._conn.execute(
            f"SELECT seq, result FROM {_INTERNAL_PREFIX}sessions WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def record_session(self, session_id: str, seq: int, result: bytes) -> None:
        self._conn.execute(
            f"INSERT OR REPLACE INTO {_INTERNAL_PREFIX}sessions VALUES (?, ?, ?)",
            (session_id, seq, result),
        )

    # -- consistency ---------------------------------------------------------------------------

    def checksum(self) -> str:
        """SHA-256 over the schema and every row of every table, in a canonical order.

        Deterministic for identical databases (the same pinned SQLite on every replica); the
        applied-index and check bookkeeping tables are left out, everything else (user
        tables, indexes' definitions, the exactly-once session table) is included.
        """
        with self._lock:
            h = hashlib.sha256()
            tables = self._conn.execute(
                "SELECT name, type, coalesce(sql, '') FROM sqlite_schema "
                "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                f"AND name NOT IN ('{_INTERNAL_PREFIX}applied', '{_INTERNAL_PREFIX}checks') "
                "ORDER BY type, name"
            ).fetchall()
            for name, kind, sql in tables:
                h.update(f"{kind}:{name}:{sql}\n".encode())
                if kind != "table":
                    continue
                ncols = len(self._conn.execute(f'PRAGMA table_info("{name}")').fetchall())
                without_rowid = "without rowid" in str(sql).lower()
                order = ",".join(str(i) for i in range(1, ncols + 1)) if without_rowid else "rowid"
                for row in self._conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}'):
                    for value in row:
                        h.update(_canonical(value))
                    h.update(b"\n")
            return h.hexdigest()

    def record_check(self, index: int, checksum: str) -> None:
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}checks("
            "applied_index INTEGER PRIMARY KEY, checksum TEXT NOT NULL)"
        )
        self._conn.execute(
            f"INSERT OR REPLACE INTO {_INTERNAL_PREFIX}checks VALUES (?, ?)", (index, checksum)
        )

    def check_at(self, index: int) -> str | None:
        with self._lock:
            try:
                row = self._conn.execute(
                    f"SELECT checksum FROM {_INTERNAL_PREFIX}checks WHERE applied_index = ?",
                    (index,),
                ).fetchone()
            except apsw.SQLError:
                return None
            return str(row[0]) if row else None

    # -- range membership (replicated through the log) ----------------------------------------

    def replica_config(self) -> tuple[list[int], list[int], int] | None:
        """(voters, non-voters, generation) as last applied, or None if never changed."""
        with self._lock:
            try:
                row = self._conn.execute(
                    f"SELECT voters, non_voters, generation FROM {_INTERNAL_PREFIX}config"
                ).fetchone()
            except apsw.SQLError:
                return None
        if row is None:
            return None
        return _id_list(row[0]), _id_list(row[1]), int(row[2])

    def set_replica_config(self, voters: list[int], non_voters: list[int], generation: int) -> None:
        """Inside ``apply`` only."""
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}config(id INTEGER PRIMARY KEY"
            " CHECK (id = 1), voters TEXT NOT NULL, non_voters TEXT NOT NULL,"
            " generation INTEGER NOT NULL)"
        )
        self._conn.execute(
            f"INSERT OR REPLACE INTO {_INTERNAL_PREFIX}config VALUES (1, ?, ?, ?)",
            (",".join(map(str, voters)), ",".join(map(str, non_voters)), generation),
        )

    def stop_when(self, cancelled: Callable[[], bool]) -> None:
        """Abort the running statement (SQLSTATE 57014) once ``cancelled()`` is true; checked
        every few thousand SQLite VM steps. For gateway-side scratch engines only: a replica's
        connection also applies the log and must never be interrupted."""
        self._conn.set_progress_handler(cancelled, 5000)

    # -- spans (which rows of its table this replica holds) ----------------------------------

    def key_columns(self, table: str) -> list[str]:
        """The table's key columns (``['rowid']`` for rowid keys); see ``storage.spans``."""
        with self._lock:
            info = self._conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
            if not info:
                raise ValueError(f"no such table: {table}")
            try:
                self._conn.execute(f"SELECT rowid FROM {quote(table)} LIMIT 0").fetchall()
                without_rowid = False
            except apsw.SQLError:
                without_rowid = True
        return key_columns_from_info(info, without_rowid)

    def _span_record(self) -> tuple[str, bytes, bytes, int, str] | None:
        """The ``_atlas_span`` row (table, start, end, schema version, database), read once
        and cached: every statement checks it, and it changes only through ``set_span`` /
        ``set_schema_version`` (which drop the cache, as does a rolled-back apply)."""
        with self._lock:
            if self._span_cache is not _NO_SPAN_CACHE:
                return self._span_cache  # type: ignore[return-value]
            try:
                row = self._conn.execute(
                    "SELECT table_name, start_key, end_key, schema_version, database"
                    f" FROM {_INTERNAL_PREFIX}span"
                ).fetchone()
            except apsw.SQLError:
                row = None
            record = (
                (str(row[0]), bytes(row[1]), bytes(row[2]), int(row[3]), str(row[4]))
                if row
                else None
            )
            self._span_cache = record
            return record

    def span(self) -> tuple[str, bytes, bytes] | None:
        """(table, start_key, end_key) this replica holds, or None: the whole table."""
        record = self._span_record()
        return record[:3] if record is not None else None

    def live_bytes(self) -> int:
        """Bytes of the database file in use (free pages left out)."""
        with self._lock:
            try:
                pages, free, size = (
                    int(str(self._conn.execute(f"PRAGMA {p}").fetchall()[0][0]))
                    for p in ("page_count", "freelist_count", "page_size")
                )
            except _FATAL as exc:
                raise EngineFailure(f"{self.path}: {exc}") from exc
        return (pages - free) * size

    @staticmethod
    def split_candidate(path: str, table: str) -> tuple[int, bytes | None]:
        """(live bytes, median key) of a replica file, from a separate read-only connection
        (writers are not blocked). Live bytes leave out free pages, so a range that just split
        is not measured by its old size. The key is None if the table has under two rows."""

        def one(sql: str, params: tuple[Any, ...] = ()) -> Any:
            row = conn.execute(sql, params).fetchone()
            return row

        try:
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        except apsw.Error as exc:
            raise EngineFailure(f"{path}: {exc}") from exc
        try:
            pages, free, size = (
                one(f"PRAGMA {p}")[0] for p in ("page_count", "freelist_count", "page_size")
            )
            info = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
            try:
                conn.execute(f"SELECT rowid FROM {quote(table)} LIMIT 0").fetchall()
                without_rowid = False
            except apsw.SQLError:
                without_rowid = True
            keys = key_columns_from_info(info, without_rowid)
            cols = ", ".join(quote(k) for k in keys)
            count = int(one(f"SELECT count(*) FROM {quote(table)}")[0])
            median = None
            if count >= 2:
                median = one(
                    f"SELECT {cols} FROM {quote(table)} ORDER BY {cols} LIMIT 1 OFFSET ?",
                    (count // 2,),
                )
        except apsw.Error as exc:
            raise EngineFailure(f"{path}: {exc}") from exc
        finally:
            conn.close()
        live = (int(pages) - int(free)) * int(size)
        return live, encode_prefix(list(median)) if median is not None else None

    @staticmethod
    def read_span(path: str) -> tuple[str, bytes, bytes, str] | None:
        """``span()`` and database of a replica file that is not open (read-only)."""
        try:
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        except apsw.Error:
            return None
        try:
            row = conn.execute(
                f"SELECT table_name, start_key, end_key, database FROM {_INTERNAL_PREFIX}span"
            ).fetchone()
        except apsw.Error:
            return None
        finally:
            conn.close()
        return (str(row[0]), bytes(row[1]), bytes(row[2]), str(row[3])) if row else None

    def _ensure_span_table(self) -> None:
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_INTERNAL_PREFIX}span(id INTEGER PRIMARY KEY"
            " CHECK (id = 1), table_name TEXT NOT NULL, start_key BLOB NOT NULL,"
            " end_key BLOB NOT NULL, schema_version INTEGER NOT NULL DEFAULT 1,"
            " database TEXT NOT NULL DEFAULT '')"
        )

    def set_span(self, table: str, start_key: bytes, end_key: bytes, database: str = "") -> None:
        """Inside ``apply`` only."""
        self._ensure_span_table()
        self._span_cache = _NO_SPAN_CACHE
        self._conn.execute(
            f"INSERT INTO {_INTERNAL_PREFIX}span(id, table_name, start_key, end_key, database)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " table_name = excluded.table_name, start_key = excluded.start_key,"
            " end_key = excluded.end_key, database = excluded.database",
            (table, start_key, end_key, database),
        )

    def span_database(self) -> str:
        """The database of this replica's table ('' = defaultdb or not recorded)."""
        record = self._span_record()
        return record[4] if record is not None else ""

    def schema_version(self) -> int:
        """The version of its table's schema this replica holds (1 until a DDL sets it)."""
        record = self._span_record()
        return record[3] if record is not None else 1

    def set_schema_version(self, table: str, version: int, database: str = "") -> None:
        """Inside ``apply`` only (a replica without a span row gets the whole-table span)."""
        self._ensure_span_table()
        self._span_cache = _NO_SPAN_CACHE
        self._conn.execute(
            f"INSERT INTO {_INTERNAL_PREFIX}span VALUES (1, ?, x'', x'', ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET schema_version = excluded.schema_version",
            (table, version, database),
        )

    def rows_outside_span(self) -> bool:
        """Whether the span's table holds a row outside the span (two indexed probes)."""
        span = self.span()
        if span is None:
            return False
        table, start, end = span
        with self._lock:
            try:
                keys = self.key_columns(table)
            except ValueError:
                return False
            lo, hi = bound_values(start), bound_values(end)
            if lo and self._conn.execute(outside_sql(table, keys, len(lo)), lo).fetchone():
                return True
            return bool(hi and self._conn.execute(beyond_sql(table, keys, len(hi)), hi).fetchone())

    def delete_from_key(self, table: str, key: bytes) -> int:
        """Delete the rows whose key is at or above ``key`` (a split's left side; in apply)."""
        values = bound_values(key)
        keys = self.key_columns(table)
        where = inside_condition(keys, len(values), 0)
        self._conn.execute(f"DELETE FROM {quote(table)} WHERE {where}", values)
        return int(self._conn.changes())

    @staticmethod
    def create_split_child(
        source_path: str,
        dest_path: str,
        *,
        table: str,
        start_key: bytes,
        end_key: bytes,
        base_index: int,
        voters: list[int],
        non_voters: list[int],
        generation: int,
        schema_version: int = 1,
        database: str = "",
    ) -> int:
        """Write the replica file of a split's right-hand range: the rows of ``table`` in
        ``[start_key, end_key)`` read from the committed state of ``source_path``, its schema,
        its exactly-once session records, and the new range's span, membership and applied
        index ``base_index``. Built beside ``dest_path``, synced, then renamed into place, so
        ``dest_path`` either does not exist or is complete. Returns the rows copied."""
        tmp = dest_path + ".split"
        Engine.remove_files(tmp)
        child = Engine(tmp)
        conn = child._conn
        try:
            conn.execute("ATTACH DATABASE ? AS src", (source_path,))
            schema = conn.execute(
                "SELECT type, name, sql FROM src.sqlite_schema WHERE sql IS NOT NULL"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                # (escaped: a bare '_' matches any character, and a user table such as
                # 'matlas1' was left out of the new range)
                f" AND name NOT LIKE '{_INTERNAL_LIKE}' ESCAPE '\\'"
                " ORDER BY type = 'table' DESC, rowid"
            ).fetchall()
            conn.execute("BEGIN")
            for _kind, _name, sql in schema:
                conn.execute(str(sql))
            keys = child.key_columns(table)
            xinfo = conn.execute(f"PRAGMA table_xinfo({quote(table)})").fetchall()
            # not generated or hidden columns
            cols = [quote(str(r[1])) for r in xinfo if r[6] == 0]
            if keys == ["rowid"] and not any(r[5] for r in xinfo):
                cols = ['"rowid"'] + cols  # keep the rowids of a table without a key column
            lo, hi = bound_values(start_key), bound_values(end_key)
            where = inside_condition(keys, len(lo), len(hi))
            col_list = ", ".join(cols)
            conn.execute(
                f"INSERT INTO main.{quote(table)} ({col_list}) SELECT {col_list} FROM"
                f" src.{quote(table)} WHERE {where}",
                (*lo, *hi),
            )
            copied = int(conn.changes())
            conn.execute(
                f"INSERT INTO main.{_INTERNAL_PREFIX}sessions"
                f" SELECT * FROM src.{_INTERNAL_PREFIX}sessions"
            )
            child.set_span(table, start_key, end_key, database)
            child.set_schema_version(table, schema_version, database)
            child.set_replica_config(voters, non_voters, generation)
            conn.execute(
                f"UPDATE {_INTERNAL_PREFIX}applied SET applied_index = ?, applied_term = 0",
                (base_index,),
            )
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            child.close()
            Engine.remove_files(tmp)
            raise
        child.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        Engine.remove_files(dest_path)
        os.replace(tmp, dest_path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(dest_path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return copied

    # -- snapshots -----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Make every applied transaction durable in the database file (before the Raft log
        entries it covers may be deleted)."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(FULL)")
            except _FATAL as exc:
                raise EngineFailure(f"{self.path}: checkpoint failed: {exc}") from exc

    @staticmethod
    def backup_to(source_path: str, dest_path: str) -> tuple[int, int]:
        """Copy the database at ``source_path`` into ``dest_path`` with SQLite's backup API,
        from a separate read connection (one read transaction, so the copy is consistent and
        writers are not blocked). Returns the copy's (applied index, applied term)."""
        src = apsw.Connection(source_path, flags=apsw.SQLITE_OPEN_READONLY)
        dest = apsw.Connection(dest_path)
        try:
            with dest.backup("main", src, "main") as backup:
                backup.step(-1)
            dest.execute("PRAGMA journal_mode=DELETE")
            row = dest.execute(
                f"SELECT applied_index, applied_term FROM {_INTERNAL_PREFIX}applied"
            ).fetchone()
        finally:
            dest.close()
            src.close()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @staticmethod
    def snapshot_position(path: str) -> tuple[int, int]:
        """(applied index, applied term) recorded in a snapshot file; raises on a bad file."""
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise EngineFailure(f"{path}: snapshot fails quick_check")
            row = conn.execute(
                f"SELECT applied_index, applied_term FROM {_INTERNAL_PREFIX}applied"
            ).fetchone()
        except apsw.Error as exc:
            raise EngineFailure(f"{path}: not a replica snapshot: {exc}") from exc
        finally:
            conn.close()
        if not row:
            raise EngineFailure(f"{path}: snapshot has no applied index")
        return int(row[0]), int(row[1])

    # -- maintenance ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def remove_files(path: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass

"""The gateway: plans one client statement and runs it on the ranges it touches.

Today every table is one range, so the plan is simple:

* DDL goes to the meta range (catalog) and, for CREATE TABLE/INDEX, to the table's range;
* INSERT/UPDATE/DELETE go to the table's range leader as one Raft entry, after non-deterministic
  parts (``random()``, ``datetime('now')``, ``CURRENT_TIMESTAMP`` defaults ...) were turned into
  literals;
* a SELECT on one table is a consistent read at that range's leader; a SELECT on several
  tables gathers each table (consistent per table) into a gateway-side SQLite and runs there;
  a SELECT on no table runs at the gateway.

Statements that would write to several ranges are refused (they need the transactions issue),
so a multi-range write never half-applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime
import functools
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Protocol

from sqlglot import exp

from proto import pb
from router import (
    DEFAULT_DATABASE,
    Action,
    CatalogCache,
    Policy,
    RangeSender,
    RangeUnavailableError,
    Rule,
    database_key,
    range_for_key,
)
from storage import (
    Engine,
    SqlValue,
    from_proto,
    params_from_proto,
    row_from_proto,
    row_to_proto,
    sqlstate,
    to_proto,
)
from storage.keys import decode_key, encode_key, encode_prefix, next_key

from .aggregates import PARTIAL_TABLE, AggPlan, plan_aggregate
from .dialect import SqlError, parse
from .planner import (
    Params,
    TableShape,
    insert_keys,
    is_positional,
    key_intervals,
    overlaps,
    table_shape,
)
from .regions import (
    ALTER_DATABASE_RE,
    SET_LOCALITY_RE,
    SHOW_GEO_RE,
    GeoSyntaxError,
    describe_locality,
    locality_clause,
    parse_database_options,
    parse_locality,
    region_name,
    regional_by_row_table,
    reshaped_create,
    row_region_column,
    split_locality,
    split_without_rowid,
    unique_per_region,
)
from .rewrite import (
    fill_defaults,
    nondeterministic_defaults,
    rewrite_nondeterministic,
    table_columns,
    to_sql,
    uses_random,
)
from .txn import PRIORITY_MEMORY, Coordinator, Txn, TxnError, fault_exit, new_txn
from .txn import range_span as _span

log = logging.getLogger(__name__)

_RESERVED_PREFIXES = ("_atlas", "sqlite_")
_REPLICAS_RE = re.compile(
    r"^\s*ALTER\s+RANGE\s+(?P<range>\d+)\s+(?:"
    r"(?P<verb>ADD|REMOVE)\s+(?P<kind>VOTER|NONVOTER|NON_VOTER)\s+n?(?P<node>\d+)"
    r"|RELOCATE\s+VOTERS\s+FROM\s+n?(?P<src>\d+)\s+TO\s+n?(?P<dst>\d+))\s*;?\s*$",
    re.I,
)
_RELOCATE_RE = re.compile(
    r"^\s*ALTER\s+RANGE\s+(?P<range>\d+)\s+RELOCATE\s+LEADER\s+TO\s+n?(?P<node>\d+)\s*;?\s*$",
    re.I,
)
_SPLIT_RE = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>(?:[A-Za-z_][A-Za-z0-9_]*\.)?(?:[A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\"))"
    r"\s+SPLIT\s+AT\s+"
    r"(?P<values>VALUES\s*\(.*?)\s*;?\s*$",
    re.I | re.S,
)
_SHOW_RANGE_FOR_ROW_RE = re.compile(
    r"^\s*SHOW\s+RANGE\s+FROM\s+TABLE\s+"
    r"(?P<table>(?:[A-Za-z_][A-Za-z0-9_]*\.)?(?:[A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\"))"
    r"\s+FOR\s+ROW\s*(?P<row>\(.*\))\s*;?\s*$",
    re.I | re.S,
)
_SHOW_RANGES_RE = re.compile(
    r"^\s*SHOW\s+RANGES(?:\s+FROM\s+TABLE\s+"
    r"(?P<table>(?:[A-Za-z_][A-Za-z0-9_]*\.)?(?:[A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\")))?"
    r"(?P<details>\s+WITH\s+DETAILS)?\s*;?\s*$",
    re.I,
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DATABASE_RE = re.compile(
    rf"^\s*(?:(?P<create>CREATE)\s+DATABASE\s+(?P<cine>IF\s+NOT\s+EXISTS\s+)?(?P<cname>{_NAME})"
    r"(?P<copts>\s+(?:PRIMARY|REGIONS|SURVIVE)\b.*?)?"
    rf"|(?P<drop>DROP)\s+DATABASE\s+(?P<die>IF\s+EXISTS\s+)?(?P<dname>{_NAME})"
    r"(?:\s+(?P<mode>CASCADE|RESTRICT))?"
    rf"|USE\s+(?P<use>{_NAME})"
    rf"|SET\s+(?:SESSION\s+)?DATABASE\s*(?:=|TO)\s*'?(?P<set>{_NAME})'?"
    r"|(?P<showdb>SHOW\s+DATABASES)"
    rf"|(?P<showtables>SHOW\s+TABLES)(?:\s+FROM\s+(?P<from>{_NAME}))?)\s*;?\s*$",
    re.I,
)
_CREATE_TABLE_RE = re.compile(r"^\s*CREATE\s+(?:TEMP\w*\s+)?TABLE\b", re.I)
_LOCALITY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "atlasql_locality", default=None
)
_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "atlasql_cancel", default=None
)
"""Set when the client of the statement being executed went away (it cancelled the call)."""
_STALENESS: contextvars.ContextVar[int] = contextvars.ContextVar("atlasql_staleness", default=0)
"""Follower reads: the staleness (ms) the statement being executed accepts (0 = consistent)."""
_AS_OF_RE = re.compile(
    r"\s+AS\s+OF\s+SYSTEM\s+TIME\s+(?:(?P<frt>follower_read_timestamp\s*\(\s*\))"
    r"|with_max_staleness\s*\(\s*'(?P<max>[^']*)'\s*\)|'(?P<ago>-[^']*)')",
    re.I,
)
FOLLOWER_READ_STALENESS_MS = 4800  # follower_read_timestamp(): as CockroachDB, now - 4.8 s
_GATEWAY_REGION_RE = re.compile(r"\bgateway_region\s*\(\s*\)", re.I)
_DB: contextvars.ContextVar[str] = contextvars.ContextVar("atlasql_database", default="")
_INTERNAL: contextvars.ContextVar[bool] = contextvars.ContextVar("atlasql_internal", default=False)
"""Set while the gateway runs its own statements on tables with reserved names (the copy a
locality conversion writes)."""
_CONVERT_PREFIX = "_atlasconv_"  # (not "_atlas_": SQLite files keep those to atlasql)
_CONVERT_BATCH = 500  # rows per INSERT while a conversion copies a table
_CONVERT_WAIT = 60.0  # seconds a write waits for a conversion of its table to finish
_TXN: contextvars.ContextVar[Txn | None] = contextvars.ContextVar("atlasql_txn", default=None)
_BEGIN_RE = re.compile(
    r"^\s*(?:BEGIN(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE))?(?:\s+TRANSACTION)?"
    r"|START\s+TRANSACTION)\s*;?\s*$",
    re.I,
)
_COMMIT_RE = re.compile(r"^\s*(?:COMMIT|END)(?:\s+TRANSACTION)?\s*;?\s*$", re.I)
_ROLLBACK_RE = re.compile(
    r"^\s*ROLLBACK(?:\s+TRANSACTION)?(?:\s+TO(?:\s+SAVEPOINT)?\s+(?P<to>\"?[A-Za-z_][\w]*\"?))?"
    r"\s*;?\s*$",
    re.I,
)
_SAVEPOINT_RE = re.compile(r"^\s*SAVEPOINT\s+(?P<name>\"?[A-Za-z_][\w]*\"?)\s*;?\s*$", re.I)
_RELEASE_RE = re.compile(
    r"^\s*RELEASE(?:\s+SAVEPOINT)?\s+(?P<name>\"?[A-Za-z_][\w]*\"?)\s*;?\s*$", re.I
)
# What may run inside an explicit transaction.
_IN_TXN_RE = re.compile(r"^\s*(?:SELECT|WITH|INSERT|UPDATE|DELETE|REPLACE|VALUES|SHOW|SET)\b", re.I)
# Retries of an implicit (autocommit, multi-range) transaction that had to restart.
_IMPLICIT_RETRIES = 8
"""The database the statement being executed works in ("" = defaultdb)."""

_REPLAN_BUDGET = 10.0  # seconds of re-planning after "range moved" (a split raced with us)


def _replans(budget: float = _REPLAN_BUDGET) -> Iterator[int]:
    """Attempt numbers 0, 1, ... with a growing pause between them, for ``budget`` seconds.

    A split's new descriptors reach the catalog a moment after the split applies; until then
    the old range refuses and the catalog still shows it, so re-planning must wait a little.
    """
    deadline = time.monotonic() + budget
    attempt, pause = 0, 0.002
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() + pause > deadline:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


_FANOUT = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
_EXPLAIN_RE = re.compile(
    r"^\s*EXPLAIN\s+(?P<analyze>ANALYZE\s+)?(?!QUERY\s+PLAN\b)(?P<stmt>.+)$", re.I | re.S
)
_CHECK_RE = re.compile(
    r"^\s*CHECK\s+CONSISTENCY(?:\s+FROM\s+TABLE\s+"
    r"(?P<table>(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*))?\s*;?\s*$",
    re.I,
)


class Cluster(Protocol):
    """What the gateway needs from its node (declared by the consumer)."""

    node_id: int
    catalog: CatalogCache
    sender: RangeSender

    def refresh_catalog(self) -> None: ...

    def poll_catalog(self) -> None: ...

    def meta_descriptor(self) -> pb.RangeDescriptor | None: ...

    def choose_replicas(self, count: int, region: str = "") -> list[int]: ...

    def ensure_replicas_everywhere(self, nodes: list[int]) -> None: ...

    def replica_checksum(self, node: int, range_id: int, index: int) -> str | None: ...

    def relocate_leader(self, range_id: int, target: int, timeout: float = 10.0) -> int: ...

    def run_meta(self, op: pb.MetaOp, *, budget: float = 10.0) -> pb.CommandResult: ...

    def change_replicas(
        self, range_id: int, voters: list[int], non_voters: list[int]
    ) -> pb.RangeDescriptor: ...

    def split_range(self, table: str, split_key: bytes, database: str = "") -> tuple[int, int]: ...

    def live_nodes(self) -> list[int]: ...

    def replicas_by_distance(self, desc: pb.RangeDescriptor) -> list[int]: ...

    def placement_plan(
        self, leaders: dict[int, int] | None = None
    ) -> list[tuple[pb.RangeDescriptor, Policy, Rule, Action]]: ...

    def region_of(self, node_id: int) -> str: ...

    def range_leaders(self) -> dict[int, int]: ...


def _error(
    code: str, message: str, position: int = 0, line: int = 0, column: int = 0
) -> pb.ExecuteResponse:
    resp = pb.ExecuteResponse()
    resp.error.code = code
    resp.error.message = message
    resp.error.position = position
    resp.error.line = line
    resp.error.column = column
    return resp


class StatementError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _RangeMoved(Exception):
    """A range refused the plan (its span changed): refresh the catalog and re-plan."""


@dataclasses.dataclass
class _ReadPlan:
    """How a SELECT runs: ``range`` (whole, on one range), ``aggregate`` (partials on each
    range, merged at the gateway) or ``gather`` (rows from each range, finished in a
    gateway-side SQLite). ``parts``: (table, range, per-range SQL, named parameters only)."""

    kind: str
    parts: list[tuple[pb.TableDescriptor, pb.RangeDescriptor, str, bool]]
    agg: AggPlan | None = None
    locks: list[pb.Span] | None = None  # key intervals read (None: everything)


@dataclasses.dataclass
class _Hop:
    """One step of an executed statement, for EXPLAIN ANALYZE."""

    where: str
    what: str
    started: float
    ms: float = -1.0

    def __post_init__(self) -> None:
        if self.ms < 0:
            self.ms = (time.perf_counter() - self.started) * 1000


def _rename_sql(old: str, new: str) -> str:
    return f"ALTER TABLE {_quote_ident(old)} RENAME TO {_quote_ident(new)}"


def _moved(res: pb.CommandResult) -> bool:
    """The range refused the plan (span or schema changed): nothing ran; re-plan."""
    return res.HasField("error") and res.error.code in (
        sqlstate.RANGE_MOVED,
        sqlstate.SCHEMA_CHANGED,
    )


def format_key(key: bytes, *, end: bool = False) -> str:
    """A span bound for people: ``/5``, ``/'abc'/2``; ``-inf``/``+inf`` when unbounded.

    >>> format_key(encode_prefix([5, 'a'])), format_key(b''), format_key(b'', end=True)
    ("/5/'a'", '-inf', '+inf')
    """
    if not key:
        return "+inf" if end else "-inf"
    parts = []
    for v in decode_key(key):
        if v is None:
            parts.append("NULL")
        elif isinstance(v, str):
            parts.append("'" + v.replace("'", "''") + "'")
        elif isinstance(v, bytes):
            parts.append("x'" + v.hex() + "'")
        else:
            parts.append(repr(v))
    return "/" + "/".join(parts)


def _from_result(res: pb.CommandResult) -> pb.ExecuteResponse:
    resp = pb.ExecuteResponse(
        columns=list(res.columns),
        rows=list(res.rows),
        rows_affected=res.rows_affected,
        last_insert_rowid=res.last_insert_rowid,
        returns_rows=res.returns_rows,
    )
    if res.HasField("error") and res.error.code:
        return _error(res.error.code, res.error.message)
    return resp


def _in_current_database(database: str) -> bool:
    return database_key(database) == database_key(_DB.get())


def _cte_names(tree: exp.Expr) -> set[str]:
    return {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}


def _table_names(tree: exp.Expr) -> list[str]:
    """Names of real tables referenced (CTE names excluded), in order of appearance."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    names: list[str] = []
    for t in tree.find_all(exp.Table):
        name = t.name
        if not name or name.lower() in ctes:
            continue
        if name.lower() not in [n.lower() for n in names]:
            names.append(name)
    return names


class Gateway:
    def __init__(
        self, cluster: Cluster, *, clock: Callable[[], datetime.datetime] | None = None
    ) -> None:
        self._cluster = cluster
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._rng = random.SystemRandom()
        self._session = uuid.uuid4().hex
        self._seq = 0
        self._seq_lock = threading.Lock()
        # Open transactions by client session id, and the priority of each session's last
        # restarted one (reused by its next BEGIN, so a retried transaction ages and wins).
        self._txns: dict[str, Txn] = {}
        self._restarted: dict[str, tuple[int, float]] = {}
        self._txns_lock = threading.Lock()
        self.coordinator = Coordinator(cluster.sender)
        self.convert_crash_at = ""  # fault injection (tests): see pb.FaultRequest.convert_crash
        self.txn_timeout = 60.0

    # -- entry point -------------------------------------------------------------------------

    def execute(
        self, request: pb.ExecuteRequest, cancel: threading.Event | None = None
    ) -> pb.ExecuteResponse:
        """Run one client statement. ``cancel``: set when the client cancels the call; the
        gateway then stops waiting for ranges and aborts its own SQLite work (57014)."""
        default = database_key(request.database) == DEFAULT_DATABASE
        token = _DB.set("" if default else request.database)
        cancel_token = _CANCEL.set(cancel)
        try:
            return self._in_session(request)
        finally:
            _CANCEL.reset(cancel_token)
            _DB.reset(token)

    # -- transactions ------------------------------------------------------------------------

    def _in_session(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Transaction control, and every other statement inside the session's transaction
        (if one is open)."""
        session = request.session_id
        with self._txns_lock:
            txn = self._txns.get(session) if session else None
        control = self._txn_control(request, txn)
        if control is not None:
            return control
        if txn is None and request.in_txn:
            return _error(
                sqlstate.SERIALIZATION_FAILURE,
                "this node does not know the session's transaction (the node restarted, or the"
                " client moved to another node): run the transaction again",
            )
        if txn is None:
            return self._execute(request)
        txn.last_used = time.monotonic()
        if txn.failed:
            resp = self._failed_response(txn)
        elif not _IN_TXN_RE.match(request.sql) or _AS_OF_RE.search(request.sql):
            resp = _error(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "only SELECT, INSERT, UPDATE, DELETE, SHOW and SET run inside a transaction"
                " (DDL, AS OF SYSTEM TIME and admin statements run outside one)",
            )
        else:
            before = txn.changes()
            token = _TXN.set(txn)
            try:
                resp = self._execute(request)
            except TxnError as exc:
                resp = _error(exc.code, exc.message)
            finally:
                _TXN.reset(token)
            if resp.error.code == sqlstate.SERIALIZATION_FAILURE:
                self._fail(session, txn, resp.error.message)
            elif resp.error.code:
                txn.restore(before)  # the statement is undone; the transaction goes on
        resp.txn_status = "failed" if txn.failed else "open"
        return resp

    def _fail(self, session: str, txn: Txn, why: str) -> None:
        """A restart error: drop the transaction's locks and changes everywhere; the session
        accepts only ROLLBACK until then."""
        txn.failed = why or "restart transaction"
        self.coordinator.abort(txn)
        self._remember_restart(session, txn)

    def _remember_restart(self, session: str, txn: Txn) -> None:
        """The session's next BEGIN (within PRIORITY_MEMORY) reuses ``txn``'s priority."""
        with self._txns_lock:
            self._restarted[session] = (txn.priority, time.monotonic())

    def _begin(self, session: str) -> Txn:
        with self._txns_lock:
            prior = self._restarted.pop(session, None)
        priority = prior[0] if prior and time.monotonic() - prior[1] < PRIORITY_MEMORY else 0
        txn = new_txn(priority)
        with self._txns_lock:
            self._txns[session] = txn
        return txn

    def _end(self, session: str) -> None:
        with self._txns_lock:
            self._txns.pop(session, None)

    def _txn_control(
        self, request: pb.ExecuteRequest, txn: Txn | None
    ) -> pb.ExecuteResponse | None:
        sql = request.sql
        session = request.session_id
        begin = _BEGIN_RE.match(sql)
        commit = _COMMIT_RE.match(sql)
        rollback = _ROLLBACK_RE.match(sql)
        savepoint = _SAVEPOINT_RE.match(sql)
        release = _RELEASE_RE.match(sql)
        if not (begin or commit or rollback or savepoint or release):
            return None
        if not session:
            return _error(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "transactions need a client session (ExecuteRequest.session_id)",
            )
        ok = pb.ExecuteResponse(rows_affected=-1)
        if begin:
            if txn is not None:
                resp = _error(
                    sqlstate.ACTIVE_TRANSACTION, "cannot start a transaction within a transaction"
                )
                resp.txn_status = "failed" if txn.failed else "open"
                return resp
            self._begin(session)
            ok.txn_status = "open"
            return ok
        if savepoint:
            name = savepoint.group("name").strip('"').lower()
            if txn is None:
                txn = self._begin(session)
                txn.started_by_savepoint = name
            if txn.failed:
                return self._failed_response(txn)
            txn.savepoints.append((name, txn.changes()))
            ok.txn_status = "open"
            return ok
        if txn is None:
            what = (
                "commit" if commit else "rollback" if rollback and not rollback.group("to") else ""
            )
            if what:
                return _error(
                    sqlstate.NO_ACTIVE_TRANSACTION, f"cannot {what} - no transaction is active"
                )
            name = (release or rollback).group("name" if release else "to")  # type: ignore[union-attr]
            return _error(sqlstate.INVALID_SAVEPOINT, f"no such savepoint: {name.strip(chr(34))}")
        txn.last_used = time.monotonic()
        if rollback and not rollback.group("to"):
            self._end(session)
            if not txn.failed:
                self.coordinator.abort(txn)
            return ok
        if commit or (release and txn.failed):
            self._end(session)
            if txn.failed:
                return _error(
                    sqlstate.SERIALIZATION_FAILURE,
                    f"the transaction was rolled back: {txn.failed}",
                )
            return self._commit(request, txn)
        if txn.failed:
            return self._failed_response(txn)
        name = (release or rollback).group("name" if release else "to").strip('"').lower()  # type: ignore[union-attr]
        at = next(
            (i for i in range(len(txn.savepoints) - 1, -1, -1) if txn.savepoints[i][0] == name),
            None,
        )
        if at is None:
            resp = _error(sqlstate.INVALID_SAVEPOINT, f"no such savepoint: {name}")
            resp.txn_status = "open"
            return resp
        if rollback:
            txn.restore(txn.savepoints[at][1])
            del txn.savepoints[at + 1 :]
            ok.txn_status = "open"
            return ok
        del txn.savepoints[at:]
        if not txn.savepoints and txn.started_by_savepoint == name:
            self._end(session)
            return self._commit(request, txn)
        ok.txn_status = "open"
        return ok

    def _failed_response(self, txn: Txn) -> pb.ExecuteResponse:
        resp = _error(
            sqlstate.IN_FAILED_TRANSACTION,
            f"current transaction is aborted, commands ignored until end of transaction block:"
            f" {txn.failed}",
        )
        resp.txn_status = "failed"
        return resp

    def _commit(self, request: pb.ExecuteRequest, txn: Txn) -> pb.ExecuteResponse:
        try:
            self.coordinator.commit(txn, session=(request.session_id, request.seq))
        except TxnError as exc:
            if exc.code == sqlstate.SERIALIZATION_FAILURE:
                self._remember_restart(request.session_id, txn)
            return _error(exc.code, exc.message)
        return pb.ExecuteResponse(rows_affected=-1)

    def run_implicit(self, body: Callable[[], pb.ExecuteResponse]) -> pb.ExecuteResponse:
        """Run one autocommit statement that touches several ranges as a transaction,
        restarting it (same priority) when it conflicts."""
        priority = 0
        for attempt in range(_IMPLICIT_RETRIES):
            txn = new_txn(priority)
            priority = txn.priority
            token = _TXN.set(txn)
            try:
                resp = body()
                if not resp.error.code:
                    self.coordinator.commit(txn)
                    return resp
            except TxnError as exc:
                resp = _error(exc.code, exc.message)
            except BaseException:
                self.coordinator.abort(txn)  # e.g. the ranges moved: the caller re-plans
                raise
            finally:
                _TXN.reset(token)
            self.coordinator.abort(txn)
            if resp.error.code != sqlstate.SERIALIZATION_FAILURE:
                return resp
            time.sleep(min(0.005 * 2**attempt, 0.2) * self._rng.random())
        return resp

    def sweep_transactions(self) -> None:
        """Abort transactions whose client went quiet past ``txn_timeout``; keep the locks of
        the others alive on ranges they have not touched lately."""
        now = time.monotonic()
        with self._txns_lock:
            idle = [(s, t) for s, t in self._txns.items() if now - t.last_used > self.txn_timeout]
            for s, _t in idle:
                del self._txns[s]
            live = [t for t in self._txns.values() if not t.failed]
            for s in [s for s, (_p, at) in self._restarted.items() if now - at > PRIORITY_MEMORY]:
                del self._restarted[s]
        for session, txn in idle:
            log.info(
                "session %s: transaction idle for %.0f s, aborted", session, now - txn.last_used
            )
            if not txn.failed:
                self.coordinator.abort(txn)
        for txn in live:
            self.coordinator.heartbeat(txn, older_than=3.0)

    def _execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        request = self._with_gateway_region(request)
        _STALENESS.set(_session_staleness(request))
        as_of = _AS_OF_RE.search(request.sql)
        if as_of:
            try:
                _STALENESS.set(_staleness_ms(as_of))
            except ValueError as exc:
                return _error(sqlstate.INVALID_PARAMETER, str(exc))
            if not re.match(
                r"^\s*(?:EXPLAIN\s+(?:ANALYZE\s+)?)?(?:SELECT|WITH)\b", request.sql, re.I
            ):
                return _error(
                    sqlstate.FEATURE_NOT_SUPPORTED, "AS OF SYSTEM TIME is allowed in SELECT only"
                )
            without = pb.ExecuteRequest()
            without.CopyFrom(request)
            without.sql = request.sql[: as_of.start()] + request.sql[as_of.end() :]
            request = without
        setting = _FOLLOWER_SETTING_RE.match(request.sql)
        if setting:
            try:
                value = _setting_value(setting)
            except ValueError as exc:
                return _error(sqlstate.INVALID_PARAMETER, str(exc))
            resp = pb.ExecuteResponse(rows_affected=-1)
            resp.settings[FOLLOWER_SETTING] = value
            return resp
        geo = (
            ALTER_DATABASE_RE.match(request.sql)
            or SHOW_GEO_RE.match(request.sql)
            or SET_LOCALITY_RE.match(request.sql)
        )
        if geo:
            try:
                return self._geo_statement(geo)
            except (StatementError, RangeUnavailableError) as exc:
                return _error(exc.code, exc.message)
            except GeoSyntaxError as exc:
                return _error(exc.code, exc.message)
            except NotImplementedError as exc:
                return _error(sqlstate.FEATURE_NOT_SUPPORTED, str(exc))
        database = _DATABASE_RE.match(request.sql)
        if database:
            try:
                return self._database_statement(database)
            except (StatementError, RangeUnavailableError) as exc:
                return _error(exc.code, exc.message)
        if _DB.get() and not self._database_exists(_DB.get()):
            return _error(sqlstate.UNDEFINED_DATABASE, f"database {_DB.get()} does not exist")
        replicas = _REPLICAS_RE.match(request.sql)
        if replicas:
            try:
                return self._alter_replicas(replicas)
            except (RangeUnavailableError, StatementError) as exc:
                return _error(exc.code, exc.message)
        relocate = _RELOCATE_RE.match(request.sql)
        if relocate:
            try:
                leader = self._cluster.relocate_leader(
                    int(relocate.group("range")), int(relocate.group("node"))
                )
            except RangeUnavailableError as exc:
                return _error(exc.code, exc.message)
            return pb.ExecuteResponse(
                columns=["range_id", "leader"],
                rows=[row_to_proto((int(relocate.group("range")), leader))],
                rows_affected=-1,
                returns_rows=True,
            )
        for_row = _SHOW_RANGE_FOR_ROW_RE.match(request.sql)
        if for_row:
            try:
                return self._range_for_row(
                    self._scoped_name(for_row.group("table")), for_row.group("row")
                )
            except (StatementError, RangeUnavailableError) as exc:
                return _error(exc.code, exc.message)
        split = _SPLIT_RE.match(request.sql)
        show = _SHOW_RANGES_RE.match(request.sql)
        if split or show:
            try:
                if split:
                    return self._split(
                        self._scoped_name(split.group("table")), split.group("values")
                    )
                name = show.group("table") if show else None
                return self._show_ranges(
                    self._scoped_name(name) if name else None,
                    details=bool(show and show.group("details")),
                )
            except SqlError as exc:
                return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
            except (StatementError, RangeUnavailableError) as exc:
                return _error(exc.code, exc.message)
        explain = _EXPLAIN_RE.match(request.sql)
        if explain:
            inner = pb.ExecuteRequest()
            inner.CopyFrom(request)
            inner.sql = explain.group("stmt")
            try:
                return self._explain(inner, analyze=bool(explain.group("analyze")))
            except SqlError as exc:
                return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
            except (StatementError, RangeUnavailableError) as exc:
                return _error(exc.code, exc.message)
        check = _CHECK_RE.match(request.sql)
        if check:
            try:
                name = check.group("table")
                return self._check_consistency(self._scoped_name(name) if name else None)
            except StatementError as exc:
                return _error(exc.code, exc.message)
            except RangeUnavailableError as exc:
                return _error(exc.code, exc.message)
        _LOCALITY.set(None)
        parse_text = request.sql
        if _CREATE_TABLE_RE.match(request.sql):
            try:
                stripped, locality = split_locality(request.sql)
            except GeoSyntaxError as exc:
                return _error(exc.code, exc.message)
            except NotImplementedError as exc:
                return _error(sqlstate.FEATURE_NOT_SUPPORTED, str(exc))
            if locality is not None:
                request = pb.ExecuteRequest(sql=stripped, database=request.database)
                _LOCALITY.set(locality)
            # sqlglot does not know SQLite's WITHOUT ROWID: parse without it (the ranges get
            # the CREATE TABLE text as written).
            text, without_rowid = split_without_rowid(request.sql)
            parse_text = text if without_rowid else request.sql
        try:
            statements = _parse_cached(parse_text)
        except SqlError as exc:
            return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
        if len(statements) != 1:
            return _error(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "you can only execute one statement at a time",
            )
        tree = statements[0]
        try:
            tree, request = self._scope_database(tree, request)
            return self._dispatch(tree, request)
        except SqlError as exc:
            return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
        except StatementError as exc:
            return _error(exc.code, exc.message)
        except RangeUnavailableError as exc:
            return _error(exc.code, exc.message)

    # -- databases ---------------------------------------------------------------------------

    # -- regions -----------------------------------------------------------------------------

    def _with_gateway_region(self, request: pb.ExecuteRequest) -> pb.ExecuteRequest:
        """``gateway_region()`` is the region of the node the client is connected to."""
        if "gateway_region" not in request.sql.lower():
            return request
        region = self._cluster.region_of(self._cluster.node_id).replace("'", "''")
        out = pb.ExecuteRequest()
        out.CopyFrom(request)
        out.sql = _GATEWAY_REGION_RE.sub(f"'{region}'", request.sql)
        return out

    def _cluster_regions(self) -> dict[str, list[pb.NodeInfo]]:
        """region -> its nodes, from the nodes' localities."""
        out: dict[str, list[pb.NodeInfo]] = {}
        for n in self._cluster.catalog.snapshot().nodes:
            region = next((t.value for t in n.locality.tiers if t.key == "region"), "")
            if region:
                out.setdefault(region, []).append(n)
        return out

    def _check_regions(self, regions: list[str]) -> None:
        known = self._cluster_regions()
        if any(r not in known for r in regions):
            self._cluster.refresh_catalog()
            known = self._cluster_regions()
        for r in regions:
            if r not in known:
                raise StatementError(
                    sqlstate.INVALID_PARAMETER,
                    f"region {r!r} has no nodes (the cluster's regions: "
                    f"{', '.join(sorted(known)) or 'none'})",
                )

    def _database_desc(self, name: str) -> pb.DatabaseDescriptor | None:
        for d in self._cluster.catalog.snapshot().databases:
            if d.name.lower() == name.lower():
                found: pb.DatabaseDescriptor = d
                return found
        return None

    def _geo_statement(self, m: re.Match[str]) -> pb.ExecuteResponse:
        self._cluster.refresh_catalog()
        groups = m.groupdict()
        if "add" in groups:  # ALTER DATABASE
            db = m.group("db")
            op = pb.AlterDatabase(name=db)
            if m.group("add"):
                op.add_region = region_name(m.group("add"))
                self._check_regions([op.add_region])
            elif m.group("drop"):
                op.drop_region = region_name(m.group("drop"))
            elif m.group("primary"):
                op.primary_region = region_name(m.group("primary"))
                self._check_regions([op.primary_region])
            else:
                op.survival = m.group("survive").lower()
            self._meta(pb.MetaOp(alter_database=op))
            return pb.ExecuteResponse(rows_affected=-1)
        if "loc" in groups:  # ALTER TABLE t SET LOCALITY ...
            name = self._scoped_name(m.group("table"))
            table = self._table(name)
            locality = parse_locality(m.group("loc"))
            if locality.startswith("table:"):
                self._check_regions([locality[len("table:") :]])
            if locality.startswith("row:") and table.locality.startswith("row:"):
                raise StatementError(
                    sqlstate.FEATURE_NOT_SUPPORTED,
                    f"table {table.name} is already REGIONAL BY ROW: to use another region"
                    " column, convert it to REGIONAL BY TABLE first",
                )
            if locality.startswith("row:") or table.locality.startswith("row:"):
                return self._convert_table(table, locality)
            self._not_converting(table)
            self._meta(
                pb.MetaOp(
                    set_locality=pb.SetLocality(
                        database=_DB.get(), table=table.name, locality=locality
                    )
                )
            )
            return pb.ExecuteResponse(rows_affected=-1)
        if m.group("nodes"):
            live = set(self._cluster.live_nodes())
            rows: list[tuple[object, ...]] = []
            for n in self._cluster.catalog.snapshot().nodes:
                tiers = {t.key: t.value for t in n.locality.tiers}
                locality = ",".join(f"{t.key}={t.value}" for t in n.locality.tiers)
                rows.append(
                    (
                        n.node_id,
                        n.address,
                        tiers.get("region", ""),
                        tiers.get("zone", ""),
                        locality,
                        "live" if n.node_id in live else "unreachable",
                    )
                )
            return _rows_response(
                ["node_id", "address", "region", "zone", "locality", "liveness"], rows
            )
        if m.group("regions") and not (m.group("rdb") or "DATABASE" in m.group(0).upper()):
            rows = []
            for region, nodes in sorted(self._cluster_regions().items()):
                zones = sorted(
                    {t.value for n in nodes for t in n.locality.tiers if t.key == "zone"}
                )
                dbs = sorted(
                    d.name
                    for d in self._cluster.catalog.snapshot().databases
                    if region in d.regions
                )
                rows.append(
                    (
                        region,
                        ",".join(zones),
                        ",".join(f"n{n.node_id}" for n in nodes),
                        ",".join(dbs),
                    )
                )
            return _rows_response(["region", "zones", "nodes", "database_names"], rows)
        name = m.group("rdb") or m.group("sdb") or _DB.get() or DEFAULT_DATABASE
        desc = self._database_desc(name)
        if desc is None and database_key(name) != DEFAULT_DATABASE:
            raise StatementError(sqlstate.UNDEFINED_DATABASE, f"database {name} does not exist")
        if m.group("regions"):
            regions = list(desc.regions) if desc is not None else []
            primary = desc.primary_region if desc is not None else ""
            return _rows_response(
                ["database", "region", "primary"], [(name, r, r == primary) for r in regions]
            )
        survival = (desc.survival if desc is not None and desc.primary_region else "") or "zone"
        return _rows_response(["database", "survival_goal"], [(name, survival)])

    def _home_region(self, locality: str) -> str:
        """The home region a table of the current database with ``locality`` gets; checks
        that the locality fits the database."""
        desc = self._database_desc(_DB.get() or DEFAULT_DATABASE)
        primary = desc.primary_region if desc is not None else ""
        if locality and not primary:
            raise StatementError(
                sqlstate.INVALID_PARAMETER,
                f"database {_DB.get() or 'defaultdb'} has no regions: a table locality needs"
                " ALTER DATABASE ... PRIMARY REGION first",
            )
        if locality.startswith("table:"):
            region = locality[len("table:") :]
            if desc is not None and region not in desc.regions:
                raise StatementError(
                    sqlstate.INVALID_PARAMETER,
                    f"region {region} is not a region of database {desc.name}"
                    f" ({', '.join(desc.regions)})",
                )
            return region
        return primary

    def _database_exists(self, name: str) -> bool:
        if self._cluster.catalog.database_exists(name):
            return True
        self._cluster.refresh_catalog()
        return self._cluster.catalog.database_exists(name)

    def _database_statement(self, m: re.Match[str]) -> pb.ExecuteResponse:
        """CREATE/DROP DATABASE, USE / SET database, SHOW DATABASES, SHOW TABLES [FROM d]."""
        if m.group("create"):
            name = m.group("cname")
            try:
                primary, regions, survival = parse_database_options(m.group("copts") or "")
            except GeoSyntaxError as exc:
                raise StatementError(exc.code, exc.message) from None
            self._check_regions([primary, *regions] if primary else [])
            if survival == "region" and len(regions) + 1 < 3:
                raise StatementError(
                    sqlstate.INVALID_PARAMETER,
                    f"SURVIVE REGION FAILURE needs at least 3 regions; {name} would have"
                    f" {len(regions) + 1}",
                )
            self._meta(
                pb.MetaOp(
                    create_database=pb.CreateDatabase(
                        name=name,
                        if_not_exists=bool(m.group("cine")),
                        primary_region=primary,
                        regions=regions,
                        survival=survival,
                    )
                )
            )
            return pb.ExecuteResponse(rows_affected=-1)
        if m.group("drop"):
            name = m.group("dname")
            cascade = (m.group("mode") or "").upper() == "CASCADE"
            self._meta(
                pb.MetaOp(
                    drop_database=pb.DropDatabase(
                        name=name, if_exists=bool(m.group("die")), cascade=cascade
                    )
                )
            )
            return pb.ExecuteResponse(rows_affected=-1)
        if m.group("use") or m.group("set"):
            name = m.group("use") or m.group("set")
            if not self._database_exists(name):
                raise StatementError(sqlstate.UNDEFINED_DATABASE, f"database {name} does not exist")
            return pb.ExecuteResponse(rows_affected=-1, database=name)
        self._cluster.refresh_catalog()
        cat = self._cluster.catalog.snapshot()
        if m.group("showdb"):
            names = [DEFAULT_DATABASE] + sorted(d.name for d in cat.databases)
            return _rows_response(["database_name"], [(n,) for n in names])
        db = m.group("from") or _DB.get() or DEFAULT_DATABASE
        if not self._database_exists(db):
            raise StatementError(sqlstate.UNDEFINED_DATABASE, f"database {db} does not exist")
        tables = sorted(t.name for t in cat.tables if database_key(t.database) == database_key(db))
        return _rows_response(["table_name"], [(t,) for t in tables])

    def _scoped_name(self, name: str) -> str:
        """``d.t`` -> ``t``, working in database d from now on; quotes removed."""
        if not name.startswith('"') and "." in name:
            db, name = name.split(".", 1)
            db = "" if database_key(db) == DEFAULT_DATABASE else db
            if db and not self._database_exists(db):
                raise StatementError(sqlstate.UNDEFINED_DATABASE, f"database {db} does not exist")
            _DB.set(db)
        return _ident(name)

    def _scope_database(
        self, tree: exp.Expr, request: pb.ExecuteRequest
    ) -> tuple[exp.Expr, pb.ExecuteRequest]:
        """A statement works in one database: the session's, or the one its qualified names
        (``d.t``) name. Qualifiers are stripped (ranges hold bare table names)."""
        qualified = {t.db.lower() for t in tree.find_all(exp.Table) if t.db}
        if not qualified:
            return tree, request
        if len(qualified) > 1:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "a statement over tables of several databases is not supported yet",
            )
        db = qualified.pop()
        db = "" if database_key(db) == DEFAULT_DATABASE else db
        if db and not self._database_exists(db):
            raise StatementError(sqlstate.UNDEFINED_DATABASE, f"database {db} does not exist")
        current = _DB.get().lower()
        unqualified = [
            t
            for t in tree.find_all(exp.Table)
            if not t.db and t.name.lower() not in _cte_names(tree)
        ]
        if unqualified and db != current:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "a statement over tables of several databases is not supported yet",
            )
        stripped = tree.copy()
        for t in stripped.find_all(exp.Table):
            if t.db:
                t.set("db", None)
        _DB.set(db)
        scoped = pb.ExecuteRequest()
        scoped.CopyFrom(request)
        scoped.sql = to_sql(stripped)
        scoped.database = db
        return stripped, scoped

    # -- admin statements --------------------------------------------------------------------

    def _check_consistency(self, table: str | None) -> pb.ExecuteResponse:
        """Every replica checksums its state at one log index; compare them."""
        self._cluster.refresh_catalog()
        if table:
            self._table(table)
            ranges = list(self._cluster.catalog.ranges_of(table, _DB.get()))
        else:
            meta = self._cluster.meta_descriptor()
            ranges = ([meta] if meta is not None else []) + list(
                self._cluster.catalog.snapshot().ranges
            )
        rows = []
        for desc in ranges:
            res = self._cluster.sender.send(desc, pb.Command(check=pb.ChecksumOp()))
            index = int(res.rows[0].values[0].integer)
            expected = res.rows[0].values[1].text
            for node in desc.replicas:
                got = self._cluster.replica_checksum(node, desc.range_id, index)
                if got is None:
                    status = "unavailable"
                elif got == expected:
                    status = "consistent"
                else:
                    status = "INCONSISTENT"
                rows.append((desc.range_id, node, index, got or "", status))
        return pb.ExecuteResponse(
            columns=["range_id", "node_id", "applied_index", "checksum", "status"],
            rows=[row_to_proto(r) for r in rows],
            rows_affected=-1,
            returns_rows=True,
        )

    def _alter_replicas(self, m: re.Match[str]) -> pb.ExecuteResponse:
        """ALTER RANGE n {ADD|REMOVE} {VOTER|NONVOTER} node, RELOCATE VOTERS FROM a TO b."""
        range_id = int(m.group("range"))
        if range_id == 1:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, "the meta range's replicas cannot be changed yet"
            )
        self._cluster.refresh_catalog()
        desc = self._cluster.catalog.range(range_id)
        if desc is None:
            raise StatementError(sqlstate.RANGE_NOT_FOUND, f"no range {range_id}")
        voters, non_voters = list(desc.replicas), list(desc.non_voters)
        steps: list[tuple[list[int], list[int]]] = []
        if m.group("verb"):
            verb, kind, node = (
                m.group("verb").upper(),
                m.group("kind").upper(),
                int(m.group("node")),
            )
            target = voters if kind == "VOTER" else non_voters  # NONVOTER / NON_VOTER
            if verb == "ADD":
                if node in voters or node in non_voters:
                    raise StatementError(
                        sqlstate.INVALID_PARAMETER, f"n{node} already holds a replica"
                    )
                target.append(node)
            else:
                if node not in target:
                    raise StatementError(
                        sqlstate.INVALID_PARAMETER, f"n{node} is not a {kind.lower()} of the range"
                    )
                target.remove(node)
            steps.append((voters, non_voters))
        else:
            src, dst = int(m.group("src")), int(m.group("dst"))
            if src not in voters:
                raise StatementError(sqlstate.INVALID_PARAMETER, f"n{src} is not a voter")
            if dst in voters:
                raise StatementError(sqlstate.INVALID_PARAMETER, f"n{dst} is already a voter")
            nv = [n for n in non_voters if n != dst]
            steps.append((voters + [dst], nv))  # add first, then remove: never below quorum
            steps.append(([n for n in voters if n != src] + [dst], nv))
        for new_voters, new_non_voters in steps:
            desc = self._cluster.change_replicas(range_id, new_voters, new_non_voters)
        return pb.ExecuteResponse(
            columns=["range_id", "voters", "non_voters", "generation"],
            rows=[
                row_to_proto(
                    (
                        range_id,
                        ",".join(f"n{n}" for n in desc.replicas),
                        ",".join(f"n{n}" for n in desc.non_voters),
                        int(desc.generation),
                    )
                )
            ],
            rows_affected=-1,
            returns_rows=True,
        )

    def _split(self, name: str, values_sql: str) -> pb.ExecuteResponse:
        """ALTER TABLE t SPLIT AT VALUES (k...)[, (k...)]: one split per row."""
        table = self._table(name)
        shape = table_shape(table.name, table.create_sql, tuple(table.index_sql))
        if shape.unique_beyond_key:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                f"table {table.name} has a UNIQUE constraint or index besides its key; it is"
                " enforced per range, so the table cannot be split until cross-range"
                " uniqueness (with transactions) lands",
            )
        if not shape.binary_key:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                f"table {table.name}'s key has a non-BINARY collation: it cannot be split",
            )
        rows = _evaluate_values(values_sql)
        out = []
        for row in rows:
            if not 1 <= len(row) <= len(shape.key_columns):
                raise StatementError(
                    sqlstate.SYNTAX_ERROR,
                    f"a split point has 1 to {len(shape.key_columns)} values (the key of"
                    f" {table.name} is {', '.join(shape.key_columns)}), not {len(row)}",
                )
            _check_key_values(shape, row)
            key = encode_prefix(list(row))
            left, right = self._cluster.split_range(table.name, key, _DB.get())
            out.append((left, right, format_key(key)))
        return pb.ExecuteResponse(
            columns=["range_id", "new_range_id", "split_key"],
            rows=[row_to_proto(r) for r in out],
            rows_affected=-1,
            returns_rows=True,
        )

    def _explain(self, request: pb.ExecuteRequest, *, analyze: bool) -> pb.ExecuteResponse:
        """EXPLAIN: the distributed plan (which ranges, where, what runs there, what the
        gateway merges). EXPLAIN ANALYZE runs a SELECT and times every hop."""
        statements = _parse_cached(request.sql)
        if len(statements) != 1:
            raise StatementError(sqlstate.SYNTAX_ERROR, "EXPLAIN takes one statement")
        tree = statements[0]
        me = f"gateway n{self._cluster.node_id}"
        rows: list[tuple[object, ...]] = []
        if isinstance(tree, exp.Query):
            names = _table_names(tree)
            tables = [self._table(n) for n in names]
            if analyze:
                trace: list[_Hop] = []
                started = time.perf_counter()
                resp = self._select(tree, request, trace)
                total = (time.perf_counter() - started) * 1000
                if resp.HasField("error") and resp.error.code:
                    return resp
                rows = [(i, h.where, h.what, round(h.ms, 3)) for i, h in enumerate(trace, 1)]
                rows.append(
                    (len(rows) + 1, me, f"total ({len(resp.rows)} rows returned)", round(total, 3))
                )
                return _rows_response(["step", "where", "what", "ms"], rows)
            if not tables:
                rows = [(1, me, "run the statement locally (it reads no table)")]
            else:
                plan = self._plan_select(tree, request, tables, refresh=False)
                for _t, r, sql, _named in plan.parts:
                    rows.append((len(rows) + 1, self._where(r), sql))
                if plan.agg is not None:
                    rows.append((len(rows) + 1, me, f"merge partials: {plan.agg.final_sql}"))
                elif plan.kind == "gather":
                    rows.append((len(rows) + 1, me, f"load rows into SQLite, run: {request.sql}"))
                summary = {
                    "range": "runs whole on one range",
                    "aggregate": f"partial aggregates on {len(plan.parts)} ranges",
                    "gather": f"rows from {len(plan.parts)} ranges, finished at the gateway",
                }[plan.kind]
                rows.insert(0, (0, me, f"plan: {summary}"))
        elif isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            if not isinstance(target, exp.Table):
                raise StatementError(sqlstate.SYNTAX_ERROR, "cannot find the target table")
            table = self._table(target.name)
            ranges = self._ranges(table.name)
            try:
                targets, _locks = self._write_targets(tree, table, ranges, request, request.sql)
                probes = []
                if isinstance(tree, exp.Insert) and self._needs_global_check(tree, table):
                    db = self._database_desc(table.database or DEFAULT_DATABASE)
                    here = self._cluster.region_of(self._cluster.node_id)
                    for region in sorted(db.regions) if db is not None else []:
                        d = range_for_key(ranges, encode_prefix([region])) or ranges[-1]
                        if d.range_id not in {t.range_id for t in targets}:
                            probes.append(
                                (
                                    0,
                                    self._where(d),
                                    f"uniqueness probe of the key in {region}"
                                    + (
                                        f" (cross-region: {here}->{region})"
                                        if region != here
                                        else ""
                                    ),
                                )
                            )
                if probes:
                    rows = [
                        *probes,
                        (1, self._where(targets[0]), "provisional insert on the leader"),
                        (2, me, "commit: one entry on the written range, probed ranges released"),
                    ]
                    rows = [(i, w, what) for i, (_s, w, what) in enumerate(rows, start=1)]
                elif len(targets) == 1:
                    rows = [(1, self._where(targets[0]), "one Raft entry: " + request.sql)]
                else:
                    rows = [
                        (i, self._where(d), "provisional write (changeset) on the leader")
                        for i, d in enumerate(targets, start=1)
                    ]
                    rows.append(
                        (
                            len(targets) + 1,
                            me,
                            f"two-phase commit: {len(targets) - 1} intents, then the record on"
                            f" r{targets[0].range_id}; intents resolved in the background",
                        )
                    )
            except StatementError as exc:
                rows = [(1, me, f"refused ({exc.code}): {exc.message}")]
        else:
            rows = [(1, me, "catalog change on the meta range, then each range of the table")]
        if analyze:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, "EXPLAIN ANALYZE runs SELECT statements only"
            )
        return _rows_response(["step", "where", "what"], rows)

    def _where(self, desc: pb.RangeDescriptor) -> str:
        leader = self._cluster.sender.leader_of(desc.range_id)
        span = f"[{format_key(desc.start_key)}, {format_key(desc.end_key, end=True)})"
        return f"r{desc.range_id} {span} leader n{leader or '?'}"

    def _range_for_row(self, name: str, row_sql: str) -> pb.ExecuteResponse:
        """SHOW RANGE FROM TABLE t FOR ROW (key values...): the range that holds that key."""
        table = self._table(name)
        shape = table_shape(table.name, table.create_sql)
        rows = _evaluate_values("VALUES " + row_sql)
        if len(rows) != 1 or len(rows[0]) != len(shape.key_columns):
            raise StatementError(
                sqlstate.SYNTAX_ERROR,
                f"FOR ROW takes the {len(shape.key_columns)} key value(s) of {table.name}"
                f" ({', '.join(shape.key_columns)})",
            )
        _check_key_values(shape, rows[0])
        key = encode_prefix(list(rows[0]))
        ranges = self._ranges(table.name, refresh=True)
        desc = range_for_key(ranges, key) or ranges[-1]
        leader = self._cluster.range_leaders().get(desc.range_id, 0)
        return _rows_response(
            ["range_id", "start_key", "end_key", "voters", "non_voters", "leader"],
            [
                (
                    desc.range_id,
                    format_key(desc.start_key),
                    format_key(desc.end_key, end=True),
                    ",".join(f"n{n}" for n in desc.replicas),
                    ",".join(f"n{n}" for n in desc.non_voters),
                    f"n{leader}" if leader else "",
                )
            ],
        )

    def _show_ranges(self, name: str | None, *, details: bool = False) -> pb.ExecuteResponse:
        self._cluster.refresh_catalog()
        if name is not None:
            self._table(name)
            ranges = self._cluster.catalog.ranges_of(name, _DB.get())
        else:  # every range of the current database's tables
            ranges = [
                r
                for r in self._cluster.catalog.snapshot().ranges
                if _in_current_database(r.database)
            ]
        ranges = sorted(ranges, key=lambda d: (d.table.lower(), d.start_key))
        leaders = self._cluster.range_leaders()
        if details:
            return self._range_details(ranges, leaders)
        rows = [
            (
                d.range_id,
                d.table,
                format_key(d.start_key),
                format_key(d.end_key, end=True),
                ",".join(f"n{n}" for n in d.replicas),
                ",".join(f"n{n}" for n in d.non_voters),
                f"n{leaders[d.range_id]}" if leaders.get(d.range_id) else "",
                int(d.generation),
            )
            for d in ranges
        ]
        return pb.ExecuteResponse(
            columns=[
                "range_id",
                "table_name",
                "start_key",
                "end_key",
                "voters",
                "non_voters",
                "leader",
                "generation",
            ],
            rows=[row_to_proto(r) for r in rows],
            rows_affected=-1,
            returns_rows=True,
        )

    def _range_details(
        self, ranges: list[pb.RangeDescriptor], leaders: dict[int, int]
    ) -> pb.ExecuteResponse:
        """SHOW RANGES ... WITH DETAILS: placement as declared and as it is, and what the
        allocator will do next (and why)."""
        plans = {d.range_id: (p, a) for d, p, _r, a in self._cluster.placement_plan(leaders)}
        region = self._cluster.region_of

        def with_regions(nodes: list[int]) -> str:
            return ",".join(f"n{n}({region(n)})" for n in nodes)

        rows = []
        for d in ranges:
            policy, action = plans.get(d.range_id, (None, None))
            leader = leaders.get(d.range_id, 0)
            rows.append(
                (
                    d.range_id,
                    d.table,
                    format_key(d.start_key),
                    format_key(d.end_key, end=True),
                    policy.home_region if policy is not None else "",
                    f"n{leader}" if leader else "",
                    region(leader) if leader else "",
                    with_regions(list(d.replicas)),
                    with_regions(list(d.non_voters)),
                    action.reason
                    if action is not None
                    else "no placement rule: the database has no regions",
                )
            )
        return _rows_response(
            [
                "range_id",
                "table_name",
                "start_key",
                "end_key",
                "home_region",
                "leader",
                "leader_region",
                "voters",
                "non_voters",
                "allocator",
            ],
            rows,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _next_internal(self) -> tuple[str, int]:
        with self._seq_lock:
            self._seq += 1
            return self._session, self._seq

    def _command(self, request: pb.ExecuteRequest, **op: object) -> pb.Command:
        """A command carrying the client's (session, seq), or a gateway-made one."""
        cmd = pb.Command(**op)  # type: ignore[arg-type]
        if request.session_id:
            cmd.session_id, cmd.seq = request.session_id, request.seq
        else:
            cmd.session_id, cmd.seq = self._next_internal()
        return cmd

    def _meta(self, op: pb.MetaOp) -> pb.CommandResult:
        res = self._cluster.run_meta(op)  # RangeUnavailableError carries the code
        self._cluster.refresh_catalog()
        return res

    def _table(self, name: str) -> pb.TableDescriptor:
        if name.lower().startswith(_RESERVED_PREFIXES) and not _INTERNAL.get():
            raise StatementError(sqlstate.INSUFFICIENT_PRIVILEGE, f"{name} is reserved for atlasql")
        db = _DB.get()
        table = self._cluster.catalog.table(name, db)
        if table is None:
            self._cluster.refresh_catalog()
            table = self._cluster.catalog.table(name, db)
        if table is None:
            raise StatementError(sqlstate.UNDEFINED_TABLE, f"no such table: {name}")
        return table

    def _ranges(self, table: str, *, refresh: bool = False) -> list[pb.RangeDescriptor]:
        """The table's ranges in key order."""
        if refresh:
            self._cluster.refresh_catalog()
        ranges = self._cluster.catalog.ranges_of(table, _DB.get())
        if not ranges:
            self._cluster.refresh_catalog()
            ranges = self._cluster.catalog.ranges_of(table, _DB.get())
        if not ranges:
            raise StatementError(sqlstate.RANGE_NOT_FOUND, f"table {table} has no range")
        return sorted(ranges, key=lambda d: d.start_key)

    def _read(
        self,
        table: pb.TableDescriptor,
        desc: pb.RangeDescriptor,
        sql: str,
        request: pb.ExecuteRequest | None,
        named_only: bool = False,
        staleness_ms: int = 0,
        locks: list[pb.Span] | None = None,
        txn: Txn | None = None,
    ) -> tuple[int, pb.CommandResult]:
        """(the node that answered, the result). With ``staleness_ms``, the nearest replica
        fresh enough answers (a follower read), else the leader. ``locks``: the key intervals
        read (none: all). ``txn``: read inside that transaction (its locks, its changes)."""
        read = pb.SqlRead(sql=sql, span=_span(desc), schema_version=table.schema_version)
        read.locks.extend(locks or [])
        if request is not None:
            if not named_only:
                read.params.extend(request.params)
            for k, v in request.named_params.items():
                read.named_params[k].CopyFrom(v)
        if txn is not None:
            stmt = pb.SqlWrite(
                sql=read.sql,
                params=read.params,
                span=read.span,
                schema_version=read.schema_version,
            )
            for k, v in read.named_params.items():
                stmt.named_params[k].CopyFrom(v)
            res = self.coordinator.step(
                txn, desc, table.schema_version, stmt, read_only=True, locks=list(read.locks)
            )
            if _moved(res):
                raise _RangeMoved
            return self._cluster.sender.leader_of(desc.range_id), res
        served = None
        if staleness_ms:
            stale = pb.SqlRead()
            stale.CopyFrom(read)
            stale.max_staleness_ms = staleness_ms
            served = self._cluster.sender.send_follower_read(
                desc, pb.Command(read=stale), self._cluster.replicas_by_distance(desc)
            )
        if served is None:
            res = self._cluster.sender.send(desc, pb.Command(read=read))
            served = (self._cluster.sender.leader_of(desc.range_id), res)
        if _moved(served[1]):
            raise _RangeMoved
        return served

    def _on_every_range(
        self,
        table: pb.TableDescriptor,
        request: pb.ExecuteRequest,
        sql: str,
        undo: str | None,
        *,
        rename_to: str = "",
        set_version: int = 0,
    ) -> pb.ExecuteResponse | None:
        """Run a schema statement on each range of ``table``; on a failure, ``undo`` runs on
        the ranges that took it and the error is returned. ``rename_to``: the statement
        renames the ranges' table (their span records follow). ``set_version``: every range
        moves to that version from whichever it holds (unchecked)."""
        for attempt in _replans():
            if attempt:
                table = self._table(table.name)  # the catalog was refreshed
            old, new = int(table.schema_version), int(table.schema_version) + 1
            if set_version:
                old, new = 0, set_version
            done: list[pb.RangeDescriptor] = []
            moved = False
            for desc in self._ranges(table.name):
                ddl = pb.SqlWrite(
                    sql=sql,
                    span=_span(desc),
                    schema_version=old,
                    new_schema_version=new,
                    ddl_table=table.name,
                    ddl_database=_DB.get(),
                    rename_table_to=rename_to,
                )
                cmd = self._command(request, write=ddl)
                if done:
                    cmd.session_id, cmd.seq = self._next_internal()
                res = self._cluster.sender.send(desc, cmd)
                if _moved(res) or (res.HasField("error") and res.error.code):
                    for prior in done:
                        back = pb.SqlWrite(
                            sql=undo or "SELECT 1",
                            span=_span(prior),
                            schema_version=new,
                            new_schema_version=old,
                            ddl_table=table.name,
                        )
                        self._cluster.sender.send(
                            prior,
                            pb.Command(
                                write=back, session_id=self._session, seq=self._next_internal()[1]
                            ),
                        )
                    if _moved(res):
                        moved = True
                        self._cluster.refresh_catalog()
                        break
                    return _error(res.error.code, res.error.message)
                done.append(desc)
            if not moved:
                return None
        raise StatementError(sqlstate.SERIALIZATION_FAILURE, "the table's ranges kept moving")

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, tree: exp.Expr, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        if isinstance(tree, exp.Create):
            kind = (tree.args.get("kind") or "").upper()
            if kind == "TABLE":
                return self._create_table(tree, request)
            if kind == "INDEX":
                return self._create_index(tree, request)
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, f"CREATE {kind} is not supported yet"
            )
        if isinstance(tree, exp.Drop):
            kind = (tree.args.get("kind") or "").upper()
            if kind == "TABLE":
                return self._drop_table(tree)
            if kind == "INDEX":
                return self._drop_index(tree, request)
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, f"DROP {kind} is not supported yet"
            )
        if isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
            return self._alter_table(tree, request)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            return self._write(tree, request)
        if isinstance(tree, exp.Query):
            if request.batch:
                raise StatementError(
                    sqlstate.SYNTAX_ERROR, "executemany() can only execute DML statements"
                )
            if not request.trace:
                return self._select(tree, request)
            trace: list[_Hop] = []
            resp = self._select(tree, request, trace)
            resp.hops.extend(pb.Hop(where=h.where, what=h.what, ms=h.ms) for h in trace)
            return resp
        name = type(tree).__name__.upper()
        raise StatementError(
            sqlstate.FEATURE_NOT_SUPPORTED,
            f"statement {name} is not supported yet (supported: CREATE/DROP TABLE, "
            "CREATE/DROP INDEX, INSERT, UPDATE, DELETE, SELECT)",
        )

    def _create_table(self, tree: exp.Create, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        target = tree.this
        table_expr = target.this if isinstance(target, exp.Schema) else target
        name = table_expr.name if isinstance(table_expr, exp.Table) else ""
        if not name:
            raise StatementError(sqlstate.SYNTAX_ERROR, "CREATE TABLE needs a table name")
        if name.lower().startswith(_RESERVED_PREFIXES) and not _INTERNAL.get():
            raise StatementError(
                sqlstate.INVALID_NAME, f"table names starting with {name[:6]!r} are reserved"
            )
        if tree.args.get("expression") is not None:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, "CREATE TABLE ... AS SELECT is not supported yet"
            )
        props = tree.args.get("properties")
        if props is not None and any(
            isinstance(p, exp.TemporaryProperty) for p in props.expressions
        ):
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, "temporary tables are not supported"
            )
        create_sql = request.sql.strip().rstrip(";").strip()
        locality = _LOCALITY.get() or ""
        home = self._home_region(locality)
        region_column = row_region_column(locality)
        if region_column:
            try:
                create_sql, per_region = regional_by_row_table(create_sql, region_column, home)
            except GeoSyntaxError as exc:
                raise StatementError(exc.code, exc.message) from exc
            if per_region:
                locality += ":per-region"
        replicas = self._cluster.choose_replicas(3, home)
        if not replicas:
            raise StatementError(sqlstate.RANGE_UNAVAILABLE, "no live nodes to place the table on")
        res = self._meta(
            pb.MetaOp(
                create_table=pb.CreateTable(
                    name=name,
                    create_sql=create_sql,
                    replicas=replicas,
                    if_not_exists=bool(tree.args.get("exists")),
                    database=_DB.get(),
                    locality=locality,
                )
            )
        )
        range_id = int(res.rows[0].values[0].integer) if res.rows else 0
        if range_id == 0:  # IF NOT EXISTS and it existed
            return pb.ExecuteResponse(rows_affected=-1)
        desc = self._cluster.catalog.range(range_id)
        if desc is None:
            raise StatementError(sqlstate.INTERNAL_ERROR, f"range {range_id} missing after create")
        self._cluster.ensure_replicas_everywhere(list(desc.replicas))
        ddl = self._cluster.sender.send(
            desc, self._command(request, write=pb.SqlWrite(sql=create_sql))
        )
        if ddl.HasField("error") and ddl.error.code:
            # The catalog entry must not outlive a schema the range refused.
            self._meta(
                pb.MetaOp(drop_table=pb.DropTable(name=name, if_exists=True, database=_DB.get()))
            )
            return _error(ddl.error.code, ddl.error.message)
        if region_column:
            # One span (and so its own ranges, led from there) per region of the database.
            db = self._database_desc(_DB.get() or DEFAULT_DATABASE)
            regions = sorted(db.regions) if db is not None else []
            if regions:
                self._split(name, "VALUES " + ", ".join(f"({_sql_literal(r)})" for r in regions))
        return pb.ExecuteResponse(rows_affected=-1)

    def _drop_table(self, tree: exp.Drop) -> pb.ExecuteResponse:
        name = _drop_target(tree)
        if name.lower().startswith(_RESERVED_PREFIXES):
            raise StatementError(sqlstate.INSUFFICIENT_PRIVILEGE, f"{name} is reserved for atlasql")
        self._meta(
            pb.MetaOp(
                drop_table=pb.DropTable(
                    name=name, if_exists=bool(tree.args.get("exists")), database=_DB.get()
                )
            )
        )
        return pb.ExecuteResponse(rows_affected=-1)

    def _create_index(self, tree: exp.Create, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        index = tree.this
        table_expr = index.args.get("table") if isinstance(index, exp.Index) else None
        if not isinstance(table_expr, exp.Table):
            raise StatementError(sqlstate.SYNTAX_ERROR, "CREATE INDEX needs ON table(columns)")
        table = self._table(table_expr.name)
        self._not_converting(table)
        sql = request.sql.strip().rstrip(";").strip()
        if tree.args.get("unique") and len(self._ranges(table.name, refresh=True)) > 1:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                f"a UNIQUE index on {table.name}, which has several ranges, would be enforced"
                " per range only; cross-range uniqueness arrives with transactions",
            )
        failed = self._on_every_range(table, request, sql, f'DROP INDEX IF EXISTS "{index.name}"')
        if failed is not None:
            return failed
        self._meta(
            pb.MetaOp(
                add_index=pb.AddIndex(
                    table=table.name, index_sql=sql, index_name=index.name, database=_DB.get()
                )
            )
        )
        return pb.ExecuteResponse(rows_affected=-1)

    def _alter_table(self, tree: exp.Alter, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """ALTER TABLE t ADD [COLUMN] / RENAME COLUMN a TO b / DROP COLUMN, on every range.

        Each range applies it and moves to the next schema version; statements planned for
        the old version are refused by ranges at the new one (and the other way round) until
        the catalog records the new definition, so no range serves a statement against the
        wrong schema. If a range refuses the change, the ranges that took it undo it.
        """
        target = tree.this
        if not isinstance(target, exp.Table) or not target.name:
            raise StatementError(sqlstate.SYNTAX_ERROR, "ALTER TABLE needs a table name")
        table = self._table(target.name)
        self._not_converting(table)
        actions = list(tree.args.get("actions") or [])
        if len(actions) != 1:
            raise StatementError(sqlstate.SYNTAX_ERROR, "ALTER TABLE takes one action")
        action = actions[0]
        quoted = _quote_ident
        if isinstance(action, exp.ColumnDef):
            undo: str | None = f"ALTER TABLE {quoted(table.name)} DROP COLUMN {quoted(action.name)}"
        elif isinstance(action, exp.RenameColumn):
            old, new = action.this.name, action.args["to"].name
            undo = f"ALTER TABLE {quoted(table.name)} RENAME COLUMN {quoted(new)} TO {quoted(old)}"
        elif (
            isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN"
        ):
            undo = None  # a dropped column cannot come back; SQLite refuses it on every range
        else:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "ALTER TABLE supports ADD COLUMN, RENAME COLUMN and DROP COLUMN (not RENAME TO)",
            )
        sql = request.sql.strip().rstrip(";").strip()
        failed = self._on_every_range(table, request, sql, undo)
        if failed is not None:
            return failed
        table = self._table(table.name)
        desc = self._ranges(table.name)[0]
        version = int(table.schema_version) + 1
        after = pb.TableDescriptor()
        after.CopyFrom(table)
        after.schema_version = version
        _node, res = self._read(
            after,
            desc,
            "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ? AND sql IS NOT NULL"
            " ORDER BY type = 'table' DESC, name",
            pb.ExecuteRequest(params=[pb.Value(text=table.name)]),
        )
        if res.HasField("error") and res.error.code:
            return _error(res.error.code, res.error.message)
        rows = [tuple(row_from_proto(r)) for r in res.rows]
        create_sql = next(str(r[2]) for r in rows if r[0] == "table")
        indexes = [(str(r[1]), str(r[2])) for r in rows if r[0] == "index"]
        self._meta(
            pb.MetaOp(
                alter_table=pb.AlterTable(
                    database=_DB.get(),
                    name=table.name,
                    create_sql=create_sql,
                    schema_version=version,
                    index_names=[n for n, _ in indexes],
                    index_sql=[q for _, q in indexes],
                )
            )
        )
        return pb.ExecuteResponse(rows_affected=-1)

    # -- locality conversions (to or from REGIONAL BY ROW) -----------------------------------

    def _not_converting(self, table: pb.TableDescriptor) -> None:
        if table.converting:
            raise StatementError(
                sqlstate.SERIALIZATION_FAILURE,
                f"table {table.name} is being converted to"
                f" {describe_locality(table.converting)}; retry when it is done",
            )

    def _unless_converting(self, table: pb.TableDescriptor) -> pb.TableDescriptor:
        """A write to a table whose rows a locality conversion is copying waits until the
        new table has taken its place (then it is planned against that table), so no write
        made meanwhile is lost; reads go on from the old table."""
        if not table.converting:
            return table
        deadline = time.monotonic() + _CONVERT_WAIT
        cancel = _CANCEL.get()
        while table.converting:
            if time.monotonic() > deadline:
                raise StatementError(
                    sqlstate.SERIALIZATION_FAILURE,
                    f"table {table.name} is still being converted to"
                    f" {describe_locality(table.converting)} after {_CONVERT_WAIT:.0f} s; if"
                    " the node running the ALTER TABLE died, run it again to finish",
                )
            if cancel is not None and cancel.wait(0.05):
                raise StatementError(sqlstate.QUERY_CANCELED, "canceling statement")
            if cancel is None:
                time.sleep(0.05)
            self._cluster.poll_catalog()
            table = self._table(table.name)
        return table

    def _convert_table(self, table: pb.TableDescriptor, locality: str) -> pb.ExecuteResponse:
        """ALTER TABLE t SET LOCALITY to or from REGIONAL BY ROW: the primary key changes
        (the region column leads it, or leaves it), so the rows are copied into a new table
        of the new shape, which then takes the old one's place in one catalog change.

        1. Fence: the table's ranges move two schema versions past the catalog's (unchecked:
           past anything a dead conversion left) and the catalog marks it converting.
           Reads go on; writes wait (``_unless_converting``), and statements planned
           before are refused by the ranges and re-planned.
        2. Create the copy (``_atlasconv_<id>_<random>``) with the target locality (a
           REGIONAL BY ROW copy gets a range per region), and copy the rows: into a
           REGIONAL BY ROW table, each row is homed in the table's old home region unless
           the region column already exists (then its value decides).
        3. Rename the copy's SQLite table to the table's name in each of its ranges, then
           swap in the catalog (one meta entry): the waiting writes go to the new ranges.
        4. The old ranges' table is renamed out of the way, so every node drops them; the
           table's (non-unique) indexes are created again on the new ranges.

        Any failure before the swap drops the copy and lifts the fence. Running the ALTER
        again on a table still marked converting (its gateway died) starts over.
        """
        if _TXN.get() is not None:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "changing a table to or from REGIONAL BY ROW cannot run inside a transaction",
            )
        if any(parse(sql)[0].args.get("unique") for sql in table.index_sql):
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                f"table {table.name} has a UNIQUE index: a REGIONAL BY ROW table is split per"
                " region, and UNIQUE indexes across ranges are not supported yet",
            )
        column = row_region_column(locality)
        home = self._home_region(table.locality if table.locality != "global" else "")
        token = _INTERNAL.set(True)
        request = pb.ExecuteRequest()
        try:
            # A conversion whose gateway died left its copy behind: drop it.
            prefix = f"{_CONVERT_PREFIX}{table.table_id}_"
            for t in self._cluster.catalog.snapshot().tables:
                if _in_current_database(t.database) and t.name.lower().startswith(prefix):
                    self._discard_copy(t.name, table.name)
            # Two versions past the catalog's: past any version the ranges can hold, even if
            # a conversion died between moving them and recording it.
            fenced = int(self._table(table.name).schema_version) + 2
            failed = self._on_every_range(table, request, "SELECT 1", None, set_version=fenced)
            if failed is not None:
                return failed
            self._conversion_step(table.name, "begin", locality=locality, schema_version=fenced)
            shadow = f"{prefix}{uuid.uuid4().hex[:8]}"
            try:
                self._copy_into(table, shadow, locality, column, home)
                if self.convert_crash_at == "after_copy":
                    fault_exit("in a locality conversion, after the copy")
                copy = self._table(shadow)
                failed = self._on_every_range(
                    copy,
                    request,
                    _rename_sql(shadow, table.name),
                    None,
                    rename_to=table.name,
                )
                if failed is not None:
                    raise StatementError(failed.error.code, failed.error.message)
                # The old ranges stop serving (even gateways whose catalog still shows
                # them re-plan, instead of reading rows without the writes made after the
                # swap); then the swap points every gateway at the new ranges.
                old_ranges = list(self._ranges(table.name, refresh=True))
                self._ddl_on(old_ranges, table.name, fenced, "SELECT 1")
                fenced += 1
                if self.convert_crash_at == "before_swap":
                    fault_exit("in a locality conversion, before the swap")
                self._conversion_step(
                    table.name,
                    "swap",
                    shadow=shadow,
                    schema_version=int(copy.schema_version) + 1,
                    create_sql=reshaped_create(copy.create_sql, table.name),
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    self._discard_copy(shadow, table.name)
                with contextlib.suppress(Exception):
                    self._conversion_step(table.name, "abort", schema_version=fenced)
                raise
            # Rename the old ranges' table, so that every node drops them (a range whose
            # table has the name of a table would pass for an unrecorded split of it).
            for desc in old_ranges:
                self._retire_range(desc, table.name, fenced)
            for index_sql in table.index_sql:
                made = self._execute(pb.ExecuteRequest(sql=index_sql, database=_DB.get()))
                if made.error.code:
                    return _error(
                        made.error.code,
                        f"{table.name} was converted, but its index failed: {index_sql}:"
                        f" {made.error.message}",
                    )
        finally:
            _INTERNAL.reset(token)
        return pb.ExecuteResponse(rows_affected=-1)

    def _copy_into(
        self, table: pb.TableDescriptor, shadow: str, locality: str, column: str, home: str
    ) -> None:
        """Create ``shadow`` with the shape ``locality`` gives ``table`` and copy its rows."""
        # Out of REGIONAL BY ROW the region column leaves the key (unless it was per region).
        source = "" if column or unique_per_region(table.locality) else table.locality
        create = reshaped_create(
            table.create_sql, shadow, drop_key_column=row_region_column(source)
        )
        self._run_internal(f"{create} LOCALITY {locality_clause(locality)}")
        rows = self._run_internal(f"SELECT * FROM {_quote_ident(table.name)}")
        columns = list(rows.columns)
        extra: list[pb.Value] = []
        if column and column.lower() not in (c.lower() for c in columns):
            columns.append(column)
            extra.append(pb.Value(text=home))
        insert = (
            f"INSERT INTO {_quote_ident(shadow)} ({', '.join(_quote_ident(c) for c in columns)})"
            f" VALUES ({', '.join('?' for _ in columns)})"
        )
        batch = list(rows.rows)
        for start in range(0, len(batch), _CONVERT_BATCH):
            values = [[*row.values, *extra] for row in batch[start : start + _CONVERT_BATCH]]
            self._run_internal(insert, values)

    def _run_internal(
        self, sql: str, batch: list[list[pb.Value]] | None = None
    ) -> pb.ExecuteResponse:
        """Run one statement of the gateway's own in the current database; errors raise."""
        request = pb.ExecuteRequest(sql=sql, database=_DB.get())
        for values in batch or []:
            request.batch.add().values.extend(values)
        done = self._execute(request)
        if done.error.code:
            raise StatementError(done.error.code, done.error.message)
        return done

    def _conversion_step(self, name: str, phase: str, **fields: object) -> None:
        """One catalog step of a locality conversion of table ``name`` (pb.ConvertTable)."""
        op = pb.ConvertTable(database=_DB.get(), table=name, phase=phase, **fields)  # type: ignore[arg-type]
        self._meta(pb.MetaOp(convert_table=op))

    def _retire_range(self, desc: pb.RangeDescriptor, name: str, version: int) -> None:
        """Rename table ``name`` in a range the catalog no longer lists (or is about to
        forget), so its nodes drop it: one still holding the name of a table would pass for
        an unrecorded split of that table."""
        retired = f"_atlas_retired_{desc.range_id}"
        self._ddl_on([desc], name, version, _rename_sql(name, retired), retired)

    def _discard_copy(self, shadow: str, name: str) -> None:
        """Drop a conversion's copy ``shadow`` of table ``name``. Its ranges' table is first
        renamed out of the way in case they took ``name`` already (a node would otherwise
        record them as ranges of ``name``, as it does for a split the catalog missed); the
        ranges that still hold the copy's own name refuse that (logged) and are dropped by
        their nodes once the catalog forgets the copy."""
        for desc in self._cluster.catalog.ranges_of(shadow, _DB.get()):
            self._retire_range(desc, name, 0)
        self._meta(
            pb.MetaOp(drop_table=pb.DropTable(name=shadow, if_exists=True, database=_DB.get()))
        )

    def _ddl_on(
        self,
        ranges: list[pb.RangeDescriptor],
        name: str,
        version: int,
        sql: str,
        rename_to: str = "",
    ) -> None:
        """Move ``ranges`` (at schema ``version``; 0: whichever) to the next version with
        ``sql``, whatever the catalog says of them; a range that refuses is logged (best
        effort)."""
        for desc in ranges:
            write = pb.SqlWrite(
                sql=sql,
                span=_span(desc),
                schema_version=version,
                new_schema_version=version + 1,
                ddl_table=name,
                ddl_database=_DB.get(),
                rename_table_to=rename_to,
            )
            cmd = pb.Command(write=write)
            cmd.session_id, cmd.seq = self._next_internal()
            res = self._cluster.sender.send(desc, cmd)
            if res.HasField("error") and res.error.code:
                log.warning("range %d: %s: %s", desc.range_id, sql, res.error.message)

    def _drop_index(self, tree: exp.Drop, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        name = _drop_target(tree)
        self._cluster.refresh_catalog()
        for table in self._cluster.catalog.snapshot().tables:
            if not _in_current_database(table.database):
                continue
            for index_sql in table.index_sql:
                created = parse(index_sql)[0]
                if created.this is not None and created.this.name.lower() == name.lower():
                    sql = f'DROP INDEX IF EXISTS "{created.this.name}"'
                    failed = self._on_every_range(table, request, sql, None)
                    if failed is not None:
                        return failed
                    self._meta(
                        pb.MetaOp(
                            drop_index=pb.DropIndex(
                                index_name=created.this.name, database=_DB.get()
                            )
                        )
                    )
                    return pb.ExecuteResponse(rows_affected=-1)
        if tree.args.get("exists"):
            return pb.ExecuteResponse(rows_affected=-1)
        raise StatementError(sqlstate.UNDEFINED_OBJECT, f"no such index: {name}")

    def _write(self, tree: exp.Expr, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table):
            raise StatementError(sqlstate.SYNTAX_ERROR, "cannot find the target table")
        table = self._unless_converting(self._table(target.name))
        others = [n for n in _table_names(tree) if n.lower() != table.name.lower()]
        if others:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED,
                f"a write that reads other tables ({', '.join(others)}) touches several ranges; "
                "multi-range statements arrive with transactions",
            )
        now = self._clock()
        rewritten, changed = rewrite_nondeterministic(tree, now=now, rng=self._rng)
        if isinstance(rewritten, exp.Insert):
            nd, columns = _nd_defaults_cached(table.create_sql)
            region_column = row_region_column(table.locality)
            here = self._cluster.region_of(self._cluster.node_id)
            if region_column and here:
                # REGIONAL BY ROW: a row inserted without its region is homed at the gateway.
                nd = {**nd, region_column: _sql_literal(here)}
            if nd:
                rewritten, filled = fill_defaults(
                    rewritten, list(columns), dict(nd), now=now, rng=self._rng
                )
                changed = changed or filled
        if request.batch and changed:
            # random()/'now' must differ per row as in SQLite: one entry per row instead.
            return self._write_rows_one_by_one(tree, request)
        sql = to_sql(rewritten) if changed else request.sql
        write = pb.SqlWrite(sql=sql)
        write.batch.extend(request.batch)
        if isinstance(tree, exp.Insert):
            write.insert_table = table.name
        write.params.extend(request.params)
        for k, v in request.named_params.items():
            write.named_params[k].CopyFrom(v)
        cmd = self._command(request, write=write)
        for attempt in _replans():
            if attempt:
                table = self._unless_converting(self._table(table.name))
            ranges = self._ranges(table.name, refresh=attempt > 0)
            targets, locks = self._write_targets(rewritten, table, ranges, request, sql)
            cmd.write.schema_version = table.schema_version
            del cmd.write.locks[:]
            cmd.write.locks.extend(locks or [])
            txn = _TXN.get()
            insert = isinstance(tree, exp.Insert)
            # An UPDATE of a key column (a REGIONAL BY ROW row changing region) may move rows
            # to other ranges: it runs as a transaction that re-inserts them there.
            move = len(ranges) > 1 and _sets_key(tree, table)
            run = functools.partial(
                self._write_in_txn, table, targets, cmd.write, insert, move_out=move, ranges=ranges
            )
            # (A conversion's copy comes from a table whose key was unique: no check.)
            unique = (
                insert and locks and not _INTERNAL.get() and self._needs_global_check(tree, table)
            )
            if unique:
                run = functools.partial(self._checked_insert, run, table, ranges, locks or [])
            if txn is None and (len(targets) > 1 or move or unique):
                try:
                    return self.run_implicit(run)
                except _RangeMoved:
                    continue
            if txn is not None:
                try:
                    return run()
                except _RangeMoved:
                    continue
            desc = targets[0]
            cmd.write.span.CopyFrom(_span(desc))
            res = self._cluster.sender.send(desc, cmd)
            if not _moved(res):
                return _from_result(res)
            # Refused before it ran: the same (session, seq) may go to another range.
        raise StatementError(
            sqlstate.SERIALIZATION_FAILURE, f"the ranges of {table.name} kept moving"
        )

    def _write_in_txn(
        self,
        table: pb.TableDescriptor,
        targets: list[pb.RangeDescriptor],
        write: pb.SqlWrite,
        insert: bool,
        *,
        move_out: bool = False,
        ranges: list[pb.RangeDescriptor] | None = None,
    ) -> pb.ExecuteResponse:
        """One write statement inside the current transaction, on each range it touches
        (an INSERT's rows for other ranges are dropped on each; with ``move_out``, rows an
        UPDATE moved out of their range are inserted into the ranges of their new keys)."""
        txn = _TXN.get()
        assert txn is not None
        trim = insert and len(targets) > 1
        results = []
        moved: list[tuple[list[str], list[pb.Row]]] = []
        for desc in targets:
            stmt = pb.SqlWrite()
            stmt.CopyFrom(write)
            stmt.span.CopyFrom(_span(desc))
            res = self.coordinator.step(
                txn,
                desc,
                table.schema_version,
                stmt,
                read_only=False,
                locks=list(write.locks),
                trim=trim,
                move_out=move_out,
            )
            if _moved(res):
                raise _RangeMoved
            if res.error.code:
                return _from_result(res)
            results.append(res)
            if res.moved_rows:
                moved.append((list(res.moved_columns), list(res.moved_rows)))
        for columns, rows in moved:
            failed = self._move_rows(txn, table, ranges or targets, columns, rows)
            if failed is not None:
                return failed
        if len(results) == 1:
            return _from_result(results[0])
        out = pb.ExecuteResponse(
            columns=results[0].columns,
            rows_affected=sum(max(r.rows_affected, 0) for r in results),
            returns_rows=results[0].returns_rows,
        )
        for r in results:
            out.rows.extend(r.rows)
        return out

    def _needs_global_check(self, tree: exp.Expr, table: pb.TableDescriptor) -> bool:
        """A REGIONAL BY ROW INSERT whose key (besides the region) is neither declared unique
        per region nor generated at random must be checked against the other regions."""
        if not row_region_column(table.locality) or unique_per_region(table.locality):
            return False
        nd, _columns = _nd_defaults_cached(table.create_sql)
        shape = table_shape(table.name, table.create_sql)
        rest = [k.lower() for k in shape.key_columns[1:]]
        schema = tree.this if isinstance(tree, exp.Insert) else None
        named = (
            {c.name.lower() for c in schema.expressions}
            if isinstance(schema, exp.Schema)
            else set(rest)  # no column list: every column is given
        )
        generated = {c.lower() for c in nd if uses_random(nd[c])}
        return not all(k in generated and k not in named for k in rest)

    def _checked_insert(
        self,
        run: Callable[[], pb.ExecuteResponse],
        table: pb.TableDescriptor,
        ranges: list[pb.RangeDescriptor],
        keys: list[pb.Span],
    ) -> pb.ExecuteResponse:
        """Global uniqueness of a REGIONAL BY ROW key: no other region holds the same key
        (read, under shared locks, in every other region's range, in parallel), then insert."""
        txn = _TXN.get()
        assert txn is not None
        db = self._database_desc(table.database or DEFAULT_DATABASE)
        regions = list(db.regions) if db is not None else []
        shape = table_shape(table.name, table.create_sql)
        where = " AND ".join(f"{_quote_ident(k)} = ?" for k in shape.key_columns)
        sql = f"SELECT {', '.join(_quote_ident(k) for k in shape.key_columns[1:])} FROM"
        sql += f" {_quote_ident(table.name)} WHERE {where} LIMIT 1"
        probes = []
        for span in keys:
            values = decode_key(span.start_key)
            for region in regions:
                if region == values[0]:
                    continue
                other = encode_key([region, *values[1:]])
                desc = range_for_key(ranges, other) or ranges[-1]
                stmt = pb.SqlWrite(
                    sql=sql,
                    params=[to_proto(v) for v in (region, *values[1:])],
                    span=_span(desc),
                    schema_version=table.schema_version,
                )
                lock = pb.Span(start_key=other, end_key=next_key(other))
                probes.append((desc, stmt, lock, region))

        def probe(item: tuple[pb.RangeDescriptor, pb.SqlWrite, pb.Span, str]) -> pb.CommandResult:
            desc, stmt, lock, _region = item
            return self.coordinator.step(
                txn, desc, table.schema_version, stmt, read_only=True, locks=[lock]
            )

        results = list(_FANOUT.map(probe, probes)) if len(probes) > 1 else list(map(probe, probes))
        for (_d, _s, _l, region), res in zip(probes, results, strict=True):
            if _moved(res):
                raise _RangeMoved
            if res.error.code:
                return _from_result(res)
            if res.rows:
                shown = ", ".join(f"{table.name}.{k}" for k in shape.key_columns[1:])
                return _error(
                    sqlstate.UNIQUE_VIOLATION,
                    f"UNIQUE constraint failed: {shown} (the key exists in region {region})",
                )
        return run()

    def _move_rows(
        self,
        txn: Txn,
        table: pb.TableDescriptor,
        ranges: list[pb.RangeDescriptor],
        columns: list[str],
        rows: list[pb.Row],
    ) -> pb.ExecuteResponse | None:
        """Insert rows an UPDATE moved out of their range into the ranges of their new keys
        (inside ``txn``); an error response if that fails (e.g. the new key exists)."""
        shape = table_shape(table.name, table.create_sql)
        names = [c.lower() for c in columns]
        alias = (shape.rowid_alias or "rowid").lower()
        key_at = [
            names.index(("rowid" if "rowid" in names else alias) if k == "rowid" else k.lower())
            for k in shape.key_columns
        ]
        by_range: dict[int, tuple[pb.RangeDescriptor, list[pb.Row]]] = {}
        for row in rows:
            values = row_from_proto(row)
            key = encode_key([values[i] for i in key_at])
            desc = range_for_key(ranges, key) or ranges[-1]
            by_range.setdefault(desc.range_id, (desc, []))[1].append(row)
        cols = ", ".join("rowid" if c == "rowid" else _quote_ident(c) for c in columns)
        sql = (
            f"INSERT INTO {_quote_ident(table.name)} ({cols})"
            f" VALUES ({', '.join('?' * len(columns))})"
        )
        for desc, batch in by_range.values():
            stmt = pb.SqlWrite(sql=sql, span=_span(desc), schema_version=table.schema_version)
            stmt.batch.extend(batch)
            res = self.coordinator.step(
                txn, desc, table.schema_version, stmt, read_only=False, locks=[]
            )
            if _moved(res):
                raise _RangeMoved
            if res.error.code:
                return _from_result(res)
        return None

    def _write_targets(
        self,
        tree: exp.Expr,
        table: pb.TableDescriptor,
        ranges: list[pb.RangeDescriptor],
        request: pb.ExecuteRequest,
        sql: str,
    ) -> tuple[list[pb.RangeDescriptor], list[pb.Span] | None]:
        """The ranges a write touches (several: it runs as a transaction) and the key
        intervals it reads (lock intervals; None: everything)."""
        if len(ranges) == 1 and _TXN.get() is None:
            return ranges, None
        shape = table_shape(table.name, table.create_sql)
        if isinstance(tree, exp.Insert):
            source = tree.expression
            if source is not None and any(True for _ in source.find_all(exp.Table)):
                if len(ranges) == 1:
                    return ranges, None
                raise StatementError(
                    sqlstate.FEATURE_NOT_SUPPORTED,
                    f"INSERT ... SELECT into {table.name}, which has {len(ranges)} ranges,"
                    " is not supported yet (insert the rows with VALUES)",
                )
            rows = [row_from_proto(r) for r in request.batch] if request.batch else None
            resolvers = [_params(request, tree)]
            if rows is not None:
                resolvers = [Params(list(r), {}) for r in rows]
                for r in resolvers:
                    r.number(tree)
            keys = insert_keys(
                shape,
                table.create_sql,
                sql,
                rows,
                params_from_proto(request.params, request.named_params),
                _insert_names_key(tree, shape, resolvers),
            )
            if isinstance(keys, str):
                return ranges[-1:], None  # it fails in SQLite too: let the range report it
            targets = {
                (range_for_key(ranges, k) or ranges[-1]).range_id
                if k is not None
                else ranges[-1].range_id
                for k in keys
            }
            chosen = [r for r in ranges if r.range_id in targets]
            if None in keys:
                if len(chosen) > 1:
                    raise StatementError(
                        sqlstate.FEATURE_NOT_SUPPORTED,
                        f"this INSERT mixes automatic rowids with rows for other ranges of"
                        f" {table.name}; give every key explicitly",
                    )
                return chosen or ranges[-1:], None
            locks = [pb.Span(start_key=k, end_key=next_key(k)) for k in keys if k is not None]
            return chosen or ranges[-1:], locks
        params = _params(request, tree)
        intervals = key_intervals(tree.args.get("where"), shape, params)
        chosen = [r for r in ranges if overlaps(r.start_key, r.end_key, intervals)]
        if request.batch:
            return ranges, None
        return chosen or ranges[:1], _lock_spans(intervals)

    def _write_rows_one_by_one(
        self, tree: exp.Expr, request: pb.ExecuteRequest
    ) -> pb.ExecuteResponse:
        total, last_rowid = 0, 0
        for row in request.batch:
            single = pb.ExecuteRequest(sql=request.sql, params=list(row.values))
            resp = self._write(tree, single)
            if resp.HasField("error") and resp.error.code:
                return resp
            total += max(resp.rows_affected, 0)
            last_rowid = resp.last_insert_rowid or last_rowid
        return pb.ExecuteResponse(rows_affected=total, last_insert_rowid=last_rowid)

    def _select(
        self, tree: exp.Expr, request: pb.ExecuteRequest, trace: list[_Hop] | None = None
    ) -> pb.ExecuteResponse:
        names = _table_names(tree)
        if not names:
            started = time.perf_counter()
            resp = self._local_query(request, {})
            if trace is not None:
                trace.append(
                    _Hop(f"gateway n{self._cluster.node_id}", "run locally (no table)", started)
                )
            return resp
        tables = [self._table(n) for n in names]
        local = self._local_region_first(tree, request, tables, trace)
        if local is not None:
            return local
        for attempt in _replans():
            try:
                if attempt:
                    self._cluster.refresh_catalog()
                    tables = [self._table(n) for n in names]
                plan = self._plan_select(tree, request, tables, refresh=False)
                if (
                    _TXN.get() is None
                    and not _STALENESS.get()
                    and len({d.range_id for _t, d, _s, _n in plan.parts}) > 1
                ):
                    # Several ranges: read them under one transaction's locks, so the
                    # statement sees every transaction whole (never half committed).
                    return self.run_implicit(
                        functools.partial(self._run_select, plan, request, trace)
                    )
                return self._run_select(plan, request, trace)
            except _RangeMoved:
                if trace is not None:
                    trace.clear()
                continue
        raise StatementError(sqlstate.SERIALIZATION_FAILURE, "the ranges kept moving")

    def _local_region_first(
        self,
        tree: exp.Expr,
        request: pb.ExecuteRequest,
        tables: list[pb.TableDescriptor],
        trace: list[_Hop] | None,
    ) -> pb.ExecuteResponse | None:
        """Locality-optimized search: a lookup of a REGIONAL BY ROW table by its whole key
        but not its region matches at most one row (keys are unique across regions), so the
        gateway's own region is asked first; only if the row is not there do the others get
        asked (by the caller, as for any query)."""
        simple = _simple_select(tree)
        if simple is None or len(tables) != 1 or _STALENESS.get():
            return None
        table = tables[0]
        column = row_region_column(table.locality)
        here = self._cluster.region_of(self._cluster.node_id)
        if not column or unique_per_region(table.locality) or not here:
            return None
        if simple.find(exp.AggFunc) or simple.args.get("group") or simple.args.get("distinct"):
            return None
        where = simple.args.get("where")
        if where is None:
            return None
        cond = where.this
        conjuncts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]
        pinned = {
            side.name.lower()
            for c in conjuncts
            if isinstance(c, exp.EQ)
            for side in (c.this, c.expression)
            if isinstance(side, exp.Column)
        }
        shape = table_shape(table.name, table.create_sql)
        rest = {k.lower() for k in shape.key_columns[1:]}
        if column.lower() in {c.name.lower() for c in where.find_all(exp.Column)}:
            return None
        if not rest <= pinned:
            return None
        local_tree = simple.copy()
        local_tree.where(
            exp.EQ(this=exp.column(column), expression=exp.Literal.string(here)), copy=False
        )
        local = pb.ExecuteRequest()
        local.CopyFrom(request)
        local.sql = to_sql(local_tree)
        try:
            plan = self._plan_select(local_tree, local, tables, refresh=False)
            resp = self._run_select(plan, local, trace)
        except _RangeMoved:
            return None
        if resp.error.code or not resp.rows:
            if trace is not None:
                trace.clear()
            return None
        return resp

    def _plan_select(
        self,
        tree: exp.Expr,
        request: pb.ExecuteRequest,
        tables: list[pb.TableDescriptor],
        *,
        refresh: bool,
    ) -> _ReadPlan:
        simple = _simple_select(tree)
        if len(tables) > 1:
            parts: list[tuple[pb.TableDescriptor, pb.RangeDescriptor, str, bool]] = []
            for t in tables:
                scan = _scan_sql(t.name, table_shape(t.name, t.create_sql), None, None)
                parts.extend((t, r, scan, True) for r in self._ranges(t.name, refresh=refresh))
            return _ReadPlan("gather", parts)
        table = tables[0]
        ranges = self._ranges(table.name, refresh=refresh)
        chosen = ranges
        shape = table_shape(table.name, table.create_sql)
        locks = None
        if simple is not None:
            intervals = key_intervals(simple.args.get("where"), shape, _params(request, tree))
            locks = _lock_spans(intervals)
            if len(ranges) > 1:
                chosen = [r for r in ranges if overlaps(r.start_key, r.end_key, intervals)]
                chosen = chosen or ranges[:1]
        if len(chosen) == 1 and (simple is not None or len(ranges) == 1):
            # Every row the query can see lives in this range: it runs there whole.
            return _ReadPlan("range", [(table, chosen[0], request.sql, False)], locks=locks)
        agg = plan_aggregate(simple) if simple is not None and shape.binary_columns else None
        if agg is not None:
            return _ReadPlan(
                "aggregate",
                [(table, r, agg.partial_sql, True) for r in chosen],
                agg=agg,
                locks=locks,
            )
        pushed, named_only = _pushdown(simple, table, tree)
        return _ReadPlan("gather", [(table, r, pushed, named_only) for r in chosen], locks=locks)

    def _run_select(
        self, plan: _ReadPlan, request: pb.ExecuteRequest, trace: list[_Hop] | None
    ) -> pb.ExecuteResponse:
        results = self._fan_out(plan.parts, request, trace, plan.locks)
        for res in results:
            if res.HasField("error") and res.error.code:
                return _from_result(res)
        if plan.kind == "range":
            return _from_result(results[0])
        started = time.perf_counter()
        if plan.agg is not None:
            resp = self._merge_aggregate(plan.agg, plan.parts[0][0], results, request)
            what = f"merge {len(results)} partial aggregates"
        else:
            gathered: dict[str, tuple[pb.TableDescriptor, list[pb.CommandResult]]] = {}
            for (t, _r, _sql, _named), res in zip(plan.parts, results, strict=True):
                gathered.setdefault(t.name, (t, []))[1].append(res)
            resp = self._local_query(request, gathered)
            rows = sum(len(r.rows) for r in results)
            what = f"load {rows} rows into SQLite, run the statement"
        if trace is not None:
            trace.append(_Hop(f"gateway n{self._cluster.node_id}", what, started))
        return resp

    def _merge_aggregate(
        self,
        plan: AggPlan,
        table: pb.TableDescriptor,
        results: list[pb.CommandResult],
        request: pb.ExecuteRequest,
    ) -> pb.ExecuteResponse:
        """Merge the ranges' partial aggregates at the gateway (see aggregates.py)."""
        rows: list[tuple[SqlValue, ...]] = []
        for res in results:
            rows.extend(tuple(row_from_proto(r)) for r in res.rows)
        engine = Engine(":memory:")
        _interruptible(engine)
        try:
            cols = ", ".join(plan.partial_columns)
            engine.execute(f"CREATE TABLE {PARTIAL_TABLE}({cols})")
            marks = ", ".join("?" * len(plan.partial_columns))
            loaded = engine.execute_many(f"INSERT INTO {PARTIAL_TABLE} VALUES ({marks})", rows)
            if loaded.error is not None:
                return _error(loaded.error.code, loaded.error.message)
            named = params_from_proto([], request.named_params)
            out = engine.query(plan.final_sql, named)
            # The result's column names are the ones SQLite gives the original statement.
            engine.execute(table.create_sql)
            names = engine.query(request.sql, named).columns
        finally:
            engine.close()
        if out.error is not None:
            return _error(out.error.code, out.error.message)
        return pb.ExecuteResponse(
            columns=list(names) if len(names) == len(out.columns) else list(out.columns),
            rows=[row_to_proto(r) for r in out.rows],
            rows_affected=-1,
            returns_rows=out.returns_rows,
        )

    def _fan_out(
        self,
        parts: list[tuple[pb.TableDescriptor, pb.RangeDescriptor, str, bool]],
        request: pb.ExecuteRequest,
        trace: list[_Hop] | None = None,
        locks: list[pb.Span] | None = None,
    ) -> list[pb.CommandResult]:
        """Run each (range, sql) read in parallel; results in the same order."""

        staleness = _STALENESS.get()
        txn = _TXN.get()

        def one(
            table: pb.TableDescriptor, desc: pb.RangeDescriptor, sql: str, named: bool
        ) -> pb.CommandResult:
            started = time.perf_counter()
            node, res = self._read(
                table, desc, sql, request, named, staleness, locks=locks, txn=txn
            )
            if trace is not None:
                rows = f"{len(res.rows)} rows" if not res.error.code else res.error.code
                kind = (
                    ""
                    if not staleness
                    else (
                        " (leader)"
                        if node == self._cluster.sender.leader_of(desc.range_id)
                        else " (follower read)"
                    )
                )
                here = self._cluster.region_of(self._cluster.node_id)
                there = self._cluster.region_of(node) if node else "?"
                trace.append(
                    _Hop(
                        f"r{desc.range_id} on n{node or '?'}{kind} {here}->{there}",
                        f"{rows}: {sql}",
                        started,
                    )
                )
            return res

        cancel = _CANCEL.get()
        if len(parts) == 1:  # no fan-out: the one read runs on this thread
            return [one(*parts[0])]
        jobs = [_FANOUT.submit(one, *part) for part in parts]
        while cancel is not None:
            _done, pending = futures.wait(jobs, timeout=0.05)
            if not pending:
                break
            if cancel.is_set():
                for j in pending:
                    j.cancel()
                raise StatementError(
                    sqlstate.QUERY_CANCELED, "canceling statement due to user request"
                )
        return [j.result() for j in jobs]

    def _local_query(
        self,
        request: pb.ExecuteRequest,
        tables: dict[str, tuple[pb.TableDescriptor, list[pb.CommandResult]]],
    ) -> pb.ExecuteResponse:
        engine = Engine(":memory:")
        _interruptible(engine)
        try:
            for table, results in tables.values():
                engine.execute(table.create_sql)
                for res in results:
                    if not res.rows:
                        continue
                    columns = ['"rowid"' if c == "__atlas_rowid" else f'"{c}"' for c in res.columns]
                    marks = ",".join("?" * len(columns))
                    insert = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({marks})'
                    loaded = engine.execute_many(insert, [row_from_proto(r) for r in res.rows])
                    if loaded.error is not None:
                        return _error(loaded.error.code, loaded.error.message)
            out = engine.query(request.sql, params_from_proto(request.params, request.named_params))
        finally:
            engine.close()
        if out.error is not None:
            return _error(out.error.code, out.error.message)
        return pb.ExecuteResponse(
            columns=list(out.columns),
            rows=[row_to_proto(r) for r in out.rows],
            rows_affected=-1,
            returns_rows=out.returns_rows,
        )


FOLLOWER_SETTING = "follower_read_staleness"
_FOLLOWER_SETTING_RE = re.compile(
    r"^\s*SET\s+(?:SESSION\s+)?(?P<name>default_transaction_use_follower_reads|"
    r"follower_read_staleness)\s*(?:=|TO)\s*'?(?P<value>[A-Za-z0-9_.]+)'?\s*;?\s*$",
    re.I,
)


def parse_duration_ms(text: str) -> int:
    """'10s' -> 10000, '500ms' -> 500, '1m' -> 60000, '1.5s' -> 1500, '-5s' -> 5000.

    >>> parse_duration_ms("10s"), parse_duration_ms("500ms"), parse_duration_ms("-2m")
    (10000, 500, 120000)
    """
    m = re.fullmatch(r"\s*-?(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if m is None:
        raise ValueError(f"not a duration: {text!r} (examples: '10s', '500ms', '1m')")
    scale = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[m.group(2) or "s"]
    return max(1, int(float(m.group(1)) * scale))


def _staleness_ms(m: re.Match[str]) -> int:
    if m.group("frt"):
        return FOLLOWER_READ_STALENESS_MS
    return parse_duration_ms(m.group("max") or m.group("ago"))


def _setting_value(m: re.Match[str]) -> str:
    """The follower-read setting as the session keeps it ('' = off)."""
    value = m.group("value").lower()
    if m.group("name").lower() == "default_transaction_use_follower_reads":
        if value in ("on", "true", "1"):
            return str(FOLLOWER_READ_STALENESS_MS)
        if value in ("off", "false", "0"):
            return ""
        raise ValueError(f"default_transaction_use_follower_reads: on or off, not {value!r}")
    if value in ("off", "0"):
        return ""
    return str(parse_duration_ms(value))


def _session_staleness(request: pb.ExecuteRequest) -> int:
    value = request.settings.get(FOLLOWER_SETTING, "")
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _interruptible(engine: Engine) -> None:
    """Let the client's cancellation abort this gateway-side engine's statements."""
    cancel = _CANCEL.get()
    if cancel is not None:
        engine.stop_when(cancel.is_set)


def _params(request: pb.ExecuteRequest, tree: exp.Expr) -> Params:
    params = Params(
        [from_proto(v) for v in request.params],
        {k: from_proto(v) for k, v in request.named_params.items()},
    )
    params.number(tree)
    return params


def _lock_spans(intervals: list[tuple[bytes, bytes | None]]) -> list[pb.Span] | None:
    """Planner key intervals as lock intervals on the wire (None: everything)."""
    if any(lo == b"" and hi is None for lo, hi in intervals):
        return None
    return [pb.Span(start_key=lo, end_key=hi or b"") for lo, hi in intervals]


def _sets_key(tree: exp.Expr, table: pb.TableDescriptor) -> bool:
    """Whether ``tree`` is an UPDATE that assigns one of the table's key columns."""
    if not isinstance(tree, exp.Update):
        return False
    shape = table_shape(table.name, table.create_sql)
    keys = {k.lower() for k in shape.key_columns} | shape.key_names()
    for assignment in tree.expressions:
        target = assignment.this if isinstance(assignment, exp.EQ) else None
        if isinstance(target, exp.Column) and target.name.lower() in keys:
            return True
    return False


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows_response(columns: list[str], rows: Sequence[tuple[object, ...]]) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(
        columns=columns,
        rows=[row_to_proto(r) for r in rows],
        rows_affected=-1,
        returns_rows=True,
    )


def _ident(name: str) -> str:
    return name[1:-1] if name.startswith('"') and name.endswith('"') else name


def _simple_select(tree: exp.Expr) -> exp.Select | None:
    """``tree`` if it is one SELECT over one table with no subquery, CTE or compound."""
    if not isinstance(tree, exp.Select) or tree.args.get("with") is not None:
        return None
    if sum(1 for _ in tree.find_all(exp.Select)) != 1:
        return None
    if tree.args.get("joins"):
        return None
    return tree


def _scan_sql(name: str, shape: TableShape, qualifier: str | None, where: str | None) -> str:
    """Read every column (and the rowid of rowid tables, so the gateway copy keeps it)."""
    q = qualifier or f'"{name}"'
    src = f'"{name}" AS {qualifier}' if qualifier else f'"{name}"'
    cols = f"{q}.*" if shape.without_rowid else f'{q}.rowid AS "__atlas_rowid", {q}.*'
    return f"SELECT {cols} FROM {src}" + (f" WHERE {where}" if where else "")


def _pushdown(
    simple: exp.Select | None, table: pb.TableDescriptor, tree: exp.Expr
) -> tuple[str, bool]:
    """The per-range scan for ``table``: its WHERE pushed down when that is safe.

    Returns (sql, named_only): the scan binds only named parameters (a positional ``?`` in a
    pushed WHERE would be renumbered, so such a WHERE stays at the gateway).
    """
    shape = table_shape(table.name, table.create_sql)
    if simple is None:
        return _scan_sql(table.name, shape, None, None), True
    source = simple.args.get("from_")
    table_expr = source.this if source is not None else None
    alias = table_expr.alias if isinstance(table_expr, exp.Table) and table_expr.alias else None
    where = simple.args.get("where")
    if where is None or any(is_positional(p) for p in where.find_all(exp.Placeholder)):
        return _scan_sql(table.name, shape, alias, None), True
    return _scan_sql(table.name, shape, alias, to_sql(where.this)), True


def _insert_names_key(tree: exp.Insert, shape: TableShape, params: list[Params]) -> bool:
    """Whether an INSERT gives every row's key (else SQLite assigns rowids). ``params``: one
    resolver per executemany row (or one)."""
    if shape.key_columns != ("rowid",):
        return True
    target = tree.this
    values = tree.expression
    if not isinstance(values, exp.Values):
        return False
    if isinstance(target, exp.Schema):
        names = [c.name.lower() for c in target.expressions]
    elif shape.rowid_alias:
        names = [c.lower() for c in shape.columns]
    else:
        return False  # all columns, and the rowid is not one of them
    idx = next((i for i, n in enumerate(names) if n in shape.key_names()), None)
    if idx is None:
        return False
    for row in values.expressions:
        items = row.expressions if isinstance(row, exp.Tuple) else [row]
        if idx >= len(items) or isinstance(items[idx], exp.Null):
            return False
        item = items[idx]
        if isinstance(item, exp.Placeholder):
            for p in params:
                try:
                    if p.value(item) is None:
                        return False
                except LookupError:
                    return False
    return True


def _evaluate_values(values_sql: str) -> list[tuple[SqlValue, ...]]:
    """Rows of a literal ``VALUES (...)`` list, evaluated by SQLite."""
    engine = Engine(":memory:")
    try:
        res = engine.query(values_sql)
    finally:
        engine.close()
    if res.error is not None:
        raise StatementError(res.error.code, f"bad split point: {res.error.message}")
    return [tuple(r) for r in res.rows]


def _check_key_values(shape: TableShape, row: tuple[SqlValue, ...]) -> None:
    for name, value in zip(shape.key_columns, row, strict=False):
        aff = "INTEGER" if name == "rowid" else shape.affinity.get(name.lower(), "BLOB")
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if aff in ("INTEGER", "REAL", "NUMERIC") and not numeric:
            raise StatementError(
                sqlstate.DATATYPE_MISMATCH, f"split value {value!r} for {name} must be a number"
            )
        if name == "rowid" and not isinstance(value, int):
            raise StatementError(
                sqlstate.DATATYPE_MISMATCH,
                f"split value {value!r} for the rowid must be an integer",
            )
        if aff == "TEXT" and not isinstance(value, str):
            raise StatementError(
                sqlstate.DATATYPE_MISMATCH, f"split value {value!r} for {name} must be text"
            )


def _drop_target(tree: exp.Drop) -> str:
    """The one object a DROP names (sqlglot keeps them in ``args["tables"]``)."""
    targets = list(tree.args.get("tables") or ([tree.this] if tree.this is not None else []))
    if len(targets) != 1 or not targets[0].name:
        raise StatementError(sqlstate.SYNTAX_ERROR, "DROP takes exactly one name")
    return str(targets[0].name)


@functools.lru_cache(maxsize=1024)
def _parse_cached(sql: str) -> tuple[exp.Expr, ...]:
    """Parse (and SQLite-check) a statement once per distinct text; trees are never mutated
    afterwards (rewrites work on copies), so sharing them is safe. Errors are not cached."""
    return tuple(parse(sql))


@functools.lru_cache(maxsize=1024)
def _nd_defaults_cached(create_sql: str) -> tuple[dict[str, str], tuple[str, ...]]:
    return nondeterministic_defaults(create_sql), tuple(table_columns(create_sql))


__all__ = ["Cluster", "Gateway", "StatementError"]

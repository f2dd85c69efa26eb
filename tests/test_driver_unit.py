"""The DB-API driver (and the shell on top of it) against real in-process gRPC servers.

The servers run a tiny fake SQL servicer backed by one shared in-memory sqlite3 database (so
several fake "nodes" see the same data, like a cluster) plus the standard gRPC health servicer.
Only client logic is under test: value conversion, cursor state, error mapping, failover and the
exactly-once retry contract (architecture invariant 6: a retry reuses session_id and seq).
"""

from __future__ import annotations

import io
import socket
import sqlite3
import sys
import threading
import types
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from proto import pb, rpc
from storage.values import from_proto, params_from_proto, to_proto

import sqlfront.driver as driver  # isort: skip

# ---------------------------------------------------------------------------------------------
# sqlfront.dialect is written in parallel; until it exists, the shell tests use a naive
# stand-in (semicolons inside strings are not handled, and none of these tests use them).
# ---------------------------------------------------------------------------------------------
try:
    import sqlfront.dialect  # noqa: F401
except ImportError:
    _standin = types.ModuleType("sqlfront.dialect")

    def _split_statements(text: str) -> list[str]:
        return [part.strip() for part in text.split(";") if part.strip()]

    def _is_complete(text: str) -> bool:
        return text.rstrip().endswith(";")

    _standin.split_statements = _split_statements  # type: ignore[attr-defined]
    _standin.is_complete = _is_complete  # type: ignore[attr-defined]
    sys.modules["sqlfront.dialect"] = _standin

from sqlfront import shell  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Fake cluster
# ---------------------------------------------------------------------------------------------


@dataclass
class FakeCluster:
    """State shared by every fake node: the data, the request log, the dedup table."""

    db: sqlite3.Connection = field(
        default_factory=lambda: sqlite3.connect(
            ":memory:", check_same_thread=False, isolation_level=None
        )
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[tuple[str, pb.ExecuteRequest]] = field(default_factory=list)
    applied: dict[tuple[str, int], pb.ExecuteResponse] = field(default_factory=dict)


def _sqlite_error(exc: sqlite3.Error) -> pb.Error:
    text = str(exc)
    if "no such table" in text:
        code = "42P01"
    elif "no such column" in text:
        code = "42703"
    elif "syntax error" in text or "incomplete input" in text:
        code = "42601"
    elif "UNIQUE" in text:
        code = "23505"
    elif "NOT NULL" in text:
        code = "23502"
    else:
        code = "XX000"
    return pb.Error(code=code, message=text)


class FakeSQL(rpc.SQLServicer):
    """Answers from sqlite3. ``FAIL <code> <position> <message>`` returns that error."""

    def __init__(self, cluster: FakeCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.die_after_apply = False  # answer UNAVAILABLE after applying: an ambiguous result

    def Execute(  # noqa: N802 - gRPC method name
        self, request: pb.ExecuteRequest, context: grpc.ServicerContext
    ) -> pb.ExecuteResponse:
        with self.cluster.lock:
            self.cluster.requests.append((self.name, request))
            key = (request.session_id, request.seq)
            response = self.cluster.applied.get(key)
            if response is None:
                response = self._run(request)
                self.cluster.applied[key] = response
        if self.die_after_apply:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} went away")
        return response

    def _run(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        if request.sql.startswith("FAIL "):
            _, code, position, message = request.sql.split(" ", 3)
            return pb.ExecuteResponse(
                error=pb.Error(code=code, message=message, position=int(position))
            )
        params = params_from_proto(request.params, request.named_params)
        db = self.cluster.db
        if request.batch:  # executemany: all rows or none, like the real server
            try:
                db.execute("SAVEPOINT batch")
                cursor = db.executemany(
                    request.sql, [tuple(from_proto(v) for v in r.values) for r in request.batch]
                )
                db.execute("RELEASE batch")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK TO batch")
                db.execute("RELEASE batch")
                return pb.ExecuteResponse(error=_sqlite_error(exc))
            last = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            return pb.ExecuteResponse(rows_affected=cursor.rowcount, last_insert_rowid=last)
        try:
            cursor = db.execute(request.sql, params)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            return pb.ExecuteResponse(error=_sqlite_error(exc))
        if cursor.description is not None:
            return pb.ExecuteResponse(
                columns=[d[0] for d in cursor.description],
                rows=[pb.Row(values=[to_proto(v) for v in row]) for row in rows],
                rows_affected=-1,
                returns_rows=True,
            )
        return pb.ExecuteResponse(
            rows_affected=cursor.rowcount,
            last_insert_rowid=cursor.lastrowid or 0,
        )


@dataclass
class FakeNode:
    address: str
    server: grpc.Server
    sql: FakeSQL

    def stop(self) -> None:
        self.server.stop(0).wait()


def _dead_address() -> str:
    """An address nothing listens on (a port bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def start_node(cluster: FakeCluster) -> Iterator[Callable[[], FakeNode]]:
    nodes: list[FakeNode] = []

    def start() -> FakeNode:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        sql = FakeSQL(cluster, f"n{len(nodes) + 1}")
        rpc.add_SQLServicer_to_server(sql, server)
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        node = FakeNode(f"127.0.0.1:{port}", server, sql)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def conn(start_node: Callable[[], FakeNode]) -> Iterator[driver.Connection]:
    node = start_node()
    with driver.connect(node.address, timeout=5) as connection:
        yield connection


# ---------------------------------------------------------------------------------------------
# Module surface
# ---------------------------------------------------------------------------------------------


def test_module_globals_follow_pep_249() -> None:
    assert (driver.apilevel, driver.threadsafety, driver.paramstyle) == ("2.0", 1, "qmark")
    assert issubclass(driver.ProgrammingError, driver.DatabaseError)
    assert issubclass(driver.DatabaseError, driver.Error)
    assert issubclass(driver.InterfaceError, driver.Error)
    assert driver.STRING == "TEXT" and driver.NUMBER == "INTEGER" and driver.BINARY == "BLOB"
    assert driver.Binary(b"x") == b"x" and driver.Date(2024, 1, 2) == "2024-01-02"


def test_malformed_address_list_is_an_interface_error() -> None:
    with pytest.raises(driver.InterfaceError, match="invalid address 'nohost'"):
        driver.connect("nohost")


# ---------------------------------------------------------------------------------------------
# Values and cursor state
# ---------------------------------------------------------------------------------------------


def test_values_round_trip_through_the_wire(conn: driver.Connection) -> None:
    conn.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n)")
    row = (2**63 - 1, 1.5e-300, "héllo\n", b"\x00\xff", None)
    conn.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", row)
    assert conn.execute("SELECT * FROM v").fetchall() == [row]
    named = conn.execute("SELECT :a AS a, :b AS b", {"a": -(2**63), "b": b""}).fetchone()
    assert named == (-(2**63), b"")


def test_description_rowcount_and_lastrowid(conn: driver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    assert cur.description is None and cur.rowcount == -1
    cur.execute("INSERT INTO t (name) VALUES (?)", ("a",))
    assert (cur.rowcount, cur.lastrowid) == (1, 1)
    cur.executemany("INSERT INTO t (name) VALUES (?)", [("b",), ("c",), ("d",)])
    assert (cur.rowcount, cur.lastrowid) == (3, 4)
    cur.execute("UPDATE t SET name = upper(name) WHERE id > 1")
    assert cur.rowcount == 3
    cur.execute("SELECT id, name FROM t ORDER BY id")
    assert cur.description == (
        ("id", None, None, None, None, None, None),
        ("name", None, None, None, None, None, None),
    )
    assert cur.rowcount == -1
    assert cur.fetchone() == (1, "a")
    cur.arraysize = 2
    assert cur.fetchmany() == [(2, "B"), (3, "C")]
    assert list(cur) == [(4, "D")]
    assert cur.fetchone() is None and cur.fetchall() == []


def test_unsupported_parameter_type_is_a_programming_error(conn: driver.Connection) -> None:
    with pytest.raises(driver.ProgrammingError, match="unsupported parameter type"):
        conn.execute("SELECT ?", (object(),))


def test_closed_cursor_and_connection_refuse_work(conn: driver.Connection) -> None:
    cur = conn.cursor()
    cur.close()
    with pytest.raises(driver.ProgrammingError, match="closed cursor"):
        cur.execute("SELECT 1")
    other = conn.cursor()
    conn.close()
    with pytest.raises(driver.ProgrammingError, match="closed database"):
        other.fetchall()
    with pytest.raises(driver.ProgrammingError, match="closed database"):
        conn.cursor()
    conn.close()  # idempotent


def test_every_statement_autocommits_so_rollback_refuses_after_writes(
    conn: driver.Connection,
) -> None:
    assert conn.autocommit is True
    conn.rollback()  # nothing executed: nothing to undo
    conn.execute("SELECT 1")
    conn.rollback()  # a read leaves nothing to undo either
    conn.execute("CREATE TABLE t (a)")
    with pytest.raises(driver.NotSupportedError, match="committed on its own"):
        conn.rollback()
    conn.commit()
    conn.autocommit = False  # transactions: opened before the next statement
    assert conn.autocommit is False and not conn.in_transaction


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("42601", driver.ProgrammingError),
        ("23505", driver.IntegrityError),
        ("22023", driver.DataError),
        ("0A000", driver.NotSupportedError),
        ("40001", driver.OperationalError),
        ("AQ003", driver.OperationalError),
        ("08006", driver.OperationalError),
        ("57014", driver.OperationalError),
        ("XX000", driver.InternalError),
        ("P0001", driver.DatabaseError),
    ],
)
def test_server_errors_map_to_pep_249_classes(
    conn: driver.Connection, code: str, cls: type[driver.DatabaseError]
) -> None:
    with pytest.raises(cls) as caught:
        conn.execute(f"FAIL {code} 8 something went wrong")
    assert type(caught.value) is cls
    assert caught.value.sqlstate == code
    assert caught.value.position == 8
    assert str(caught.value) == "something went wrong (at position 8)"


def test_sqlite_errors_come_back_with_sqlstate(conn: driver.Connection) -> None:
    with pytest.raises(driver.ProgrammingError) as caught:
        conn.execute("SELECT * FROM missing")
    assert caught.value.sqlstate == "42P01"
    conn.execute("CREATE TABLE u (k PRIMARY KEY)")
    conn.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(driver.IntegrityError):
        conn.execute("INSERT INTO u VALUES (1)")


# ---------------------------------------------------------------------------------------------
# Failover and exactly-once retries
# ---------------------------------------------------------------------------------------------


def test_connect_skips_a_dead_address(start_node: Callable[[], FakeNode]) -> None:
    live = start_node()
    dead = _dead_address()
    with driver.connect(f"{dead},{live.address}", timeout=5) as conn:
        assert conn.current_address == live.address
        assert conn.addresses == (dead, live.address)
        assert conn.execute("SELECT 1").fetchall() == [(1,)]


def test_connect_names_every_address_when_none_answers() -> None:
    first, second = _dead_address(), _dead_address()
    with pytest.raises(driver.OperationalError) as caught:
        driver.connect(f"{first},{second}", timeout=2)
    assert first in str(caught.value) and second in str(caught.value)
    assert caught.value.sqlstate == "08006"


def test_request_moves_to_another_node_when_the_gateway_stops(
    start_node: Callable[[], FakeNode], cluster: FakeCluster
) -> None:
    first, second = start_node(), start_node()
    with driver.connect(f"{first.address},{second.address}", timeout=5) as conn:
        conn.execute("CREATE TABLE t (a)")
        assert conn.current_address == first.address
        first.stop()
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.current_address == second.address
        assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
    served_by = [name for name, _ in cluster.requests]
    assert served_by == ["n1", "n2", "n2"]


def test_ambiguous_retry_reuses_session_and_seq_so_it_applies_once(
    start_node: Callable[[], FakeNode], cluster: FakeCluster
) -> None:
    first, second = start_node(), start_node()
    with driver.connect(f"{first.address},{second.address}", timeout=5) as conn:
        conn.execute("CREATE TABLE t (a)")
        first.sql.die_after_apply = True
        cur = conn.execute("INSERT INTO t VALUES (1)")
        assert cur.rowcount == 1
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        session = conn.session_id
    (n1_create, n1_insert, n2_insert, n2_select) = cluster.requests
    assert (n1_insert[0], n2_insert[0]) == ("n1", "n2")
    assert n2_insert[1].session_id == n1_insert[1].session_id == session
    assert n2_insert[1].seq == n1_insert[1].seq == n1_create[1].seq + 1
    assert n2_select[1].seq == n2_insert[1].seq + 1


def test_all_nodes_down_is_an_operational_error(
    start_node: Callable[[], FakeNode],
) -> None:
    first, second = start_node(), start_node()
    conn = driver.connect(f"{first.address},{second.address}", timeout=5)
    first.stop()
    second.stop()
    with pytest.raises(driver.OperationalError, match="no node could serve") as caught:
        conn.execute("SELECT 1")
    assert first.address in str(caught.value) and second.address in str(caught.value)
    conn.close()


def test_not_serving_node_is_skipped_at_connect(start_node: Callable[[], FakeNode]) -> None:
    healthy = start_node()
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with driver.connect(f"127.0.0.1:{port},{healthy.address}", timeout=5) as conn:
            assert conn.current_address == healthy.address
    finally:
        server.stop(0).wait()


# ---------------------------------------------------------------------------------------------
# The shell on top of the driver
# ---------------------------------------------------------------------------------------------


def test_shell_runs_statements_and_prints_results_and_status(
    start_node: Callable[[], FakeNode],
) -> None:
    node = start_node()
    out, err = io.StringIO(), io.StringIO()
    code = shell.run_shell(
        node.address,
        statements=[
            "CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 'x'), (2, NULL)",
            "SELECT * FROM t ORDER BY a",
        ],
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    assert out.getvalue() == "\n".join(
        [
            "CREATE TABLE",
            "INSERT 2",
            " a |  b",
            "---+------",
            " 1 | x",
            " 2 | NULL",
            "(2 rows)",
            "",
        ]
    )


def test_shell_error_prints_sqlstate_and_caret_then_stops(
    start_node: Callable[[], FakeNode],
) -> None:
    node = start_node()
    out, err = io.StringIO(), io.StringIO()
    code = shell.run_shell(
        node.address,
        statements=['FAIL 42601 6 syntax error at or near "frm"', "SELECT 1"],
        stdout=out,
        stderr=err,
    )
    assert code == 1
    assert out.getvalue() == ""
    assert err.getvalue() == "\n".join(
        [
            'ERROR: syntax error at or near "frm"',
            "SQLSTATE: 42601",
            'LINE 1: FAIL 42601 6 syntax error at or near "frm"',
            "             ^",
            "",
        ]
    )


def test_shell_continue_on_error_runs_the_rest_and_still_fails(
    start_node: Callable[[], FakeNode],
) -> None:
    node = start_node()
    out, err = io.StringIO(), io.StringIO()
    code = shell.run_shell(
        node.address,
        stdin=io.StringIO("SELECT * FROM nope;\nSELECT 7 AS n;\n"),
        fmt="csv",
        on_error="continue",
        stdout=out,
        stderr=err,
    )
    assert code == 1
    assert out.getvalue() == "n\n7\n"
    assert "SQLSTATE: 42P01" in err.getvalue()


def test_shell_reports_an_unreachable_cluster() -> None:
    err = io.StringIO()
    code = shell.run_shell(_dead_address(), statements=["SELECT 1"], stderr=err)
    assert code == 1 and err.getvalue().startswith("ERROR: could not connect")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _ScriptedPrompt:
    """Stands in for PromptSession: replays inputs, then raises EOFError (Ctrl-D)."""

    def __init__(self, inputs: list[str | type[BaseException]]) -> None:
        self.inputs = inputs

    def prompt(self) -> str:
        if not self.inputs:
            raise EOFError
        item = self.inputs.pop(0)
        if isinstance(item, str):
            return item
        raise item


def test_interactive_meta_commands_errors_and_ctrl_keys(
    start_node: Callable[[], FakeNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    node = start_node()
    script: list[str | type[BaseException]] = [
        "\\?",
        KeyboardInterrupt,
        "SELECT * FROM nope;",
        "\\format json",
        "SELECT 1 AS x;",
        "\\timing",
        "SELECT 2 AS y;",
        "\\bogus",
        "\\q",
        "SELECT 'never';",
    ]
    monkeypatch.setattr(shell, "_make_session", lambda message: _ScriptedPrompt(script))
    out, err = io.StringIO(), io.StringIO()
    code = shell.run_shell(node.address, stdin=_Tty(), stdout=out, stderr=err)
    assert code == 0
    text = out.getvalue()
    assert "\\timing [on|off]" in text
    assert '[\n  {"x": 1}\n]' in text
    assert "Timing is on." in text and "Time: " in text and " ms" in text
    assert "never" not in text
    assert "SQLSTATE: 42P01" in err.getvalue()
    assert "invalid command \\bogus" in err.getvalue()


def test_interactive_ctrl_d_exits_cleanly(
    start_node: Callable[[], FakeNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    node = start_node()
    monkeypatch.setattr(shell, "_make_session", lambda message: _ScriptedPrompt([]))
    assert shell.run_shell(node.address, stdin=_Tty(), stdout=io.StringIO()) == 0


def test_enter_submits_only_complete_statements_or_meta_commands() -> None:
    assert shell.should_submit("SELECT 1;")
    assert not shell.should_submit("SELECT 1")
    assert shell.should_submit("  \\format csv")
    assert shell.should_submit("")


def test_prompt_session_builds_with_history_and_highlighting(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe:
        from prompt_toolkit.application import create_app_session

        with create_app_session(input=pipe, output=DummyOutput()):
            session = shell._make_session()
            pipe.send_text("SELECT\n1;\n")
            assert session.prompt() == "SELECT\n1;"

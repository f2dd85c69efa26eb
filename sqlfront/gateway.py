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

import datetime
import functools
import random
import re
import threading
import uuid
from collections.abc import Callable
from typing import Protocol

from sqlglot import exp

from proto import pb
from router import CatalogCache, RangeSender, RangeUnavailableError
from storage import row_to_proto, sqlstate

from .dialect import SqlError, parse
from .rewrite import fill_defaults, nondeterministic_defaults, rewrite_nondeterministic, to_sql

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
_CHECK_RE = re.compile(
    r"^\s*CHECK\s+CONSISTENCY(?:\s+FROM\s+TABLE\s+(?P<table>[A-Za-z_][A-Za-z0-9_]*))?\s*;?\s*$",
    re.I,
)


class Cluster(Protocol):
    """What the gateway needs from its node (declared by the consumer)."""

    catalog: CatalogCache
    sender: RangeSender

    def refresh_catalog(self) -> None: ...

    def meta_descriptor(self) -> pb.RangeDescriptor | None: ...

    def choose_replicas(self, count: int) -> list[int]: ...

    def ensure_replicas_everywhere(self, nodes: list[int]) -> None: ...

    def replica_checksum(self, node: int, range_id: int, index: int) -> str | None: ...

    def relocate_leader(self, range_id: int, target: int, timeout: float = 10.0) -> int: ...

    def run_meta(self, op: pb.MetaOp, *, budget: float = 10.0) -> pb.CommandResult: ...

    def change_replicas(
        self, range_id: int, voters: list[int], non_voters: list[int]
    ) -> pb.RangeDescriptor: ...


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

    # -- entry point -------------------------------------------------------------------------

    def execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
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
        check = _CHECK_RE.match(request.sql)
        if check:
            try:
                return self._check_consistency(check.group("table"))
            except StatementError as exc:
                return _error(exc.code, exc.message)
            except RangeUnavailableError as exc:
                return _error(exc.code, exc.message)
        try:
            statements = _parse_cached(request.sql)
        except SqlError as exc:
            return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
        if len(statements) != 1:
            return _error(
                sqlstate.FEATURE_NOT_SUPPORTED,
                "you can only execute one statement at a time",
            )
        tree = statements[0]
        try:
            return self._dispatch(tree, request)
        except SqlError as exc:
            return _error(exc.code, exc.message, exc.position, exc.line, exc.column)
        except StatementError as exc:
            return _error(exc.code, exc.message)
        except RangeUnavailableError as exc:
            return _error(exc.code, exc.message)

    # -- admin statements --------------------------------------------------------------------

    def _check_consistency(self, table: str | None) -> pb.ExecuteResponse:
        """Every replica checksums its state at one log index; compare them."""
        self._cluster.refresh_catalog()
        if table:
            self._table(table)
            ranges = list(self._cluster.catalog.ranges_of(table))
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
        if name.lower().startswith(_RESERVED_PREFIXES):
            raise StatementError(sqlstate.INSUFFICIENT_PRIVILEGE, f"{name} is reserved for atlasql")
        table = self._cluster.catalog.table(name)
        if table is None:
            self._cluster.refresh_catalog()
            table = self._cluster.catalog.table(name)
        if table is None:
            raise StatementError(sqlstate.UNDEFINED_TABLE, f"no such table: {name}")
        return table

    def _range_of(self, table: str) -> pb.RangeDescriptor:
        ranges = self._cluster.catalog.ranges_of(table)
        if not ranges:
            self._cluster.refresh_catalog()
            ranges = self._cluster.catalog.ranges_of(table)
        if not ranges:
            raise StatementError(sqlstate.RANGE_NOT_FOUND, f"table {table} has no range")
        return ranges[0]

    def _read(
        self, desc: pb.RangeDescriptor, sql: str, request: pb.ExecuteRequest | None
    ) -> pb.CommandResult:
        read = pb.SqlRead(sql=sql)
        if request is not None:
            read.params.extend(request.params)
            for k, v in request.named_params.items():
                read.named_params[k].CopyFrom(v)
        return self._cluster.sender.send(desc, pb.Command(read=read))

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
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            return self._write(tree, request)
        if isinstance(tree, exp.Query):
            if request.batch:
                raise StatementError(
                    sqlstate.SYNTAX_ERROR, "executemany() can only execute DML statements"
                )
            return self._select(tree, request)
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
        if name.lower().startswith(_RESERVED_PREFIXES):
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
        if isinstance(table_expr, exp.Table) and table_expr.db:
            raise StatementError(
                sqlstate.FEATURE_NOT_SUPPORTED, "schema-qualified names are not supported yet"
            )
        create_sql = request.sql.strip().rstrip(";").strip()
        replicas = self._cluster.choose_replicas(3)
        if not replicas:
            raise StatementError(sqlstate.RANGE_UNAVAILABLE, "no live nodes to place the table on")
        res = self._meta(
            pb.MetaOp(
                create_table=pb.CreateTable(
                    name=name,
                    create_sql=create_sql,
                    replicas=replicas,
                    if_not_exists=bool(tree.args.get("exists")),
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
            self._meta(pb.MetaOp(drop_table=pb.DropTable(name=name, if_exists=True)))
            return _error(ddl.error.code, ddl.error.message)
        return pb.ExecuteResponse(rows_affected=-1)

    def _drop_table(self, tree: exp.Drop) -> pb.ExecuteResponse:
        name = _drop_target(tree)
        if name.lower().startswith(_RESERVED_PREFIXES):
            raise StatementError(sqlstate.INSUFFICIENT_PRIVILEGE, f"{name} is reserved for atlasql")
        self._meta(
            pb.MetaOp(drop_table=pb.DropTable(name=name, if_exists=bool(tree.args.get("exists"))))
        )
        return pb.ExecuteResponse(rows_affected=-1)

    def _create_index(self, tree: exp.Create, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        index = tree.this
        table_expr = index.args.get("table") if isinstance(index, exp.Index) else None
        if not isinstance(table_expr, exp.Table):
            raise StatementError(sqlstate.SYNTAX_ERROR, "CREATE INDEX needs ON table(columns)")
        table = self._table(table_expr.name)
        desc = self._range_of(table.name)
        sql = request.sql.strip().rstrip(";").strip()
        res = self._cluster.sender.send(desc, self._command(request, write=pb.SqlWrite(sql=sql)))
        if res.HasField("error") and res.error.code:
            return _error(res.error.code, res.error.message)
        self._meta(
            pb.MetaOp(add_index=pb.AddIndex(table=table.name, index_sql=sql, index_name=index.name))
        )
        return pb.ExecuteResponse(rows_affected=-1)

    def _drop_index(self, tree: exp.Drop, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        name = _drop_target(tree)
        self._cluster.refresh_catalog()
        for table in self._cluster.catalog.snapshot().tables:
            for index_sql in table.index_sql:
                created = parse(index_sql)[0]
                if created.this is not None and created.this.name.lower() == name.lower():
                    desc = self._range_of(table.name)
                    sql = request.sql.strip().rstrip(";").strip()
                    res = self._cluster.sender.send(
                        desc, self._command(request, write=pb.SqlWrite(sql=sql))
                    )
                    if res.HasField("error") and res.error.code:
                        return _error(res.error.code, res.error.message)
                    self._meta(pb.MetaOp(drop_index=pb.DropIndex(index_name=created.this.name)))
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
        table = self._table(target.name)
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
        desc = self._range_of(table.name)
        res = self._cluster.sender.send(desc, self._command(request, write=write))
        return _from_result(res)

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

    def _select(self, tree: exp.Expr, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        names = _table_names(tree)
        if not names:
            return self._local_query(request, {})
        tables = [self._table(n) for n in names]
        if len(tables) == 1:
            desc = self._range_of(tables[0].name)
            return _from_result(self._read(desc, request.sql, request))
        # Several tables (each its own range today): gather, then finish at the gateway.
        gathered: dict[str, tuple[pb.TableDescriptor, pb.CommandResult]] = {}
        for t in tables:
            desc = self._range_of(t.name)
            # Keep rowids (a rowid table re-inserted without them would be renumbered).
            res = self._read(desc, f'SELECT rowid AS "__atlas_rowid", * FROM "{t.name}"', None)
            if res.HasField("error") and res.error.code:
                res = self._read(desc, f'SELECT * FROM "{t.name}"', None)  # WITHOUT ROWID
                if res.HasField("error") and res.error.code:
                    return _from_result(res)
            gathered[t.name] = (t, res)
        return self._local_query(request, gathered)

    def _local_query(
        self,
        request: pb.ExecuteRequest,
        tables: dict[str, tuple[pb.TableDescriptor, pb.CommandResult]],
    ) -> pb.ExecuteResponse:
        from storage import Engine, params_from_proto, row_from_proto

        engine = Engine(":memory:")
        try:
            for table, res in tables.values():
                engine.execute(table.create_sql)
                if res.rows:
                    columns = ['"rowid"' if c == "__atlas_rowid" else f'"{c}"' for c in res.columns]
                    marks = ",".join("?" * len(columns))
                    insert = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({marks})'
                    for row in res.rows:
                        engine.execute(insert, row_from_proto(row))
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
    nd = nondeterministic_defaults(create_sql)
    return nd, tuple(_columns_of(create_sql)) if nd else ()


def _columns_of(create_sql: str) -> list[str]:
    tree = parse(create_sql)[0]
    schema = tree.this
    if not isinstance(schema, exp.Schema):
        return []
    return [c.name for c in schema.expressions if isinstance(c, exp.ColumnDef)]


__all__ = ["Cluster", "Gateway", "StatementError"]

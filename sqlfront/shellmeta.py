"""The shell's pure side: meta-command parsing, the catalog as the shell sees it, the listings
behind ``\\dt \\d \\di \\nodes \\regions \\ranges``, and TAB-completion candidates.

Nothing here does I/O: the shell (:mod:`sqlfront.shell`) fetches a ``Catalog`` and a
``ClusterStatusResponse`` over gRPC and hands them to these functions, so every listing and
every completion can be unit-tested with hand-built protobuf messages.

>>> parse_meta("\\\\set null '(null)'")
MetaCommand(name='set', args=('null', '(null)'))
>>> [item.text for item in split_script("SELECT 1;\\n\\\\dt\\nSELECT 2")]
['SELECT 1', '\\\\dt', 'SELECT 2']
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from proto import pb
from router import DEFAULT_DATABASE, database_key
from sqlfront.dialect import AtlasDialect, is_complete, parse, split_statements
from sqlfront.format import FORMATS

__all__ = [
    "DEFAULT_DATABASE",
    "database_names",
    "HELP",
    "META_COMMANDS",
    "CatalogView",
    "ColumnInfo",
    "IndexInfo",
    "Listing",
    "MetaCommand",
    "MetaSyntaxError",
    "ScriptItem",
    "TableInfo",
    "catalog_view",
    "complete",
    "describe_table",
    "format_uptime",
    "indexes_listing",
    "nodes_listing",
    "parse_meta",
    "ranges_listing",
    "regions_listing",
    "split_script",
    "tables_listing",
]


def database_names(catalog: pb.Catalog) -> list[str]:
    """``defaultdb`` and every database the catalog holds."""
    return [DEFAULT_DATABASE] + sorted(d.name for d in catalog.databases)


META_COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "?": ("", "show this help"),
    "q": ("", "quit (Ctrl-D works too)"),
    "l": ("", "list databases"),
    "c": ("[DB]", "use database DB (USE DB); without DB, show the current one"),
    "dt": ("[PATTERN]", "list tables"),
    "d": ("[TABLE]", "describe a table: columns, keys, indexes, ranges"),
    "di": ("[PATTERN]", "list indexes"),
    "x": ("[on|off]", "toggle expanded display (one block per row)"),
    "timing": ("[on|off]", "toggle printing of each statement's time"),
    "o": ("[FILE]", "send results to FILE (\\o alone: back to the terminal)"),
    "i": ("FILE", "run the statements and meta-commands in FILE"),
    "copy": ("TABLE FROM|TO 'FILE' [WITH HEADER]", "bulk load a CSV file / write a table as CSV"),
    "set": ("[NAME [VALUE]]", "set a variable, or list them (null: how NULL prints)"),
    "unset": ("NAME", "delete a variable"),
    "pset": ("OPTION [VALUE]", "pager on|off, null TEXT, format FMT, expanded on|off"),
    "format": ("[FMT]", "output format: " + "|".join(FORMATS)),
    "echo": ("TEXT", "print TEXT"),
    "nodes": ("", "nodes: address, locality, liveness, replicas, leaders, uptime"),
    "regions": ("", "regions from node localities, with node counts"),
    "ranges": ("[TABLE]", "ranges: replicas, leader, term, applied index"),
}
"""Meta-command names (without the backslash): (arguments, one-line help), in help order."""

HELP: Final = (
    "Meta-commands:\n"
    + "\n".join(
        f"  \\{name} {args}".ljust(25) + text for name, (args, text) in META_COMMANDS.items()
    )
    + "\nEnd a statement with ';' to run it. Ctrl-C clears the input or stops waiting for a"
    "\nrunning statement; Ctrl-D quits. TAB completes keywords, tables, columns and commands."
    "\nMeta-commands also work in -e and in piped input."
)


# ---------------------------------------------------------------------------------------------
# Meta-commands and scripts
# ---------------------------------------------------------------------------------------------


class MetaSyntaxError(ValueError):
    """A meta-command line that cannot be parsed (unterminated quote, no name)."""


@dataclass(frozen=True)
class MetaCommand:
    """One parsed backslash command: ``name`` without the backslash, shell-style ``args``."""

    name: str
    args: tuple[str, ...] = ()


_META_NAME: Final = re.compile(r"\\([A-Za-z]+|[^A-Za-z\s])")


def parse_meta(line: str) -> MetaCommand:
    """Parse ``\\name args...``: arguments split like a shell, quotes removed, a final ``;``
    dropped (``\\dt;`` works as in psql).

    >>> parse_meta("\\\\d users;")
    MetaCommand(name='d', args=('users',))
    >>> parse_meta("\\\\?")
    MetaCommand(name='?', args=())

    Raises:
        MetaSyntaxError: no command name after the backslash, or an unterminated quote.
    """
    text = line.strip()
    match = _META_NAME.match(text)
    if match is None:
        raise MetaSyntaxError(f"invalid meta-command {text!r}: expected \\ and a name")
    rest = text[match.end() :].strip()
    if rest.endswith(";") and not rest.endswith("\\;"):
        rest = rest[:-1].rstrip()
    name = match.group(1)
    if name.endswith(";"):
        name = name[:-1]
    try:
        args = tuple(shlex.split(rest, posix=True)) if rest else ()
    except ValueError as exc:
        raise MetaSyntaxError(f"\\{name}: {exc}") from None
    return MetaCommand(name, args)


@dataclass(frozen=True)
class ScriptItem:
    """One unit of a script: a SQL statement (``meta=False``) or a meta-command line."""

    text: str
    meta: bool = False


def split_script(text: str) -> list[ScriptItem]:
    """Cut a script into statements and meta-commands, psql style.

    A line whose first non-blank character is ``\\`` is a meta-command when no statement text
    is pending before it; any other text accumulates until a complete ``;``-terminated
    statement. A final statement without ``;`` still counts (``-e 'SELECT 1'``).

    >>> [(i.text, i.meta) for i in split_script("\\\\x\\nSELECT\\n 1; SELECT 2;")]
    [('\\\\x', True), ('SELECT\\n 1', False), ('SELECT 2', False)]
    """
    items: list[ScriptItem] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("\\") and not split_statements(pending):
            pending = ""
            items.append(ScriptItem(line.strip(), meta=True))
            continue
        pending += line + "\n"
        if is_complete(pending):
            items.extend(ScriptItem(sql) for sql in split_statements(pending))
            pending = ""
    items.extend(ScriptItem(sql) for sql in split_statements(pending))
    return items


# ---------------------------------------------------------------------------------------------
# The catalog as the shell sees it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str = ""
    not_null: bool = False
    default: str | None = None
    primary_key: bool = False


@dataclass(frozen=True)
class IndexInfo:
    name: str
    table: str
    columns: tuple[str, ...] = ()
    unique: bool = False
    where: str = ""
    sql: str = ""


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...] = ()
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[IndexInfo, ...] = ()
    create_sql: str = ""

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class CatalogView:
    """Tables (parsed from their ``create_sql``/``index_sql``) and the raw catalog."""

    tables: dict[str, TableInfo] = field(default_factory=dict)
    catalog: pb.Catalog = field(default_factory=pb.Catalog)

    def table(self, name: str) -> TableInfo | None:
        """Look a table up by name, exactly first, then case-insensitively (as SQLite does)."""
        if name in self.tables:
            return self.tables[name]
        folded = {key.lower(): info for key, info in self.tables.items()}
        return folded.get(name.lower())


def _table_info(desc: pb.TableDescriptor) -> TableInfo:
    from sqlglot import exp

    try:
        tree = parse(desc.create_sql)[0]
    except Exception:  # noqa: BLE001 - a listing must not fail on one odd definition
        return TableInfo(desc.name, create_sql=desc.create_sql)
    schema = tree.this if isinstance(tree, exp.Create) else None
    columns: list[ColumnInfo] = []
    primary: list[str] = []
    unique: list[tuple[str, ...]] = []
    for item in schema.expressions if isinstance(schema, exp.Schema) else []:
        if isinstance(item, exp.Identifier):  # a column declared without a type
            columns.append(ColumnInfo(item.name))
        elif isinstance(item, exp.ColumnDef):
            kinds = [c.args.get("kind") for c in item.args.get("constraints") or []]
            kind = item.args.get("kind")
            default = next(
                (
                    k.this.sql(dialect=AtlasDialect)
                    for k in kinds
                    if isinstance(k, exp.DefaultColumnConstraint)
                ),
                None,
            )
            is_pk = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
            type_text = kind.sql(dialect=AtlasDialect) if kind is not None else ""
            not_null = any(isinstance(k, exp.NotNullColumnConstraint) for k in kinds) or (
                is_pk and type_text.upper() == "INTEGER"  # the rowid alias is never NULL
            )
            columns.append(ColumnInfo(item.name, type_text, not_null, default, is_pk))
            if is_pk:
                primary.append(item.name)
            if any(isinstance(k, exp.UniqueColumnConstraint) for k in kinds):
                unique.append((item.name,))
        elif isinstance(item, exp.PrimaryKey):
            primary = [e.name for e in item.expressions]
        elif isinstance(item, exp.UniqueColumnConstraint) and isinstance(item.this, exp.Schema):
            unique.append(tuple(e.name for e in item.this.expressions))
    if primary:
        keyed = set(primary)
        columns = [
            ColumnInfo(c.name, c.type, c.not_null, c.default, c.name in keyed) for c in columns
        ]
    return TableInfo(desc.name, tuple(columns), tuple(primary), tuple(unique), (), desc.create_sql)


_INDEX_RE: Final = re.compile(
    r"CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s+ON\s+(\S+?)\s*\((.*)\)",
    re.IGNORECASE | re.DOTALL,
)


def _index_info(sql: str, table: str) -> IndexInfo:
    from sqlglot import exp

    try:
        tree = parse(sql)[0]
        index = tree.this
        assert isinstance(tree, exp.Create) and isinstance(index, exp.Index)
        params = index.args.get("params")
        assert params is not None
        cols = tuple(c.sql(dialect=AtlasDialect) for c in (params.args.get("columns") or []))
        where = params.args.get("where")
        return IndexInfo(
            index.name,
            table,
            cols,
            bool(tree.args.get("unique")),
            where.this.sql(dialect=AtlasDialect) if where is not None else "",
            sql,
        )
    except Exception:  # noqa: BLE001 - fall back to a plain reading of the text
        m = _INDEX_RE.match(sql.strip())
        if m is None:
            return IndexInfo("?", table, sql=sql)
        cols = tuple(c.strip() for c in m.group(4).split(","))
        return IndexInfo(m.group(2).strip('"`[]'), table, cols, bool(m.group(1)), sql=sql)


def catalog_view(catalog: pb.Catalog, database: str = "") -> CatalogView:
    """Parse the definitions and indexes of a database's tables out of a catalog snapshot
    (``database`` "" = defaultdb); ``catalog.ranges`` keeps only that database's ranges.

    >>> cat = pb.Catalog(tables=[pb.TableDescriptor(
    ...     name="t", create_sql="CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
    ...     index_sql=["CREATE INDEX t_v ON t(v)"])])
    >>> view = catalog_view(cat)
    >>> view.tables["t"].column_names(), view.tables["t"].indexes[0].columns
    (['id', 'v'], ('v',))
    """
    db = database_key(database)

    def mine(name: str) -> bool:
        return database_key(name) == db

    tables: dict[str, TableInfo] = {}
    scoped = pb.Catalog()
    scoped.CopyFrom(catalog)
    del scoped.tables[:]
    del scoped.ranges[:]
    scoped.tables.extend(t for t in catalog.tables if mine(t.database))
    scoped.ranges.extend(r for r in catalog.ranges if mine(r.database))
    catalog = scoped
    for desc in catalog.tables:
        info = _table_info(desc)
        indexes = tuple(_index_info(sql, desc.name) for sql in desc.index_sql)
        tables[desc.name] = TableInfo(
            info.name, info.columns, info.primary_key, info.unique, indexes, info.create_sql
        )
    return CatalogView(tables, catalog)


# ---------------------------------------------------------------------------------------------
# Listings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What a listing meta-command prints: an optional title, a result set, then notes."""

    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    title: str = ""
    notes: tuple[str, ...] = ()


def _matches(name: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _table_ranges(catalog: pb.Catalog, table: str) -> list[pb.RangeDescriptor]:
    return sorted((r for r in catalog.ranges if r.table == table), key=lambda r: r.range_id)


def tables_listing(view: CatalogView, pattern: str | None = None) -> Listing:
    """``\\dt [PATTERN]``: one row per table (glob pattern, case-insensitive)."""
    rows: list[tuple[object, ...]] = [
        (name, len(info.columns), len(info.indexes), len(_table_ranges(view.catalog, name)))
        for name, info in sorted(view.tables.items())
        if _matches(name, pattern)
    ]
    return Listing(("table_name", "columns", "indexes", "ranges"), rows, "List of tables")


def indexes_listing(view: CatalogView, pattern: str | None = None) -> Listing:
    """``\\di [PATTERN]``: every index of every table (pattern on the index name)."""
    rows: list[tuple[object, ...]] = []
    for name, info in sorted(view.tables.items()):
        for index in info.indexes:
            if _matches(index.name, pattern):
                rows.append(
                    (
                        index.name,
                        name,
                        ", ".join(index.columns),
                        "yes" if index.unique else "no",
                        index.where,
                    )
                )
    return Listing(
        ("index_name", "table_name", "columns", "unique", "where"), rows, "List of indexes"
    )


@dataclass(frozen=True)
class _RangeState:
    leader: int | None
    term: int | None
    applied: int | None
    holders: tuple[int, ...]


def _range_states(status: pb.ClusterStatusResponse | None) -> dict[int, _RangeState]:
    """Per range: the leader a reachable node claims to be, with its term and applied index."""
    if status is None:
        return {}
    holders: dict[int, list[int]] = {}
    hints: dict[int, Counter[int]] = {}
    leaders: dict[int, tuple[int, pb.ReplicaStatus]] = {}
    for node in status.nodes:
        if not node.reachable:
            continue
        for rep in node.replicas:
            holders.setdefault(rep.range_id, []).append(node.node.node_id)
            if rep.leader:
                hints.setdefault(rep.range_id, Counter())[rep.leader] += 1
            if rep.is_leader:
                best = leaders.get(rep.range_id)
                if best is None or rep.term > best[1].term:
                    leaders[rep.range_id] = (node.node.node_id, rep)
    out: dict[int, _RangeState] = {}
    for range_id, nodes in holders.items():
        if range_id in leaders:
            node_id, rep = leaders[range_id]
            out[range_id] = _RangeState(node_id, rep.term, rep.applied_index, tuple(sorted(nodes)))
        else:
            hint = hints.get(range_id)
            out[range_id] = _RangeState(
                hint.most_common(1)[0][0] if hint else None, None, None, tuple(sorted(nodes))
            )
    return out


def _key_text(key: bytes, *, end: bool) -> str:
    if not key:
        return "/Max" if end else "/Min"
    return "\\x" + key.hex()


def _node_list(ids: Iterable[int]) -> str:
    return ", ".join(f"n{i}" for i in ids)


def ranges_listing(
    view: CatalogView, status: pb.ClusterStatusResponse | None, table: str | None = None
) -> Listing:
    """``\\ranges [TABLE]``: every range with its replicas and the leader's term/applied index.

    The meta range (the catalog's own Raft group) is not a catalog entry; it is listed from the
    nodes' replica status under the table name ``(meta)``.
    """
    states = _range_states(status)
    descs = sorted(view.catalog.ranges, key=lambda r: r.range_id)
    known = {r.range_id for r in descs}
    if table is None:
        for range_id in sorted(set(states) - known):
            holders = states[range_id].holders
            descs.append(pb.RangeDescriptor(range_id=range_id, replicas=holders))
        descs.sort(key=lambda r: r.range_id)
    else:
        descs = [r for r in descs if r.table.lower() == table.lower()]
    rows: list[tuple[object, ...]] = []
    for r in descs:
        state = states.get(r.range_id)
        rows.append(
            (
                r.range_id,
                r.table or "(meta)",
                _key_text(r.start_key, end=False),
                _key_text(r.end_key, end=True),
                _node_list(r.replicas),
                f"n{state.leader}" if state and state.leader else None,
                state.term if state else None,
                state.applied if state else None,
            )
        )
    columns = (
        "range_id",
        "table_name",
        "start_key",
        "end_key",
        "replicas",
        "leader",
        "term",
        "applied_index",
    )
    return Listing(columns, rows, "List of ranges")


def describe_table(
    view: CatalogView, name: str, status: pb.ClusterStatusResponse | None
) -> Listing | None:
    """``\\d TABLE``: columns with types, then key, constraints, indexes and ranges as notes.

    Returns ``None`` when there is no such table.
    """
    info = view.table(name)
    if info is None:
        return None
    rows: list[tuple[object, ...]] = [
        (
            c.name,
            c.type,
            "not null" if c.not_null else "",
            c.default or "",
            "yes" if c.primary_key else "",
        )
        for c in info.columns
    ]
    notes: list[str] = []
    if info.primary_key:
        notes.append(f"Primary key: ({', '.join(info.primary_key)})")
    else:
        notes.append("Primary key: none (rows are keyed by SQLite's rowid)")
    for cols in info.unique:
        notes.append(f"Unique: ({', '.join(cols)})")
    if info.indexes:
        notes.append("Indexes:")
        for index in info.indexes:
            unique = " UNIQUE" if index.unique else ""
            where = f" WHERE {index.where}" if index.where else ""
            notes.append(f'    "{index.name}"{unique} ({", ".join(index.columns)}){where}')
    states = _range_states(status)
    ranges = _table_ranges(view.catalog, info.name)
    notes.append("Ranges:" if ranges else "Ranges: none")
    for r in ranges:
        state = states.get(r.range_id)
        leader = f"n{state.leader}" if state and state.leader else "unknown"
        span = f"[{_key_text(r.start_key, end=False)}, {_key_text(r.end_key, end=True)})"
        notes.append(
            f"    range {r.range_id} {span}: replicas {_node_list(r.replicas)}; leader {leader}"
        )
    return Listing(
        ("column", "type", "nullable", "default", "primary_key"),
        rows,
        f'Table "{info.name}"',
        tuple(notes),
    )


def format_uptime(seconds: float) -> str:
    """A short human duration.

    >>> format_uptime(5.2), format_uptime(3725), format_uptime(90061)
    ('5s', '1h02m05s', '1d01h01m')
    """
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _locality_text(locality: pb.Locality) -> str:
    return ",".join(f"{t.key}={t.value}" for t in locality.tiers)


def _tier(locality: pb.Locality, key: str) -> str | None:
    return next((t.value for t in locality.tiers if t.key == key), None)


def nodes_listing(status: pb.ClusterStatusResponse) -> Listing:
    """``\\nodes``: one row per known node; unreachable nodes show NULL counts."""
    rows: list[tuple[object, ...]] = []
    for n in sorted(status.nodes, key=lambda n: n.node.node_id):
        up = n.reachable
        rows.append(
            (
                n.node.node_id,
                n.node.address,
                _locality_text(n.node.locality),
                "yes" if up else "no",
                len(n.replicas) if up else None,
                sum(1 for r in n.replicas if r.is_leader) if up else None,
                format_uptime(n.uptime_seconds) if up else None,
            )
        )
    return Listing(
        ("node_id", "address", "locality", "reachable", "replicas", "leaders", "uptime"),
        rows,
        "List of nodes",
    )


def regions_listing(status: pb.ClusterStatusResponse) -> Listing:
    """``\\regions``: regions from the ``region`` locality tier, with zones and node counts."""
    zones: dict[str, set[str]] = {}
    nodes: dict[str, list[int]] = {}
    up: dict[str, list[int]] = {}
    for n in status.nodes:
        region = _tier(n.node.locality, "region") or "(none)"
        zone = _tier(n.node.locality, "zone")
        zones.setdefault(region, set()).update([zone] if zone is not None else [])
        nodes.setdefault(region, []).append(n.node.node_id)
        up.setdefault(region, [])
        if n.reachable:
            up[region].append(n.node.node_id)
    rows: list[tuple[object, ...]] = [
        (region, ", ".join(sorted(zones[region])), len(ids), len(up[region]))
        for region, ids in sorted(nodes.items())
    ]
    return Listing(("region", "zones", "nodes", "reachable_nodes"), rows, "List of regions")


# ---------------------------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------------------------

KEYWORDS: Final = tuple(
    """SELECT FROM WHERE INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE INDEX UNIQUE DROP
    ALTER ADD COLUMN RENAME TO PRIMARY KEY NOT NULL DEFAULT CHECK REFERENCES FOREIGN AND OR IN
    IS LIKE GLOB BETWEEN EXISTS AS ON JOIN LEFT RIGHT INNER OUTER CROSS NATURAL USING GROUP BY
    HAVING ORDER ASC DESC LIMIT OFFSET UNION ALL INTERSECT EXCEPT DISTINCT CASE WHEN THEN ELSE
    END CAST WITH RECURSIVE RETURNING CONFLICT DO NOTHING REPLACE IF INTEGER TEXT REAL BLOB
    NUMERIC EXPLAIN ANALYZE BEGIN COMMIT ROLLBACK SHOW DATABASE REGION REGIONS NODES RANGES
    RANGE LOCALITY REGIONAL ROW GLOBAL SURVIVE FAILURE ZONE SPLIT AT TRUE FALSE COLLATE VIEW
    TRIGGER""".split()
)
FUNCTIONS: Final = tuple(
    """count sum avg min max total coalesce ifnull nullif length lower upper substr trim abs
    round random printf replace instr typeof hex quote datetime date time strftime julianday
    json_extract json_object json_array group_concat gateway_region""".split()
)
_TABLE_KEYWORDS: Final = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE"})
_TABLE_META: Final = frozenset({"d", "ranges"})
_WORD_RE: Final = re.compile(r"(?:([A-Za-z_][\w$]*)\.)?([\w$]*)$")
_TOKEN_RE: Final = re.compile(r"[A-Za-z_][\w$]*|,|\(|\)|;")
_VARIABLES_HINT: Final = ("null",)


def _prefixed(candidates: Iterable[str], word: str) -> list[str]:
    low = word.lower()
    seen: set[str] = set()
    out: list[str] = []
    for c in candidates:
        if c.lower().startswith(low) and c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _keyword_case(word: str, keyword: str) -> str:
    return keyword.lower() if word and word[0].islower() else keyword


def _complete_path(word: str) -> list[str]:
    directory, _, stem = word.rpartition("/")
    base = os.path.expanduser(directory or ".") if directory or not word.startswith("/") else "/"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    prefix = directory + "/" if directory else ""
    return [
        prefix + e + ("/" if os.path.isdir(os.path.join(base, e)) else "")
        for e in entries
        if e.startswith(stem) and (stem.startswith(".") or not e.startswith("."))
    ]


def _complete_meta(text: str, view: CatalogView, variables: Sequence[str]) -> tuple[int, list[str]]:
    body = text.lstrip()
    if " " not in body:
        return len(body), ["\\" + n for n in META_COMMANDS if ("\\" + n).startswith(body)]
    name = body[1:].split(" ", 1)[0]
    args = body.split(" ")[1:]
    word = args[-1]
    if name in _TABLE_META:
        options: list[str] = sorted(view.tables)
    elif name in ("dt", "di"):
        options = (
            sorted(view.tables)
            if name == "dt"
            else sorted(i.name for t in view.tables.values() for i in t.indexes)
        )
    elif name == "format":
        options = list(FORMATS)
    elif name in ("x", "timing"):
        options = ["on", "off"]
    elif name == "pset":
        options = (
            ["pager", "null", "format", "expanded"]
            if len(args) == 1
            else (list(FORMATS) if args[0] == "format" else ["on", "off"])
        )
    elif name in ("set", "unset"):
        options = sorted(set(variables) | set(_VARIABLES_HINT)) if len(args) == 1 else []
    elif name == "c":
        options = database_names(view.catalog)
    elif name in ("i", "o"):
        return len(word), _complete_path(word)
    else:
        options = []
    return len(word), _prefixed(options, word)


def _statement_tables(tokens: Sequence[str], view: CatalogView) -> tuple[list[str], dict[str, str]]:
    """Tables named in a statement, and ``alias -> table`` from ``t [AS] alias``."""
    tables: list[str] = []
    aliases: dict[str, str] = {}
    upper = set(KEYWORDS)
    for i, tok in enumerate(tokens):
        info = view.table(tok)
        if info is None or (i > 0 and tokens[i - 1] == "."):
            continue
        if info.name not in tables:
            tables.append(info.name)
        j = i + 1
        if j < len(tokens) and tokens[j].upper() == "AS":
            j += 1
        if j < len(tokens) and tokens[j][:1].isalpha() and tokens[j].upper() not in upper:
            aliases[tokens[j].lower()] = info.name
    return tables, aliases


def complete(
    text: str, view: CatalogView, variables: Sequence[str] = (), *, after: str = ""
) -> tuple[int, list[str]]:
    """Completion candidates for the word before the cursor.

    Args:
        text: The input up to the cursor (all lines of a multi-line statement).
        view: The catalog the names come from.
        variables: Names of shell variables (for ``\\set``/``\\unset``).
        after: The input after the cursor (tables named there count too).

    Returns:
        How many characters before the cursor the candidates replace, and the candidates in
        order: after FROM/JOIN/INTO/UPDATE/TABLE only tables; after ``alias.`` that table's
        columns; otherwise columns of the tables the statement names (all columns when it names
        none), tables, functions and keywords (in the case the word was typed in).

    >>> view = catalog_view(pb.Catalog(tables=[pb.TableDescriptor(
    ...     name="users", create_sql="CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)")]))
    >>> complete("SELECT * FROM us", view)
    (2, ['users'])
    >>> complete("SELECT u.n", view, after=" FROM users u"), complete("\\\\ti", view)
    ((1, ['name']), (3, ['\\\\timing']))
    >>> complete("select na", view)
    (2, ['name', 'natural'])
    """
    if text.lstrip().startswith("\\") and "\n" not in text:
        return _complete_meta(text, view, variables)
    statement = re.split(r";", text)[-1]
    match = _WORD_RE.search(statement)
    assert match is not None  # the pattern matches the empty string
    qualifier, word = match.group(1), match.group(2)
    before = statement[: match.start()]
    tokens = _TOKEN_RE.findall(before)
    all_tokens = tokens + _TOKEN_RE.findall(after.split(";", 1)[0])
    tables, aliases = _statement_tables(all_tokens, view)
    if qualifier is not None:
        target = aliases.get(qualifier.lower()) or qualifier
        info = view.table(target)
        return len(word), _prefixed(info.column_names() if info else [], word)
    idx = max((k for k, t in enumerate(tokens) if t.upper() in KEYWORDS), default=-1)
    last_keyword = tokens[idx].upper() if idx >= 0 else ""
    since = tokens[idx + 1 :]
    if last_keyword in _TABLE_KEYWORDS and (not since or since[-1] == ","):
        return len(word), _prefixed(sorted(view.tables), word)
    if last_keyword == "ON" and tokens[:1] and tokens[0].upper() == "CREATE" and not since:
        return len(word), _prefixed(sorted(view.tables), word)
    columns: list[str] = []
    for name in tables or sorted(view.tables):
        columns.extend(view.tables[name].column_names())
    candidates = [
        *_prefixed(columns, word),
        *_prefixed(sorted(view.tables), word),
        *_prefixed(FUNCTIONS, word),
        *(_keyword_case(word, k) for k in _prefixed(KEYWORDS, word)),
    ]
    if word:
        candidates = [c for c in candidates if c != word]
    return len(word), list(dict.fromkeys(candidates))

"""Unit tests of the shell's pure parts (sqlfront.shellmeta) and of the Shell with a fake
connection: meta-command parsing, scripts, listings, completion, \\o/\\i/\\set, cancellation."""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from proto import pb
from sqlfront import shell as shell_mod
from sqlfront.format import format_expanded, format_result
from sqlfront.shellmeta import (
    HELP,
    META_COMMANDS,
    MetaCommand,
    MetaSyntaxError,
    catalog_view,
    complete,
    describe_table,
    indexes_listing,
    nodes_listing,
    parse_meta,
    ranges_listing,
    regions_listing,
    split_script,
    tables_listing,
)

# ---------------------------------------------------------------------------------------------
# Meta-command parsing and scripts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("\\dt", MetaCommand("dt")),
        ("  \\d users  ", MetaCommand("d", ("users",))),
        ("\\d users;", MetaCommand("d", ("users",))),
        ("\\dt;", MetaCommand("dt")),
        ("\\?", MetaCommand("?")),
        ("\\x on", MetaCommand("x", ("on",))),
        ("\\set null '(null)'", MetaCommand("set", ("null", "(null)"))),
        ('\\o "my file.txt"', MetaCommand("o", ("my file.txt",))),
        ("\\ranges", MetaCommand("ranges")),
    ],
)
def test_parse_meta_splits_name_and_shell_style_arguments(line: str, expected: MetaCommand) -> None:
    assert parse_meta(line) == expected


def test_parse_meta_rejects_unterminated_quote_and_missing_name() -> None:
    with pytest.raises(MetaSyntaxError, match="No closing quotation"):
        parse_meta("\\set null 'oops")
    with pytest.raises(MetaSyntaxError, match="expected \\\\ and a name"):
        parse_meta("\\ ")


def test_split_script_separates_meta_lines_from_multiline_statements() -> None:
    script = "\\timing\nSELECT 1,\n  2;\n-- comment\n\\dt\nINSERT INTO t VALUES (';'); SELECT 3"
    items = [(i.text, i.meta) for i in split_script(script)]
    assert items == [
        ("\\timing", True),
        ("SELECT 1,\n  2", False),
        ("\\dt", True),
        ("INSERT INTO t VALUES (';')", False),
        ("SELECT 3", False),
    ]


def test_split_script_backslash_inside_a_pending_statement_is_sql_text() -> None:
    items = split_script("SELECT 'a\n\\dt';")
    assert [(i.text, i.meta) for i in items] == [("SELECT 'a\n\\dt'", False)]


def test_help_lists_every_meta_command() -> None:
    for name in META_COMMANDS:
        assert f"\\{name}" in HELP
    for name in META_COMMANDS:
        assert name in shell_mod._META_HANDLERS, name


# ---------------------------------------------------------------------------------------------
# Expanded and wrapped display
# ---------------------------------------------------------------------------------------------


def test_expanded_display_prints_one_record_block_per_row() -> None:
    out = format_result(["id", "name"], [(1, "ada"), (2, None)], expanded=True, null="∅")
    assert out == "\n".join(
        ["-[ RECORD 1 ]", "id   | 1", "name | ada", "-[ RECORD 2 ]", "id   | 2", "name | ∅"]
    )


def test_expanded_display_pads_header_to_the_widest_value_and_marks_newlines() -> None:
    out = format_expanded(["a_long_column_name", "b"], [(1, "first\nsecond line")])
    assert out.splitlines() == [
        "-[ RECORD 1 ]------+------------",
        "a_long_column_name | 1",
        "b                  | first+",
        "                   | second line",
    ]


def test_expanded_display_of_no_rows() -> None:
    assert format_expanded(["a"], []) == "(0 rows)"


def test_table_wraps_wide_values_to_the_terminal_width() -> None:
    text = "lorem ipsum dolor sit amet " * 4
    out = format_result(["id", "body"], [(1, text.strip())], max_width=40)
    lines = out.splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[2].endswith(".")  # wrapped lines are marked with a dot
    joined = " ".join(line.split("|")[1].strip(" .") for line in lines[2:-1])
    assert joined == text.strip()


def test_table_does_not_wrap_when_it_fits() -> None:
    assert format_result(["a"], [("x" * 10,)], max_width=80) == format_result(["a"], [("x" * 10,)])


# ---------------------------------------------------------------------------------------------
# Catalog view, listings
# ---------------------------------------------------------------------------------------------

CATALOG = pb.Catalog(
    nodes=[
        pb.NodeInfo(
            node_id=i,
            address=f"127.0.0.1:{26256 + i}",
            locality=pb.Locality(
                tiers=[pb.LocalityTier(key="region", value=r), pb.LocalityTier(key="zone", value=z)]
            ),
        )
        for i, r, z in [(1, "eu", "a"), (2, "eu", "b"), (3, "us", "a")]
    ],
    tables=[
        pb.TableDescriptor(
            name="users",
            create_sql="CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "email TEXT UNIQUE, score REAL DEFAULT 0, misc)",
            index_sql=[
                "CREATE UNIQUE INDEX users_email ON users(email)",
                "CREATE INDEX users_name ON users(lower(name) DESC) WHERE score > 1",
            ],
        ),
        pb.TableDescriptor(
            name="orders",
            create_sql="CREATE TABLE orders(user_id INT, n INT, total REAL, "
            "PRIMARY KEY (user_id, n))",
        ),
    ],
    ranges=[
        pb.RangeDescriptor(range_id=2, table="users", replicas=[1, 2, 3], generation=1),
        pb.RangeDescriptor(range_id=3, table="orders", replicas=[1, 2, 3], end_key=b"\x05"),
        pb.RangeDescriptor(range_id=4, table="orders", replicas=[2, 3], start_key=b"\x05"),
    ],
)


def _status(*, down: int = 0) -> pb.ClusterStatusResponse:
    resp = pb.ClusterStatusResponse()
    for info in CATALOG.nodes:
        up = info.node_id != down
        node = resp.nodes.add(node=info, reachable=up, uptime_seconds=3725.0 if up else 0)
        if not up:
            continue
        for rid in (1, 2, 3, 4):
            leader = {1: 3, 2: 1, 3: 2, 4: 2}[rid]
            node.replicas.add(
                range_id=rid,
                is_leader=leader == info.node_id,
                leader=leader,
                applied_index=10 * rid,
                commit_index=10 * rid,
                term=rid,
            )
    return resp


def test_catalog_view_parses_columns_keys_and_indexes() -> None:
    view = catalog_view(CATALOG)
    users = view.tables["users"]
    assert [(c.name, c.type, c.not_null, c.primary_key) for c in users.columns] == [
        ("id", "INTEGER", True, True),
        ("name", "TEXT", True, False),
        ("email", "TEXT", False, False),
        ("score", "REAL", False, False),
        ("misc", "", False, False),
    ]
    assert users.primary_key == ("id",)
    assert users.unique == (("email",),)
    assert [(i.name, i.columns, i.unique, i.where) for i in users.indexes] == [
        ("users_email", ("email",), True, ""),
        ("users_name", ("LOWER(name) DESC",), False, "score > 1"),
    ]
    assert view.tables["orders"].primary_key == ("user_id", "n")
    assert view.table("USERS") is users


def test_catalog_view_survives_an_unparsable_definition() -> None:
    view = catalog_view(pb.Catalog(tables=[pb.TableDescriptor(name="odd", create_sql="garbage")]))
    assert view.tables["odd"].columns == ()


def test_tables_and_indexes_listings_filter_by_pattern() -> None:
    view = catalog_view(CATALOG)
    assert tables_listing(view).rows == [("orders", 3, 0, 2), ("users", 5, 2, 1)]
    assert tables_listing(view, "us*").rows == [("users", 5, 2, 1)]
    assert [r[0] for r in indexes_listing(view, "*email").rows] == ["users_email"]


def test_describe_table_lists_columns_key_indexes_and_ranges_with_leader() -> None:
    listing = describe_table(catalog_view(CATALOG), "users", _status())
    assert listing is not None
    assert listing.title == 'Table "users"'
    assert listing.rows[0] == ("id", "INTEGER", "not null", "", "yes")
    assert listing.rows[3] == ("score", "REAL", "", "0", "")
    assert listing.notes == (
        "Primary key: (id)",
        "Unique: (email)",
        "Indexes:",
        '    "users_email" UNIQUE (email)',
        '    "users_name" (LOWER(name) DESC) WHERE score > 1',
        "Ranges:",
        "    range 2 [/Min, /Max): replicas n1, n2, n3; leader n1",
    )
    assert describe_table(catalog_view(CATALOG), "nope", None) is None


def test_ranges_listing_includes_meta_range_and_leader_term_applied() -> None:
    listing = ranges_listing(catalog_view(CATALOG), _status())
    assert listing.rows == [
        (1, "(meta)", "/Min", "/Max", "n1, n2, n3", "n3", 1, 10),
        (2, "users", "/Min", "/Max", "n1, n2, n3", "n1", 2, 20),
        (3, "orders", "/Min", "\\x05", "n1, n2, n3", "n2", 3, 30),
        (4, "orders", "\\x05", "/Max", "n2, n3", "n2", 4, 40),
    ]
    only = ranges_listing(catalog_view(CATALOG), _status(), "orders")
    assert [r[0] for r in only.rows] == [3, 4]


def test_ranges_listing_without_a_reachable_leader_uses_the_hint() -> None:
    listing = ranges_listing(catalog_view(CATALOG), _status(down=1), "users")
    assert listing.rows == [(2, "users", "/Min", "/Max", "n1, n2, n3", "n1", None, None)]


def test_nodes_listing_counts_replicas_and_leaders_and_flags_unreachable() -> None:
    assert nodes_listing(_status(down=3)).rows == [
        (1, "127.0.0.1:26257", "region=eu,zone=a", "yes", 4, 1, "1h02m05s"),
        (2, "127.0.0.1:26258", "region=eu,zone=b", "yes", 4, 2, "1h02m05s"),
        (3, "127.0.0.1:26259", "region=us,zone=a", "no", None, None, None),
    ]


def test_regions_listing_groups_nodes_by_region_tier() -> None:
    assert regions_listing(_status(down=3)).rows == [("eu", "a, b", 2, 2), ("us", "a", 1, 0)]


# ---------------------------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------------------------

VIEW = catalog_view(CATALOG)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("SELECT * FROM us", "", ["users"]),
        ("select * from o", "", ["orders"]),
        ("SELECT * FROM users JOIN ", "", ["orders", "users"]),
        ("SELECT * FROM users, o", "", ["orders"]),
        ("INSERT INTO u", "", ["users"]),
        ("UPDATE or", "", ["orders"]),
        ("CREATE INDEX i ON us", "", ["users"]),
        ("SELECT users.em", "", ["email"]),
        ("SELECT x.", " FROM users AS x", ["id", "name", "email", "score", "misc"]),
        ("SELECT o.to", " FROM orders o", ["total"]),
        ("\\d ord", "", ["orders"]),
        ("\\ranges u", "", ["users"]),
        ("\\format j", "", ["json"]),
        ("\\x o", "", ["on", "off"]),
        ("\\c d", "", ["defaultdb"]),
        ("\\pset pa", "", ["pager"]),
        ("\\re", "", ["\\regions"]),
    ],
)
def test_completion_candidates_follow_context(text: str, after: str, expected: list[str]) -> None:
    assert complete(text, VIEW, after=after)[1] == expected


def test_completion_offers_statement_columns_first_then_keywords_in_typed_case() -> None:
    replace, words = complete("SELECT sc", VIEW, after=" FROM users")
    assert replace == 2
    assert words[0] == "score"
    assert "orders" not in words
    _, lower = complete("sel", VIEW)
    _, upper = complete("SEL", VIEW)
    assert "select" in lower and "SELECT" in upper


def test_completion_without_named_tables_offers_all_columns() -> None:
    _, words = complete("SELECT tot", VIEW)
    assert words == ["total"]


def test_completion_of_meta_command_names_and_set_variables() -> None:
    replace, words = complete("\\d", VIEW)
    assert replace == 2 and words == ["\\dt", "\\d", "\\di"]
    assert complete("\\set n", VIEW, ["null", "nick"])[1] == ["nick", "null"]


def test_completion_of_file_names_for_include(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "setup.sql").write_text("SELECT 1;")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert complete("\\i s", VIEW)[1] == ["setup.sql", "sub/"]


# ---------------------------------------------------------------------------------------------
# The Shell with a fake connection
# ---------------------------------------------------------------------------------------------


class FakeCursor:
    def __init__(self, columns: list[str] | None, rows: list[tuple[Any, ...]], count: int) -> None:
        self.description = None if columns is None else [(c,) + (None,) * 6 for c in columns]
        self._rows = rows
        self.rowcount = count

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


class FakeConnection:
    current_address = "127.0.0.1:1"

    def __init__(self, block: threading.Event | None = None) -> None:
        self.executed: list[str] = []
        self.block = block
        self.closed = False
        self.database = ""

    def execute(self, sql: str) -> FakeCursor:
        self.executed.append(sql)
        if self.block is not None:
            self.block.wait(5)
        if sql.startswith("USE "):
            if "missing" in sql:
                from sqlfront.driver import ProgrammingError

                raise ProgrammingError("database missing does not exist", sqlstate="3D000")
            self.database = sql.split()[1]
            return FakeCursor(None, [], -1)
        if "boom" in sql:
            from sqlfront.driver import ProgrammingError

            raise ProgrammingError("no such table: boom", sqlstate="42P01")
        if sql.upper().startswith("SELECT"):
            return FakeCursor(["a", "b"], [(1, None)], -1)
        return FakeCursor(None, [], 1)

    def close(self) -> None:
        self.closed = True


def _shell(
    conn: FakeConnection | None = None, fmt: str = "table"
) -> tuple[shell_mod.Shell, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    sh = shell_mod.Shell(
        "127.0.0.1:1", conn or FakeConnection(), shell_mod._State(fmt=fmt), out, err
    )  # type: ignore[arg-type]
    return sh, out, err


def test_script_runs_meta_commands_and_sql_with_null_text_and_expanded() -> None:
    sh, out, err = _shell()
    code = sh.run_texts(["\\set null (null)\n\\x\nSELECT a, b FROM t;"], "stop")
    assert code == 0, err.getvalue()
    assert out.getvalue().splitlines() == [
        "Expanded display is on.",
        "-[ RECORD 1 ]",
        "a | 1",
        "b | (null)",
    ]


def test_script_stops_at_first_error_unless_continue() -> None:
    sh, out, err = _shell()
    assert sh.run_texts(["SELECT boom;\nINSERT INTO t VALUES (1);"], "stop") == 1
    assert "INSERT" not in out.getvalue()
    assert "ERROR: no such table: boom" in err.getvalue()
    sh, out, err = _shell()
    assert sh.run_texts(["\\nope\nINSERT INTO t VALUES (1);"], "continue") == 1
    assert "invalid command \\nope" in err.getvalue()
    assert out.getvalue().strip() == "INSERT 1"


def test_quit_in_a_script_stops_it_keeping_the_exit_code() -> None:
    sh, out, _ = _shell()
    assert sh.run_texts(["INSERT INTO t VALUES (1);\n\\q\nINSERT INTO t VALUES (2);"], "stop") == 0
    assert out.getvalue().strip() == "INSERT 1"
    sh, _, _ = _shell()
    assert sh.run_texts(["\\bad\n\\q"], "continue") == 1


def test_output_file_and_include_file(tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("\\format csv\nSELECT a, b FROM t;\n")
    target = tmp_path / "out.txt"
    sh, out, err = _shell()
    code = sh.run_texts([f"\\o {target}\n\\i {script}\n\\o\nINSERT INTO t VALUES (1);"], "stop")
    assert code == 0, err.getvalue()
    assert target.read_text() == "Output format is csv.\na,b\n1,NULL\n"
    assert out.getvalue() == "INSERT 1\n"


def test_include_missing_file_and_connect_to_other_database_fail_clearly() -> None:
    sh, _, err = _shell()
    assert sh.run_texts(["\\i /nonexistent/x.sql"], "continue") == 1
    assert "\\i /nonexistent/x.sql: No such file or directory" in err.getvalue()
    sh, out, err = _shell()
    assert sh.run_texts(["\\c shop\n\\c\n\\c missing"], "continue") == 1
    assert 'You are now connected to database "shop"' in out.getvalue()
    assert 'You are connected to database "shop"' in out.getvalue()
    assert "database missing does not exist" in err.getvalue()


def test_set_lists_variables_and_pset_changes_display() -> None:
    sh, out, _ = _shell()
    sh.run_texts(["\\set x 1\n\\set\n\\pset pager off\n\\pset format json\n\\pset"], "stop")
    text = out.getvalue()
    assert "null = 'NULL'\nx = '1'" in text
    assert "pager      off" in text and "format     json" in text
    assert sh.state.pager is False


def test_ctrl_c_stops_waiting_for_a_running_statement_and_reconnects(
    monkeypatch: Any,
) -> None:
    release = threading.Event()
    slow = FakeConnection(block=release)
    fresh = FakeConnection()
    monkeypatch.setattr(shell_mod, "connect", lambda addresses, database="": fresh)
    sh, out, err = _shell(slow)
    sh.state.interactive = True
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        assert sh.run_sql("SELECT pg_sleep(100)") is False
    finally:
        timer.cancel()
        release.set()
    assert "may still complete on the server" in err.getvalue()
    assert sh.conn is fresh
    assert sh.run_sql("SELECT 1") is True
    assert fresh.executed == ["SELECT 1"]

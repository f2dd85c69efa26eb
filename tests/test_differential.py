"""Differential suite: hypothesis-generated schemas, data, queries and writes run on a real
3-node atlasql cluster and on an in-memory SQLite; every answer must be SQLite's.

Knobs (environment):

* ``ATLASQL_DIFF_EXAMPLES``: generated cases per run (default 200: ~2,000 compared statements,
  20-90 s on 2 cores depending on load; a case runs up to 14 statements plus a table check
  after every write);
* ``ATLASQL_DIFF_RANGES``: ranges per table (default 3, made with ``ALTER TABLE t SPLIT AT
  VALUES`` after loading);
* ``ATLASQL_DIFF_SPLITS``: ``require`` (default), ``auto`` (splits when supported), ``off``.

The harness itself is :mod:`tests.differential`; its ``KNOWN_GAPS`` lists the constructs left
out because of known atlasql bugs.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import sqlfront
from tests.cluster import Cluster
from tests.differential import (
    KNOWN_GAPS,
    Case,
    Column,
    Differential,
    Mismatch,
    Stmt,
    Table,
    cases,
)

EXAMPLES = int(os.environ.get("ATLASQL_DIFF_EXAMPLES", "200"))
RANGES = int(os.environ.get("ATLASQL_DIFF_RANGES", "3"))
SPLITS = os.environ.get("ATLASQL_DIFF_SPLITS", "require")
# Shrinking re-runs cases on the cluster (seconds each); 0 reports the first failure unshrunk.
SHRINK = os.environ.get("ATLASQL_DIFF_SHRINK", "1") != "0"
# 1: record every mismatch and report them all at the end (triage) instead of stopping.
COLLECT = os.environ.get("ATLASQL_DIFF_COLLECT", "0") == "1"

_counter = itertools.count(1)


@pytest.fixture(scope="module")
def diff_conn(module_cluster: Cluster) -> Iterator[object]:
    import sqlfront

    conn = sqlfront.connect(module_cluster.addrs())
    try:
        yield conn
    finally:
        conn.close()


def _fresh_names() -> list[str]:
    n = next(_counter)
    return [f"d{n}_t{i}" for i in range(3)]


@pytest.mark.timeout(1200)
def test_differential_generated(diff_conn: object, capsys: pytest.CaptureFixture[str]) -> None:
    harness = Differential(diff_conn, split_ranges=RANGES, split_mode=SPLITS, collect=COLLECT)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SHRINK else []),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases(_fresh_names()), label="case")
        harness.run_case(case)

    try:
        run()
    finally:
        with capsys.disabled():
            print("\n" + harness.stats.summary())
            print(f"differential: known gaps excluded: {sorted(KNOWN_GAPS) or 'none'}")
            for sql in harness.stats.skipped_examples:
                print(f"differential: skipped (0A000) e.g. {sql}")
            for text in harness.stats.version_examples:
                print(
                    f"differential: sqlite3 {sqlite3.sqlite_version} differs, apsw agrees: {text}"
                )
            for text in harness.found:
                print("\n" + text)
    assert not harness.found, f"{len(harness.found)} mismatches (printed above)"
    assert harness.stats.queries > 0


def test_differential_fixed_case(diff_conn: object) -> None:
    """A hand-written case exercising every comparison path once (fast, deterministic)."""
    t = Table(
        f"d{next(_counter)}_fixed",
        (
            Column("k", "INTEGER"),
            Column("c1", "TEXT"),
            Column("c2", "REAL"),
            Column("c3", ""),
        ),
        ipk=True,
    )
    rows: list[tuple[None | int | float | str | bytes, ...]] = [
        (1, "a", 1.5, 3),
        (2, "b", None, "x"),
        (3, None, -2.0, b"\x00\xff"),
        (None, "é😀", 1e300, None),
    ]
    stmts = [
        Stmt(f"SELECT * FROM {t.name} ORDER BY 1", ordered=True),
        Stmt(f"SELECT c1, c2 FROM {t.name} WHERE c2 > ?", (0,)),
        Stmt(
            f"SELECT count(*), count(c2), sum(c2), total(c3), avg(c2), min(c3), max(c1)"
            f" FROM {t.name}",
            ordered=True,
        ),
        Stmt(f"SELECT group_concat(c1) FROM {t.name}", concat_cols=frozenset({0})),
        Stmt(f"SELECT count(*), sum(c2) FROM {t.name} WHERE 0", ordered=True),
        Stmt(f"UPDATE {t.name} SET c2 = c2 * 2 WHERE k < 3", write_table=t.name),
        Stmt(f"DELETE FROM {t.name} WHERE c1 IS NULL", write_table=t.name),
        Stmt(f"INSERT INTO {t.name} (c1) SELECT c1 FROM {t.name}", write_table=t.name),
        Stmt(f"INSERT INTO {t.name} (k, c1) VALUES (?, ?)", (1, "dup"), write_table=t.name),
    ]
    harness = Differential(diff_conn, split_ranges=RANGES, split_mode=SPLITS)
    harness.run_case(Case([t], {t.name: rows}, stmts))
    assert harness.stats.mismatches == 0
    # Multi-range writes answer 0A000 until transactions land; the harness counts them.
    assert harness.stats.queries + harness.stats.skipped >= len(stmts)


def test_harness_reports_a_mismatch_readably() -> None:
    """The harness itself: a wrong answer becomes a readable Mismatch (no cluster needed)."""
    import sqlite3

    class Wrong:
        """A fake atlasql that drops the last row of every result."""

        def __init__(self) -> None:
            self.db = sqlite3.connect(":memory:", isolation_level=None)

        def execute(self, sql: str, params: tuple[object, ...] = ()) -> object:
            cur = self.db.execute(sql, params)

            class C:
                description = cur.description
                rowcount = cur.rowcount
                _rows = cur.fetchall()[:-1]

                def fetchall(self) -> list[tuple[object, ...]]:
                    return self._rows

            return C()

        def executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None:
            self.db.executemany(sql, rows)

    t = Table("w", (Column("c1", "INTEGER"),), ipk=False)
    harness = Differential(Wrong(), split_mode="off")
    with pytest.raises(Mismatch) as info:
        harness.run_case(Case([t], {"w": [(1,), (2,)]}, []))
    text = str(info.value)
    assert "CREATE TABLE w (c1 INTEGER);" in text
    assert "INSERT INTO w VALUES (2);" in text
    assert "SELECT rowid, * FROM w ORDER BY rowid" in text
    assert "-- atlasql:" in text and "-- sqlite3:" in text


# ---------------------------------------------------------------------------------------------
# One minimal repro per entry of KNOWN_GAPS. They are strict xfails: when a bug is fixed the
# test XPASSes and fails the run, as a reminder to drop the entry from KNOWN_GAPS (the
# generator then covers the construct again).
# ---------------------------------------------------------------------------------------------


def _q(conn: object, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    cur = conn.execute(sql, params)  # type: ignore[attr-defined]
    return list(cur.fetchall()) if cur.description is not None else []


def test_drop_table_and_index_work(diff_conn: object) -> None:
    name = f"d{next(_counter)}_drop"
    _q(diff_conn, f"CREATE TABLE {name} (a)")
    _q(diff_conn, f"CREATE INDEX {name}_i ON {name}(a)")
    _q(diff_conn, f"DROP INDEX {name}_i")
    _q(diff_conn, f"DROP TABLE {name}")
    _q(diff_conn, f"DROP TABLE IF EXISTS {name}")


def test_rowcount_with_returning(diff_conn: object) -> None:
    name = f"d{next(_counter)}_ret"
    _q(diff_conn, f"CREATE TABLE {name} (k INTEGER PRIMARY KEY)")
    cur = diff_conn.execute(f"INSERT INTO {name} (k) VALUES (?) RETURNING k", (None,))  # type: ignore[attr-defined]
    assert cur.fetchall() == [(1,)]
    assert cur.rowcount == 1  # as sqlite3


def test_rowid_exhaustion_is_refused_and_replicas_stay_identical(diff_conn: object) -> None:
    name = f"d{next(_counter)}_max"
    _q(diff_conn, f"CREATE TABLE {name} (k INTEGER PRIMARY KEY, v)")
    _q(diff_conn, f"INSERT INTO {name} VALUES (9223372036854775807, 1)")
    with pytest.raises(sqlfront.DataError, match="largest rowid"):
        _q(diff_conn, f"INSERT INTO {name} (v) VALUES (2)")
    rows = _q(diff_conn, f"CHECK CONSISTENCY FROM TABLE {name}")
    assert rows and all(r[-1] == "consistent" for r in rows), rows


def test_rowid_in_join(diff_conn: object) -> None:
    r, s = f"d{next(_counter)}_r", f"d{next(_counter)}_s"
    _q(diff_conn, f"CREATE TABLE {r} (v)")
    _q(diff_conn, f"CREATE TABLE {s} (w)")
    _q(diff_conn, f"INSERT INTO {r} VALUES (10), (20)")
    _q(diff_conn, f"INSERT INTO {s} VALUES (20)")
    _q(diff_conn, f"DELETE FROM {r} WHERE v = 10")
    assert _q(diff_conn, f"SELECT {r}.rowid, v FROM {r} JOIN {s} ON v = w") == [(2, 20)]

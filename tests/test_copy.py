"""Bulk load (issue 7): \\copy loads a CSV through batched executemany (each batch one atomic
Raft entry), reports a malformed line by number without loading anything, and writes tables
back out as CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

import sqlfront
from tests.cluster import atlasql


@pytest.fixture
def cluster(module_cluster: Any) -> Any:
    return module_cluster


def test_copy_100k_rows_in_and_out(cluster: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "score"])
        for i in range(100_000):
            w.writerow([i, f"user{i}", "" if i % 10 == 0 else i * 1.5])
    out = tmp_path / "out.csv"
    res = atlasql(
        "sql",
        "--host",
        cluster.addr(1),
        "-e",
        "CREATE TABLE cp(id INTEGER PRIMARY KEY, name TEXT, score REAL)",
        "-e",
        f"\\copy cp FROM '{src}' WITH HEADER",
        "-e",
        f"\\copy cp TO '{out}' WITH HEADER",
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "COPY 100000" in res.stdout
    conn = sqlfront.connect(cluster.addr(2))
    assert conn.execute("SELECT count(*), count(score), max(name) FROM cp").fetchone() == (
        100_000,
        90_000,
        "user99999",
    )
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name", "score"] and len(rows) == 100_001
    assert rows[1] == ["0", "user0", ""]


def test_malformed_line_is_reported_and_nothing_loads(cluster: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("1,a\n2,b\n3\n4,d\n")
    res = atlasql(
        "sql",
        "--host",
        cluster.addr(1),
        "-e",
        "CREATE TABLE cb(id INTEGER PRIMARY KEY, v TEXT)",
        "-e",
        f"\\copy cb FROM '{bad}'",
    )
    assert res.returncode == 1
    assert "line 3: expected 2 fields, found 1; nothing was loaded" in res.stderr
    conn = sqlfront.connect(cluster.addr(1))
    assert conn.execute("SELECT count(*) FROM cb").fetchone() == (0,)
    dup = tmp_path / "dup.csv"
    dup.write_text("1,a\n2,b\n1,again\n")
    res = atlasql("sql", "--host", cluster.addr(1), "-e", f"\\copy cb FROM '{dup}'")
    assert res.returncode == 1 and "UNIQUE constraint failed" in res.stderr
    assert conn.execute("SELECT count(*) FROM cb").fetchone() == (0,)  # the batch is atomic


def test_executemany_is_one_atomic_batch(cluster: Any) -> None:
    conn = sqlfront.connect(cluster.addrs())
    conn.execute("CREATE TABLE em(id INTEGER PRIMARY KEY, x)")
    cur = conn.cursor()
    cur.executemany("INSERT INTO em VALUES (?, ?)", [(i, i * 2) for i in range(5000)])
    assert cur.rowcount == 5000
    with pytest.raises(sqlfront.IntegrityError, match="row 3 of the batch"):
        cur.executemany("INSERT INTO em VALUES (?, ?)", [(9001, 1), (9002, 2), (1, 3)])
    assert conn.execute("SELECT count(*) FROM em").fetchone() == (5000,)
    cur.executemany("INSERT INTO em(x) VALUES (random())", [()] * 4)
    assert conn.execute("SELECT count(DISTINCT x) FROM em WHERE id >= 5000").fetchone() == (4,)

"""Range splits (distributed SQL issue, item 3): ``ALTER TABLE t SPLIT AT VALUES``, online under
a concurrent insert load, across a restart of a lagging replica, and the errors users get."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import sqlfront
from tests.cluster import Cluster, wait_for

WRITERS = 6


def _ranges(conn: sqlfront.Connection, table: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(f"SHOW RANGES FROM TABLE {table}").fetchall()]


def _replica_keys(path: Path, table: str) -> list[int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return [int(r[0]) for r in db.execute(f"SELECT k FROM {table} ORDER BY k")]
    finally:
        db.close()


def test_fifty_ranges_split_under_insert_load(module_cluster: Cluster) -> None:
    """6 clients insert distinct keys through all three nodes while the table is split into
    50 ranges; every acknowledged row is there exactly once, in exactly one range."""
    c = module_cluster
    setup = sqlfront.connect(c.addrs())
    setup.execute("CREATE TABLE load(k INTEGER PRIMARY KEY, client INTEGER, n INTEGER)")
    preload = [(k, -1, k) for k in range(-50_000, 0, 97)]  # below every writer's key
    setup.executemany("INSERT INTO load VALUES (?, ?, ?)", preload)
    preloaded = len(preload)
    stop = threading.Event()
    acked: list[list[int]] = [[] for _ in range(WRITERS)]
    errors: list[str] = []

    def writer(w: int) -> None:
        conn = sqlfront.connect(c.addr(1 + w % 3))  # gateways on every node
        rng = random.Random(w)
        n = 0
        while not stop.is_set():
            k = rng.randrange(0, 50_000) * WRITERS + w  # writers never share a key
            try:
                conn.execute("INSERT INTO load VALUES (?, ?, ?)", (k, w, n))
                acked[w].append(k)
            except sqlfront.IntegrityError:
                pass  # the writer drew the same key twice: SQLite says so too
            except sqlfront.Error as exc:
                errors.append(f"writer {w}: {exc}")
            n += 1
        conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        top = 50_000 * WRITERS
        points = sorted(random.Random(7).sample(range(1, top), 49))
        random.Random(8).shuffle(points)  # splits land all over the key space, in any order
        for p in points:
            setup.execute(f"ALTER TABLE load SPLIT AT VALUES ({p})")
    finally:
        time.sleep(0.5)  # let the writers overlap the last split's aftermath
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    ranges = _ranges(setup, "load")
    assert len(ranges) == 50
    # Spans tile the key space: each starts where the previous ended.
    assert ranges[0][2] == "-inf" and ranges[-1][3] == "+inf"
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a[3] == b[2]
    want = sorted(k for ks in acked for k in ks)
    assert len(want) > 200, "the writers made too little progress to prove anything"
    assert len(set(want)) == len(want)
    got = [int(r[0]) for r in setup.execute("SELECT k FROM load WHERE client >= 0 ORDER BY k")]
    assert got == want  # nothing lost, nothing applied twice
    (total,) = setup.execute("SELECT count(*) FROM load").fetchone()
    assert total == preloaded + len(want)  # no row is held by two ranges
    checks = setup.execute("CHECK CONSISTENCY FROM TABLE load").fetchall()
    assert len(checks) == 150 and all(r[4] == "consistent" for r in checks), [
        r for r in checks if r[4] != "consistent"
    ]
    # Each node's replica files hold exactly the rows of their spans.
    for node in (1, 2, 3):
        keys: list[int] = []
        for r in ranges:
            keys += _replica_keys(c.data_dir(node) / "ranges" / f"r{r[0]}.sqlite", "load")
        assert sorted(keys) == sorted(set(keys)) and len(keys) == total
    setup.close()


def test_split_while_a_replica_is_down(tmp_path: Path) -> None:
    """A replica that missed the splits applies them from the log when it returns (or gets the
    new ranges by snapshot) and ends up identical to the others."""
    c = Cluster(tmp_path, n=3)
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE s(k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO s VALUES (?, ?)", [(k, f"v{k}") for k in range(300)])
        c.kill(3)
        conn.execute("ALTER TABLE s SPLIT AT VALUES (100), (200)")
        conn.executemany("INSERT INTO s VALUES (?, ?)", [(k, "late") for k in range(300, 320)])
        conn.execute("UPDATE s SET v = 'moved' WHERE k = 150")
        c.start(3)
        ranges = _ranges(conn, "s")
        assert [r[2] for r in ranges] == ["-inf", "/100", "/200"]

        def converged() -> bool:
            rows = conn.execute("CHECK CONSISTENCY FROM TABLE s").fetchall()
            return len(rows) == 9 and all(r[4] == "consistent" for r in rows)

        wait_for("n3 caught up with the splits", converged, timeout=60, interval=0.5)
        keys = []
        for r in ranges:
            keys += _replica_keys(c.data_dir(3) / "ranges" / f"r{r[0]}.sqlite", "s")
        assert sorted(keys) == list(range(320))
        assert conn.execute("SELECT v FROM s WHERE k = 150").fetchone() == ("moved",)
        conn.close()
    finally:
        c.stop_all()


@pytest.mark.parametrize(
    ("statement", "code", "words"),
    [
        ("ALTER TABLE nope SPLIT AT VALUES (1)", "42P01", "no such table"),
        ("ALTER TABLE e1 SPLIT AT VALUES ('x')", "42804", "must be a number"),
        ("ALTER TABLE e1 SPLIT AT VALUES (1, 2)", "42601", "1 to 1 values"),
        ("ALTER TABLE e2 SPLIT AT VALUES (5)", "0A000", "UNIQUE"),
        ("ALTER TABLE e1 SPLIT AT VALUES (", "42601", ""),
    ],
)
def test_split_errors(module_cluster: Cluster, statement: str, code: str, words: str) -> None:
    conn = sqlfront.connect(module_cluster.addrs())
    conn.execute("CREATE TABLE IF NOT EXISTS e1(k INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE IF NOT EXISTS e2(k INTEGER PRIMARY KEY, u TEXT UNIQUE)")
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute(statement)
    assert info.value.sqlstate == code
    assert words in str(info.value)
    conn.close()


def test_multi_range_writes_are_atomic_and_point_writes_route(module_cluster: Cluster) -> None:
    conn = sqlfront.connect(module_cluster.addrs())
    conn.execute("CREATE TABLE w(k INTEGER PRIMARY KEY, v INTEGER)")
    conn.executemany("INSERT INTO w VALUES (?, ?)", [(k, 0) for k in range(30)])
    conn.execute("ALTER TABLE w SPLIT AT VALUES (10), (20)")
    second = conn.execute("SHOW RANGES FROM TABLE w").fetchall()[1][0]
    again = conn.execute("ALTER TABLE w SPLIT AT VALUES (10)").fetchone()
    assert (again[0], again[1]) == (second, second)  # an existing boundary: nothing changes
    assert len(conn.execute("SHOW RANGES FROM TABLE w").fetchall()) == 3
    # Writes across ranges run as (implicit) transactions: all or nothing.
    assert conn.execute("UPDATE w SET v = 1").rowcount == 30
    assert conn.execute("SELECT count(*), sum(v) FROM w").fetchone() == (30, 30)
    with pytest.raises(sqlfront.IntegrityError):  # 31 is new, 5 exists: neither row lands
        conn.execute("INSERT INTO w VALUES (31, 1), (5, 1)")
    assert conn.execute("SELECT count(*) FROM w WHERE k = 31").fetchone() == (0,)
    assert conn.execute("INSERT INTO w VALUES (31, 1), (-1, 1)").rowcount == 2
    assert conn.execute("SELECT count(*), sum(v) FROM w").fetchone() == (32, 32)
    assert conn.execute("DELETE FROM w WHERE k > 30 OR k < 0").rowcount == 2
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("INSERT INTO w SELECT k + 100, v FROM w")
    assert info.value.sqlstate == "0A000"
    assert conn.execute("UPDATE w SET v = 0").rowcount == 30
    assert conn.execute("SELECT count(*), sum(v) FROM w").fetchone() == (30, 0)
    cur = conn.execute("UPDATE w SET v = 7 WHERE k IN (11, 12) AND v = 0")
    assert cur.rowcount == 2
    conn.execute("DELETE FROM w WHERE k BETWEEN 20 AND 24")
    conn.execute("INSERT INTO w VALUES (35, 1), (36, 1)")
    conn.execute("INSERT INTO w(v) VALUES (9)")  # automatic rowid: in the last range
    assert conn.execute("SELECT k FROM w WHERE v = 9").fetchone() == (37,)
    assert conn.execute("SELECT count(*), sum(v) FROM w").fetchone() == (28, 25)
    ranges = conn.execute("SHOW RANGES FROM TABLE w").fetchall()
    for key, index in ((5, 0), (10, 1), (19, 1), (20, 2), (10**12, 2)):
        (row,) = conn.execute(f"SHOW RANGE FROM TABLE w FOR ROW ({key})").fetchall()
        assert row[0] == ranges[index][0] and row[1] == ranges[index][2], (key, row)
    with pytest.raises(sqlfront.DatabaseError):
        conn.execute("SHOW RANGE FROM TABLE w FOR ROW (1, 2)")
    assert conn.execute("SELECT k FROM w WHERE k > 8 AND k < 13 ORDER BY k DESC").fetchall() == [
        (12,),
        (11,),
        (10,),
        (9,),
    ]
    conn.close()


def test_explain_shows_the_distributed_plan(module_cluster: Cluster) -> None:
    conn = sqlfront.connect(module_cluster.addr(2))
    conn.execute("CREATE TABLE x(k INTEGER PRIMARY KEY, g INTEGER, v TEXT)")
    conn.executemany("INSERT INTO x VALUES (?, ?, ?)", [(k, k % 5, f"v{k}") for k in range(90)])
    conn.execute("ALTER TABLE x SPLIT AT VALUES (30), (60)")

    def what(sql: str) -> list[str]:
        return [str(r[2]) for r in conn.execute(sql).fetchall()]

    point = what("EXPLAIN SELECT v FROM x WHERE k = 45")
    assert point[0] == "plan: runs whole on one range" and len(point) == 2
    agg = conn.execute("EXPLAIN SELECT g, count(*), avg(k) FROM x GROUP BY g").fetchall()
    assert agg[0][2] == "plan: partial aggregates on 3 ranges"
    assert [str(r[1]).split()[0] for r in agg[1:4]] == ["r" + str(r[0]) for r in _ranges(conn, "x")]
    assert agg[-1][1] == "gateway n2" and "merge partials" in agg[-1][2]
    gather = what("EXPLAIN SELECT * FROM x WHERE v LIKE 'v1%' ORDER BY k LIMIT 2")
    assert gather[0] == "plan: rows from 3 ranges, finished at the gateway"
    assert all("WHERE v LIKE 'v1%'" in w for w in gather[1:4])  # the filter is pushed down
    ranged = what("EXPLAIN SELECT count(*) FROM x WHERE k >= 35 AND k < 70")
    assert ranged[0] == "plan: partial aggregates on 2 ranges"
    spread = what("EXPLAIN DELETE FROM x WHERE g = 1")
    assert spread[:3] == ["provisional write (changeset) on the leader"] * 3
    assert spread[3].startswith("two-phase commit: 2 intents")
    assert what("EXPLAIN INSERT INTO x SELECT * FROM x")[0].startswith("refused (0A000)")
    assert what("EXPLAIN UPDATE x SET v = 'y' WHERE k = 70")[0].startswith("one Raft entry")
    analyzed = conn.execute("EXPLAIN ANALYZE SELECT g, count(*) FROM x GROUP BY g").fetchall()
    assert len(analyzed) == 5 and all(float(r[3]) >= 0 for r in analyzed)
    assert analyzed[-1][2] == "total (5 rows returned)"
    # The plans' answers are SQLite's.
    assert conn.execute("SELECT g, count(*), avg(k) FROM x GROUP BY g").fetchall() == [
        (g, 18, float(sum(range(g, 90, 5))) / 18) for g in range(5)
    ]
    conn.close()


def test_ranges_split_automatically_past_the_size_threshold(tmp_path: Path) -> None:
    """--range-max-bytes 256KiB: a table loaded with ~2 MB splits by itself while the load
    goes on; nothing is lost and the replicas agree."""
    c = Cluster(tmp_path, n=3, extra_args=("--range-max-bytes", "256KiB"))
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        conn.execute("CREATE TABLE big(k INTEGER PRIMARY KEY, pad TEXT)")
        pad = "x" * 1000
        for start in range(0, 2000, 100):  # ascending keys: batches land in the last range
            conn.executemany(
                "INSERT INTO big VALUES (?, ?)", [(k, pad) for k in range(start, start + 100)]
            )
        wait_for(
            "automatic splits",
            lambda: len(_ranges(conn, "big")) >= 4,
            timeout=90,
            interval=0.5,
        )
        assert conn.execute("SELECT count(*), min(k), max(k) FROM big").fetchone() == (
            2000,
            0,
            1999,
        )
        checks = conn.execute("CHECK CONSISTENCY FROM TABLE big").fetchall()
        assert all(r[4] == "consistent" for r in checks), checks
        conn.close()
    finally:
        c.stop_all()


def test_alter_table_reaches_every_range_and_old_plans_are_refused(
    module_cluster: Cluster,
) -> None:
    import grpc

    from proto import pb, rpc
    from raftgroups import SECRET_METADATA_KEY

    c = module_cluster
    conn = sqlfront.connect(c.addrs())
    conn.execute("CREATE TABLE alt(k INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX alt_v ON alt(v)")
    conn.executemany("INSERT INTO alt VALUES (?, ?)", [(k, f"v{k}") for k in range(60)])
    conn.execute("ALTER TABLE alt SPLIT AT VALUES (20), (40)")
    conn.execute("ALTER TABLE alt ADD COLUMN n INTEGER DEFAULT 3")
    conn.execute("ALTER TABLE alt RENAME COLUMN v TO label")
    assert conn.execute("SELECT count(*), sum(n) FROM alt").fetchone() == (60, 180)
    assert conn.execute("SELECT label FROM alt WHERE k = 45").fetchone() == ("v45",)
    conn.execute("INSERT INTO alt(k, label, n) VALUES (100, 'x', 1)")
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("ALTER TABLE alt ADD COLUMN bad NOT NULL")  # SQLite refuses: no range changes
    assert "NOT NULL" in str(info.value)
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("ALTER TABLE alt RENAME TO other")
    assert info.value.sqlstate == "0A000"
    # Every replica of every range holds the new schema (the index follows the rename).
    ranges = _ranges(conn, "alt")
    for r in ranges:
        for node in (1, 2, 3):
            db = sqlite3.connect(f"file:{c.data_dir(node)}/ranges/r{r[0]}.sqlite?mode=ro", uri=True)
            try:
                cols = [row[1] for row in db.execute("PRAGMA table_info(alt)")]
                index = db.execute("SELECT sql FROM sqlite_schema WHERE name = 'alt_v'").fetchone()
            finally:
                db.close()
            assert cols == ["k", "label", "n"], (r[0], node, cols)
            assert index is not None and "label" in index[0]
    # A statement planned against the old schema version is refused by the range.
    with grpc.insecure_channel(c.addr(1)) as ch:
        cat = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
        table = next(t for t in cat.tables if t.name == "alt")
        desc = next(d for d in cat.ranges if d.range_id == ranges[0][0])
        old = pb.SqlRead(
            sql="SELECT v FROM alt",
            span=pb.Span(start_key=desc.start_key, end_key=desc.end_key),
            schema_version=table.schema_version - 1,
        )
        meta = ((SECRET_METADATA_KEY, c.secret),)
        answers = set()
        for node_addr in (c.addr(i) for i in (1, 2, 3)):
            with grpc.insecure_channel(node_addr) as ch2:
                resp = rpc.InternalStub(ch2).RangeExecute(
                    pb.RangeRequest(range_id=desc.range_id, command=pb.Command(read=old)),
                    metadata=meta,
                    timeout=10,
                )
                answers.add(resp.result.error.code or resp.error.code)
        assert "AQ007" in answers  # the leader refuses; followers answer "not leader"
    conn.close()


def test_databases_hold_their_own_tables(module_cluster: Cluster) -> None:
    conn = sqlfront.connect(module_cluster.addrs())
    conn.execute("CREATE DATABASE shop")
    conn.execute("CREATE DATABASE IF NOT EXISTS shop")
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("CREATE DATABASE shop")
    assert info.value.sqlstate == "42P04"
    conn.execute("CREATE TABLE shop.items(id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, other TEXT)")  # defaultdb
    conn.execute("INSERT INTO shop.items VALUES (1, 'book'), (20, 'pen')")
    conn.execute("INSERT INTO items VALUES (1, 'default')")
    assert conn.execute("SELECT name FROM shop.items ORDER BY id").fetchall() == [
        ("book",),
        ("pen",),
    ]
    conn.execute("USE shop")
    assert conn.database == "shop"
    conn.execute("ALTER TABLE items SPLIT AT VALUES (10)")
    conn.execute("CREATE INDEX items_name ON items(name)")
    assert [r[2] for r in conn.execute("SHOW RANGES FROM TABLE items")] == ["-inf", "/10"]
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
    assert conn.execute("SELECT other FROM defaultdb.items").fetchone() == ("default",)
    assert conn.execute("SHOW TABLES").fetchall() == [("items",)]
    assert ("shop",) in conn.execute("SHOW DATABASES").fetchall()
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("SELECT * FROM items JOIN defaultdb.items USING (id)")
    assert info.value.sqlstate == "0A000"
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("USE nowhere")
    assert info.value.sqlstate == "3D000"
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("DROP DATABASE shop")
    assert info.value.sqlstate == "2BP01"
    conn.execute("SET database = defaultdb")
    conn.execute("DROP DATABASE shop CASCADE")
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("SELECT * FROM shop.items")
    assert info.value.sqlstate == "3D000"
    assert conn.execute("SELECT other FROM items").fetchone() == ("default",)
    # The dropped database's replicas go away on every node.
    ranges = {r[0] for r in conn.execute("SHOW RANGES").fetchall()}

    def gone() -> bool:
        held = {
            int(p.stem[1:])
            for node in (1, 2, 3)
            for p in (module_cluster.data_dir(node) / "ranges").glob("r*.sqlite")
        }
        return held <= ranges | {1} | _other_tables(conn)

    wait_for("the dropped database's replicas removed", gone, timeout=30)
    conn.close()


def _other_tables(conn: sqlfront.Connection) -> set[int]:
    out: set[int] = set()
    for (db,) in conn.execute("SHOW DATABASES").fetchall():
        conn.execute(f"USE {db}")
        out |= {int(r[0]) for r in conn.execute("SHOW RANGES").fetchall()}
    conn.execute("USE defaultdb")
    return out


def test_split_child_keeps_tables_whose_names_look_like_internal_ones(tmp_path: Path) -> None:
    """The new range of a split gets every user table of the old one: only atlasql's own
    ``_atlas_*`` tables stay behind (a LIKE pattern without escapes also dropped names such
    as ``matlas1``, whose rows the new range then lacked)."""
    from storage import Engine
    from storage.keys import encode_prefix

    source = Engine(str(tmp_path / "r1.sqlite"))
    source.apply(1, lambda e: e.execute("CREATE TABLE matlas1(id INTEGER PRIMARY KEY, v TEXT)"))
    source.apply(2, lambda e: e.execute("INSERT INTO matlas1 VALUES (1, 'a'), (9, 'b')"))
    source.close()
    copied = Engine.create_split_child(
        str(tmp_path / "r1.sqlite"),
        str(tmp_path / "r2.sqlite"),
        table="matlas1",
        start_key=encode_prefix([5]),
        end_key=b"",
        base_index=3,
        voters=[1, 2, 3],
        non_voters=[],
        generation=1,
    )
    assert copied == 1
    child = Engine(str(tmp_path / "r2.sqlite"))
    assert list(child.query("SELECT id, v FROM matlas1").rows) == [(9, "b")]
    child.close()


def test_without_rowid_tables(module_cluster: Cluster) -> None:
    """SQLite's WITHOUT ROWID tables (the parser does not know the clause: it is kept in
    the table's definition), split and read back across ranges."""
    conn = sqlfront.connect(module_cluster.addrs())
    conn.execute("CREATE TABLE wr(name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID")
    conn.executemany("INSERT INTO wr VALUES (?, ?)", [(f"k{i:03d}", i) for i in range(40)])
    conn.execute("ALTER TABLE wr SPLIT AT VALUES ('k020')")
    assert conn.execute("SELECT count(*), sum(n) FROM wr").fetchone() == (40, sum(range(40)))
    with pytest.raises(sqlfront.ProgrammingError, match="no such column: rowid"):
        conn.execute("SELECT rowid FROM wr")
    conn.close()

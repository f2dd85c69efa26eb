"""Geo-partitioning (geo issue): database regions and survival goals compile into placement
rules that the allocator enforces one step at a time; leaders go home; SHOW ... WITH DETAILS
says what the allocator is doing. Real node processes with localities."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

import sqlfront
from proto import pb, rpc
from tests.cluster import Cluster, wait_for

REGIONS = {
    1: "us-east",
    2: "us-east",
    3: "us-east",
    4: "us-west",
    5: "us-west",
    6: "eu-west",
    7: "eu-west",
}


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path_factory.mktemp("geo"),
        n=7,
        regions=REGIONS,
        extra_args=("--dead-node-timeout", "8"),
    )
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addrs())
        wait_for(
            "every node registered",
            lambda: len(conn.execute("SHOW NODES").fetchall()) == len(REGIONS),
            timeout=30,
        )
        conn.close()
        yield c
    finally:
        c.stop_all()


def _details(conn: sqlfront.Connection, table: str) -> list[tuple[object, ...]]:
    return [
        tuple(r) for r in conn.execute(f"SHOW RANGES FROM TABLE {table} WITH DETAILS").fetchall()
    ]


def _nodes(text: object) -> list[tuple[int, str]]:
    """'n1(us-east),n4(us-west)' -> [(1, 'us-east'), (4, 'us-west')]"""
    out = []
    for part in str(text).split(","):
        if part:
            node, region = part.rstrip(")").split("(")
            out.append((int(node[1:]), region))
    return out


def _use_three_region_db(conn: sqlfront.Connection, name: str) -> None:
    """Create (if needed) and use database ``name``: primary us-east, with us-west and eu-west."""
    conn.execute(
        f"CREATE DATABASE IF NOT EXISTS {name} PRIMARY REGION 'us-east'"
        " REGIONS 'us-west', 'eu-west'"
    )
    conn.execute(f"USE {name}")


def _placed(conn: sqlfront.Connection, table: str) -> bool:
    return all(
        str(r[9]).startswith(("placement matches", "spreading leaders"))
        for r in _details(conn, table)
    )


def test_zone_survival_places_voters_home_and_non_voters_elsewhere(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addrs())
    conn.execute("CREATE DATABASE shop PRIMARY REGION 'us-east' REGIONS 'us-west', 'eu-west'")
    conn.execute("USE shop")
    assert conn.execute("SHOW SURVIVAL GOAL FROM DATABASE shop").fetchone() == ("shop", "zone")
    conn.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT)")
    conn.execute(
        "CREATE TABLE west(id INTEGER PRIMARY KEY, v TEXT) LOCALITY REGIONAL BY TABLE IN 'us-west'"
    )
    conn.execute("INSERT INTO orders VALUES (1, 'book')")
    wait_for("orders placed", lambda: _placed(conn, "orders"), timeout=60, interval=0.5)
    (row,) = _details(conn, "orders")
    assert row[4] == "us-east" and row[6] == "us-east"  # home region, leader's region
    assert {r for _, r in _nodes(row[7])} == {"us-east"} and len(_nodes(row[7])) == 3
    assert sorted(r for _, r in _nodes(row[8])) == ["eu-west", "us-west"]
    # us-west has only two nodes for three voters: the closest placement, and it says so.
    wait_for("west placed", lambda: _placed(conn, "west"), timeout=60, interval=0.5)
    (row,) = _details(conn, "west")
    regions = sorted(r for _, r in _nodes(row[7]))
    assert regions.count("us-west") == 2 and len(regions) == 3
    assert row[6] == "us-west"
    assert "closest possible" in str(row[9]) and "us-west has 2 nodes" in str(row[9])
    # Re-homing a table moves its voters and its leader.
    conn.execute("ALTER TABLE orders SET LOCALITY REGIONAL BY TABLE IN 'eu-west'")

    def moved() -> bool:
        (r,) = _details(conn, "orders")
        return r[6] == "eu-west" and [x for _, x in _nodes(r[7])].count("eu-west") == 2

    wait_for("orders re-homed to eu-west", moved, timeout=90, interval=0.5)
    assert conn.execute("SELECT item FROM orders WHERE id = 1").fetchone() == ("book",)
    conn.close()


def test_region_survival_and_leaders_return_home(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addrs())
    conn.execute(
        "CREATE DATABASE bank PRIMARY REGION 'us-east' REGIONS 'us-west', 'eu-west'"
        " SURVIVE REGION FAILURE"
    )
    conn.execute("USE bank")
    conn.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER)")
    conn.executemany("INSERT INTO accounts VALUES (?, 100)", [(i,) for i in range(10)])
    wait_for("accounts placed", lambda: _placed(conn, "accounts"), timeout=90, interval=0.5)
    (row,) = _details(conn, "accounts")
    voters = _nodes(row[7])
    assert len(voters) == 5
    assert sorted(r for _, r in voters).count("us-east") == 2
    assert {r for _, r in voters} == {"us-east", "us-west", "eu-west"}
    range_id = int(str(row[0]))
    # An operator moves the leader out of its home region: the allocator brings it back.
    away = next(n for n, r in voters if r != "us-east")
    conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO {away}")
    assert _details(conn, "accounts")[0][6] != "us-east"
    wait_for("leader back home", lambda: _details(conn, "accounts")[0][6] == "us-east", timeout=20)
    # Kill the node leading it: writes resume on a surviving voter; after the restart the
    # leadership is back in us-east.
    leader = int(str(_details(conn, "accounts")[0][5])[1:])
    geo.kill(leader)
    survivor = sqlfront.connect(geo.addrs(*[i for i in REGIONS if i != leader]))
    survivor.execute("USE bank")
    started = time.monotonic()
    wait_for(
        "a write after the leader died",
        lambda: survivor.execute("UPDATE accounts SET balance = balance - 1 WHERE id = 1"),
        timeout=30,
        interval=0.05,
    )
    failover = time.monotonic() - started
    geo.start(leader)
    wait_for(
        "leader home after the restart",
        lambda: _details(survivor, "accounts")[0][6] == "us-east",
        timeout=30,
        interval=0.5,
    )
    assert survivor.execute("SELECT balance FROM accounts WHERE id = 1").fetchone() == (99,)
    print(f"failover: first write after the kill succeeded in {failover:.2f}s")
    survivor.close()
    conn.close()


def test_geo_statement_errors(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addrs())
    cases = [
        ("CREATE DATABASE mars PRIMARY REGION 'mars'", "22023", "has no nodes"),
        ("CREATE DATABASE two PRIMARY REGION 'us-east' SURVIVE REGION FAILURE", "22023", "3"),
        ("CREATE TABLE plain(id INTEGER PRIMARY KEY) LOCALITY GLOBAL", "22023", "no regions"),
        ("CREATE TABLE r(id INTEGER PRIMARY KEY) LOCALITY REGIONAL BY ROW", "22023", "no regions"),
        ("ALTER DATABASE nowhere ADD REGION 'us-west'", "3D000", "nowhere"),
    ]
    for sql, code, words in cases:
        with pytest.raises(sqlfront.DatabaseError) as info:
            conn.execute(sql)
        assert info.value.sqlstate == code, sql
        assert words in str(info.value), (sql, str(info.value))
    nodes = conn.execute("SHOW NODES").fetchall()
    assert [(r[0], r[2]) for r in nodes] == sorted(REGIONS.items())
    regions = {r[0]: r[2] for r in conn.execute("SHOW REGIONS").fetchall()}
    assert regions == {"eu-west": "n6,n7", "us-east": "n1,n2,n3", "us-west": "n4,n5"}
    conn.close()


def test_gateway_region(geo: Cluster) -> None:
    for node, region in ((1, "us-east"), (5, "us-west"), (7, "eu-west")):
        conn = sqlfront.connect(geo.addr(node))
        assert conn.execute("SELECT gateway_region()").fetchone() == (region,)
        conn.close()


def test_follower_reads_serve_nearby_and_refuse_when_stale(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addr(1))
    _use_three_region_db(conn, "reads")
    conn.execute("CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO kv VALUES (1, 'a')")
    wait_for("kv placed", lambda: _placed(conn, "kv"), timeout=60, interval=0.5)
    (row,) = _details(conn, "kv")
    eu_replica = next(n for n, r in _nodes(row[8]) if r == "eu-west")
    west = sqlfront.connect(geo.addr(eu_replica))
    west.execute("USE reads")

    def served_by(sql: str) -> str:
        return str(west.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1])

    stale_sql = "SELECT v FROM kv AS OF SYSTEM TIME follower_read_timestamp() WHERE k = 1"
    # A local replica answers: the hop stays in eu-west (once the just-placed replica has
    # caught up: "placement matches" does not say it is fresh enough yet).
    local = f"r{row[0]} on n{eu_replica} (follower read) eu-west->eu-west"
    wait_for("the eu-west replica serves", lambda: served_by(stale_sql) == local, timeout=20)
    # A consistent read crosses to the leader in us-east, and EXPLAIN ANALYZE says so.
    consistent = served_by("SELECT v FROM kv WHERE k = 1")
    assert consistent.endswith("eu-west->us-east"), consistent
    assert west.execute(stale_sql).fetchone() == ("a",)
    conn.execute("UPDATE kv SET v = 'b' WHERE k = 1")
    wait_for(
        "the follower read sees the write",
        lambda: (
            west.execute(
                "SELECT v FROM kv AS OF SYSTEM TIME with_max_staleness('10s') WHERE k = 1"
            ).fetchone()
            == ("b",)
        ),
        timeout=15,
    )
    west.execute("SET default_transaction_use_follower_reads = on")
    assert "(follower read)" in served_by("SELECT v FROM kv WHERE k = 1")
    west.execute("SET default_transaction_use_follower_reads = off")
    assert "(follower read)" not in served_by("SELECT v FROM kv WHERE k = 1")
    for sql, code in (
        ("INSERT INTO kv AS OF SYSTEM TIME follower_read_timestamp() VALUES (2, 'x')", "0A000"),
        ("SELECT v FROM kv AS OF SYSTEM TIME with_max_staleness('soon')", "22023"),
    ):
        with pytest.raises(sqlfront.DatabaseError) as info:
            west.execute(sql)
        assert info.value.sqlstate == code, sql
    # Cut the eu-west replica off from us-east (where the voters are) and write: once it is
    # staler than the bound it refuses, and a gateway next to it reads elsewhere.
    east = [n for n, r in REGIONS.items() if r == "us-east"]
    geo.inject(eu_replica, pb.FaultRequest(heal=True, partition=east))
    for n in east:
        geo.inject(n, pb.FaultRequest(heal=True, partition=[eu_replica]))
    try:
        conn.execute("UPDATE kv SET v = 'c' WHERE k = 1")
        other = next(n for n, r in REGIONS.items() if r == "eu-west" and n != eu_replica)
        near = sqlfront.connect(geo.addr(other))
        near.execute("USE reads")
        # The cut-off replica answers (with 'b', within the 4.8 s bound) until it is too
        # stale; then a replica that has the write answers.
        wait_for(
            "a fresh enough replica answers",
            lambda: near.execute(stale_sql).fetchone() == ("c",),
            timeout=20,
            interval=0.2,
        )
        hop = str(near.execute("EXPLAIN ANALYZE " + stale_sql).fetchall()[0][1])
        assert f"on n{eu_replica} " not in hop + " ", hop
        near.close()
    finally:
        geo.heal()
    west.close()
    conn.close()


def test_alter_database_regions(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addrs())
    conn.execute("CREATE DATABASE regs PRIMARY REGION 'us-east'")

    def regions() -> list[tuple[object, ...]]:
        return [tuple(r)[1:] for r in conn.execute("SHOW REGIONS FROM DATABASE regs").fetchall()]

    assert regions() == [("us-east", 1)]
    conn.execute("ALTER DATABASE regs ADD REGION 'us-west'")
    assert regions() == [("us-east", 1), ("us-west", 0)]
    conn.execute("ALTER DATABASE regs SET PRIMARY REGION 'us-west'")
    assert regions() == [("us-west", 1), ("us-east", 0)]
    for sql, code in (
        ("ALTER DATABASE regs DROP REGION 'us-west'", "22023"),  # the primary region
        ("ALTER DATABASE regs ADD REGION 'us-east'", "42710"),  # already there
        ("ALTER DATABASE regs ADD REGION 'mars'", "22023"),  # no nodes
        ("ALTER DATABASE regs SURVIVE REGION FAILURE", "22023"),  # needs 3 regions
    ):
        with pytest.raises(sqlfront.DatabaseError) as info:
            conn.execute(sql)
        assert info.value.sqlstate == code, sql
    conn.execute("ALTER DATABASE regs DROP REGION 'us-east'")
    assert regions() == [("us-west", 1)]
    conn.execute("ALTER DATABASE regs ADD REGION 'eu-west'")
    conn.execute("ALTER DATABASE regs ADD REGION 'us-east'")
    conn.execute("ALTER DATABASE regs SURVIVE REGION FAILURE")
    assert conn.execute("SHOW SURVIVAL GOAL FROM DATABASE regs").fetchone() == ("regs", "region")
    conn.execute("USE regs")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY) LOCALITY REGIONAL BY TABLE IN 'eu-west'")
    with pytest.raises(sqlfront.DatabaseError) as info:
        conn.execute("ALTER DATABASE regs DROP REGION 'eu-west'")  # t is homed there
    assert info.value.sqlstate == "2BP01"
    conn.close()


def test_regional_by_row_homes_rows_where_they_are_written(geo: Cluster) -> None:
    """Each region's rows get their own ranges, led from that region; a row without a region
    is homed at the gateway's; changing a row's region re-homes it in one transaction; the
    key stays unique across regions (checked in the other regions on INSERT)."""
    east = sqlfront.connect(geo.addr(1))
    west = sqlfront.connect(geo.addr(4))
    east.execute("CREATE DATABASE rides PRIMARY REGION 'us-east' REGIONS 'us-west', 'eu-west'")
    for conn in (east, west):
        conn.execute("USE rides")
    east.execute(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL) LOCALITY REGIONAL BY ROW"
    )
    ranges = _details(east, "users")
    homes = sorted(str(r[4]) for r in ranges)
    assert len(ranges) == 4 and {"us-east", "us-west", "eu-west"} <= set(homes), ranges
    east.execute("INSERT INTO users(id, name) VALUES (1, 'ann')")
    west.execute("INSERT INTO users(id, name) VALUES (2, 'bob')")
    west.execute("INSERT INTO users(id, name, crdb_region) VALUES (3, 'eve', 'eu-west')")
    got = east.execute("SELECT id, name, crdb_region FROM users ORDER BY id").fetchall()
    assert got == [(1, "ann", "us-east"), (2, "bob", "us-west"), (3, "eve", "eu-west")]
    # The key is unique across regions, not only per region.
    with pytest.raises(sqlfront.IntegrityError, match="region us-east"):
        west.execute("INSERT INTO users(id, name) VALUES (1, 'dup')")
    # Each region's ranges end up led from that region (the allocator moves them home).
    wait_for("REGIONAL BY ROW ranges placed", lambda: _placed(east, "users"), timeout=150)
    for r in _details(east, "users"):
        assert r[6] == r[4], r  # the leader's region is the range's home region
    # Re-homing: updating the region moves the row, atomically, to the new region's range.
    west.execute("UPDATE users SET crdb_region = 'us-west' WHERE id = 1")
    assert east.execute("SELECT crdb_region, name FROM users WHERE id = 1").fetchall() == [
        ("us-west", "ann")
    ]
    assert east.execute("SELECT count(*) FROM users").fetchone() == (3,)
    (row,) = east.execute("SHOW RANGE FROM TABLE users FOR ROW ('us-west', 1)").fetchall()
    west_range = next(r for r in _details(east, "users") if r[4] == "us-west")
    assert row[0] == west_range[0]
    # EXPLAIN shows the cross-region cost of the global uniqueness check.
    plan = [str(r[2]) for r in west.execute("EXPLAIN INSERT INTO users VALUES (9, 'x', 'us-west')")]
    assert sum("uniqueness probe" in p for p in plan) == 2, plan
    assert any("cross-region: us-west->eu-west" in p for p in plan), plan
    # A key declared with the region is unique per region: no probes, the same id twice.
    east.execute(
        "CREATE TABLE visits(crdb_region TEXT NOT NULL, id INTEGER,"
        " PRIMARY KEY (crdb_region, id)) LOCALITY REGIONAL BY ROW"
    )
    east.execute("INSERT INTO visits(id) VALUES (1)")
    west.execute("INSERT INTO visits(id) VALUES (1)")
    assert east.execute("SELECT crdb_region FROM visits ORDER BY 1").fetchall() == [
        ("us-east",),
        ("us-west",),
    ]
    assert not any(
        "uniqueness probe" in str(r[2])
        for r in west.execute("EXPLAIN INSERT INTO visits(id) VALUES (2)")
    )
    with pytest.raises(sqlfront.NotSupportedError, match="already REGIONAL BY ROW"):
        east.execute("ALTER TABLE users SET LOCALITY REGIONAL BY ROW AS name")
    # Locality-optimized search: a lookup by key without the region asks the gateway's own
    # region first, and only goes further when the row is not there.
    west.execute("INSERT INTO users(id, name) VALUES (50, 'wes')")
    hops = west.execute("EXPLAIN ANALYZE SELECT name FROM users WHERE id = 50").fetchall()
    assert all("us-west->us-west" in str(h[1]) for h in hops[:-1]), hops
    assert west.execute("SELECT name FROM users WHERE id = 50").fetchall() == [("wes",)]
    assert west.execute("SELECT name FROM users WHERE id = 3").fetchall() == [("eve",)]
    far = west.execute("EXPLAIN ANALYZE SELECT name FROM users WHERE id = 3").fetchall()
    assert any("us-west->eu-west" in str(h[1]) for h in far[:-1]), far
    # The non-voters of a region's range get its new writes: a follower read next to one is
    # served there and sees them. (The ranges come from splits, so each of their replicas
    # started from a snapshot, after which the leader must go on sending it entries.)
    east_range = next(r for r in _details(east, "users") if r[2] == "/'us-east'")
    far_node = next(n for n, r in _nodes(east_range[8]) if r == "eu-west")
    far = sqlfront.connect(geo.addr(far_node))
    far.execute("USE rides")
    for key, name in ((60, "nia"), (61, "oto")):  # the first may still arrive in the snapshot
        east.execute("INSERT INTO users(id, name) VALUES (?, ?)", (key, name))
        bounded = (
            "SELECT name FROM users AS OF SYSTEM TIME with_max_staleness('1s')"
            f" WHERE crdb_region = 'us-east' AND id = {key}"
        )

        def served_nearby(sql: str = bounded, want: str = name) -> bool:
            hop = str(far.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1])
            if not hop.startswith(f"r{east_range[0]} on n{far_node} (follower read)"):
                raise AssertionError(f"served by {hop}")
            rows = far.execute(sql).fetchall()
            if rows != [(want,)]:
                raise AssertionError(f"the follower read gave {rows}")
            return True

        wait_for(f"the eu-west non-voter serves row {key}", served_nearby, timeout=20)
    far.close()


def test_a_settled_cluster_adds_nothing_to_the_meta_log(geo: Cluster) -> None:
    """The allocator's passes (every 2 s on the meta leader) read the catalog the meta
    leader has applied: once placement has settled, the meta range's log stops growing and
    the range quiesces (a consistent catalog read per pass added an entry every pass)."""

    def meta_last_index() -> int:
        for i in geo.procs:
            for r in geo.status(i).replicas:
                if r.range_id == 1 and r.is_leader:
                    return int(r.last_index)
        return -1

    seen = {"index": meta_last_index(), "since": time.monotonic()}

    def unchanged_for_three_passes() -> bool:
        index = meta_last_index()
        if index < 0 or index != seen["index"]:
            seen.update(index=index, since=time.monotonic())
            return False
        return time.monotonic() - seen["since"] >= 7.0

    wait_for("7 s without a new meta log entry", unchanged_for_three_passes, timeout=90)


def test_set_locality_to_and_from_regional_by_row_keeps_every_write(geo: Cluster) -> None:
    """ALTER TABLE ... SET LOCALITY REGIONAL BY ROW (and back) copies the rows into a table
    of the new shape while a client keeps writing: the writes wait for the copy instead of
    failing, and every acknowledged one is in the converted table."""
    east = sqlfront.connect(geo.addr(1))
    _use_three_region_db(east, "conv")
    east.execute("CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")
    east.execute("CREATE INDEX acct_bal ON acct(bal)")
    east.executemany("INSERT INTO acct VALUES (?, ?)", [(i, 100) for i in range(1, 301)])
    old_ranges = {int(r[0]) for r in _details(east, "acct")}

    class Writes:
        """What a client writing through n2 saw: acknowledged inserts and updates, every key
        it tried, and the statements that failed while the ALTER ran (must be none) or
        after it (allowed only when retryable: the new ranges are still being placed)."""

        def __init__(self) -> None:
            self.acked: list[int] = []
            self.tried: list[int] = []
            self.updates = 0
            self.during: list[str] = []
            self.after: list[str] = []

    def write_while(convert: str, first_id: int) -> Writes:
        seen = Writes()
        stop = threading.Event()
        altered = threading.Event()

        def writer() -> None:
            conn = sqlfront.connect(geo.addr(2))
            conn.execute("USE conv")
            key = first_id
            while not stop.is_set():
                before_end = not altered.is_set()
                try:
                    seen.tried.append(key)
                    conn.execute("INSERT INTO acct(id, bal) VALUES (?, 1)", (key,))
                    seen.acked.append(key)
                    conn.execute("UPDATE acct SET bal = bal + 1 WHERE id = 1")
                    seen.updates += 1
                except sqlfront.Error as exc:
                    if before_end:
                        seen.during.append(f"{key}: {exc}")
                    elif exc.sqlstate in ("40001", "AQ001", "AQ003", "AQ006", "AQ007"):
                        seen.after.append(f"{key}: {exc}")
                    else:
                        seen.during.append(f"{key} (after the ALTER): {exc}")
                key += 1
            conn.close()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            wait_for("the writer under way", lambda: len(seen.acked) >= 3, timeout=20)
            east.execute(f"ALTER TABLE acct SET LOCALITY {convert}")
            altered.set()
            written = len(seen.acked)
            wait_for(
                "writes after the conversion", lambda: len(seen.acked) >= written + 3, timeout=30
            )
        finally:
            stop.set()
            thread.join(timeout=30)
        return seen

    seen = write_while("REGIONAL BY ROW", 1000)
    assert seen.during == [], seen.during  # the writes waited for the conversion
    ids = {int(r[0]) for r in east.execute("SELECT id FROM acct").fetchall()}
    assert set(seen.acked) <= ids <= set(range(1, 301)) | set(seen.tried)
    assert set(range(1, 301)) <= ids
    # The old rows stay homed where the table was; the table now has a range per region.
    assert east.execute(
        "SELECT count(*) FROM acct WHERE id <= 300 AND crdb_region = 'us-east'"
    ).fetchone() == (300,)
    homes = sorted(str(r[4]) for r in _details(east, "acct"))
    assert {"us-east", "us-west", "eu-west"} <= set(homes), homes
    west = sqlfront.connect(geo.addr(4))
    west.execute("USE conv")
    west.execute("INSERT INTO acct(id, bal) VALUES (5000, 7)")
    assert east.execute("SELECT crdb_region FROM acct WHERE id = 5000").fetchone() == ("us-west",)
    (bal,) = east.execute("SELECT bal FROM acct WHERE id = 1").fetchone()
    assert bal >= 100 + seen.updates  # the UPDATEs made meanwhile are there too
    with grpc.insecure_channel(geo.addr(1)) as ch:
        catalog = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
    (table,) = [t for t in catalog.tables if t.name == "acct" and t.database == "conv"]
    assert any("acct_bal" in sql for sql in table.index_sql), table
    assert table.converting == "" and table.locality == "row:crdb_region", table
    # The old table's ranges leave every node.
    wait_for(
        "the old ranges dropped everywhere",
        lambda: (
            not any(r.range_id in old_ranges for i in geo.procs for r in geo.status(i).replicas)
        ),
        timeout=30,
    )

    # And back: the region column stays a plain column, the key is the id again.
    before = {int(r[0]) for r in east.execute("SELECT id FROM acct").fetchall()}
    seen = write_while("REGIONAL BY TABLE IN 'us-west'", 20000)
    assert seen.during == [], seen.during
    ids = {int(r[0]) for r in east.execute("SELECT id FROM acct").fetchall()}
    assert set(seen.acked) | before <= ids <= before | set(seen.tried)
    (row,) = _details(east, "acct")
    assert row[4] == "us-west", row
    assert east.execute("SELECT crdb_region FROM acct WHERE id = 5000").fetchone() == ("us-west",)
    with pytest.raises(sqlfront.IntegrityError):
        east.execute("INSERT INTO acct(id, bal) VALUES (5000, 1)")
    west.close()
    east.close()


def test_a_failed_locality_conversion_leaves_the_table_as_it_was(geo: Cluster) -> None:
    conn = sqlfront.connect(geo.addr(3))
    _use_three_region_db(conn, "conv")
    conn.execute("CREATE TABLE homes(id INTEGER PRIMARY KEY, reg TEXT)")
    conn.execute("INSERT INTO homes VALUES (1, 'us-west'), (2, NULL)")
    # A row without a region cannot be copied into a table keyed by it: nothing changes.
    with pytest.raises(sqlfront.IntegrityError, match="NOT NULL"):
        conn.execute("ALTER TABLE homes SET LOCALITY REGIONAL BY ROW AS reg")
    conn.execute("INSERT INTO homes VALUES (3, 'eu-west')")  # writable again at once
    assert conn.execute("SELECT count(*) FROM homes").fetchone() == (3,)
    with grpc.insecure_channel(geo.addr(1)) as ch:
        catalog = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
    names = [t.name for t in catalog.tables if t.database == "conv"]
    assert "homes" in names and not any(n.startswith("_atlasconv_") for n in names), names
    # Once every row has one, the conversion goes through and the rows are homed by it.
    conn.execute("UPDATE homes SET reg = 'us-east' WHERE id = 2")
    conn.execute("ALTER TABLE homes SET LOCALITY REGIONAL BY ROW AS reg")
    rows = conn.execute("SELECT id, reg FROM homes ORDER BY id").fetchall()
    assert rows == [(1, "us-west"), (2, "us-east"), (3, "eu-west")]
    (row,) = conn.execute("SHOW RANGE FROM TABLE homes FOR ROW ('us-west', 1)").fetchall()
    west = next(r for r in _details(conn, "homes") if r[2] == "/'us-west'")
    assert row[0] == west[0]
    # A UNIQUE index would only hold per range once the table is split per region.
    conn.execute("CREATE TABLE uq(id INTEGER PRIMARY KEY, email TEXT)")
    conn.execute("CREATE UNIQUE INDEX uq_email ON uq(email)")
    with pytest.raises(sqlfront.NotSupportedError, match="UNIQUE index"):
        conn.execute("ALTER TABLE uq SET LOCALITY REGIONAL BY ROW")
    conn.execute("INSERT INTO uq VALUES (1, 'a@b')")
    conn.close()


@pytest.mark.parametrize("point", ["after_copy", "before_swap"])
def test_a_conversion_whose_gateway_died_is_finished_by_running_it_again(
    geo: Cluster, point: str
) -> None:
    """The node running a conversion dies after copying the rows, or just before the swap
    (its old ranges already a schema version past the catalog): the table stays fenced (a
    write waits), and the same ALTER run through another node drops the orphaned copy,
    converts the table and lets the waiting write through."""
    table = f"crashy_{point}"
    conn = sqlfront.connect(geo.addr(2))
    _use_three_region_db(conn, "conv")
    conn.execute(f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, v INTEGER)")
    conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(i, i) for i in range(1, 101)])
    geo.inject(3, pb.FaultRequest(convert_crash=point))
    doomed = sqlfront.connect(geo.addr(3))
    doomed.execute("USE conv")
    with pytest.raises(sqlfront.Error):
        doomed.execute(f"ALTER TABLE {table} SET LOCALITY REGIONAL BY ROW")
    geo.procs[3].wait(timeout=30)
    try:
        if point == "after_copy":  # (before_swap: the old ranges refuse until the re-run)
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (100,)
        outcome: list[object] = []

        def write() -> None:
            writer = sqlfront.connect(geo.addr(1))
            writer.execute("USE conv")
            try:
                writer.execute(f"INSERT INTO {table}(id, v) VALUES (1000, 0)")
                outcome.append("done")
            except sqlfront.Error as exc:
                outcome.append(exc)
            writer.close()

        waiting = threading.Thread(target=write)
        waiting.start()
        conn.execute(f"ALTER TABLE {table} SET LOCALITY REGIONAL BY ROW")
        waiting.join(timeout=60)
        assert outcome == ["done"], outcome
        assert conn.execute(f"SELECT count(*), sum(v) FROM {table}").fetchone() == (101, 5050)
        assert conn.execute(f"SELECT crdb_region FROM {table} WHERE id = 1").fetchone() == (
            "us-east",
        )
        with grpc.insecure_channel(geo.addr(1)) as ch:
            catalog = rpc.AdminStub(ch).GetCatalog(pb.CatalogRequest(), timeout=10).catalog
        names = [t.name for t in catalog.tables if t.database == "conv"]
        assert not any(n.startswith("_atlasconv_") for n in names), names
    finally:
        geo.start(3)
    conn.close()

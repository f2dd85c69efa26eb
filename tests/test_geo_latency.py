"""Simulated geography (geo issue, item 7, first part): --rtt-matrix delays every message
between nodes of two regions by half the RTT, on Raft traffic and gRPC forwarding alike,
while traffic inside a region stays fast. Lower bounds only: an injected delay must show."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import sqlfront
from tests.cluster import Cluster, atlasql, wait_for

RTT_MS = 80


def _timed(fn: object) -> float:
    t0 = time.monotonic()
    fn()  # type: ignore[operator]
    return time.monotonic() - t0


def test_rtt_matrix_delays_cross_region_messages(tmp_path: Path) -> None:
    matrix = tmp_path / "rtt.json"
    matrix.write_text(json.dumps({"east": {"west": RTT_MS}}))
    c = Cluster(
        tmp_path,
        n=3,
        regions={1: "east", 2: "west", 3: "west"},
        extra_args=("--rtt-matrix", str(matrix)),
    )
    c.start_all()
    try:
        c.init()
        conn = sqlfront.connect(c.addr(2))
        conn.execute("CREATE TABLE g(id INTEGER PRIMARY KEY)")
        range_id = next(r.range_id for r in c.status(2).replicas if r.range_id != 1)
        conn.execute(f"ALTER RANGE {range_id} RELOCATE LEADER TO 2")
        wait_for("n2 leads", lambda: c.leader_of(range_id) == 2)
        west = sqlfront.connect(c.addr(2))
        east = sqlfront.connect(c.addr(1))
        west.execute("INSERT INTO g VALUES (0)")
        east.execute("SELECT 1")

        # A west gateway writing to a west leader with a west quorum (n2 + n3): no ocean.
        within = min(
            _timed(lambda i=i: west.execute("INSERT INTO g VALUES (?)", (i,))) for i in range(1, 6)
        )
        # An east gateway must forward to the west leader: at least one round trip.
        across = min(
            _timed(lambda i=i: east.execute("INSERT INTO g VALUES (?)", (i,)))
            for i in range(10, 15)
        )
        assert across >= RTT_MS / 1000, f"forwarding east->west took {across * 1000:.1f} ms"
        assert within < RTT_MS / 1000, f"a west-only write took {within * 1000:.1f} ms"
        assert west.execute("SELECT count(*) FROM g").fetchone() == (11,)

        rtt = atlasql("node", "rtt", "--host", c.addr(1), "--format", "csv", "--samples", "3")
        assert rtt.returncode == 0, rtt.stderr
        rows = [line.split(",") for line in rtt.stdout.strip().splitlines()[1:]]
        by_peer = {r[2]: (float(r[4]), float(r[5])) for r in rows}
        assert by_peer["n2"][0] == RTT_MS and by_peer["n2"][1] >= RTT_MS
        assert by_peer["n3"][0] == RTT_MS
    finally:
        c.stop_all()


def test_bad_rtt_matrix_is_a_clear_error(tmp_path: Path) -> None:
    def start_with(matrix: Path) -> subprocess.CompletedProcess[str]:
        return atlasql(
            "start", "--node-id", "1", "--listen", "127.0.0.1:1",
            "--data-dir", str(tmp_path / "d"), "--rtt-matrix", str(matrix),
        )  # fmt: skip

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"a": {"b": 10}, "b": {"a": 12}}))
    res = start_with(bad)
    assert res.returncode == 2
    assert "a-b is 10 ms one way round and 12 ms the other" in res.stderr
    missing = start_with(tmp_path / "nope.json")
    assert missing.returncode == 2 and "cannot read" in missing.stderr

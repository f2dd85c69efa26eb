"""Crash test (engine issue, "What must hold"): 8 clients insert distinct rows while a nemesis
kill -9s a random node every 5 s and restarts it. Afterwards every acknowledged insert is
present exactly once, and CHECK CONSISTENCY reports every range consistent.

Duration: ATLASQL_NEMESIS_SECONDS (default 20 in CI; the closing note reports a longer run).
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

import sqlfront
from tests.cluster import Cluster, wait_for

DURATION = float(os.environ.get("ATLASQL_NEMESIS_SECONDS", "20"))
CLIENTS = 8


@pytest.mark.slow
def test_acknowledged_inserts_survive_kill_9_nemesis(cluster: Cluster) -> None:
    c = cluster
    setup = sqlfront.connect(c.addrs())
    # No key on (client, seq): a write applied twice would show up as a duplicate row.
    setup.execute("CREATE TABLE ev(id INTEGER PRIMARY KEY, client INTEGER, seq INTEGER)")
    setup.close()

    stop = threading.Event()
    acked: list[set[tuple[int, int]]] = [set() for _ in range(CLIENTS)]
    unknown: list[set[tuple[int, int]]] = [set() for _ in range(CLIENTS)]
    errors: list[int] = [0] * CLIENTS

    def client(n: int) -> None:
        addrs = c.addrs(*random.Random(n).sample(sorted(c.ports), len(c.ports)))
        conn = None
        seq = 0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = sqlfront.connect(addrs, timeout=10)
                seq += 1
                conn.execute("INSERT INTO ev(client, seq) VALUES (?, ?)", (n, seq))
                acked[n].add((n, seq))
            except sqlfront.Error:
                errors[n] += 1
                unknown[n].add((n, seq))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random(42)
    kills = 0
    t_end = time.monotonic() + DURATION
    while time.monotonic() < t_end:
        time.sleep(min(5.0, max(0.0, t_end - time.monotonic())))
        if time.monotonic() >= t_end:
            break
        victim = rng.choice(sorted(c.procs))
        c.kill(victim)
        kills += 1
        time.sleep(1.0)
        c.start(victim, wait=False)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    for i in sorted(c.ports):
        wait_for(f"n{i} healthy", lambda i=i: c.healthy(i), timeout=30)

    conn = sqlfront.connect(c.addrs())
    rows = wait_for(
        "final read",
        lambda: conn.execute(
            "SELECT client, seq, count(*) FROM ev GROUP BY client, seq"
        ).fetchall(),
        timeout=30,
    )
    counts = {(cl, sq): n for cl, sq, n in rows}
    all_acked = set().union(*acked)
    missing = sorted(all_acked - counts.keys())
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    phantom = sorted(counts.keys() - all_acked - set().union(*unknown))
    total_acked = len(all_acked)
    print(
        f"nemesis: {DURATION:.0f}s, {kills} kills, {total_acked} acknowledged inserts, "
        f"{sum(errors)} client errors, {len(counts)} rows"
    )
    assert total_acked > 0
    assert not missing, f"acknowledged inserts lost: {missing[:10]}"
    assert not duplicated, f"inserts applied twice: {duplicated[:10]}"
    assert not phantom, f"rows nobody wrote: {phantom[:10]}"

    def all_consistent() -> list[tuple[object, ...]] | None:
        report = conn.execute("CHECK CONSISTENCY").fetchall()
        return report if all(r[4] == "consistent" for r in report) else None

    report = wait_for("CHECK CONSISTENCY all consistent", all_consistent, timeout=60, interval=1)
    assert {r[0] for r in report} >= {1}

"""Transaction workloads against real node processes (issue 6):

* bank: accounts spread over ranges, concurrent transfers inside transactions and balance
  reads inside transactions, while a nemesis kill -9s and restarts nodes; the total never
  changes, no balance goes negative, and every replica ends consistent;
* register: reads, writes and compare-and-set (a read-then-write transaction) on a few keys,
  the history checked for linearizability with a Wing-Gong-Lowe checker.

``ATLASQL_BANK_SECONDS`` / ``ATLASQL_REGISTER_SECONDS`` lengthen the runs (CI: short).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import sqlfront
from tests.cluster import Cluster, wait_for
from tests.linearizability import Op, check

ACCOUNTS = 40
START = 1000
RESTART = {"40001", "25P02", "40003", "08006", "AQ003", "AQ004"}


def _cluster(tmp_path: Path) -> Cluster:
    c = Cluster(tmp_path, n=3, extra_args=("--txn-timeout", "5"))
    c.start_all()
    c.init()
    return c


def _rollback(conn: sqlfront.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlfront.Error:
        pass


def test_bank_total_is_constant_while_nodes_are_killed(tmp_path: Path) -> None:
    seconds = float(os.environ.get("ATLASQL_BANK_SECONDS", "25"))
    c = _cluster(tmp_path)
    stats: Counter[str] = Counter()
    problems: list[str] = []
    stop = threading.Event()
    try:
        setup = sqlfront.connect(c.addrs())
        setup.execute("CREATE TABLE bank(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")
        setup.executemany("INSERT INTO bank VALUES (?, ?)", [(i, START) for i in range(ACCOUNTS)])
        setup.execute("ALTER TABLE bank SPLIT AT VALUES (10), (20), (30)")
        total = ACCOUNTS * START

        def transfers(worker: int) -> None:
            rng = random.Random(worker)
            conn = sqlfront.connect(c.addrs(), timeout=10)
            while not stop.is_set():
                src, dst = rng.sample(range(ACCOUNTS), 2)
                amount = rng.randint(1, 300)
                try:
                    conn.execute("BEGIN")
                    (bal,) = conn.execute("SELECT bal FROM bank WHERE id = ?", (src,)).fetchone()
                    if bal >= amount:
                        conn.execute("UPDATE bank SET bal = bal - ? WHERE id = ?", (amount, src))
                        conn.execute("UPDATE bank SET bal = bal + ? WHERE id = ?", (amount, dst))
                    conn.execute("COMMIT")
                    stats["committed"] += 1
                except sqlfront.Error as exc:
                    code = str(getattr(exc, "sqlstate", ""))
                    stats[
                        "retries" if code == "40001" else f"error {code or type(exc).__name__}"
                    ] += 1
                    if code and code not in RESTART:
                        problems.append(f"transfer: {code} {exc}")
                    _rollback(conn)
                    time.sleep(rng.random() * 0.01)

        def audits() -> None:
            conn = sqlfront.connect(c.addrs(), timeout=10)
            while not stop.is_set():
                try:
                    conn.execute("BEGIN")
                    got = conn.execute("SELECT sum(bal), min(bal), count(*) FROM bank").fetchone()
                    conn.execute("COMMIT")
                except sqlfront.Error:
                    _rollback(conn)
                    stats["audit retries"] += 1
                    continue
                stats["audits"] += 1
                if got != (total, got[1], ACCOUNTS) or got[1] < 0:
                    problems.append(f"audit saw {got}")

        def autocommit_audits() -> None:
            # Without BEGIN: a statement over several ranges still sees transfers whole.
            conn = sqlfront.connect(c.addrs(), timeout=10)
            while not stop.is_set():
                try:
                    got = conn.execute("SELECT sum(bal), min(bal), count(*) FROM bank").fetchone()
                except sqlfront.Error:
                    stats["autocommit audit errors"] += 1
                    time.sleep(0.05)
                    continue
                stats["autocommit audits"] += 1
                if got != (total, got[1], ACCOUNTS) or got[1] < 0:
                    problems.append(f"autocommit audit saw {got}")

        def nemesis() -> None:
            rng = random.Random(7)
            while not stop.wait(4.0):
                victim = rng.randint(1, 3)
                c.kill(victim)
                stats["kills"] += 1
                stop.wait(1.5)
                c.start(victim, wait=False)

        threads = [threading.Thread(target=transfers, args=(w,)) for w in range(6)]
        threads += [
            threading.Thread(target=audits),
            threading.Thread(target=autocommit_audits),
            threading.Thread(target=nemesis),
        ]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        for i in (1, 2, 3):
            if c.procs[i].poll() is not None:
                c.start(i, wait=False)
        for i in (1, 2, 3):
            wait_for(f"n{i} healthy", lambda i=i: c.healthy(i), timeout=30)
        final = sqlfront.connect(c.addrs())

        def settled() -> tuple[object, ...] | None:
            try:
                return tuple(
                    final.execute("SELECT sum(bal), min(bal), count(*) FROM bank").fetchone()
                )
            except sqlfront.Error:
                return None

        wait_for("bank readable", lambda: settled() is not None, timeout=30)
        got = settled()
        print(f"bank: {dict(stats)} final {got}")
        assert got is not None and got[0] == total and got[2] == ACCOUNTS and got[1] >= 0, got
        assert not problems, problems[:5]
        assert stats["committed"] > 20 and stats["audits"] > 5 and stats["kills"] >= 2, stats
        assert stats["autocommit audits"] > 5, stats

        def consistent() -> bool:
            try:
                rows = final.execute("CHECK CONSISTENCY FROM TABLE bank").fetchall()
            except sqlfront.Error:
                return False
            return len(rows) == 12 and all(r[-1] == "consistent" for r in rows)

        wait_for("every replica consistent", consistent, timeout=60)
    finally:
        stop.set()
        c.stop_all()


def test_register_history_is_linearizable(tmp_path: Path) -> None:
    seconds = float(os.environ.get("ATLASQL_REGISTER_SECONDS", "10"))
    c = _cluster(tmp_path)
    history: list[Op] = []
    lock = threading.Lock()
    stop = threading.Event()
    keys = list(range(6))
    try:
        setup = sqlfront.connect(c.addrs())
        setup.execute("CREATE TABLE reg(k INTEGER PRIMARY KEY, v INTEGER)")
        setup.executemany("INSERT INTO reg VALUES (?, 0)", [(k,) for k in keys])
        setup.execute("ALTER TABLE reg SPLIT AT VALUES (3)")

        def client(n: int) -> None:
            rng = random.Random(n)
            first = 1 + n % 3  # spread the clients; each fails over to the other nodes
            conn = sqlfront.connect(
                c.addrs(*[1 + (first - 1 + i) % 3 for i in range(3)]), timeout=10
            )
            counter = 0
            while not stop.is_set():
                key = rng.choice(keys)
                kind = rng.choice(["read", "write", "cas"])
                counter += 1
                value: object = n * 1_000_000 + counter
                start = time.monotonic()
                output: object = None
                ret: float | None
                try:
                    if kind == "read":
                        (output,) = conn.execute("SELECT v FROM reg WHERE k = ?", (key,)).fetchone()
                    elif kind == "write":
                        conn.execute("UPDATE reg SET v = ? WHERE k = ?", (value, key))
                    else:
                        expected = rng.choice(
                            [0, *(o.value for o in history[-5:] if o.kind == "write")]
                        )
                        value = (expected, value)
                        conn.execute("BEGIN")
                        (cur,) = conn.execute("SELECT v FROM reg WHERE k = ?", (key,)).fetchone()
                        output = cur == expected
                        if output:
                            conn.execute("UPDATE reg SET v = ? WHERE k = ?", (value[1], key))
                        conn.execute("COMMIT")
                    ret = time.monotonic()
                except sqlfront.Error as exc:
                    _rollback(conn)
                    code = str(getattr(exc, "sqlstate", ""))
                    if code in ("40001", "25P02") or kind == "read":
                        continue  # did not happen (restart), or a read that told us nothing
                    if "failed to connect" in str(exc).lower():
                        time.sleep(0.05)  # never reached a node: did not happen
                        continue
                    ret = None  # the write may or may not have happened
                    if kind == "cas":
                        output = None
                with lock:
                    history.append(Op(n, kind, key, value, output, start, ret))

        def nemesis() -> None:
            stop.wait(seconds / 3)
            if not stop.is_set():
                c.kill(2)
                stop.wait(2.0)
                c.start(2, wait=False)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        threads.append(threading.Thread(target=nemesis))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        kinds = Counter(o.kind for o in history)
        result = check(history, initial=0)
        print(f"register: {len(history)} ops {dict(kinds)}; {result.states_explored} states")
        assert kinds["cas"] > 5 and kinds["write"] > 5 and kinds["read"] > 5, kinds
        assert result.ok, result.explanation
    finally:
        stop.set()
        c.stop_all()

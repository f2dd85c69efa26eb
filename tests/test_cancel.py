"""Statement cancellation over gRPC (operator issue, item 1): a client that cancels its call
(the shell's Ctrl-C closes the channel) stops the statement on the server, which answers
57014 and frees the slot; the node keeps serving."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import sqlfront
from tests.cluster import Cluster, wait_for

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def _metric(c: Cluster, node: int, name: str, label: str) -> float:
    url = f"http://127.0.0.1:{c.http_ports[node]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name) and label in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_cancelled_call_stops_the_statement_on_the_server(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=3, metrics=True)
    c.start_all()
    try:
        c.init()
        before = _metric(c, 1, "atlasql_sql_statements_total", 'kind="WITH"')
        conn = sqlfront.connect(c.addr(1), timeout=60)
        outcome: dict[str, BaseException] = {}

        def run() -> None:
            try:
                conn.execute(ENDLESS)
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        wait_for(
            "the endless statement reached the server",
            lambda: _metric(c, 1, "atlasql_sql_statements_total", 'kind="WITH"') > before,
            timeout=10,
        )
        conn.close()  # what the shell does on Ctrl-C: the call is cancelled
        worker.join(timeout=10)
        assert not worker.is_alive() and "error" in outcome
        wait_for(
            "the server stopped the statement (57014)",
            lambda: _metric(c, 1, "atlasql_sql_errors_total", 'code="57014"') >= 1,
            timeout=10,
        )
        again = sqlfront.connect(c.addr(1))
        assert again.execute("SELECT 1 + 1").fetchone() == (2,)
        again.close()
    finally:
        c.stop_all()

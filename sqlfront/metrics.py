"""Prometheus metrics of one node (prometheus_client), served on ``--http-addr``.

Each node has its own registry (the demo runs several nodes in one process). Counters and
histograms are updated on the request path; store-level figures (replicas, leaders, lease
reads, snapshots, Raft terms) are read at scrape time by a collector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_KINDS = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "REPLACE",
        "WITH",
        "CREATE",
        "DROP",
        "ALTER",
        "CHECK",
        "VALUES",
    }
)
_FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")


def statement_kind(sql: str) -> str:
    """A bounded label for a statement: its first keyword, or OTHER.

    >>> statement_kind("  select 1"), statement_kind("PRAGMA x"), statement_kind("")
    ('SELECT', 'OTHER', 'OTHER')
    """
    m = _FIRST_WORD.match(sql)
    word = m.group(1).upper() if m else ""
    return word if word in _KINDS else "OTHER"


class _StoreCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        s = self._snapshot()
        for name, doc, value in (
            ("atlasql_replicas", "Replicas held by this node.", s["replicas"]),
            ("atlasql_leaders", "Ranges this node leads.", s["leaders"]),
            ("atlasql_replicas_stopped", "Replicas stopped after a disk fault.", s["stopped"]),
            ("atlasql_ranges_active", "Ranges ticking (not quiesced).", s["active"]),
            (
                "atlasql_raft_term_sum",
                "Sum of Raft terms over this node's replicas (rises with elections).",
                s["term_sum"],
            ),
        ):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            yield g
        for name, doc, value in (
            (
                "atlasql_raft_lease_reads",
                "Consistent reads served under a leader lease.",
                s["lease_reads"],
            ),
            (
                "atlasql_follower_reads",
                "Reads served by a replica here within a staleness bound (AS OF SYSTEM TIME).",
                s["follower_reads"],
            ),
            (
                "atlasql_range_splits",
                "Range splits applied by replicas here.",
                s["splits_applied"],
            ),
            (
                "atlasql_raft_snapshots_sent",
                "Snapshots streamed to followers.",
                s["snapshots_sent"],
            ),
            (
                "atlasql_raft_snapshots_installed",
                "Snapshots installed here.",
                s["snapshots_installed"],
            ),
            ("atlasql_raft_log_flushes", "Group-commit fsyncs of the Raft log.", s["flushes"]),
            ("atlasql_raft_commits", "Raft commit index summed over replicas.", s["commits"]),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            yield c


class NodeMetrics:
    def __init__(self, store_snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.statements = Counter(
            "atlasql_sql_statements",
            "SQL statements received by this gateway.",
            ["kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "atlasql_sql_statement_seconds",
            "Statement latency at this gateway.",
            ["kind"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "atlasql_sql_errors",
            "Statements that failed, by SQLSTATE code.",
            ["code"],
            registry=self.registry,
        )
        self.forwarded = Counter(
            "atlasql_forwarded_requests",
            "Range requests received from other gateways.",
            registry=self.registry,
        )
        self.proposals = Counter(
            "atlasql_raft_proposals",
            "Entries proposed by this node's leaders.",
            registry=self.registry,
        )
        self.txn_events = Counter(
            "atlasql_txn_events",
            "Transactions coordinated by this gateway: commit_fast (one range, one entry),"
            " commit_2pc, commit_readonly, restart (40001), abort, unknown (40003);"
            " reader_unchecked: per read-only range a COMMIT did not check again (its leader"
            " promised the locks would outlive the commit's start).",
            ["event"],
            registry=self.registry,
        )
        self.txn_recovered = Counter(
            "atlasql_txn_intents_recovered",
            "Intents of transactions whose coordinator went quiet, resolved from the record.",
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store_snapshot))

    def serve(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        start_http_server(int(port), addr=host, registry=self.registry)

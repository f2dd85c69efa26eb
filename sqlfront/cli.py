"""The ``atlasql`` command line: start, init, demo, sql, node status."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType

import grpc

from proto import pb, rpc
from router import RttMatrixError, load_rtt_matrix, parse_rtt_matrix

from .admincli import AdminError, add_parsers
from .config import ConfigError, NodeConfig, parse_hostport, parse_locality, parse_size

FORMATS = ("table", "csv", "tsv", "json", "markdown")


def _die(message: str, code: int = 2) -> int:
    print(f"atlasql: error: {message}", file=sys.stderr)
    return code


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg, node, exc."""

    def __init__(self, node_id: int = 0) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        import datetime
        import json

        entry: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.node_id:
            entry["node"] = self.node_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(level: str, fmt: str = "text", node_id: int = 0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter(node_id))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])


# -- start ---------------------------------------------------------------------------------------


def _cmd_start(args: argparse.Namespace) -> int:
    try:
        secret = args.cluster_secret or os.environ.get("ATLASQL_CLUSTER_SECRET", "")
        if args.cluster_secret_file:
            with open(args.cluster_secret_file, encoding="utf-8") as f:
                secret = f.read().strip()
        matrix = load_rtt_matrix(args.rtt_matrix) if args.rtt_matrix else None
        config = NodeConfig(
            node_id=args.node_id,
            listen=args.listen,
            data_dir=args.data_dir,
            locality=parse_locality(args.locality),
            join=tuple(j.strip() for j in (args.join or "").split(",") if j.strip()),
            advertise=args.advertise or "",
            cluster_secret=secret,
            enable_fault_injection=args.enable_fault_injection,
            raft_log_max_entries=args.raft_log_max_entries,
            http_addr=args.http_addr or "",
            rtt_matrix=matrix,
            range_max_bytes=parse_size(args.range_max_bytes, "--range-max-bytes"),
            dead_node_timeout=args.dead_node_timeout,
            txn_timeout=args.txn_timeout,
            raft_port=args.raft_port,
        )
    except (ConfigError, OSError, RttMatrixError) as exc:
        return _die(str(exc))
    _setup_logging(args.log_level, args.log_format, config.node_id)
    from .node import Node

    node = Node(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        node._stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node.start()
    print(
        f"atlasql node n{config.node_id} serving on {config.listen} "
        f"(locality {args.locality}, data dir {config.data_dir})",
        file=sys.stderr,
        flush=True,
    )
    node.wait()
    node.stop()
    return 0


# -- init ----------------------------------------------------------------------------------------


def _cmd_init(args: argparse.Namespace) -> int:
    try:
        host = parse_hostport(args.host, "--host")
    except ConfigError as exc:
        return _die(str(exc))
    with grpc.insecure_channel(host) as channel:
        try:
            resp = rpc.AdminStub(channel).Init(pb.InitRequest(), timeout=args.timeout)
        except grpc.RpcError as exc:
            return _die(f"cannot reach {host}: {exc.code().name}", 1)
    if resp.HasField("error") and resp.error.code:
        return _die(resp.error.message, 1)
    replicas = ", ".join(f"n{n}" for n in resp.meta_replicas)
    print(f"cluster {resp.cluster_id} initialised; meta range on {replicas}")
    return 0


# -- sql -----------------------------------------------------------------------------------------


def _cmd_sql(args: argparse.Namespace) -> int:
    from .shell import run_shell

    hosts = args.host
    try:
        for h in hosts.split(","):
            parse_hostport(h, "--host")
    except ConfigError as exc:
        return _die(str(exc))
    return run_shell(hosts, statements=args.execute, fmt=args.format, on_error=args.on_error)


# -- demo ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


GLOBAL_REGIONS = ("us-east", "us-west", "eu-west")
GLOBAL_RTT_MS = {"us-east": {"us-west": 66, "eu-west": 64}, "us-west": {"eu-west": 146}}
GLOBAL_SAMPLE: tuple[str, ...] = (
    "CREATE DATABASE movr PRIMARY REGION 'us-east' REGIONS 'us-west', 'eu-west'",
    "USE movr",
    "CREATE TABLE cities(city TEXT PRIMARY KEY, region TEXT NOT NULL) LOCALITY GLOBAL",
    "INSERT INTO cities VALUES ('new york', 'us-east'), ('boston', 'us-east'),"
    " ('seattle', 'us-west'), ('san francisco', 'us-west'), ('paris', 'eu-west'),"
    " ('rome', 'eu-west')",
    # REGIONAL BY ROW: each row lives (leader and voters) in its crdb_region; a row inserted
    # without one is homed where the gateway is.
    "CREATE TABLE users(id TEXT PRIMARY KEY, city TEXT NOT NULL, name TEXT NOT NULL)"
    " LOCALITY REGIONAL BY ROW",
    "INSERT INTO users(id, city, name, crdb_region) VALUES"
    " ('u1', 'new york', 'Ada', 'us-east'), ('u2', 'seattle', 'Grace', 'us-west'),"
    " ('u3', 'paris', 'Edsger', 'eu-west'), ('u4', 'boston', 'Barbara', 'us-east'),"
    " ('u5', 'rome', 'Niklaus', 'eu-west')",
    # A random key: inserts need no uniqueness check in the other regions.
    "CREATE TABLE rides(id TEXT PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),"
    " user_id TEXT NOT NULL, city TEXT NOT NULL, fare REAL) LOCALITY REGIONAL BY ROW",
    "INSERT INTO rides(user_id, city, fare, crdb_region) VALUES"
    " ('u1', 'new york', 23.5, 'us-east'), ('u4', 'boston', 12.0, 'us-east'),"
    " ('u1', 'boston', 31.25, 'us-east'), ('u2', 'seattle', 18.0, 'us-west'),"
    " ('u2', 'san francisco', 42.75, 'us-west'), ('u3', 'paris', 15.5, 'eu-west'),"
    " ('u5', 'rome', 9.0, 'eu-west'), ('u3', 'rome', 27.0, 'eu-west')",
)


def _cmd_demo(args: argparse.Namespace) -> int:
    count = 9 if args.global_ else args.nodes
    if not 1 <= count <= 9:
        return _die("--nodes: must be between 1 and 9")
    _setup_logging(args.log_level)
    from .node import Node
    from .shell import run_shell

    matrix = parse_rtt_matrix(GLOBAL_RTT_MS) if args.global_ else None
    base = tempfile.mkdtemp(prefix="atlasql-demo-")
    ports = [_free_port() for _ in range(count)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    nodes: list[Node] = []
    try:
        for i, addr in enumerate(addrs, start=1):
            if args.global_:
                region, zone = GLOBAL_REGIONS[(i - 1) // 3], "abc"[(i - 1) % 3]
            else:
                region, zone = "local", f"z{i}"
            cfg = NodeConfig(
                node_id=i,
                listen=addr,
                data_dir=os.path.join(base, f"n{i}"),
                locality=(("region", region), ("zone", zone)),
                join=tuple(addrs),
                rtt_matrix=matrix,
            )
            node = Node(cfg)
            node.start()
            nodes.append(node)
        resp = nodes[0].init_cluster()
        if resp.HasField("error") and resp.error.code:
            return _die(f"demo cluster failed to initialise: {resp.error.message}", 1)
        _wait_registered(nodes, timeout=20.0)
        statements = list(args.execute or [])
        if args.global_:
            print(
                "# atlasql demo --global: 9 nodes, 3 per region (us-east n1-n3, us-west n4-n6,"
                " eu-west n7-n9),\n# RTTs us-east<->us-west 66 ms, us-east<->eu-west 64 ms,"
                " us-west<->eu-west 146 ms.\n# Loading database movr (cities GLOBAL; users and"
                " rides REGIONAL BY ROW: each row homed in its crdb_region) ...",
                file=sys.stderr,
            )
            _load_sample(addrs[0], GLOBAL_SAMPLE)
            placed = _wait_placed(nodes[0], timeout=60.0)
            print(
                "# placement "
                + ("done" if placed else "still converging (see SHOW RANGES WITH DETAILS)")
                + ". Try: USE movr; SHOW RANGES WITH DETAILS; \\timing on;"
                " SELECT * FROM rides WHERE crdb_region = 'us-east';",
                file=sys.stderr,
            )
        if not args.execute:
            print(
                f"# atlasql demo: {count} nodes on {', '.join(addrs)} (data in {base})\n"
                "# Type SQL ending with ';', \\? for help, \\q to quit.",
                file=sys.stderr,
            )
        return run_shell(
            addrs[0] if args.global_ else ",".join(addrs),
            statements=statements or None,
            fmt=args.format,
            database="movr" if args.global_ else "",
        )
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(base, ignore_errors=True)


def _load_sample(address: str, statements: Sequence[str]) -> None:
    from .driver import connect

    conn = connect(address)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def _wait_placed(node: object, timeout: float) -> bool:
    """Wait until the allocator has nothing left to do (placement matches every rule)."""
    from .node import Node

    assert isinstance(node, Node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            node.refresh_catalog()
            plan = node.placement_plan()
        except Exception:  # noqa: BLE001 - retried until the deadline
            plan = []
        if plan and all(a.kind == "none" or "spreading" in a.reason for *_x, a in plan):
            return True
        time.sleep(0.5)
    return False


def _wait_registered(nodes: Sequence[object], timeout: float) -> None:
    from .node import Node

    deadline = time.monotonic() + timeout
    first = nodes[0]
    assert isinstance(first, Node)
    while time.monotonic() < deadline:
        try:
            first.refresh_catalog()
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        if len(first.catalog.snapshot().nodes) >= len(nodes):
            return
        time.sleep(0.1)


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlasql",
        description="atlasql: a geo-distributed SQL database (Raft ranges of SQLite).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("start", help="run a node", description="Run one atlasql node.")
    p.add_argument(
        "--node-id",
        type=int,
        required=True,
        help="this node's id (a positive integer, unique in the cluster)",
    )
    p.add_argument(
        "--locality",
        default="region=local",
        help="region=R[,zone=Z]: where this node runs (default region=local)",
    )
    p.add_argument("--listen", required=True, help="HOST:PORT for gRPC (clients and peers)")
    p.add_argument("--advertise", help="HOST:PORT peers should use, if not --listen")
    p.add_argument(
        "--raft-port",
        type=int,
        default=0,
        help="TCP port for Raft traffic from peers, on the --listen host (default 0: any free"
        " port; peers learn it over gRPC)",
    )
    p.add_argument("--join", default="", help="HOST:PORT[,...] of other nodes to contact")
    p.add_argument("--data-dir", required=True, help="directory for this node's replicas and state")
    p.add_argument(
        "--cluster-secret",
        default="",
        help="shared secret for node-to-node traffic (or ATLASQL_CLUSTER_SECRET)",
    )
    p.add_argument(
        "--cluster-secret-file", default="", help="read the cluster secret from this file"
    )
    p.add_argument(
        "--rtt-matrix",
        help="JSON file of inter-region round-trip times in ms; every message between nodes"
        " of two regions is delayed by half the RTT each way (simulated geography)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text lines, or one JSON object per line (ts, level, logger, msg, node)",
    )
    p.add_argument("--http-addr", help="HOST:PORT to serve Prometheus metrics on (/metrics)")
    p.add_argument("--enable-fault-injection", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--raft-log-max-entries",
        type=int,
        default=10_000,
        help="compact a range's Raft log past this many entries (default 10000)",
    )
    p.add_argument(
        "--range-max-bytes",
        default="64MiB",
        help="split a table's range automatically once its data passes this size"
        " (default 64MiB; e.g. 512KiB, 1GiB)",
    )
    p.add_argument(
        "--dead-node-timeout",
        type=float,
        default=60.0,
        help="seconds of silence after which the allocator replaces a node's replicas (default 60)",
    )
    p.add_argument(
        "--txn-timeout",
        type=float,
        default=60.0,
        help="abort an open transaction whose client sent nothing for this many seconds"
        " (default 60)",
    )
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser(
        "init",
        help="bootstrap a new cluster once its first nodes are up",
        description="Bootstrap the cluster: creates the meta range on the first three nodes.",
    )
    p.add_argument("--host", required=True, help="HOST:PORT of any started node")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser(
        "sql",
        help="interactive SQL shell (or run -e statements)",
        description="Run SQL against a cluster: interactive, from -e, or from stdin.",
    )
    p.add_argument("--host", required=True, help="HOST:PORT[,HOST:PORT...] of nodes to use")
    p.add_argument(
        "-e", "--execute", action="append", metavar="SQL", help="run SQL and exit (repeatable)"
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--on-error", choices=["stop", "continue"], default="stop")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser(
        "demo",
        help="start an embedded local cluster and open the shell",
        description="Start an embedded local cluster in a temporary directory.",
    )
    p.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    p.add_argument(
        "--global",
        dest="global_",
        action="store_true",
        help="9 nodes in 3 regions (us-east, us-west, eu-west) with simulated round trips"
        " (66/64/146 ms) and a sample multi-region database, movr",
    )
    p.add_argument(
        "-e", "--execute", action="append", metavar="SQL", help="run SQL and exit (repeatable)"
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--log-level", default="error", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_cmd_demo)

    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except AdminError as exc:
        return _die(str(exc), 1)
    return result


if __name__ == "__main__":
    sys.exit(main())

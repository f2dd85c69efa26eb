"""``atlasql node ...`` and ``atlasql range ...``: the operator commands.

Each command talks to one node's Admin service (``--host``), prints a table (or csv/tsv/json/
markdown with ``--format``), and exits non-zero with a clear message when the host cannot be
reached or the cluster refuses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from proto import pb, rpc

from .config import ConfigError, parse_hostport
from .format import format_result

FORMATS = ("table", "csv", "tsv", "json", "markdown")


class AdminError(Exception):
    """Printed as ``atlasql: error: ...`` with exit code 1."""


@contextmanager
def _admin(host: str) -> Iterator[rpc.AdminStub]:
    try:
        address = parse_hostport(host, "--host")
    except ConfigError as exc:
        raise AdminError(str(exc)) from exc
    channel = grpc.insecure_channel(address)
    try:
        yield rpc.AdminStub(channel)
    finally:
        channel.close()


def _call(fn: Callable[[], object], host: str) -> object:
    try:
        return fn()
    except grpc.RpcError as exc:
        raise AdminError(f"cannot reach {host}: {exc.code().name}") from exc


def _locality(info: pb.NodeInfo) -> str:
    return ",".join(f"{t.key}={t.value}" for t in info.locality.tiers) or "-"


def _uptime(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{(s % 3600) // 60:02d}m{s % 60:02d}s"


def node_ls(args: argparse.Namespace) -> int:
    with _admin(args.host) as admin:
        resp = _call(lambda: admin.ClusterStatus(pb.ClusterStatusRequest(), timeout=10), args.host)
    assert isinstance(resp, pb.ClusterStatusResponse)
    rows = [
        (
            f"n{st.node.node_id}",
            st.node.address,
            _locality(st.node),
            "live" if st.reachable else "unreachable",
        )
        for st in resp.nodes
    ]
    print(format_result(["id", "address", "locality", "liveness"], rows, args.format))
    return 0


def node_status(args: argparse.Namespace) -> int:
    with _admin(args.host) as admin:
        resp = _call(lambda: admin.ClusterStatus(pb.ClusterStatusRequest(), timeout=10), args.host)
    assert isinstance(resp, pb.ClusterStatusResponse)
    nodes = [st for st in resp.nodes if args.node_id is None or st.node.node_id == args.node_id]
    if args.node_id is not None and not nodes:
        raise AdminError(f"no node n{args.node_id} in the cluster")
    rows = [
        (
            f"n{st.node.node_id}",
            st.node.address,
            _locality(st.node),
            "live" if st.reachable else "unreachable",
            len(st.replicas) if st.reachable else "-",
            sum(1 for r in st.replicas if r.is_leader) if st.reachable else "-",
            sum(1 for r in st.replicas if r.stopped) if st.reachable else "-",
            f"{st.disk_bytes / 1e6:.1f} MB" if st.reachable else "-",
            _uptime(st.uptime_seconds),
        )
        for st in nodes
    ]
    headers = [
        "id",
        "address",
        "locality",
        "liveness",
        "replicas",
        "leaders",
        "stopped",
        "disk",
        "uptime",
    ]
    print(format_result(headers, rows, args.format))
    return 0


def node_drain(args: argparse.Namespace) -> int:
    with _admin(args.host) as admin:
        resp = _call(
            lambda: admin.Drain(
                pb.DrainRequest(node_id=args.node_id, timeout_seconds=args.timeout),
                timeout=args.timeout + 10,
            ),
            args.host,
        )
    assert isinstance(resp, pb.DrainResponse)
    if resp.error.code:
        raise AdminError(resp.error.message)
    print(
        f"n{args.node_id} drained: {resp.leaders_moved} leaders moved, "
        f"{resp.leaders_left} left; it no longer accepts client statements"
    )
    return 0 if resp.leaders_left == 0 else 1


def node_decommission(args: argparse.Namespace) -> int:
    failures = 0
    with _admin(args.host) as admin:
        try:
            stream = admin.Decommission(pb.DecommissionRequest(node_id=args.node_id), timeout=3600)
            for step in stream:
                if step.error.code:
                    failures += 1
                    print(
                        f"\natlasql: range {step.range_id}: {step.error.message}", file=sys.stderr
                    )
                elif step.message and not step.range_id:
                    print(step.message, file=sys.stderr)
                _progress(step.replicas_moved, step.replicas_total, args.node_id)
                if step.done:
                    break
        except grpc.RpcError as exc:
            raise AdminError(f"cannot reach {args.host}: {exc.code().name}") from exc
    print()
    if failures:
        raise AdminError(f"{failures} range(s) could not be moved off n{args.node_id}")
    print(f"n{args.node_id} decommissioned: it holds no table replicas")
    return 0


def _progress(done: int, total: int, node_id: int) -> None:
    width = 30
    filled = width if total == 0 else width * done // total
    bar = "#" * filled + "-" * (width - filled)
    sys.stdout.write(f"\rdecommissioning n{node_id} [{bar}] {done}/{total} replicas moved")
    sys.stdout.flush()


def node_rtt(args: argparse.Namespace) -> int:
    with _admin(args.host) as admin:
        resp = _call(
            lambda: admin.MeasureRtt(pb.MeasureRttRequest(samples=args.samples), timeout=120),
            args.host,
        )
    assert isinstance(resp, pb.MeasureRttResponse)
    rows = [
        (
            f"n{resp.node_id}",
            resp.region,
            f"n{p.node_id}",
            p.region or "-",
            f"{p.configured_ms:.1f}",
            f"{p.measured_ms:.1f}" if p.measured_ms >= 0 else "unreachable",
        )
        for p in resp.peers
    ]
    headers = ["from", "region", "to", "region", "configured ms", "measured ms"]
    print(format_result(headers, rows, args.format))
    return 0


def range_ls(args: argparse.Namespace) -> int:
    with _admin(args.host) as admin:
        cat = _call(lambda: admin.GetCatalog(pb.CatalogRequest(), timeout=10), args.host)
        status = _call(
            lambda: admin.ClusterStatus(pb.ClusterStatusRequest(), timeout=10), args.host
        )
    assert isinstance(cat, pb.CatalogResponse) and isinstance(status, pb.ClusterStatusResponse)
    if cat.error.code:
        raise AdminError(cat.error.message)
    leaders: dict[int, int] = {}
    terms: dict[int, int] = {}
    for st in status.nodes:
        for r in st.replicas:
            if r.is_leader:
                leaders[r.range_id] = st.node.node_id
            terms[r.range_id] = max(terms.get(r.range_id, 0), r.term)
    ranges = [
        r for r in cat.catalog.ranges if args.table is None or r.table.lower() == args.table.lower()
    ]
    if args.table is not None and not ranges:
        raise AdminError(f"no table {args.table}")
    rows = [
        (
            r.range_id,
            r.table,
            ",".join(f"n{n}" for n in r.replicas),
            ",".join(f"n{n}" for n in r.non_voters) or "-",
            f"n{leaders[r.range_id]}" if r.range_id in leaders else "-",
            terms.get(r.range_id, 0),
            r.generation,
        )
        for r in ranges
    ]
    headers = ["range", "table", "voters", "non-voters", "leader", "term", "generation"]
    print(format_result(headers, rows, args.format))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``node ...`` and ``range ...`` on the top-level parser."""
    p = sub.add_parser("node", help="inspect and operate nodes")
    nsub = p.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--host", required=True, help="HOST:PORT of any node")
        q.add_argument("--format", choices=FORMATS, default="table")

    q = nsub.add_parser("ls", help="list the nodes and their liveness")
    common(q)
    q.set_defaults(func=node_ls)
    q = nsub.add_parser("status", help="locality, liveness, replicas, leaders, uptime")
    q.add_argument("node_id", type=int, nargs="?", help="one node (default: all)")
    common(q)
    q.set_defaults(func=node_status)
    q = nsub.add_parser("drain", help="move a node's leaders away, then stop its client work")
    q.add_argument("node_id", type=int)
    q.add_argument("--timeout", type=float, default=60.0)
    common(q)
    q.set_defaults(func=node_drain)
    q = nsub.add_parser("rtt", help="measured round trips to every node beside --rtt-matrix")
    q.add_argument("--samples", type=int, default=5, help="pings per node (default 5)")
    common(q)
    q.set_defaults(func=node_rtt)
    q = nsub.add_parser("decommission", help="move all of a node's replicas to other nodes")
    q.add_argument("node_id", type=int)
    common(q)
    q.set_defaults(func=node_decommission)

    p = sub.add_parser("range", help="inspect ranges")
    rsub = p.add_subparsers(dest="range_command", required=True, metavar="RANGE_COMMAND")
    q = rsub.add_parser("ls", help="ranges with their replicas and leaders")
    q.add_argument("--table", help="only this table's ranges")
    common(q)
    q.set_defaults(func=range_ls)

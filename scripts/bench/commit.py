"""Commit latency and throughput: atlasql vs etcd 3.4, both 3 members on loopback.

Two figures per system, measured by clients in this process:

* latency at 1 client: N sequential single-row writes (after a warm-up), the gateway chosen
  round-robin per request over the 3 nodes; p50/p90/p99, also split into "gateway is the
  leader's node" and "gateway is a follower";
* throughput at C concurrent clients (default 64, threads, one connection each, client i on
  node i mod 3, distinct keys) over a fixed duration: ops/s and p50/p90/p99.

atlasql writes are ``INSERT INTO bench(id, v) VALUES (?, ?)`` through ``sqlfront.connect``;
etcd writes are ``PUT`` through its v3 HTTP/JSON gateway over keep-alive ``http.client``
connections. Then the ratios against the engine issue's targets are printed. Nothing here is
an assertion: this is a report.

    python scripts/bench/commit.py                    # full run (needs etcd, ~1-2 min)
    python scripts/bench/commit.py --requests 200 --duration 3 --skip-etcd
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import benchlib
from benchlib import (
    add_common_args,
    atlasql_cluster,
    log_alarms,
    print_alarms,
    print_table,
    summarize,
    work_dir,
    write_json,
)

import sqlfront  # noqa: E402 - benchlib put the repo root on sys.path
from tests.cluster import free_port, wait_for  # noqa: E402

VALUE = "v" * 16
P50_TARGET = 2.0  # atlasql p50 / etcd p50 at 1 client must be <= this
OPS_TARGET = 1.0  # atlasql ops/s / etcd ops/s at 64 clients must be >= this


class Writer(Protocol):
    """One client connection that can write one key."""

    def put(self, key: int) -> None: ...

    def close(self) -> None: ...


class System(Protocol):
    """A running 3-member system under test."""

    name: str
    members: int

    def writer(self, member: int) -> Writer: ...

    def leader(self) -> int | None: ...


# ---------------------------------------------------------------------------------------------
# atlasql
# ---------------------------------------------------------------------------------------------


class AtlasWriter:
    def __init__(self, addr: str) -> None:
        self.conn = sqlfront.connect(addr, timeout=30.0)
        self.cur = self.conn.cursor()

    def put(self, key: int) -> None:
        self.cur.execute("INSERT INTO bench(id, v) VALUES (?, ?)", (key, VALUE))

    def close(self) -> None:
        self.conn.close()


class Atlas:
    name = "atlasql"

    def __init__(self, cluster: benchlib.Cluster) -> None:
        self.cluster = cluster
        self.members = cluster.n
        conn = sqlfront.connect(cluster.addrs())
        conn.cursor().execute("CREATE TABLE bench(id INTEGER PRIMARY KEY, v TEXT)")
        conn.close()
        ids = {r.range_id for i in range(1, cluster.n + 1) for r in cluster.status(i).replicas}
        others = sorted(ids - {1})
        self.range_id = others[0] if others else None
        if len(others) != 1:
            print(f"note: expected one non-meta range after CREATE TABLE, saw {sorted(ids)}")

    def writer(self, member: int) -> Writer:
        return AtlasWriter(self.cluster.addr(member + 1))

    def leader(self) -> int | None:
        if self.range_id is None:
            return None
        node = self.cluster.leader_of(self.range_id)
        return None if node is None else node - 1


# ---------------------------------------------------------------------------------------------
# etcd
# ---------------------------------------------------------------------------------------------

ETCD_HELP = (
    "etcd not found. Install etcd 3.4 (Debian/Ubuntu): "
    "sudo apt-get update && sudo apt-get install -y etcd-server\n"
    "or pass --etcd-bin PATH, or run with --skip-etcd to measure atlasql only."
)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class EtcdWriter:
    def __init__(self, port: int, api: str) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.path = f"{api}/kv/put"

    def put(self, key: int) -> None:
        body = json.dumps({"key": b64(f"bench/{key}"), "value": b64(VALUE)})
        self.http.request("POST", self.path, body, {"Content-Type": "application/json"})
        resp = self.http.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"etcd put: HTTP {resp.status}: {data[:200]!r}")

    def close(self) -> None:
        self.http.close()


def etcd_call(port: int, path: str, payload: dict[str, Any], timeout: float = 5) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data)
    finally:
        conn.close()


class Etcd:
    name = "etcd"

    def __init__(self, binary: str, root: Path, n: int = 3) -> None:
        self.binary = binary
        self.root = root
        self.members = n
        self.client_ports = [free_port() for _ in range(n)]
        self.peer_ports = [free_port() for _ in range(n)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.api = "/v3"
        self.version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()[0:1]

    def start(self) -> None:
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        for i in range(self.members):
            cport, pport = self.client_ports[i], self.peer_ports[i]
            log = open(self.root / f"etcd-m{i}.log", "ab")  # noqa: SIM115 - owned by the proc
            self.procs.append(
                subprocess.Popen(
                    [
                        self.binary,
                        "--name",
                        f"m{i}",
                        "--data-dir",
                        str(self.root / f"etcd-m{i}"),
                        "--listen-client-urls",
                        f"http://127.0.0.1:{cport}",
                        "--advertise-client-urls",
                        f"http://127.0.0.1:{cport}",
                        "--listen-peer-urls",
                        f"http://127.0.0.1:{pport}",
                        "--initial-advertise-peer-urls",
                        f"http://127.0.0.1:{pport}",
                        "--initial-cluster",
                        initial,
                        "--initial-cluster-state",
                        "new",
                        "--initial-cluster-token",
                        "atlasql-bench",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        t0 = time.monotonic()
        for i in range(self.members):
            wait_for(f"etcd m{i} healthy", lambda i=i: self._healthy(i), timeout=30)
        # etcd 3.4 serves the gateway under /v3 (and the older /v3beta); 3.3 only /v3beta.
        for api in ("/v3", "/v3beta"):
            try:
                etcd_call(
                    self.client_ports[0],
                    f"{api}/kv/put",
                    {"key": b64("bench/probe"), "value": b64(VALUE)},
                )
                self.api = api
                break
            except (RuntimeError, OSError):
                continue
        else:
            raise RuntimeError("etcd answers neither /v3/kv/put nor /v3beta/kv/put")
        print(
            f"etcd: {self.members} members up in {time.monotonic() - t0:.1f}s "
            f"({' '.join(self.version)}; gateway {self.api})"
        )

    def _healthy(self, i: int) -> bool:
        if self.procs[i].poll() is not None:
            raise RuntimeError(f"etcd m{i} exited; see {self.root / f'etcd-m{i}.log'}")
        conn = http.client.HTTPConnection("127.0.0.1", self.client_ports[i], timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status == 200 and b"true" in resp.read()
        except OSError:
            return False
        finally:
            conn.close()

    def writer(self, member: int) -> Writer:
        return EtcdWriter(self.client_ports[member], self.api)

    def leader(self) -> int | None:
        ids: dict[str, int] = {}
        leader_id = None
        for i, port in enumerate(self.client_ports):
            try:
                st = etcd_call(port, f"{self.api}/maintenance/status", {})
            except (RuntimeError, OSError):
                continue
            ids[str(st["header"]["member_id"])] = i
            leader_id = str(st.get("leader", leader_id))
        return ids.get(leader_id) if leader_id else None

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    clients: int
    label: str
    latencies: list[float] = field(default_factory=list)
    elapsed: float | None = None
    errors: int = 0
    first_error: str = ""

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "system": self.system,
            "clients": self.clients,
            "label": self.label,
            "errors": self.errors,
        }
        out.update(summarize(self.latencies, self.elapsed))
        if self.first_error:
            out["first_error"] = self.first_error
        return out


def latency_run(
    system: System, requests: int, warmup: int, keys: Callable[[], int]
) -> list[Result]:
    """One client, sequential writes, gateway round-robin per request; split by leader."""
    writers = [system.writer(m) for m in range(system.members)]
    try:
        for k in range(warmup):
            writers[k % len(writers)].put(keys())
        leader_before = system.leader()
        total = Result(system.name, 1, "round-robin")
        on_leader = Result(system.name, 1, "  gateway = leader")
        off_leader = Result(system.name, 1, "  gateway = follower")
        for k in range(requests):
            member = k % len(writers)
            key = keys()
            t0 = time.perf_counter()
            try:
                writers[member].put(key)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                total.errors += 1
                total.first_error = total.first_error or f"{type(exc).__name__}: {exc}"
                continue
            dt = time.perf_counter() - t0
            total.latencies.append(dt)
            (on_leader if member == leader_before else off_leader).latencies.append(dt)
        leader_after = system.leader()
    finally:
        for w in writers:
            w.close()
    if leader_before is None or leader_before != leader_after:
        print(
            f"note: {system.name} leader was {leader_before} before and {leader_after} after "
            "the latency run; leader/follower split is unreliable"
        )
        return [total]
    for r in (on_leader, off_leader):
        r.elapsed = sum(r.latencies)
    total.elapsed = sum(total.latencies)
    return [total, on_leader, off_leader]


def throughput_run(
    system: System, clients: int, duration: float, keys: Callable[[], int]
) -> Result:
    """``clients`` threads, one connection each (client i on member i mod n), for ``duration``."""
    result = Result(system.name, clients, "concurrent")
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    start_box: list[float] = []
    ends: list[float] = []

    def client(i: int) -> None:
        lat: list[float] = []
        errors = 0
        first_error = ""
        writer: Writer | None = None
        try:
            writer = system.writer(i % system.members)
            for _ in range(3):  # warm the connection
                writer.put(keys())
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            first_error = f"{type(exc).__name__}: {exc}"
        ready.wait()
        deadline = start_box[0] + duration
        if writer is not None:
            while time.perf_counter() < deadline:
                key = keys()
                t0 = time.perf_counter()
                try:
                    writer.put(key)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
                    time.sleep(0.01)
                    continue
                lat.append(time.perf_counter() - t0)
            writer.close()
        with lock:
            result.latencies.extend(lat)
            result.errors += errors
            result.first_error = result.first_error or first_error
            ends.append(time.perf_counter())

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    # Every client has connected and warmed up at the barrier; the clock starts at its release.
    start_box.append(time.perf_counter())
    ready.wait()
    for t in threads:
        t.join(timeout=duration + 60)
    result.elapsed = (max(ends) if ends else time.perf_counter()) - start_box[0]
    return result


def key_counter(base: int) -> Callable[[], int]:
    lock = threading.Lock()
    state = [base]

    def nxt() -> int:
        with lock:
            state[0] += 1
            return state[0]

    return nxt


def measure(system: System, args: argparse.Namespace) -> list[Result]:
    keys = key_counter(0)
    print(
        f"{system.name}: latency, 1 client, {args.requests} writes (+{args.warmup} warm-up) ...",
        flush=True,
    )
    results = latency_run(system, args.requests, args.warmup, keys)
    print(f"{system.name}: throughput, {args.clients} clients, {args.duration:g}s ...", flush=True)
    results.append(throughput_run(system, args.clients, args.duration, keys))
    return results


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="writes measured at 1 client (default 2000)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="writes before the 1-client measurement (default 100)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of the concurrent run (default 10)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=64,
        help="concurrent clients in the throughput run (default 64)",
    )
    parser.add_argument("--skip-etcd", action="store_true", help="measure atlasql only")
    parser.add_argument("--etcd-bin", default=None, help="etcd binary (default: etcd on PATH)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clients < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--requests and --clients must be >= 1, --duration > 0, --warmup >= 0")

    etcd_bin = None
    if not args.skip_etcd:
        etcd_bin = shutil.which(args.etcd_bin or "etcd")
        if etcd_bin is None:
            print(ETCD_HELP, file=sys.stderr)
            return 2

    results: list[Result] = []
    alarms: list[str] = []
    with work_dir(args.nodes_dir, "bench-commit") as root:
        (root / "atlasql").mkdir()
        with atlasql_cluster(root / "atlasql") as cluster:
            results += measure(Atlas(cluster), args)
        alarms = log_alarms(root / "atlasql")
        if etcd_bin is not None:
            (root / "etcd").mkdir()
            etcd = Etcd(etcd_bin, root / "etcd")
            try:
                etcd.start()
                results += measure(etcd, args)
            finally:
                etcd.stop()

    rows = [r.row() for r in results]
    print()
    print_table(
        ["system", "clients", "run", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "errors"],
        [
            [
                r["system"],
                r["clients"],
                r["label"],
                r["ops"],
                r["ops_per_s"],
                r["p50_ms"],
                r["p90_ms"],
                r["p99_ms"],
                r["errors"],
            ]
            for r in rows
        ],
    )
    for r in rows:
        if r.get("first_error"):
            print(f"first error ({r['system']}, {r['clients']} clients): {r['first_error']}")

    def pick(system: str, clients: int, label: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if (r["system"], r["clients"], r["label"]) == (system, clients, label)
            ),
            None,
        )

    print_alarms(alarms)

    ratios: dict[str, float] = {}
    a1, e1 = pick("atlasql", 1, "round-robin"), pick("etcd", 1, "round-robin")
    ac, ec = pick("atlasql", args.clients, "concurrent"), pick("etcd", args.clients, "concurrent")
    print()
    if a1 and e1:
        ratios["p50_1_client"] = a1["p50_ms"] / e1["p50_ms"]
        verdict = "meets" if ratios["p50_1_client"] <= P50_TARGET else "misses"
        print(
            f"atlasql p50 / etcd p50 at 1 client:  {ratios['p50_1_client']:.2f}  "
            f"(target <= {P50_TARGET:.1f}: {verdict})"
        )
    if ac and ec:
        ratios["ops_concurrent"] = ac["ops_per_s"] / ec["ops_per_s"]
        verdict = "meets" if ratios["ops_concurrent"] >= OPS_TARGET else "misses"
        print(
            f"atlasql ops/s / etcd ops/s at {args.clients} clients:  "
            f"{ratios['ops_concurrent']:.2f}  (target >= {OPS_TARGET:.1f}: {verdict})"
        )
    if not ratios:
        print(
            "no etcd run: ratios not computed (targets: p50 ratio <= 2.0 at 1 client, "
            f"ops/s ratio >= 1.0 at {args.clients} clients)"
        )

    write_json(
        args.json,
        {
            "benchmark": "commit",
            "args": vars(args),
            "results": rows,
            "ratios": ratios,
            "atlasql_log_alarms": alarms,
            "targets": {"p50_1_client_max": P50_TARGET, "ops_concurrent_min": OPS_TARGET},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

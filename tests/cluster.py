"""Test harness: real ``atlasql start`` processes on free loopback ports with temp data dirs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import pb, rpc

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, fn: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Poll ``fn`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - reported if the deadline passes
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc}")


def atlasql(
    *args: str, timeout: float = 60.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (``python -m sqlfront.cli`` = the ``atlasql`` script)."""
    return subprocess.run(
        [sys.executable, "-m", "sqlfront.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


class Cluster:
    """N node processes. Node ids are 1..N."""

    def __init__(
        self,
        root: Path,
        n: int = 3,
        secret: str = "test-secret",
        extra_args: tuple[str, ...] = (),
        metrics: bool = False,
        regions: dict[int, str] | None = None,
    ) -> None:
        self.root = root
        self.n = n
        self.secret = secret
        self.extra_args = extra_args
        self.regions = regions or {}
        self.http_ports = {i: free_port() for i in range(1, n + 1)} if metrics else {}
        self.ports = {i: free_port() for i in range(1, n + 1)}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def addr(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    def addrs(self, *ids: int) -> str:
        return ",".join(self.addr(i) for i in (ids or sorted(self.ports)))

    def data_dir(self, i: int) -> Path:
        return self.root / f"n{i}"

    def start(self, i: int, *, wait: bool = True) -> None:
        log = open(self.root / f"n{i}.log", "ab")  # noqa: SIM115 - closed with the process
        env = dict(os.environ, ATLASQL_CLUSTER_SECRET=self.secret)
        self.procs[i] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sqlfront.cli",
                "start",
                "--node-id",
                str(i),
                "--locality",
                f"region={self.regions.get(i, 'local')},zone=z{i}",
                "--listen",
                self.addr(i),
                "--join",
                self.addrs(),
                "--data-dir",
                str(self.data_dir(i)),
                "--log-level",
                "info",
                "--enable-fault-injection",
                *self.extra_args,
                *(["--http-addr", f"127.0.0.1:{self.http_ports[i]}"] if self.http_ports else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        if wait:
            wait_for(f"n{i} healthy", lambda: self.healthy(i), timeout=30)

    def start_all(self) -> None:
        for i in sorted(self.ports):
            self.start(i, wait=False)
        for i in sorted(self.ports):
            wait_for(f"n{i} healthy", lambda i=i: self.healthy(i), timeout=30)

    def healthy(self, i: int) -> bool:
        proc = self.procs.get(i)
        if proc is None or proc.poll() is not None:
            raise AssertionError(f"n{i} is not running; log:\n{self.log_tail(i)}")
        with grpc.insecure_channel(self.addr(i)) as ch:
            try:
                resp = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1
                )
            except grpc.RpcError:
                return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    def init(self) -> str:
        res = atlasql("init", "--host", self.addr(1))
        assert res.returncode == 0, res.stderr
        return res.stdout

    def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def status(self, i: int) -> pb.StatusResponse:
        with grpc.insecure_channel(self.addr(i)) as ch:
            return rpc.AdminStub(ch).Status(pb.StatusRequest(), timeout=5)

    def leader_of(self, range_id: int) -> int | None:
        for i in sorted(self.procs):
            try:
                st = self.status(i)
            except grpc.RpcError:
                continue
            for r in st.replicas:
                if r.range_id == range_id and r.is_leader:
                    return i
        return None

    def inject(self, i: int, request: pb.FaultRequest) -> None:
        with grpc.insecure_channel(self.addr(i)) as ch:
            resp = rpc.AdminStub(ch).InjectFault(request, timeout=5)
        assert not resp.error.code, resp.error.message

    def partition(self, isolated: int) -> None:
        """Cut node ``isolated`` off from every other running node, both ways."""
        others = [i for i in self.procs if i != isolated]
        self.inject(isolated, pb.FaultRequest(heal=True, partition=others))
        for i in others:
            self.inject(i, pb.FaultRequest(heal=True, partition=[isolated]))

    def heal(self) -> None:
        for i in self.procs:
            self.inject(i, pb.FaultRequest(heal=True))

    def log_tail(self, i: int, lines: int = 40) -> str:
        path = self.root / f"n{i}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def metrics_text(self, node: int) -> str:
        """The node's Prometheus page (the cluster must be started with ``metrics=True``)."""
        url = f"http://127.0.0.1:{self.http_ports[node]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def metric(self, sample: str, *nodes: int) -> float:
        """The sum over ``nodes`` (all by default) of the samples named exactly ``sample``,
        labels included, e.g. ``'atlasql_txn_events_total{event="commit_fast"}'``."""
        prefix = sample + " "
        return sum(
            float(line[len(prefix) :])
            for node in nodes or sorted(self.ports)
            for line in self.metrics_text(node).splitlines()
            if line.startswith(prefix)
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


@contextlib.contextmanager
def running(root: Path, **kwargs: object) -> Iterator[Cluster]:
    """A started and initialised cluster (``Cluster`` arguments), stopped on exit."""
    c = Cluster(root, **kwargs)  # type: ignore[arg-type]
    c.start_all()
    try:
        c.init()
        yield c
    finally:
        c.stop_all()

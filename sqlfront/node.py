"""The node: composition root wiring store, router, gateway and the gRPC services together.

One ``atlasql start`` process runs one ``Node``: a gRPC server on ``--listen`` (SQL, Admin,
Internal and standard health checking), a ``Store`` of replicas with its tick loop, and a
background loop that gossips with ``--join`` peers, registers the node in the meta range,
refreshes the catalog and opens or removes replicas to match it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto import pb, rpc
from raftgroups import (
    META_RANGE_ID,
    SECRET_METADATA_KEY,
    NotLeaderError,
    ProposalDropped,
    ProposalTimeout,
    RaftError,
    RangeNotFoundError,
    ReplicaStopped,
    Store,
    catalog_version,
    read_catalog,
)
from router import (
    DEFAULT_DATABASE,
    Action,
    CatalogCache,
    ChannelPool,
    NodeDesc,
    Policy,
    RangeSender,
    RangeState,
    RangeUnavailableError,
    Rule,
    database_key,
    next_action,
    range_for_key,
    rule_for,
)
from storage import Engine, EngineFailure, sqlstate
from storage.keys import decode_key

from .config import NodeConfig
from .gateway import Gateway
from .metrics import NodeMetrics
from .planner import table_shape
from .services import AdminService, InternalService, SqlService
from .txn import recover

log = logging.getLogger(__name__)

_LIVE_WINDOW = 5.0
# gRPC handler threads. Client statements and forwarded range requests block a thread while
# their Raft entry commits, so each kind is admitted only up to a cap that leaves threads free
# for Raft traffic: a burst of clients must never starve the messages that commit their writes.
_GRPC_WORKERS = 256
_MAX_CLIENT_STATEMENTS = 128
_MAX_FORWARDED = 96
_LOOP_PERIOD = 0.5
# Seconds between gossip (Hello) rounds once this node is registered; every loop before. Each
# round is a gRPC call to every other node (9 nodes: 144 calls/s at 0.5 s, about 8 % of a
# core); liveness also comes from the Raft links' node heartbeats (every 0.2 s).
_GOSSIP_PERIOD = 2.0
_DISK_TTL = 10.0
_SPLIT_CHECK_PERIOD = 10.0  # seconds between size checks of one range
# An intent prepared this long ago whose transaction was not resolved: ask its record range.
_RECOVER_AFTER = 4.0
_ALLOCATE_PERIOD = 2.0  # seconds between allocator passes (on the meta range's leader)
_ALLOCATE_STEPS = 4  # replica or leader moves per pass, at most


class _NodeState:
    """What a node persists about itself in ``DATA_DIR/node.json``."""

    def __init__(self, path: str, node_id: int) -> None:
        self.path = path
        self.node_id = node_id
        self.cluster_id = ""
        self.meta_replicas: list[int] = []
        self.replicas: dict[int, list[int]] = {}
        self.addresses: dict[int, str] = {}
        self._lock = threading.Lock()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if int(data.get("node_id", node_id)) != node_id:
                raise SystemExit(
                    f"--data-dir {os.path.dirname(path)} belongs to node {data['node_id']}, "
                    f"not to --node-id {node_id}"
                )
            self.cluster_id = str(data.get("cluster_id", ""))
            self.meta_replicas = [int(x) for x in data.get("meta_replicas", [])]
            self.replicas = {
                int(k): [int(x) for x in v] for k, v in data.get("replicas", {}).items()
            }
            self.addresses = {int(k): str(v) for k, v in data.get("addresses", {}).items()}

    def save(self) -> None:
        with self._lock:
            data = {
                "node_id": self.node_id,
                "cluster_id": self.cluster_id,
                "meta_replicas": self.meta_replicas,
                "replicas": {str(k): v for k, v in sorted(self.replicas.items())},
                "addresses": {str(k): v for k, v in sorted(self.addresses.items())},
            }
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


class _SecretInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Rejects Internal calls without the cluster secret before the body is decoded."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad or missing cluster secret")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if self._secret and details.method.startswith("/atlasql.v1.Internal/"):
            given = dict(details.invocation_metadata or ()).get(SECRET_METADATA_KEY, "")
            if not hmac.compare_digest(given.encode(), self._secret):
                return self._deny
        return continuation(details)


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        os.makedirs(config.data_dir, exist_ok=True)
        self.state = _NodeState(os.path.join(config.data_dir, "node.json"), self.node_id)
        self.state.addresses[self.node_id] = config.address
        self._last_seen: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._registered = False
        self._catalog_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._state_lock = threading.Lock()  # node.json: reconcile and split children
        self._split_checked: dict[int, float] = {}
        self.auto_splits = 0
        self._last_allocate = 0.0
        self.allocator_reasons: dict[int, str] = {}
        self.started_at = time.time()
        self.started_at_monotonic = time.monotonic()
        metadata = ((SECRET_METADATA_KEY, config.cluster_secret),) if config.cluster_secret else ()
        self.store = Store(
            node_id=self.node_id,
            data_dir=config.data_dir,
            resolve=self.resolve,
            secret=config.cluster_secret,
            log_max_entries=config.raft_log_max_entries,
            log_keep=max(1, config.raft_log_max_entries // 10),
        )
        self._regions: dict[int, str] = {self.node_id: config.region}
        self.channels = ChannelPool(
            metadata, rtt_to=self._rtt_to_address if config.rtt_matrix is not None else None
        )
        self.catalog = CatalogCache()
        self.store.transport.faults.geo_delay = self._geo_delay
        self.store.on_split_child = self._split_child
        self.sender = RangeSender(
            node_id=self.node_id,
            local=self,
            resolve=self._resolve_unless_partitioned,
            channels=self.channels,
            link=self.store.transport.call,
        )
        self.store.transport.serve_call = self.serve_forwarded
        self.gateway = Gateway(self)
        self.gateway.txn_timeout = config.txn_timeout
        self.gateway.coordinator.count = lambda event: self.metrics.txn_events.labels(event).inc()
        self.server: grpc.Server | None = None
        self._health = health.HealthServicer()
        self.draining = False
        self._disk_bytes, self._disk_measured_at = 0, -_DISK_TTL
        self.metrics = NodeMetrics(self.store.metrics_snapshot)
        self.client_slots = threading.BoundedSemaphore(_MAX_CLIENT_STATEMENTS)
        self.forward_slots = threading.BoundedSemaphore(_MAX_FORWARDED)
        self._thread: threading.Thread | None = None

    # -- directory ---------------------------------------------------------------------------

    def resolve(self, node_id: int) -> str | None:
        addr = self.state.addresses.get(node_id)
        if addr:
            return addr
        info = self.catalog.node(node_id)
        return info.address if info is not None else None

    def _resolve_unless_partitioned(self, node_id: int) -> str | None:
        if self.store.transport.faults.drops(node_id):
            return None
        return self.resolve(node_id)

    def region_of(self, node_id: int) -> str:
        region = self._regions.get(node_id)
        if region is None:
            info = self.catalog.node(node_id)
            if info is not None and info.locality.tiers:
                region = self._regions[node_id] = info.locality.tiers[0].value
        return region or ""

    def _geo_delay(self, peer: int) -> float:
        """One-way delay to ``peer`` under the configured RTT matrix (seconds)."""
        matrix = self.config.rtt_matrix
        if matrix is None:
            return 0.0
        return matrix.one_way(self.config.region, self.region_of(peer))

    def _rtt_to_address(self, address: str) -> float:
        matrix = self.config.rtt_matrix
        if matrix is None:
            return 0.0
        for node_id, addr in list(self.state.addresses.items()):
            if addr == address:
                return matrix.rtt(self.config.region, self.region_of(node_id))
        return 0.0

    def _seen(self, info: pb.NodeInfo) -> None:
        if info.node_id and info.locality.tiers:
            self._regions[info.node_id] = info.locality.tiers[0].value
        if not info.node_id or not info.address:
            return
        with self._lock:
            changed = self.state.addresses.get(info.node_id) != info.address
            self.state.addresses[info.node_id] = info.address
            self._last_seen[info.node_id] = time.monotonic()
        if changed:
            self.state.save()

    def _heard(self) -> dict[int, float]:
        """When each known node was last heard from: by gossip, or on its Raft link (node
        heartbeats, every 0.2 s, to the nodes sharing a range with us)."""
        with self._lock:
            heard = dict(self._last_seen)
        for n, t in list(self.store.transport.last_heard.items()):
            if n in heard and t > heard[n]:
                heard[n] = t
        return heard

    def live_nodes(self) -> list[int]:
        now = time.monotonic()
        live = {n for n, t in self._heard().items() if now - t < _LIVE_WINDOW}
        live.add(self.node_id)
        return sorted(live)

    def info(self) -> pb.NodeInfo:
        loc = pb.Locality(tiers=[pb.LocalityTier(key=k, value=v) for k, v in self.config.locality])
        return pb.NodeInfo(
            node_id=self.node_id,
            address=self.config.address,
            locality=loc,
            cluster_id=self.state.cluster_id,
        )

    # -- Cluster protocol (used by the gateway) ----------------------------------------------

    def meta_descriptor(self) -> pb.RangeDescriptor | None:
        if not self.state.cluster_id or not self.state.meta_replicas:
            return None
        return pb.RangeDescriptor(range_id=META_RANGE_ID, replicas=self.state.meta_replicas)

    def refresh_catalog(self) -> None:
        desc = self.meta_descriptor()
        if desc is None:
            return
        with self._catalog_lock:
            res = self.sender.send(desc, pb.Command(read=pb.SqlRead(catalog=True)), budget=5.0)
            if res.rows:
                cat = pb.Catalog()
                cat.ParseFromString(res.rows[0].values[0].blob)
                self.catalog.update(cat)

    def sync_catalog(self, *, consistent: bool) -> None:
        """Bring the cached catalog up to date: a consistent read on the meta range, or
        (``consistent=False``) the newest catalog a meta replica has applied."""
        if consistent:
            self.refresh_catalog()
        else:
            self.poll_catalog()

    def local_catalog(self) -> pb.Catalog | None:
        """The catalog as applied by this node's meta replica (no Raft round; may lag)."""
        try:
            group = self.store.get(META_RANGE_ID)
        except (RangeNotFoundError, ReplicaStopped):
            return None
        if 0 < catalog_version(group.engine) <= self.catalog.version:
            return self.catalog.snapshot()  # nothing new: skip reading the whole catalog
        return read_catalog(group.engine)

    def poll_catalog(self) -> None:
        """Cheap background refresh: pick up a newer catalog version from a meta replica's
        applied state, without adding a Raft entry (misses still do a consistent refresh)."""
        desc = self.meta_descriptor()
        if desc is None:
            return
        local = self.local_catalog()
        if local is not None:
            self.catalog.update(local)
            return
        leader = self.sender.leader_of(META_RANGE_ID)
        order = ([leader] if leader else []) + [r for r in desc.replicas if r != leader]
        for node in order:
            address = self._resolve_unless_partitioned(node)
            if not address:
                continue
            try:
                resp = self.channels.internal(address).GetCatalog(
                    pb.CatalogRequest(known_version=self.catalog.version),
                    timeout=2.0,
                    metadata=self.channels.metadata,
                )
            except grpc.RpcError:
                continue
            if resp.HasField("error") and resp.error.code:
                continue
            if not resp.unchanged:
                self.catalog.update(resp.catalog)
            return

    def choose_replicas(self, count: int, region: str = "") -> list[int]:
        """``count`` nodes for a new range: live ones (those of ``region`` first, one per zone
        where possible), rotated to spread ranges; topped up with registered nodes not heard
        from lately. The allocator corrects the placement afterwards."""
        live = self.live_nodes()
        registered = sorted({n.node_id for n in self.catalog.snapshot().nodes} - set(live))
        if len(live) <= count:
            return sorted(live + registered[: count - len(live)])
        start = int(self.catalog.snapshot().max_range_id) % len(live)
        rotated = live[start:] + live[:start]
        if region:
            home = [n for n in rotated if self.region_of(n) == region]
            rotated = home + [n for n in rotated if n not in home]
        return sorted(rotated[:count])

    def ensure_replicas_everywhere(self, nodes: list[int]) -> None:
        threads = []
        for n in nodes:
            if n == self.node_id:
                self.reconcile()
                continue
            address = self.resolve(n)
            if not address:
                continue

            def nudge(addr: str = address) -> None:
                try:
                    self.channels.internal(addr).EnsureReplicas(
                        pb.EnsureReplicasRequest(), timeout=3.0, metadata=self.channels.metadata
                    )
                except grpc.RpcError:
                    pass  # the node picks the range up on its next catalog refresh

            t = threading.Thread(target=nudge, daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(timeout=3.5)

    def replica_checksum(self, node: int, range_id: int, index: int) -> str | None:
        if node == self.node_id:
            return self.local_checksum(range_id, index, wait=5.0)
        address = self._resolve_unless_partitioned(node)
        if not address:
            return None
        try:
            resp = self.channels.internal(address).GetChecksum(
                pb.ChecksumRequest(range_id=range_id, index=index, wait_seconds=5.0),
                timeout=7.0,
                metadata=self.channels.metadata,
            )
        except grpc.RpcError:
            return None
        return resp.checksum or None

    def change_replicas(
        self, range_id: int, voters: list[int], non_voters: list[int]
    ) -> pb.RangeDescriptor:
        """Move a range to a new replica set, one voter added or removed at a time.

        Additions: the catalog first (so the new node opens an empty replica), then a
        ChangeReplicas entry on the range (the leader then feeds it, by snapshot if its log
        was compacted). Removals: the range first, then the catalog (the node then deletes its
        replica). A leader is moved away before it is removed.
        """
        if range_id == META_RANGE_ID:
            raise RangeUnavailableError(
                sqlstate.FEATURE_NOT_SUPPORTED, "the meta range's replicas cannot be changed yet"
            )
        self.refresh_catalog()
        desc = self.catalog.range(range_id)
        if desc is None:
            raise RangeUnavailableError(sqlstate.RANGE_NOT_FOUND, f"no range {range_id}")
        # registered nodes, and nodes known by gossip that have not registered yet
        known = {n.node_id for n in self.catalog.snapshot().nodes} | set(self.state.addresses)
        for n in set(voters) | set(non_voters):
            if n not in known:
                raise RangeUnavailableError(sqlstate.INVALID_PARAMETER, f"no node n{n}")
        before = set(desc.replicas) | set(desc.non_voters)
        after = set(voters) | set(non_voters)
        generation = desc.generation + 1
        update = pb.MetaOp(
            update_range=pb.UpdateRange(
                range_id=range_id, voters=voters, non_voters=non_voters, generation=generation
            )
        )
        added, removed = after - before, before - after
        if added:
            self.run_meta(update)
            self.ensure_replicas_everywhere(sorted(added))
        leader = self.sender.leader_of(range_id)
        if leader and leader not in voters:
            self.relocate_leader(range_id, voters[0])
        change = pb.Command(
            change_replicas=pb.ChangeReplicas(
                voters=voters, non_voters=non_voters, generation=generation
            )
        )
        change.session_id, change.seq = f"replicas-{uuid.uuid4().hex}", 1
        res = self.sender.send(desc, change)
        if res.HasField("error") and res.error.code:
            raise RangeUnavailableError(res.error.code, res.error.message)
        if not added:
            self.run_meta(update)
        self.refresh_catalog()
        if removed:
            self.ensure_replicas_everywhere(sorted(removed))
        new = self.catalog.range(range_id)
        assert new is not None
        return new

    # -- operator actions ------------------------------------------------------------------------

    def measure_rtt(self, samples: int) -> pb.MeasureRttResponse:
        """Ping every other known node (Internal.Hello, through the same delayed channels as
        all node-to-node calls) and report the median round trip beside the configured one."""
        out = pb.MeasureRttResponse(node_id=self.node_id, region=self.config.region)
        matrix = self.config.rtt_matrix
        for node_id, address in sorted(self.state.addresses.items()):
            if node_id == self.node_id:
                continue
            times = []
            for _ in range(max(1, min(samples, 50))):
                t0 = time.perf_counter()
                try:
                    self.channels.internal(address).Hello(
                        pb.HelloRequest(node=self.info()),
                        timeout=5.0,
                        metadata=self.channels.metadata,
                    )
                except grpc.RpcError:
                    continue
                times.append(time.perf_counter() - t0)
            region = self.region_of(node_id)
            configured = matrix.rtt(self.config.region, region) if matrix else 0.0
            measured = sorted(times)[len(times) // 2] * 1000 if times else -1.0
            out.peers.add(
                node_id=node_id,
                region=region,
                configured_ms=configured * 1000,
                measured_ms=measured,
            )
        return out

    def _leaders_on(self, node_id: int) -> list[int]:
        for st in self.cluster_status().nodes:
            if st.node.node_id == node_id and st.reachable:
                return [r.range_id for r in st.replicas if r.is_leader]
        return []

    def drain(self, node_id: int, timeout: float) -> pb.DrainResponse:
        """Move every leader off ``node_id``, then make it refuse client work and elections."""
        resp = pb.DrainResponse()
        address = self._resolve_unless_partitioned(node_id)
        if not address:
            resp.error.code = sqlstate.INVALID_PARAMETER
            resp.error.message = f"no reachable node n{node_id}"
            return resp
        self._set_draining(node_id, address)
        deadline = time.monotonic() + timeout
        self.refresh_catalog()
        while time.monotonic() < deadline:
            leaders = self._leaders_on(node_id)
            if not leaders:
                break
            for range_id in leaders:
                desc = self.catalog.range(range_id) or (
                    self.meta_descriptor() if range_id == META_RANGE_ID else None
                )
                targets = [n for n in (desc.replicas if desc else []) if n != node_id]
                if not targets:
                    continue
                try:
                    self.relocate_leader(range_id, targets[0], timeout=5.0)
                    resp.leaders_moved += 1
                except RangeUnavailableError:
                    continue
        resp.leaders_left = len(self._leaders_on(node_id))
        return resp

    def _set_draining(self, node_id: int, address: str) -> None:
        if node_id == self.node_id:
            self.set_draining()
            return
        try:
            self.channels.internal(address).SetDraining(
                pb.EnsureReplicasRequest(), timeout=5.0, metadata=self.channels.metadata
            )
        except grpc.RpcError as exc:
            raise RangeUnavailableError(
                sqlstate.CONNECTION_FAILURE, f"n{node_id} unreachable: {exc.code().name}"
            ) from exc

    def set_draining(self) -> None:
        """This node takes no new client statements and campaigns for no range."""
        self.draining = True
        self.store.draining = True
        self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

    def decommission(self, node_id: int) -> Iterator[pb.DecommissionProgress]:
        """Move every replica off ``node_id``, one range at a time (leaders first drained)."""
        self.refresh_catalog()
        cat = self.catalog.snapshot()
        if node_id not in {n.node_id for n in cat.nodes}:
            bad = pb.DecommissionProgress(done=True)
            bad.error.code = sqlstate.INVALID_PARAMETER
            bad.error.message = f"no node n{node_id}"
            yield bad
            return
        ranges = [r for r in cat.ranges if node_id in r.replicas or node_id in r.non_voters]
        progress = pb.DecommissionProgress(replicas_total=len(ranges))
        if node_id in self.state.meta_replicas:
            progress.message = (
                f"n{node_id} holds a meta range replica, which cannot be moved yet; "
                "its table ranges are moved"
            )
        yield progress
        address = self._resolve_unless_partitioned(node_id)
        if address:
            with contextlib.suppress(RangeUnavailableError):
                self.drain(node_id, timeout=20.0)
        counts: dict[int, int] = {}
        for r in cat.ranges:
            for n in list(r.replicas) + list(r.non_voters):
                counts[n] = counts.get(n, 0) + 1
        live = set(self.live_nodes())
        for r in ranges:
            step = pb.DecommissionProgress(replicas_total=len(ranges), range_id=r.range_id)
            try:
                if node_id in r.non_voters:
                    self.change_replicas(
                        r.range_id, list(r.replicas), [n for n in r.non_voters if n != node_id]
                    )
                else:
                    held = set(r.replicas) | set(r.non_voters)
                    spare = sorted(
                        (n for n in live if n not in held and n != node_id),
                        key=lambda n: (counts.get(n, 0), n),
                    )
                    if not spare:
                        raise RangeUnavailableError(
                            sqlstate.INVALID_PARAMETER,
                            f"range {r.range_id}: no other live node to move its replica to",
                        )
                    target = spare[0]
                    voters = list(r.replicas)
                    non_voters = [n for n in r.non_voters if n != target]
                    self.change_replicas(r.range_id, voters + [target], non_voters)
                    self.change_replicas(
                        r.range_id, [n for n in voters if n != node_id] + [target], non_voters
                    )
                    counts[target] = counts.get(target, 0) + 1
                progress.replicas_moved += 1
                step.message = f"range {r.range_id} moved off n{node_id}"
            except RangeUnavailableError as exc:
                step.error.code = exc.code
                step.error.message = exc.message
            step.replicas_moved = progress.replicas_moved
            yield step
        final = pb.DecommissionProgress(
            replicas_total=len(ranges), replicas_moved=progress.replicas_moved, done=True
        )
        yield final

    # -- splits ----------------------------------------------------------------------------------

    def _split_child(self, range_id: int, voters: list[int], non_voters: list[int]) -> None:
        """A split created a replica here (tick thread): remember it across restarts."""
        with self._state_lock:
            self.state.replicas[range_id] = list(voters)
            self.state.save()

    def split_range(self, table: str, split_key: bytes, database: str = "") -> tuple[int, int]:
        """Split the range of ``table`` holding ``split_key`` there; (left id, right id).

        The split is one entry in the range's log: every replica keeps the left half and
        creates the right one from its own state at that position, so writes before the entry
        land in the right half and writes after it are refused by the left (span check) and
        re-planned by their gateway. The catalog learns of the new descriptors afterwards (and
        the ranges' leaders repair it if this gateway dies in between). A key that already
        starts a range is a no-op.
        """
        for _attempt in range(5):
            self.refresh_catalog()
            desc = range_for_key(self.catalog.ranges_of(table, database), split_key)
            if desc is None:
                raise RangeUnavailableError(sqlstate.RANGE_NOT_FOUND, f"table {table} has no range")
            if desc.start_key == split_key:
                return desc.range_id, desc.range_id
            res = self.run_meta(pb.MetaOp(allocate_range_ids=pb.AllocateRangeIds(count=1)))
            new_id = int(res.rows[0].values[0].integer)
            split = pb.SplitRange(
                split_key=split_key,
                new_range_id=new_id,
                span=pb.Span(start_key=desc.start_key, end_key=desc.end_key),
                table=desc.table,
                database=desc.database,
            )
            cmd = pb.Command(split=split)
            cmd.session_id, cmd.seq = f"split-{uuid.uuid4().hex}", 1
            out = self.sender.send(desc, cmd)
            if out.HasField("error") and out.error.code == sqlstate.RANGE_MOVED:
                continue  # split or changed meanwhile: look again
            if out.HasField("error") and out.error.code:
                raise RangeUnavailableError(out.error.code, out.error.message)
            generation = int(out.rows[0].values[1].integer)
            left = pb.RangeDescriptor()
            left.CopyFrom(desc)
            left.end_key, left.generation = split_key, generation
            right = pb.RangeDescriptor()
            right.CopyFrom(left)
            right.range_id, right.start_key, right.end_key = new_id, split_key, desc.end_key
            self.run_meta(pb.MetaOp(upsert_ranges=pb.UpsertRanges(ranges=[left, right])))
            self.refresh_catalog()
            return desc.range_id, new_id
        raise RangeUnavailableError(
            sqlstate.SERIALIZATION_FAILURE, f"range of {table} kept changing: split not done"
        )

    def _maybe_split(self) -> None:
        """Split (at its median key) one range led here whose data passed --range-max-bytes.
        Each range is measured at most every _SPLIT_CHECK_PERIOD seconds."""
        now = time.monotonic()
        for group in self.store.leaders():
            rid = group.range_id
            if (
                rid == META_RANGE_ID
                or now - self._split_checked.get(rid, 0.0) < _SPLIT_CHECK_PERIOD
            ):
                continue
            self._split_checked[rid] = now
            desc = self.catalog.range(rid)
            table = self.catalog.table(desc.table, desc.database) if desc is not None else None
            if desc is None or table is None:
                continue
            try:
                if group.engine.live_bytes() <= self.config.range_max_bytes:
                    continue  # the common case: no count(*) and median scan
                size, key = Engine.split_candidate(group.engine.path, table.name)
            except EngineFailure as exc:
                log.warning("n%d: cannot measure range %d: %s", self.node_id, rid, exc)
                continue
            if size <= self.config.range_max_bytes or key is None or key == desc.start_key:
                continue
            shape = table_shape(table.name, table.create_sql, tuple(table.index_sql))
            if shape.unique_beyond_key or not shape.binary_key:
                continue  # such tables cannot split (see the gateway's SPLIT AT)
            try:
                left, right = self.split_range(table.name, key, table.database)
            except RangeUnavailableError as exc:
                log.warning(
                    "n%d: automatic split of range %d failed: %s", self.node_id, rid, exc.message
                )
                continue
            self.auto_splits += 1
            log.info(
                "n%d: range %d of %s held %d bytes: split off range %d",
                self.node_id,
                left,
                table.name,
                size,
                right,
            )
            return  # one split per pass

    # -- placement ---------------------------------------------------------------------------

    def node_descs(self) -> list[NodeDesc]:
        """Every registered node with its region, zone and liveness (dead: silent for longer
        than --dead-node-timeout)."""
        now = time.monotonic()
        live = set(self.live_nodes())
        seen = self._heard()
        out = []
        for n in self.catalog.snapshot().nodes:
            tiers = {t.key: t.value for t in n.locality.tiers}
            last = seen.get(n.node_id)
            silent = now - (last if last is not None else self.started_at_monotonic)
            dead = n.node_id not in live and silent > self.config.dead_node_timeout
            out.append(
                NodeDesc(
                    node_id=n.node_id,
                    region=tiers.get("region", ""),
                    zone=tiers.get("zone", ""),
                    live=n.node_id in live,
                    dead=dead,
                )
            )
        return out

    def policy_for(
        self, database: str, table: str, range_desc: pb.RangeDescriptor | None = None
    ) -> Policy | None:
        """The placement policy of a table of a multi-region database (None otherwise); for a
        REGIONAL BY ROW table, of its range ``desc`` (homed in the region its keys start with)."""
        rng = range_desc
        desc = self.catalog.table(table, database)
        if desc is None:
            return None
        db = next(
            (d for d in self.catalog.snapshot().databases if d.name.lower() == database.lower()),
            None,
        )
        if db is None or not db.primary_region:
            return None
        locality = desc.locality
        home = locality[len("table:") :] if locality.startswith("table:") else db.primary_region
        if locality.startswith("row:") and rng is not None and rng.start_key:
            first = decode_key(rng.start_key)[0]
            if isinstance(first, str) and first in db.regions:
                home = first
        return Policy(
            home_region=home,
            regions=tuple(db.regions),
            survival=db.survival or "zone",
            global_table=locality == "global",
        )

    def placement_plan(
        self, leaders: dict[int, int] | None = None
    ) -> list[tuple[pb.RangeDescriptor, Policy, Rule, Action]]:
        """For every range of a multi-region database: its policy, rule and next action."""
        cat = self.catalog.snapshot()
        nodes = self.node_descs()
        leaders = self.range_leaders() if leaders is None else leaders
        replica_counts: dict[int, int] = {}
        for r in cat.ranges:
            for n in [*r.replicas, *r.non_voters]:
                replica_counts[n] = replica_counts.get(n, 0) + 1
        leader_counts: dict[int, int] = {}
        for n in leaders.values():
            leader_counts[n] = leader_counts.get(n, 0) + 1
        out = []
        for desc in cat.ranges:
            policy = self.policy_for(desc.database or DEFAULT_DATABASE, desc.table, desc)
            if policy is None:
                continue
            rule = rule_for(policy, nodes)
            state = RangeState(
                range_id=desc.range_id,
                voters=tuple(desc.replicas),
                non_voters=tuple(desc.non_voters),
                leader=leaders.get(desc.range_id, 0),
            )
            action = next_action(
                rule, state, nodes, replica_counts=replica_counts, leader_counts=leader_counts
            )
            out.append((desc, policy, rule, action))
        return out

    def _allocate(self) -> None:
        """One allocator pass, on the meta range's leader only: at most _ALLOCATE_STEPS moves,
        one per range, each the most urgent step toward the range's placement rule."""
        try:
            if not self.store.get(META_RANGE_ID).is_leader():
                return
        except RaftError:
            return
        if not any(d.primary_region for d in self.catalog.snapshot().databases):
            return
        steps = 0
        spread = False
        # The meta leader's own applied catalog is the newest there is: no Raft entry (a
        # consistent read would add one every pass once the meta range's lease ran out,
        # waking its replicas every 2 s).
        leaders = self.range_leaders(consistent=False)
        for desc, _policy, _rule, action in self.placement_plan(leaders):
            self.allocator_reasons[desc.range_id] = action.reason
            if action.kind == "none" or steps >= _ALLOCATE_STEPS:
                continue
            if action.reason.startswith("spreading"):
                # The plan's leader counts are from before this pass: several ranges would
                # all move to the same least-loaded node and the imbalance would just flip.
                if spread:
                    continue
                spread = True
            steps += 1
            voters, non_voters = list(desc.replicas), list(desc.non_voters)
            n = action.node
            try:
                if action.kind == "transfer_leader":
                    self.relocate_leader(desc.range_id, n, timeout=5.0)
                    continue
                if action.kind == "add_voter":
                    voters, non_voters = voters + [n], [x for x in non_voters if x != n]
                elif action.kind == "remove_voter":
                    voters = [x for x in voters if x != n]
                elif action.kind == "add_non_voter":
                    non_voters = non_voters + [n]
                elif action.kind == "remove_non_voter":
                    non_voters = [x for x in non_voters if x != n]
                elif action.kind == "promote_non_voter":
                    voters, non_voters = voters + [n], [x for x in non_voters if x != n]
                elif action.kind == "demote_voter":
                    voters, non_voters = [x for x in voters if x != n], non_voters + [n]
                else:
                    log.warning("allocator: unknown action %s", action.kind)
                    continue
                self.change_replicas(desc.range_id, voters, non_voters)
                log.info("allocator: range %d: %s", desc.range_id, action.reason)
            except RangeUnavailableError as exc:
                log.warning(
                    "allocator: range %d: %s failed: %s", desc.range_id, action.reason, exc.message
                )

    def replicas_by_distance(self, desc: pb.RangeDescriptor) -> list[int]:
        """The range's replicas (voters and non-voters), nearest first: this node, then by
        simulated or measured round trip to the replica's region, then node id."""
        nodes = [*desc.replicas, *desc.non_voters]
        return sorted(nodes, key=lambda n: (n != self.node_id, self._geo_delay(n), n))

    def range_leaders(self, *, consistent: bool = True) -> dict[int, int]:
        """range id -> the node that leads it, as the nodes report (unreachable: absent)."""
        leaders: dict[int, int] = {}
        for st in self.cluster_status(consistent=consistent).nodes:
            for r in st.replicas:
                if r.is_leader:
                    leaders[r.range_id] = st.node.node_id
        return leaders

    def _repair_descriptors(self, cat: pb.Catalog) -> None:
        """Ranges led here whose span the catalog does not show (a split whose gateway died
        before recording it): record what the range itself holds."""
        known = {r.range_id: r for r in cat.ranges}
        fixes = []
        for group in self.store.leaders():
            range_id = group.range_id
            span = group.engine.span()
            if span is None:
                continue
            cur = known.get(range_id)
            if cur is not None and (cur.start_key, cur.end_key) == (span[1], span[2]):
                continue
            config = group.engine.replica_config()
            voters, non_voters, generation = config if config else (group.voters, [], 1)
            fixes.append(
                pb.RangeDescriptor(
                    range_id=range_id,
                    table=span[0],
                    database=group.engine.span_database(),
                    start_key=span[1],
                    end_key=span[2],
                    replicas=voters,
                    non_voters=non_voters,
                    generation=generation,
                )
            )
        if fixes:
            log.info("n%d: recording %d range descriptor(s) after splits", self.node_id, len(fixes))
            self.run_meta(pb.MetaOp(upsert_ranges=pb.UpsertRanges(ranges=fixes)))

    def run_meta(self, op: pb.MetaOp, *, budget: float = 10.0) -> pb.CommandResult:
        """Apply one catalog change on the meta range (retried at most once per change)."""
        desc = self.meta_descriptor()
        if desc is None:
            raise RangeUnavailableError(
                sqlstate.NOT_INITIALIZED,
                "the cluster is not initialised yet: run `atlasql init --host HOST:PORT`",
            )
        cmd = pb.Command(meta=op)
        cmd.session_id, cmd.seq = f"meta-{uuid.uuid4().hex}", 1
        res = self.sender.send(desc, cmd, budget=budget)
        if res.HasField("error") and res.error.code:
            raise RangeUnavailableError(res.error.code, res.error.message)
        return res

    def transfer_leader_here(self, request: pb.TransferLeaderRequest) -> pb.TransferLeaderResponse:
        """Hand this node's leadership of a range to ``request.target``."""
        resp = pb.TransferLeaderResponse()
        try:
            resp.leader = self.store.transfer_leadership(
                request.range_id, request.target, min(max(request.timeout_seconds, 0.1), 30.0)
            )
        except NotLeaderError as exc:
            resp.error.code = sqlstate.NOT_LEADER
            resp.error.message = str(exc)
            resp.error.leader_hint = exc.leader_hint
        except (RangeNotFoundError, ReplicaStopped, ValueError) as exc:
            resp.error.code = sqlstate.RANGE_NOT_FOUND
            resp.error.message = str(exc)
        return resp

    def relocate_leader(self, range_id: int, target: int, timeout: float = 10.0) -> int:
        """Ask the range's leader (wherever it is) to hand leadership to ``target``."""
        desc = self.catalog.range(range_id)
        if desc is None and range_id == META_RANGE_ID:
            desc = self.meta_descriptor()
        if desc is None:
            raise RangeUnavailableError(sqlstate.RANGE_NOT_FOUND, f"no range {range_id}")
        if target not in desc.replicas:
            raise RangeUnavailableError(
                sqlstate.INVALID_PARAMETER,
                f"n{target} holds no replica of range {range_id} (replicas: "
                + ", ".join(f"n{r}" for r in desc.replicas)
                + ")",
            )
        deadline = time.monotonic() + timeout
        order = [self.sender.leader_of(range_id) or desc.replicas[0], *desc.replicas]
        while time.monotonic() < deadline:
            node = order.pop(0) if order else desc.replicas[0]
            request = pb.TransferLeaderRequest(
                range_id=range_id,
                target=target,
                timeout_seconds=max(0.1, deadline - time.monotonic()),
            )
            try:
                if node == self.node_id:
                    resp = self.transfer_leader_here(request)
                else:
                    address = self._resolve_unless_partitioned(node)
                    if not address:
                        continue
                    resp = self.channels.internal(address).TransferLeader(
                        request,
                        timeout=request.timeout_seconds + 2.0,
                        metadata=self.channels.metadata,
                    )
            except grpc.RpcError:
                continue
            if resp.HasField("error") and resp.error.code:
                if resp.error.code == sqlstate.NOT_LEADER and resp.error.leader_hint:
                    order.insert(0, resp.error.leader_hint)
                else:
                    time.sleep(0.1)
                continue
            if resp.leader == target:
                self.sender.remember_leader(range_id, target)
                return target
        raise RangeUnavailableError(
            sqlstate.RANGE_UNAVAILABLE,
            f"range {range_id}: leadership did not move to n{target} within {timeout:.0f}s",
        )

    def local_checksum(self, range_id: int, index: int, wait: float) -> str | None:
        deadline = time.monotonic() + min(max(wait, 0.0), 30.0)
        while True:
            try:
                group = self.store.get(range_id)
            except (RangeNotFoundError, ReplicaStopped):
                return None
            if group.engine.applied_index >= index:
                return group.engine.check_at(index)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    # -- LocalReplicas protocol (used by the sender) -----------------------------------------

    def serve_forwarded(self, request: pb.RangeRequest) -> pb.RangeResponse:
        """A statement another node's gateway sent to a range leader here (gRPC or link)."""
        if not request.HasField("command") or request.command.WhichOneof("op") is None:
            resp = pb.RangeResponse()
            resp.error.code = sqlstate.PROTOCOL_VIOLATION
            resp.error.message = "RangeExecute needs a command with an operation"
            return resp
        self.metrics.forwarded.inc()
        if not self.forward_slots.acquire(timeout=10.0):
            resp = pb.RangeResponse()
            resp.error.code = sqlstate.RANGE_UNAVAILABLE
            resp.error.message = "node overloaded with forwarded requests"
            return resp
        try:
            return self.propose_local(request.range_id, request.command, 5.0)
        finally:
            self.forward_slots.release()

    def propose_local(self, range_id: int, command: pb.Command, timeout: float) -> pb.RangeResponse:
        resp = pb.RangeResponse()
        if command.WhichOneof("op") != "read":
            self.metrics.proposals.inc()
        elif command.read.max_staleness_ms:
            try:
                result = self.store.follower_read(range_id, command.read)
            except RangeNotFoundError as exc:
                resp.error.code, resp.error.message = sqlstate.RANGE_NOT_FOUND, str(exc)
                return resp
            except (ReplicaStopped, EngineFailure) as exc:
                resp.error.code, resp.error.message = sqlstate.RANGE_UNAVAILABLE, str(exc)
                return resp
            if result is None:
                resp.error.code = sqlstate.STALE_REPLICA
                resp.error.message = f"n{self.node_id}'s replica of range {range_id} is too stale"
                return resp
            resp.result.CopyFrom(result)
            return resp
        try:
            resp.result.CopyFrom(self.store.propose(range_id, command, timeout))
        except NotLeaderError as exc:
            resp.error.code = sqlstate.NOT_LEADER
            resp.error.message = str(exc)
            resp.error.leader_hint = exc.leader_hint
        except RangeNotFoundError as exc:
            resp.error.code = sqlstate.RANGE_NOT_FOUND
            resp.error.message = str(exc)
        except (ProposalDropped, ReplicaStopped, EngineFailure) as exc:
            resp.error.code = sqlstate.RANGE_UNAVAILABLE
            resp.error.message = str(exc)
        except ProposalTimeout as exc:
            resp.error.code = sqlstate.AMBIGUOUS_RESULT
            resp.error.message = str(exc)
        return resp

    # -- replicas ------------------------------------------------------------------------------

    def reconcile(self, *, consistent: bool = True) -> None:
        """Open replicas the catalog places here; remove those of dropped tables."""
        with self._reconcile_lock:  # the background loop and EnsureReplicas calls race
            self._reconcile(consistent)

    def _reconcile(self, consistent: bool) -> None:
        try:
            self.sync_catalog(consistent=consistent)
        except RangeUnavailableError:
            return
        cat = self.catalog.snapshot()
        wanted: dict[int, pb.RangeDescriptor] = {}
        for r in cat.ranges:
            if self.node_id in r.replicas or self.node_id in r.non_voters:
                wanted[r.range_id] = r
        changed = False
        tables = {database_key(t.database) + "." + t.name.lower() for t in cat.tables}
        listed = {r.range_id for r in cat.ranges}
        for range_id, desc in wanted.items():
            peers = list(desc.replicas)
            with self._state_lock:
                if self.state.replicas.get(range_id) != peers:
                    self.state.replicas[range_id] = peers
                    changed = True
            self.store.ensure_replica(
                range_id,
                peers,
                # only a brand-new range's first replica campaigns at once
                campaign=peers[0] == self.node_id and desc.generation == 1,
                non_voters=list(desc.non_voters),
                generation=int(desc.generation),
            )
        for range_id in list(self.state.replicas):
            if range_id == META_RANGE_ID or range_id in wanted or range_id > cat.max_range_id:
                continue
            if range_id not in listed and self._split_child_table(range_id) in tables:
                continue  # born from a split the catalog has not recorded yet
            with self._state_lock:
                self.state.replicas.pop(range_id, None)
            self.store.remove_replica(range_id)
            changed = True
        if changed:
            with self._state_lock:
                self.state.save()
        try:
            self._repair_descriptors(cat)
        except RangeUnavailableError as exc:
            log.warning("n%d: descriptor repair failed: %s", self.node_id, exc.message)

    def _split_child_table(self, range_id: int) -> str:
        """The table a local replica with a span holds ('' if none or unknown)."""
        span = self.store.replica_span(range_id)
        if span is None:
            return ""
        return database_key(span[3]) + "." + span[0].lower()

    def _open_meta(self, campaign: bool) -> None:
        if self.node_id in self.state.meta_replicas:
            self.store.ensure_replica(META_RANGE_ID, self.state.meta_replicas, campaign=campaign)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        host = self.config.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"
        try:
            self.store.transport.listen(host, self.config.raft_port)
        except OSError as exc:
            raise SystemExit(
                f"--raft-port: cannot bind {host}:{self.config.raft_port}: {exc}"
            ) from None
        self.store.start()
        self._open_meta(campaign=False)
        for range_id, peers in sorted(self.state.replicas.items()):
            if range_id != META_RANGE_ID:
                self.store.ensure_replica(range_id, peers)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=_GRPC_WORKERS, thread_name_prefix="grpc"),
            interceptors=[_SecretInterceptor(self.config.cluster_secret)],
            options=[
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        rpc.add_SQLServicer_to_server(SqlService(self), server)
        rpc.add_AdminServicer_to_server(AdminService(self), server)
        rpc.add_InternalServicer_to_server(InternalService(self), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                pb.DESCRIPTOR.services_by_name["SQL"].full_name,
                pb.DESCRIPTOR.services_by_name["Admin"].full_name,
                pb.DESCRIPTOR.services_by_name["Internal"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        if server.add_insecure_port(self.config.listen) == 0:
            raise SystemExit(f"--listen: cannot bind {self.config.listen}")
        server.start()
        self.server = server
        if self.config.http_addr:
            self.metrics.serve(self.config.http_addr)
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._thread = threading.Thread(target=self._background, name="node-loop", daemon=True)
        self._thread.start()
        log.info("n%d serving on %s", self.node_id, self.config.listen)

    def stop(self) -> None:
        self._stop.set()
        self._health.enter_graceful_shutdown()
        if self.server is not None:
            self.server.stop(grace=0.5).wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.stop()
        self.channels.close()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    # -- background loop -----------------------------------------------------------------------

    def _background(self) -> None:
        last_reconcile = last_gossip = 0.0
        while not self._stop.is_set():
            try:
                if not self._registered or time.monotonic() - last_gossip >= _GOSSIP_PERIOD:
                    last_gossip = time.monotonic()
                    self._gossip()
                if self.state.cluster_id:
                    if not self._registered:
                        self._register()
                    if time.monotonic() - last_reconcile > 1.0:
                        self.reconcile(consistent=False)
                        last_reconcile = time.monotonic()
                        self._maybe_split()
                        self.gateway.sweep_transactions()
                        self._recover_intents()
                    if time.monotonic() - self._last_allocate > _ALLOCATE_PERIOD:
                        self._last_allocate = time.monotonic()
                        self._allocate()
            except Exception:
                log.exception("n%d: background loop", self.node_id)
            self._stop.wait(_LOOP_PERIOD)

    def _recover_intents(self) -> None:
        """Resolve intents on ranges this node leads whose transaction's coordinator has
        gone quiet: the record range says COMMITTED, or writes ABORTED (then no late commit
        can succeed) and says so."""
        for group in self.store.leaders():
            for txn_id, record_range in group.txns.stale_intents(_RECOVER_AFTER):
                desc = self.catalog.range(record_range)
                if desc is None:
                    self.refresh_catalog()
                    desc = self.catalog.range(record_range)
                if desc is None:
                    continue
                fate = recover(self.sender, desc, txn_id)
                if fate is None:
                    continue
                log.info(
                    "n%d: range %d: transaction %s was %s; resolving its intent",
                    self.node_id,
                    group.range_id,
                    txn_id.hex()[:12],
                    "committed" if fate else "aborted",
                )
                cmd = pb.Command(txn_resolve=pb.TxnResolve(txn_id=txn_id, commit=fate))
                try:
                    self.store.propose(group.range_id, cmd, 5.0)
                except (NotLeaderError, ProposalTimeout, ProposalDropped, ReplicaStopped):
                    continue
                self.metrics.txn_recovered.inc()

    def _gossip(self) -> None:
        targets = set(self.config.join) | {
            a for n, a in self.state.addresses.items() if n != self.node_id
        }
        targets.discard(self.config.address)
        me = self.info()
        blocked = {
            self.state.addresses.get(n)
            for n in range(1, 1 + max(self.state.addresses, default=0))
            if self.store.transport.faults.drops(n)
        }
        for address in sorted(targets - blocked):
            try:
                resp = self.channels.internal(address).Hello(
                    pb.HelloRequest(node=me), timeout=1.0, metadata=self.channels.metadata
                )
            except grpc.RpcError:
                continue
            self._learn(resp)

    def _learn(self, resp: pb.HelloResponse) -> None:
        self._seen(resp.node)
        for n in resp.known_nodes:
            if n.node_id != self.node_id and n.address and n.node_id not in self.state.addresses:
                with self._lock:
                    self.state.addresses[n.node_id] = n.address
        cid = resp.node.cluster_id
        if cid and not self.state.cluster_id and resp.HasField("meta"):
            self.state.cluster_id = cid
            self.state.meta_replicas = list(resp.meta.replicas)
            self.state.save()
            self._open_meta(campaign=False)
            log.info("n%d joined cluster %s", self.node_id, cid)
        elif cid and self.state.cluster_id and cid != self.state.cluster_id:
            log.error(
                "n%d: peer n%d belongs to another cluster %s", self.node_id, resp.node.node_id, cid
            )

    def _register(self) -> None:
        if self.meta_descriptor() is None:
            return
        try:
            self.run_meta(pb.MetaOp(register_node=self.info()), budget=2.0)
        except RangeUnavailableError:
            return
        self._registered = True
        log.info("n%d registered in the catalog", self.node_id)

    def bootstrap(self, cluster_id: str, meta: pb.RangeDescriptor, nodes: list[pb.NodeInfo]) -> str:
        if self.state.cluster_id and self.state.cluster_id != cluster_id:
            return f"node {self.node_id} already belongs to cluster {self.state.cluster_id}"
        for n in nodes:
            self._seen(n)
        self.state.cluster_id = cluster_id
        self.state.meta_replicas = list(meta.replicas)
        self.state.save()
        self._open_meta(campaign=meta.replicas[0] == self.node_id)
        return ""

    def disk_bytes(self) -> int:
        """Bytes used by this node's data directory (re-measured at most every 10 s: Status
        is polled often and a walk stats every replica's files)."""
        now = time.monotonic()
        if now - self._disk_measured_at < _DISK_TTL:
            return self._disk_bytes
        total = 0
        for root, _dirs, files in os.walk(self.config.data_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, name))
        self._disk_bytes, self._disk_measured_at = total, now
        return total

    def cluster_status(self, *, consistent: bool = True) -> pb.ClusterStatusResponse:
        """Every known node's status, asked in parallel (unreachable ones flagged). The node
        list comes from a consistent catalog read, or with ``consistent=False`` from the
        newest catalog this node has seen (the allocator's passes: no Raft entry)."""
        try:
            self.sync_catalog(consistent=consistent)
        except RangeUnavailableError:
            pass
        infos = {n.node_id: n for n in self.catalog.snapshot().nodes}
        for n, addr in self.state.addresses.items():
            infos.setdefault(n, pb.NodeInfo(node_id=n, address=addr))
        out = pb.ClusterStatusResponse()

        def ask(info: pb.NodeInfo) -> pb.NodeStatus:
            status = pb.NodeStatus(node=info)
            if info.node_id == self.node_id:
                status.reachable = True
                status.replicas.extend(self.store.status())
                status.uptime_seconds = time.time() - self.started_at
                status.disk_bytes = self.disk_bytes()
                return status
            try:
                r = self.channels.admin(info.address).Status(pb.StatusRequest(), timeout=2.0)
            except grpc.RpcError:
                return status
            status.reachable = True
            status.node.CopyFrom(r.node)
            status.replicas.extend(r.replicas)
            status.uptime_seconds = r.uptime_seconds
            status.disk_bytes = r.disk_bytes
            return status

        with futures.ThreadPoolExecutor(max_workers=8) as pool:
            for st in pool.map(ask, [infos[k] for k in sorted(infos)]):
                out.nodes.append(st)
        return out

    def catalog_response(self, known_version: int, *, consistent: bool) -> pb.CatalogResponse:
        """The catalog for a client (consistent) or a peer (a meta replica's applied state)."""
        resp = pb.CatalogResponse()
        cat = None if consistent else self.local_catalog()
        if cat is None:
            try:
                self.refresh_catalog()
            except RangeUnavailableError as exc:
                resp.error.code = exc.code
                resp.error.message = exc.message
                return resp
            cat = self.catalog.snapshot()
        if known_version and cat.version == known_version:
            resp.unchanged = True
        else:
            resp.catalog.CopyFrom(cat)
        return resp

    def init_cluster(self) -> pb.InitResponse:
        if self.state.cluster_id:
            resp = pb.InitResponse(cluster_id=self.state.cluster_id)
            resp.error.code = "AQ006"
            resp.error.message = f"cluster {self.state.cluster_id} is already initialised"
            return resp
        deadline = time.monotonic() + 5.0
        wanted = min(3, 1 + len(set(self.config.join) - {self.config.address}))
        while len(self.live_nodes()) < wanted and time.monotonic() < deadline:
            self._gossip()
            time.sleep(0.1)
        members = self.live_nodes()[:3]
        cluster_id = uuid.uuid4().hex
        meta = pb.RangeDescriptor(range_id=META_RANGE_ID, replicas=members, generation=1)
        infos = [pb.NodeInfo(node_id=n, address=self.resolve(n) or "") for n in members]
        for n in members:
            if n == self.node_id:
                err = self.bootstrap(cluster_id, meta, infos)
            else:
                try:
                    r = self.channels.internal(self.resolve(n) or "").Bootstrap(
                        pb.BootstrapRequest(cluster_id=cluster_id, meta=meta, nodes=infos),
                        timeout=5.0,
                        metadata=self.channels.metadata,
                        wait_for_ready=True,
                    )
                    err = r.error.message
                except grpc.RpcError as exc:
                    err = f"n{n} unreachable: {exc.code().name}"
            if err:
                resp = pb.InitResponse()
                resp.error.code = sqlstate.SYSTEM_ERROR
                resp.error.message = err
                return resp
        deadline = time.monotonic() + 15.0
        while not self._registered and time.monotonic() < deadline:
            self._register()
        return pb.InitResponse(cluster_id=cluster_id, meta_replicas=members)

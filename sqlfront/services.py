"""The node's gRPC services: SQL (clients), Admin (operators) and Internal (node to node).

Thin adapters: each handler decodes nothing by hand (protobuf does), calls the ``Node`` and
turns failures into the response's structured ``Error``; no handler lets an exception take
the node down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import grpc

from proto import pb, rpc
from router import RangeUnavailableError
from storage import Engine, ValueTypeError, sqlstate

from .metrics import statement_kind

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)


class SqlService(rpc.SQLServicer):
    def __init__(self, node: Node) -> None:
        self._node = node

    def Execute(
        self, request: pb.ExecuteRequest, context: grpc.ServicerContext
    ) -> pb.ExecuteResponse:  # noqa: N802
        try:
            if not self._node.state.cluster_id:
                resp = pb.ExecuteResponse()
                resp.error.code = sqlstate.NOT_INITIALIZED
                resp.error.message = (
                    "the cluster is not initialised yet: run `atlasql init --host HOST:PORT`"
                )
                return resp
            if self._node.draining:
                resp = pb.ExecuteResponse()
                resp.error.code = "57P01"
                resp.error.message = "this node is draining: connect to another node"
                return resp
            if not self._node.client_slots.acquire(timeout=30.0):
                resp = pb.ExecuteResponse()
                resp.error.code = "53300"
                resp.error.message = "too many concurrent statements on this node; retry"
                return resp
            metrics = self._node.metrics
            kind = statement_kind(request.sql)
            metrics.statements.labels(kind).inc()
            started = time.perf_counter()
            cancel = threading.Event()
            # Runs when the call ends for any reason; before we answer, only if the client
            # cancelled it (Ctrl-C in the shell closes its channel) or its deadline passed.
            context.add_callback(cancel.set)
            try:
                resp = self._node.gateway.execute(request, cancel)
            finally:
                self._node.client_slots.release()
                metrics.latency.labels(kind).observe(time.perf_counter() - started)
            if resp.error.code:
                metrics.errors.labels(resp.error.code).inc()
            return resp
        except ValueTypeError as exc:
            resp = pb.ExecuteResponse()
            resp.error.code = sqlstate.PROTOCOL_VIOLATION
            resp.error.message = f"malformed request: {exc}"
            return resp
        except Exception as exc:  # never let one statement take the node down
            log.exception("statement failed: %.200s", request.sql)
            resp = pb.ExecuteResponse()
            resp.error.code = sqlstate.INTERNAL_ERROR
            resp.error.message = f"internal error: {type(exc).__name__}: {exc}"
            return resp


class AdminService(rpc.AdminServicer):
    def __init__(self, node: Node) -> None:
        self._node = node

    def Init(self, request: pb.InitRequest, context: grpc.ServicerContext) -> pb.InitResponse:  # noqa: N802
        return self._node.init_cluster()

    def Status(
        self,
        request: pb.StatusRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.StatusResponse:
        node = self._node
        known = [pb.NodeInfo(node_id=n, address=a) for n, a in sorted(node.state.addresses.items())]
        return pb.StatusResponse(
            node=node.info(),
            known_nodes=known,
            replicas=node.store.status(),
            uptime_seconds=time.time() - node.started_at,
            disk_bytes=node.disk_bytes(),
        )

    def GetCatalog(
        self,
        request: pb.CatalogRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.CatalogResponse:
        return self._node.catalog_response(request.known_version, consistent=True)

    def Drain(
        self,
        request: pb.DrainRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.DrainResponse:
        timeout = request.timeout_seconds if request.timeout_seconds > 0 else 30.0
        try:
            return self._node.drain(request.node_id, min(timeout, 300.0))
        except RangeUnavailableError as exc:
            resp = pb.DrainResponse()
            resp.error.code = exc.code
            resp.error.message = exc.message
            return resp

    def MeasureRtt(
        self,
        request: pb.MeasureRttRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.MeasureRttResponse:
        return self._node.measure_rtt(request.samples or 5)

    def Decommission(
        self,
        request: pb.DecommissionRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> Any:
        yield from self._node.decommission(request.node_id)

    def InjectFault(
        self,
        request: pb.FaultRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.FaultResponse:
        resp = pb.FaultResponse()
        node = self._node
        if not node.config.enable_fault_injection:
            resp.error.code = sqlstate.INSUFFICIENT_PRIVILEGE
            resp.error.message = "fault injection is disabled (start with --enable-fault-injection)"
            return resp
        faults = node.store.transport.faults
        if request.heal:
            faults.heal()
        if request.partition:
            faults.partition(set(request.partition))
        for peer, ms in request.delay_ms.items():
            faults.set_delay(peer, ms / 1000.0)
        if request.fail_next_log_write:
            node.store.log_store.fault_next_write = True
        if request.txn_crash:
            if request.txn_crash not in ("after_prepare", "after_commit"):
                resp.error.code = sqlstate.INVALID_PARAMETER
                resp.error.message = "txn_crash: after_prepare or after_commit"
                return resp
            node.gateway.coordinator.crash_at = request.txn_crash
        if request.convert_crash:
            if request.convert_crash not in ("after_copy", "before_swap"):
                resp.error.code = sqlstate.INVALID_PARAMETER
                resp.error.message = "convert_crash: after_copy or before_swap"
                return resp
            node.gateway.convert_crash_at = request.convert_crash
        return resp

    def ClusterStatus(
        self,
        request: pb.ClusterStatusRequest,  # noqa: N802
        context: grpc.ServicerContext,
    ) -> pb.ClusterStatusResponse:
        return self._node.cluster_status()


class InternalService(rpc.InternalServicer):
    def SetDraining(
        self,
        request: pb.EnsureReplicasRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.EnsureReplicasResponse:
        self._node.set_draining()
        return pb.EnsureReplicasResponse()

    def __init__(self, node: Node) -> None:
        self._node = node

    def Hello(self, request: pb.HelloRequest, context: grpc.ServicerContext) -> pb.HelloResponse:  # noqa: N802
        node = self._node
        if node.store.transport.faults.drops(request.node.node_id):
            context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned (fault injection)")
        node._seen(request.node)
        resp = pb.HelloResponse(
            node=node.info(),
            known_nodes=[
                pb.NodeInfo(node_id=n, address=a) for n, a in sorted(node.state.addresses.items())
            ],
        )
        desc = node.meta_descriptor()
        if desc is not None:
            resp.meta.CopyFrom(desc)
        return resp

    def Raft(self, request: pb.RaftBatch, context: grpc.ServicerContext) -> pb.RaftAck:  # noqa: N802
        self._node.store.transport.handle_batch(request)
        return pb.RaftAck()

    def RaftEndpoint(  # noqa: N802
        self, request: pb.RaftEndpointRequest, context: grpc.ServicerContext
    ) -> pb.RaftEndpointResponse:
        listener = self._node.store.transport.listener
        return pb.RaftEndpointResponse(
            node_id=self._node.node_id, port=listener.port if listener is not None else 0
        )

    def Bootstrap(
        self,
        request: pb.BootstrapRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.BootstrapResponse:
        resp = pb.BootstrapResponse()
        if not request.cluster_id or not request.meta.replicas:
            resp.error.code = sqlstate.PROTOCOL_VIOLATION
            resp.error.message = "bootstrap needs a cluster id and meta replicas"
            return resp
        err = self._node.bootstrap(request.cluster_id, request.meta, list(request.nodes))
        if err:
            resp.error.code = sqlstate.SYSTEM_ERROR
            resp.error.message = err
        return resp

    def RangeExecute(
        self,
        request: pb.RangeRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.RangeResponse:
        return self._node.serve_forwarded(request)

    def GetCatalog(
        self,
        request: pb.CatalogRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.CatalogResponse:
        return self._node.catalog_response(request.known_version, consistent=False)

    def GetChecksum(
        self,
        request: pb.ChecksumRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.ChecksumResponse:
        digest = self._node.local_checksum(request.range_id, request.index, request.wait_seconds)
        return pb.ChecksumResponse(checksum=digest or "")

    def InstallSnapshot(
        self,
        request_iterator: Any,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.SnapshotAck:
        store = self._node.store
        ack = pb.SnapshotAck()
        header: pb.SnapshotChunk | None = None
        path = ""
        received = 0
        try:
            f = None
            for chunk in request_iterator:
                if header is None:
                    header = chunk
                    store.get(header.range_id)  # raises when we hold no replica
                    path = store.snapshot_path(header.range_id)
                    f = open(path, "wb")  # noqa: SIM115 - closed below
                if chunk.data:
                    assert f is not None
                    f.write(chunk.data)
                    received += len(chunk.data)
            if header is None or f is None:
                ack.error.code = sqlstate.PROTOCOL_VIOLATION
                ack.error.message = "empty snapshot stream"
                return ack
            f.flush()
            os.fsync(f.fileno())
            f.close()
            if received != header.total_bytes:
                raise ValueError(f"snapshot truncated: {received} of {header.total_bytes} bytes")
            index, term = Engine.snapshot_position(path)
            if (index, term) != (header.index, header.term):
                raise ValueError("snapshot header does not match its contents")
            ack.installed_index = store.install_snapshot(
                header.range_id, path, index, term, header.leader_term
            )
        except Exception as exc:  # noqa: BLE001 - reported to the leader, which retries
            ack.error.code = sqlstate.RANGE_UNAVAILABLE
            ack.error.message = f"snapshot not installed: {exc}"
        finally:
            if path and os.path.exists(path):
                os.remove(path)
        return ack

    def TransferLeader(
        self,
        request: pb.TransferLeaderRequest,  # noqa: N802
        context: grpc.ServicerContext,
    ) -> pb.TransferLeaderResponse:
        return self._node.transfer_leader_here(request)

    def EnsureReplicas(
        self,
        request: pb.EnsureReplicasRequest,
        context: grpc.ServicerContext,  # noqa: N802
    ) -> pb.EnsureReplicasResponse:
        self._node.reconcile()
        return pb.EnsureReplicasResponse()

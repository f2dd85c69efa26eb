"""Sends one command to a range's leader, wherever it is, retrying within a budget.

The sender keeps a leader cache per range. It tries the cached leader, then every replica;
"not leader" answers carry a hint that is followed at once; an unreachable node is skipped.
Every command carries a (session id, sequence) pair that the range uses to apply it at most
once, so a retry after an ambiguous failure (timeout) is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import grpc

from proto import pb, rpc
from raftgroups import GRPC_OPTIONS
from storage import sqlstate

from .errors import RangeUnavailableError

log = logging.getLogger(__name__)


class LocalReplicas(Protocol):
    """What the sender needs from the node's store (declared by the consumer)."""

    def propose_local(
        self, range_id: int, command: pb.Command, timeout: float
    ) -> pb.RangeResponse: ...


class _DelayInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Simulated geography on gRPC forwarding: wait one round trip before each call."""

    def __init__(self, rtt: Callable[[], float]) -> None:
        self._rtt = rtt

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        delay = self._rtt()
        if delay > 0:
            time.sleep(delay)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation: Any, details: Any, iterator: Any) -> Any:
        delay = self._rtt()
        if delay > 0:
            time.sleep(delay)
        return continuation(details, iterator)


class ChannelPool:
    """One gRPC channel per peer address, with the cluster secret attached to every call."""

    def __init__(
        self,
        metadata: tuple[tuple[str, str], ...] = (),
        rtt_to: Callable[[str], float] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self.metadata = metadata
        self._rtt_to = rtt_to

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            ch = self._channels.get(address)
            if ch is None:
                ch = grpc.insecure_channel(address, options=GRPC_OPTIONS)
                if self._rtt_to is not None:
                    rtt_to = self._rtt_to
                    ch = grpc.intercept_channel(ch, _DelayInterceptor(lambda: rtt_to(address)))
                self._channels[address] = ch
        return ch

    def internal(self, address: str) -> rpc.InternalStub:
        return rpc.InternalStub(self._channel(address))

    def admin(self, address: str) -> rpc.AdminStub:
        """The peer's Admin service, on the same (delayed, reused) channel."""
        return rpc.AdminStub(self._channel(address))

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()


class RangeSender:
    def __init__(
        self,
        *,
        node_id: int,
        local: LocalReplicas,
        resolve: Callable[[int], str | None],
        channels: ChannelPool,
        request_timeout: float = 5.0,
        link: Callable[[int, pb.RangeRequest, float], pb.RangeResponse | None] | None = None,
    ) -> None:
        self.node_id = node_id
        # Forwarding over the node's Raft links (NodeTransport.call); gRPC when it has none.
        self._link = link
        self._local = local
        self._resolve = resolve
        self._channels = channels
        self._request_timeout = request_timeout
        self._leaders: dict[int, int] = {}
        self._lock = threading.Lock()
        self.retries = 0

    def leader_of(self, range_id: int) -> int:
        with self._lock:
            return self._leaders.get(range_id, 0)

    def remember_leader(self, range_id: int, leader: int) -> None:
        self._remember(range_id, leader)

    def _remember(self, range_id: int, leader: int) -> None:
        with self._lock:
            if leader:
                self._leaders[range_id] = leader
            else:
                self._leaders.pop(range_id, None)

    def _try(self, node: int, desc: pb.RangeDescriptor, command: pb.Command) -> pb.RangeResponse:
        if node == self.node_id:
            return self._local.propose_local(desc.range_id, command, self._request_timeout)
        address = self._resolve(node)
        if not address:
            err = pb.RangeResponse()
            err.error.code = sqlstate.RANGE_UNAVAILABLE
            err.error.message = f"address of n{node} unknown"
            return err
        request = pb.RangeRequest(range_id=desc.range_id, command=command)
        timeout = self._request_timeout + 1.0
        try:
            if self._link is not None:
                answer = self._link(node, request, timeout)
                if answer is not None:
                    return answer
            stub = self._channels.internal(address)
            resp: pb.RangeResponse = stub.RangeExecute(
                request, timeout=timeout, metadata=self._channels.metadata
            )
            return resp
        except grpc.RpcError as exc:
            reason = exc.code().name
        except TimeoutError:
            reason = "DEADLINE_EXCEEDED"
        except ConnectionError as exc:
            reason = f"UNAVAILABLE ({exc})"
        # The message starts with the node: the outcome of a write is unknown (see send).
        err = pb.RangeResponse()
        err.error.code = sqlstate.RANGE_UNAVAILABLE
        err.error.message = f"n{node} at {address}: {reason}"
        return err

    def send_follower_read(
        self, desc: pb.RangeDescriptor, command: pb.Command, nodes: list[int]
    ) -> tuple[int, pb.CommandResult] | None:
        """Ask ``nodes`` in order to serve a follower read: (the node that did, its result),
        or None if none is fresh enough or reachable (the caller then reads at the leader)."""
        for node in nodes:
            resp = self._try(node, desc, command)
            if not resp.HasField("error"):
                return node, resp.result
        return None

    def send(
        self,
        desc: pb.RangeDescriptor,
        command: pb.Command,
        *,
        budget: float = 10.0,
        idempotent: bool = True,
    ) -> pb.CommandResult:
        """Run ``command`` on the range's leader; raises ``RangeUnavailableError`` on timeout.

        ``idempotent=False``: a reply that leaves the outcome unknown (a timeout, a lost
        connection) is not retried but raised as AMBIGUOUS_RESULT (a transaction's commit)."""
        deadline = time.monotonic() + budget
        last_error = "no replica answered"
        attempt = 0
        while True:
            order: list[int] = []
            cached = self.leader_of(desc.range_id)
            if cached and cached in desc.replicas:
                order.append(cached)
            order += [r for r in desc.replicas if r == self.node_id and r not in order]
            order += [r for r in desc.replicas if r not in order]
            tried: set[int] = set()
            while order:
                node = order.pop(0)
                if node in tried:
                    continue
                tried.add(node)
                resp = self._try(node, desc, command)
                if not resp.HasField("error"):
                    self._remember(desc.range_id, node)
                    return resp.result
                code = resp.error.code
                last_error = resp.error.message
                if code == sqlstate.NOT_LEADER:
                    hint = resp.error.leader_hint
                    self._remember(desc.range_id, hint)
                    if hint and hint not in tried and hint in desc.replicas:
                        order.insert(0, hint)
                    continue
                if not idempotent and (
                    code == sqlstate.AMBIGUOUS_RESULT
                    or (code == sqlstate.RANGE_UNAVAILABLE and resp.error.message.startswith("n"))
                ):
                    if self.leader_of(desc.range_id) == node:
                        self._remember(desc.range_id, 0)
                    raise RangeUnavailableError(
                        sqlstate.AMBIGUOUS_RESULT, f"outcome unknown: {resp.error.message}"
                    )
                if code in (
                    sqlstate.RANGE_UNAVAILABLE,
                    sqlstate.RANGE_NOT_FOUND,
                    sqlstate.AMBIGUOUS_RESULT,
                ):
                    if self.leader_of(desc.range_id) == node:
                        self._remember(desc.range_id, 0)
                    continue
                # anything else is a definitive answer about the request
                raise RangeUnavailableError(code, resp.error.message)
            attempt += 1
            self.retries += 1
            if time.monotonic() >= deadline:
                raise RangeUnavailableError(
                    sqlstate.RANGE_UNAVAILABLE,
                    f"range {desc.range_id} unavailable after {attempt} attempts: {last_error}",
                )
            time.sleep(min(0.02 * attempt, 0.2))

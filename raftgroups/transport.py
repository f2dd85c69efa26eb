"""The node's Raft transport: one set of connections carries every range's messages.

pysyncobj's own TCP transport binds a port per group, pickles messages and authenticates only
with an optional password. Here each group gets a thin ``GroupTransport`` (a pysyncobj
``Transport``) that hands messages to the node-wide ``NodeTransport``; it batches them per peer
and sends them, multiplexed by range id and encoded as protobuf value trees (never pickle), on
one long-lived TCP link per peer to the peer's single Raft listener (``wire.py``: the peer
proves it knows the cluster secret before a byte of a frame is decoded). The listener's port
is found through the peer's gRPC ``Internal.RaftEndpoint``; ``Internal.Raft`` (gRPC, secret
checked by the interceptor) is accepted too.

Fault hooks (``FaultHooks``) let tests drop or delay traffic between named nodes.
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from pysyncobj.node import Node
from pysyncobj.transport import Transport

from proto import pb, rpc
from storage import sqlstate

from .codec import decode_message, encode_message
from .errors import CodecError
from .wire import LinkError, RaftLink, RaftListener

log = logging.getLogger(__name__)

SECRET_METADATA_KEY = "x-atlasql-cluster-secret"
_Item = pb.RaftMessage | pb.ForwardCall | None  # None: an empty batch (node heartbeat)
NODE_HEARTBEAT = 0.2  # seconds between node-level heartbeats to each peer
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Channel options for every node-to-node and client channel: large messages, and a short
# reconnect backoff so a restarted peer is reachable again within ~100 ms rather than after
# gRPC's default exponential backoff (1 s growing to 120 s).
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class RaftPeer(Node):  # type: ignore[misc]
    """A pysyncobj node identified by our integer node id."""

    def __str__(self) -> str:
        return f"n{self.id}"


class FaultHooks:
    """Test hooks: drop or delay messages from this node to named peers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dropped: set[int] = set()
        self._delay: dict[int, float] = {}
        # Simulated geography (set by the node from --rtt-matrix): one-way seconds to a peer.
        self.geo_delay: Callable[[int], float] = lambda peer: 0.0

    def partition(self, peers: set[int]) -> None:
        with self._lock:
            self._dropped = set(peers)

    def heal(self) -> None:
        with self._lock:
            self._dropped = set()
            self._delay = {}

    def set_delay(self, peer: int, seconds: float) -> None:
        with self._lock:
            self._delay[peer] = seconds

    def drops(self, peer: int) -> bool:
        with self._lock:
            return peer in self._dropped

    def delay(self, peer: int) -> float:
        with self._lock:
            extra = self._delay.get(peer, 0.0)
        return extra + self.geo_delay(peer)


class _PeerSender:
    """Batches and sends this node's Raft messages for one peer, in order.

    The tick thread sends a batch itself when nothing is queued or in flight for the peer and
    no delay is injected (``send_direct``: a non-blocking write, so a slow peer never stalls
    the loop); otherwise, and for whatever the socket could not take at once, the peer's
    sender thread does. Batches are numbered and written in one order under ``_send_lock``.
    """

    def __init__(self, owner: NodeTransport, peer: int) -> None:
        self._owner = owner
        self.peer = peer
        # (due time, message): a message leaves no earlier than its injected delay allows,
        # without holding back the ones behind it (pipelined, as on a real long link).
        self._queue: collections.deque[tuple[float, _Item]] = collections.deque()
        self._cv = threading.Condition()
        self._send_lock = threading.Lock()  # link, batch numbers, unsent bytes
        self._closed = False
        self._channel: grpc.Channel | None = None
        self._address = ""
        self._link: RaftLink | None = None
        self.up = True
        self._batch_seq = 0
        self._thread = threading.Thread(target=self._run, name=f"raft-send-n{peer}", daemon=True)
        self._thread.start()

    @property
    def linked(self) -> bool:
        """Whether the link to the peer is up (calls need it: they have no gRPC retry)."""
        return self._link is not None

    def enqueue(self, msg: _Item) -> None:
        """Queue a message; ``None`` asks for an empty batch (a node heartbeat)."""
        self.enqueue_many([msg])

    def enqueue_many(self, msgs: Sequence[_Item]) -> None:
        due = time.monotonic() + self._owner.faults.delay(self.peer)
        with self._cv:
            if len(self._queue) > 50_000:  # peer far behind or down: Raft retransmits anyway
                self._queue.clear()
            self._queue.extend((due, m) for m in msgs)
            self._cv.notify()

    def send_direct(self, msgs: Sequence[pb.RaftMessage | pb.ForwardCall]) -> bool:
        """Write ``msgs`` now if the link is idle (never blocks); False: nothing was written
        (busy, no link, or the link just broke): queue them instead."""
        faults = self._owner.faults
        if faults.delay(self.peer) > 0 or not self._send_lock.acquire(blocking=False):
            return False
        try:
            link = self._link
            if link is None or link.unsent or self._queue:
                return False
            if faults.drops(self.peer):
                return True
            try:
                if not link.send_nowait(self._frame(msgs)):
                    with self._cv:
                        self._cv.notify()  # the sender thread writes the rest
            except OSError as exc:
                self._drop_link(exc)
                return False
            return True
        finally:
            self._send_lock.release()

    def reset(self) -> None:
        """Forget the link (the peer's link to us broke: it probably restarted)."""
        with self._send_lock:
            self._drop_link(None)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        if self._channel is not None:
            self._channel.close()

    def _frame(self, items: Sequence[pb.RaftMessage | pb.ForwardCall]) -> bytes:
        self._batch_seq += 1
        batch = pb.RaftBatch(
            from_node=self._owner.node_id,
            to_node=self.peer,
            messages=[m for m in items if isinstance(m, pb.RaftMessage)],
            calls=[c for c in items if isinstance(c, pb.ForwardCall)],
            incarnation=self._owner.incarnation,
            batch_seq=self._batch_seq,
        )
        data: bytes = batch.SerializeToString()
        return data

    def _connect(self) -> RaftLink | None:
        """Open the link to the peer's Raft listener (its port asked over gRPC)."""
        address = self._owner.resolve(self.peer)
        if not address:
            return None
        if address != self._address or self._channel is None:
            if self._channel is not None:
                self._channel.close()
            self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
            self._address = address
        host = address.rpartition(":")[0].strip("[]")
        endpoint = rpc.InternalStub(self._channel).RaftEndpoint(
            pb.RaftEndpointRequest(), timeout=1.0, metadata=self._owner.metadata
        )
        if endpoint.node_id != self.peer or not endpoint.port:
            raise LinkError(f"{address} is n{endpoint.node_id}, not n{self.peer}")
        return RaftLink.connect(
            host, endpoint.port, self._owner.node_id, self.peer, self._owner.secret, timeout=1.0
        )

    def _drop_link(self, exc: Exception | None) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
            self._owner.fail_calls(self.peer, "the link broke")
        if self.up:
            reason = exc.code() if isinstance(exc, grpc.RpcError) else exc or "link broke"
            log.info("raft: n%d unreachable: %s", self.peer, reason)
        self.up = False

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed:
                    if self._link is not None and self._link.unsent:
                        break
                    if not self._queue:
                        self._cv.wait()
                        continue
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                if self._closed:
                    with self._send_lock:
                        self._drop_link(None)
                    return
            with self._send_lock:
                with self._cv:
                    now = time.monotonic()
                    batch: list[pb.RaftMessage | pb.ForwardCall] = []
                    due = bool(self._queue) and self._queue[0][0] <= now
                    while self._queue and self._queue[0][0] <= now:
                        msg = self._queue.popleft()[1]
                        if msg is not None:
                            batch.append(msg)
                failed = self._send(batch, due)
                if failed:
                    # Raft messages are dropped (Raft sends again); answers to forwarded
                    # calls are not: their callers wait for them.
                    answers = [
                        m for m in batch if isinstance(m, pb.ForwardCall) and m.HasField("response")
                    ]
                    with self._cv:
                        self._queue.extendleft((now, m) for m in reversed(answers))
            if failed:
                # Back off a little: messages queued meanwhile are sent (or dropped) next.
                time.sleep(0.05 if self._link is None else 0)

    def _send(self, batch: list[pb.RaftMessage | pb.ForwardCall], due: bool) -> bool:
        """Under ``_send_lock``: finish unsent bytes, then write ``batch`` (if ``due``)."""
        try:
            if self._link is not None and self._link.unsent:
                self._link.flush()
            if not due or self._owner.faults.drops(self.peer):
                return False
            if self._link is None:
                self._link = self._connect()
                if self._link is None:
                    return True
                if not self.up:
                    log.info("raft: n%d reachable again", self.peer)
                self.up = True
            self._link.send(self._frame(batch))
            return False
        except (grpc.RpcError, OSError) as exc:
            self._drop_link(exc)
            return True


class _Call:
    """A forwarded statement waiting for its answer."""

    __slots__ = ("peer", "done", "response", "error")

    def __init__(self, peer: int) -> None:
        self.peer = peer
        self.done = threading.Event()
        self.response: pb.RangeResponse | None = None
        self.error = "no answer"


class NodeTransport:
    """All Raft traffic of one node, multiplexed by range id."""

    def __init__(
        self,
        node_id: int,
        resolve: Callable[[int], str | None],
        deliver: Callable[[int, int, dict[str, Any]], None],
        secret: str = "",
    ) -> None:
        self.node_id = node_id
        self.resolve = resolve
        self._deliver = deliver
        self.faults = FaultHooks()
        self.metadata = ((SECRET_METADATA_KEY, secret),) if secret else ()
        self.secret = secret
        self.listener: RaftListener | None = None
        self._senders: dict[int, _PeerSender] = {}
        self._lock = threading.Lock()
        self._outbox: list[tuple[int, pb.RaftMessage]] = []
        self.decode_errors = 0
        self.incarnation = random.getrandbits(63) or 1
        # Node-level liveness: when we last heard from each peer, and its incarnation.
        self.last_heard: dict[int, float] = {}
        self.gap_at: dict[int, float] = {}  # when a lost batch from each peer was noticed
        self._last_batch_seq: dict[int, int] = {}
        self._incarnations: dict[int, int] = {}
        self.on_peer_restart: Callable[[int], None] = lambda peer: None
        # Forwarded statements (``call``): the node serves the peers' calls with this.
        self.serve_call: Callable[[pb.RangeRequest], pb.RangeResponse] | None = None
        self._calls: dict[int, _Call] = {}
        self._call_ids = itertools.count(1)
        self._call_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fwd")
        self.peers: set[int] = set()
        self._hb_stop = threading.Event()
        self._hb_thread = threading.Thread(
            target=self._heartbeats, name="node-heartbeat", daemon=True
        )
        self._hb_thread.start()

    def listen(self, host: str, port: int = 0) -> int:
        """Start the node's Raft listener on ``host`` (``port`` 0: any free one); its port."""
        self.listener = RaftListener(
            host,
            self.node_id,
            self.secret,
            self._on_frame,
            on_close=self._inbound_closed,
            port=port,
            max_frame=MAX_MESSAGE_BYTES,
        )
        return self.listener.port

    def call(self, peer: int, request: pb.RangeRequest, timeout: float) -> pb.RangeResponse | None:
        """Run ``request`` on ``peer`` over the Raft link; None when there is no link (use
        gRPC). Raises ``TimeoutError``, or ``ConnectionError`` when the link broke meanwhile
        (either way the outcome is unknown)."""
        if self.listener is None or peer == self.node_id or self.faults.drops(peer):
            return None
        sender = self._sender(peer)
        if not sender.linked:
            sender.enqueue(None)  # connect for next time
            return None
        call = _Call(peer)
        call_id = next(self._call_ids)
        with self._lock:
            self._calls[call_id] = call
        item = pb.ForwardCall(call_id=call_id, request=request)
        try:
            if not sender.send_direct([item]):
                if not sender.linked:
                    return None  # the link broke before the call left: nothing was sent
                sender.enqueue(item)
            if not call.done.wait(timeout):
                raise TimeoutError(f"n{peer}: no answer within {timeout:.1f}s")
        finally:
            with self._lock:
                self._calls.pop(call_id, None)
        if call.response is None:
            raise ConnectionError(f"n{peer}: {call.error}")
        return call.response

    def _inbound_closed(self, peer: int) -> None:
        """A peer's link to us closed: it died or restarted, so ours to it is stale too."""
        self.fail_calls(peer, "the link from it broke")
        with self._lock:
            sender = self._senders.get(peer)
        if sender is not None:
            sender.reset()

    def fail_calls(self, peer: int, reason: str) -> None:
        """The link to or from ``peer`` broke: its answers may never come."""
        with self._lock:
            calls = [c for c in self._calls.values() if c.peer == peer]
        for c in calls:
            c.error = reason
            c.done.set()

    def _serve_call(self, peer: int, call: pb.ForwardCall) -> None:
        serve = self.serve_call
        if serve is None:
            response = pb.RangeResponse()
            response.error.code = sqlstate.RANGE_UNAVAILABLE
            response.error.message = f"n{self.node_id} is not serving forwarded statements yet"
        else:
            try:
                response = serve(call.request)
            except Exception as exc:  # never let one call take the pool down
                log.exception("forwarded call from n%d failed", peer)
                response = pb.RangeResponse()
                response.error.code = sqlstate.INTERNAL_ERROR
                response.error.message = f"internal error: {exc}"
        answer = pb.ForwardCall(call_id=call.call_id, response=response)
        sender = self._sender(peer)
        if not sender.send_direct([answer]):
            sender.enqueue(answer)

    def _on_frame(self, from_node: int, payload: bytes) -> None:
        try:
            batch = pb.RaftBatch.FromString(payload)
        except DecodeError:
            self.decode_errors += 1
            log.warning("raft: undecodable batch from n%d dropped", from_node)
            return
        if batch.from_node != from_node:
            self.decode_errors += 1
            log.warning("raft: n%d sent a batch claiming n%d; dropped", from_node, batch.from_node)
            return
        self.handle_batch(batch)

    def _heartbeats(self) -> None:
        while not self._hb_stop.wait(NODE_HEARTBEAT):
            for peer in list(self.peers):
                if peer != self.node_id:
                    self._sender(peer).enqueue(None)

    def _sender(self, peer: int) -> _PeerSender:
        with self._lock:
            sender = self._senders.get(peer)
            if sender is None:
                sender = self._senders[peer] = _PeerSender(self, peer)
            return sender

    def is_live(self, peer: int, window: float) -> bool:
        """Whether ``peer`` was heard from within ``window`` seconds (ourselves: always)."""
        if peer == self.node_id:
            return True
        heard = self.last_heard.get(peer)
        return heard is not None and time.monotonic() - heard < window

    def send(self, peer: int, range_id: int, message: dict[str, Any]) -> bool:
        """Queue a message; it leaves the node at the next ``release()`` (after the log flush)."""
        try:
            wire = encode_message(range_id, message)
        except CodecError:
            log.exception("raft: cannot encode message for range %d", range_id)
            return False
        with self._lock:
            self._outbox.append((peer, wire))
        return True

    def send_now(self, peer: int, range_id: int, message: dict[str, Any]) -> None:
        try:
            wire = encode_message(range_id, message)
        except CodecError:
            return
        self._sender(peer).enqueue(wire)

    def stream_snapshot(self, peer: int, chunks: Any, timeout: float) -> pb.SnapshotAck:
        """Stream a snapshot to ``peer`` on its own channel (never blocks Raft traffic)."""
        address = self.resolve(peer)
        if not address or self.faults.drops(peer):
            raise ConnectionError(f"n{peer} unreachable")
        with grpc.insecure_channel(address, options=GRPC_OPTIONS) as channel:
            ack: pb.SnapshotAck = rpc.InternalStub(channel).InstallSnapshot(
                chunks, timeout=timeout, metadata=self.metadata
            )
            return ack

    def stop_heartbeats(self) -> None:
        """This node can no longer take part in Raft: let peers see it as dead."""
        self._hb_stop.set()

    def release(self) -> None:
        """Hand queued messages to the per-peer senders (call only once the log is durable)."""
        with self._lock:
            outbox, self._outbox = self._outbox, []
            by_peer: dict[int, list[pb.RaftMessage]] = {}
            for peer, msg in outbox:
                by_peer.setdefault(peer, []).append(msg)
            senders = []
            for peer, msgs in by_peer.items():
                sender = self._senders.get(peer)
                if sender is None:
                    sender = self._senders[peer] = _PeerSender(self, peer)
                senders.append((sender, msgs))
        for sender, msgs in senders:
            if not sender.send_direct(msgs):
                sender.enqueue_many(msgs)

    def discard_outbox(self) -> None:
        with self._lock:
            self._outbox = []

    def handle_batch(self, batch: pb.RaftBatch) -> None:
        """Called by the gRPC servicer once the peer is authenticated."""
        if batch.to_node and batch.to_node != self.node_id:
            log.warning("raft: batch for n%d arrived at n%d; dropped", batch.to_node, self.node_id)
            return
        if self.faults.drops(batch.from_node):
            return
        now = time.monotonic()
        self.last_heard[batch.from_node] = now
        previous = self._last_batch_seq.get(batch.from_node)
        if batch.batch_seq and (previous is None or batch.batch_seq != previous + 1):
            self.gap_at[batch.from_node] = now  # a lost batch (or a restart) just now
        self._last_batch_seq[batch.from_node] = batch.batch_seq
        if batch.incarnation:
            before = self._incarnations.get(batch.from_node)
            self._incarnations[batch.from_node] = batch.incarnation
            if before is not None and before != batch.incarnation:
                self.on_peer_restart(batch.from_node)
        for msg in batch.messages:
            try:
                decoded = decode_message(msg)
            except CodecError as exc:
                self.decode_errors += 1
                log.warning("raft: bad message from n%d: %s", batch.from_node, exc)
                continue
            self._deliver(msg.range_id, batch.from_node, decoded)
        for call in batch.calls:
            if call.HasField("request"):
                try:
                    self._call_pool.submit(self._serve_call, batch.from_node, call)
                except RuntimeError:  # shutting down
                    return
            else:
                with self._lock:
                    waiting = self._calls.get(call.call_id)
                if waiting is not None and waiting.peer == batch.from_node:
                    waiting.response = call.response
                    waiting.done.set()

    def close(self) -> None:
        self._hb_stop.set()
        self._call_pool.shutdown(wait=False, cancel_futures=True)
        if self.listener is not None:
            self.listener.close()
        with self._lock:
            for sender in self._senders.values():
                sender.close()
            self._senders.clear()


class GroupTransport(Transport):  # type: ignore[misc]
    """pysyncobj ``Transport`` for one range, backed by the node's ``NodeTransport``."""

    def __init__(
        self,
        node_transport: NodeTransport,
        range_id: int,
        syncObj: Any,
        selfNode: Any,
        otherNodes: Any,
    ) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self._node_transport = node_transport
        self._range_id = range_id
        self._peers: dict[int, Any] = {n.id: n for n in otherNodes}

    def tryGetReady(self) -> None:
        # Peers are reachable through the node transport; pysyncobj only elects when it
        # believes itself connected, so report every peer as connected (delivery failures
        # surface as missing acks, which Raft already handles).
        for node in self._peers.values():
            self._onNodeConnected(node)

    @property
    def ready(self) -> bool:
        return True

    def waitReady(self) -> None:
        return None

    def addNode(self, node: Any) -> None:
        self._peers[node.id] = node
        self._onNodeConnected(node)

    def dropNode(self, node: Any) -> None:
        self._peers.pop(node.id, None)

    # Set by the group: annotates outgoing messages (leader-lease heartbeat sequences).
    on_send: Any = None

    def send(self, node: Any, message: Any) -> bool:
        if "serialized" in message:
            # pysyncobj's own snapshot transfer (pickles); ours is InstallSnapshot.
            return True
        return self.send_to(int(node.id), message)

    def node(self, node_id: int) -> Any:
        """The pysyncobj node object for ``node_id`` (created on first use, e.g. a new replica)."""
        node = self._peers.get(node_id)
        if node is None:
            node = self._peers[node_id] = RaftPeer(node_id)
            self._node_transport.peers.add(node_id)
        return node

    def send_to(self, node_id: int, message: dict[str, Any]) -> bool:
        if self.on_send is not None:
            message = self.on_send(node_id, message)
        return self._node_transport.send(node_id, self._range_id, message)

    def send_now(self, node_id: int, message: dict[str, Any]) -> None:
        """Send without waiting for the log flush: only for messages that carry no Raft
        state needing durability (TimeoutNow from a replica that is stopping)."""
        self._node_transport.send_now(node_id, self._range_id, message)

    def deliver(self, from_node: int, message: dict[str, Any]) -> None:
        node = self._peers.get(from_node)
        if node is None:
            return  # not a member of this range
        self._onMessageReceived(node, message)

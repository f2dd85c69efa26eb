"""Peer links for Raft traffic: one TCP listener per node, authenticated length-prefixed frames.

A gRPC unary call costs about 0.4 ms of CPU on each side in Python, and Raft sends one per
batch per peer; a plain socket write costs a few microseconds. So Raft batches travel on a
long-lived TCP connection per (sender, receiver) pair, one direction each:

1. the listener sends ``MAGIC`` and a random 32-byte nonce;
2. the connecting node answers ``MAGIC``, its node id, the node id it meant to reach and
   HMAC-SHA256(cluster secret, nonce || from || to), fixed size;
3. the listener checks the MAC (constant time) and the target id, answers one ``ACCEPT``
   byte, and only then reads frames: a 4-byte big-endian length and that many bytes of a
   ``RaftBatch`` protobuf. A connection that fails the check is closed before any frame is read.

Nothing is decoded before the peer proved it knows the secret (with an empty secret, as with
the gRPC interceptor, any peer is accepted). The nonce makes a recorded handshake useless.
Frames are not MAC'd: like the gRPC metadata secret, this authenticates peers, it does not
protect a link from someone on the path; run on a trusted network.

The listener binds the node's own host (the ``--listen`` host), port chosen by the OS unless
given; peers learn it through ``Internal.RaftEndpoint`` on the node's gRPC port.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

MAGIC = b"AQRAFT01"
NONCE_BYTES = 32
ACCEPT = b"\x01"
_CLAIM = struct.Struct("!8sII32s")  # magic, from node, to node, mac
_FRAME = struct.Struct("!I")
HANDSHAKE_TIMEOUT = 5.0
SEND_TIMEOUT = 2.0  # a peer that stops reading for this long loses the link
MAX_CONNECTIONS = 256  # concurrent inbound links (authenticated or not) per node


class LinkError(ConnectionError):
    """A link could not be set up, or broke."""


def mac(secret: bytes, nonce: bytes, from_node: int, to_node: int) -> bytes:
    """The handshake MAC that proves knowledge of ``secret``.

    >>> len(mac(b"s", b"n" * 32, 1, 2))
    32
    >>> mac(b"s", b"n" * 32, 1, 2) == mac(b"s", b"n" * 32, 2, 1)
    False
    """
    return hmac.new(secret, nonce + struct.pack("!II", from_node, to_node), hashlib.sha256).digest()


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise LinkError("connection closed")
        got += k
    return bytes(buf)


class RaftListener:
    """Accepts peer links; calls ``on_frame(from_node, payload)`` for every frame received."""

    def __init__(
        self,
        host: str,
        node_id: int,
        secret: str,
        on_frame: Callable[[int, bytes], None],
        *,
        port: int = 0,
        max_frame: int,
        on_close: Callable[[int], None] = lambda peer: None,
    ) -> None:
        self.node_id = node_id
        self._secret = secret.encode()
        self._on_frame = on_frame
        self._on_close = on_close
        self._max_frame = max_frame
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.rejected = 0  # handshakes refused (bad MAC, wrong target, garbage)
        self.bad_frames = 0  # oversized frames (the link is closed)
        self._thread = threading.Thread(target=self._accept, name="raft-listen", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            with self._lock:
                if len(self._conns) >= MAX_CONNECTIONS:
                    conn.close()
                    continue
                self._conns.add(conn)
            threading.Thread(
                target=self._serve, args=(conn,), name="raft-recv", daemon=True
            ).start()

    def _handshake(self, conn: socket.socket) -> int:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        nonce = os.urandom(NONCE_BYTES)
        conn.sendall(MAGIC + nonce)
        magic, from_node, to_node, given = _CLAIM.unpack(_read_exact(conn, _CLAIM.size))
        if magic != MAGIC:
            raise LinkError("not an atlasql raft link")
        if not hmac.compare_digest(given, mac(self._secret, nonce, from_node, to_node)):
            raise LinkError(f"bad cluster secret from a peer claiming n{from_node}")
        if to_node != self.node_id:
            raise LinkError(f"link for n{to_node} reached n{self.node_id}")
        conn.sendall(ACCEPT)
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return int(from_node)

    def _serve(self, conn: socket.socket) -> None:
        try:
            try:
                from_node = self._handshake(conn)
            except (OSError, struct.error) as exc:
                self.rejected += 1
                log.warning("raft link refused: %s", exc)
                return
            try:
                self._read_frames(conn, from_node)
            finally:
                self._on_close(from_node)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _read_frames(self, conn: socket.socket, from_node: int) -> None:
        reader = conn.makefile("rb", buffering=1 << 16)
        while not self._closed:
            header = reader.read(_FRAME.size)
            if len(header) < _FRAME.size:
                return
            (size,) = _FRAME.unpack(header)
            if size > self._max_frame:
                self.bad_frames += 1
                log.warning("raft link from n%d: %d-byte frame refused", from_node, size)
                return
            payload = reader.read(size)
            if len(payload) < size:
                return
            self._on_frame(from_node, payload)

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RaftLink:
    """The sending end of one link (used by a single sender thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.unsent = b""  # the tail of a frame ``send_nowait`` could not write at once

    @classmethod
    def connect(
        cls, host: str, port: int, from_node: int, to_node: int, secret: str, timeout: float
    ) -> RaftLink:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            hello = _read_exact(sock, len(MAGIC) + NONCE_BYTES)
            if hello[: len(MAGIC)] != MAGIC:
                raise LinkError(f"{host}:{port} is not an atlasql raft listener")
            nonce = hello[len(MAGIC) :]
            sock.sendall(
                _CLAIM.pack(
                    MAGIC, from_node, to_node, mac(secret.encode(), nonce, from_node, to_node)
                )
            )
            try:
                answer = _read_exact(sock, 1)
            except LinkError:
                raise LinkError(f"n{to_node} refused the link (cluster secret?)") from None
            if answer != ACCEPT:
                raise LinkError(f"n{to_node} refused the link")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(SEND_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def send(self, payload: bytes) -> None:
        """Send one frame (after any unsent bytes); raises ``OSError`` if the link broke."""
        self.flush()
        self._sock.sendall(_FRAME.pack(len(payload)) + payload)

    def send_nowait(self, payload: bytes) -> bool:
        """Write one frame without blocking; False: part of it is left in ``unsent`` (the
        caller must ``flush`` before anything else goes on this link)."""
        data = self.unsent + _FRAME.pack(len(payload)) + payload
        try:
            n = self._sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            n = 0
        self.unsent = data[n:]
        return not self.unsent

    def flush(self) -> None:
        """Write the unsent bytes, blocking up to ``SEND_TIMEOUT``."""
        if self.unsent:
            self._sock.sendall(self.unsent)
            self.unsent = b""

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

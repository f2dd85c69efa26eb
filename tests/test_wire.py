"""Raft peer links (raftgroups/wire.py): the handshake gates every byte of a frame."""

from __future__ import annotations

import queue
import socket
import struct
import time

import pytest

from raftgroups.wire import _CLAIM, MAGIC, NONCE_BYTES, LinkError, RaftLink, RaftListener, mac


@pytest.fixture
def listener():
    frames: queue.Queue[tuple[int, bytes]] = queue.Queue()
    lst = RaftListener("127.0.0.1", 2, "s3cret", lambda n, b: frames.put((n, b)), max_frame=1024)
    yield lst, frames
    lst.close()


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _closed_by_peer(sock: socket.socket) -> bool:
    """The listener closed the connection without sending anything more (EOF or reset)."""
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_frames_arrive_in_order_from_an_authenticated_peer(listener) -> None:
    lst, frames = listener
    link = RaftLink.connect("127.0.0.1", lst.port, 1, 2, "s3cret", timeout=2)
    for i in range(100):
        link.send(b"batch-%d" % i)
    got = [frames.get(timeout=5) for _ in range(100)]
    assert got == [(1, b"batch-%d" % i) for i in range(100)]
    link.close()


def test_wrong_secret_is_refused_before_any_frame_is_read(listener) -> None:
    lst, frames = listener
    with pytest.raises(LinkError, match="refused"):
        RaftLink.connect("127.0.0.1", lst.port, 1, 2, "guess", timeout=2)
    _wait(lambda: lst.rejected == 1)
    assert frames.empty()


def test_link_meant_for_another_node_is_refused(listener) -> None:
    lst, _ = listener
    with pytest.raises(LinkError):
        RaftLink.connect("127.0.0.1", lst.port, 1, 3, "s3cret", timeout=2)
    _wait(lambda: lst.rejected == 1)


def test_replayed_handshake_does_not_authenticate(listener) -> None:
    """A MAC recorded for one nonce is useless against the next connection's nonce."""
    lst, frames = listener
    first = socket.create_connection(("127.0.0.1", lst.port))
    nonce = first.recv(len(MAGIC) + NONCE_BYTES)[len(MAGIC) :]
    claim = _CLAIM.pack(MAGIC, 1, 2, mac(b"s3cret", nonce, 1, 2))
    first.close()
    second = socket.create_connection(("127.0.0.1", lst.port))
    second.recv(len(MAGIC) + NONCE_BYTES)
    second.sendall(claim + struct.pack("!I", 3) + b"bad")
    assert _closed_by_peer(second)  # no ACCEPT byte
    second.close()
    _wait(lambda: lst.rejected == 2)  # the abandoned first handshake, then the replay
    assert frames.empty()


def test_garbage_and_oversized_frames_close_the_link_and_listener_survives(listener) -> None:
    lst, frames = listener
    junk = socket.create_connection(("127.0.0.1", lst.port))
    junk.sendall(b"GET / HTTP/1.1\r\n\r\n" * 10)
    junk.recv(len(MAGIC) + NONCE_BYTES)
    assert _closed_by_peer(junk)
    junk.close()
    _wait(lambda: lst.rejected == 1)

    link = RaftLink.connect("127.0.0.1", lst.port, 1, 2, "s3cret", timeout=2)
    link.send(b"x" * 2000)  # over max_frame: the listener drops the link
    _wait(lambda: lst.bad_frames == 1)
    with pytest.raises(OSError):
        for _ in range(100):  # the peer closed: a later send fails
            link.send(b"y")
            time.sleep(0.01)
    assert frames.empty()

    ok = RaftLink.connect("127.0.0.1", lst.port, 1, 2, "s3cret", timeout=2)
    ok.send(b"still serving")
    assert frames.get(timeout=5) == (1, b"still serving")
    ok.close()


def test_not_a_listener_is_a_clear_error() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    import threading

    def answer() -> None:
        conn, _ = server.accept()
        conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\n" + b"x" * 40)
        time.sleep(0.5)
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(LinkError, match="not an atlasql raft listener"):
        RaftLink.connect("127.0.0.1", port, 1, 2, "s", timeout=2)
    server.close()

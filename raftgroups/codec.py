"""Encoding of Raft commands and of pysyncobj's peer messages.

Commands are ``atlasql.v1.Command`` protobufs. pysyncobj's own peer messages are small dicts
of primitives; they travel as ``RaftMap`` value trees, so nothing a peer sends is unpickled.

>>> msg = {"type": "append_entries", "term": 3, "commit_index": 1, "prevLogIdx": 1,
...        "prevLogTerm": 0, "entries": [[b"x", 2, 3]], "hb": 0}
>>> decode_message(encode_message(9, msg)) == msg
True
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from proto import pb

from .errors import CodecError

_MAX_DEPTH = 8
# pysyncobj messages we accept from peers; anything else (snapshot transmission, pickled
# chunks) is refused before it reaches the library.
ALLOWED_TYPES = frozenset(
    {
        "request_vote",
        "response_vote",
        "append_entries",
        "next_node_idx",
        "apply_command",
        "apply_command_response",
        "timeout_now",
        "pre_vote",
        "pre_vote_response",
    }
)
_FORBIDDEN_KEYS = frozenset({"transmission", "serialized", "data"})


def encode_command(command: pb.Command) -> bytes:
    return bytes(command.SerializeToString())


def decode_command(data: bytes) -> pb.Command:
    cmd = pb.Command()
    try:
        cmd.ParseFromString(data)
    except DecodeError as exc:
        raise CodecError(f"undecodable command: {exc}") from exc
    if cmd.WhichOneof("op") is None:
        raise CodecError("command without an operation")
    return cmd


def _to_value(obj: Any, depth: int) -> pb.RaftValue:
    if depth > _MAX_DEPTH:
        raise CodecError("message nested too deeply")
    if obj is None:
        return pb.RaftValue(none=True)
    if isinstance(obj, bool):
        return pb.RaftValue(boolean=obj)
    if isinstance(obj, int):
        return pb.RaftValue(integer=obj)
    if isinstance(obj, float):
        return pb.RaftValue(real=obj)
    if isinstance(obj, str):
        return pb.RaftValue(text=obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return pb.RaftValue(data=bytes(obj))
    if isinstance(obj, (list, tuple)):
        return pb.RaftValue(list=pb.RaftList(items=[_to_value(i, depth + 1) for i in obj]))
    if isinstance(obj, dict):
        return pb.RaftValue(map=_to_map(obj, depth + 1))
    raise CodecError(f"cannot encode {type(obj).__name__} in a Raft message")


def _to_map(obj: dict[str, Any], depth: int) -> pb.RaftMap:
    out = pb.RaftMap()
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CodecError("Raft message keys must be strings")
        out.fields[key].CopyFrom(_to_value(value, depth))
    return out


def _from_value(value: pb.RaftValue, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise CodecError("message nested too deeply")
    kind = value.WhichOneof("kind")
    if kind == "none":
        return None
    if kind == "boolean":
        return bool(value.boolean)
    if kind == "integer":
        return int(value.integer)
    if kind == "real":
        return float(value.real)
    if kind == "text":
        return str(value.text)
    if kind == "data":
        return bytes(value.data)
    if kind == "list":
        return [_from_value(v, depth + 1) for v in value.list.items]
    if kind == "map":
        return _from_map(value.map, depth + 1)
    raise CodecError("Raft value without a kind")


def _from_map(value: pb.RaftMap, depth: int) -> dict[str, Any]:
    return {k: _from_value(v, depth) for k, v in value.fields.items()}


_APPEND_KEYS = frozenset({"type", "term", "commit_index", "prevLogIdx", "prevLogTerm", "entries"})
_NEXT_KEYS = frozenset({"type", "next_node_idx", "reset", "success"})
_HB = frozenset({"hb"})


def encode_message(range_id: int, message: dict[str, Any]) -> pb.RaftMessage:
    """Encode one pysyncobj message dict (typed for the hot ones, a value tree otherwise).

    >>> m = {"type": "next_node_idx", "next_node_idx": 7, "reset": False, "success": True,
    ...      "hb": 0}
    >>> decode_message(encode_message(1, m)) == m
    True
    """
    mtype = message.get("type")
    if mtype == "append_entries" and message.keys() - _HB == _APPEND_KEYS:
        try:
            return pb.RaftMessage(
                range_id=range_id,
                append=pb.AppendEntries(
                    term=message["term"],
                    commit_index=message["commit_index"],
                    prev_log_index=message["prevLogIdx"],
                    prev_log_term=message["prevLogTerm"],
                    entries=[
                        pb.LogEntry(data=e[0], index=e[1], term=e[2]) for e in message["entries"]
                    ],
                    hb=message.get("hb", 0),
                ),
            )
        except (TypeError, ValueError) as exc:
            raise CodecError(f"cannot encode append_entries: {exc}") from exc
    if mtype == "next_node_idx" and message.keys() - _HB == _NEXT_KEYS:
        return pb.RaftMessage(
            range_id=range_id,
            next=pb.NextIndex(
                next_index=message["next_node_idx"],
                reset=bool(message["reset"]),
                success=bool(message["success"]),
                hb=message.get("hb", 0),
            ),
        )
    return pb.RaftMessage(range_id=range_id, body=_to_map(message, 0))


def decode_message(wire: pb.RaftMessage) -> dict[str, Any]:
    """Decode and validate one peer message; raises ``CodecError`` on anything unexpected."""
    kind = wire.WhichOneof("kind")
    if kind == "append":
        a = wire.append
        return {
            "type": "append_entries",
            "term": int(a.term),
            "commit_index": int(a.commit_index),
            "prevLogIdx": int(a.prev_log_index),
            "prevLogTerm": int(a.prev_log_term),
            "entries": [[bytes(e.data), int(e.index), int(e.term)] for e in a.entries],
            "hb": int(a.hb),
        }
    if kind == "next":
        n = wire.next
        return {
            "type": "next_node_idx",
            "next_node_idx": int(n.next_index),
            "reset": bool(n.reset),
            "success": bool(n.success),
            "hb": int(n.hb),
        }
    if kind != "body":
        raise CodecError("Raft message without a body")
    msg = _from_map(wire.body, 0)
    mtype = msg.get("type")
    if mtype not in ALLOWED_TYPES:
        raise CodecError(f"unexpected Raft message type {mtype!r}")
    if _FORBIDDEN_KEYS & msg.keys():
        raise CodecError("snapshot transmission messages are not accepted")
    if mtype == "append_entries":
        for entry in msg.get("entries", []):
            if (
                not isinstance(entry, list)
                or len(entry) != 3
                or not isinstance(entry[0], bytes)
                or not isinstance(entry[1], int)
                or not isinstance(entry[2], int)
            ):
                raise CodecError("malformed log entry")
    if mtype == "apply_command" and not isinstance(msg.get("command"), bytes):
        raise CodecError("malformed apply_command")
    return msg

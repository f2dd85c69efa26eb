"""Conversion between Python/SQLite values and ``atlasql.v1.Value``.

SQLite has five storage classes; each maps to one field of the ``Value`` oneof:

>>> from storage.values import to_proto, from_proto
>>> from_proto(to_proto(2**63 - 1))
9223372036854775807
>>> from_proto(to_proto(b"\\x00\\x01"))
b'\\x00\\x01'
>>> from_proto(to_proto(None)) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from proto import pb

from .errors import ValueTypeError

SqlValue = None | int | float | str | bytes

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def to_proto(value: object) -> pb.Value:
    """Encode one Python value; raises ``ValueTypeError`` for types SQLite cannot store."""
    if value is None:
        return pb.Value(null=True)
    if isinstance(value, bool):
        return pb.Value(integer=int(value))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueTypeError(f"integer {value} does not fit in 64 bits")
        return pb.Value(integer=value)
    if isinstance(value, float):
        return pb.Value(real=value)
    if isinstance(value, str):
        return pb.Value(text=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return pb.Value(blob=bytes(value))
    raise ValueTypeError(
        f"unsupported parameter type {type(value).__name__}: use None, int, float, str or bytes"
    )


def from_proto(value: pb.Value) -> SqlValue:
    """Decode one ``Value``; an unset oneof is malformed input."""
    kind = value.WhichOneof("kind")
    if kind == "null":
        return None
    if kind == "integer":
        return int(value.integer)
    if kind == "real":
        return float(value.real)
    if kind == "text":
        return str(value.text)
    if kind == "blob":
        return bytes(value.blob)
    raise ValueTypeError("malformed Value: no kind set")


def row_to_proto(row: Iterable[object]) -> pb.Row:
    return pb.Row(values=[to_proto(v) for v in row])


def row_from_proto(row: pb.Row) -> tuple[SqlValue, ...]:
    return tuple(from_proto(v) for v in row.values)


def params_to_proto(
    params: Sequence[object] | Mapping[str, object] | None,
) -> tuple[list[pb.Value], dict[str, pb.Value]]:
    """Split DB-API parameters into positional and named protobuf values."""
    if params is None:
        return [], {}
    if isinstance(params, Mapping):
        return [], {str(k).lstrip(":@$"): to_proto(v) for k, v in params.items()}
    if isinstance(params, (str, bytes)):
        raise ValueTypeError("parameters must be a sequence or a mapping, not a string")
    return [to_proto(v) for v in params], {}


def params_from_proto(
    positional: Iterable[pb.Value], named: Mapping[str, pb.Value]
) -> tuple[SqlValue, ...] | dict[str, SqlValue]:
    """The inverse of ``params_to_proto``, in the shape apsw's ``execute`` accepts."""
    if named:
        return {k: from_proto(v) for k, v in named.items()}
    return tuple(from_proto(v) for v in positional)

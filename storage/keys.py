"""Order-preserving byte encoding of SQLite values and composite keys.

A range is the span ``[start_key, end_key)`` of byte strings, and the router finds a row's
range by comparing bytes, so the encoding must sort exactly as SQLite's ``ORDER BY`` (BINARY
collation) sorts the values:

    NULL  <  INTEGER/REAL (numerically, with each other)  <  TEXT (memcmp of UTF-8)  <  BLOB

Layout of a key (``encode_key``)::

    component* [0x00 tag*]

Each component starts with a class byte (all >= 0x05) and is self-delimiting, so the
concatenation of components (``encode_prefix``) compares like the tuple, lexicographically, and a
shorter tuple sorts before every tuple extending it.

* NULL: ``0x05``.
* Numbers: ``0x10`` -inf, ``0x11`` negative, ``0x12`` zero, ``0x13`` positive, ``0x14`` +inf.
  A non-zero finite value ``|x| = 2**E * (1 + f / 2**64)`` is written as the class byte, ``E +
  1075`` in 2 bytes and ``f`` in 8 bytes, big-endian, all bit-inverted for negatives. Every int64
  and every double is exactly ``2**E`` times a fraction with at most 63 bits after the leading 1,
  so integers and reals compare exactly (no precision loss beyond ``2**53``).
* TEXT ``0x20`` / BLOB ``0x30``: the bytes with ``0x00`` escaped as ``0x00 0xFF``, then
  ``0x00 0x01``. Embedded NULs therefore still compare as memcmp does.

Integer 2 and real 2.0 (and 0, 0.0, -0.0) are equal to SQLite, so their components are identical
bytes. To keep the Python type (and the sign of -0.0) for ``decode_key``, a key that holds
numbers ends with a *type trailer*: ``0x00`` then one tag per numeric component (``0x01`` int,
``0x02`` real, ``0x03`` real -0.0). ``0x00`` is below every class byte, so the trailer only
decides between keys whose components are all SQLite-equal: ``(2, 'b')`` sorts after
``(2.0, 'a')`` exactly as in SQLite, and only ``(2,)`` vs ``(2.0,)`` is broken by type (int first).

Consequence for routing: split keys and scan bounds should be *prefixes* (``encode_prefix``),
which carry no trailer; then keys that SQLite considers equal (``2`` and ``2.0``) can never fall
on different sides of a split, so per-range UNIQUE checks stay correct.

NaN: SQLite stores a NaN REAL as NULL (checked with apsw 3.54.1: ``INSERT ... VALUES (?)`` with
``float('nan')`` reads back ``None``), so NaN encodes as NULL and decodes to ``None``.
Booleans encode as the integers 0 and 1, as SQLite stores them.

>>> encode_value(None) < encode_value(-2**63) < encode_value(-1.5) < encode_value(0)
True
>>> encode_value(2**53 + 1) > encode_value(float(2**53))
True
>>> encode_value(float("inf")) < encode_value("") < encode_value(b"")
True
>>> decode_key(encode_key([1, 2.0, "a\\x00b", b"\\xff", None]))
(1, 2.0, 'a\\x00b', b'\\xff', None)
>>> encode_key(["a"]) < encode_key(["a", None]) < encode_key(["a\\x00"])
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .values import SqlValue

__all__ = [
    "decode_key",
    "encode_key",
    "encode_prefix",
    "encode_value",
    "next_key",
    "prefix_end",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_TRAILER = 0x00
_NULL = 0x05
_NEG_INF = 0x10
_NEG = 0x11
_ZERO = 0x12
_POS = 0x13
_POS_INF = 0x14
_TEXT = 0x20
_BLOB = 0x30

_TAG_INT = 0x01
_TAG_REAL = 0x02
_TAG_NEG_ZERO = 0x03

_MIN_EXP = -1074  # the least subnormal double is 2**-1074
_MAX_EXP = 1023  # the largest finite double is below 2**1024
_EXP_BIAS = -_MIN_EXP + 1
_FRAC_BITS = 64
_MAG_LEN = 2 + _FRAC_BITS // 8
_ESC_NUL = b"\x00\xff"
_END = b"\x00\x01"


def encode_value(value: SqlValue) -> bytes:
    """Encode one value as a one-component key; byte order equals SQLite's ORDER BY order.

    Same as ``encode_key([value])``.

    >>> sorted([b"x", "x", 1.5, None, 1], key=encode_value)
    [None, 1, 1.5, 'x', b'x']
    >>> decode_key(encode_value(-0.0))
    (-0.0,)
    """
    return encode_key((value,))


def encode_prefix(values: Sequence[SqlValue]) -> bytes:
    """Encode ``values`` without the type trailer: the bytes that order-compare.

    Two tuples SQLite considers equal (``(2,)`` and ``(2.0,)``) have the same prefix, and every
    ``encode_key(values + rest)`` lies in ``[encode_prefix(values),
    prefix_end(encode_prefix(values)))``. Use it for split keys and scan bounds.

    >>> encode_prefix([2]) == encode_prefix([2.0])
    True
    >>> encode_prefix([2]) < encode_key([2]) < encode_key([2.0]) < prefix_end(encode_prefix([2]))
    True
    """
    out = bytearray()
    for value in values:
        _encode_component(out, value)
    return bytes(out)


def encode_key(values: Sequence[SqlValue]) -> bytes:
    """Encode a composite key; byte order equals SQLite's ``ORDER BY c1, c2, ...``.

    Keys whose components are all SQLite-equal but differ in numeric type (``2`` vs ``2.0``)
    are ordered by the type trailer: int before real, then real -0.0.

    Raises:
        ValueError: an integer outside int64 or a string that is not valid Unicode.
        TypeError: a value of a type SQLite cannot store.

    >>> encode_key([1, "a"]) < encode_key([1.5, ""])
    True
    >>> encode_key([2.0, "a"]) < encode_key([2, "b"])
    True
    >>> encode_key(["a", 1]).hex()
    '2061000113043300000000000000000001'
    """
    out = bytearray()
    tags = bytearray()
    for value in values:
        tag = _encode_component(out, value)
        if tag:
            tags.append(tag)
    if tags:
        out.append(_TRAILER)
        out += tags
    return bytes(out)


def decode_key(key: bytes) -> tuple[SqlValue, ...]:
    """Decode a key made by ``encode_key`` (or ``encode_value``) back to its values.

    Integers come back as ``int`` and reals as ``float`` (the sign of -0.0 included).
    A prefix from ``encode_prefix`` decodes too, but numbers in it come back as ``int`` when
    integral and in int64 range, else ``float``, since the prefix carries no types.

    Raises:
        ValueError: ``key`` is not a well-formed key.

    >>> decode_key(encode_key([None, -7, 0.25, "é", b"\\x00"]))
    (None, -7, 0.25, 'é', b'\\x00')
    >>> decode_key(b"\\x99")
    Traceback (most recent call last):
        ...
    ValueError: bad key b'\\x99': unknown class byte 0x99 at offset 0
    """
    key = bytes(key)
    values: list[SqlValue] = []
    numerics: list[int] = []  # indexes of the numeric components, for the type trailer
    pos = 0
    n = len(key)
    while pos < n and key[pos] != _TRAILER:
        cls = key[pos]
        pos += 1
        if cls == _NULL:
            values.append(None)
        elif _NEG_INF <= cls <= _POS_INF:
            frac = exp = 0
            if cls in (_NEG, _POS):
                if pos + _MAG_LEN > n:
                    raise _bad(key, f"truncated number at offset {pos - 1}")
                mag = key[pos : pos + _MAG_LEN]
                if cls == _NEG:
                    mag = bytes(b ^ 0xFF for b in mag)
                pos += _MAG_LEN
                exp = int.from_bytes(mag[:2], "big") - _EXP_BIAS
                frac = int.from_bytes(mag[2:], "big")
                if not _MIN_EXP <= exp <= _MAX_EXP:
                    raise _bad(
                        key, f"number exponent {exp} out of range at offset {pos - 1 - _MAG_LEN}"
                    )
            numerics.append(len(values))
            try:
                values.append(_number(cls, frac, exp))
            except OverflowError:
                raise _bad(key, f"number out of range at offset {pos - 1 - _MAG_LEN}") from None
        elif cls in (_TEXT, _BLOB):
            raw, pos = _unescape(key, pos)
            if cls == _BLOB:
                values.append(raw)
            else:
                try:
                    values.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _bad(key, f"invalid UTF-8 text at offset {pos}") from None
        else:
            raise _bad(key, f"unknown class byte 0x{cls:02x} at offset {pos - 1}")
    if pos < n:
        tags = key[pos + 1 :]
        if len(tags) != len(numerics):
            raise _bad(key, f"{len(tags)} type tags for {len(numerics)} numbers")
        for index, tag in zip(numerics, tags, strict=True):
            values[index] = _retype(key, values[index], tag)
    result = tuple(values)
    if (encode_key(result) if pos < n else encode_prefix(result)) != key:
        raise _bad(key, "not in canonical form")
    return result


def next_key(key: bytes) -> bytes:
    """The smallest byte string greater than ``key``: turns an exclusive bound inclusive.

    >>> next_key(b"ab")
    b'ab\\x00'
    """
    return bytes(key) + b"\x00"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with ``prefix``.

    Returns ``b""`` (the range-descriptor spelling of +infinity) when no such string exists,
    that is when ``prefix`` is empty or all ``0xFF``.

    >>> prefix_end(b"ab")
    b'ac'
    >>> prefix_end(b"a\\xff\\xff")
    b'b'
    >>> prefix_end(b"\\xff")
    b''
    """
    trimmed = bytes(prefix).rstrip(b"\xff")
    if not trimmed:
        return b""
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _encode_component(out: bytearray, value: object) -> int:
    """Append one component; returns its type tag (0 for non-numbers)."""
    if value is None:
        out.append(_NULL)
        return 0
    if isinstance(value, int):  # bool included: SQLite stores True/False as 1/0
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit in 64 bits")
        _encode_number(out, abs(int(value)), 0, value < 0)
        return _TAG_INT
    if isinstance(value, float):
        if math.isnan(value):
            out.append(_NULL)  # SQLite stores NaN as NULL
            return 0
        if math.isinf(value):
            out.append(_POS_INF if value > 0 else _NEG_INF)
            return _TAG_REAL
        if value == 0.0:
            out.append(_ZERO)
            return _TAG_NEG_ZERO if math.copysign(1.0, value) < 0 else _TAG_REAL
        num, den = value.as_integer_ratio()
        _encode_number(out, abs(num), den.bit_length() - 1, value < 0)
        return _TAG_REAL
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"text is not valid Unicode: {e}") from None
        out.append(_TEXT)
        _escape(out, raw)
        return 0
    if isinstance(value, bytes | bytearray | memoryview):
        out.append(_BLOB)
        _escape(out, bytes(value))
        return 0
    raise TypeError(f"cannot encode {type(value).__name__} as a key (SQLite has no such type)")


def _encode_number(out: bytearray, num: int, k: int, negative: bool) -> None:
    """Append the non-zero magnitude ``num / 2**k`` with its sign class."""
    if num == 0:
        out.append(_ZERO)
        return
    exp = num.bit_length() - 1 - k  # |x| in [2**exp, 2**(exp + 1))
    # |x| / 2**exp = 1 + frac / 2**64. An int64 has at most 63 significant bits after the
    # leading 1 and a double at most 52, so both shifts are exact (a right shift drops only
    # the trailing zeros of a large double's integer ratio).
    shift = _FRAC_BITS - exp - k
    frac = (num << shift if shift >= 0 else num >> -shift) - (1 << _FRAC_BITS)
    mag = (exp + _EXP_BIAS).to_bytes(2, "big") + frac.to_bytes(_FRAC_BITS // 8, "big")
    if negative:
        out.append(_NEG)
        out += bytes(b ^ 0xFF for b in mag)
    else:
        out.append(_POS)
        out += mag


def _number(cls: int, frac: int, exp: int) -> SqlValue:
    """The value of a numeric component: an int when integral and in int64, else a float."""
    if cls == _POS_INF:
        return math.inf
    if cls == _NEG_INF:
        return -math.inf
    if cls == _ZERO:
        return 0
    mant = (1 << _FRAC_BITS) | frac
    shift = exp - _FRAC_BITS
    sign = -1 if cls == _NEG else 1
    if shift < 0 and mant & ((1 << -shift) - 1) == 0:
        as_int = sign * (mant >> -shift)
        if _INT64_MIN <= as_int <= _INT64_MAX:
            return as_int
    # mant has at most 53 significant bits for a double, so float(mant) and ldexp are exact.
    return sign * math.ldexp(float(mant), shift)


def _retype(key: bytes, value: SqlValue, tag: int) -> SqlValue:
    if tag == _TAG_INT:
        if isinstance(value, int):
            return value
        if value == 0.0:
            return 0
        raise _bad(key, f"integer tag on non-integer {value!r}")
    if tag == _TAG_REAL:
        return float(value) if isinstance(value, int) else value
    if tag == _TAG_NEG_ZERO:
        if value == 0:
            return -0.0
        raise _bad(key, f"-0.0 tag on {value!r}")
    raise _bad(key, f"unknown type tag 0x{tag:02x}")


def _escape(out: bytearray, raw: bytes) -> None:
    out += raw.replace(b"\x00", _ESC_NUL)
    out += _END


def _unescape(key: bytes, pos: int) -> tuple[bytes, int]:
    """Read an escaped string starting at ``pos``; returns it and the offset after it."""
    raw = bytearray()
    while True:
        nul = key.find(b"\x00", pos)
        if nul < 0 or nul + 1 >= len(key):
            raise _bad(key, f"unterminated string at offset {pos}")
        raw += key[pos:nul]
        marker = key[nul + 1]
        pos = nul + 2
        if marker == 0x01:
            return bytes(raw), pos
        if marker != 0xFF:
            raise _bad(key, f"bad escape 0x00 0x{marker:02x} at offset {nul}")
        raw.append(0)


def _bad(key: bytes, why: str) -> ValueError:
    shown = key if len(key) <= 40 else key[:40] + b"..."
    return ValueError(f"bad key {shown!r}: {why}")

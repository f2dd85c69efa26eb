"""Errors raised by the storage layer.

::

    StorageError
    ├── ValueTypeError        a value SQLite cannot store, or a malformed protobuf Value
    └── EngineFailure         an I/O or corruption error: the replica must stop (not a SQL result)
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of storage errors."""


class ValueTypeError(StorageError, TypeError):
    """A value that cannot be stored in SQLite, or a malformed ``Value``."""


class EngineFailure(StorageError):
    """The SQLite file could not be read or written; the replica stops serving."""

"""Replica storage: one SQLite file per replica, through apsw."""

from . import sqlstate
from .engine import Engine, SqlFailure, StatementResult, classify_sqlite_error
from .errors import EngineFailure, StorageError, ValueTypeError
from .values import (
    SqlValue,
    from_proto,
    params_from_proto,
    params_to_proto,
    row_from_proto,
    row_to_proto,
    to_proto,
)

__all__ = [
    "Engine",
    "EngineFailure",
    "SqlFailure",
    "SqlValue",
    "StatementResult",
    "StorageError",
    "ValueTypeError",
    "classify_sqlite_error",
    "from_proto",
    "params_from_proto",
    "params_to_proto",
    "row_from_proto",
    "row_to_proto",
    "sqlstate",
    "to_proto",
]

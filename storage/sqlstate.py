"""SQLSTATE-like error codes used on the wire (``atlasql.v1.Error.code``).

The classes follow PostgreSQL/CockroachDB so that clients and ORMs recognise them; the
``AQ`` class is atlasql's own, for routing conditions that the gateway normally retries.
"""

from __future__ import annotations

SYNTAX_ERROR = "42601"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
UNDEFINED_OBJECT = "42704"
DUPLICATE_TABLE = "42P07"
DUPLICATE_OBJECT = "42710"
DUPLICATE_DATABASE = "42P04"
UNDEFINED_DATABASE = "3D000"
DEPENDENT_OBJECTS = "2BP01"
DATATYPE_MISMATCH = "42804"
INVALID_NAME = "42602"
INSUFFICIENT_PRIVILEGE = "42501"
INVALID_PARAMETER = "22023"
DATA_EXCEPTION = "22000"
INTEGRITY_VIOLATION = "23000"
NOT_NULL_VIOLATION = "23502"
FOREIGN_KEY_VIOLATION = "23503"
UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"
FEATURE_NOT_SUPPORTED = "0A000"
READ_ONLY = "25006"
SERIALIZATION_FAILURE = "40001"  # retry the transaction
PROTOCOL_VIOLATION = "08P01"  # malformed request
CONNECTION_FAILURE = "08006"
QUERY_CANCELED = "57014"
SYSTEM_ERROR = "58000"
INTERNAL_ERROR = "XX000"

# atlasql routing conditions (retried by the gateway; reach a client only when retries ran out)
NOT_LEADER = "AQ001"
RANGE_NOT_FOUND = "AQ002"
RANGE_UNAVAILABLE = "AQ003"
AMBIGUOUS_RESULT = "AQ004"
NOT_INITIALIZED = "AQ005"
RANGE_MOVED = "AQ006"  # the range no longer holds the span the statement was planned for
STALE_REPLICA = "AQ008"  # a follower read found this replica too far behind
SCHEMA_CHANGED = "AQ007"  # the table's schema changed since the statement was planned

RETRYABLE = frozenset({SERIALIZATION_FAILURE, NOT_LEADER, RANGE_NOT_FOUND, RANGE_UNAVAILABLE})

# transactions (PostgreSQL's codes, as CockroachDB uses them)
ACTIVE_TRANSACTION = "25001"  # BEGIN inside a transaction
NO_ACTIVE_TRANSACTION = "25P01"  # COMMIT/SAVEPOINT outside one
IN_FAILED_TRANSACTION = "25P02"  # a statement after an error, before ROLLBACK
INVALID_SAVEPOINT = "3B001"
STATEMENT_COMPLETION_UNKNOWN = "40003"  # a COMMIT whose outcome is not known

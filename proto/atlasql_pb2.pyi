from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Value(_message.Message):
    __slots__ = ("null", "integer", "real", "text", "blob")
    NULL_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    REAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    null: bool
    integer: int
    real: float
    text: str
    blob: bytes
    def __init__(self, null: _Optional[bool] = ..., integer: _Optional[int] = ..., real: _Optional[float] = ..., text: _Optional[str] = ..., blob: _Optional[bytes] = ...) -> None: ...

class Row(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "position", "line", "column", "leader_hint")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    position: int
    line: int
    column: int
    leader_hint: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., position: _Optional[int] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., leader_hint: _Optional[int] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("sql", "params", "named_params", "session_id", "seq", "database", "batch", "settings", "trace", "in_txn")
    class NamedParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NAMED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    IN_TXN_FIELD_NUMBER: _ClassVar[int]
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Value]
    named_params: _containers.MessageMap[str, Value]
    session_id: str
    seq: int
    database: str
    batch: _containers.RepeatedCompositeFieldContainer[Row]
    settings: _containers.ScalarMap[str, str]
    trace: bool
    in_txn: bool
    def __init__(self, sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., named_params: _Optional[_Mapping[str, Value]] = ..., session_id: _Optional[str] = ..., seq: _Optional[int] = ..., database: _Optional[str] = ..., batch: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., settings: _Optional[_Mapping[str, str]] = ..., trace: _Optional[bool] = ..., in_txn: _Optional[bool] = ...) -> None: ...

class Hop(_message.Message):
    __slots__ = ("where", "what", "ms")
    WHERE_FIELD_NUMBER: _ClassVar[int]
    WHAT_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    where: str
    what: str
    ms: float
    def __init__(self, where: _Optional[str] = ..., what: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("columns", "rows", "rows_affected", "last_insert_rowid", "error", "returns_rows", "database", "settings", "hops", "txn_status")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_INSERT_ROWID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETURNS_ROWS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    TXN_STATUS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    rows_affected: int
    last_insert_rowid: int
    error: Error
    returns_rows: bool
    database: str
    settings: _containers.ScalarMap[str, str]
    hops: _containers.RepeatedCompositeFieldContainer[Hop]
    txn_status: str
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., rows_affected: _Optional[int] = ..., last_insert_rowid: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., returns_rows: _Optional[bool] = ..., database: _Optional[str] = ..., settings: _Optional[_Mapping[str, str]] = ..., hops: _Optional[_Iterable[_Union[Hop, _Mapping]]] = ..., txn_status: _Optional[str] = ...) -> None: ...

class Locality(_message.Message):
    __slots__ = ("tiers",)
    TIERS_FIELD_NUMBER: _ClassVar[int]
    tiers: _containers.RepeatedCompositeFieldContainer[LocalityTier]
    def __init__(self, tiers: _Optional[_Iterable[_Union[LocalityTier, _Mapping]]] = ...) -> None: ...

class LocalityTier(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "address", "locality", "cluster_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOCALITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    locality: Locality
    cluster_id: str
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., locality: _Optional[_Union[Locality, _Mapping]] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class InitRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InitResponse(_message.Message):
    __slots__ = ("cluster_id", "meta_replicas", "error")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    META_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    meta_replicas: _containers.RepeatedScalarFieldContainer[int]
    error: Error
    def __init__(self, cluster_id: _Optional[str] = ..., meta_replicas: _Optional[_Iterable[int]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("node", "known_nodes", "replicas", "uptime_seconds", "disk_bytes")
    NODE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_NODES_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    known_nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    uptime_seconds: float
    disk_bytes: int
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., known_nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ..., uptime_seconds: _Optional[float] = ..., disk_bytes: _Optional[int] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("range_id", "is_leader", "leader", "applied_index", "commit_index", "term", "stopped", "last_index")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    is_leader: bool
    leader: int
    applied_index: int
    commit_index: int
    term: int
    stopped: str
    last_index: int
    def __init__(self, range_id: _Optional[int] = ..., is_leader: _Optional[bool] = ..., leader: _Optional[int] = ..., applied_index: _Optional[int] = ..., commit_index: _Optional[int] = ..., term: _Optional[int] = ..., stopped: _Optional[str] = ..., last_index: _Optional[int] = ...) -> None: ...

class MeasureRttRequest(_message.Message):
    __slots__ = ("samples",)
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: int
    def __init__(self, samples: _Optional[int] = ...) -> None: ...

class PeerRtt(_message.Message):
    __slots__ = ("node_id", "region", "configured_ms", "measured_ms")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_MS_FIELD_NUMBER: _ClassVar[int]
    MEASURED_MS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    region: str
    configured_ms: float
    measured_ms: float
    def __init__(self, node_id: _Optional[int] = ..., region: _Optional[str] = ..., configured_ms: _Optional[float] = ..., measured_ms: _Optional[float] = ...) -> None: ...

class MeasureRttResponse(_message.Message):
    __slots__ = ("node_id", "region", "peers")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    region: str
    peers: _containers.RepeatedCompositeFieldContainer[PeerRtt]
    def __init__(self, node_id: _Optional[int] = ..., region: _Optional[str] = ..., peers: _Optional[_Iterable[_Union[PeerRtt, _Mapping]]] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ("node_id", "timeout_seconds")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    timeout_seconds: float
    def __init__(self, node_id: _Optional[int] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class DrainResponse(_message.Message):
    __slots__ = ("leaders_moved", "leaders_left", "error")
    LEADERS_MOVED_FIELD_NUMBER: _ClassVar[int]
    LEADERS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    leaders_moved: int
    leaders_left: int
    error: Error
    def __init__(self, leaders_moved: _Optional[int] = ..., leaders_left: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class DecommissionRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    def __init__(self, node_id: _Optional[int] = ...) -> None: ...

class DecommissionProgress(_message.Message):
    __slots__ = ("replicas_total", "replicas_moved", "range_id", "message", "error", "done")
    REPLICAS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_MOVED_FIELD_NUMBER: _ClassVar[int]
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    replicas_total: int
    replicas_moved: int
    range_id: int
    message: str
    error: Error
    done: bool
    def __init__(self, replicas_total: _Optional[int] = ..., replicas_moved: _Optional[int] = ..., range_id: _Optional[int] = ..., message: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., done: _Optional[bool] = ...) -> None: ...

class FaultRequest(_message.Message):
    __slots__ = ("partition", "delay_ms", "heal", "fail_next_log_write", "txn_crash", "convert_crash")
    class DelayMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: float
        def __init__(self, key: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    HEAL_FIELD_NUMBER: _ClassVar[int]
    FAIL_NEXT_LOG_WRITE_FIELD_NUMBER: _ClassVar[int]
    TXN_CRASH_FIELD_NUMBER: _ClassVar[int]
    CONVERT_CRASH_FIELD_NUMBER: _ClassVar[int]
    partition: _containers.RepeatedScalarFieldContainer[int]
    delay_ms: _containers.ScalarMap[int, float]
    heal: bool
    fail_next_log_write: bool
    txn_crash: str
    convert_crash: str
    def __init__(self, partition: _Optional[_Iterable[int]] = ..., delay_ms: _Optional[_Mapping[int, float]] = ..., heal: _Optional[bool] = ..., fail_next_log_write: _Optional[bool] = ..., txn_crash: _Optional[str] = ..., convert_crash: _Optional[str] = ...) -> None: ...

class FaultResponse(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: Error
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node", "reachable", "replicas", "uptime_seconds", "disk_bytes")
    NODE_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    reachable: bool
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    uptime_seconds: float
    disk_bytes: int
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., reachable: _Optional[bool] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ..., uptime_seconds: _Optional[float] = ..., disk_bytes: _Optional[int] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ...) -> None: ...

class RangeDescriptor(_message.Message):
    __slots__ = ("range_id", "table", "start_key", "end_key", "replicas", "generation", "non_voters", "database")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    START_KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    NON_VOTERS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    table: str
    start_key: bytes
    end_key: bytes
    replicas: _containers.RepeatedScalarFieldContainer[int]
    generation: int
    non_voters: _containers.RepeatedScalarFieldContainer[int]
    database: str
    def __init__(self, range_id: _Optional[int] = ..., table: _Optional[str] = ..., start_key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ..., replicas: _Optional[_Iterable[int]] = ..., generation: _Optional[int] = ..., non_voters: _Optional[_Iterable[int]] = ..., database: _Optional[str] = ...) -> None: ...

class TableDescriptor(_message.Message):
    __slots__ = ("table_id", "name", "create_sql", "index_sql", "schema_version", "database", "locality", "converting")
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_SQL_FIELD_NUMBER: _ClassVar[int]
    INDEX_SQL_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    LOCALITY_FIELD_NUMBER: _ClassVar[int]
    CONVERTING_FIELD_NUMBER: _ClassVar[int]
    table_id: int
    name: str
    create_sql: str
    index_sql: _containers.RepeatedScalarFieldContainer[str]
    schema_version: int
    database: str
    locality: str
    converting: str
    def __init__(self, table_id: _Optional[int] = ..., name: _Optional[str] = ..., create_sql: _Optional[str] = ..., index_sql: _Optional[_Iterable[str]] = ..., schema_version: _Optional[int] = ..., database: _Optional[str] = ..., locality: _Optional[str] = ..., converting: _Optional[str] = ...) -> None: ...

class DatabaseDescriptor(_message.Message):
    __slots__ = ("name", "primary_region", "regions", "survival")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_REGION_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    SURVIVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    primary_region: str
    regions: _containers.RepeatedScalarFieldContainer[str]
    survival: str
    def __init__(self, name: _Optional[str] = ..., primary_region: _Optional[str] = ..., regions: _Optional[_Iterable[str]] = ..., survival: _Optional[str] = ...) -> None: ...

class Catalog(_message.Message):
    __slots__ = ("version", "nodes", "tables", "ranges", "max_range_id", "databases")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    MAX_RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    DATABASES_FIELD_NUMBER: _ClassVar[int]
    version: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    tables: _containers.RepeatedCompositeFieldContainer[TableDescriptor]
    ranges: _containers.RepeatedCompositeFieldContainer[RangeDescriptor]
    max_range_id: int
    databases: _containers.RepeatedCompositeFieldContainer[DatabaseDescriptor]
    def __init__(self, version: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., tables: _Optional[_Iterable[_Union[TableDescriptor, _Mapping]]] = ..., ranges: _Optional[_Iterable[_Union[RangeDescriptor, _Mapping]]] = ..., max_range_id: _Optional[int] = ..., databases: _Optional[_Iterable[_Union[DatabaseDescriptor, _Mapping]]] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("proposer", "request_id", "session_id", "seq", "write", "read", "meta", "check", "barrier", "change_replicas", "split", "txn_step", "txn_prepare", "txn_commit", "txn_resolve", "txn_recover", "txn_forget")
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    BARRIER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TXN_STEP_FIELD_NUMBER: _ClassVar[int]
    TXN_PREPARE_FIELD_NUMBER: _ClassVar[int]
    TXN_COMMIT_FIELD_NUMBER: _ClassVar[int]
    TXN_RESOLVE_FIELD_NUMBER: _ClassVar[int]
    TXN_RECOVER_FIELD_NUMBER: _ClassVar[int]
    TXN_FORGET_FIELD_NUMBER: _ClassVar[int]
    proposer: int
    request_id: int
    session_id: str
    seq: int
    write: SqlWrite
    read: SqlRead
    meta: MetaOp
    check: ChecksumOp
    barrier: Barrier
    change_replicas: ChangeReplicas
    split: SplitRange
    txn_step: TxnStep
    txn_prepare: TxnPrepare
    txn_commit: TxnCommit
    txn_resolve: TxnResolve
    txn_recover: TxnRecover
    txn_forget: TxnForget
    def __init__(self, proposer: _Optional[int] = ..., request_id: _Optional[int] = ..., session_id: _Optional[str] = ..., seq: _Optional[int] = ..., write: _Optional[_Union[SqlWrite, _Mapping]] = ..., read: _Optional[_Union[SqlRead, _Mapping]] = ..., meta: _Optional[_Union[MetaOp, _Mapping]] = ..., check: _Optional[_Union[ChecksumOp, _Mapping]] = ..., barrier: _Optional[_Union[Barrier, _Mapping]] = ..., change_replicas: _Optional[_Union[ChangeReplicas, _Mapping]] = ..., split: _Optional[_Union[SplitRange, _Mapping]] = ..., txn_step: _Optional[_Union[TxnStep, _Mapping]] = ..., txn_prepare: _Optional[_Union[TxnPrepare, _Mapping]] = ..., txn_commit: _Optional[_Union[TxnCommit, _Mapping]] = ..., txn_resolve: _Optional[_Union[TxnResolve, _Mapping]] = ..., txn_recover: _Optional[_Union[TxnRecover, _Mapping]] = ..., txn_forget: _Optional[_Union[TxnForget, _Mapping]] = ...) -> None: ...

class TxnMeta(_message.Message):
    __slots__ = ("txn_id", "priority", "incarnation")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    txn_id: bytes
    priority: int
    incarnation: int
    def __init__(self, txn_id: _Optional[bytes] = ..., priority: _Optional[int] = ..., incarnation: _Optional[int] = ...) -> None: ...

class TxnStep(_message.Message):
    __slots__ = ("txn", "kind", "changeset", "stmt", "read_only", "locks", "trim_to_span", "move_out")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATEMENT: _ClassVar[TxnStep.Kind]
        VALIDATE: _ClassVar[TxnStep.Kind]
        RELEASE: _ClassVar[TxnStep.Kind]
        HEARTBEAT: _ClassVar[TxnStep.Kind]
    STATEMENT: TxnStep.Kind
    VALIDATE: TxnStep.Kind
    RELEASE: TxnStep.Kind
    HEARTBEAT: TxnStep.Kind
    TXN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGESET_FIELD_NUMBER: _ClassVar[int]
    STMT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    TRIM_TO_SPAN_FIELD_NUMBER: _ClassVar[int]
    MOVE_OUT_FIELD_NUMBER: _ClassVar[int]
    txn: TxnMeta
    kind: TxnStep.Kind
    changeset: bytes
    stmt: SqlWrite
    read_only: bool
    locks: _containers.RepeatedCompositeFieldContainer[Span]
    trim_to_span: bool
    move_out: bool
    def __init__(self, txn: _Optional[_Union[TxnMeta, _Mapping]] = ..., kind: _Optional[_Union[TxnStep.Kind, str]] = ..., changeset: _Optional[bytes] = ..., stmt: _Optional[_Union[SqlWrite, _Mapping]] = ..., read_only: _Optional[bool] = ..., locks: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., trim_to_span: _Optional[bool] = ..., move_out: _Optional[bool] = ...) -> None: ...

class TxnPrepare(_message.Message):
    __slots__ = ("txn", "changeset", "record_range", "span", "schema_version")
    TXN_FIELD_NUMBER: _ClassVar[int]
    CHANGESET_FIELD_NUMBER: _ClassVar[int]
    RECORD_RANGE_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    txn: TxnMeta
    changeset: bytes
    record_range: int
    span: Span
    schema_version: int
    def __init__(self, txn: _Optional[_Union[TxnMeta, _Mapping]] = ..., changeset: _Optional[bytes] = ..., record_range: _Optional[int] = ..., span: _Optional[_Union[Span, _Mapping]] = ..., schema_version: _Optional[int] = ...) -> None: ...

class TxnCommit(_message.Message):
    __slots__ = ("txn", "changeset", "participants", "span", "schema_version", "record")
    TXN_FIELD_NUMBER: _ClassVar[int]
    CHANGESET_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    txn: TxnMeta
    changeset: bytes
    participants: _containers.RepeatedScalarFieldContainer[int]
    span: Span
    schema_version: int
    record: bool
    def __init__(self, txn: _Optional[_Union[TxnMeta, _Mapping]] = ..., changeset: _Optional[bytes] = ..., participants: _Optional[_Iterable[int]] = ..., span: _Optional[_Union[Span, _Mapping]] = ..., schema_version: _Optional[int] = ..., record: _Optional[bool] = ...) -> None: ...

class TxnResolve(_message.Message):
    __slots__ = ("txn_id", "commit")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    txn_id: bytes
    commit: bool
    def __init__(self, txn_id: _Optional[bytes] = ..., commit: _Optional[bool] = ...) -> None: ...

class TxnRecover(_message.Message):
    __slots__ = ("txn_id",)
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: bytes
    def __init__(self, txn_id: _Optional[bytes] = ...) -> None: ...

class TxnForget(_message.Message):
    __slots__ = ("txn_id",)
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: bytes
    def __init__(self, txn_id: _Optional[bytes] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("start_key", "end_key")
    START_KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    start_key: bytes
    end_key: bytes
    def __init__(self, start_key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ...) -> None: ...

class SplitRange(_message.Message):
    __slots__ = ("split_key", "new_range_id", "span", "table", "voters", "non_voters", "database")
    SPLIT_KEY_FIELD_NUMBER: _ClassVar[int]
    NEW_RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    NON_VOTERS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    split_key: bytes
    new_range_id: int
    span: Span
    table: str
    voters: _containers.RepeatedScalarFieldContainer[int]
    non_voters: _containers.RepeatedScalarFieldContainer[int]
    database: str
    def __init__(self, split_key: _Optional[bytes] = ..., new_range_id: _Optional[int] = ..., span: _Optional[_Union[Span, _Mapping]] = ..., table: _Optional[str] = ..., voters: _Optional[_Iterable[int]] = ..., non_voters: _Optional[_Iterable[int]] = ..., database: _Optional[str] = ...) -> None: ...

class ChangeReplicas(_message.Message):
    __slots__ = ("voters", "non_voters", "generation")
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    NON_VOTERS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    voters: _containers.RepeatedScalarFieldContainer[int]
    non_voters: _containers.RepeatedScalarFieldContainer[int]
    generation: int
    def __init__(self, voters: _Optional[_Iterable[int]] = ..., non_voters: _Optional[_Iterable[int]] = ..., generation: _Optional[int] = ...) -> None: ...

class Barrier(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChecksumOp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SqlWrite(_message.Message):
    __slots__ = ("sql", "params", "named_params", "insert_table", "batch", "span", "schema_version", "new_schema_version", "ddl_table", "ddl_database", "locks", "rename_table_to")
    class NamedParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NAMED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    INSERT_TABLE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    DDL_TABLE_FIELD_NUMBER: _ClassVar[int]
    DDL_DATABASE_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    RENAME_TABLE_TO_FIELD_NUMBER: _ClassVar[int]
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Value]
    named_params: _containers.MessageMap[str, Value]
    insert_table: str
    batch: _containers.RepeatedCompositeFieldContainer[Row]
    span: Span
    schema_version: int
    new_schema_version: int
    ddl_table: str
    ddl_database: str
    locks: _containers.RepeatedCompositeFieldContainer[Span]
    rename_table_to: str
    def __init__(self, sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., named_params: _Optional[_Mapping[str, Value]] = ..., insert_table: _Optional[str] = ..., batch: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., span: _Optional[_Union[Span, _Mapping]] = ..., schema_version: _Optional[int] = ..., new_schema_version: _Optional[int] = ..., ddl_table: _Optional[str] = ..., ddl_database: _Optional[str] = ..., locks: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., rename_table_to: _Optional[str] = ...) -> None: ...

class SqlRead(_message.Message):
    __slots__ = ("sql", "params", "named_params", "catalog", "span", "schema_version", "max_staleness_ms", "locks")
    class NamedParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NAMED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[Value]
    named_params: _containers.MessageMap[str, Value]
    catalog: bool
    span: Span
    schema_version: int
    max_staleness_ms: int
    locks: _containers.RepeatedCompositeFieldContainer[Span]
    def __init__(self, sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., named_params: _Optional[_Mapping[str, Value]] = ..., catalog: _Optional[bool] = ..., span: _Optional[_Union[Span, _Mapping]] = ..., schema_version: _Optional[int] = ..., max_staleness_ms: _Optional[int] = ..., locks: _Optional[_Iterable[_Union[Span, _Mapping]]] = ...) -> None: ...

class MetaOp(_message.Message):
    __slots__ = ("register_node", "create_table", "drop_table", "add_index", "drop_index", "update_range", "allocate_range_ids", "upsert_ranges", "alter_table", "create_database", "drop_database", "alter_database", "set_locality", "convert_table")
    REGISTER_NODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TABLE_FIELD_NUMBER: _ClassVar[int]
    DROP_TABLE_FIELD_NUMBER: _ClassVar[int]
    ADD_INDEX_FIELD_NUMBER: _ClassVar[int]
    DROP_INDEX_FIELD_NUMBER: _ClassVar[int]
    UPDATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_RANGE_IDS_FIELD_NUMBER: _ClassVar[int]
    UPSERT_RANGES_FIELD_NUMBER: _ClassVar[int]
    ALTER_TABLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_DATABASE_FIELD_NUMBER: _ClassVar[int]
    DROP_DATABASE_FIELD_NUMBER: _ClassVar[int]
    ALTER_DATABASE_FIELD_NUMBER: _ClassVar[int]
    SET_LOCALITY_FIELD_NUMBER: _ClassVar[int]
    CONVERT_TABLE_FIELD_NUMBER: _ClassVar[int]
    register_node: NodeInfo
    create_table: CreateTable
    drop_table: DropTable
    add_index: AddIndex
    drop_index: DropIndex
    update_range: UpdateRange
    allocate_range_ids: AllocateRangeIds
    upsert_ranges: UpsertRanges
    alter_table: AlterTable
    create_database: CreateDatabase
    drop_database: DropDatabase
    alter_database: AlterDatabase
    set_locality: SetLocality
    convert_table: ConvertTable
    def __init__(self, register_node: _Optional[_Union[NodeInfo, _Mapping]] = ..., create_table: _Optional[_Union[CreateTable, _Mapping]] = ..., drop_table: _Optional[_Union[DropTable, _Mapping]] = ..., add_index: _Optional[_Union[AddIndex, _Mapping]] = ..., drop_index: _Optional[_Union[DropIndex, _Mapping]] = ..., update_range: _Optional[_Union[UpdateRange, _Mapping]] = ..., allocate_range_ids: _Optional[_Union[AllocateRangeIds, _Mapping]] = ..., upsert_ranges: _Optional[_Union[UpsertRanges, _Mapping]] = ..., alter_table: _Optional[_Union[AlterTable, _Mapping]] = ..., create_database: _Optional[_Union[CreateDatabase, _Mapping]] = ..., drop_database: _Optional[_Union[DropDatabase, _Mapping]] = ..., alter_database: _Optional[_Union[AlterDatabase, _Mapping]] = ..., set_locality: _Optional[_Union[SetLocality, _Mapping]] = ..., convert_table: _Optional[_Union[ConvertTable, _Mapping]] = ...) -> None: ...

class ConvertTable(_message.Message):
    __slots__ = ("database", "table", "phase", "locality", "shadow", "schema_version", "create_sql")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LOCALITY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_SQL_FIELD_NUMBER: _ClassVar[int]
    database: str
    table: str
    phase: str
    locality: str
    shadow: str
    schema_version: int
    create_sql: str
    def __init__(self, database: _Optional[str] = ..., table: _Optional[str] = ..., phase: _Optional[str] = ..., locality: _Optional[str] = ..., shadow: _Optional[str] = ..., schema_version: _Optional[int] = ..., create_sql: _Optional[str] = ...) -> None: ...

class AlterTable(_message.Message):
    __slots__ = ("name", "create_sql", "schema_version", "index_names", "index_sql", "database")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_SQL_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_NAMES_FIELD_NUMBER: _ClassVar[int]
    INDEX_SQL_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    name: str
    create_sql: str
    schema_version: int
    index_names: _containers.RepeatedScalarFieldContainer[str]
    index_sql: _containers.RepeatedScalarFieldContainer[str]
    database: str
    def __init__(self, name: _Optional[str] = ..., create_sql: _Optional[str] = ..., schema_version: _Optional[int] = ..., index_names: _Optional[_Iterable[str]] = ..., index_sql: _Optional[_Iterable[str]] = ..., database: _Optional[str] = ...) -> None: ...

class AllocateRangeIds(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class UpsertRanges(_message.Message):
    __slots__ = ("ranges",)
    RANGES_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[RangeDescriptor]
    def __init__(self, ranges: _Optional[_Iterable[_Union[RangeDescriptor, _Mapping]]] = ...) -> None: ...

class UpdateRange(_message.Message):
    __slots__ = ("range_id", "voters", "non_voters", "generation")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    NON_VOTERS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    voters: _containers.RepeatedScalarFieldContainer[int]
    non_voters: _containers.RepeatedScalarFieldContainer[int]
    generation: int
    def __init__(self, range_id: _Optional[int] = ..., voters: _Optional[_Iterable[int]] = ..., non_voters: _Optional[_Iterable[int]] = ..., generation: _Optional[int] = ...) -> None: ...

class CreateTable(_message.Message):
    __slots__ = ("name", "create_sql", "replicas", "if_not_exists", "database", "locality")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_SQL_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    IF_NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    LOCALITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    create_sql: str
    replicas: _containers.RepeatedScalarFieldContainer[int]
    if_not_exists: bool
    database: str
    locality: str
    def __init__(self, name: _Optional[str] = ..., create_sql: _Optional[str] = ..., replicas: _Optional[_Iterable[int]] = ..., if_not_exists: _Optional[bool] = ..., database: _Optional[str] = ..., locality: _Optional[str] = ...) -> None: ...

class DropTable(_message.Message):
    __slots__ = ("name", "if_exists", "database")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    name: str
    if_exists: bool
    database: str
    def __init__(self, name: _Optional[str] = ..., if_exists: _Optional[bool] = ..., database: _Optional[str] = ...) -> None: ...

class AddIndex(_message.Message):
    __slots__ = ("table", "index_sql", "index_name", "database")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    INDEX_SQL_FIELD_NUMBER: _ClassVar[int]
    INDEX_NAME_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    table: str
    index_sql: str
    index_name: str
    database: str
    def __init__(self, table: _Optional[str] = ..., index_sql: _Optional[str] = ..., index_name: _Optional[str] = ..., database: _Optional[str] = ...) -> None: ...

class DropIndex(_message.Message):
    __slots__ = ("index_name", "database")
    INDEX_NAME_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    index_name: str
    database: str
    def __init__(self, index_name: _Optional[str] = ..., database: _Optional[str] = ...) -> None: ...

class CreateDatabase(_message.Message):
    __slots__ = ("name", "if_not_exists", "primary_region", "regions", "survival")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IF_NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_REGION_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    SURVIVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    if_not_exists: bool
    primary_region: str
    regions: _containers.RepeatedScalarFieldContainer[str]
    survival: str
    def __init__(self, name: _Optional[str] = ..., if_not_exists: _Optional[bool] = ..., primary_region: _Optional[str] = ..., regions: _Optional[_Iterable[str]] = ..., survival: _Optional[str] = ...) -> None: ...

class AlterDatabase(_message.Message):
    __slots__ = ("name", "add_region", "drop_region", "primary_region", "survival")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADD_REGION_FIELD_NUMBER: _ClassVar[int]
    DROP_REGION_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_REGION_FIELD_NUMBER: _ClassVar[int]
    SURVIVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    add_region: str
    drop_region: str
    primary_region: str
    survival: str
    def __init__(self, name: _Optional[str] = ..., add_region: _Optional[str] = ..., drop_region: _Optional[str] = ..., primary_region: _Optional[str] = ..., survival: _Optional[str] = ...) -> None: ...

class SetLocality(_message.Message):
    __slots__ = ("database", "table", "locality")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    LOCALITY_FIELD_NUMBER: _ClassVar[int]
    database: str
    table: str
    locality: str
    def __init__(self, database: _Optional[str] = ..., table: _Optional[str] = ..., locality: _Optional[str] = ...) -> None: ...

class DropDatabase(_message.Message):
    __slots__ = ("name", "if_exists", "cascade")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    CASCADE_FIELD_NUMBER: _ClassVar[int]
    name: str
    if_exists: bool
    cascade: bool
    def __init__(self, name: _Optional[str] = ..., if_exists: _Optional[bool] = ..., cascade: _Optional[bool] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("columns", "rows", "rows_affected", "last_insert_rowid", "error", "returns_rows", "applied_index", "changeset", "incarnation", "txn_status", "moved_columns", "moved_rows", "lock_hold_ms")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_INSERT_ROWID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETURNS_ROWS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHANGESET_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    TXN_STATUS_FIELD_NUMBER: _ClassVar[int]
    MOVED_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MOVED_ROWS_FIELD_NUMBER: _ClassVar[int]
    LOCK_HOLD_MS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    rows_affected: int
    last_insert_rowid: int
    error: Error
    returns_rows: bool
    applied_index: int
    changeset: bytes
    incarnation: int
    txn_status: str
    moved_columns: _containers.RepeatedScalarFieldContainer[str]
    moved_rows: _containers.RepeatedCompositeFieldContainer[Row]
    lock_hold_ms: int
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., rows_affected: _Optional[int] = ..., last_insert_rowid: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., returns_rows: _Optional[bool] = ..., applied_index: _Optional[int] = ..., changeset: _Optional[bytes] = ..., incarnation: _Optional[int] = ..., txn_status: _Optional[str] = ..., moved_columns: _Optional[_Iterable[str]] = ..., moved_rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ..., lock_hold_ms: _Optional[int] = ...) -> None: ...

class RaftValue(_message.Message):
    __slots__ = ("none", "boolean", "integer", "real", "text", "data", "list", "map")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    REAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    none: bool
    boolean: bool
    integer: int
    real: float
    text: str
    data: bytes
    list: RaftList
    map: RaftMap
    def __init__(self, none: _Optional[bool] = ..., boolean: _Optional[bool] = ..., integer: _Optional[int] = ..., real: _Optional[float] = ..., text: _Optional[str] = ..., data: _Optional[bytes] = ..., list: _Optional[_Union[RaftList, _Mapping]] = ..., map: _Optional[_Union[RaftMap, _Mapping]] = ...) -> None: ...

class RaftList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RaftValue]
    def __init__(self, items: _Optional[_Iterable[_Union[RaftValue, _Mapping]]] = ...) -> None: ...

class RaftMap(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RaftValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RaftValue, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, RaftValue]
    def __init__(self, fields: _Optional[_Mapping[str, RaftValue]] = ...) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("range_id", "body", "append", "next")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    body: RaftMap
    append: AppendEntries
    next: NextIndex
    def __init__(self, range_id: _Optional[int] = ..., body: _Optional[_Union[RaftMap, _Mapping]] = ..., append: _Optional[_Union[AppendEntries, _Mapping]] = ..., next: _Optional[_Union[NextIndex, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("data", "index", "term")
    DATA_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    index: int
    term: int
    def __init__(self, data: _Optional[bytes] = ..., index: _Optional[int] = ..., term: _Optional[int] = ...) -> None: ...

class AppendEntries(_message.Message):
    __slots__ = ("term", "commit_index", "prev_log_index", "prev_log_term", "entries", "hb")
    TERM_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HB_FIELD_NUMBER: _ClassVar[int]
    term: int
    commit_index: int
    prev_log_index: int
    prev_log_term: int
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    hb: int
    def __init__(self, term: _Optional[int] = ..., commit_index: _Optional[int] = ..., prev_log_index: _Optional[int] = ..., prev_log_term: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., hb: _Optional[int] = ...) -> None: ...

class NextIndex(_message.Message):
    __slots__ = ("next_index", "reset", "success", "hb")
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    HB_FIELD_NUMBER: _ClassVar[int]
    next_index: int
    reset: bool
    success: bool
    hb: int
    def __init__(self, next_index: _Optional[int] = ..., reset: _Optional[bool] = ..., success: _Optional[bool] = ..., hb: _Optional[int] = ...) -> None: ...

class RaftBatch(_message.Message):
    __slots__ = ("from_node", "to_node", "messages", "incarnation", "batch_seq", "calls")
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    TO_NODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    BATCH_SEQ_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    from_node: int
    to_node: int
    messages: _containers.RepeatedCompositeFieldContainer[RaftMessage]
    incarnation: int
    batch_seq: int
    calls: _containers.RepeatedCompositeFieldContainer[ForwardCall]
    def __init__(self, from_node: _Optional[int] = ..., to_node: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[RaftMessage, _Mapping]]] = ..., incarnation: _Optional[int] = ..., batch_seq: _Optional[int] = ..., calls: _Optional[_Iterable[_Union[ForwardCall, _Mapping]]] = ...) -> None: ...

class ForwardCall(_message.Message):
    __slots__ = ("call_id", "request", "response")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    request: RangeRequest
    response: RangeResponse
    def __init__(self, call_id: _Optional[int] = ..., request: _Optional[_Union[RangeRequest, _Mapping]] = ..., response: _Optional[_Union[RangeResponse, _Mapping]] = ...) -> None: ...

class RaftAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftEndpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftEndpointResponse(_message.Message):
    __slots__ = ("node_id", "port")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    port: int
    def __init__(self, node_id: _Optional[int] = ..., port: _Optional[int] = ...) -> None: ...

class HelloRequest(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class HelloResponse(_message.Message):
    __slots__ = ("node", "known_nodes", "meta")
    NODE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_NODES_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    known_nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    meta: RangeDescriptor
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., known_nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., meta: _Optional[_Union[RangeDescriptor, _Mapping]] = ...) -> None: ...

class BootstrapRequest(_message.Message):
    __slots__ = ("cluster_id", "meta", "nodes")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    meta: RangeDescriptor
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, cluster_id: _Optional[str] = ..., meta: _Optional[_Union[RangeDescriptor, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class BootstrapResponse(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: Error
    def __init__(self, error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class RangeRequest(_message.Message):
    __slots__ = ("range_id", "command", "generation")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    command: Command
    generation: int
    def __init__(self, range_id: _Optional[int] = ..., command: _Optional[_Union[Command, _Mapping]] = ..., generation: _Optional[int] = ...) -> None: ...

class RangeResponse(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: CommandResult
    error: Error
    def __init__(self, result: _Optional[_Union[CommandResult, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class CatalogRequest(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    def __init__(self, known_version: _Optional[int] = ...) -> None: ...

class CatalogResponse(_message.Message):
    __slots__ = ("catalog", "unchanged", "error")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    catalog: Catalog
    unchanged: bool
    error: Error
    def __init__(self, catalog: _Optional[_Union[Catalog, _Mapping]] = ..., unchanged: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class EnsureReplicasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnsureReplicasResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransferLeaderRequest(_message.Message):
    __slots__ = ("range_id", "target", "timeout_seconds")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    target: int
    timeout_seconds: float
    def __init__(self, range_id: _Optional[int] = ..., target: _Optional[int] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class TransferLeaderResponse(_message.Message):
    __slots__ = ("leader", "error")
    LEADER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    leader: int
    error: Error
    def __init__(self, leader: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("range_id", "from_node", "leader_term", "index", "term", "total_bytes", "data")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    LEADER_TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    from_node: int
    leader_term: int
    index: int
    term: int
    total_bytes: int
    data: bytes
    def __init__(self, range_id: _Optional[int] = ..., from_node: _Optional[int] = ..., leader_term: _Optional[int] = ..., index: _Optional[int] = ..., term: _Optional[int] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SnapshotAck(_message.Message):
    __slots__ = ("installed_index", "error")
    INSTALLED_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    installed_index: int
    error: Error
    def __init__(self, installed_index: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ChecksumRequest(_message.Message):
    __slots__ = ("range_id", "index", "wait_seconds")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    index: int
    wait_seconds: float
    def __init__(self, range_id: _Optional[int] = ..., index: _Optional[int] = ..., wait_seconds: _Optional[float] = ...) -> None: ...

class ChecksumResponse(_message.Message):
    __slots__ = ("checksum", "applied_index", "error")
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    checksum: str
    applied_index: int
    error: Error
    def __init__(self, checksum: _Optional[str] = ..., applied_index: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

"""Everything Raft: the only package that imports pysyncobj.

Public surface: the ``Store`` (all replicas of a node, one tick loop), ``RangeGroup``'s small
interface (``propose``, ``is_leader``, ``leader``, ``status``), the state machine ``apply``, the
command codec, the catalog state machine of the meta range, and the errors.
"""

from . import codec, meta
from .errors import (
    CodecError,
    NotLeaderError,
    ProposalDropped,
    ProposalTimeout,
    RaftError,
    RangeNotFoundError,
    ReplicaStopped,
)
from .fsm import apply, result_to_proto
from .group import RaftTiming, RangeGroup
from .meta import META_RANGE_ID, catalog_version, read_catalog
from .store import Store
from .transport import GRPC_OPTIONS, SECRET_METADATA_KEY, FaultHooks, NodeTransport

__all__ = [
    "GRPC_OPTIONS",
    "META_RANGE_ID",
    "SECRET_METADATA_KEY",
    "CodecError",
    "FaultHooks",
    "NodeTransport",
    "NotLeaderError",
    "ProposalDropped",
    "ProposalTimeout",
    "RaftError",
    "RaftTiming",
    "RangeGroup",
    "RangeNotFoundError",
    "ReplicaStopped",
    "Store",
    "apply",
    "codec",
    "meta",
    "catalog_version",
    "read_catalog",
    "result_to_proto",
]

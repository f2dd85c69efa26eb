"""Generated protobuf and gRPC code for package ``atlasql.v1`` (no hand-written logic).

Regenerate with ``python scripts/genproto.py``.
"""

from . import atlasql_pb2 as pb
from . import atlasql_pb2_grpc as rpc

__all__ = ["pb", "rpc"]

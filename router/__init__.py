"""Routing: key encoding, the catalog cache, and the sender that finds a range's leader."""

from .catalog import CatalogCache
from .errors import RangeUnavailableError, RouterError
from .keys import decode_key, encode_key, encode_prefix, encode_value, next_key, prefix_end
from .latency import RttMatrix, RttMatrixError, load_rtt_matrix, parse_rtt_matrix
from .sender import ChannelPool, LocalReplicas, RangeSender

__all__ = [
    "decode_key",
    "encode_key",
    "encode_prefix",
    "encode_value",
    "next_key",
    "prefix_end",
    "RttMatrix",
    "RttMatrixError",
    "load_rtt_matrix",
    "parse_rtt_matrix",
    "CatalogCache",
    "ChannelPool",
    "LocalReplicas",
    "RangeSender",
    "RangeUnavailableError",
    "RouterError",
]

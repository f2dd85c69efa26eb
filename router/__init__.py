"""Routing: key encoding (implemented in ``storage.keys``, which replicas also need to check
their spans), the catalog cache, and the sender that finds a range's leader."""

from storage.keys import (
    decode_key,
    encode_key,
    encode_prefix,
    encode_value,
    next_key,
    prefix_end,
)

from .catalog import (
    DEFAULT_DATABASE,
    CatalogCache,
    database_key,
    range_for_key,
    ranges_overlapping,
)
from .errors import RangeUnavailableError, RouterError
from .latency import RttMatrix, RttMatrixError, load_rtt_matrix, parse_rtt_matrix
from .placement import Action, NodeDesc, Policy, RangeState, Rule, next_action, rule_for
from .sender import ChannelPool, LocalReplicas, RangeSender

__all__ = [
    "decode_key",
    "encode_key",
    "encode_prefix",
    "encode_value",
    "next_key",
    "prefix_end",
    "Action",
    "NodeDesc",
    "Policy",
    "RangeState",
    "Rule",
    "next_action",
    "rule_for",
    "RttMatrix",
    "RttMatrixError",
    "load_rtt_matrix",
    "parse_rtt_matrix",
    "DEFAULT_DATABASE",
    "CatalogCache",
    "database_key",
    "range_for_key",
    "ranges_overlapping",
    "ChannelPool",
    "LocalReplicas",
    "RangeSender",
    "RangeUnavailableError",
    "RouterError",
]

"""Routing: the catalog cache, and the sender that finds a range's leader and retries."""

from .catalog import CatalogCache
from .errors import RangeUnavailableError, RouterError
from .sender import ChannelPool, LocalReplicas, RangeSender

__all__ = [
    "CatalogCache",
    "ChannelPool",
    "LocalReplicas",
    "RangeSender",
    "RangeUnavailableError",
    "RouterError",
]

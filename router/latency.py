"""Simulated geography: an RTT matrix between regions (``--rtt-matrix FILE``).

The file is JSON: round-trip milliseconds between regions, symmetric, each pair given once
or both ways (equal), and an optional top-level ``"jitter"`` (ms, added at random up to that
much per message)::

    {"us-east": {"us-west": 66, "eu-west": 64}, "us-west": {"eu-west": 146}, "jitter": 2}

Every inter-node message is delayed by half the RTT of the regions of its two nodes (Raft
traffic in the transport, gRPC forwarding in the router's channels), so one laptop shows
real geo latencies.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any


class RttMatrixError(ValueError):
    """The matrix file is unreadable or inconsistent; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class RttMatrix:
    pairs: dict[frozenset[str], float]  # round trip in milliseconds
    jitter_ms: float = 0.0

    @property
    def regions(self) -> set[str]:
        return {r for pair in self.pairs for r in pair}

    def rtt(self, a: str, b: str) -> float:
        """Round trip between two regions, in seconds (0 within a region or unknown pair).

        >>> m = parse_rtt_matrix({"us-east": {"eu-west": 64}})
        >>> m.rtt("eu-west", "us-east"), m.rtt("us-east", "us-east")
        (0.064, 0.0)
        """
        if a == b:
            return 0.0
        return self.pairs.get(frozenset((a, b)), 0.0) / 1000.0

    def one_way(self, a: str, b: str, rng: random.Random | None = None) -> float:
        """Seconds to delay one message from region ``a`` to ``b`` (half the RTT, + jitter)."""
        delay = self.rtt(a, b) / 2
        if delay and self.jitter_ms:
            delay += (rng or random).uniform(0, self.jitter_ms) / 2000.0
        return delay


def parse_rtt_matrix(data: Any) -> RttMatrix:
    """Validate a decoded JSON matrix.

    >>> parse_rtt_matrix({"a": {"b": 10}, "b": {"a": 12}})
    Traceback (most recent call last):
    ...
    router.latency.RttMatrixError: rtt matrix: a-b is 10 ms one way round and 12 ms the other
    """
    if not isinstance(data, dict):
        raise RttMatrixError("rtt matrix: expected a JSON object of region -> {region: ms}")
    jitter = data.get("jitter", 0)
    if not isinstance(jitter, (int, float)) or isinstance(jitter, bool) or jitter < 0:
        raise RttMatrixError("rtt matrix: jitter must be a number of milliseconds >= 0")
    pairs: dict[frozenset[str], float] = {}
    for a, row in data.items():
        if a == "jitter":
            continue
        if not isinstance(row, dict):
            raise RttMatrixError(f"rtt matrix: {a!r} must map to an object of region: ms")
        for b, ms in row.items():
            if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
                raise RttMatrixError(f"rtt matrix: {a}-{b} must be a number of ms >= 0")
            if a == b:
                if ms:
                    raise RttMatrixError(f"rtt matrix: {a}-{a} must be 0")
                continue
            key = frozenset((a, b))
            if key in pairs and pairs[key] != float(ms):
                raise RttMatrixError(
                    f"rtt matrix: {b}-{a} is {pairs[key]:g} ms one way round and {ms:g} ms "
                    "the other"
                )
            pairs[key] = float(ms)
    return RttMatrix(pairs=pairs, jitter_ms=float(jitter))


def load_rtt_matrix(path: str) -> RttMatrix:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise RttMatrixError(f"--rtt-matrix: cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise RttMatrixError(f"--rtt-matrix: {path} is not JSON: {exc}") from None
    return parse_rtt_matrix(data)

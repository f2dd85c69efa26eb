"""Node configuration: a frozen, keyword-only dataclass validated once at start-up."""

from __future__ import annotations

import dataclasses
import re

from router import RttMatrix

_HOSTPORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(?P<port>\d{1,5})$")
_TIER = re.compile(r"^[a-z][a-z0-9_\-]*=[A-Za-z0-9_.\-]+$")


class ConfigError(ValueError):
    """A flag or config value is invalid; the message names it."""


def parse_hostport(value: str, flag: str) -> str:
    """Validate ``HOST:PORT``.

    >>> parse_hostport("127.0.0.1:26257", "--listen")
    '127.0.0.1:26257'
    """
    m = _HOSTPORT.match(value.strip())
    if not m or not 0 < int(m.group("port")) < 65536:
        raise ConfigError(f"{flag}: expected HOST:PORT with a port in 1-65535, got {value!r}")
    return value.strip()


def parse_locality(value: str) -> tuple[tuple[str, str], ...]:
    """Parse ``region=R[,zone=Z,...]``; the first tier must be ``region``.

    >>> parse_locality("region=eu-west,zone=b")
    (('region', 'eu-west'), ('zone', 'b'))
    """
    tiers: list[tuple[str, str]] = []
    for part in value.split(","):
        part = part.strip()
        if not _TIER.match(part):
            raise ConfigError(
                f"--locality: bad tier {part!r}; expected key=value like region=us-east,zone=a"
            )
        key, val = part.split("=", 1)
        if key in {k for k, _ in tiers}:
            raise ConfigError(f"--locality: tier {key!r} given twice")
        tiers.append((key, val))
    if not tiers or tiers[0][0] != "region":
        raise ConfigError("--locality: the first tier must be region=NAME")
    return tuple(tiers)


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeConfig:
    node_id: int
    listen: str
    data_dir: str
    locality: tuple[tuple[str, str], ...] = (("region", "local"),)
    join: tuple[str, ...] = ()
    advertise: str = ""
    cluster_secret: str = ""
    enable_fault_injection: bool = False
    raft_log_max_entries: int = 10_000
    http_addr: str = ""
    rtt_matrix: RttMatrix | None = None
    range_max_bytes: int = 64 * 1024 * 1024
    dead_node_timeout: float = 60.0
    txn_timeout: float = 60.0
    raft_port: int = 0  # 0: any free port on the --listen host

    def __post_init__(self) -> None:
        if not 0 < self.node_id < 2**31:
            raise ConfigError(f"--node-id: must be a positive integer, got {self.node_id}")
        parse_hostport(self.listen, "--listen")
        for j in self.join:
            parse_hostport(j, "--join")
        if self.http_addr:
            parse_hostport(self.http_addr, "--http-addr")
        if self.raft_log_max_entries < 10:
            raise ConfigError("--raft-log-max-entries: must be at least 10")
        if not 0.5 <= self.txn_timeout <= 3600:
            raise ConfigError("--txn-timeout: must be between 0.5 and 3600 seconds")
        if self.dead_node_timeout < 1.0:
            raise ConfigError("--dead-node-timeout: must be at least 1 second")
        if self.range_max_bytes < 64 * 1024:
            raise ConfigError("--range-max-bytes: must be at least 64KiB")
        if not self.data_dir:
            raise ConfigError("--data-dir: required")
        if not 0 <= self.raft_port <= 65535:
            raise ConfigError(f"--raft-port: must be 0..65535, got {self.raft_port}")

    @property
    def address(self) -> str:
        return self.advertise or self.listen

    @property
    def region(self) -> str:
        return self.locality[0][1]


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


def parse_size(text: str, flag: str) -> int:
    """A byte size: ``67108864``, ``64MiB``, ``500kb``, ``1GiB``.

    >>> parse_size("64MiB", "--x"), parse_size("1000", "--x"), parse_size("1.5kb", "--x")
    (67108864, 1000, 1500)
    """
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _SIZE_UNITS:
        raise ConfigError(f"{flag}: not a size: {text!r} (examples: 67108864, 64MiB, 500kb)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])

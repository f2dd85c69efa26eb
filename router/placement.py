"""Placement rules and the allocator's decisions: pure functions, no I/O.

Declared placement (database regions, table locality, survival goal) compiles into a per-range
:class:`Rule` with :func:`rule_for`; :func:`next_action` compares a rule with one range's real
replicas and returns the single most urgent step, with a reason ``SHOW RANGES ... WITH DETAILS``
can print. The executor applies one step, refreshes the range state and asks again.

Liveness has three states: *live* (heard from recently), *suspect* (``live=False`` but not yet
``dead``) and *dead*. Rules count every node that is not dead, so a short blip does not reshape
placement; actions only ever target live nodes; dead replicas are replaced, then removed.

Safety (never lose quorum): no action is proposed while the range has no live majority (Raft
could not commit it anyway), and a live voter is removed or demoted only when the remaining
voters still hold a live majority. Adds come before removals, so a range grows by one voter
and then shrinks back rather than the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SURVIVAL_GOALS = ("zone", "region")
ACTION_KINDS = (
    "none",
    "add_voter",
    "remove_voter",
    "add_non_voter",
    "remove_non_voter",
    "promote_non_voter",
    "demote_voter",
    "transfer_leader",
)

ZONE_VOTERS = 3  # voters of a ZONE-survival range, all in its home region
REGION_VOTERS_HOME = 2  # REGION survival: 2 voters at home ...
REGION_VOTERS_AWAY = 3  # ... and 3 spread over the other regions (5 in all)
MIN_REGIONS_FOR_REGION_SURVIVAL = 3


@dataclass(frozen=True)
class NodeDesc:
    """What placement needs to know about one node."""

    node_id: int
    region: str
    zone: str  # "" if none
    live: bool  # heard from recently
    dead: bool = False  # not heard from for longer than the dead-node timeout (implies not live)


@dataclass(frozen=True)
class Policy:
    """A range's declared placement."""

    home_region: str  # where the range's leader should be (the table's home region)
    regions: tuple[str, ...]  # the database's regions; () = single-region / no geo config
    survival: str = "zone"  # "zone" or "region"
    global_table: bool = False  # LOCALITY GLOBAL


@dataclass(frozen=True)
class Rule:
    """How many voters and non-voters a range wants per region (key ``""`` = anywhere)."""

    voters: dict[str, int]  # region -> number of voters wanted
    non_voters: dict[str, int]  # region -> number of non-voters wanted
    leader_region: str  # "" = anywhere
    note: str = ""  # why the placement is only the closest possible (cluster too small)


@dataclass(frozen=True)
class RangeState:
    """One range's replicas as its descriptor lists them."""

    range_id: int
    voters: tuple[int, ...]
    non_voters: tuple[int, ...]
    leader: int  # 0 = unknown


@dataclass(frozen=True)
class Action:
    """One allocator step: ``kind`` is one of :data:`ACTION_KINDS`."""

    kind: str
    node: int  # the node the action is about (0 for "none")
    reason: str  # human text for SHOW RANGES ... WITH DETAILS


def majority(n: int) -> int:
    """Votes a Raft group of ``n`` voters needs.

    >>> [majority(n) for n in range(1, 6)]
    [1, 2, 2, 3, 3]
    """
    return n // 2 + 1


# --------------------------------------------------------------------------------------- rules


def rule_for(policy: Policy, nodes: Sequence[NodeDesc]) -> Rule:
    """Compile a range's declared placement into a rule, given the cluster's nodes.

    Only nodes that are not dead count. When a region has too few of them, the rule asks for
    the closest placement (the rest of the voters in the other database regions, in database
    order) and says why in ``note``.

    Args:
        policy: the range's home region, the database's regions and survival goal.
        nodes: every node the cluster knows of.

    Returns:
        The rule :func:`next_action` works towards.

    Raises:
        ValueError: the survival goal is neither ``"zone"`` nor ``"region"``.

    >>> nodes = [NodeDesc(i, r, "", True) for i, r in enumerate(["e", "e", "e", "w", "w"], 1)]
    >>> rule_for(Policy("e", ("e", "w")), nodes)
    Rule(voters={'e': 3}, non_voters={'w': 1}, leader_region='e', note='')
    >>> rule_for(Policy("e", ("e", "w"), survival="region"), nodes).note
    'region survival needs 3 regions, the database has 2'
    >>> rule_for(Policy("", ()), nodes[:2])
    Rule(voters={'': 1}, non_voters={}, leader_region='', note='the cluster has 2 nodes for 3 voters; 2 voters would be an even count: 1 voter')
    """  # noqa: E501
    if policy.survival not in SURVIVAL_GOALS:
        raise ValueError(f"survival goal must be 'zone' or 'region', got {policy.survival!r}")
    avail: dict[str, int] = {}
    for n in nodes:
        if not n.dead:
            avail[n.region] = avail.get(n.region, 0) + 1
    notes: list[str] = []

    if not policy.regions:
        have = sum(avail.values())
        count = min(ZONE_VOTERS, have)
        if count < ZONE_VOTERS:
            notes.append(f"the cluster has {_count(have, 'node')} for {ZONE_VOTERS} voters")
        count = _odd(count, notes)
        return Rule({"": count} if count else {}, {}, "", "; ".join(notes))

    # The home region always belongs to the database's regions, first; "" means the primary.
    regions = _dedupe(((policy.home_region,) if policy.home_region else ()) + policy.regions)
    home = regions[0]
    survival = policy.survival
    if survival == "region" and len(regions) < MIN_REGIONS_FOR_REGION_SURVIVAL:
        notes.append(
            f"region survival needs {MIN_REGIONS_FOR_REGION_SURVIVAL} regions, "
            f"the database has {len(regions)}"
        )
        survival = "zone"
    # GLOBAL tables take the same voter layout as the survival goal asks (ZONE: all at home);
    # every region without voters gets a non-voter either way, so every region reads locally.
    wanted: dict[str, int] = {home: ZONE_VOTERS}
    if survival == "region":
        others = regions[1:]
        base, extra = divmod(REGION_VOTERS_AWAY, len(others))
        wanted = {home: REGION_VOTERS_HOME}
        for i, r in enumerate(others):
            wanted[r] = base + (1 if i < extra else 0)
        wanted = {r: c for r, c in wanted.items() if c}

    placed = _place(wanted, regions, avail, notes)
    leader_region = home
    if not placed.get(home):
        leader_region = next((r for r, c in placed.items() if c), "")
        if leader_region:
            notes.append(f"leader goes to {leader_region}")
    non_voters: dict[str, int] = {}
    for r in regions[1:]:
        if placed.get(r):
            continue  # a voter already serves local reads there
        if avail.get(r, 0):
            non_voters[r] = 1
        elif r not in wanted:  # (a region wanted for voters was named already)
            notes.append(f"{r} has no node: no non-voter there")
    voters = {r: c for r, c in placed.items() if c}
    return Rule(voters, non_voters, leader_region if voters else "", "; ".join(notes))


def _place(
    wanted: dict[str, int], regions: Sequence[str], avail: Mapping[str, int], notes: list[str]
) -> dict[str, int]:
    """Voters per region: as wanted where nodes allow, the rest moved to the closest regions."""
    placed = {r: min(c, avail.get(r, 0)) for r, c in wanted.items()}
    order = list(regions)
    if not any(avail.get(r, 0) for r in regions):
        # No database region has a node: a range must live somewhere, so use the others.
        order += sorted(r for r in avail if r not in regions)
    for r, want in wanted.items():
        missing = want - placed[r]
        if not missing:
            continue
        moved: list[str] = []
        for x in order:
            room = avail.get(x, 0) - placed.get(x, 0)
            take = min(room, missing)
            if x == r or take <= 0:
                continue
            placed[x] = placed.get(x, 0) + take
            missing -= take
            moved.append(f"{_count(take, 'voter')} placed in {x}")
        if missing:
            moved.append(f"{_count(missing, 'voter')} could not be placed")
        have = avail.get(r, 0)
        has = f"has {_count(have, 'node')}" if have else "has no node"
        notes.append(f"{r} {has} for {_count(want, 'voter')}: " + ", ".join(moved))
    total = sum(placed.values())
    if total > 1 and total % 2 == 0:
        # Drop one where voters are most plentiful, away from the leader's region if possible.
        order = list(placed)
        home = order[0]
        pool = [r for r in order if placed[r] and r != home] or [home]
        pick = max(pool, key=lambda r: (placed[r], order.index(r)))
        placed[pick] -= 1
        notes.append(
            f"{total} voters would be an even count: {_count(total - 1, 'voter')}, "
            f"one fewer in {pick}"
        )
    return placed


def _odd(count: int, notes: list[str]) -> int:
    if count > 1 and count % 2 == 0:
        notes.append(
            f"{count} voters would be an even count: {_count(count - 1, 'voter')}",
        )
        return count - 1
    return count


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ------------------------------------------------------------------------------------- actions


def next_action(
    rule: Rule,
    state: RangeState,
    nodes: Sequence[NodeDesc],
    *,
    replica_counts: Mapping[int, int],
    leader_counts: Mapping[int, int],
) -> Action:
    """The single most urgent step towards ``rule`` for one range, or ``"none"``.

    Priorities: replace then remove dead voters (and remove dead non-voters); add or promote
    missing voters; remove or demote extra voters (moving the lead off first if needed); add
    missing and remove extra non-voters; bring the leader into ``rule.leader_region``; spread
    leaders over that region's voters.

    Args:
        rule: from :func:`rule_for`.
        state: the range's replicas and its leader (0 if unknown).
        nodes: every node the cluster knows of; a replica on an unknown node counts as dead.
        replica_counts: replicas per node (new replicas go to the least loaded node).
        leader_counts: leaders per node (leadership goes to the least loaded voter).

    Raises:
        ValueError: the state lists one node twice.

    >>> nodes = [NodeDesc(i, "e", z, True) for i, z in [(1, "a"), (2, "b"), (3, "c"), (4, "a")]]
    >>> rule = Rule({"e": 3}, {}, "e")
    >>> state = RangeState(7, (1, 4), (), 1)
    >>> next_action(rule, state, nodes, replica_counts={}, leader_counts={})
    Action(kind='add_voter', node=2, reason='e has 2 of 3 voters: adding a voter on n2 (zone b)')
    >>> state = RangeState(7, (1, 2, 4), (), 1)
    >>> next_action(rule, state, nodes, replica_counts={}, leader_counts={}).reason
    'placement matches: 3 voters in e'
    """
    return _Planner(rule, state, nodes, replica_counts, leader_counts).decide()


class _Planner:
    """One range's view of the cluster while :func:`next_action` decides."""

    def __init__(
        self,
        rule: Rule,
        state: RangeState,
        nodes: Sequence[NodeDesc],
        replica_counts: Mapping[int, int],
        leader_counts: Mapping[int, int],
    ) -> None:
        listed = list(state.voters) + list(state.non_voters)
        twice = sorted({n for n in listed if listed.count(n) > 1})
        if twice:
            raise ValueError(f"range r{state.range_id} lists {_names(twice)} more than once")
        self.rule = rule
        self.state = state
        self.by_id = {n.node_id: n for n in nodes}
        self.replica_counts = replica_counts
        self.leader_counts = leader_counts
        self.anywhere = "" in rule.voters or "" in rule.non_voters
        self.voters = sorted(state.voters)
        self.non_voters = sorted(state.non_voters)
        self.holders = set(listed)
        leader = state.leader
        self.leader = leader if leader in self.voters and self.is_live(leader) else 0
        self.live_voters = sum(1 for v in self.voters if self.is_live(v))
        self.blocked: list[str] = []

    # ---- facts

    def is_live(self, nid: int) -> bool:
        n = self.by_id.get(nid)
        return n is not None and n.live and not n.dead

    def is_dead(self, nid: int) -> bool:
        n = self.by_id.get(nid)
        return n is None or n.dead

    def region(self, nid: int) -> str:
        n = self.by_id.get(nid)
        return n.region if n is not None else ""

    def key(self, nid: int) -> str:
        """The rule key a node counts under: its region, or "" when the rule is "anywhere"."""
        return "" if self.anywhere else self.region(nid)

    def voters_in(self, key: str) -> list[int]:
        return [v for v in self.voters if not self.is_dead(v) and self.key(v) == key]

    def non_voters_in(self, key: str) -> list[int]:
        return [v for v in self.non_voters if not self.is_dead(v) and self.key(v) == key]

    def free_nodes_in(self, key: str) -> list[int]:
        """Live nodes of a region holding no replica of this range."""
        return sorted(
            n.node_id
            for n in self.by_id.values()
            if self.is_live(n.node_id)
            and n.node_id not in self.holders
            and self.key(n.node_id) == key
        )

    def keys_in_use(self, replicas: Sequence[int], wanted: Mapping[str, int]) -> list[str]:
        """Rule keys holding replicas: keys the rule does not want first, then rule order."""
        used = {self.key(v) for v in replicas if not self.is_dead(v)}
        return sorted(used - set(wanted)) + [k for k in wanted if k in used]

    def spread_key(self, nid: int, peers: Sequence[int]) -> tuple[bool, bool, int, int]:
        """Sort key of voter candidates: a new region (when "anywhere"), a new zone, the fewest
        replicas, the lowest id."""
        n = self.by_id[nid]
        others = [self.by_id[p] for p in peers if p != nid and p in self.by_id]
        same_region = self.anywhere and any(o.region == n.region for o in others)
        same_zone = bool(n.zone) and any((o.region, o.zone) == (n.region, n.zone) for o in others)
        return (same_region, same_zone, self.replica_counts.get(nid, 0), nid)

    def shed_key(self, nid: int, peers: Sequence[int]) -> tuple[bool, bool, bool, int, int]:
        """Sort key of voters to remove: not live, sharing a zone, most replicas, highest id."""
        same_region, same_zone, replicas, _ = (
            self.spread_key(nid, peers) if nid in self.by_id else (False, False, 0, nid)
        )
        return (self.is_live(nid), not same_region, not same_zone, -replicas, -nid)

    @staticmethod
    def where(key: str) -> str:
        return key if key else "the range"

    # ---- decision

    def decide(self) -> Action:
        voters = len(self.voters)
        if not voters:
            return Action("none", 0, f"range r{self.state.range_id} has no voters")
        if self.live_voters < majority(voters):
            live = [v for v in self.voters if self.is_live(v)]
            return Action(
                "none",
                0,
                f"no quorum: {self.live_voters} of {voters} voters live"
                + (f" ({_names(live)})" if live else "")
                + "; no membership change can commit until more voters are back",
            )
        for step in (
            self.dead_replicas,
            self.missing_voters,
            self.extra_voters,
            self.non_voter_counts,
            self.leader_home,
            self.spread_leaders,
        ):
            action = step()
            if action is not None:
                return action
        if self.blocked:
            return Action("none", 0, "waiting: " + "; ".join(self.blocked))
        text = "placement matches: " + describe(self.rule)
        quiet = [n for n in sorted(self.holders) if not self.is_live(n) and not self.is_dead(n)]
        if quiet:
            text += f"; not live: {_names(quiet)}"  # counted until they are declared dead
        return Action("none", 0, text)

    def grow_voters(self, key: str) -> tuple[str, int] | None:
        """Promote a live non-voter of the region, else add a voter on its best free node."""
        peers = self.voters_in(key)
        promotable = [n for n in self.non_voters_in(key) if self.is_live(n)]
        if promotable:
            return "promote_non_voter", min(promotable, key=lambda n: self.spread_key(n, peers))
        free = self.free_nodes_in(key)
        if free:
            return "add_voter", min(free, key=lambda n: self.spread_key(n, peers))
        return None

    def grow_text(self, kind: str, node: int) -> str:
        if kind == "promote_non_voter":
            return f"promoting non-voter {_name(node)}"
        zone = self.by_id[node].zone
        return f"adding a voter on {_name(node)}" + (f" (zone {zone})" if zone else "")

    def short_keys(self) -> list[str]:
        return [k for k, want in self.rule.voters.items() if len(self.voters_in(k)) < want]

    def dead_replicas(self) -> Action | None:
        total = sum(self.rule.voters.values())
        for dead in [v for v in self.voters if self.is_dead(v)]:
            d, key = _name(dead), self.key(dead)
            if len(self.voters) > total:
                return Action(
                    "remove_voter",
                    dead,
                    f"{d} is dead and the range has {len(self.voters)} voters "
                    f"for {total} wanted: removing it",
                )
            short = self.short_keys()
            if self.rule.voters.get(key, 0):
                if key not in short:
                    return Action(
                        "remove_voter",
                        dead,
                        f"{d} is dead and {self.where(key)} has its "
                        f"{_count(self.rule.voters[key], 'voter')}: removing it",
                    )
                short = [key] + [k for k in short if k != key]
            for k in short:
                grown = self.grow_voters(k)
                if grown is not None:
                    kind, node = grown
                    if kind == "promote_non_voter":
                        text = f"promoting non-voter {_name(node)} in {self.where(k)}"
                    else:
                        text = "adding a voter" + (f" in {k}" if k else "")
                    return Action(kind, node, f"{d} is dead: {text} to replace it")
            return Action(
                "remove_voter", dead, f"{d} is dead and no live node can replace it: removing it"
            )
        for dead in [n for n in self.non_voters if self.is_dead(n)]:
            return Action(
                "remove_non_voter", dead, f"{_name(dead)} is dead: removing its non-voter"
            )
        return None

    def missing_voters(self) -> Action | None:
        for key, want in self.rule.voters.items():
            have = len(self.voters_in(key))
            if have >= want:
                continue
            grown = self.grow_voters(key)
            if grown is None:
                self.blocked.append(
                    f"{self.where(key)} has {have} of {want} voters and no live node "
                    "without a replica of this range"
                )
                continue
            kind, node = grown
            text = self.grow_text(kind, node)
            return Action(kind, node, f"{self.where(key)} has {have} of {want} voters: {text}")
        return None

    def extra_voters(self) -> Action | None:
        for key in self.keys_in_use(self.voters, self.rule.voters):
            here = self.voters_in(key)
            want = self.rule.voters.get(key, 0)
            if len(here) <= want:
                continue
            where, wants = self.where(key), f"the rule wants {want}"
            # Never the leader, unless it is the only voter here: then it hands over first.
            candidates = [v for v in here if v != self.leader] or here
            victim = min(candidates, key=lambda v: self.shed_key(v, here))
            after = len(self.voters) - 1
            live_after = self.live_voters - (1 if self.is_live(victim) else 0)
            if after < 1 or live_after < majority(after):
                # Checked before any hand-over too, so a blocked removal never moves the lead.
                self.blocked.append(
                    f"removing {_name(victim)} from {where} would leave {live_after} of "
                    f"{_count(after, 'voter')} live, short of a majority"
                )
                continue
            if victim == self.leader:
                target = self.transfer_target(self.leader)
                if target is None:
                    self.blocked.append(
                        f"leader {_name(self.leader)} must leave {where} but no other voter is live"
                    )
                    continue
                return Action(
                    "transfer_leader",
                    target,
                    f"{_name(self.leader)} must leave {where} ({_count(len(here), 'voter')}, "
                    f"{wants}) but is the leader: transfer to {_name(target)}",
                )
            lacks_nv = len(self.non_voters_in(key)) < self.rule.non_voters.get(key, 0)
            if lacks_nv and self.is_live(victim):
                return Action(
                    "demote_voter",
                    victim,
                    f"{where} has {_count(len(here), 'voter')}, {wants} and a non-voter: "
                    f"demoting {_name(victim)}",
                )
            return Action(
                "remove_voter",
                victim,
                f"{where} has {_count(len(here), 'voter')}, {wants}: removing {_name(victim)}",
            )
        return None

    def transfer_target(self, leader: int) -> int | None:
        """Another live voter, in the leader region and a wanted region first, fewest leaders."""
        region = self.rule.leader_region
        live = [v for v in self.voters if v != leader and self.is_live(v)]
        if not live:
            return None
        return min(
            live,
            key=lambda v: (
                bool(region) and self.region(v) != region,
                not self.rule.voters.get(self.key(v), 0),
                self.leader_counts.get(v, 0),
                v,
            ),
        )

    def non_voter_counts(self) -> Action | None:
        for key, want in self.rule.non_voters.items():
            have = len(self.non_voters_in(key))
            if have >= want:
                continue
            free = self.free_nodes_in(key)
            if not free:
                self.blocked.append(
                    f"{self.where(key)} lacks a non-voter and has no free live node"
                )
                continue
            node = min(free, key=lambda n: (self.replica_counts.get(n, 0), n))
            lacks = "no non-voter" if not have else f"{have} of {want} non-voters"
            where = self.where(key)
            return Action(
                "add_non_voter", node, f"{where} has {lacks}: adding one on {_name(node)}"
            )
        for key in self.keys_in_use(self.non_voters, self.rule.non_voters):
            here = self.non_voters_in(key)
            want = self.rule.non_voters.get(key, 0)
            if len(here) <= want:
                continue
            victim = min(here, key=lambda n: (self.is_live(n), -self.replica_counts.get(n, 0), -n))
            wants = f"the rule wants {want}" if want else "the rule wants none"
            return Action(
                "remove_non_voter",
                victim,
                f"{self.where(key)} has {_count(len(here), 'non-voter')}, {wants}: "
                f"removing {_name(victim)}",
            )
        return None

    def leader_home(self) -> Action | None:
        region = self.rule.leader_region
        if not self.leader or not region or self.region(self.leader) == region:
            return None
        home = [v for v in self.voters if self.is_live(v) and self.region(v) == region]
        leader = _name(self.leader)
        if not home:
            self.blocked.append(f"leader {leader} is outside {region}, which has no live voter")
            return None
        target = min(home, key=lambda v: (self.leader_counts.get(v, 0), v))
        return Action(
            "transfer_leader",
            target,
            f"leader {leader} is in {self.region(self.leader)}, outside home region {region}: "
            f"transfer to {_name(target)}",
        )

    def spread_leaders(self) -> Action | None:
        region = self.rule.leader_region
        if not self.leader or not region or self.region(self.leader) != region:
            return None
        peers = [
            v
            for v in self.voters
            if v != self.leader and self.is_live(v) and self.region(v) == region
        ]
        if not peers:
            return None
        target = min(peers, key=lambda v: (self.leader_counts.get(v, 0), v))
        mine, theirs = self.leader_counts.get(self.leader, 0), self.leader_counts.get(target, 0)
        if mine - theirs < 2:
            return None
        return Action(
            "transfer_leader",
            target,
            f"spreading leaders in {region}: {_name(self.leader)} leads {mine}, "
            f"{_name(target)} leads {theirs}",
        )


def describe(rule: Rule) -> str:
    """A rule in words, as ``SHOW RANGES ... WITH DETAILS`` prints it.

    >>> describe(Rule({"us-east": 3}, {"us-west": 1, "eu-west": 1}, "us-east"))
    '3 voters in us-east, non-voters in us-west, eu-west'
    >>> describe(Rule({"a": 2, "b": 2, "c": 1}, {}, "a", note="x"))
    '5 voters: 2 in a, 2 in b, 1 in c (closest possible: x)'
    """
    voters = [(r, c) for r, c in rule.voters.items() if c]
    total = sum(c for _, c in voters)
    if not voters:
        text = "no voters"
    elif len(voters) == 1:
        region, count = voters[0]
        text = _count(count, "voter") + (f" in {region}" if region else "")
    else:
        text = f"{_count(total, 'voter')}: " + ", ".join(f"{c} in {r}" for r, c in voters)
    non_voters = [r if c == 1 else f"{r} ({c})" for r, c in rule.non_voters.items() if c]
    if non_voters:
        text += ", non-voters in " + ", ".join(non_voters)
    if rule.note:
        text += f" (closest possible: {rule.note})"
    return text


def _name(node: int) -> str:
    return f"n{node}"


def _names(nodes: Sequence[int]) -> str:
    return ", ".join(_name(n) for n in nodes)

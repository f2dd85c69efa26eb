"""router.placement: rules from declared placement, and the allocator's one-step decisions.

The simulation applies each action the way the executor would (one membership change or one
leadership transfer at a time, a fresh election when the leader is gone) and checks the safety
rules on every step: a range that had a live majority keeps one, no node ever holds two replicas
of one range, and additions only ever target live nodes holding no replica.
"""

from __future__ import annotations

import doctest
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import router.placement
from router.placement import (
    ACTION_KINDS,
    SURVIVAL_GOALS,
    Action,
    NodeDesc,
    Policy,
    RangeState,
    Rule,
    majority,
    next_action,
    rule_for,
)

REGIONS = ("us-east", "us-west", "eu-west")


def cluster(layout: Mapping[str, int], zones: str = "abc") -> list[NodeDesc]:
    """Live nodes numbered from 1, region by region, zones cycling through ``zones``."""
    nodes: list[NodeDesc] = []
    for region, count in layout.items():
        for i in range(count):
            zone = zones[i % len(zones)] if zones else ""
            nodes.append(NodeDesc(len(nodes) + 1, region, zone, live=True))
    return nodes


# n1-n3 us-east, n4-n6 us-west, n7-n9 eu-west; zones a, b, c in each region.
NINE = cluster({"us-east": 3, "us-west": 3, "eu-west": 3})


def with_status(
    nodes: Sequence[NodeDesc], *, dead: Sequence[int] = (), suspect: Sequence[int] = ()
) -> list[NodeDesc]:
    """The same nodes with some marked dead or suspect (not live, not yet dead)."""
    out: list[NodeDesc] = []
    for n in nodes:
        if n.node_id in dead:
            n = replace(n, live=False, dead=True)
        elif n.node_id in suspect:
            n = replace(n, live=False, dead=False)
        out.append(n)
    return out


# ------------------------------------------------------------------------------ rule_for


def test_zone_survival_keeps_voters_home_and_a_non_voter_in_every_other_region() -> None:
    rule = rule_for(Policy("us-east", REGIONS), NINE)
    assert rule == Rule({"us-east": 3}, {"us-west": 1, "eu-west": 1}, "us-east", "")


def test_region_survival_spreads_five_voters_extra_to_first_region_after_home() -> None:
    rule = rule_for(Policy("us-east", REGIONS, survival="region"), NINE)
    assert rule == Rule({"us-east": 2, "us-west": 2, "eu-west": 1}, {}, "us-east", "")
    rule = rule_for(Policy("eu-west", REGIONS, survival="region"), NINE)
    assert rule == Rule({"eu-west": 2, "us-east": 2, "us-west": 1}, {}, "eu-west", "")


def test_region_survival_over_four_and_five_regions() -> None:
    four = ("a", "b", "c", "d")
    nodes = cluster({r: 3 for r in four + ("e",)})
    assert rule_for(Policy("a", four, survival="region"), nodes).voters == {
        "a": 2,
        "b": 1,
        "c": 1,
        "d": 1,
    }
    # With five regions one holds no voter: it gets a non-voter so it still reads locally.
    rule = rule_for(Policy("a", four + ("e",), survival="region"), nodes)
    assert rule.voters == {"a": 2, "b": 1, "c": 1, "d": 1}
    assert rule.non_voters == {"e": 1}
    assert rule.note == ""


def test_region_survival_with_two_regions_falls_back_to_zone_survival() -> None:
    rule = rule_for(Policy("us-east", ("us-east", "us-west"), survival="region"), NINE)
    assert rule.voters == {"us-east": 3}
    assert rule.non_voters == {"us-west": 1}
    assert rule.note == "region survival needs 3 regions, the database has 2"


def test_global_table_reads_locally_everywhere() -> None:
    rule = rule_for(Policy("us-east", REGIONS, global_table=True), NINE)
    assert rule == Rule({"us-east": 3}, {"us-west": 1, "eu-west": 1}, "us-east", "")
    rule = rule_for(Policy("us-west", REGIONS, global_table=True), NINE)
    assert rule == Rule({"us-west": 3}, {"us-east": 1, "eu-west": 1}, "us-west", "")


def test_global_table_keeps_its_region_survival_goal() -> None:
    rule = rule_for(Policy("us-east", REGIONS, survival="region", global_table=True), NINE)
    assert rule.voters == {"us-east": 2, "us-west": 2, "eu-west": 1}
    assert rule.non_voters == {}


def test_no_regions_means_three_voters_anywhere() -> None:
    assert rule_for(Policy("", ()), NINE) == Rule({"": 3}, {}, "", "")


@pytest.mark.parametrize(
    ("count", "voters", "note"),
    [
        (1, 1, "the cluster has 1 node for 3 voters"),
        (2, 1, "the cluster has 2 nodes for 3 voters; 2 voters would be an even count: 1 voter"),
        (4, 3, ""),
    ],
)
def test_no_regions_small_cluster(count: int, voters: int, note: str) -> None:
    rule = rule_for(Policy("", ()), cluster({"local": count}))
    assert rule == Rule({"": voters}, {}, "", note)


def test_home_region_with_one_node_places_the_rest_in_the_next_region() -> None:
    nodes = cluster({"us-east": 1, "us-west": 3, "eu-west": 3})
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-east": 1, "us-west": 2}
    assert rule.non_voters == {"eu-west": 1}  # us-west already reads locally from its voters
    assert rule.leader_region == "us-east"
    assert rule.note == "us-east has 1 node for 3 voters: 2 voters placed in us-west"


def test_region_without_nodes_gets_no_non_voter() -> None:
    nodes = cluster({"us-east": 3, "us-west": 3})
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-east": 3}
    assert rule.non_voters == {"us-west": 1}
    assert rule.note == "eu-west has no node: no non-voter there"


def test_home_region_without_nodes_moves_voters_and_leader() -> None:
    nodes = cluster({"us-west": 3, "eu-west": 3})
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-west": 3}
    assert rule.non_voters == {"eu-west": 1}
    assert rule.leader_region == "us-west"
    assert rule.note == (
        "us-east has no node for 3 voters: 3 voters placed in us-west; leader goes to us-west"
    )


def test_two_nodes_in_all_give_one_voter_and_a_non_voter() -> None:
    nodes = cluster({"us-east": 1, "us-west": 1})
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-east": 1}
    assert rule.non_voters == {"us-west": 1}
    assert rule.note == (
        "us-east has 1 node for 3 voters: 1 voter placed in us-west, 1 voter could not be placed; "
        "2 voters would be an even count: 1 voter, one fewer in us-west; "
        "eu-west has no node: no non-voter there"
    )


def test_region_survival_missing_region_spills_in_database_order() -> None:
    nodes = cluster({"us-east": 3, "us-west": 3})
    rule = rule_for(Policy("us-east", REGIONS, survival="region"), nodes)
    assert rule.voters == {"us-east": 3, "us-west": 2}
    assert rule.non_voters == {}
    assert rule.note == "eu-west has no node for 1 voter: 1 voter placed in us-east"


def test_dead_nodes_do_not_count_but_suspect_ones_do() -> None:
    policy = Policy("us-east", REGIONS)
    rule = rule_for(policy, with_status(NINE, dead=[1]))
    assert rule.voters == {"us-east": 2, "us-west": 1}
    assert rule.note == "us-east has 2 nodes for 3 voters: 1 voter placed in us-west"
    assert rule_for(policy, with_status(NINE, suspect=[1])) == rule_for(policy, NINE)


def test_total_voters_never_exceed_non_dead_nodes() -> None:
    nodes = with_status(cluster({"us-east": 2, "us-west": 1, "eu-west": 1}), dead=[2, 3])
    rule = rule_for(Policy("us-east", REGIONS, survival="region"), nodes)
    assert sum(rule.voters.values()) == 1
    assert rule.voters == {"us-east": 1}
    assert rule.non_voters == {"eu-west": 1}


def test_unknown_survival_goal_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="survival goal must be 'zone' or 'region', got 'rack'"):
        rule_for(Policy("us-east", REGIONS, survival="rack"), NINE)


# ---------------------------------------------------------------------------- simulation


def node_map(nodes: Sequence[NodeDesc]) -> dict[int, NodeDesc]:
    return {n.node_id: n for n in nodes}


def is_live(nodes: Mapping[int, NodeDesc], nid: int) -> bool:
    n = nodes.get(nid)
    return n is not None and n.live and not n.dead


def has_quorum(state: RangeState, nodes: Mapping[int, NodeDesc]) -> bool:
    live = sum(1 for v in state.voters if is_live(nodes, v))
    return bool(state.voters) and live >= majority(len(state.voters))


def elect(state: RangeState, nodes: Mapping[int, NodeDesc]) -> RangeState:
    """Raft elects a new leader (the lowest live voter here) when the old one is gone."""
    if state.leader in state.voters and is_live(nodes, state.leader):
        return state
    if not has_quorum(state, nodes):
        return replace(state, leader=0)
    return replace(state, leader=min(v for v in state.voters if is_live(nodes, v)))


@dataclass
class Run:
    final: RangeState
    actions: list[Action] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]


def apply(state: RangeState, action: Action, nodes: Mapping[int, NodeDesc]) -> RangeState:
    """Apply one action after checking it is one the executor may safely carry out."""
    voters, non_voters, node = list(state.voters), list(state.non_voters), action.node
    held = set(voters) | set(non_voters)
    if action.kind in ("add_voter", "add_non_voter"):
        assert is_live(nodes, node), f"{action} targets a node that is not live"
        assert node not in held, f"{action} targets a node already holding a replica"
        (voters if action.kind == "add_voter" else non_voters).append(node)
    elif action.kind == "promote_non_voter":
        assert node in non_voters and is_live(nodes, node), action
        non_voters.remove(node)
        voters.append(node)
    elif action.kind in ("remove_voter", "demote_voter"):
        assert node in voters, action
        assert node != state.leader or not is_live(nodes, node), f"{action} removes the leader"
        voters.remove(node)
        if action.kind == "demote_voter":
            assert is_live(nodes, node), action
            non_voters.append(node)
    elif action.kind == "remove_non_voter":
        assert node in non_voters, action
        non_voters.remove(node)
    elif action.kind == "transfer_leader":
        assert node in voters and is_live(nodes, node) and node != state.leader, action
        return replace(state, leader=node)
    else:  # pragma: no cover
        raise AssertionError(f"unexpected action {action}")
    return replace(state, voters=tuple(voters), non_voters=tuple(non_voters))


def simulate(
    rule: Rule,
    state: RangeState,
    nodes: Sequence[NodeDesc],
    *,
    replica_counts: Mapping[int, int] | None = None,
    leader_counts: Mapping[int, int] | None = None,
    max_steps: int = 20,
) -> Run:
    """Run next_action to a fixed point, checking the safety rules after every step."""
    by_id = node_map(nodes)
    replicas = dict(replica_counts or {})
    leaders = dict(leader_counts or {})
    state = elect(state, by_id)
    run = Run(state)
    for _ in range(max_steps + 1):
        action = next_action(rule, state, nodes, replica_counts=replicas, leader_counts=leaders)
        assert action.kind in ACTION_KINDS
        assert action.reason, action
        if action.kind == "none":
            assert action.node == 0
            run.actions.append(action)
            run.final = state
            return run
        run.actions.append(action)
        before = has_quorum(state, by_id)
        after = elect(apply(state, action, by_id), by_id)
        if before:
            assert has_quorum(after, by_id), f"{action} lost quorum: {state} -> {after}"
        listed = after.voters + after.non_voters
        assert len(listed) == len(set(listed)), f"two replicas on one node: {after}"
        assert after.voters, f"{action} left no voter"
        if action.kind in ("add_voter", "add_non_voter"):
            replicas[action.node] = replicas.get(action.node, 0) + 1
        elif action.kind in ("remove_voter", "remove_non_voter"):
            replicas[action.node] = replicas.get(action.node, 1) - 1
        if after.leader != state.leader:
            if state.leader:
                leaders[state.leader] = leaders.get(state.leader, 1) - 1
            if after.leader:
                leaders[after.leader] = leaders.get(after.leader, 0) + 1
        state = after
    raise AssertionError(f"no fixed point after {max_steps} steps: {run.kinds}")


def placement_matches(rule: Rule, state: RangeState, nodes: Sequence[NodeDesc]) -> bool:
    by_id = node_map(nodes)
    anywhere = "" in rule.voters or "" in rule.non_voters

    def key(nid: int) -> str:
        return "" if anywhere else by_id[nid].region

    def counts(replicas: Sequence[int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in replicas:
            out[key(r)] = out.get(key(r), 0) + 1
        return out

    if any(r not in by_id or by_id[r].dead for r in state.voters + state.non_voters):
        return False
    if counts(state.voters) != {k: c for k, c in rule.voters.items() if c}:
        return False
    if counts(state.non_voters) != {k: c for k, c in rule.non_voters.items() if c}:
        return False
    if rule.leader_region:
        return state.leader in by_id and by_id[state.leader].region == rule.leader_region
    return state.leader in state.voters


def zones_of(state: RangeState, nodes: Sequence[NodeDesc], region: str) -> list[str]:
    by_id = node_map(nodes)
    return sorted(by_id[v].zone for v in state.voters if by_id[v].region == region)


ZONE_RULE = rule_for(Policy("us-east", REGIONS), NINE)
REGION_RULE = rule_for(Policy("us-east", REGIONS, survival="region"), NINE)


# ---------------------------------------------------------------------------- next_action


def test_all_replicas_in_the_wrong_region_move_home() -> None:
    start = RangeState(1, voters=(4, 5, 6), non_voters=(), leader=4)
    run = simulate(ZONE_RULE, start, NINE)
    assert placement_matches(ZONE_RULE, run.final, NINE)
    assert zones_of(run.final, NINE, "us-east") == ["a", "b", "c"]
    assert run.actions[0] == Action(
        "add_voter", 1, "us-east has 0 of 3 voters: adding a voter on n1 (zone a)"
    )
    assert run.actions[-1].reason == (
        "placement matches: 3 voters in us-east, non-voters in us-west, eu-west"
    )
    assert "transfer_leader" in run.kinds and "demote_voter" in run.kinds


def test_leader_outside_home_region_is_transferred_home() -> None:
    start = RangeState(2, voters=(1, 2, 3), non_voters=(4, 7), leader=1)
    by_id = node_map(NINE)
    assert next_action(ZONE_RULE, start, NINE, replica_counts={}, leader_counts={}).kind == "none"
    start = RangeState(2, voters=(1, 2, 4, 5, 7), non_voters=(), leader=7)
    action = next_action(REGION_RULE, start, NINE, replica_counts={}, leader_counts={})
    assert action == Action(
        "transfer_leader", 1, "leader n7 is in eu-west, outside home region us-east: transfer to n1"
    )
    # The target is the home voter leading the fewest ranges.
    start = RangeState(2, voters=(1, 2, 4, 5, 7), non_voters=(), leader=4)
    action = next_action(REGION_RULE, start, NINE, replica_counts={}, leader_counts={1: 9, 2: 4})
    assert (action.kind, action.node) == ("transfer_leader", 2)
    run = simulate(REGION_RULE, start, NINE, leader_counts={1: 9, 2: 4})
    assert placement_matches(REGION_RULE, run.final, NINE)
    assert by_id[run.final.leader].region == "us-east"


def test_dead_voter_is_replaced_before_it_is_removed() -> None:
    nodes = with_status(cluster({"us-east": 4, "us-west": 3, "eu-west": 3}), dead=[2])
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-east": 3}
    start = RangeState(3, voters=(1, 2, 3), non_voters=(5, 8), leader=1)
    run = simulate(rule, start, nodes)
    assert run.actions[0] == Action(
        "add_voter", 4, "n2 is dead: adding a voter in us-east to replace it"
    )
    assert run.actions[1] == Action(
        "remove_voter", 2, "n2 is dead and the range has 4 voters for 3 wanted: removing it"
    )
    assert run.kinds == ["add_voter", "remove_voter", "none"]
    assert placement_matches(rule, run.final, nodes)


def test_dead_voter_replaced_in_another_region_when_its_region_is_out_of_nodes() -> None:
    nodes = with_status(NINE, dead=[2])
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    assert rule.voters == {"us-east": 2, "us-west": 1}
    start = RangeState(4, voters=(1, 2, 3), non_voters=(4, 7), leader=1)
    run = simulate(rule, start, nodes)
    # us-east still has the 2 voters the rule wants there: the dead one just goes; then the
    # us-west non-voter, which already holds the data, becomes the third voter.
    assert run.actions[0] == Action(
        "remove_voter", 2, "n2 is dead and us-east has its 2 voters: removing it"
    )
    assert run.actions[1] == Action(
        "promote_non_voter", 4, "us-west has 0 of 1 voters: promoting non-voter n4"
    )
    assert placement_matches(rule, run.final, nodes)


def test_dead_voter_without_replacement_is_removed() -> None:
    nodes = with_status(cluster({"us-east": 3}), dead=[3])
    rule = Rule({"us-east": 3}, {}, "us-east")  # a stale rule: no node can take n3's place
    start = RangeState(5, voters=(1, 2, 3), non_voters=(), leader=1)
    action = next_action(rule, start, nodes, replica_counts={}, leader_counts={})
    assert action == Action(
        "remove_voter", 3, "n3 is dead and no live node can replace it: removing it"
    )


def test_dead_non_voter_is_removed_then_replaced() -> None:
    nodes = with_status(NINE, dead=[7])
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    start = RangeState(6, voters=(1, 2, 3), non_voters=(4, 7), leader=1)
    run = simulate(rule, start, nodes)
    assert run.actions[0] == Action("remove_non_voter", 7, "n7 is dead: removing its non-voter")
    assert run.actions[1] == Action(
        "add_non_voter", 8, "eu-west has no non-voter: adding one on n8"
    )
    assert placement_matches(rule, run.final, nodes)


def test_extra_voter_that_is_the_leader_hands_over_then_is_demoted() -> None:
    start = RangeState(7, voters=(1, 2, 3, 4), non_voters=(7,), leader=4)
    run = simulate(ZONE_RULE, start, NINE, leader_counts={1: 5, 2: 1, 3: 3})
    assert run.actions[0] == Action(
        "transfer_leader",
        2,
        "n4 must leave us-west (1 voter, the rule wants 0) but is the leader: transfer to n2",
    )
    assert run.actions[1] == Action(
        "demote_voter",
        4,
        "us-west has 1 voter, the rule wants 0 and a non-voter: demoting n4",
    )
    assert run.kinds == ["transfer_leader", "demote_voter", "none"]
    assert placement_matches(ZONE_RULE, run.final, NINE)


def test_extra_voter_in_home_region_sheds_a_duplicate_zone_first() -> None:
    nodes = cluster({"us-east": 4, "us-west": 3, "eu-west": 3})  # n1 and n4 share zone a
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    start = RangeState(8, voters=(1, 2, 3, 4), non_voters=(5, 8), leader=1)
    action = next_action(rule, start, nodes, replica_counts={}, leader_counts={})
    assert action == Action(
        "remove_voter", 4, "us-east has 4 voters, the rule wants 3: removing n4"
    )


def test_missing_voter_prefers_a_new_zone_then_fewest_replicas() -> None:
    nodes = [
        NodeDesc(1, "us-east", "a", True),
        NodeDesc(2, "us-east", "a", True),
        NodeDesc(3, "us-east", "b", True),
        NodeDesc(4, "us-east", "c", True),
    ]
    rule = Rule({"us-east": 3}, {}, "us-east")
    start = RangeState(9, voters=(1,), non_voters=(), leader=1)
    action = next_action(rule, start, nodes, replica_counts={3: 50, 4: 40}, leader_counts={})
    assert action == Action(
        "add_voter", 4, "us-east has 1 of 3 voters: adding a voter on n4 (zone c)"
    )
    run = simulate(rule, start, nodes, replica_counts={3: 50, 4: 40})
    assert zones_of(run.final, nodes, "us-east") == ["a", "b", "c"]


def test_missing_voter_is_a_promoted_non_voter_when_one_is_there() -> None:
    start = RangeState(10, voters=(1, 2, 3, 7, 8), non_voters=(4,), leader=1)
    rule = rule_for(Policy("us-east", REGIONS, survival="region"), NINE)
    action = next_action(rule, start, NINE, replica_counts={}, leader_counts={})
    assert action == Action(
        "promote_non_voter", 4, "us-west has 0 of 2 voters: promoting non-voter n4"
    )
    run = simulate(rule, start, NINE)
    assert placement_matches(rule, run.final, NINE)


def test_extra_non_voter_is_removed() -> None:
    start = RangeState(11, voters=(1, 2, 3), non_voters=(4, 5, 7), leader=1)
    action = next_action(ZONE_RULE, start, NINE, replica_counts={4: 3, 5: 8}, leader_counts={})
    assert action == Action(
        "remove_non_voter", 5, "us-west has 2 non-voters, the rule wants 1: removing n5"
    )


def test_leaders_spread_over_home_voters() -> None:
    start = RangeState(12, voters=(1, 2, 3), non_voters=(4, 7), leader=1)
    action = next_action(
        ZONE_RULE, start, NINE, replica_counts={}, leader_counts={1: 10, 2: 3, 3: 5}
    )
    assert action == Action(
        "transfer_leader", 2, "spreading leaders in us-east: n1 leads 10, n2 leads 3"
    )
    calm = next_action(ZONE_RULE, start, NINE, replica_counts={}, leader_counts={1: 4, 2: 3, 3: 3})
    assert calm.kind == "none"
    run = simulate(ZONE_RULE, start, NINE, leader_counts={1: 10, 2: 3, 3: 5})
    assert run.kinds == ["transfer_leader", "none"]


def test_no_action_without_a_live_majority() -> None:
    nodes = with_status(NINE, dead=[2], suspect=[3])
    start = RangeState(13, voters=(1, 2, 3), non_voters=(), leader=1)
    action = next_action(ZONE_RULE, start, nodes, replica_counts={}, leader_counts={})
    assert action == Action(
        "none",
        0,
        "no quorum: 1 of 3 voters live (n1); no membership change can commit until more voters "
        "are back",
    )


def test_live_voter_is_not_removed_while_it_would_cost_the_majority() -> None:
    nodes = with_status(NINE, suspect=[2, 3])
    start = RangeState(14, voters=(1, 2, 3, 4, 5), non_voters=(7,), leader=1)
    run = simulate(ZONE_RULE, start, nodes)
    # Less urgent work goes on (us-west gets its non-voter) while the removal waits.
    assert run.kinds == ["add_non_voter", "none"]
    assert run.actions[-1].reason == (
        "waiting: removing n5 from us-west would leave 2 of 4 voters live, short of a majority"
    )


def test_suspect_extra_voter_is_removed_before_live_ones() -> None:
    nodes = with_status(NINE, suspect=[5])
    start = RangeState(15, voters=(1, 2, 3, 4, 5), non_voters=(7,), leader=1)
    run = simulate(ZONE_RULE, start, nodes)
    assert run.actions[0] == Action(
        "remove_voter", 5, "us-west has 2 voters, the rule wants 0: removing n5"
    )
    assert placement_matches(ZONE_RULE, run.final, nodes)


def test_placement_matches_but_names_replicas_not_live() -> None:
    nodes = with_status(NINE, suspect=[3, 7])
    start = RangeState(20, voters=(1, 2, 3), non_voters=(4, 7), leader=1)
    action = next_action(ZONE_RULE, start, nodes, replica_counts={}, leader_counts={})
    assert action == Action(
        "none",
        0,
        "placement matches: 3 voters in us-east, non-voters in us-west, eu-west; not live: n3, n7",
    )


def test_anywhere_rule_spreads_over_regions() -> None:
    rule = rule_for(Policy("", ()), NINE)
    start = RangeState(16, voters=(1,), non_voters=(), leader=1)
    run = simulate(rule, start, NINE)
    by_id = node_map(NINE)
    assert run.actions[0].reason == "the range has 1 of 3 voters: adding a voter on n4 (zone a)"
    assert sorted(by_id[v].region for v in run.final.voters) == sorted(REGIONS)
    assert run.actions[-1].reason == "placement matches: 3 voters"


def test_replica_on_an_unknown_node_counts_as_dead() -> None:
    start = RangeState(17, voters=(1, 2, 99), non_voters=(4, 7), leader=1)
    action = next_action(ZONE_RULE, start, NINE, replica_counts={}, leader_counts={})
    assert action == Action("add_voter", 3, "n99 is dead: adding a voter in us-east to replace it")


def test_state_listing_a_node_twice_is_a_clear_error() -> None:
    start = RangeState(18, voters=(1, 2, 3), non_voters=(3,), leader=1)
    with pytest.raises(ValueError, match="range r18 lists n3 more than once"):
        next_action(ZONE_RULE, start, NINE, replica_counts={}, leader_counts={})


def test_small_cluster_placements_are_reached() -> None:
    nodes = cluster({"us-east": 1, "us-west": 3, "eu-west": 3})
    rule = rule_for(Policy("us-east", REGIONS), nodes)
    run = simulate(rule, RangeState(19, voters=(5, 6, 7), non_voters=(), leader=7), nodes)
    assert placement_matches(rule, run.final, nodes)
    assert run.final.leader == 1
    assert run.actions[-1].reason == (
        "placement matches: 3 voters: 1 in us-east, 2 in us-west, non-voters in eu-west "
        "(closest possible: us-east has 1 node for 3 voters: 2 voters placed in us-west)"
    )


def test_doctests() -> None:
    assert doctest.testmod(router.placement).failed == 0


# ------------------------------------------------------------------------------- property


@dataclass(frozen=True)
class Scenario:
    nodes: list[NodeDesc]
    policy: Policy
    state: RangeState
    replica_counts: dict[int, int]
    leader_counts: dict[int, int]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    region_names = [f"r{i}" for i in range(draw(st.integers(1, 4)))]
    nodes: list[NodeDesc] = []
    for region in region_names:
        for _ in range(draw(st.integers(1, 4))):
            zone = draw(st.sampled_from(["", "a", "b", "c"]))
            status = draw(st.sampled_from(["live", "live", "live", "suspect", "dead"]))
            nodes.append(NodeDesc(len(nodes) + 1, region, zone, status == "live", status == "dead"))
    db_regions: tuple[str, ...] = ()
    if draw(st.booleans()):
        order = draw(st.permutations(region_names))
        db_regions = tuple(order[: draw(st.integers(1, len(order)))])
    home = draw(st.sampled_from(db_regions)) if db_regions else ""
    policy = Policy(home, db_regions, draw(st.sampled_from(SURVIVAL_GOALS)), draw(st.booleans()))
    ids = [n.node_id for n in nodes] + [99]  # n99: a node the cluster no longer knows
    held = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=8, unique=True))
    n_voters = draw(st.integers(1, min(5, len(held))))
    voters, non_voters = tuple(held[:n_voters]), tuple(held[n_voters : n_voters + 3])
    leader = draw(st.sampled_from((0,) + voters))
    counts = st.dictionaries(st.sampled_from(ids), st.integers(0, 20), max_size=len(ids))
    return Scenario(
        nodes,
        policy,
        RangeState(99, voters, non_voters, leader),
        draw(counts),
        draw(counts),
    )


@settings(deadline=None, max_examples=400)
@given(scenarios())
def test_random_layouts_converge_safely(s: Scenario) -> None:
    rule = rule_for(s.policy, s.nodes)
    assert sum(rule.voters.values()) <= sum(1 for n in s.nodes if not n.dead)
    total = sum(rule.voters.values())
    assert total <= 1 or total % 2 == 1
    run = simulate(
        rule,
        s.state,
        s.nodes,
        replica_counts=s.replica_counts,
        leader_counts=s.leader_counts,
        max_steps=30,
    )
    by_id = node_map(s.nodes)
    final = run.actions[-1]
    if not has_quorum(s.state, by_id):
        assert run.kinds == ["none"] and final.reason.startswith("no quorum")
        return
    if final.reason.startswith("placement matches"):
        assert placement_matches(rule, run.final, s.nodes), (rule, run)
    if all(n.live or n.dead for n in s.nodes) and total:
        # Without suspect nodes every rule is reachable.
        assert final.reason.startswith("placement matches"), (rule, run)

"""Fault injection: crashes and partitions on the network, the fault plan, the [faults] table."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from simpy import Environment

from sim.host.faults import NEVER, Cut, Outage, crash_window, fault_counts, plan_faults
from sim.net.network import SimNetwork, Topology
from sim.runs.runner import build
from sim.scenario import ScenarioError, expand, parse_scenario
from tests.sim.net.probe import Probe

LAT = 0.1


def _line(n: int) -> Topology:
    """0 - 1 - ... - n-1, every link ``LAT`` seconds."""
    links = [[(v, LAT) for v in (u - 1, u + 1) if 0 <= v < n] for u in range(n)]
    return Topology(tuple(tuple(nbrs) for nbrs in links))


def _square() -> Topology:
    """0 - 1 - 3 and 0 - 2 - 3."""
    return Topology((((1, LAT), (2, LAT)), ((0, LAT), (3, LAT)), ((0, LAT), (3, LAT)),
                     ((1, LAT), (2, LAT))))  # fmt: skip


def _net(topology: Topology) -> tuple[Environment, SimNetwork]:
    env = Environment()
    return env, SimNetwork(env, topology, loss=0.0, rng=random.Random(1))


def _reached(env: Environment, net: SimNetwork, origin: int) -> dict[int, float]:
    seen: dict[int, float] = {}
    net.flood(origin, Probe("m", 10), to=lambda node, *_: seen.setdefault(node, env.now))
    env.run(until=env.now + 10.0)
    return seen


def test_a_crashed_node_neither_receives_nor_relays_until_it_restarts() -> None:
    env, net = _net(_line(4))
    net.crash(1)
    assert _reached(env, net, 0) == {0: 0.0}
    net.close()
    assert (net.stats.sent["m"], net.stats.delivered["m"], net.stats.lost["m"]) == (1, 0, 1)
    assert _reached(env, net, 1) == {}  # and sends nothing
    net.restart(1)
    assert sorted(_reached(env, net, 0)) == [0, 1, 2, 3]


def test_a_node_that_crashes_while_a_message_travels_loses_it() -> None:
    env, net = _net(_line(4))
    env.timeout(0.15).callbacks.append(lambda _e: net.crash(2))  # 1 -> 2 lands at 0.2
    seen = _reached(env, net, 0)
    assert sorted(seen) == [0, 1]  # 2 was down when the message arrived at 0.2: 3 never hears
    assert seen[1] == pytest.approx(LAT)
    net.close()
    assert net.stats.lost["m"] == 1


def test_a_partition_cuts_both_ways_and_heals() -> None:
    env, net = _net(_line(4))
    cut = frozenset({2, 3})
    net.cut(cut)
    assert sorted(_reached(env, net, 0)) == [0, 1]
    assert sorted(_reached(env, net, 3)) == [2, 3]
    net.heal(cut)
    assert sorted(_reached(env, net, 0)) == [0, 1, 2, 3]
    net.close()
    assert net.stats.lost["m"] == 2  # one message on the cut link, each way


def test_point_to_point_sends_respect_crashes_and_cuts() -> None:
    env, net = _net(_line(3))
    got: list[str] = []
    net.crash(0)
    net.send(0, 1, Probe("s", 1), to=lambda *_: got.append("from crashed"))
    assert "s" not in net.stats.sent  # a crashed node sends nothing, counted nowhere
    net.restart(0)
    net.cut(frozenset({2}))
    net.send(1, 2, Probe("s", 1), to=lambda *_: got.append("across the cut"))
    net.heal(frozenset({2}))
    net.send(0, 1, Probe("s", 1), to=lambda *_: got.append("to a node that crashes"))
    env.timeout(LAT / 2).callbacks.append(lambda _e: net.crash(1))
    env.run(until=1.0)
    assert got == []
    assert (net.stats.sent["s"], net.stats.delivered["s"], net.stats.lost["s"]) == (2, 0, 2)


def test_fetch_paths_route_around_crashed_nodes() -> None:
    _, net = _net(_square())
    assert net.path_to(0, lambda n: n == 3) in ([0, 1, 3], [0, 2, 3])
    net.crash(1)
    assert net.path_to(0, lambda n: n == 3) == [0, 2, 3]
    net.crash(3)
    assert net.path_to(0, lambda n: n == 3) == []  # the only holder is down


def test_a_sequencer_needs_most_running_peers_on_its_side() -> None:
    _, net = _net(_line(5))
    peers = [0, 1, 2, 3, 4]
    assert all(net.quorate(p, peers) for p in peers)
    net.cut(frozenset({3, 4}))
    assert [net.quorate(p, peers) for p in peers] == [True, True, True, False, False]
    net.crash(0)
    net.crash(1)  # 2 alone against 3 and 4: they are now 2 of the 3 running
    assert [net.quorate(p, peers) for p in peers] == [False, False, False, True, True]
    net.heal(frozenset({3, 4}))
    net.restart(0)
    net.restart(1)
    net.cut(frozenset({0, 2, 4}))  # one side on paper, but 0, 2 and 4 cannot reach each other
    assert [net.reachable(p) for p in peers] == [{0}, {1}, {2}, {3}, {4}]
    assert not any(net.quorate(p, peers) for p in peers)


@pytest.mark.parametrize(
    ("n", "byzantine", "crash", "expected"),
    [(7, 0.29, 0.0, (2, 0)), (7, 0.3, 0.3, (2, 2)), (10, 0.25, 0.05, (3, 1)), (3, 0.5, 0.5, (2, 1)),
     (21, 1 / 3, 0.0, (7, 0)), (4, 0.0, 1.0, (0, 4))],
)  # fmt: skip
def test_fault_counts_round_half_up_and_stay_disjoint(
    n: int, byzantine: float, crash: float, expected: tuple[int, int]
) -> None:
    assert fault_counts(n, byzantine_fraction=byzantine, crash_fraction=crash) == expected


def _scenario(**sections: Any) -> Any:
    base: dict[str, Any] = {"name": "f", "seed": 3, "network": {"nodes": 20, "degree": 4},
                            "settlement": {"reporters": 7}}  # fmt: skip
    for key, value in sections.items():
        base[key] = base.get(key, {}) | value
    return parse_scenario(base)


def test_the_plan_draws_disjoint_sets_from_the_seed_and_maps_the_faults_table() -> None:
    scenario = _scenario(
        settlement={"byzantine_fraction": 0.3, "crash_fraction": 0.3},
        faults={
            "partitions": [{"nodes": [1], "reporters": [0, 6], "start_s": 5.0, "end_s": 9.0}],
            "crashes": [{"reporter": 2, "at_s": 3.0, "restart_s": 4.0}, {"node": 11, "at_s": 1.0}],
        },
    )
    reporters = [2, 4, 5, 9, 12, 15, 18]
    plan = plan_faults(scenario, reporters, np.random.default_rng(1))
    assert len(plan.byzantine) == len(plan.crashed) == 2 and not plan.byzantine & plan.crashed
    assert plan.byzantine | plan.crashed <= set(reporters)
    drawn = [o for o in plan.outages if o.node in plan.crashed]
    assert len(drawn) == 2 and all(o.end == NEVER for o in drawn)
    assert Outage(5, 3.0, 4.0) in plan.outages and Outage(11, 1.0) in plan.outages
    assert [o.start for o in plan.outages] == sorted(o.start for o in plan.outages)
    assert plan.cuts == (Cut(frozenset({1, 2, 18}), 5.0, 9.0),)
    again = plan_faults(scenario, reporters, np.random.default_rng(1))
    other = plan_faults(scenario, reporters, np.random.default_rng(2))
    assert again == plan and other != plan
    assert (
        plan.scheduled
        and not plan_faults(_scenario(), reporters, np.random.default_rng(1)).scheduled
    )


@pytest.mark.slow
def test_faulty_replicas_follow_crashes_and_restarts_during_a_run() -> None:
    scenario = parse_scenario({
        "name": "f", "seed": 3, "duration_s": 100.0, "network": {"nodes": 20, "degree": 4},
        "market": {"count": 1, "close_s": 50.0, "resolve_s": 60.0},
        "settlement": {"reporters": 7, "byzantine_fraction": 0.15},
        "faults": {"crashes": [{"reporter": 1, "at_s": 10.0, "restart_s": 30.0}],
                   "partitions": [{"nodes": [0, 1], "start_s": 15.0, "end_s": 25.0}]},
    })  # fmt: skip
    run = build(expand(scenario)[0])
    node = sorted(run.validators)[1]
    seen: list[tuple[float, bool, bool, int, bool]] = []

    def probe() -> None:
        seen.append((run.env.now, node in run.faulty_replicas, node in run.net.down,
                     len(run.net.cuts), run.net.faults_scheduled))  # fmt: skip

    for t in (5.0, 12.0, 20.0, 40.0):
        run.after(t, probe)
    run.run()
    byzantine = run.faulty_replicas - {node}
    assert len(byzantine) == 1 and node not in byzantine
    assert seen == [(5.0, False, False, 0, True), (12.0, True, True, 0, True),
                    (20.0, True, True, 1, True), (40.0, False, False, 0, True)]  # fmt: skip


FAULT_ERRORS = [
    ({"partitions": [{"nodes": [20], "start_s": 1.0, "end_s": 2.0}]}, "faults.partitions[0].nodes",
     "20 does not exist: network.nodes is 20"),
    ({"partitions": [{"reporters": [7], "start_s": 1.0, "end_s": 2.0}]},
     "faults.partitions[0].reporters", "7 does not exist: settlement.reporters is 7"),
    ({"partitions": [{"nodes": [1], "start_s": 3.0, "end_s": 2.0}]}, "faults.partitions[0].end_s",
     "must be greater than start_s (3.0), got 2.0"),
    ({"partitions": [{"start_s": 1.0, "end_s": 2.0}]}, "faults.partitions[0]", "names no node"),
    ({"partitions": [{"nodes": [1], "end_s": 2.0}]}, "faults.partitions[0].start_s",
     "required key is missing"),
    ({"crashes": [{"node": 1, "reporter": 1, "at_s": 1.0}]}, "faults.crashes[0]",
     "give exactly one of node or reporter"),
    ({"crashes": [{"node": 1, "at_s": 5.0, "restart_s": 5.0}]}, "faults.crashes[0].restart_s",
     "must be greater than at_s (5.0), got 5.0"),
    ({"crashes": [{"node": -1, "at_s": 5.0}]}, "faults.crashes[0].node",
     "greater than or equal to 0"),
    ({"crashes": [{"nodes": [1], "at_s": 5.0}]}, "faults.crashes[0].nodes", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("faults", "key", "message"), FAULT_ERRORS)
def test_a_bad_faults_table_is_refused_in_one_line_naming_the_key(
    faults: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        _scenario(faults=faults)
    problems = [p for p in info.value.problems if p.key == key]
    assert problems, [str(p) for p in info.value.problems]
    assert message in problems[0].message and "\n" not in str(problems[0])


def test_settlement_protocols_and_fault_fractions_are_available() -> None:
    _scenario(settlement={"protocol": "optimistic", "byzantine_fraction": 0.2,
                          "crash_fraction": 0.1})  # parses  # fmt: skip
    swept = parse_scenario({"name": "f", "seed": 1, "sweep": {
        "settlement.byzantine_fraction": [0.0, 0.34], "settlement.protocol": ["bft", "optimistic"],
        "faults.partitions": [[], [{"nodes": [1], "start_s": 1.0, "end_s": 2.0}]]}})  # fmt: skip
    assert len(expand(swept)) == 8


@pytest.mark.parametrize(
    ("resolve_s", "window_s", "expected"),
    [(6000.0, 1200.0, (5400.0, 6600.0)), (100.0, 1200.0, (0.0, 700.0)),
     (42900.0, 1200.0, (42300.0, 43200.0)), (3600.0, 1e6, (0.0, 43200.0))],
)  # fmt: skip
def test_crashes_are_drawn_in_a_window_around_resolve_clipped_to_the_run(
    resolve_s: float, window_s: float, expected: tuple[float, float]
) -> None:
    scenario = _scenario(
        market={"close_s": min(resolve_s, 3000.0), "resolve_s": resolve_s},
        settlement={"crash_fraction": 1.0, "crash_window_s": window_s},
    )
    assert crash_window(scenario) == expected
    plan = plan_faults(scenario, list(range(7)), np.random.default_rng(5))
    starts = [o.start for o in plan.outages]
    assert len(starts) == 7 and all(expected[0] <= t <= expected[1] for t in starts)
    assert max(starts) - min(starts) > (expected[1] - expected[0]) / 2  # spread, not bunched

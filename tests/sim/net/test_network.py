"""The network: connected topologies, flood arrival times and message accounting."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest
from simpy import Environment

from sim.net.network import SimNetwork, Topology, build_topology
from sim.scenario import parse_scenario
from tests.sim.net.probe import Probe


def _network(**keys: object) -> Topology:
    scenario = parse_scenario({"name": "t", "seed": 1, "network": keys})
    return build_topology(scenario.network, np.random.default_rng(5))


def _flood(topology: Topology, *, loss: float = 0.0, origin: int = 0) -> tuple[SimNetwork, list]:
    env = Environment()
    net = SimNetwork(env, topology, loss=loss, rng=random.Random(3))
    seen: list[tuple[int, int, float]] = []
    net.flood(
        origin,
        Probe("order", 32),
        to=lambda node, sender, _m: seen.append((node, sender, env.now)),
    )
    env.run()
    net.close()
    return net, seen


@pytest.mark.parametrize(
    "topology", ["random_regular", "watts_strogatz", "barabasi_albert", "erdos_renyi", "complete"]
)
def test_every_topology_is_connected_with_positive_latencies(topology: str) -> None:
    topo = _network(nodes=40, degree=4, topology=topology)
    graph = nx.Graph([(u, v) for u, v, _ in topo.edges()])
    assert graph.number_of_nodes() == 40 and nx.is_connected(graph)
    assert all(lat > 0 for _, _, lat in topo.edges())


def test_latencies_are_lognormal_around_the_median() -> None:
    topo = _network(nodes=400, degree=8, latency_ms={"median": 80.0, "sigma": 0.5})
    lats = np.array([lat for _, _, lat in topo.edges()])
    assert np.median(lats) == pytest.approx(0.080, rel=0.1)
    assert np.std(np.log(lats)) == pytest.approx(0.5, rel=0.1)


def test_flood_first_arrivals_equal_latency_weighted_shortest_paths() -> None:
    topo = _network(nodes=60, degree=4)
    _, seen = _flood(topo, origin=7)
    graph = nx.Graph()
    graph.add_weighted_edges_from(topo.edges())
    expected = nx.single_source_dijkstra_path_length(graph, 7)
    arrivals = {node: t for node, _, t in seen}
    assert sorted(arrivals) == list(range(60))
    for node, t in arrivals.items():
        assert t == pytest.approx(expected[node], abs=1e-12)


def test_flood_counts_every_forward_once_and_delivers_all_without_loss() -> None:
    topo = _network(nodes=50, degree=6)
    net, seen = _flood(topo)
    sent = net.stats.sent["order"]
    # the origin sends to all its neighbours, every other node to all but the one it heard from
    assert sent == sum(topo.degree(n) for n in range(50)) - 49
    assert net.stats.delivered["order"] == sent and net.stats.lost["order"] == 0
    assert net.stats.bytes["order"] == 32 * sent
    assert len(seen) == 50


def test_loss_drops_messages_and_accounting_still_adds_up() -> None:
    topo = _network(nodes=80, degree=8)
    net, _ = _flood(topo, loss=0.3)
    stats = net.stats
    assert stats.lost["order"] > 0
    assert stats.delivered["order"] + stats.lost["order"] == stats.sent["order"]


def test_same_seed_same_topology_and_different_seed_differs() -> None:
    scenario = parse_scenario({"name": "t", "seed": 1, "network": {"nodes": 30, "degree": 4}})
    a = build_topology(scenario.network, np.random.default_rng(1))
    b = build_topology(scenario.network, np.random.default_rng(1))
    c = build_topology(scenario.network, np.random.default_rng(2))
    assert a == b and a != c

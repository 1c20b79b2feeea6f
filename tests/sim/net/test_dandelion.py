"""Dandelion++ stems: routes, per-inbound-edge forwarding, fluff, embargo, and their cost."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from simpy import Environment

import sim
from sim.net.dandelion import (
    Dandelion,
    build_routes,
    embargo_base_s,
    long_stem_hops,
    mean_hop_s,
    neighbour_lists,
)
from sim.net.fastflood import LatencyGraph, Spread
from sim.net.network import SimNetwork, Topology, build_topology
from sim.rng import Streams
from sim.runs.runner import build
from sim.scenario import Network, expand, parse_scenario
from tests.sim.net.probe import Probe


def _config(**network: Any) -> Network:
    keys = {"nodes": 80, "degree": 4, "propagation": "dandelion"} | network
    return parse_scenario({"name": "t", "seed": 1, "network": keys}).network


def _router(
    cfg: Network,
    *,
    fast: bool = True,
    seed: int = 9,
    black_holes: frozenset[int] = frozenset(),
    loss: float = 0.0,
) -> tuple[Dandelion, Topology]:
    topo = build_topology(cfg, np.random.default_rng(4))
    net = SimNetwork(Environment(), topo, loss=loss, rng=random.Random(2))
    graph = LatencyGraph(topo) if fast else None
    router = Dandelion(net, cfg, Streams(seed), graph=graph, black_holes=black_holes, trace=True)
    return router, topo


def _send_at(router: Dandelion, times: list[tuple[float, int]]) -> list[Spread]:
    """Send one message from each ``(time, origin)``; run to the end; the spreads in order."""
    sent: list[Spread] = []
    env = router.net.env
    for t, origin in times:
        env.timeout(t).callbacks.append(
            lambda _e, o=origin: sent.append(
                router.send(o, Probe("order", 32), to=lambda *_: None, listeners=())
            )
        )
    env.run()
    router.net.close()
    return sent


# --- routes --------------------------------------------------------------------------------------


def test_each_node_picks_two_relays_among_its_neighbours_and_maps_every_inbound_edge() -> None:
    topo = build_topology(_config(nodes=200, degree=6), np.random.default_rng(1))
    neighbours = neighbour_lists(topo)
    routes = build_routes(neighbours, 0, random.Random(5))
    inbound: dict[int, list[int]] = {v: [] for v in range(200)}
    for node, relays in enumerate(routes.relays):
        assert len(relays) == 2 and len(set(relays)) == 2
        assert set(relays) <= set(neighbours[node])
        assert routes.own(node) == relays[0]
        for relay in relays:
            inbound[relay].append(node)
    for node in range(200):
        forward = routes.forward[node]
        assert set(forward) == set(neighbours[node])  # any neighbour's stem message has a route
        assert set(forward.values()) <= set(routes.relays[node])
        assert all(relay != sender for sender, relay in forward.items())  # never straight back
        used = Counter(forward[u] for u in inbound[node])
        if len(inbound[node]) >= 2:
            # inbound edges are shared out between the two relays, as evenly as possible
            assert len(used) == 2 and max(used.values()) - min(used.values()) <= 1


def test_routes_are_reshuffled_each_epoch_and_redrawn_identically_from_the_seed() -> None:
    router, _ = _router(_config())
    again, _ = _router(_config())
    other, _ = _router(_config(), seed=10)
    assert router.routes(0) == again.routes(0) and router.routes(3) == again.routes(3)
    assert router.routes(0).relays != router.routes(1).relays
    assert router.routes(0).relays != other.routes(0).relays


def test_every_hop_follows_its_epochs_per_inbound_edge_route() -> None:
    cfg = _config(dandelion_epoch_s=5.0, fluff_probability=0.2)
    router, _ = _router(cfg)
    rng = random.Random(1)
    _send_at(router, [(rng.uniform(0, 30), rng.randrange(80)) for _ in range(300)])
    assert router.hops is not None and len(router.hops) > 300
    epochs = set()
    for hop in router.hops:
        routes = router.routes(int(hop.t // 5.0))
        epochs.add(routes.epoch)
        if hop.sender < 0:
            assert hop.relay == routes.own(hop.node)  # own messages through the fixed relay
        else:
            assert hop.relay == routes.next_hop(hop.node, hop.sender)
    assert len(epochs) >= 6


def test_a_nodes_own_messages_leave_through_one_relay_per_epoch() -> None:
    router, _ = _router(_config(dandelion_epoch_s=10.0))
    _send_at(router, [(t, 7) for t in np.arange(0.5, 40.0, 0.5)])
    assert router.hops is not None
    first = {(int(h.t // 10.0), h.relay) for h in router.hops if h.sender < 0}
    per_epoch = Counter(epoch for epoch, _ in first)
    assert sorted(per_epoch) == [0, 1, 2, 3] and set(per_epoch.values()) == {1}
    assert len({relay for _, relay in first}) >= 2  # and the relay changes across epochs


# --- fluff and embargo ---------------------------------------------------------------------------


def test_stems_fluff_with_the_configured_probability_per_hop() -> None:
    q = 0.25
    router, _ = _router(_config(nodes=300, degree=8, fluff_probability=q))
    rng = random.Random(3)
    spreads = _send_at(router, [(rng.uniform(0, 50), rng.randrange(300)) for _ in range(2000)])
    stats = router.stats
    # every stem ends with a coin (no loss, no black hole: no timer has to fire)
    assert stats.coin_fluffs == stats.messages == 2000 and stats.embargo_fluffs == 0
    # hops per stem are geometric: mean 1/q, and P(one hop) = q
    assert stats.hops / stats.messages == pytest.approx(1 / q, rel=0.07)
    assert router.hops is not None
    lengths = Counter(Counter(id(h.message) for h in router.hops).values())
    assert lengths[1] / 2000 == pytest.approx(q, abs=0.03)
    assert all(not np.isnan(s.arrivals).any() for s in spreads)  # and everyone got everything


@pytest.mark.parametrize("fast", [True, False])
def test_a_black_holed_stem_is_diffused_by_the_node_that_forwarded_it(fast: bool) -> None:
    cfg = _config()
    router, topo = _router(cfg, fast=fast)
    hole = router.routes(0).own(11)
    router.black_holes = frozenset({hole})
    [spread] = _send_at(router, [(1.0, 11)])
    # the hole received it on the stem and kept it; 11's timer ran out and 11 diffused it
    assert spread.stem_from == {hole: 11}
    assert router.stats.embargo_fluffs == 1 and router.stats.coin_fluffs == 0
    fluffed = spread.holders[11]
    assert fluffed >= 1.0 + embargo_base_s(cfg)
    for nbr, lat in topo.links[11]:
        if nbr != hole:
            assert spread.first_from[nbr] == 11 and spread.arrivals[nbr] <= fluffed + lat
    assert not np.isnan(np.asarray(spread.arrivals)).any()


def test_computed_and_simulated_stems_agree_exactly_without_loss() -> None:
    cfg = _config(fluff_probability=0.3)
    rng = random.Random(8)
    plan = [(rng.uniform(0, 20), rng.randrange(80)) for _ in range(60)]
    fast, _ = _router(cfg, fast=True, black_holes=frozenset({3, 40}))
    slow, _ = _router(cfg, fast=False, black_holes=frozenset({3, 40}))
    a, b = _send_at(fast, plan), _send_at(slow, plan)
    assert fast.stats == slow.stats and fast.stats.embargo_fluffs > 0
    for x, y in zip(a, b, strict=True):
        assert list(x.arrivals) == list(y.arrivals)
        assert list(x.first_from) == list(y.first_from)
        assert x.stem_from == y.stem_from
    assert fast.net.stats.sent == slow.net.stats.sent


def test_lost_stem_hops_are_recovered_by_the_embargo() -> None:
    router, _ = _router(_config(), fast=False, loss=0.1)
    rng = random.Random(4)
    spreads = _send_at(router, [(rng.uniform(0, 20), rng.randrange(80)) for _ in range(200)])
    assert router.stats.embargo_fluffs > 10
    reached = [np.count_nonzero(~np.isnan(np.asarray(s.arrivals))) for s in spreads]
    assert min(reached) >= 0.9 * 80  # lossy diffusion may miss a node or two, never a stem's worth


def test_the_embargo_outlasts_a_long_stem_and_its_return() -> None:
    latency = {"median": 50.0, "sigma": 0.5}
    cfg = _config(fluff_probability=0.1, latency_ms=latency, diffusion_delay_ms=0.0)
    assert long_stem_hops(0.1) == 44  # (0.9)^44 < 1% <= (0.9)^43
    assert long_stem_hops(1.0) == 1
    assert embargo_base_s(cfg) == pytest.approx(2 * 45 * 0.050 * np.exp(0.125))
    # diffused back, each of the 45 hops also waits its mean forwarding delay (stems do not)
    slow = _config(fluff_probability=0.1, latency_ms=latency, diffusion_delay_ms=500.0)
    assert embargo_base_s(slow) == pytest.approx(2 * 45 * 0.050 * np.exp(0.125) + 45 * 0.5)
    assert mean_hop_s(cfg) == pytest.approx(0.050 * np.exp(0.125))


# --- whole runs: the cost in latency, reproducibility -------------------------------------------


def _scenario(small: dict[str, Any], propagation: str, **top: Any) -> dict[str, Any]:
    scenario = copy.deepcopy(small) | top
    scenario["network"] |= {"propagation": propagation}
    return scenario


@pytest.mark.slow
def test_dandelion_adds_stem_hops_before_orders_reach_the_sequencer(small: dict[str, Any]) -> None:
    small["network"]["diffusion_delay_ms"] = 0.0  # stem hops at link latency, nothing else
    base = sim.run(_scenario(small, "diffusion")).metrics()
    stems = sim.run(_scenario(small, "dandelion")).metrics()
    extra = stems["privacy.propagation_delay_s"] - base["privacy.propagation_delay_s"]
    # about one mean stem (1/q hops at the mean link latency); diffusion is the same after it
    stem_s = mean_hop_s(_config()) / 0.1
    assert 0.3 * stem_s < extra < 2.0 * stem_s
    assert stems["market.orders_executed"] == base["market.orders_executed"]


@pytest.mark.slow
def test_the_same_seed_gives_the_same_stems(small: dict[str, Any]) -> None:
    def stems(seed: int) -> list[dict[int, int]]:
        run = build(expand(parse_scenario(_scenario(small, "dandelion", seed=seed)))[0])
        run.run()
        return [dict(r.flood.stem_from) for r in run.records.orders if isinstance(r.flood, Spread)]

    first = stems(11)
    assert len(first) > 50 and all(first)
    assert stems(11) == first
    assert stems(12) != first

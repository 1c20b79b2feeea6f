"""The computed (loss-free) diffusion against message-by-message flooding on the same graph."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from simpy import Environment

from sim.net.fastflood import EventSpread, FastFlood, LatencyGraph, Spread, delay_until, diffuse
from sim.net.network import Flood, Message, Receive, SimNetwork, Topology, build_topology
from sim.scenario import parse_scenario
from tests.sim.net.probe import Probe

Log = dict[int, tuple[float, int]]


def _topology(nodes: int, degree: int, topology: str = "random_regular", seed: int = 5) -> Topology:
    scenario = parse_scenario(
        {
            "name": "t",
            "seed": 1,
            "network": {"nodes": nodes, "degree": degree, "topology": topology},
        }
    )
    return build_topology(scenario.network, np.random.default_rng(seed))


def _run(
    topo: Topology, start: float, spread: Callable[[SimNetwork, Log], Flood]
) -> tuple[Flood, Log, SimNetwork]:
    """Start ``spread`` at ``start`` on a fresh loss-free network; run to the end."""
    env = Environment()
    net = SimNetwork(env, topo, loss=0.0, rng=random.Random(3))
    log: Log = {}
    made: list[Flood] = []
    env.timeout(start).callbacks.append(lambda _e: made.append(spread(net, log)))
    env.run()
    net.close()
    return made[0], log, net


def _logger(net: SimNetwork, log: Log) -> Receive:
    def arrive(node: int, sender: int, _msg: Message) -> None:
        assert node not in log, "told twice"
        log[node] = (net.env.now, sender)

    return arrive


@pytest.mark.parametrize(
    ("nodes", "degree", "topology"),
    [(60, 4, "random_regular"), (300, 8, "random_regular"), (200, 3, "barabasi_albert"),
     (150, 6, "watts_strogatz")],
)  # fmt: skip
def test_computed_arrivals_are_bitwise_those_of_message_by_message_flooding(
    nodes: int, degree: int, topology: str
) -> None:
    topo = _topology(nodes, degree, topology)
    graph = LatencyGraph(topo)
    for origin, start in ((0, 0.0), (nodes // 2, 1234.567891), (nodes - 1, 40321.1)):
        slow, slow_log, slow_net = _run(
            topo,
            start,
            lambda net, log, o=origin: net.flood(o, Probe("order", 32), to=_logger(net, log)),
        )
        fast, fast_log, fast_net = _run(
            topo,
            start,
            lambda net, log, o=origin: diffuse(
                net, graph, o, Probe("order", 32), to=_logger(net, log)
            ),
        )
        assert list(fast.arrivals) == list(slow.arrivals)  # exact, not approximate
        assert list(fast.first_from) == list(slow.first_from)
        assert fast_log == slow_log  # every node told once, at the same time, by the same sender
        assert len(fast_log) == nodes and fast_log[origin] == (start, -1)
        assert fast_net.stats.sent == slow_net.stats.sent
        assert fast_net.stats.delivered == slow_net.stats.delivered


def test_only_listeners_and_the_first_sighting_are_told_at_their_exact_times() -> None:
    topo = _topology(120, 4)
    graph = LatencyGraph(topo)
    listeners = [5, 17, 99, 3]
    slow, slow_log, _ = _run(
        topo, 77.5, lambda net, log: net.flood(8, Probe("o", 1), to=_logger(net, log))
    )
    fast, fast_log, _ = _run(
        topo,
        77.5,
        lambda net, log: diffuse(
            net, graph, 8, Probe("o", 1), to=_logger(net, log), listeners=listeners
        ),
    )
    first = min((t, node) for node, (t, _) in slow_log.items() if node != 8)[1]
    assert set(fast_log) == {8, first, *listeners}
    assert all(fast_log[node] == slow_log[node] for node in fast_log)
    assert list(fast.arrivals) == list(slow.arrivals)  # every node's time is still recorded


def test_has_follows_the_clock_not_the_computed_future() -> None:
    topo = _topology(40, 4)
    env = Environment()
    net = SimNetwork(env, topo, loss=0.0, rng=random.Random(1))
    flood = diffuse(net, LatencyGraph(topo), 0, Probe("o", 1), to=lambda *_: None)
    far = max(range(40), key=lambda n: flood.arrivals[n])
    assert flood.has(0) and not flood.has(far)
    env.run(until=flood.arrivals[far] / 2)
    assert not flood.has(far)
    env.run(until=flood.arrivals[far] + 1e-9)
    assert flood.has(far)


def _two_sources(spread: Spread, net: SimNetwork, second: int, at: float) -> Spread:
    """Start at the spread's origin now, and at ``second`` (which then holds it) at ``at``."""
    spread.reach(spread.origin, -1)
    spread.fluff(spread.origin)

    def later(_event: object) -> None:
        if spread.reach(second, -1):
            spread.fluff(second)

    net.env.timeout(at).callbacks.append(later)
    return spread


def test_a_later_source_brings_arrivals_forward_exactly_as_in_simulation() -> None:
    # what Dandelion's embargo does: a second node starts diffusing while the first wave spreads
    topo = _topology(200, 4)
    graph = LatencyGraph(topo)
    far = 150

    def fast(net: SimNetwork, log: Log) -> Flood:
        spread = FastFlood(net, graph, 0, Probe("o", 1), to=_logger(net, log), listeners=None)
        return _two_sources(spread, net, far, 0.02)

    def slow(net: SimNetwork, log: Log) -> Flood:
        spread = EventSpread(net, 0, Probe("o", 1), to=_logger(net, log))
        return _two_sources(spread, net, far, 0.02)

    a, a_log, a_net = _run(topo, 10.0, fast)
    b, b_log, b_net = _run(topo, 10.0, slow)
    assert list(a.arrivals) == list(b.arrivals) and list(a.first_from) == list(b.first_from)
    assert a_log == b_log and len(a_log) == 200
    assert a_net.stats.sent == b_net.stats.sent
    # the second wave reached someone first: not every node heard it from the origin's side
    single, _, _ = _run(
        topo,
        10.0,
        lambda net, log: diffuse(net, graph, 0, Probe("o", 1), to=_logger(net, log)),
    )
    assert sum(x < y for x, y in zip(a.arrivals, single.arrivals, strict=True)) > 10


@given(
    now=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    gap=st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
)
def test_a_delay_lands_exactly_on_the_arrival_time(now: float, gap: float) -> None:
    t = now + gap
    d = delay_until(now, t)
    assert d >= 0.0 and now + d == t

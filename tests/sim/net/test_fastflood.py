"""The computed (loss-free) diffusion against message-by-message flooding on the same graph."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy import Environment

from sim.net.fastflood import EventSpread, FastFlood, LatencyGraph, Spread, diffuse, landing
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
    hops=st.lists(st.floats(min_value=0.0, max_value=1e3, allow_nan=False), min_size=1, max_size=8),
)
def test_delays_land_exactly_on_an_arrival_summed_hop_by_hop(now: float, hops: list[float]) -> None:
    t = now
    for latency in hops:  # as message-by-message delivery adds them
        t += latency
    clock = now
    for d in landing(now, t):
        assert d >= 0.0
        clock += d  # as simpy computes an event's time
    assert clock == t


def test_an_arrival_no_single_delay_reaches_is_reached_in_two() -> None:
    # the times of a run that crashed with "no delay ... lands exactly" (issue 12, item 10)
    now, t = 0.2098619062006342, 0.4765468240741449
    assert all(now + d != t for d in (t - now, *_neighbours(t - now)))
    env = Environment()
    seen: list[float] = []
    env.timeout(now).callbacks.append(
        lambda _e: _schedule_steps(env, landing(now, t), lambda: seen.append(env.now))
    )
    env.run()
    assert seen == [t]


def test_a_computed_diffusion_reaches_such_an_arrival_at_its_exact_time() -> None:
    now, t = 0.2098619062006342, 0.4765468240741449
    hop = 0.1
    last = t - (now + hop)  # exact (Sterbenz): so message by message, node 2 hears it at t
    line = Topology((((1, hop),), ((0, hop), (2, last)), ((1, last),)))
    _, slow_log, _ = _run(
        line, now, lambda net, log: net.flood(0, Probe("o", 1), to=_logger(net, log))
    )
    _, fast_log, _ = _run(
        line,
        now,
        lambda net, log: diffuse(net, LatencyGraph(line), 0, Probe("o", 1), to=_logger(net, log)),
    )
    assert slow_log[2] == (t, 1)
    assert fast_log == slow_log


def _neighbours(d: float, steps: int = 64) -> list[float]:
    up, down, out = d, d, []
    for _ in range(steps):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    return out


def _schedule_steps(env: Environment, steps: tuple[float, ...], fire: Callable[[], object]) -> None:
    if not steps:
        fire()
        return
    env.timeout(steps[0]).callbacks.append(lambda _e: _schedule_steps(env, steps[1:], fire))


@given(
    start=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_the_fast_path_matches_message_by_message_at_any_start_time(
    start: float, seed: int
) -> None:
    topo = _topology(30, 3, seed=seed)
    graph = LatencyGraph(topo)
    slow, slow_log, _ = _run(
        topo, start, lambda net, log: net.flood(0, Probe("o", 1), to=_logger(net, log))
    )
    fast, fast_log, _ = _run(
        topo,
        start,
        lambda net, log: diffuse(net, graph, 0, Probe("o", 1), to=_logger(net, log)),
    )
    assert list(fast.arrivals) == list(slow.arrivals)
    assert fast_log == slow_log  # told at exactly the clock time message-by-message reached

"""Forwarding delays of order-bearing messages (``network.diffusion_delay_ms``).

A diffusing node waits an exponential delay before forwarding to each neighbour, drawn per
message, node and neighbour; the computed diffusion must still give bitwise the arrivals of
message-by-message delivery, and protocol messages must not wait.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from simpy import Environment

from sim.net.dandelion import Propagation
from sim.net.network import Flood, Message, SimNetwork, Topology, build_topology
from sim.rng import Streams
from sim.scenario import Network, parse_scenario
from tests.sim.net.probe import Probe

Log = dict[int, tuple[float, int]]


def _config(**network: Any) -> Network:
    keys = {"nodes": 60, "degree": 4} | network
    return parse_scenario({"name": "t", "seed": 1, "network": keys}).network


def _spread_all(
    cfg: Network, topo: Topology, plan: list[tuple[float, int]], *, computed: bool, protocol: bool
) -> tuple[list[Flood], list[Log]]:
    """Spread one message per ``(time, origin)`` through a fresh Propagation; run to the end."""
    env = Environment()
    net = SimNetwork(env, topo, loss=0.0, rng=random.Random(3))
    net.faults_scheduled = not computed  # the switch that forces message-by-message delivery
    layer = Propagation(net, cfg, Streams(11))
    floods: list[Flood] = []
    logs: list[Log] = []

    def start(origin: int) -> None:
        log: Log = {}

        def heard(node: int, sender: int, _msg: Message) -> None:
            assert node not in log, "told twice"
            log[node] = (env.now, sender)

        send = layer.diffuse if protocol else layer.spread
        floods.append(send(origin, Probe("order", 32), to=heard))
        logs.append(log)

    for t, origin in plan:
        env.timeout(t).callbacks.append(lambda _e, o=origin: start(o))
    env.run()
    return floods, logs


PLAN = [(0.0, 0), (0.37, 17), (12.5, 59), (400.123, 30)]


@pytest.mark.parametrize("propagation", ["diffusion", "dandelion"])
def test_computed_arrivals_with_delays_are_bitwise_those_of_message_by_message(
    propagation: str,
) -> None:
    cfg = _config(diffusion_delay_ms=800.0, propagation=propagation)
    topo = build_topology(cfg, np.random.default_rng(2))
    fast, fast_logs = _spread_all(cfg, topo, PLAN, computed=True, protocol=False)
    slow, slow_logs = _spread_all(cfg, topo, PLAN, computed=False, protocol=False)
    for f, s in zip(fast, slow, strict=True):
        assert list(f.arrivals) == list(s.arrivals)
        assert list(f.first_from) == list(s.first_from)
    for f_log, s_log in zip(fast_logs, slow_logs, strict=True):
        assert all(f_log[node] == s_log[node] for node in f_log)  # told at the exact times


def test_the_delays_are_exponential_with_the_configured_mean() -> None:
    cfg = _config(diffusion_delay_ms=500.0)
    topo = build_topology(cfg, np.random.default_rng(2))
    net = SimNetwork(Environment(), topo, loss=0.0, rng=random.Random(3))
    layer = Propagation(net, cfg, Streams(5))
    latencies = layer.links.weights[: layer.links.links]
    delays = np.concatenate([layer.draw_waits().array - latencies for _ in range(50)])  # type: ignore[union-attr]
    # 50 messages x 240 directed links; an exponential's mean and its sd are both 0.5 s
    assert delays.min() >= 0.0
    assert delays.mean() == pytest.approx(0.5, abs=4 * 0.5 / np.sqrt(delays.size))
    assert delays.std() == pytest.approx(0.5, rel=0.05)
    # independent per link: two messages draw different delays on the same link
    again = layer.draw_waits().array - latencies  # type: ignore[union-attr]
    assert not np.array_equal(again, delays[: again.size])


def test_delays_slow_an_order_down_but_never_a_protocol_message() -> None:
    quick, delayed = _config(diffusion_delay_ms=0.0), _config(diffusion_delay_ms=1000.0)
    topo = build_topology(quick, np.random.default_rng(2))
    plan = [(0.0, 0)]
    [plain], _ = _spread_all(quick, topo, plan, computed=True, protocol=False)
    [order], _ = _spread_all(delayed, topo, plan, computed=True, protocol=False)
    [block], _ = _spread_all(delayed, topo, plan, computed=True, protocol=True)
    assert list(block.arrivals) == list(plain.arrivals)  # a block is relayed at once
    assert np.nanmean(order.arrivals) > np.nanmean(plain.arrivals) + 1.0  # hops wait ~1 s each


def test_without_delays_nothing_is_drawn_and_the_order_path_is_unchanged() -> None:
    cfg = _config(diffusion_delay_ms=0.0)
    topo = build_topology(cfg, np.random.default_rng(2))
    orders, _ = _spread_all(cfg, topo, PLAN, computed=True, protocol=False)
    blocks, _ = _spread_all(cfg, topo, PLAN, computed=True, protocol=True)
    for o, b in zip(orders, blocks, strict=True):
        assert list(o.arrivals) == list(b.arrivals)

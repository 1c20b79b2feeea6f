"""Propagation at scale (issue 6): 1,000 and 10,000 nodes of degree 8, 10,000 orders.

For each size, the same orders (Poisson over one simulated hour, from random nodes) spread
through the run's propagation layer (:class:`sim.net.dandelion.Propagation`):

- ``computed``: loss-free diffusion by Dijkstra, only the 21 sequencers and the spies (10 %)
  told by simpy events, as an order flow that passes ``listeners`` gets it;
- ``dandelion``: Dandelion++ stems, then the computed diffusion, same listeners;
- ``computed, all told``: the computed diffusion with every node told (an order flow that passes
  no listeners), on a sample of the orders, scaled up to all of them;
- ``message by message``: the lossy path's flooding with loss 0, on a smaller sample (at 10,000
  nodes all the orders would take over an hour), scaled up likewise.

Then the spies' first-spy estimator runs over every message. Printed: wall seconds, simpy
events, peak memory, and the speed-up of the computed path over message-by-message flooding.
``quick`` runs 1,000 orders instead of 10,000.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from market.types import Order
from sim.adversary.spies import first_spy
from sim.chain.blocks import OrderTx
from sim.net.clock import CountingEnvironment
from sim.net.dandelion import Propagation
from sim.net.network import Flood, Message, SimNetwork, Topology, build_topology
from sim.rng import Streams
from sim.scenario import Network, parse_scenario

ORDER = OrderTx(Order(0, 0, 0, 0, 1, 1, 0))
"""The one message every spread carries (32 bytes, counted as ``order``)."""

SIZES = (1_000, 10_000)
ORDERS = 10_000
SEQUENCERS = 21
SPY_FRACTION = 0.1
SAMPLES = {
    "computed, all told": {1_000: 2_000, 10_000: 500},
    "message by message": {1_000: 200, 10_000: 20},
}
"""Orders actually run, per mode and size, where all of them would take too long."""


def _config(nodes: int, propagation: str) -> Network:
    network = {"nodes": nodes, "degree": 8, "propagation": propagation}
    return parse_scenario({"name": "bench-propagation", "seed": 1, "network": network}).network


def _plan(nodes: int, orders: int) -> list[tuple[float, int]]:
    rng = random.Random(nodes)
    times = sorted(rng.uniform(0.0, 3600.0) for _ in range(orders))
    return [(t, rng.randrange(nodes)) for t in times]


def _spread(
    topo: Topology,
    cfg: Network,
    plan: list[tuple[float, int]],
    *,
    listeners: list[int] | None,
    computed: bool = True,
) -> tuple[float, int, list[Flood]]:
    """Spread every planned order; returns wall seconds, simpy events and the floods."""
    env = CountingEnvironment()
    net = SimNetwork(env, topo, loss=0.0, rng=random.Random(0))
    if not computed:
        net.faults_scheduled = True  # the switch that forces message-by-message diffusion
    started = time.perf_counter()
    layer = Propagation(net, cfg, Streams(7))
    floods: list[Flood] = []
    told = [0]

    def arrive(_node: int, _sender: int, _msg: Message) -> None:
        told[0] += 1

    def send(origin: int) -> Callable[[Any], None]:
        return lambda _event: floods.append(
            layer.spread(origin, ORDER, to=arrive, listeners=listeners)
        )

    for t, origin in plan:
        env.timeout(t).callbacks.append(send(origin))
    env.run()
    wall = time.perf_counter() - started
    return wall, env.processed, floods


def _estimate(floods: list[Flood], spies: np.ndarray) -> tuple[float, float]:
    """Wall seconds of the first-spy estimator over ``floods``, and the share it named."""
    started = time.perf_counter()
    named = sum(first_spy(f, spies, until=1e9)[1] >= 0 for f in floods)
    return time.perf_counter() - started, named / max(1, len(floods))


def _size(nodes: int, orders: int) -> dict[str, float]:
    cfg = _config(nodes, "diffusion")
    topo = build_topology(cfg, np.random.default_rng(nodes))
    rng = random.Random(1)
    spies = sorted(rng.sample(range(nodes), round(SPY_FRACTION * nodes)))
    sequencers = sorted(rng.sample(range(nodes), SEQUENCERS))
    listeners = sorted(set(spies) | set(sequencers))
    plan = _plan(nodes, orders)
    figures: dict[str, float] = {}
    print(f"\n== propagation: {nodes:,} nodes, degree 8, {orders:,} orders ==")
    runs: list[tuple[str, Network, list[int] | None, bool]] = [
        ("computed", cfg, listeners, True),
        ("dandelion", _config(nodes, "dandelion"), listeners, True),
        ("computed, all told", cfg, None, True),
        ("message by message", cfg, None, False),
    ]
    for name, config, told, computed in runs:
        orders_plan = plan[: min(orders, SAMPLES.get(name, {}).get(nodes, orders))]
        wall, events, floods = _spread(topo, config, orders_plan, listeners=told, computed=computed)
        scale = orders / len(orders_plan)
        estimate_s, named = _estimate(floods, np.array(spies, dtype=np.int64))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        figures[f"{nodes}.{name}.wall_s"] = wall * scale
        note = f" (x{scale:.0f} from {len(orders_plan)} orders)" if scale > 1 else ""
        print(
            f"{name:<20} wall {wall * scale:9.1f} s{note}   events {events * scale:13,.0f}   "
            f"first-spy {estimate_s * scale:6.1f} s (named {named:.0%})   peak RSS {rss:,.0f} MB"
        )
        del floods
    speedup = figures[f"{nodes}.message by message.wall_s"] / figures[f"{nodes}.computed.wall_s"]
    figures[f"{nodes}.speedup"] = speedup
    print(f"computed diffusion is {speedup:,.0f}x faster than message-by-message flooding")
    return figures


def run(quick: bool) -> dict[str, float]:
    """Run the propagation benchmark; print and return its figures."""
    orders = 1_000 if quick else ORDERS
    figures: dict[str, float] = {}
    for nodes in SIZES:
        figures.update(_size(nodes, orders))
    return figures


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)

"""The foundation's benchmark: 100 nodes, degree 8, 60 traders, 4 markets, 12 simulated hours.

Prints wall seconds, events per second, delivered messages per second and peak memory, next to
bare simpy delivering the same number of messages (see :mod:`benchmarks.floors`).
Targets (issue 2): under 20 s wall on a 2-core machine; the simulator's delivered messages per
second at least a third of bare simpy's.
"""

from __future__ import annotations

from typing import Any

from benchmarks.floors import bare_simpy_deliveries
from sim.api import run

CORE: dict[str, Any] = {
    "name": "bench-core",
    "seed": 1,
    "duration_s": 43200.0,
    "network": {"nodes": 100, "degree": 8},
    "market": {"count": 4, "close_s": 36000.0, "resolve_s": 39600.0},
    "traders": {"informed": 20, "noise": 40},
}


def core_benchmark(*, quick: bool = False) -> dict[str, float]:
    """Run the fixed scenario once and the bare-simpy floor; print and return the figures."""
    scenario = dict(CORE)
    if quick:
        scenario |= {
            "duration_s": 7200.0,
            "market": {"count": 4, "close_s": 5400.0, "resolve_s": 6000.0},
        }
    result = run(scenario)
    m = result.metrics()
    wall, messages, events = m["perf.wall_s"], m["perf.messages"], m["perf.events"]
    floor = bare_simpy_deliveries(int(messages))
    sim_rate, bare_rate = messages / wall, messages / floor
    print("\n== core: transparent LMSR market, 100 nodes, degree 8, 60 traders, 4 markets ==")
    print(
        f"wall {wall:.2f} s (target < 20 s)   events {events:,.0f}   "
        f"events/s {m['perf.events_per_s']:,.0f}   peak RSS {m['perf.peak_rss_mb']:.0f} MB"
    )
    print(
        f"messages delivered {messages:,.0f}   simulator {sim_rate:,.0f}/s   "
        f"bare simpy {bare_rate:,.0f}/s   ratio {sim_rate / bare_rate:.2f} (target >= 0.33)"
    )
    print(
        f"orders executed {m['market.orders_executed']:.0f}   "
        f"messages per order {m['cost.messages_per_order']:.0f}"
    )
    return {"wall_s": wall, "ratio": sim_rate / bare_rate, "messages": messages}

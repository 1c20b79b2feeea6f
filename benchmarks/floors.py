"""Floors measured in the same run: what the work would cost with nothing of ours around it."""

from __future__ import annotations

import time

import simpy
from simpy.events import Timeout


def bare_simpy_deliveries(count: int, *, in_flight: int = 1000) -> float:
    """Seconds for bare simpy to deliver ``count`` messages as timeouts with a callback.

    ``in_flight`` message chains run at once (a heap of about the simulator's size); every
    delivered message schedules the next one of its chain after a fixed latency, with no
    protocol work at all: the cheapest way simpy can deliver that many messages.
    """
    env = simpy.Environment()
    remaining = count

    def deliver(_event: Timeout) -> None:
        nonlocal remaining
        if remaining > 0:
            remaining -= 1
            Timeout(env, 0.05, None).callbacks.append(deliver)  # type: ignore[union-attr]

    started = time.perf_counter()
    for _ in range(min(in_flight, count)):
        remaining -= 1
        Timeout(env, 0.0, None).callbacks.append(deliver)  # type: ignore[union-attr]
    env.run()
    return time.perf_counter() - started

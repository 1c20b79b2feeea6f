"""Sweep throughput: the same sweep on the local executor with 1 and 2 workers, and on Ray.

Sweep: a quickstart-sized world (40 nodes, 16 traders, 2 markets, 4 simulated hours) with
``market.liquidity_b`` swept over 3 values × 8 replications = 24 runs (quick: 2 × 2 runs of a
shorter world). Every figure is wall time of the whole sweep as a user sees it, worker start-up
(each pool worker imports the simulator, about 1.5 s) and writing the run folders included: a
fixed cost per sweep, so a longer sweep gets closer to the 2× ceiling. The local figures are
the best of two rounds, run alternately (one round with ``--quick``), because on a shared
machine other processes take cores away; the load average is printed beside them.

Reported:

* runs per minute with 1 worker (in this process) and with 2 (a process pool);
* the speedup, 2 workers against 1 (target ≥ 1.7× on a 2-core machine), and the parallel
  efficiency (speedup / 2);
* Ray: the time to start a local Ray (2 CPUs), then the same sweep as Ray tasks, and Ray's
  overhead per run against the 2-worker pool: (Ray's wall − the pool's wall) / runs.

Run: ``python -m benchmarks.sweep [--quick]``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.runs.sweep import Executor, run_sweep
from sim.scenario import Scenario, expand, parse_scenario

SWEEP: dict[str, Any] = {
    "name": "bench-sweep",
    "seed": 5,
    "duration_s": 14400.0,
    "replications": 8,
    "network": {"nodes": 40, "degree": 6},
    "market": {"count": 2, "liquidity_b": 50.0, "close_s": 10800.0, "resolve_s": 12600.0},
    "traders": {"informed": 6, "noise": 10, "orders_per_hour": 8.0},
    "settlement": {"reporters": 7},
    "sweep": {"market.liquidity_b": [25.0, 50.0, 100.0]},
}

QUICK: dict[str, Any] = SWEEP | {
    "duration_s": 3600.0,
    "replications": 2,
    "market": {"count": 2, "liquidity_b": 50.0, "close_s": 2700.0, "resolve_s": 3000.0},
    "sweep": {"market.liquidity_b": [25.0, 50.0]},
}


def _timed(scenario: Scenario, *, executor: Executor = "local", workers: int) -> float:
    """Wall seconds of the whole sweep, into a fresh folder; every run must complete."""
    with tempfile.TemporaryDirectory(prefix="veilcast-bench-") as out:
        started = time.perf_counter()
        summary = run_sweep(scenario, out=Path(out), executor=executor, workers=workers)
        wall = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"benchmark run failed: {summary.failed[0].error}")
    return wall


def _ray(scenario: Scenario) -> tuple[float, float]:
    """(seconds to start a local Ray with 2 CPUs, wall of the sweep on it); NaN without Ray."""
    try:
        import ray
    except ImportError:
        return float("nan"), float("nan")
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    init_s = time.perf_counter() - started
    try:
        return init_s, _timed(scenario, executor="ray", workers=2)
    finally:
        ray.shutdown()


def run(quick: bool) -> dict[str, float]:
    """Run the sweep benchmark; print and return its figures."""
    scenario = parse_scenario(QUICK if quick else SWEEP)
    runs = len(expand(scenario))
    load = os.getloadavg()[0]
    one = two = math.inf
    for _ in range(1 if quick else 2):
        one = min(one, _timed(scenario, workers=1))
        two = min(two, _timed(scenario, workers=2))
    ray_init, ray_wall = _ray(scenario)
    speedup = one / two
    figures = {
        "runs": float(runs),
        "runs_per_min_1": 60.0 * runs / one,
        "runs_per_min_2": 60.0 * runs / two,
        "speedup_2": speedup,
        "efficiency_2": speedup / 2,
        "ray_init_s": ray_init,
        "ray_runs_per_min": 60.0 * runs / ray_wall,
        "ray_overhead_per_run_s": (ray_wall - two) / runs,
    }
    print(f"\n== sweep: {runs} runs of a 40-node world, local executor and Ray ==")
    print(f"load average at the start {load:.1f} on {os.cpu_count()} cores")
    print(
        f"1 worker {figures['runs_per_min_1']:.1f} runs/min   "
        f"2 workers {figures['runs_per_min_2']:.1f} runs/min   "
        f"speedup {speedup:.2f}x (target >= 1.7x)   efficiency {speedup / 2:.0%}"
    )
    if not math.isnan(ray_wall):  # Ray is installed
        print(
            f"ray: start {ray_init:.1f} s   {figures['ray_runs_per_min']:.1f} runs/min   "
            f"overhead against the 2-worker pool {figures['ray_overhead_per_run_s'] * 1000:+.0f} "
            "ms per run"
        )
    else:
        print("ray: not installed (pip install 'veilcast[cluster]'); overhead not measured")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])

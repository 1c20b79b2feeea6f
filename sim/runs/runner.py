"""Build one run from a resolved scenario and its seeds, run it, return tables and manifest.

Nothing here writes files: :mod:`sim.results.io` is the only writer. ``wall_s`` covers building,
running and measuring, not writing.
"""

from __future__ import annotations

import math
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from sim.results import tables
from sim.results.audit import PayoutRecords, payout_error, recomputed_balances
from sim.results.metrics import (
    account_value,
    aggregation_metrics,
    check_replicas,
    market_metrics,
    mean,
    order_metrics,
)
from sim.runs import assembly, frames
from sim.runs.simulation import Simulation
from sim.scenario import RunSpec, resolved_dict
from sim.world.build import build_world

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: its tables as polars frames and its manifest (without table entries)."""

    run_id: str
    tables: dict[str, pl.DataFrame]
    manifest: dict[str, Any]

    def metric(self, name: str) -> float:
        """One metric's value (NaN when absent)."""
        rows = self.tables["metrics"].filter(pl.col("metric") == name)
        return float(rows["value"][0]) if rows.height else float("nan")

    def metrics(self) -> dict[str, float]:
        """Every metric of the run by name."""
        frame = self.tables["metrics"]
        return dict(zip(frame["metric"].to_list(), frame["value"].to_list(), strict=True))


def compute_metrics(sim: Simulation) -> dict[str, float]:
    """Every metric this run can compute (perf.* excluded)."""
    stats = sim.net.close()
    orders = sim.records.orders
    executed = sum(1 for r in orders if r.status == "executed" and r.honest)
    values: dict[str, float] = {}
    values.update(
        market_metrics(
            sim.exchange,
            sim.initial,
            true_probs=sim.world.true_probs,
            outcomes=sim.world.outcomes,
            executed=executed,
        )
    )
    values.update(_aggregation(sim))
    budget = sim.scenario.traders.budget
    for kind in ("informed", "noise"):
        specs = [s for s in sim.world.traders if s.kind == kind]
        values[f"traders.{kind}_pnl"] = mean(
            account_value(sim.exchange, s.trader) - budget for s in specs
        )
    values.update(order_metrics(orders, delivered=stats.total_delivered()))
    for component in sim.components:
        values.update(component.metrics())
    ledgers = [sim.exchange.ledger] + [r.exchange.ledger for r in sim.replicas.values()]
    values["ledger.conservation_error"] = float(
        max(abs(ledger.conservation_error()) for ledger in ledgers)
    )
    values["ledger.payout_error"] = float(audit_payouts(sim))
    values["cost.crypto_ops"] = float(sim.meter.total_ops())  # before the replicas' replay
    replicas = check_replicas(
        [r for node, r in sorted(sim.replicas.items()) if node not in sim.faulty_replicas],
        [block for block, _ in sim.blocks],
        start=sim.start_state,
        final=sim.exchange,
        settlement_ok=sim.settlement_ok,
        batch_ok=sim.batch_ok,
    )
    values["ledger.replica_divergence"] = float(replicas.diverged)
    values["ledger.replica_lag_blocks"] = float(replicas.lag_blocks)
    caught = [s for node, s in sim.catch_up.caught_up if node not in sim.faulty_replicas]
    values["ledger.catch_up_s"] = mean(caught)
    values["ledger.catch_up_max_s"] = max(caught, default=math.nan)
    return values


def audit_payouts(sim: Simulation) -> int:
    """``ledger.payout_error``: the canonical ledger against balances rebuilt from the records."""
    start, final = sim.start_state.ledger, sim.exchange.ledger
    opening = {account: start.cash(account) for account in start.accounts()}
    found = [p for c in sim.components if (p := c.payouts()) is not None]
    assert len(found) <= 1, "two components settle markets"
    recomputed = recomputed_balances(
        opening, sim.records.orders, found[0] if found else PayoutRecords({})
    )
    return payout_error(recomputed, {a: final.cash(a) for a in final.accounts()})


def _aggregation(sim: Simulation) -> dict[str, float]:
    """The aggregation metrics, for a world that knows its prior and posteriors (not hand-made)."""
    world = sim.world
    if not world.posteriors:
        return {}
    markets = range(sim.scenario.market.count)
    history: list[list[tuple[float, tuple[float, ...]]]] = [
        [(0.0, sim.initial_prices[m])] for m in markets
    ]
    for point in sim.records.prices:
        history[point.market].append((point.t, point.prices))
    return aggregation_metrics(
        [sim.exchange.prices(m) for m in markets], world.posteriors, world.prior_mean(), history
    )


def _perf(sim: Simulation, wall_s: float) -> dict[str, float]:
    events = sim.env.processed
    return {
        "perf.events": float(events),
        "perf.messages": float(sim.net.stats.total_delivered()),
        "perf.wall_s": wall_s,
        "perf.events_per_s": events / wall_s if wall_s > 0 else float("nan"),
        "perf.peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "perf.crypto_cpu_s": sim.meter.cpu_s,
    }


def git_commit() -> str | None:
    """The repository's commit when veilcast runs from a git checkout, else None."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_version() -> str:
    """veilcast's installed version."""
    try:
        return metadata.version("veilcast")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def base_manifest(spec: RunSpec) -> dict[str, Any]:
    """The manifest fields known before a run starts."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "run_id": spec.run_id,
        "scenario": resolved_dict(spec.scenario),
        "point": spec.point,
        "seed": spec.seed,
        "world_seed": spec.world_seed,
        "replication": spec.replication,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build(spec: RunSpec) -> Simulation:
    """The simulation of one run: its world, and every component plugged in (see assembly)."""
    world = build_world(spec.scenario, spec.world_seed)
    sim = Simulation(spec.scenario, world, seed=spec.seed)
    for component in assembly.components(sim, spec.scenario, world):
        sim.plug(component)
    return sim


def execute(spec: RunSpec) -> RunResult:
    """Build, run and measure one run of ``spec``."""
    started = time.perf_counter()
    sim = build(spec)
    sim.run()
    values = compute_metrics(sim)
    frames = _frames(sim, spec.run_id)
    wall_s = time.perf_counter() - started
    values.update(_perf(sim, wall_s))
    names = sorted(values)
    frames["metrics"] = tables.frame(
        "metrics", {"metric": names, "value": [values[n] for n in names]}, spec.run_id
    )
    manifest = base_manifest(spec) | {
        "status": "complete",
        "wall_s": wall_s,
        "events": sim.env.processed,
    }
    return RunResult(spec.run_id, frames, manifest)


def _frames(sim: Simulation, run_id: str) -> dict[str, pl.DataFrame]:
    built = {
        "orders": frames.orders_table(sim, run_id),
        "prices": frames.prices_table(sim, run_id),
        "markets": frames.markets_table(sim, run_id),
        "traders": frames.traders_table(sim, run_id),
        "wealth": frames.wealth_table(sim, run_id),
        "beliefs": frames.beliefs_table(sim, run_id),
        "messages": frames.messages_table(sim, run_id),
        "fl_rounds": tables.frame("fl_rounds", {}, run_id),
        "fl_roc": tables.frame("fl_roc", {}, run_id),
        "fl_clients": tables.frame("fl_clients", {}, run_id),
        "fl_client_epsilon": tables.frame("fl_client_epsilon", {}, run_id),
        "nodes": frames.nodes_table(sim, run_id),
        "edges": frames.edges_table(sim, run_id),
    }
    for component in sim.components:
        built.update(component.tables(run_id))
    return built

"""A synthetic results folder matching the simulator's schema, written with polars.

FALLBACK ONLY: ``conftest.py`` uses this when the real simulator (``from sim import run``) is
not importable yet, because the simulator is being written at the same time as the dashboard.
The lead can delete this module (and the fallback branch in ``conftest.py``) once ``sim.run``
exists. Every number is drawn from a caller-supplied seed, so the folder is the same each time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

KINDS = ("informed", "noise", "frontrunner")
MESSAGE_KINDS = ("order", "block", "vote", "fetch")


def _metrics(run_id: str, order_flow: str, rng: np.random.Generator) -> pl.DataFrame:
    """All metric names of the schema; leakage falls when order flow is private."""
    private = order_flow != "transparent"
    leak = 0.05 if private else 0.3
    values: dict[str, float] = {
        "market.brier": 0.18 + (0.02 if private else 0.0) + rng.normal(0, 0.005),
        "market.abs_error": 0.2 + rng.normal(0, 0.01),
        "market.maker_loss": 40 + rng.normal(0, 3),
        "market.maker_loss_bound": 69.3,
        "market.orders_executed": float(rng.integers(50, 60)),
        "traders.informed_pnl": 30 + rng.normal(0, 5),
        "traders.noise_pnl": -25 + rng.normal(0, 5),
        "traders.forecaster_pnl": float("nan"),
        "mev.extracted": (1.0 if private else 12.0) + rng.normal(0, 0.5),
        "mev.victim_loss": (0.8 if private else 10.0) + rng.normal(0, 0.5),
        "privacy.direction_inference_acc": 0.5 + leak / 2 + rng.normal(0, 0.01),
        "privacy.direction_inference_advantage": leak + rng.normal(0, 0.01),
        "privacy.exposure_s": (0.0 if private else 2.5) + abs(rng.normal(0, 0.1)),
        "privacy.early_decrypt_fraction": 0.0 if private else float("nan"),
        "privacy.anonymity_set": 12.0 if private else 1.0,
        "privacy.sender_precision": float("nan"),
        "privacy.sender_recall": float("nan"),
        "privacy.propagation_delay_s": 0.4 + rng.normal(0, 0.02),
        "privacy.signal_mi_bits": leak / 2 + abs(rng.normal(0, 0.01)),
        "cost.order_latency_s": (32.0 if private else 2.0) + rng.normal(0, 0.5),
        "cost.messages_per_order": 14 + rng.normal(0, 1),
        "cost.crypto_ops": 120.0 if private else 0.0,
        "fl.model_brier": 0.2 + rng.normal(0, 0.005),
        "fl.centralized_brier": 0.19 + rng.normal(0, 0.005),
        "fl.market_brier": 0.18 + rng.normal(0, 0.005),
        "fl.dp_epsilon": 3.0,
        "fl.mia_auc": 0.55 + rng.normal(0, 0.01),
        "fl.mia_advantage": 0.1 + rng.normal(0, 0.01),
        "fl.reconstruction_rate": 0.0,
        "settlement.correct_fraction": 1.0,
        "settlement.finalized_fraction": 1.0,
        "settlement.latency_s": 45 + rng.normal(0, 3),
        "settlement.messages": 400.0,
        "ledger.conservation_error": 0.0,
        "ledger.replica_divergence": 0.0,
        "perf.events": 5000.0,
        "perf.messages": 3000.0,
        "perf.wall_s": 1.2,
        "perf.events_per_s": 4100.0,
        "perf.peak_rss_mb": 150.0,
        "perf.crypto_cpu_s": 0.1,
    }
    return pl.DataFrame(
        {"run_id": run_id, "metric": list(values), "value": [float(v) for v in values.values()]}
    )


def _network(run_id: str, rng: np.random.Generator, n: int = 12) -> tuple[pl.DataFrame, ...]:
    """A ring with chords; a few reporters, traders and spies."""
    src = list(range(n)) + list(range(0, n, 3))
    dst = [(i + 1) % n for i in range(n)] + [(i + n // 2) % n for i in range(0, n, 3)]
    edges = pl.DataFrame(
        {"run_id": run_id, "src": src, "dst": dst, "latency_s": rng.lognormal(-3, 0.5, len(src))}
    )
    degree = np.bincount(src + dst, minlength=n)
    roles = ["reporter,trader" if i % 4 == 0 else "trader" if i % 2 else "" for i in range(n)]
    nodes = pl.DataFrame(
        {
            "run_id": run_id,
            "node": range(n),
            "roles": roles,
            "degree": degree,
            "spy": [i in (5, 9) for i in range(n)],
        }
    )
    messages = pl.DataFrame(
        {
            "run_id": run_id,
            "kind": list(MESSAGE_KINDS),
            "sent": [400, 120, 60, 30],
            "delivered": [396, 120, 58, 30],
            "lost": [4, 0, 2, 0],
            "bytes": [102400, 61440, 7680, 3840],
        }
    )
    return nodes, edges, messages


def _prices(run_id: str, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two binary markets whose prices drift to the truth, and their final state."""
    rows = []
    for m, p in enumerate((0.7, 0.35)):
        price = 0.5
        for block in range(40):
            price += 0.15 * (p - price) + rng.normal(0, 0.01)
            for o, q in enumerate((price, 1 - price)):
                rows.append((run_id, block * 30.0, block, m, o, q, p if o == 0 else 1 - p))
    cols = ["run_id", "t", "block", "market", "outcome", "price", "true_prob"]
    markets = pl.DataFrame(
        {
            "run_id": run_id,
            "market": [0, 0, 1, 1],
            "outcome": [0, 1, 0, 1],
            "true_prob": [0.7, 0.3, 0.35, 0.65],
            "won": [True, False, False, True],
            "last_price": [0.68, 0.32, 0.37, 0.63],
        }
    )
    return pl.DataFrame(rows, schema=cols, orient="row"), markets


def _orders(run_id: str, private: bool, rng: np.random.Generator, n: int = 60) -> pl.DataFrame:
    """Orders: seen in plaintext soon after submission only when the order flow is public."""
    t_submit = np.sort(rng.uniform(0, 1170, n))
    kind = [KINDS[i % 3] if i % 5 else "noise" for i in range(n)]
    done = (rng.random(n) > 0.1).tolist()
    delay = rng.uniform(25, 35, n) if private else rng.uniform(1, 3, n)
    seen = [None] * n if private else (t_submit + rng.uniform(0.05, 0.5, n)).tolist()

    def when(values: Any) -> list[Any]:
        return [v if e else None for v, e in zip(values, done, strict=True)]

    return pl.DataFrame(
        {
            "run_id": run_id,
            "order_id": range(n),
            "trader": rng.integers(0, 8, n),
            "kind": kind,
            "node": rng.integers(0, 12, n),
            "market": rng.integers(0, 2, n),
            "outcome": rng.integers(0, 2, n),
            "shares": rng.normal(0, 8, n),
            "limit_price": rng.uniform(0.4, 0.9, n),
            "t_submit": t_submit,
            "status": ["executed" if e else "rejected" for e in done],
            "reason": [None if e else "limit" for e in done],
            "t_executed": when((t_submit + delay).tolist()),
            "price": when(rng.uniform(0.3, 0.7, n).tolist()),
            "cost": when(rng.normal(0, 4, n).tolist()),
            "block": when([int(t // 30) for t in t_submit]),
            "mode": "commit_reveal" if private else "transparent",
            "first_seen_by": [None if private else 5] * n,
            "t_first_seen": seen,
            "batch_id": [int(t // 30) if private else None for t in t_submit],
            "frontrun": [k == "frontrunner" and not private for k in kind],
            "wire_bytes": 256 if private else 32,
        },
        schema_overrides={
            "first_seen_by": pl.Int64,
            "t_first_seen": pl.Float64,
            "batch_id": pl.Int64,
            "t_executed": pl.Float64,
            "price": pl.Float64,
            "cost": pl.Float64,
            "block": pl.Int64,
        },
    )


def _traders(run_id: str, rng: np.random.Generator) -> pl.DataFrame:
    """Eight traders of three kinds."""
    kinds = ["informed", "informed", "noise", "noise", "noise", "frontrunner", "informed", "noise"]
    return pl.DataFrame(
        {
            "run_id": run_id,
            "trader": range(8),
            "node": [1, 3, 5, 7, 9, 11, 0, 4],
            "kind": kinds,
            "budget": 1000.0,
            "final_value": 1000.0 + rng.normal(0, 20, 8),
            "pnl": rng.normal(0, 20, 8),
            "orders": rng.integers(3, 12, 8),
        }
    )


def _settlement(run_id: str) -> pl.DataFrame:
    """Two markets, two BFT rounds each; the first round of market 1 is disputed."""
    return pl.DataFrame(
        {
            "run_id": run_id,
            "market": [0, 0, 1, 1],
            "round": [0, 1, 0, 1],
            "protocol": "bft",
            "leader": [2, 6, 3, 7],
            "outcome": [None, 0, None, 1],
            "true_outcome": [0, 0, 1, 1],
            "votes": [json.dumps(v) for v in ([3, 2], [5, 0], [2, 3], [0, 6])],
            "rejected_votes": [0, 0, 1, 0],
            "disputes": [0, 0, 1, 0],
            "bonds_moved": [0.0, 0.0, 750.0, 0.0],
            "t_final": [None, 10830.0, None, 10890.0],
            "finalized": [False, True, False, True],
            "correct": [False, True, False, True],
            "certificate_size": [0, 5, 0, 6],
        },
        schema_overrides={"outcome": pl.Int64, "t_final": pl.Float64},
    )


def _learning(run_id: str, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Six federated rounds (one aborted) and a membership-inference ROC curve."""
    rounds = 6
    fl_rounds = pl.DataFrame(
        {
            "run_id": run_id,
            "round": range(rounds),
            "status": ["completed", "completed", "aborted", "completed", "completed", "completed"],
            "reason": [None, None, "too few survivors", None, None, None],
            "t_start": [60.0 * r for r in range(rounds)],
            "t_end": [60.0 * r + 40 for r in range(rounds)],
            "sampled": 20,
            "survivors": [18, 17, 4, 19, 18, 18],
            "loss": np.linspace(0.69, 0.5, rounds) + rng.normal(0, 0.005, rounds),
            "brier": np.linspace(0.25, 0.2, rounds) + rng.normal(0, 0.002, rounds),
            "epsilon": np.linspace(0.5, 3.0, rounds),
        },
        schema_overrides={"reason": pl.String},
    )
    fpr = np.linspace(0, 1, 11)
    roc = pl.DataFrame({"run_id": run_id, "fpr": fpr, "tpr": np.sqrt(fpr)})
    return fl_rounds, roc


def _scenario(name: str, seed: int, order_flow: str, sweep: dict[str, list[Any]]) -> dict[str, Any]:
    """A resolved scenario dict with the sections the manifest carries."""
    return {
        "name": name,
        "seed": seed,
        "duration_s": 1200.0,
        "replications": 2,
        "network": {"nodes": 12, "topology": "random_regular", "degree": 3},
        "market": {"mechanism": "lmsr", "count": 2, "outcomes": 2, "liquidity_b": 50.0},
        "traders": {"informed": 3, "noise": 4},
        "privacy": {"order_flow": order_flow},
        "adversary": {"spy_fraction": 0.2, "frontrunner": True},
        "settlement": {"protocol": "bft", "reporters": 5},
        "forecaster": {"enabled": True},
        "sweep": sweep,
    }


def _manifest(
    run_id: str, scenario: dict[str, Any], replication: int, tables: dict[str, Any]
) -> dict[str, Any]:
    """A complete run's manifest with every key of schema version 1."""
    seed = int(scenario["seed"])
    order_flow = scenario["privacy"]["order_flow"]
    return {
        "schema_version": 1,
        "status": "complete",
        "run_id": run_id,
        "scenario": scenario,
        "point": {"privacy.order_flow": order_flow},
        "seed": seed + replication,
        "world_seed": seed * 100 + replication,
        "replication": replication,
        "package_version": "0.1.0",
        "git_commit": None,
        "python": "3.11",
        "wall_s": 1.2,
        "events": 5000,
        "created": f"2025-01-01T00:00:{10 * replication + len(order_flow):02d}+00:00",
        "tables": tables,
    }


def write_run(
    root: Path,
    name: str,
    *,
    seed: int,
    order_flow: str,
    replication: int,
    sweep: dict[str, list[Any]],
) -> Path:
    """Write one complete run ``root/name/<run-id>/`` and return its folder."""
    rng = np.random.default_rng([seed, replication, len(order_flow)])
    run_id = f"{order_flow}-r{replication}-{seed:010d}"
    run_dir = root / name / run_id
    (run_dir / "tables").mkdir(parents=True)
    private = order_flow != "transparent"
    prices, markets = _prices(run_id, rng)
    nodes, edges, messages = _network(run_id, rng)
    fl_rounds, fl_roc = _learning(run_id, rng)
    frames = {
        "metrics": _metrics(run_id, order_flow, rng),
        "orders": _orders(run_id, private, rng),
        "prices": prices,
        "markets": markets,
        "traders": _traders(run_id, rng),
        "messages": messages,
        "settlement": _settlement(run_id),
        "fl_rounds": fl_rounds,
        "fl_roc": fl_roc,
        "nodes": nodes,
        "edges": edges,
    }
    tables = {}
    for table, frame in frames.items():
        frame.write_parquet(run_dir / "tables" / f"{table}.parquet")
        columns = {c: str(d) for c, d in frame.schema.items()}
        tables[table] = {
            "path": f"tables/{table}.parquet",
            "rows": frame.height,
            "columns": columns,
        }
    manifest = _manifest(run_id, _scenario(name, seed, order_flow, sweep), replication, tables)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return run_dir


def write_sweep(
    root: Path, name: str, *, seed: int, flows: tuple[str, ...], replications: int
) -> list[Path]:
    """A sweep over ``privacy.order_flow`` with several replications, plus its ``sweep.json``."""
    sweep = {"privacy.order_flow": list(flows)}
    runs = [
        write_run(root, name, seed=seed, order_flow=flow, replication=rep, sweep=sweep)
        for flow in flows
        for rep in range(replications)
    ]
    summary = {"scenario": name, "runs": [p.name for p in runs]}
    (root / name / "sweep.json").write_text(json.dumps(summary), encoding="utf-8")
    return runs

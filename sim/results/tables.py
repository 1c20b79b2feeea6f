"""The result tables of SPEC section 3: fixed schemas, built from a finished simulation.

Every table has ``run_id`` on every row; empty tables keep their schema, so a reader never has
to guess a column's type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from market.types import MICRO
from sim.results.metrics import account_value
from sim.runs.simulation import Simulation

if TYPE_CHECKING:
    from sim.settlement.records import RoundRecord

F64, I64, STR, BOOL = pl.Float64, pl.Int64, pl.String, pl.Boolean

SCHEMAS: dict[str, dict[str, Any]] = {
    "metrics": {"run_id": STR, "metric": STR, "value": F64},
    "orders": {
        "run_id": STR,
        "order_id": I64,
        "trader": I64,
        "kind": STR,
        "node": I64,
        "market": I64,
        "outcome": I64,
        "shares": F64,
        "limit_price": F64,
        "t_submit": F64,
        "status": STR,
        "reason": STR,
        "t_executed": F64,
        "price": F64,
        "cost": F64,
        "block": I64,
        "mode": STR,
        "first_seen_by": I64,
        "t_first_seen": F64,
        "batch_id": I64,
        "frontrun": BOOL,
        "wire_bytes": I64,
    },
    "prices": {
        "run_id": STR,
        "t": F64,
        "block": I64,
        "market": I64,
        "outcome": I64,
        "price": F64,
        "true_prob": F64,
    },
    "markets": {
        "run_id": STR,
        "market": I64,
        "outcome": I64,
        "true_prob": F64,
        "won": BOOL,
        "last_price": F64,
    },
    "traders": {
        "run_id": STR,
        "trader": I64,
        "node": I64,
        "kind": STR,
        "budget": F64,
        "final_value": F64,
        "pnl": F64,
        "orders": I64,
    },
    "messages": {
        "run_id": STR,
        "kind": STR,
        "sent": I64,
        "delivered": I64,
        "lost": I64,
        "bytes": I64,
    },
    "settlement": {
        "run_id": STR,
        "market": I64,
        "round": I64,
        "protocol": STR,
        "step": STR,
        "leader": I64,
        "proposed": I64,
        "outcome": I64,
        "true_outcome": I64,
        "votes": STR,
        "rejected_votes": I64,
        "rejected_non_reporter": I64,
        "rejected_wrong_market": I64,
        "rejected_replayed_round": I64,
        "rejected_bad_signature": I64,
        "refused_settlements": I64,
        "disputes": I64,
        "bonds_moved": F64,
        "bond_slashed": F64,
        "t_start": F64,
        "t_final": F64,
        "finalized": BOOL,
        "correct": BOOL,
        "certificate_size": I64,
    },
    "fl_rounds": {
        "run_id": STR,
        "round": I64,
        "status": STR,
        "reason": STR,
        "t_start": F64,
        "t_end": F64,
        "sampled": I64,
        "survivors": I64,
        "loss": F64,
        "brier": F64,
        "epsilon": F64,
    },
    "fl_roc": {"run_id": STR, "fpr": F64, "tpr": F64},
    "nodes": {"run_id": STR, "node": I64, "roles": STR, "degree": I64, "spy": BOOL},
    "edges": {"run_id": STR, "src": I64, "dst": I64, "latency_s": F64},
}


def frame(name: str, rows: dict[str, list[Any]], run_id: str) -> pl.DataFrame:
    """A table from column lists, with ``run_id`` added and the schema enforced."""
    schema = SCHEMAS[name]
    length = len(next(iter(rows.values()))) if rows else 0
    columns = {name: [] for name in schema} | {"run_id": [run_id] * length, **rows}
    return pl.DataFrame(columns, schema=schema, strict=False)


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _none_if(value: int, missing: int = -1) -> int | None:
    return None if value == missing else value


def orders_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """One row per order submitted."""
    recs = sim.records.orders
    mode = sim.scenario.privacy.order_flow
    return frame(
        "orders",
        {
            "order_id": [r.order_id for r in recs],
            "trader": [r.order.trader for r in recs],
            "kind": [r.kind for r in recs],
            "node": [r.node for r in recs],
            "market": [r.order.market for r in recs],
            "outcome": [r.order.outcome for r in recs],
            "shares": [r.order.shares / MICRO for r in recs],
            "limit_price": [r.order.limit_price / MICRO for r in recs],
            "t_submit": [r.t_submit for r in recs],
            "status": [r.status for r in recs],
            "reason": [r.reason for r in recs],
            "t_executed": [_nan_to_none(r.t_executed) for r in recs],
            "price": [_nan_to_none(r.price) for r in recs],
            "cost": [_nan_to_none(r.cost) for r in recs],
            "block": [_none_if(r.block) for r in recs],
            "mode": [mode] * len(recs),
            "first_seen_by": [_none_if(r.first_seen_by) for r in recs],
            "t_first_seen": [_nan_to_none(r.t_first_seen) for r in recs],
            "batch_id": [_none_if(r.batch_id) for r in recs],
            "frontrun": [r.frontrun for r in recs],
            "wire_bytes": [r.wire_bytes for r in recs],
        },
        run_id,
    )


def prices_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Prices of every outcome after each block that traded the market (and at time 0)."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("t", "block", "market", "outcome", "price", "true_prob")
    }
    initial = [(0.0, -1, m, p) for m, p in enumerate(sim.initial_prices)]
    points = initial + [(p.t, p.block, p.market, p.prices) for p in sim.records.prices]
    for t, block, market, prices in points:
        for outcome, price in enumerate(prices):
            rows["t"].append(t)
            rows["block"].append(block)
            rows["market"].append(market)
            rows["outcome"].append(outcome)
            rows["price"].append(price)
            rows["true_prob"].append(sim.world.true_probs[market][outcome])
    return frame("prices", rows, run_id)


def markets_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """True probability, realised outcome and last price of every outcome."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("market", "outcome", "true_prob", "won", "last_price")
    }
    for market, probs in enumerate(sim.world.true_probs):
        for outcome, prob in enumerate(probs):
            rows["market"].append(market)
            rows["outcome"].append(outcome)
            rows["true_prob"].append(prob)
            rows["won"].append(sim.world.outcomes[market] == outcome)
            rows["last_price"].append(sim.exchange.prices(market)[outcome])
    return frame("markets", rows, run_id)


def traders_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Each trader's final value and profit."""
    budget = sim.scenario.traders.budget
    counts: dict[int, int] = {}
    for record in sim.records.orders:
        counts[record.order.trader] = counts.get(record.order.trader, 0) + 1
    specs = sim.world.traders
    values = [account_value(sim.exchange, s.trader) for s in specs]
    return frame(
        "traders",
        {
            "trader": [s.trader for s in specs],
            "node": [s.node for s in specs],
            "kind": [s.kind for s in specs],
            "budget": [budget] * len(specs),
            "final_value": values,
            "pnl": [v - budget for v in values],
            "orders": [counts.get(s.trader, 0) for s in specs],
        },
        run_id,
    )


def messages_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Messages per kind (a summary: individual messages are far too many to keep)."""
    stats = sim.net.stats
    kinds = stats.kinds()
    return frame(
        "messages",
        {
            "kind": kinds,
            "sent": [stats.sent[k] for k in kinds],
            "delivered": [stats.delivered[k] for k in kinds],
            "lost": [stats.lost[k] for k in kinds],
            "bytes": [stats.bytes[k] for k in kinds],
        },
        run_id,
    )


def settlement_table(records: Sequence[RoundRecord], *, protocol: str, run_id: str) -> pl.DataFrame:
    """One row per market and settlement round (votes) or request (optimistic proposals).

    ``outcome``, ``t_final`` and ``correct`` are null on rows that made nothing final;
    ``bond_slashed`` is null where no bond was lost.
    """
    recs = records
    reasons = ("non_reporter", "wrong_market", "replayed_round", "bad_signature")
    columns: dict[str, list[Any]] = {
        "market": [r.market for r in recs],
        "round": [r.round for r in recs],
        "protocol": [protocol] * len(recs),
        "step": [r.step for r in recs],
        "leader": [_none_if(r.leader) for r in recs],
        "proposed": [_none_if(r.proposed) for r in recs],
        "outcome": [_none_if(r.outcome) for r in recs],
        "true_outcome": [r.true_outcome for r in recs],
        "votes": [json.dumps(r.votes) for r in recs],
        "rejected_votes": [sum(r.rejected.values()) for r in recs],
        **{f"rejected_{k}": [r.rejected[k] for r in recs] for k in reasons},  # type: ignore[index]
        "refused_settlements": [r.refused for r in recs],
        "disputes": [r.disputes for r in recs],
        "bonds_moved": [r.bonds_moved / MICRO for r in recs],
        "bond_slashed": [None if r.bond_slashed < 0 else r.bond_slashed / MICRO for r in recs],
        "t_start": [_nan_to_none(r.t_start) for r in recs],
        "t_final": [_nan_to_none(r.t_final) for r in recs],
        "finalized": [r.finalized for r in recs],
        "correct": [r.outcome == r.true_outcome if r.finalized else None for r in recs],
        "certificate_size": [r.certificate_size for r in recs],
    }
    return frame("settlement", columns, run_id)


def nodes_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Every node with its roles and degree."""
    roles: dict[int, set[str]] = {n: set() for n in range(sim.world.topology.nodes)}
    for spec in sim.world.traders:
        roles[spec.node].add("trader")
    for node in sim.world.reporters:
        roles[node].update({"reporter", "sequencer"})
    for node in sim.world.spies:
        roles[node].add("spy")
    nodes = sorted(roles)
    return frame(
        "nodes",
        {
            "node": nodes,
            "roles": [",".join(sorted(roles[n])) for n in nodes],
            "degree": [sim.world.topology.degree(n) for n in nodes],
            "spy": [n in sim.world.spies for n in nodes],
        },
        run_id,
    )


def edges_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Every link once with its latency."""
    edges = sim.world.topology.edges()
    return frame(
        "edges",
        {
            "src": [u for u, _, _ in edges],
            "dst": [v for _, v, _ in edges],
            "latency_s": [lat for _, _, lat in edges],
        },
        run_id,
    )

"""The tables of a finished simulation: orders, prices, markets, traders, messages, the graph.

Schemas live in :mod:`sim.results.tables`; components add their own tables (settlement rounds,
the forecaster's rounds) through ``Component.tables``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from market.types import MICRO
from sim.results.metrics import account_value
from sim.results.tables import frame, nan_to_none, none_if
from sim.runs.simulation import Simulation


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
            "t_executed": [nan_to_none(r.t_executed) for r in recs],
            "price": [nan_to_none(r.price) for r in recs],
            "cost": [nan_to_none(r.cost) for r in recs],
            "block": [none_if(r.block) for r in recs],
            "mode": [mode] * len(recs),
            "first_seen_by": [none_if(r.first_seen_by) for r in recs],
            "t_first_seen": [nan_to_none(r.t_first_seen) for r in recs],
            "batch_id": [none_if(r.batch_id) for r in recs],
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

"""The tables of a finished simulation: orders, prices, markets, traders, messages, the graph.

Schemas live in :mod:`sim.results.tables`; components add their own tables (settlement rounds,
the forecaster's rounds) through ``Component.tables``.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from market.types import MICRO
from sim.results.metrics import account_value
from sim.results.tables import frame, nan_to_none, none_if
from sim.runs.simulation import Simulation
from sim.world.build import TraderSpec


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
    """True probability, realised outcome, last price, prior and full-information posterior."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("market", "outcome", "true_prob", "won", "last_price", "prior", "posterior")
    }
    world = sim.world
    prior = world.prior_mean() if world.prior else ()
    for market, probs in enumerate(world.true_probs):
        for outcome, prob in enumerate(probs):
            rows["market"].append(market)
            rows["outcome"].append(outcome)
            rows["true_prob"].append(prob)
            rows["won"].append(world.outcomes[market] == outcome)
            rows["last_price"].append(sim.exchange.prices(market)[outcome])
            rows["prior"].append(prior[outcome] if prior else None)
            rows["posterior"].append(
                world.posteriors[market][outcome] if world.posteriors else None
            )
    return frame("markets", rows, run_id)


def beliefs_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Each informed trader's private evidence and own belief, per market outcome.

    ``draws`` counts the trader's draws that fell on the outcome; ``belief`` is its posterior
    mean from the prior and those draws (before any lean toward the price). With the ``wealth``
    table this gives the wealth-weighted mean belief over time.
    """
    rows: dict[str, list[Any]] = {k: [] for k in ("trader", "market", "outcome", "draws", "belief")}
    for spec in sim.world.traders:
        for market, (counts, belief) in enumerate(zip(spec.evidence, spec.beliefs, strict=True)):
            for outcome, (count, prob) in enumerate(zip(counts, belief, strict=True)):
                for key, value in zip(
                    rows, (spec.trader, market, outcome, count, prob), strict=True
                ):
                    rows[key].append(value)
    return frame("beliefs", rows, run_id)


WEALTH_SAMPLES = 60
"""Points of the ``wealth`` table per trader between the start and the markets' close."""


def wealth_table(sim: Simulation, run_id: str) -> pl.DataFrame:
    """Each trader's wealth over time: cash plus positions valued at the prices of the moment.

    Replays users' executed trades at ``WEALTH_SAMPLES`` evenly spaced times from 0 to
    ``market.close_s``, then adds one row at the horizon with the ledger's own final value
    (after settlement payouts, and commit-reveal deposits forfeited, which the replay leaves out).
    """
    specs = sim.world.traders
    close = sim.scenario.market.close_s
    replay = _Replay(sim)
    rows: dict[str, list[Any]] = {k: [] for k in ("t", "trader", "kind", "cash", "wealth")}
    for t in (close * k / (WEALTH_SAMPLES - 1) for k in range(WEALTH_SAMPLES)):
        replay.advance(t)
        for spec in specs:
            _wealth_row(rows, t, spec, replay.cash[spec.trader], replay.wealth(spec.trader))
    for spec in specs:
        cash = sim.exchange.ledger.cash(spec.trader) / MICRO
        final = account_value(sim.exchange, spec.trader)
        _wealth_row(rows, sim.scenario.duration_s, spec, cash, final)
    return frame("wealth", rows, run_id)


class _Replay:
    """Traders' cash and positions, and the markets' prices, replayed up to a time."""

    def __init__(self, sim: Simulation) -> None:
        budget = sim.scenario.traders.budget
        self.cash = {s.trader: budget for s in sim.world.traders}
        self.held: dict[int, dict[tuple[int, int], float]] = {t: {} for t in self.cash}
        self.prices = list(sim.initial_prices)
        fills = [r for r in sim.records.orders if r.status == "executed" and r.honest]
        self._fills = sorted(fills, key=lambda r: (r.t_executed, r.order_id))
        self._points = sim.records.prices
        self._next_fill = self._next_point = 0

    def advance(self, t: float) -> None:
        """Apply every price point and trade up to and including ``t``."""
        while self._next_point < len(self._points) and self._points[self._next_point].t <= t:
            point = self._points[self._next_point]
            self.prices[point.market] = point.prices
            self._next_point += 1
        while self._next_fill < len(self._fills) and self._fills[self._next_fill].t_executed <= t:
            record = self._fills[self._next_fill]
            order = record.order
            if order.trader in self.cash:  # the forecaster's account is not a trader's
                self.cash[order.trader] -= record.cost
                book = self.held[order.trader]
                key = (order.market, order.outcome)
                book[key] = book.get(key, 0.0) + order.shares / MICRO
            self._next_fill += 1

    def wealth(self, trader: int) -> float:
        """Cash plus positions at the current prices."""
        book = self.held[trader]
        value = math.fsum(n * self.prices[m][o] for (m, o), n in book.items())
        return self.cash[trader] + value


def _wealth_row(
    rows: dict[str, list[Any]], t: float, spec: TraderSpec, cash: float, wealth: float
) -> None:
    for key, value in (("t", t), ("trader", spec.trader), ("kind", spec.kind), ("cash", cash)):
        rows[key].append(value)
    rows["wealth"].append(wealth)


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

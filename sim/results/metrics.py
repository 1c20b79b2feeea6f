"""The metrics of SPEC section 4 that a run computes, as pure functions of what it recorded.

A metric that does not apply (no executed order, no finalized market) is NaN, never 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from market.accounts import maker_account
from market.exchange import Exchange, maker_funding
from market.types import MICRO
from sim.chain.blocks import BatchCheck, Block, Replica, SettlementCheck, apply_block
from sim.results.records import OrderRecord, SettlementRecord

NAN = math.nan


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean, NaN for no values (a metric that does not apply)."""
    items = list(values)
    return math.fsum(items) / len(items) if items else NAN


def brier(prices: Sequence[float], outcome: int) -> float:
    """Σᵢ (pᵢ − oᵢ)² for one market whose realised outcome is ``outcome``."""
    return math.fsum((p - (1.0 if i == outcome else 0.0)) ** 2 for i, p in enumerate(prices))


def market_metrics(
    exchange: Exchange,
    initial: Exchange,
    *,
    true_probs: Sequence[Sequence[float]],
    outcomes: Sequence[int],
    executed: int,
) -> dict[str, float]:
    """Price accuracy and the market makers' loss against their bound."""
    prices = [exchange.prices(m) for m in range(len(outcomes))]
    gaps = [
        abs(p - t)
        for ps, ts in zip(prices, true_probs, strict=True)
        for p, t in zip(ps, ts, strict=True)
    ]
    loss = 0.0
    for market in range(len(outcomes)):
        funding = maker_funding(initial.makers[market])
        cash = exchange.ledger.cash(maker_account(market))
        loss += (funding - cash) / MICRO + open_liability(exchange, market, prices[market])
    return {
        "market.brier": mean(brier(p, o) for p, o in zip(prices, outcomes, strict=True)),
        "market.abs_error": mean(gaps),
        "market.maker_loss": loss,
        "market.maker_loss_bound": math.fsum(m.loss_bound() for m in initial.makers),
        "market.orders_executed": float(executed),
    }


CONVERGENCE_BAND = 0.05
"""``market.price_convergence_s``: a price has converged once every outcome's price stays within
this (absolute, five cents) of its final value."""


def aggregation_metrics(
    prices: Sequence[Sequence[float]],
    posteriors: Sequence[Sequence[float]],
    prior: Sequence[float],
    history: Sequence[Sequence[tuple[float, Sequence[float]]]],
) -> dict[str, float]:
    """How far the last prices got from the prior toward the full-information posterior.

    Args:
        prices: each market's last prices.
        posteriors: each market's full-information posterior mean (the prior updated on every
            informed trader's evidence, :func:`sim.world.information.pooled`).
        prior: the prior mean, the same for every market (where prices start).
        history: each market's ``(t, prices)`` points in time order, the first at t = 0.

    ``market.aggregation_efficiency`` is pooled over markets, ``1 − Σ|price − posterior| /
    Σ|prior − posterior|`` (sums over every outcome of every market), so a market whose
    posterior sits near its prior cannot blow it up; NaN when there is no evidence to aggregate
    (every posterior equals the prior). 1 means the prices reached the posterior, 0 that they
    are as far from it as the prior was, below 0 further.
    """
    gaps = [
        abs(p - q)
        for ps, qs in zip(prices, posteriors, strict=True)
        for p, q in zip(ps, qs, strict=True)
    ]
    spread = math.fsum(abs(a - q) for qs in posteriors for a, q in zip(prior, qs, strict=True))
    return {
        "market.full_info_error": mean(gaps),
        "market.aggregation_efficiency": 1.0 - math.fsum(gaps) / spread if spread > 0 else NAN,
        "market.price_convergence_s": mean(convergence_time(points) for points in history),
    }


def convergence_time(
    points: Sequence[tuple[float, Sequence[float]]], band: float = CONVERGENCE_BAND
) -> float:
    """When a price series entered, for good, the band around its final value.

    The time of the first point after which no point has any outcome's price more than
    ``band`` from the last point's (0 when the series never left the band; NaN with no points).
    """
    if not points:
        return NAN
    final = points[-1][1]
    converged = points[0][0]
    for i, (_, ps) in enumerate(points):
        if max(abs(p - f) for p, f in zip(ps, final, strict=True)) > band:
            converged = points[i + 1][0]
    return converged


def open_liability(exchange: Exchange, market: int, prices: Sequence[float]) -> float:
    """What an unsettled market's maker owes holders, valued at current prices (0 once settled)."""
    if exchange.ledger.is_settled(market):
        return 0.0
    ledger = exchange.ledger
    return math.fsum(
        ledger.position(account, market, outcome) / MICRO * price
        for account in ledger.accounts()
        for outcome, price in enumerate(prices)
    )


def account_value(exchange: Exchange, account: int) -> float:
    """Cash plus open positions valued at current prices, in units."""
    ledger = exchange.ledger
    value = ledger.cash(account) / MICRO
    for market in range(len(exchange.makers)):
        if not ledger.is_settled(market):
            prices = exchange.prices(market)
            value += math.fsum(
                ledger.position(account, market, o) / MICRO * p for o, p in enumerate(prices)
            )
    return value


def order_metrics(orders: Sequence[OrderRecord], *, delivered: int) -> dict[str, float]:
    """Latency, exposure, anonymity and message cost over users' executed orders.

    The adversary's own orders are left out everywhere: they are neither users' latency nor
    anyone's anonymity (the adversary knows its own orders), so ``privacy.anonymity_set``
    counts the users' orders an order cleared with. ``cost.messages_per_order`` divides every
    delivered message of the run (the adversary's included: a cost users bear) by the users'
    executed orders.
    """
    done = [r for r in orders if r.status == "executed" and r.honest]
    per_block = Counter(r.block for r in done)
    seen = [r.t_executed - r.t_first_seen for r in done if not math.isnan(r.t_first_seen)]
    return {
        "cost.order_latency_s": mean(r.t_executed - r.t_submit for r in done),
        "cost.messages_per_order": delivered / len(done) if done else NAN,
        "privacy.exposure_s": mean(seen),
        "privacy.propagation_delay_s": mean(r.t_sequencer - r.t_submit for r in done),
        "privacy.anonymity_set": mean(per_block[r.block] for r in done),
    }


def settlement_metrics(
    records: Sequence[SettlementRecord], *, resolve_s: float, messages: int
) -> dict[str, float]:
    """How many markets settled, correctly, how fast, at what message cost.

    ``settlement.messages`` counts settlement messages as sent, hop by hop (a flood's every
    forward, a direct send's every hop); ``settlement.messages_per_market`` divides them by the
    markets (one bundle carries what a reporter sends for every market at one instant).
    """
    final = [r for r in records if not math.isnan(r.t_final)]
    return {
        "settlement.correct_fraction": mean(float(r.outcome == r.true_outcome) for r in records),
        "settlement.finalized_fraction": mean(float(r in final) for r in records),
        "settlement.latency_s": mean(r.t_final - resolve_s for r in final),
        "settlement.messages": float(messages),
        "settlement.messages_per_market": messages / len(records) if records else NAN,
    }


def accountability_metrics(
    *, conflicting: int, evidence: int | None, slashed: int | None
) -> dict[str, float]:
    """Whether finality conflicted, and what the chain did to those who equivocated.

    ``settlement.conflicting_certificates``: markets for which valid certificates (``q``
    precommits, Buchman, Kwon & Milosevic 2018) for two different outcomes exist anywhere in
    the run, formed at an honest node or on chain: Tendermint's safety property is that this
    is 0 while fewer than ``2q − n`` reporters are Byzantine.
    ``settlement.equivocations_detected``: distinct ``(signer, market, round, step)`` pieces of
    evidence (two valid signatures of one signer on two values of one step, the paper's
    accountability) the chain took; ``settlement.slashed``: units the chain slashed for them.
    Both NaN where the protocol collects no evidence (``optimistic``).
    """
    return {
        "settlement.conflicting_certificates": float(conflicting),
        "settlement.equivocations_detected": NAN if evidence is None else float(evidence),
        "settlement.slashed": NAN if slashed is None else slashed / MICRO,
    }


@dataclass(frozen=True, slots=True)
class ReplicaCheck:
    """How the honest replicas stand against the canonical chain at the horizon.

    Attributes:
        diverged: replicas whose state differs from the canonical chain's at their *own*
            height (a replica that is only behind is not diverged).
        lag_blocks: how many blocks the worst of them is behind.
    """

    diverged: int
    lag_blocks: int


def check_replicas(
    replicas: Sequence[Replica],
    blocks: Sequence[Block],
    *,
    start: Exchange,
    final: Exchange,
    settlement_ok: SettlementCheck,
    batch_ok: BatchCheck | None,
) -> ReplicaCheck:
    """Compare every replica with the canonical chain replayed to that replica's height.

    The canonical state at a lower height is rebuilt from ``start`` by applying the same
    blocks with the same checks, only when some replica is behind (with none behind, the final
    state is the only one needed).
    """
    height = len(blocks)
    wanted = sorted({r.next_height for r in replicas})
    canonical: dict[int, bytes] = {}
    if height in wanted:
        canonical[height] = final.state_hash()
    state, applied = start.copy(), 0
    for target in (h for h in wanted if h < height):
        for block in blocks[applied:target]:
            apply_block(state, block, settlement_ok=settlement_ok, batch_ok=batch_ok)
        applied = target
        canonical[target] = state.state_hash()
    diverged = sum(r.exchange.state_hash() != canonical[r.next_height] for r in replicas)
    lag = max((height - r.next_height for r in replicas), default=0)
    return ReplicaCheck(diverged, lag)

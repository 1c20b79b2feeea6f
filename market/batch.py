"""Clear a batch of orders at one uniform price per outcome, independently of their order.

The threshold (encrypted mempool) mode decrypts a whole batch at once; nobody may profit from
being first in it, so the batch clears as a set. For one market, with ``S`` the orders still
eligible and ``δ`` their net trade per outcome:

1. the uniform price of outcome ``k`` is the average marginal price along the straight path
   from ``q`` to ``q + δ``: ``π_k = ∫₀¹ p_k(q + tδ) dt`` (composite 16-point Gauss–Legendre).
   By the gradient theorem ``Σ_k δ_k π_k = C(q + δ) − C(q)``: at these prices the orders
   together pay exactly what the net trade costs the maker;
2. each order pays ``ceil(shares·π_k)`` micro-units (in the maker's favour) plus its fee;
3. every order that breaks its limit, its trader's budget or its position is removed, all in
   the same round, and prices are recomputed, until a round removes nothing.

Ties are broken by content only (largest amount first, then the order key), and every sum runs
over integers or through :func:`math.fsum`, so the result depends on the set of orders, never on
their sequence. Identical duplicates count once; different orders sharing a key are all invalid.

*Quadrature guard.* If the quadrature underestimates the exact cost, every order pays the same
tiny extra ``c`` per share (a spread: buyers a little more, sellers a little less), chosen so
that the maker collects at least ``ceil(C(q + δ) − C(q))`` micro-units; its loss bound then
holds exactly as for sequential execution. ``c`` is zero unless the quadrature falls short.

*Budgets.* A trader's budget is its cash. Only what its orders consume (buys, and sells whose
fee exceeds their proceeds) counts, across every market of the call (markets clear in index
order); proceeds from sales do not fund buys in the same batch, so the fills can be booked in
a ledger in any order. A position bounds the sum of a trader's sales of that outcome.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from market.errors import InvalidTrade
from market.execute import (
    Rejection,
    RejectReason,
    exceeds_limit,
    fee_micro,
    is_well_formed,
    payment_micro,
)
from market.lmsr import LMSR, MarketMaker
from market.types import MICRO, Fill, Order

_LEGENDRE_POINTS = 16
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(_LEGENDRE_POINTS)
_GAUSS_01: tuple[tuple[float, float], ...] = tuple(
    (float(x + 1.0) / 2.0, float(w) / 2.0) for x, w in zip(_NODES, _WEIGHTS, strict=True)
)
"""Gauss–Legendre nodes and weights mapped to [0, 1]."""

_PANEL_SPAN = 2.0
"""Most a panel may move ``(δ_i − δ_j)/b``; 16 points are then accurate to about 1e-15."""

_MAX_PANELS = 64
"""Cap on panels for absurdly large trades; the quadrature guard covers what is left."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of :func:`clear_batch`.

    Attributes:
        makers: every market's maker after the batch (unchanged where nothing filled).
        fills: the orders that traded, sorted by order key.
        rejections: the orders that did not, sorted by order key.
        prices: the uniform price per outcome of each market where something filled.
    """

    makers: tuple[MarketMaker, ...]
    fills: tuple[Fill, ...]
    rejections: tuple[Rejection, ...]
    prices: dict[int, tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class _Cleared:
    """One market's share of a :class:`BatchResult`."""

    maker: MarketMaker
    fills: tuple[Fill, ...]
    rejections: tuple[Rejection, ...]
    prices: tuple[float, ...] | None


def _order_fields(order: Order) -> tuple[int, ...]:
    """Every field of an order, key first: a total order on distinct orders."""
    return (
        order.trader,
        order.nonce,
        order.market,
        order.outcome,
        order.shares,
        order.limit_price,
        order.priority_fee,
    )


def _liquidity_floor(maker: MarketMaker, deltas: Sequence[float]) -> float:
    """The smallest liquidity ``b`` on the path from ``q`` to ``q + δ``."""
    if isinstance(maker, LMSR):
        return maker.b
    total = sum(maker.q)
    return maker.alpha * min(total, total + sum(deltas))


def uniform_prices(maker: MarketMaker, deltas: Sequence[float]) -> tuple[float, ...]:
    """``π_k = ∫₀¹ p_k(q + tδ) dt`` for each outcome, by composite Gauss–Legendre quadrature.

    The path is cut into enough panels that each moves the log-odds by at most
    :data:`_PANEL_SPAN`, since the prices are smooth on the scale of the liquidity ``b``.
    Raises :class:`InvalidTrade` if ``q + δ`` is outside the maker's domain.
    """
    maker.apply(deltas)  # validates δ before any division by the liquidity
    spread = (max(deltas) - min(deltas)) / _liquidity_floor(maker, deltas)
    panels = min(_MAX_PANELS, max(1, math.ceil(spread / _PANEL_SPAN)))
    sums = [0.0] * len(maker.q)
    for panel in range(panels):
        for node, weight in _GAUSS_01:
            t = (panel + node) / panels
            for k, price in enumerate(maker.apply([t * d for d in deltas]).prices()):
                sums[k] += weight * price
    return tuple(total / panels for total in sums)


def _payments(
    orders: Sequence[Order], prices: Sequence[float], target: int
) -> dict[tuple[int, int], int]:
    """Micro-units each order pays (fee excluded), together at least ``target``.

    Each order pays ``ceil(shares·π_k + c·|shares|)``, with the spread ``c ≥ 0`` as small as
    makes the total reach ``target`` (zero unless the quadrature undercharges).
    """
    base = math.fsum(order.shares * prices[order.outcome] for order in orders)
    volume = sum(abs(order.shares) for order in orders)
    extra = max(0.0, (target - base) / volume)
    while True:
        pays = {
            order.key: math.ceil(order.shares * prices[order.outcome] + extra * abs(order.shares))
            for order in orders
        }
        shortfall = target - sum(pays.values())
        if shortfall <= 0:
            return pays
        extra += shortfall / volume


def _over_position(
    orders: Sequence[Order], *, market: int, held: Mapping[tuple[int, int, int], int]
) -> dict[tuple[int, int], RejectReason]:
    """Sales beyond the trader's position, removing the largest sale first until the rest fit."""
    sales: dict[tuple[int, int], list[Order]] = {}
    for order in orders:
        if order.shares < 0:
            sales.setdefault((order.trader, order.outcome), []).append(order)
    removed: dict[tuple[int, int], RejectReason] = {}
    for (trader, outcome), group in sorted(sales.items()):
        selling = -sum(order.shares for order in group)
        allowed = held.get((trader, market, outcome), 0)
        for order in sorted(group, key=lambda o: (o.shares, o.key)):
            if selling <= allowed:
                break
            removed[order.key] = "position"
            selling += order.shares
    return removed


def _violations(
    orders: Sequence[Order],
    pays: Mapping[tuple[int, int], int],
    *,
    fee_per_share: int,
    budget: Mapping[int, int],
) -> dict[tuple[int, int], RejectReason]:
    """Orders breaking their limit, then orders beyond their trader's budget (largest first)."""
    removed: dict[tuple[int, int], RejectReason] = {}
    spending: dict[int, list[tuple[int, Order]]] = {}
    for order in orders:
        if exceeds_limit(order, pays[order.key]):
            removed[order.key] = "limit"
            continue
        net = pays[order.key] + fee_micro(order.shares, fee_per_share)
        if net > 0:
            spending.setdefault(order.trader, []).append((net, order))
    for trader, items in sorted(spending.items()):
        spent = sum(net for net, _ in items)
        for net, order in sorted(items, key=lambda item: (-item[0], item[1].key)):
            if spent <= budget.get(trader, 0):
                break
            removed[order.key] = "funds"
            spent -= net
    return removed


def _net_trade(orders: Sequence[Order], outcomes: int) -> tuple[float, ...]:
    """The aggregate trade in shares per outcome (summed exactly in micro-shares)."""
    totals = [0] * outcomes
    for order in orders:
        totals[order.outcome] += order.shares
    return tuple(total / MICRO for total in totals)


def _fill(order: Order, payment: int, fee_per_share: int) -> Fill:
    """The fill of ``order`` paying ``payment`` micro-units plus its fee."""
    fee = fee_micro(order.shares, fee_per_share)
    return Fill(order, order.shares, payment + fee, fee)


def _clear_market(
    maker: MarketMaker,
    orders: Sequence[Order],
    *,
    market: int,
    fee_per_share: int,
    budget: Mapping[int, int],
    held: Mapping[tuple[int, int, int], int],
) -> _Cleared:
    """Clear one market's well-formed orders (sorted by key) by iterated removal."""
    removed = _over_position(orders, market=market, held=held)
    live = [order for order in orders if order.key not in removed]
    while live:
        deltas = _net_trade(live, len(maker.q))
        try:
            exact = maker.vector_cost(deltas)
        except InvalidTrade:  # the net trade leaves the maker's domain: no safe price exists
            removed.update((order.key, "invalid") for order in live)
            break
        error = maker.cost_error(exact, sum(abs(d) for d in deltas))
        prices = uniform_prices(maker, deltas)
        pays = _payments(live, prices, payment_micro(exact, error=error))
        dropped = _violations(live, pays, fee_per_share=fee_per_share, budget=budget)
        if not dropped:
            fills = tuple(_fill(order, pays[order.key], fee_per_share) for order in live)
            rejections = tuple(Rejection(o, removed[o.key]) for o in orders if o.key in removed)
            return _Cleared(maker.apply(deltas), fills, rejections, prices)
        removed.update(dropped)
        live = [order for order in live if order.key not in dropped]
    rejections = tuple(Rejection(o, removed[o.key]) for o in orders if o.key in removed)
    return _Cleared(maker, (), rejections, None)


def _distinct(orders: Sequence[Order]) -> tuple[list[Order], list[Rejection]]:
    """Orders sorted by key with identical duplicates merged; conflicting keys all rejected."""
    by_key: dict[tuple[int, int], set[Order]] = {}
    for order in orders:
        by_key.setdefault(order.key, set()).add(order)
    unique: list[Order] = []
    conflicts: list[Rejection] = []
    for key in sorted(by_key):
        versions = sorted(by_key[key], key=_order_fields)
        if len(versions) == 1:
            unique.append(versions[0])
        else:
            conflicts.extend(Rejection(order, "invalid") for order in versions)
    return unique, conflicts


def clear_batch(
    makers: Sequence[MarketMaker],
    orders: Sequence[Order],
    *,
    fee_per_share: int,
    cash: Mapping[int, int],
    held: Mapping[tuple[int, int, int], int],
) -> BatchResult:
    """Clear ``orders`` against ``makers`` at uniform prices, markets in index order.

    Args:
        makers: one maker per market, indexed by ``Order.market``.
        orders: the batch, in any order.
        fee_per_share: micro-units per share, as in :func:`~market.execute.execute_order`.
        cash: each trader's spendable micro-units, shared by all its orders in all markets.
        held: micro-shares held, keyed ``(trader, market, outcome)``.

    Returns:
        The new makers, the fills and rejections (sorted by order key) and the uniform prices.
    """
    if fee_per_share < 0:
        raise ValueError(f"fee_per_share must be non-negative, got {fee_per_share}")
    unique, rejections = _distinct(orders)
    by_market: dict[int, list[Order]] = {}
    for order in unique:
        if 0 <= order.market < len(makers) and is_well_formed(order, len(makers[order.market].q)):
            by_market.setdefault(order.market, []).append(order)
        else:
            rejections.append(Rejection(order, "invalid"))
    budget = dict(cash)
    new_makers = list(makers)
    fills: list[Fill] = []
    prices: dict[int, tuple[float, ...]] = {}
    for market in sorted(by_market):
        cleared = _clear_market(
            makers[market],
            by_market[market],
            market=market,
            fee_per_share=fee_per_share,
            budget=budget,
            held=held,
        )
        new_makers[market] = cleared.maker
        fills.extend(cleared.fills)
        rejections.extend(cleared.rejections)
        if cleared.prices is not None:
            prices[market] = cleared.prices
        for fill in cleared.fills:
            budget[fill.order.trader] = budget.get(fill.order.trader, 0) - max(0, fill.cash)
    return BatchResult(
        makers=tuple(new_makers),
        fills=tuple(sorted(fills, key=lambda f: f.order.key)),
        rejections=tuple(sorted(rejections, key=lambda r: _order_fields(r.order))),
        prices=prices,
    )

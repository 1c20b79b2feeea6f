"""Execute one order against a market maker: a pure function from values to values.

Money is rounded once, to whole micro-units, always in the maker's favour: a buyer pays the
cost rounded up, a seller receives the proceeds rounded down. Both are the same rule, "the
trader pays ``ceil(cost·MICRO)``", with the cost negative for a sell; the cost is first raised
by the maker's bound on its own floating-point error, so the rule holds for the exact cost.
That rounding keeps the maker's realised loss within its (real-valued) loss bound however many
trades it makes.

The checks (:func:`payment_micro`, :func:`fee_micro`, :func:`exceeds_limit`) are shared with
:mod:`market.batch`, so sequential and batch execution apply the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from market.errors import InvalidTrade
from market.lmsr import MarketMaker
from market.types import MICRO, Fill, Order

RejectReason = Literal["limit", "funds", "position", "invalid", "closed", "late"]
"""Why an order did not trade: its limit price, the trader's cash, the trader's position, a
malformed order (unknown outcome, zero shares, negative limit), a closed market, or a reveal after
its commitment's deadline. The last two are decided by the exchange, which knows the clock;
:func:`execute_order` never returns them."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order that did not trade, and why. A rejection changes no market's state (a late
    reveal still forfeits its commitment's deposit: that is the commitment's, not the order's)."""

    order: Order
    reason: RejectReason


def payment_micro(cost: float, *, error: float = 0.0) -> int:
    """Micro-units the trader pays for a trade costing ``cost`` units: ``ceil(cost·MICRO)``.

    For a buy that rounds the price up; for a sell (negative cost) it rounds the proceeds down.
    ``error`` (units, from the maker's ``cost_error``) is added first: a float cost just below
    a micro-unit boundary whose exact value is just above it still rounds the maker's way.
    """
    return math.ceil((cost + error) * MICRO)


def fee_micro(shares: int, fee_per_share: int) -> int:
    """The fee on ``|shares|`` micro-shares at ``fee_per_share`` micro-units/share, rounded up."""
    return -(-fee_per_share * abs(shares) // MICRO)


def exceeds_limit(order: Order, payment: int) -> bool:
    """Whether paying ``payment`` micro-units (fee excluded) breaks the order's limit price.

    A buy may pay at most ``limit_price`` per share on average, a sell must receive at least
    that. In exact integers, with ``shares`` in micro-shares, both read
    ``payment·MICRO > limit_price·shares`` (for a sell both sides are the negated proceeds).
    """
    if order.shares > 0:
        return payment * MICRO > order.limit_price * order.shares
    proceeds = -payment
    return proceeds * MICRO < order.limit_price * -order.shares


def is_well_formed(order: Order, outcomes: int) -> bool:
    """A known outcome, a non-zero number of shares and a non-negative limit price."""
    return 0 <= order.outcome < outcomes and order.shares != 0 and order.limit_price >= 0


def execute_order(
    maker: MarketMaker, order: Order, *, fee_per_share: int, cash: int, held: int
) -> tuple[MarketMaker, Fill | Rejection]:
    """Execute ``order`` in full against ``maker``, or reject it.

    Args:
        maker: the order's market.
        order: the order; ``order.market`` is the caller's concern.
        fee_per_share: the market's fee, micro-units per share, charged on buys and sells.
        cash: micro-units the trader can spend.
        held: micro-shares of ``order.outcome`` the trader holds.

    Returns:
        The new maker and the :class:`~market.types.Fill`, whose ``cash`` is what the trader
        pays (negative when it receives) including the fee; or the unchanged maker and a
        :class:`Rejection`, checked in the order invalid, position, limit, funds.
    """
    if fee_per_share < 0:
        raise ValueError(f"fee_per_share must be non-negative, got {fee_per_share}")
    if not is_well_formed(order, len(maker.q)):
        return maker, Rejection(order, "invalid")
    if order.shares < 0 and -order.shares > held:
        return maker, Rejection(order, "position")
    shares = order.shares / MICRO
    try:
        new_maker, cost = maker.trade(order.outcome, shares)
    except InvalidTrade:
        return maker, Rejection(order, "invalid")
    payment = payment_micro(cost, error=maker.cost_error(cost, abs(shares)))
    if shares < 0:
        payment = min(payment, 0)  # a sale's exact cost is negative: it never costs the seller
    if exceeds_limit(order, payment):
        return maker, Rejection(order, "limit")
    fee = fee_micro(order.shares, fee_per_share)
    # A seller's fee comes out of the proceeds; only what exceeds them must come from cash.
    if payment + fee > cash:
        return maker, Rejection(order, "funds")
    return new_maker, Fill(order, order.shares, payment + fee, fee)

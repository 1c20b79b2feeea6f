"""Trader policies: pure functions from what a trader knows to the order it submits.

The world decides *when* a trader acts and on which market (:class:`sim.world.build.PlannedOrder`,
with the size a noise trader would like); the policy decides the outcome, the size and the limit
price from the prices, cash and holdings the trader sees at that moment.

Informed traders bet like people who mean it (:func:`kelly_intent`): from a belief and their
current wealth they choose the trade that maximises expected utility against the market maker's
own price curve, log utility by default (the Kelly criterion), buying *or* selling. Noise traders
(:func:`noise_intent`) buy a uniformly chosen outcome whatever its price.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_EDGE = 0.02
"""An informed trader only trades when its belief exceeds the price by at least this."""

NOISE_LIMIT = 0.99
"""Noise traders accept any average price up to this per share."""


@dataclass(frozen=True, slots=True)
class Intent:
    """What a trader wants to trade: ``shares`` of ``outcome`` (negative: a sale) at ``limit``.

    A buy pays at most ``limit`` per share on average, a sale receives at least ``limit``.
    """

    outcome: int
    shares: float
    limit: float


MIN_MOVE = 0.002
"""An informed trader only trades when its best trade moves the price by at least this much:
below it the expected gain is smaller than any real transaction cost, and dust orders would
only add messages."""

SEARCH_STEPS = 40
"""Bisection steps of the Kelly search, in log-odds: 2⁻⁴⁰ of the bracket, below a micro-share."""

MAX_LOG_ODDS = 30.0
"""Log-odds beyond which a price is treated as 0 or 1 (e⁻³⁰ ≈ 1e-13)."""


def price_pooled(own: Sequence[float], prices: Sequence[float], weight: float) -> tuple[float, ...]:
    """A belief that leans toward the price: the log-linear pool ``own^(1−w) · price^w``.

    ``weight`` is ``traders.price_weight``: 0 keeps the trader's own posterior, 1 adopts the
    price. In a binary market this is a weighted average of the two log-odds, the usual way to
    combine two probability estimates as evidence (Genest and Zidek, 1986). It is recomputed
    from the trader's own evidence at every decision, so the trader never forgets what it saw.
    """
    if weight == 0.0:
        return tuple(own)
    logs = [
        (1.0 - weight) * math.log(b) + weight * math.log(p)
        for b, p in zip(own, prices, strict=True)
    ]
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = sum(weights)
    return tuple(w / total for w in weights)


def _sigmoid(y: float) -> float:
    return 1.0 / (1.0 + math.exp(-y))


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1.0 - 1e-15)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class _Bet:
    """One candidate trade of the Kelly search: the shares of an outcome and its utility gain."""

    outcome: int
    shares: float
    price_after: float
    gain: float


def _utility(wealth: float, gamma: float) -> float:
    """CRRA utility with relative risk aversion ``gamma`` (log utility at 1)."""
    if wealth <= 0.0:
        return -math.inf
    if gamma == 1.0:
        return math.log(wealth)
    return wealth ** (1.0 - gamma) / (1.0 - gamma)


def _best_bet(
    outcome: int,
    price: float,
    belief: float,
    *,
    cash: float,
    held: float,
    held_else: float,
    depth: float,
    gamma: float,
) -> _Bet:
    """The utility-maximising trade in one outcome, against an LMSR of liquidity ``depth``.

    Trading ``Δ`` shares moves the outcome's price from ``p`` to ``x`` with
    ``logit x = logit p + Δ/b`` and costs ``b·ln((1 − p)/(1 − x))`` (both exact for an LMSR, any
    number of outcomes). The trader's wealth if the outcome happens is ``cash − cost + held + Δ``
    and otherwise ``cash − cost + held_else``; the marginal expected utility,
    ``q·u'(W₁)·(1 − x) − (1 − q)·u'(W₀)·x``, falls as ``x`` rises, so bisection finds its zero.
    A sale is limited to the shares held and a purchase to the cash.
    """
    y0 = _logit(price)
    lo = max(y0 - held / depth, -MAX_LOG_ODDS)
    ceiling = 1.0 - (1.0 - price) * math.exp(-cash / depth)
    hi = min(_logit(ceiling), MAX_LOG_ODDS)

    def wealth(y: float) -> tuple[float, float, float]:
        x = _sigmoid(y)
        cost = depth * (math.log1p(-price) - math.log1p(-x))
        shares = depth * (y - y0)
        return x, cash - cost + held + shares, cash - cost + held_else

    def slope(y: float) -> float:
        x, w1, w0 = wealth(y)
        if w1 <= 0.0:
            return math.inf
        if w0 <= 0.0:
            return -math.inf
        return belief * (1.0 - x) * w1**-gamma - (1.0 - belief) * x * w0**-gamma

    start = slope(y0)
    a, b = (y0, hi) if start > 0 else (lo, y0)
    if a >= b or start == 0:
        return _Bet(outcome, 0.0, price, 0.0)
    for _ in range(SEARCH_STEPS):
        mid = 0.5 * (a + b)
        if slope(mid) > 0:
            a = mid
        else:
            b = mid
    y = a if start > 0 else b
    x, w1, w0 = wealth(y)
    _, v1, v0 = wealth(y0)
    gain = belief * (_utility(w1, gamma) - _utility(v1, gamma)) + (1.0 - belief) * (
        _utility(w0, gamma) - _utility(v0, gamma)
    )
    return _Bet(outcome, depth * (y - y0), x, gain)


def kelly_intent(
    prices: Sequence[float],
    beliefs: Sequence[float],
    *,
    cash: float,
    held: Sequence[float],
    depth: float,
    risk_aversion: float = 0.0,
    min_move: float = MIN_MOVE,
) -> Intent | None:
    """The trade an expected-utility maximiser makes now, or None when no trade is worth it.

    Args:
        prices: the market's current prices.
        beliefs: the trader's probabilities of the outcomes.
        cash: units the trader can spend.
        held: shares of each outcome the trader holds.
        depth: the maker's liquidity (an LMSR's ``b``; an LS-LMSR's current ``b(q)``, taken as
            fixed over the trade).
        risk_aversion: ``traders.risk_aversion``; the utility is CRRA with relative risk
            aversion ``1 + risk_aversion``, so 0 is log utility: the Kelly criterion, which
            maximises the growth rate of wealth (Kelly, 1956).
        min_move: the smallest price move worth a trade (:data:`MIN_MOVE`).

    Each outcome is weighed against "any other outcome" (exact for binary markets; with more,
    holdings of the others count at their expected payout under the belief). Among the trades
    that raise expected utility, a sale of shares held comes first (in a binary LMSR selling
    "yes" and buying "no" pay the same in every state, and a sale frees cash), else the purchase
    with the largest gain. The limit price is the marginal price the trade aims at: a buy pays
    at most that on average, a sale receives at least that.
    """
    gamma = 1.0 + risk_aversion
    bets = []
    for outcome, (p, q) in enumerate(zip(prices, beliefs, strict=True)):
        rest = 1.0 - q
        held_else = (
            math.fsum(
                h * b for o, (h, b) in enumerate(zip(held, beliefs, strict=True)) if o != outcome
            )
            / rest
            if rest > 0
            else 0.0
        )
        bet = _best_bet(
            outcome,
            p,
            q,
            cash=cash,
            held=held[outcome],
            held_else=held_else,
            depth=depth,
            gamma=gamma,
        )
        if bet.gain > 0 and abs(bet.price_after - p) >= min_move:
            bets.append(bet)
    if not bets:
        return None
    sells = [b for b in bets if b.shares < 0]
    best = max(sells or bets, key=lambda b: b.gain)
    return Intent(best.outcome, best.shares, best.price_after)


def affordable(shares: float, limit: float, cash: float) -> float:
    """Shrink ``shares`` so that paying ``limit`` per share stays within ``cash``."""
    return max(0.0, min(shares, cash / limit)) if limit > 0 else 0.0


def informed_intent(
    prices: Sequence[float], beliefs: Sequence[float], *, shares: float, cash: float
) -> Intent | None:
    """Buy the outcome whose belief most exceeds its price, paying at most the belief."""
    edges = [b - p for b, p in zip(beliefs, prices, strict=True)]
    outcome = max(range(len(edges)), key=edges.__getitem__)
    if edges[outcome] < MIN_EDGE:
        return None
    limit = beliefs[outcome]
    size = affordable(shares, limit, cash)
    return Intent(outcome, size, limit) if size > 0 else None


def noise_intent(outcomes: int, *, pick: float, shares: float, cash: float) -> Intent | None:
    """Buy a uniformly chosen outcome (``pick`` is a uniform draw), whatever its price."""
    outcome = min(int(pick * outcomes), outcomes - 1)
    size = affordable(shares, NOISE_LIMIT, cash)
    return Intent(outcome, size, NOISE_LIMIT) if size > 0 else None

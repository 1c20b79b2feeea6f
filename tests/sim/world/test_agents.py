"""Trader policies: Kelly (and CRRA) sizing against an LMSR, sales, and beliefs that lean on prices.

The sizing is checked against independent routes: the textbook Kelly fraction where the market
is too deep to move, a brute-force search over the exact LMSR cost function, and the known
result that Kelly bettors drive the price to their wealth-weighted mean belief (Beygelzimer,
Langford and Pennock, 2012).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from market.lmsr import LMSR
from sim.world.agents import kelly_intent, price_pooled


def _market(price: float, b: float) -> LMSR:
    """A binary LMSR of liquidity ``b`` whose "yes" (outcome 1) price is ``price``."""
    return LMSR(b=b, q=(0.0, b * math.log(price / (1.0 - price))))


def _brute_force_shares(
    maker: LMSR, belief: float, cash: float, held: tuple[float, float]
) -> float:
    """The trade in "yes" maximising expected log wealth, by grid search on the exact cost."""
    best, best_u = 0.0, -math.inf
    for shares in np.linspace(-held[1], 400.0, 80_001):
        cost = maker.trade_cost(1, float(shares))
        w1, w0 = cash - cost + held[1] + shares, cash - cost + held[0]
        if cost > cash or w1 <= 0 or w0 <= 0:
            continue
        u = belief * math.log(w1) + (1 - belief) * math.log(w0)
        if u > best_u:
            best, best_u = float(shares), u
    return best


def test_in_a_market_too_deep_to_move_kelly_stakes_the_textbook_fraction() -> None:
    # Kelly (1956): stake f = (q − p)/(1 − p) of wealth on a binary bet at price p
    p, q, wealth = 0.4, 0.6, 1000.0
    intent = kelly_intent(
        (1 - p, p), (1 - q, q), cash=wealth, held=(0.0, 0.0), depth=1e9, min_move=0.0
    )
    assert intent is not None and intent.outcome == 1
    stake = intent.shares * p
    assert stake == pytest.approx(wealth * (q - p) / (1 - p), rel=1e-4)


@pytest.mark.parametrize(
    ("price", "belief", "cash", "held"),
    [(0.5, 0.7, 100.0, (0.0, 0.0)), (0.3, 0.6, 50.0, (0.0, 0.0)), (0.6, 0.8, 80.0, (0.0, 10.0))],
)
def test_the_kelly_trade_is_the_brute_force_optimum_against_the_lmsr(
    price: float, belief: float, cash: float, held: tuple[float, float]
) -> None:
    maker = _market(price, b=40.0)
    intent = kelly_intent(maker.prices(), (1 - belief, belief), cash=cash, held=held, depth=maker.b)
    assert intent is not None and intent.outcome == 1
    assert intent.shares == pytest.approx(_brute_force_shares(maker, belief, cash, held), abs=0.02)
    # the limit is the marginal price the trade ends at
    after = maker.trade(1, intent.shares)[0].prices()[1]
    assert intent.limit == pytest.approx(after, abs=1e-9)


def test_a_trader_who_holds_an_overpriced_outcome_sells_it() -> None:
    maker = _market(0.7, b=40.0)
    intent = kelly_intent(maker.prices(), (0.6, 0.4), cash=100.0, held=(0.0, 30.0), depth=40.0)
    assert intent is not None and intent.outcome == 1 and intent.shares < 0
    assert -intent.shares <= 30.0  # never more than it holds
    assert intent.limit < 0.7  # it accepts less than today's price, never less than its target
    # the sale is the brute-force optimum too (selling "yes" and buying "no" pay the same)
    brute = _brute_force_shares(maker, 0.4, 100.0, (0.0, 30.0))
    assert intent.shares == pytest.approx(max(brute, -30.0), abs=0.02)


def test_a_bullish_trader_holding_the_other_outcome_sells_it_first() -> None:
    # selling 20 "no" pays what buying 20 "yes" pays in every state, and frees cash instead
    maker = _market(0.6, b=40.0)
    intent = kelly_intent(maker.prices(), (0.2, 0.8), cash=80.0, held=(20.0, 10.0), depth=40.0)
    assert intent is not None and intent.outcome == 0
    assert intent.shares == pytest.approx(-20.0)
    assert _brute_force_shares(maker, 0.8, 80.0, (20.0, 10.0)) > 20.0  # Kelly wants more


def test_without_shares_to_sell_a_bearish_trader_buys_the_other_outcome() -> None:
    intent = kelly_intent((0.3, 0.7), (0.6, 0.4), cash=100.0, held=(0.0, 0.0), depth=40.0)
    assert intent is not None and intent.outcome == 0 and intent.shares > 0


def test_no_trade_when_the_price_is_the_belief_or_there_is_nothing_to_trade_with() -> None:
    assert kelly_intent((0.4, 0.6), (0.4, 0.6), cash=100.0, held=(0.0, 0.0), depth=40.0) is None
    assert kelly_intent((0.4, 0.6), (0.2, 0.8), cash=0.0, held=(0.0, 0.0), depth=40.0) is None


def test_more_risk_aversion_bets_less() -> None:
    sizes = [
        kelly_intent(
            (0.5, 0.5), (0.3, 0.7), cash=100.0, held=(0.0, 0.0), depth=40.0, risk_aversion=r
        )
        for r in (0.0, 1.0, 4.0)
    ]
    shares = [s.shares for s in sizes if s is not None]
    assert len(shares) == 3 and shares[0] > shares[1] > shares[2] > 0


def test_a_price_weight_pools_log_odds_by_hand() -> None:
    own, price = (0.2, 0.8), (0.5, 0.5)
    assert price_pooled(own, price, 0.0) == own
    assert price_pooled(own, price, 1.0) == pytest.approx(price)
    # w = 0.5: logit = 0.5·ln 4 + 0.5·0 = ln 2, so 2/3 on "yes"
    assert price_pooled(own, price, 0.5) == pytest.approx((1 / 3, 2 / 3))


def _fixed_point(beliefs: list[float], wealth: list[float], b: float) -> tuple[float, float]:
    """Let Kelly bettors with fixed beliefs trade against an LMSR, in turn, until none wants to.

    Returns the price at that fixed point and the bettors' mean belief weighted by their wealth
    at that price (cash plus positions marked to it): trading in turn at moving prices shifts
    wealth between bettors on the way, and the relation holds for the wealth they end with.
    """
    maker = LMSR.create(outcomes=2, b=b)
    cash = list(wealth)
    held = [[0.0, 0.0] for _ in beliefs]
    for _ in range(2000):
        traded = False
        for i, q in enumerate(beliefs):
            intent = kelly_intent(
                maker.prices(), (1 - q, q), cash=cash[i], held=held[i], depth=b, min_move=5e-4
            )
            if intent is None:
                continue
            maker, cost = maker.trade(intent.outcome, intent.shares)
            cash[i] -= cost
            held[i][intent.outcome] += intent.shares
            traded = True
        if not traded:
            break
    assert not traded, "no fixed point within 2000 rounds"
    p = maker.prices()[1]
    marked = [c + h[1] * p + h[0] * (1 - p) for c, h in zip(cash, held, strict=True)]
    return p, sum(q * w for q, w in zip(beliefs, marked, strict=True)) / sum(marked)


def test_kelly_bettors_drive_the_price_to_their_wealth_weighted_mean_belief() -> None:
    # Beygelzimer, Langford and Pennock (2012): with Kelly bettors the market-clearing price is the
    # wealth-weighted mean belief; against an LMSR it holds the better, the smaller b is
    # against the bettors' wealth (the maker's own stake in the price shrinks)
    beliefs, wealth = [0.2, 0.55, 0.8, 0.9], [1000.0, 500.0, 2000.0, 500.0]
    gaps = []
    for b in (1000.0, 100.0, 10.0):
        price, weighted = _fixed_point(beliefs, wealth, b)
        gaps.append(abs(price - weighted))
    assert gaps[-1] < 0.001, gaps
    assert gaps == sorted(gaps, reverse=True), gaps
    assert gaps[0] > 0.01, gaps  # with b comparable to wealth the maker holds the price back

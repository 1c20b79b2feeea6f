"""Batch clearing: limits, budgets and positions hold, the order of orders never matters, the
maker collects at least the exact cost of the net trade."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.batch import BatchResult, _payments, clear_batch, uniform_prices
from market.execute import Rejection, execute_order
from market.lmsr import LMSR, LSLMSR, MarketMaker
from market.types import MICRO, Fill, Order


def exact_cost(maker: MarketMaker, q: Sequence[Decimal]) -> Decimal:
    """The maker's cost function at ``q``, to 60 digits."""
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 60, MAX_EMAX, MIN_EMIN
        b = Decimal(maker.b) if isinstance(maker, LMSR) else Decimal(maker.alpha) * sum(q)
        top = max(q)
        return top + b * sum(((x - top) / b).exp() for x in q).ln()


def exact_net_cost_micro(maker: MarketMaker, fills: Sequence[Fill]) -> Decimal:
    """``C(q + δ) − C(q)`` in micro-units for the net trade of ``fills``."""
    with localcontext() as ctx:
        ctx.prec = 60
        before = [Decimal(x) for x in maker.q]
        after = list(before)
        for fill in fills:
            after[fill.order.outcome] += Decimal(fill.shares) / MICRO
        return (exact_cost(maker, after) - exact_cost(maker, before)) * MICRO


def order(
    trader: int, nonce: int, outcome: int, shares: float, limit: float, *, market: int = 0
) -> Order:
    """An order in shares and units (converted to micro)."""
    return Order(trader, nonce, market, outcome, round(shares * MICRO), round(limit * MICRO))


def clear(makers: Sequence[MarketMaker], orders: Sequence[Order], **kwargs: object) -> BatchResult:
    options: dict = {"fee_per_share": 0, "cash": {}, "held": {}} | kwargs
    return clear_batch(makers, orders, **options)


def by_key(result: BatchResult) -> dict[tuple[int, int], Fill | Rejection]:
    return {item.order.key: item for item in (*result.fills, *result.rejections)}


MAKERS: tuple[MarketMaker, ...] = (
    LMSR(20.0, (3.0, -4.0, 0.0)),
    LSLMSR.create(outcomes=2, alpha=0.05, b0=20.0),
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Order], dict[int, int], dict[tuple[int, int, int], int]]:
    """Orders of four traders in both markets (a few malformed), with budgets and holdings."""
    orders = []
    for nonce in range(draw(st.integers(1, 12))):
        market = draw(st.sampled_from((0, 0, 0, 1, 1, 1, 2)))  # there is no market 2
        outcome = draw(st.sampled_from((0, 0, 1, 1, 2, 3)))  # nor outcome 3; 2 only in market 0
        sell = draw(st.booleans())
        shares = draw(st.integers(1, 40 * MICRO)) * (-1 if sell else 1)
        limit = draw(st.integers(0, 1_200_000))
        orders.append(Order(draw(st.integers(1, 4)), nonce, market, outcome, shares, limit))
    cash = {t: draw(st.integers(0, 15 * MICRO)) for t in range(1, 5)}
    held = {
        (t, m, k): draw(st.integers(0, 30 * MICRO))
        for t in range(1, 5)
        for m in (0, 1)
        for k in range(3)
    }
    return orders, cash, held


@settings(max_examples=80, deadline=None)
@given(batches(), st.sampled_from([0, 1_000, 200_000]))
def test_no_fill_breaks_its_limit_budget_or_position(
    batch: tuple[list[Order], dict[int, int], dict[tuple[int, int, int], int]], fee: int
) -> None:
    orders, cash, held = batch
    result = clear_batch(MAKERS, orders, fee_per_share=fee, cash=cash, held=held)
    spent: dict[int, int] = defaultdict(int)
    sold: dict[tuple[int, int, int], int] = defaultdict(int)
    for fill in result.fills:
        o = fill.order
        paid = fill.cash - fill.fee
        assert fill.shares == o.shares and fill.fee == -(-fee * abs(o.shares) // MICRO)
        if o.shares > 0:
            assert paid * MICRO <= o.limit_price * o.shares  # average price at most the limit
        else:
            assert -paid * MICRO >= o.limit_price * -o.shares  # average proceeds at least the limit
            sold[o.trader, o.market, o.outcome] -= o.shares
        spent[o.trader] += max(0, fill.cash)
    assert all(spent[t] <= cash[t] for t in spent)
    assert all(sold[key] <= held[key] for key in sold)
    # Every order is accounted for exactly once, and the output is sorted.
    assert set(by_key(result)) == {o.key for o in orders}
    assert [f.order.key for f in result.fills] == sorted(f.order.key for f in result.fills)
    assert [r.order.key for r in result.rejections] == sorted(
        r.order.key for r in result.rejections
    )
    for item in (*result.fills, *result.rejections):
        o = item.order
        malformed = o.market == 2 or o.outcome >= len(MAKERS[o.market].q)
        assert malformed == (isinstance(item, Rejection) and item.reason == "invalid")
    for market, maker in enumerate(MAKERS):
        fills = [f for f in result.fills if f.order.market == market]
        collected = sum(f.cash - f.fee for f in fills)
        assert collected >= exact_net_cost_micro(maker, fills)  # the loss bound holds
        net = [
            sum(f.shares for f in fills if f.order.outcome == k) / MICRO
            for k in range(len(maker.q))
        ]
        assert result.makers[market] == (maker.apply(net) if fills else maker)
        assert (market in result.prices) == bool(fills)


@settings(max_examples=40, deadline=None)
@given(batches().flatmap(lambda b: st.tuples(st.just(b), st.permutations(b[0]))))
def test_result_depends_only_on_the_set_of_orders(
    data: tuple[tuple[list[Order], dict[int, int], dict[tuple[int, int, int], int]], list[Order]],
) -> None:
    (orders, cash, held), shuffled = data
    first = clear_batch(MAKERS, orders, fee_per_share=1_000, cash=cash, held=held)
    again = clear_batch(MAKERS, shuffled, fee_per_share=1_000, cash=cash, held=held)
    doubled = clear_batch(MAKERS, shuffled + orders[:3], fee_per_share=1_000, cash=cash, held=held)
    assert again == first
    assert doubled == first  # a replayed identical order counts once


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from((*MAKERS, LMSR(2.0, (0.0, 0.0)), LSLMSR.create(outcomes=3, alpha=0.2, b0=5.0))),
    st.integers(0, 1),
    st.integers(1, 200 * MICRO),
    st.booleans(),
)
def test_a_single_order_batch_costs_what_executing_it_alone_costs(
    maker: MarketMaker, outcome: int, size: int, sell: bool
) -> None:
    shares = -size if sell else size
    alone = Order(7, 1, 0, outcome, shares, 0 if sell else 3 * MICRO)
    held = {(7, 0, outcome): size}
    if isinstance(maker, LSLMSR) and sell:
        held[7, 0, outcome] = min(size, math.floor(maker.q[outcome] * MICRO))  # stay in its domain
        alone = Order(7, 1, 0, outcome, -held[7, 0, outcome], 0)
    new, executed = execute_order(maker, alone, fee_per_share=500, cash=10**12, held=size)
    result = clear_batch([maker], [alone], fee_per_share=500, cash={7: 10**12}, held=held)
    assert isinstance(executed, Fill) and len(result.fills) == 1
    assert (
        abs(result.fills[0].cash - executed.cash) <= 1
    )  # quadrature and rounding, at most 1 micro
    assert result.fills[0].fee == executed.fee
    assert result.makers[0] == new


def test_an_order_priced_out_by_the_batch_is_removed_and_the_rest_reprices() -> None:
    # b = 10, q = (0, 0). Alone, 10 shares of outcome 0 cost 10·ln((e + 1)/2) = 6.2011, 0.6201 a
    # share; together, 20 shares cost 10·ln((e² + 1)/2) = 14.3378, 0.7169 a share. B's limit 0.65
    # admits the first, not the second: B leaves, and A then pays the single-order price.
    maker = LMSR.create(outcomes=2, b=10.0)
    a, b = order(1, 1, 0, 10, 0.75), order(2, 1, 0, 10, 0.65)
    result = clear([maker], [b, a], cash={1: 10 * MICRO, 2: 10 * MICRO})
    assert result.rejections == (Rejection(b, "limit"),)
    assert [f.order for f in result.fills] == [a]
    assert result.fills[0].cash == pytest.approx(6_201_145, abs=1)
    assert result.prices[0][0] == pytest.approx(0.6201145, abs=1e-6)
    assert result.makers[0].q == (10.0, 0.0)


def test_crossing_orders_trade_at_one_price() -> None:
    # A buy and a sell of the same size net to nothing: both trade at the current price, the
    # maker keeps only the rounding.
    maker = LMSR(10.0, (4.0, 0.0))
    price = maker.prices()[0]
    buy, sell = order(1, 1, 0, 5, 1.0), order(2, 1, 0, -5, 0.0)
    result = clear([maker], [buy, sell], cash={1: 10 * MICRO}, held={(2, 0, 0): 5 * MICRO})
    fills = {f.order.key: f for f in result.fills}
    assert fills[1, 1].cash == math.ceil(5 * MICRO * price)
    assert fills[2, 1].cash == -math.floor(5 * MICRO * price)
    assert 0 <= fills[1, 1].cash + fills[2, 1].cash <= 1
    assert result.makers[0] == maker and result.prices[0] == pytest.approx(
        maker.prices(), abs=1e-15
    )


def test_over_budget_trader_loses_its_largest_order_first() -> None:
    maker = LMSR.create(outcomes=2, b=10.0)
    small, big = order(1, 1, 1, 2, 1.0), order(1, 2, 0, 10, 1.0)  # the key does not decide
    result = clear([maker], [big, small], cash={1: 3 * MICRO})
    assert result.rejections == (Rejection(big, "funds"),)
    assert [f.order for f in result.fills] == [small]
    assert result.fills[0].cash <= 3 * MICRO


@pytest.mark.parametrize("fee", [0, 100_000])
def test_the_budget_covers_cost_and_fee_exactly(fee: int) -> None:
    maker = LMSR.create(outcomes=2, b=10.0)
    buy = order(1, 1, 0, 2, 1.0)
    _, alone = execute_order(maker, buy, fee_per_share=fee, cash=10**9, held=0)
    assert isinstance(alone, Fill) and alone.fee == 2 * fee
    enough = clear_batch([maker], [buy], fee_per_share=fee, cash={1: alone.cash}, held={})
    assert [f.cash for f in enough.fills] == [alone.cash]
    short = clear_batch([maker], [buy], fee_per_share=fee, cash={1: alone.cash - 1}, held={})
    assert short.rejections == (Rejection(buy, "funds"),) and short.makers == (maker,)


def test_sales_beyond_the_position_drop_the_largest() -> None:
    maker = LMSR(10.0, (9.0, 0.0))
    larger, smaller = order(1, 1, 0, -4, 0.0), order(1, 2, 0, -3, 0.0)
    result = clear([maker], [smaller, larger], held={(1, 0, 0): 5 * MICRO})
    assert result.rejections == (Rejection(larger, "position"),)
    assert [f.order for f in result.fills] == [smaller]


def test_budgets_are_shared_across_markets_in_index_order() -> None:
    makers = (LMSR.create(outcomes=2, b=10.0), LMSR.create(outcomes=2, b=10.0))
    first, second = order(1, 2, 0, 5, 1.0, market=0), order(1, 1, 0, 5, 1.0, market=1)
    # Each costs 10·ln((e^0.5 + 1)/2) = 2.8103; the budget covers one.
    result = clear(makers, [second, first], cash={1: 4 * MICRO})
    assert [f.order for f in result.fills] == [first]
    assert result.rejections == (Rejection(second, "funds"),)
    assert set(result.prices) == {0} and result.makers[1] == makers[1]


def test_conflicting_orders_under_one_key_are_all_invalid() -> None:
    maker = LMSR.create(outcomes=2, b=10.0)
    one, other, fine = order(1, 1, 0, 1, 1.0), order(1, 1, 1, 1, 1.0), order(2, 1, 0, 1, 1.0)
    nowhere, bad_outcome = order(3, 1, 0, 1, 1.0, market=5), order(4, 1, 2, 1, 1.0)
    result = clear([maker], [other, fine, one, nowhere, bad_outcome], cash={2: MICRO})
    assert result.rejections == tuple(
        Rejection(o, "invalid") for o in (one, other, nowhere, bad_outcome)
    )
    assert [f.order for f in result.fills] == [fine]


@pytest.mark.parametrize(
    ("maker", "trades"),
    [
        (LMSR(1.0, (0.0, 0.0, 0.0)), (500.0, 300.0, -2.0)),  # 800 b apart: beyond the panel cap
        (LMSR(50.0, (10.0, -10.0)), (3.0, 1.0)),
        (LSLMSR.create(outcomes=3, alpha=0.05, b0=10.0), (80.0, 5.0, 0.5)),
    ],
)
def test_maker_collects_at_least_the_exact_cost_of_the_net_trade(
    maker: MarketMaker, trades: tuple[float, ...]
) -> None:
    orders = [order(k + 1, 1, k, s, 1_000.0 if s > 0 else 0.0) for k, s in enumerate(trades)]
    held = {(k + 1, 0, k): 10**12 for k in range(3)}
    result = clear([maker], orders, cash=dict.fromkeys((1, 2, 3), 10**15), held=held)
    assert len(result.fills) == len(orders)
    exact = exact_net_cost_micro(maker, result.fills)
    collected = sum(f.cash for f in result.fills)
    assert exact <= collected <= exact + len(orders) + abs(exact) / 1000


@settings(deadline=None)
@given(
    st.sampled_from((*MAKERS, LMSR(5.0, (1.0, -2.0)))),
    st.lists(st.floats(-30.0, 30.0), min_size=3, max_size=3),
)
def test_uniform_prices_satisfy_the_gradient_theorem(
    maker: MarketMaker, deltas: list[float]
) -> None:
    deltas = deltas[: len(maker.q)]
    prices = uniform_prices(maker, deltas)
    assert math.fsum(d * p for d, p in zip(deltas, prices, strict=True)) == pytest.approx(
        maker.vector_cost(deltas), abs=1e-11
    )
    if isinstance(maker, LMSR) and len(maker.q) == 2:
        # A two-outcome LMSR price moves monotonically along the path: the average lies between.
        before, after = maker.prices(), maker.apply(deltas).prices()
        for k, price in enumerate(prices):
            low, high = sorted((before[k], after[k]))
            assert low - 1e-12 <= price <= high + 1e-12


def test_uniform_price_of_no_trade_is_the_current_price() -> None:
    maker = LMSR(7.0, (1.0, 2.0, -3.0))
    assert uniform_prices(maker, [0.0, 0.0, 0.0]) == pytest.approx(maker.prices(), abs=1e-15)


def test_a_quadrature_shortfall_is_a_uniform_spread_not_a_maker_loss() -> None:
    # Prices that undercharge (as a poor quadrature would): every order pays the same extra per
    # share, buyers more and sellers less, until the orders cover the target together.
    buy, sell = order(1, 1, 0, 10, 1.0), order(2, 1, 1, -4, 0.0)
    exact_pays = _payments([buy, sell], (0.5, 0.5), target=3 * MICRO)
    assert exact_pays == {(1, 1): 5 * MICRO, (2, 1): -2 * MICRO}  # no shortfall, no spread
    pays = _payments([buy, sell], (0.5, 0.5), target=3 * MICRO + 140_000)
    assert sum(pays.values()) >= 3 * MICRO + 140_000
    assert pays[1, 1] - 5 * MICRO == pytest.approx(100_000, abs=1)  # 0.01 a share on 10 shares
    assert pays[2, 1] + 2 * MICRO == pytest.approx(40_000, abs=1)  # and on 4 shares

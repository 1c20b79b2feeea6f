"""execute_order: rounding in the maker's favour, every rejection, a funded maker stays solvent."""

from __future__ import annotations

import math
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.execute import Rejection, execute_order, fee_micro
from market.ledger import Ledger
from market.lmsr import LMSR, LSLMSR, MarketMaker
from market.types import MICRO, Fill, Order

MAKER = 1_000


def exact_cost(b: float, q: list[Decimal]) -> Decimal:
    """``b·ln Σ exp(q_i/b)`` to 60 digits (the LMSR cost)."""
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 60, MAX_EMAX, MIN_EMIN
        bd, top = Decimal(b), max(q)
        return top + bd * sum(((x - top) / bd).exp() for x in q).ln()


def exact_trade_micro(maker: LMSR, outcome: int, micro_shares: int) -> Decimal:
    """The exact cost of a trade, in micro-units (the trade itself added without rounding)."""
    with localcontext() as ctx:
        ctx.prec = 60
        before = [Decimal(x) for x in maker.q]
        after = list(before)
        after[outcome] += Decimal(micro_shares) / MICRO
        return (exact_cost(maker.b, after) - exact_cost(maker.b, before)) * MICRO


def buy(outcome: int, shares: int, limit: int = MICRO, trader: int = 1) -> Order:
    return Order(
        trader=trader, nonce=1, market=0, outcome=outcome, shares=shares, limit_price=limit
    )


def test_known_buy_rounds_up_and_adds_the_fee() -> None:
    # b = 10, q = (5, 3): one share of outcome 0 costs 0.56216375… units = 562163.75… micro.
    maker = LMSR(10.0, (5.0, 3.0))
    new, fill = execute_order(maker, buy(0, MICRO), fee_per_share=2_000, cash=10**7, held=0)
    assert isinstance(fill, Fill)
    assert fill.cash == 562_164 + 2_000 and fill.fee == 2_000 and fill.shares == MICRO
    assert new.q == (6.0, 3.0) and maker.q == (5.0, 3.0)


def test_known_sell_rounds_proceeds_down_and_deducts_the_fee() -> None:
    # Selling one share of outcome 0 at q = (6, 3) returns exactly what buying it cost:
    # 562163.75… micro, rounded down to 562163; the fee comes out of the proceeds.
    maker = LMSR(10.0, (6.0, 3.0))
    sell = Order(trader=1, nonce=2, market=0, outcome=0, shares=-MICRO, limit_price=0)
    new, fill = execute_order(maker, sell, fee_per_share=2_000, cash=0, held=MICRO)
    assert isinstance(fill, Fill)
    assert fill.cash == -(562_163 - 2_000) and fill.fee == 2_000 and fill.shares == -MICRO
    assert new.q == (5.0, 3.0)


def test_fee_is_rounded_up_per_micro_share() -> None:
    assert fee_micro(1, 1_000) == 1  # 0.001 micro-units, charged as 1
    assert fee_micro(1_500_000, 1_000) == 1_500
    assert fee_micro(-1_500_001, 1_000) == 1_501
    assert fee_micro(123, 0) == 0


lmsr_makers = st.builds(
    LMSR,
    b=st.floats(1.0, 1_000.0),
    q=st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=4).map(tuple),
)


@settings(deadline=None)
@given(lmsr_makers, st.data())
def test_rounding_is_always_in_the_makers_favour(maker: LMSR, data: st.DataObject) -> None:
    outcome = data.draw(st.integers(0, len(maker.q) - 1))
    shares = data.draw(st.integers(-(10**10), 10**10).filter(bool))
    order = Order(1, 1, 0, outcome, shares, limit_price=0 if shares < 0 else 10**9)
    _, fill = execute_order(maker, order, fee_per_share=0, cash=10**18, held=10**12)
    assert isinstance(fill, Fill)
    exact = exact_trade_micro(maker, outcome, shares)
    # The trader pays the exact cost rounded up: never less, and less than one micro-unit more
    # (plus the maker's float-error allowance, here below 1e-4 micro-units).
    assert exact <= fill.cash < exact + 1 + Decimal("1e-4")


def test_a_cost_on_a_micro_unit_boundary_still_rounds_the_makers_way() -> None:
    # b = 1, q = (0, -37): outcome 0's price is 1/(1 + e^-37) = 1 − 8.5e-17, so one micro-share
    # sells for 0.99999999999999991 micro-units, which floats evaluate as exactly 1.0. Rounded
    # down, the seller receives 0, not 1; the maker's error allowance makes that happen.
    maker = LMSR(1.0, (0.0, -37.0))
    sell = Order(1, 1, 0, 0, -1, limit_price=0)
    _, fill = execute_order(maker, sell, fee_per_share=0, cash=0, held=1)
    assert isinstance(fill, Fill) and fill.cash == 0
    # Outcome 1 is worth 8.5e-17 a share: selling it yields nothing but never costs the seller.
    dust = Order(1, 2, 0, 1, -1, limit_price=0)
    _, fill = execute_order(maker, dust, fee_per_share=0, cash=0, held=1)
    assert isinstance(fill, Fill) and fill.cash == 0


def test_limit_is_checked_on_the_average_price_fee_excluded() -> None:
    maker = LMSR(10.0, (5.0, 3.0))
    at_limit = buy(0, MICRO, limit=562_164)
    _, fill = execute_order(maker, at_limit, fee_per_share=50_000, cash=10**7, held=0)
    assert isinstance(
        fill, Fill
    )  # the fee would push the average above the limit: it does not count
    below = buy(0, MICRO, limit=562_163)
    same, rejection = execute_order(maker, below, fee_per_share=0, cash=10**7, held=0)
    assert rejection == Rejection(below, "limit") and same is maker


def test_sell_limit_is_a_floor_on_average_proceeds() -> None:
    maker = LMSR(10.0, (6.0, 3.0))
    floor_ok = Order(1, 1, 0, 0, -MICRO, limit_price=562_163)
    too_high = Order(1, 2, 0, 0, -MICRO, limit_price=562_164)
    assert isinstance(execute_order(maker, floor_ok, fee_per_share=0, cash=0, held=MICRO)[1], Fill)
    assert execute_order(maker, too_high, fee_per_share=0, cash=0, held=MICRO)[1] == Rejection(
        too_high, "limit"
    )


def test_funds_must_cover_cost_plus_fee_exactly() -> None:
    maker = LMSR(10.0, (5.0, 3.0))
    order = buy(0, MICRO)
    _, enough = execute_order(maker, order, fee_per_share=2_000, cash=564_164, held=0)
    assert isinstance(enough, Fill)
    same, short = execute_order(maker, order, fee_per_share=2_000, cash=564_163, held=0)
    assert short == Rejection(order, "funds") and same is maker


def test_a_sell_whose_fee_exceeds_the_proceeds_needs_cash() -> None:
    # One micro-share of a cheap outcome: proceeds round down to 0, the fee is 1 micro-unit.
    maker = LMSR(10.0, (0.0, 0.0))
    dust = Order(1, 1, 0, 0, -1, limit_price=0)
    assert execute_order(maker, dust, fee_per_share=1_000, cash=0, held=5)[1] == Rejection(
        dust, "funds"
    )
    _, fill = execute_order(maker, dust, fee_per_share=1_000, cash=1, held=5)
    assert isinstance(fill, Fill) and fill.cash == 1 and fill.fee == 1


def test_selling_more_than_held_is_a_position_rejection() -> None:
    maker = LMSR(10.0, (9.0, 3.0))
    sell = Order(1, 1, 0, 1, -3 * MICRO, limit_price=0)
    same, rejection = execute_order(maker, sell, fee_per_share=0, cash=10**9, held=3 * MICRO - 1)
    assert rejection == Rejection(sell, "position") and same is maker
    _, fill = execute_order(maker, sell, fee_per_share=0, cash=0, held=3 * MICRO)
    assert isinstance(fill, Fill) and fill.cash < 0


@pytest.mark.parametrize(
    "order",
    [
        Order(1, 1, 0, 2, MICRO, MICRO),  # no outcome 2
        Order(1, 1, 0, -1, MICRO, MICRO),  # no negative outcomes
        Order(1, 1, 0, 0, 0, MICRO),  # nothing to trade
        Order(1, 1, 0, 0, MICRO, -1),  # a negative limit means nothing
    ],
)
def test_malformed_orders_are_invalid(order: Order) -> None:
    maker = LMSR(10.0, (0.0, 0.0))
    same, rejection = execute_order(maker, order, fee_per_share=0, cash=10**9, held=10**9)
    assert rejection == Rejection(order, "invalid") and same is maker


def test_leaving_the_ls_lmsr_domain_is_invalid() -> None:
    maker = LSLMSR.create(outcomes=2, alpha=0.1, b0=1.0)  # q0 = (5, 5)
    sell = Order(1, 1, 0, 0, -6 * MICRO, limit_price=0)
    same, rejection = execute_order(maker, sell, fee_per_share=0, cash=0, held=10 * MICRO)
    assert rejection == Rejection(sell, "invalid") and same is maker


def test_negative_fee_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        execute_order(LMSR(1.0, (0.0, 0.0)), buy(0, 1), fee_per_share=-1, cash=10, held=0)


flows = st.lists(
    st.tuples(
        st.integers(1, 3),  # trader
        st.integers(0, 2),  # outcome (mod the market's outcomes)
        st.integers(-40 * MICRO, 40 * MICRO).filter(bool),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        [
            LMSR.create(outcomes=2, b=5.0),
            LMSR.create(outcomes=3, b=20.0),
            LSLMSR.create(outcomes=2, alpha=0.05, b0=5.0),
            LSLMSR.create(outcomes=3, alpha=0.1, b0=20.0),
        ]
    ),
    flows,
)
def test_funded_maker_can_always_pay_the_winners(
    maker: MarketMaker, flow: list[tuple[int, int, int]]
) -> None:
    # Funded with its subsidy rounded up, the maker's cash covers every outcome's payout after
    # any sequence of trades: the loss bound survives integer rounding.
    ledger = Ledger()
    ledger.mint(MAKER, math.ceil(maker.subsidy() * MICRO))
    for trader in (1, 2, 3):
        ledger.mint(trader, 1_000 * MICRO)
    outcomes = len(maker.q)
    for nonce, (trader, outcome, shares) in enumerate(flow):
        order = Order(trader, nonce, 0, outcome % outcomes, shares, 0 if shares < 0 else MICRO * 2)
        maker, result = execute_order(
            maker,
            order,
            fee_per_share=1_000,
            cash=ledger.cash(trader),
            held=ledger.position(trader, 0, order.outcome),
        )
        if isinstance(result, Fill):
            ledger.apply_fill(result, maker=MAKER)
        for winner in range(outcomes):
            owed = sum(ledger.position(t, 0, winner) for t in (1, 2, 3))
            assert ledger.cash(MAKER) >= owed
    assert ledger.conservation_error() == 0

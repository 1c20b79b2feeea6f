"""LMSR and LS-LMSR: known answers, invariants and loss bounds, against 60-digit references."""

from __future__ import annotations

import dataclasses
import math
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.errors import InvalidTrade
from market.lmsr import LMSR, LSLMSR, log_sum_exp, make_market_maker


def exact_cost(b: float, q: tuple[float, ...]) -> Decimal:
    """``b·ln Σ exp(q_i/b)`` from the exact binary values of the floats, to 60 digits."""
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 60, MAX_EMAX, MIN_EMIN
        bd, qs = Decimal(b), [Decimal(x) for x in q]
        top = max(qs)
        return top + bd * sum(((x - top) / bd).exp() for x in qs).ln()


def exact_ls_cost(alpha: float, q: tuple[float, ...]) -> Decimal:
    """The LS-LMSR cost with ``b = α·Σ q``, to 60 digits."""
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 60, MAX_EMAX, MIN_EMIN
        qs = [Decimal(x) for x in q]
        b = Decimal(alpha) * sum(qs)
        top = max(qs)
        return top + b * sum(((x - top) / b).exp() for x in qs).ln()


liquidity = st.floats(0.5, 1e4)
levels = st.floats(-1e9, 1e9)


@st.composite
def lmsr_states(draw: st.DrawFn, *, spread: float = 300.0) -> LMSR:
    """Makers whose log-odds differ by at most ``2·spread``, at any level up to 1e9 shares."""
    b, level = draw(liquidity), draw(levels)
    offsets = draw(st.lists(st.floats(-spread, spread), min_size=2, max_size=5))
    return LMSR(b, tuple(level + u * b for u in offsets))


@pytest.mark.parametrize(
    ("b", "cost", "price"),
    [
        # b = 10, q = (5, 3): C(q) = 10·ln(e^0.5 + e^0.3) = 10·ln(1.648721 + 1.349859)
        # = 10·ln 2.998580; after the buy C = 10·ln(e^0.6 + e^0.3) = 10·ln 3.171978.
        # Cost 10·ln(3.171978/2.998580) = 10·ln 1.057827 = 0.5622; price 1.822119/3.171978.
        (10.0, 0.5622, 0.5744),
        # b = 1: cost ln((e^6 + e^3)/(e^5 + e^3)) = ln(423.5143/168.4987) = ln 2.513459
        # = 0.9217; price e^6/(e^6 + e^3) = 1/(1 + e^-3) = 0.9526.
        (1.0, 0.9217, 0.9526),
    ],
)
def test_known_values_b10_and_b1(b: float, cost: float, price: float) -> None:
    maker = LMSR(b, (5.0, 3.0))
    after, paid = maker.trade(0, 1.0)
    assert round(paid, 4) == cost
    assert round(after.prices()[0], 4) == price
    assert math.isclose(sum(after.prices()), 1.0, rel_tol=1e-15)


def test_fresh_market_is_uniform_and_bounded_by_b_ln_n() -> None:
    maker = LMSR.create(outcomes=4, b=50.0)
    assert maker.q == (0.0, 0.0, 0.0, 0.0)
    assert maker.prices() == (0.25, 0.25, 0.25, 0.25)
    assert maker.cost() == pytest.approx(50.0 * math.log(4), rel=1e-15)
    assert maker.loss_bound() == pytest.approx(50.0 * math.log(4), rel=1e-15)
    assert maker.subsidy() == maker.loss_bound()


# A double resolves 1 − p only down to 2^-53 ≈ e^-36.7: log-odds spreads up to 30 keep every
# price strictly inside (0, 1) in floating point too; wider spreads are checked just below.
@settings(deadline=None)
@given(lmsr_states(spread=15.0))
def test_prices_sum_to_one_and_lie_strictly_between(maker: LMSR) -> None:
    prices = maker.prices()
    assert all(0.0 < p < 1.0 for p in prices)
    assert math.isclose(math.fsum(prices), 1.0, rel_tol=1e-12)


@settings(deadline=None)
@given(st.lists(st.floats(-1e9, 1e9), min_size=2, max_size=5), st.floats(1e-3, 1e3))
def test_extreme_spreads_neither_overflow_nor_leave_the_simplex(q: list[float], b: float) -> None:
    maker = LMSR(b, tuple(q))
    prices = maker.prices()
    assert all(0.0 <= p <= 1.0 for p in prices)
    assert math.isclose(math.fsum(prices), 1.0, rel_tol=1e-12)
    assert math.isfinite(maker.cost())
    assert maker.cost() >= max(q)  # C(q) > max q: the maker can always pay the winner


@settings(deadline=None)
@given(lmsr_states(), st.data())
def test_trade_cost_matches_60_digit_reference(maker: LMSR, data: st.DataObject) -> None:
    outcome = data.draw(st.integers(0, len(maker.q) - 1))
    shares = data.draw(st.floats(-1e6, 1e6).filter(lambda s: s != 0))
    moved = tuple(x + (shares if i == outcome else 0.0) for i, x in enumerate(maker.q))
    exact = exact_cost(maker.b, moved) - exact_cost(maker.b, maker.q)
    # The float inputs are exact; only the evaluation rounds (C itself may be 1e9).
    tolerance = 1e-12 * (abs(float(exact)) + max(abs(x) for x in maker.q) + maker.b)
    assert abs(maker.trade_cost(outcome, shares) - float(exact)) <= tolerance


def test_selling_a_dominant_outcome_of_1e9_shares() -> None:
    maker = LMSR(10.0, (1e9, 0.0))
    assert maker.prices() == (1.0, 0.0)  # e^-1e8 underflows, honestly
    exact = exact_cost(10.0, (0.0, 0.0)) - exact_cost(10.0, (1e9, 0.0))
    assert maker.trade_cost(0, -1e9) == pytest.approx(float(exact), rel=1e-15)
    assert maker.trade_cost(1, 1e9) == pytest.approx(10.0 * math.log(2), rel=1e-9)


@settings(deadline=None)
@given(lmsr_states(), st.data())
def test_buying_x_then_y_costs_the_same_as_x_plus_y(maker: LMSR, data: st.DataObject) -> None:
    outcome = data.draw(st.integers(0, len(maker.q) - 1))
    x = data.draw(st.floats(-1e4, 1e4))
    y = data.draw(st.floats(-1e4, 1e4))
    middle, first = maker.trade(outcome, x)
    _, second = middle.trade(outcome, y)
    together = maker.trade_cost(outcome, x + y)
    scale = abs(x) + abs(y) + 1e-9 * (max(abs(v) for v in maker.q) + maker.b)
    assert first + second == pytest.approx(together, abs=1e-9 * scale)


@settings(deadline=None)
@given(lmsr_states(), st.data())
def test_vector_cost_is_the_cost_difference(maker: LMSR, data: st.DataObject) -> None:
    deltas = data.draw(st.lists(st.floats(-1e4, 1e4), min_size=len(maker.q), max_size=len(maker.q)))
    moved = tuple(x + d for x, d in zip(maker.q, deltas, strict=True))
    exact = exact_cost(maker.b, moved) - exact_cost(maker.b, maker.q)
    tolerance = 1e-12 * (abs(float(exact)) + max(abs(x) for x in maker.q) + maker.b + 1e4)
    assert abs(maker.vector_cost(deltas) - float(exact)) <= tolerance
    assert maker.apply(deltas).q == moved


trade_paths = st.lists(
    st.tuples(st.integers(0, 3), st.floats(-2e3, 2e3).filter(lambda s: s != 0)),
    min_size=1,
    max_size=40,
)


@settings(deadline=None)
@given(st.integers(2, 4), st.floats(1.0, 500.0), trade_paths)
def test_lmsr_loss_never_exceeds_b_ln_n(
    outcomes: int, b: float, path: list[tuple[int, float]]
) -> None:
    maker = LMSR.create(outcomes=outcomes, b=b)
    collected = 0.0
    for outcome, shares in path:
        maker, cost = maker.trade(outcome % outcomes, shares)
        collected += cost
    # Path independence: the costs add up to C(q_end) − C(q0).
    assert collected == pytest.approx(maker.cost() - b * math.log(outcomes), abs=1e-9 * 1e5)
    for winner in range(outcomes):
        loss = maker.q[winner] - collected
        assert loss <= maker.loss_bound() + 1e-7


def test_lmsr_loss_bound_is_tight() -> None:
    # Buying far into one outcome drives its price to 1: the loss approaches b·ln n.
    _, paid = LMSR.create(outcomes=3, b=20.0).trade(1, 2_000.0)
    assert 2_000.0 - paid == pytest.approx(20.0 * math.log(3), rel=1e-12)


def test_trade_returns_a_new_state_and_leaves_the_old_one() -> None:
    maker = LMSR.create(outcomes=2, b=10.0)
    after, cost = maker.trade(1, 4.0)
    assert maker.q == (0.0, 0.0) and after.q == (0.0, 4.0)
    assert cost > 0 and after.prices()[1] > maker.prices()[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        maker.q = (1.0, 1.0)  # type: ignore[misc]


@pytest.mark.parametrize("outcome", [-1, 2, 7])
def test_unknown_outcome_is_an_invalid_trade(outcome: int) -> None:
    with pytest.raises(InvalidTrade):
        LMSR.create(outcomes=2, b=1.0).trade_cost(outcome, 1.0)
    with pytest.raises(InvalidTrade):
        LSLMSR.create(outcomes=2, alpha=0.1, b0=1.0).trade_cost(outcome, 1.0)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        LMSR(0.0, (0.0, 0.0))
    with pytest.raises(ValueError):
        LMSR(1.0, (0.0,))
    with pytest.raises(ValueError):
        LMSR(1.0, (math.inf, 0.0))
    with pytest.raises(ValueError):
        LSLMSR(0.1, (0.0, 0.0))
    with pytest.raises(InvalidTrade):
        LMSR(1.0, (0.0, 0.0)).vector_cost([1.0])
    with pytest.raises(InvalidTrade):
        LMSR(1.0, (0.0, 0.0)).trade_cost(0, math.nan)


def test_log_sum_exp_is_stable() -> None:
    assert log_sum_exp([1000.0, 1000.0]) == pytest.approx(1000.0 + math.log(2), rel=1e-15)
    assert log_sum_exp([-1000.0, -1000.0]) == pytest.approx(-1000.0 + math.log(2), rel=1e-15)


# ---------------------------------------------------------------- LS-LMSR


def test_ls_lmsr_known_start() -> None:
    # α = 0.05, b0 = 100, n = 2: x = 100/(0.05·2) = 1000, b(q0) = 0.05·2000 = 100.
    # C(q0) = 100·ln(2e^10) = 1000 + 100·ln 2 = 1069.3147; each price is
    # α·ln Z + π_i − Σ w_j π_j = 0.05·(10 + ln 2) + 1/2 − 1/2 = 0.534657.
    maker = LSLMSR.create(outcomes=2, alpha=0.05, b0=100.0)
    assert maker.q == (1000.0, 1000.0) and maker.liquidity() == pytest.approx(100.0)
    assert maker.cost() == pytest.approx(1069.3147, abs=1e-4)
    assert maker.prices() == pytest.approx((0.534657, 0.534657), abs=1e-6)
    assert maker.loss_bound() == pytest.approx(100.0 * math.log(2), rel=1e-15)
    assert maker.subsidy() == maker.loss_bound()


ls_states = st.builds(
    LSLMSR,
    alpha=st.floats(0.005, 0.3),
    q=st.lists(st.floats(1.0, 1e6), min_size=2, max_size=5).map(tuple),
)


@settings(deadline=None)
@given(ls_states)
def test_ls_lmsr_prices_sum_to_at_least_one(maker: LSLMSR) -> None:
    prices = maker.prices()
    assert math.fsum(prices) >= 1.0 - 1e-12
    assert all(p > 0 for p in prices)


@settings(deadline=None)
@given(ls_states, st.data())
def test_ls_lmsr_prices_are_the_gradient_of_the_cost(maker: LSLMSR, data: st.DataObject) -> None:
    # A central difference of the 60-digit cost checks the closed-form price formula.
    outcome = data.draw(st.integers(0, len(maker.q) - 1))
    h = 1e-6 * sum(maker.q)
    up = tuple(x + (h if i == outcome else 0.0) for i, x in enumerate(maker.q))
    down = tuple(x - (h if i == outcome else 0.0) for i, x in enumerate(maker.q))
    rise = exact_ls_cost(maker.alpha, up) - exact_ls_cost(maker.alpha, down)
    slope = rise / (Decimal(up[outcome]) - Decimal(down[outcome]))
    assert maker.prices()[outcome] == pytest.approx(float(slope), abs=1e-7)


@settings(deadline=None)
@given(ls_states, st.floats(0.1, 100.0))
def test_ls_lmsr_cost_is_homogeneous_of_degree_one(maker: LSLMSR, scale: float) -> None:
    bigger = LSLMSR(maker.alpha, tuple(scale * x for x in maker.q))
    assert bigger.cost() == pytest.approx(scale * maker.cost(), rel=1e-12)


@settings(deadline=None)
@given(st.integers(2, 4), st.floats(0.01, 0.2), st.floats(1.0, 500.0), trade_paths)
def test_ls_lmsr_is_path_independent_and_bounded(
    outcomes: int, alpha: float, b0: float, path: list[tuple[int, float]]
) -> None:
    start = LSLMSR.create(outcomes=outcomes, alpha=alpha, b0=b0)
    maker, collected = start, 0.0
    for outcome, shares in path:
        try:
            maker, cost = maker.trade(outcome % outcomes, shares)
        except InvalidTrade:  # a sale below zero outstanding shares: not a possible trade
            assert maker.q[outcome % outcomes] + shares < 0
            continue
        collected += cost
    exact = exact_ls_cost(alpha, maker.q) - exact_ls_cost(alpha, start.q)
    assert collected == pytest.approx(float(exact), abs=1e-9 * (1e5 + sum(maker.q)))
    together = start.vector_cost([maker.q[i] - start.q[i] for i in range(outcomes)])
    assert together == pytest.approx(collected, abs=1e-9 * (1e5 + sum(maker.q)))
    for winner in range(outcomes):
        loss = (maker.q[winner] - start.q[winner]) - collected
        assert loss <= b0 * math.log(outcomes) + 1e-7 * (1 + sum(maker.q))
    assert maker.loss_bound() == pytest.approx(b0 * math.log(outcomes), rel=1e-12)


def test_ls_lmsr_refuses_to_leave_its_domain() -> None:
    maker = LSLMSR.create(outcomes=2, alpha=0.1, b0=10.0)  # q0 = (50, 50)
    with pytest.raises(InvalidTrade):
        maker.trade(0, -51.0)
    with pytest.raises(InvalidTrade):
        maker.apply([-60.0, 0.0])
    after, proceeds = maker.trade(0, -50.0)  # down to exactly zero is still allowed
    assert after.q == (0.0, 50.0) and proceeds < 0
    assert after.q0 == maker.q0  # the start travels with the state


def test_ls_lmsr_spread_grows_with_alpha() -> None:
    narrow = LSLMSR.create(outcomes=3, alpha=0.01, b0=30.0)
    wide = LSLMSR.create(outcomes=3, alpha=0.2, b0=30.0)
    assert 1.0 < sum(narrow.prices()) < sum(wide.prices())


def test_make_market_maker_builds_both_mechanisms() -> None:
    lmsr = make_market_maker(mechanism="lmsr", outcomes=3, liquidity_b=25.0, alpha=0.05)
    ls = make_market_maker(mechanism="ls_lmsr", outcomes=3, liquidity_b=25.0, alpha=0.05)
    assert isinstance(lmsr, LMSR) and lmsr.b == 25.0 and lmsr.q == (0.0, 0.0, 0.0)
    assert isinstance(ls, LSLMSR) and ls.liquidity() == pytest.approx(25.0)
    assert lmsr.loss_bound() == pytest.approx(ls.loss_bound(), rel=1e-12)
    with pytest.raises(ValueError):
        make_market_maker(mechanism="cpmm", outcomes=2, liquidity_b=1.0, alpha=0.1)  # type: ignore[arg-type]

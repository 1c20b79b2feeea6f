"""Ledger: exact conservation, all-or-nothing failures, settlement and a canonical state hash."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.errors import InsufficientFunds, InvalidTrade
from market.ledger import Ledger
from market.types import MICRO, Fill, Order

Op = tuple[Any, ...]
TRADERS = (1, 2, 3, 4)
MAKERS = {0: 100, 1: 101}  # market -> maker account
ACCOUNTS = (*TRADERS, *MAKERS.values())


def fill(trader: int, market: int, outcome: int, shares: int, cash: int, *, nonce: int = 0) -> Fill:
    order = Order(trader, nonce, market, outcome, shares, limit_price=0)
    return Fill(order, shares, cash, fee=0)


def funded() -> Ledger:
    ledger = Ledger()
    ledger.mint(1, 10 * MICRO)
    ledger.mint(2, 5 * MICRO)
    ledger.mint(100, 3 * MICRO)
    return ledger


def test_mint_transfer_and_issued() -> None:
    ledger = funded()
    assert ledger.issued == 18 * MICRO and ledger.total_cash() == 18 * MICRO
    ledger.transfer(1, 3, 4 * MICRO)
    assert (ledger.cash(1), ledger.cash(3)) == (6 * MICRO, 4 * MICRO)
    assert ledger.accounts() == [1, 2, 3, 100]
    assert ledger.conservation_error() == 0
    with pytest.raises(ValueError):
        ledger.mint(1, -1)
    with pytest.raises(ValueError):
        ledger.transfer(1, 2, -1)


def test_failed_transfer_changes_nothing() -> None:
    ledger = funded()
    before = ledger.state_hash()
    with pytest.raises(InsufficientFunds):
        ledger.transfer(2, 9, 5 * MICRO + 1)
    assert ledger.state_hash() == before and ledger.accounts() == [1, 2, 100]


def test_fill_moves_cash_to_the_maker_and_shares_to_the_trader() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, 0, 1, 2 * MICRO, 1_300_000), maker=100)
    assert ledger.cash(1) == 10 * MICRO - 1_300_000 and ledger.cash(100) == 4_300_000
    assert ledger.position(1, 0, 1) == 2 * MICRO and ledger.position(1, 0, 0) == 0
    ledger.apply_fill(fill(1, 0, 1, -MICRO, -700_000, nonce=1), maker=100)
    assert ledger.cash(1) == 10 * MICRO - 600_000 and ledger.position(1, 0, 1) == MICRO
    assert ledger.conservation_error() == 0


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (fill(2, 0, 0, MICRO, 5 * MICRO + 1), InsufficientFunds),  # trader cannot pay
        (fill(1, 0, 0, -MICRO, -1), InvalidTrade),  # sells what it does not hold
        (fill(1, 0, 0, 0, 0), InvalidTrade),  # zero shares
        (fill(1, 0, -1, MICRO, 1), InvalidTrade),  # negative outcome
        (fill(100, 0, 0, MICRO, 1), InvalidTrade),  # the maker trading with itself
    ],
)
def test_failed_fill_changes_nothing(bad: Fill, error: type[Exception]) -> None:
    ledger = funded()
    before = ledger.state_hash()
    with pytest.raises(error):
        ledger.apply_fill(bad, maker=100)
    assert ledger.state_hash() == before


def test_maker_that_cannot_pay_a_seller_changes_nothing() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, 0, 0, 5 * MICRO, 0), maker=100)
    before = ledger.state_hash()
    with pytest.raises(InsufficientFunds):
        ledger.apply_fill(fill(1, 0, 0, -MICRO, -(3 * MICRO + 1), nonce=1), maker=100)
    assert ledger.state_hash() == before


def test_settlement_pays_winners_zeroes_the_market_and_only_once() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, 0, 0, 2 * MICRO, MICRO), maker=100)
    ledger.apply_fill(fill(2, 0, 1, 3 * MICRO, MICRO), maker=100)
    ledger.apply_fill(fill(2, 0, 0, 500_000, 200_000, nonce=1), maker=100)
    ledger.apply_fill(fill(2, 1, 0, MICRO, 0), maker=101)  # another market, untouched
    payouts = ledger.settle(0, 0, maker=100)
    assert payouts == {1: 2 * MICRO, 2: 500_000}
    assert ledger.cash(100) == 3 * MICRO + 2_200_000 - 2_500_000
    assert ledger.cash(1) == 10 * MICRO - MICRO + 2 * MICRO
    assert all(ledger.position(t, 0, o) == 0 for t in TRADERS for o in (0, 1))
    assert ledger.position(2, 1, 0) == MICRO
    assert ledger.is_settled(0) and not ledger.is_settled(1)
    assert ledger.conservation_error() == 0
    with pytest.raises(InvalidTrade):
        ledger.settle(0, 1, maker=100)
    with pytest.raises(InvalidTrade):
        ledger.apply_fill(fill(1, 0, 0, MICRO, 1, nonce=5), maker=100)


def test_settlement_the_maker_cannot_cover_changes_nothing() -> None:
    ledger = funded()
    ledger.apply_fill(fill(1, 0, 1, 9 * MICRO, 0), maker=100)  # maker holds 3 units, owes 9
    before = ledger.state_hash()
    with pytest.raises(InvalidTrade):
        ledger.settle(0, 1, maker=100)
    assert ledger.state_hash() == before and not ledger.is_settled(0)
    assert ledger.settle(0, 0, maker=100) == {}  # the other outcome costs nothing


def test_copy_is_independent() -> None:
    ledger = funded()
    twin = ledger.copy()
    assert twin.state_hash() == ledger.state_hash()
    twin.transfer(1, 2, 1)
    twin.apply_fill(fill(2, 0, 0, MICRO, 0), maker=100)
    twin.settle(1, 0, maker=101)
    assert ledger.cash(1) == 10 * MICRO and ledger.position(2, 0, 0) == 0
    assert not ledger.is_settled(1) and twin.state_hash() != ledger.state_hash()


def test_hash_changes_when_one_micro_unit_moves() -> None:
    ledger = funded()
    moved = ledger.copy()
    moved.transfer(1, 2, 1)
    assert moved.state_hash() != ledger.state_hash()
    back = moved.copy()
    back.transfer(2, 1, 1)
    assert back.state_hash() == ledger.state_hash()


def test_hash_distinguishes_positions_and_settled_markets() -> None:
    base = funded()
    outcome0, outcome1 = base.copy(), base.copy()
    outcome0.apply_fill(fill(1, 0, 0, 1, 0), maker=100)
    outcome1.apply_fill(fill(1, 0, 1, 1, 0), maker=100)
    assert len({base.state_hash(), outcome0.state_hash(), outcome1.state_hash()}) == 3
    settled0, settled1 = base.copy(), base.copy()
    settled0.settle(0, 0, maker=100)
    settled1.settle(0, 1, maker=100)
    assert len({base.state_hash(), settled0.state_hash(), settled1.state_hash()}) == 3


def test_hash_stays_canonical_beyond_64_bits() -> None:
    first, second = Ledger(), Ledger()
    first.mint(1, 2**70)
    first.mint(2, 5)
    second.mint(2, 5)
    second.mint(1, 2**70)
    assert first.state_hash() == second.state_hash()
    first.transfer(1, 2, 1)
    assert first.state_hash() != second.state_hash()


def test_a_position_sold_back_to_zero_hashes_like_none() -> None:
    ledger = funded()
    before = ledger.state_hash()
    ledger.apply_fill(fill(1, 0, 0, MICRO, 0), maker=100)
    ledger.apply_fill(fill(1, 0, 0, -MICRO, 0, nonce=1), maker=100)
    assert ledger.state_hash() == before


mints = st.dictionaries(st.sampled_from(ACCOUNTS), st.integers(1, 10**9), min_size=1)
buys = st.lists(
    st.tuples(
        st.sampled_from(TRADERS), st.sampled_from((0, 1)), st.integers(0, 2), st.integers(1, 10**6)
    ),
    max_size=12,
)


@settings(deadline=None)
@given(mints, buys, st.randoms(use_true_random=False))
def test_equal_states_hash_equally_whatever_the_insertion_order(
    minted: dict[int, int], trades: list[tuple[int, int, int, int]], rng: random.Random
) -> None:
    # Free fills and mints commute, so any two orders reach the same state.
    def build(mint_order: list[int], trade_order: list[tuple[int, int, int, int]]) -> Ledger:
        ledger = Ledger()
        for account in mint_order:
            ledger.mint(account, minted[account])
        for trader, market, outcome, shares in trade_order:
            ledger.apply_fill(fill(trader, market, outcome, shares, 0), maker=MAKERS[market])
        return ledger

    shuffled_mints, shuffled_trades = list(minted), list(trades)
    rng.shuffle(shuffled_mints)
    rng.shuffle(shuffled_trades)
    first, second = build(list(minted), trades), build(shuffled_mints, shuffled_trades)
    assert first.state_hash() == second.state_hash()
    assert first.accounts() == second.accounts() == sorted(minted)


accounts = st.sampled_from(ACCOUNTS)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("transfer"), accounts, accounts, st.integers(0, 4 * MICRO)),
        st.tuples(
            st.just("fill"),
            st.sampled_from(TRADERS),
            st.sampled_from((0, 1)),
            st.integers(0, 1),
            st.integers(-3 * MICRO, 3 * MICRO),
            st.integers(-3 * MICRO, 3 * MICRO),
        ),
        st.tuples(st.just("settle"), st.sampled_from((0, 1)), st.integers(0, 1)),
    ),
    max_size=40,
)


class Model:
    """A plain reimplementation of the ledger's rules, to predict every success and failure."""

    def __init__(self, minted: dict[int, int]) -> None:
        self.cash = dict(minted)
        self.positions: dict[tuple[int, int, int], int] = {}
        self.settled: set[int] = set()

    def expected_error(self, op: Op) -> type[Exception] | None:
        kind = op[0]
        if kind == "transfer":
            return InsufficientFunds if self.cash.get(op[1], 0) < op[3] else None
        if kind == "fill":
            _, trader, market, outcome, shares, cash = op
            held = self.positions.get((trader, market, outcome), 0)
            if shares == 0 or market in self.settled or held + shares < 0:
                return InvalidTrade
            payer = trader if cash >= 0 else MAKERS[market]
            return InsufficientFunds if self.cash.get(payer, 0) < abs(cash) else None
        _, market, outcome = op
        owed = sum(v for (_, m, o), v in self.positions.items() if m == market and o == outcome)
        if market in self.settled or self.cash.get(MAKERS[market], 0) < owed:
            return InvalidTrade
        return None

    def move(self, src: int, dst: int, amount: int) -> None:
        self.cash[src] = self.cash.get(src, 0) - amount
        self.cash[dst] = self.cash.get(dst, 0) + amount

    def apply(self, op: Op) -> None:
        if op[0] == "transfer":
            self.move(op[1], op[2], op[3])
        elif op[0] == "fill":
            _, trader, market, outcome, shares, cash = op
            self.move(trader, MAKERS[market], cash)
            key = (trader, market, outcome)
            self.positions[key] = self.positions.get(key, 0) + shares
        else:
            _, market, outcome = op
            for (trader, m, o), held in list(self.positions.items()):
                if m == market:
                    if o == outcome:
                        self.move(MAKERS[market], trader, held)
                    del self.positions[(trader, m, o)]
            self.settled.add(market)


@settings(max_examples=150, deadline=None)
@given(mints, operations)
def test_random_operations_conserve_money_and_fail_atomically(
    minted: dict[int, int], ops: list[Op]
) -> None:
    ledger, model = Ledger(), Model(minted)
    for account, amount in minted.items():
        ledger.mint(account, amount)
    for nonce, op in enumerate(ops):
        expected = model.expected_error(op)
        before = ledger.state_hash()
        try:
            if op[0] == "transfer":
                ledger.transfer(op[1], op[2], op[3])
            elif op[0] == "fill":
                _, trader, market, outcome, shares, cash = op
                ledger.apply_fill(
                    fill(trader, market, outcome, shares, cash, nonce=nonce), maker=MAKERS[market]
                )
            else:
                ledger.settle(op[1], op[2], maker=MAKERS[op[1]])
        except (InsufficientFunds, InvalidTrade) as error:
            assert type(error) is expected, op
            assert ledger.state_hash() == before, op
        else:
            assert expected is None, op
            model.apply(op)
        assert ledger.conservation_error() == 0
        assert ledger.issued == sum(minted.values())
        assert all(ledger.cash(a) == model.cash.get(a, 0) >= 0 for a in ACCOUNTS)
        assert all(
            ledger.position(t, m, o) == model.positions.get((t, m, o), 0) >= 0
            for t in TRADERS
            for m in (0, 1)
            for o in (0, 1)
        )
        assert all(ledger.is_settled(m) == (m in model.settled) for m in (0, 1))

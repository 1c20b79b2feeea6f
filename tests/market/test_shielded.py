"""One-time addresses: the exchange books every trade against the account behind the address."""

from __future__ import annotations

from dataclasses import replace

import pytest

from market.accounts import ESCROW, MAKER_BASE, ONE_TIME_BASE, ShieldedPool, maker_account
from market.crypto import commit
from market.exchange import Exchange, maker_funding
from market.execute import Rejection
from market.ledger import Ledger
from market.lmsr import make_market_maker
from market.types import MICRO, Fill, Order, to_micro

ACCOUNT = 3


def _exchange(cash: float = 100.0) -> Exchange:
    maker = make_market_maker(mechanism="lmsr", outcomes=2, liquidity_b=20.0, alpha=0.05)
    ledger = Ledger()
    ledger.mint(ACCOUNT, to_micro(cash))
    ledger.mint(maker_account(0), maker_funding(maker))
    return Exchange([maker], ledger, fee_per_share=0)


def _buy(trader: int, nonce: int, shares: float = 5.0) -> Order:
    return Order(trader, nonce, 0, 1, to_micro(shares), MICRO)


def test_the_pool_mints_one_address_per_order_above_every_trader_below_every_maker() -> None:
    pool = ShieldedPool()
    first, second = pool.mint(ACCOUNT, 0), pool.mint(ACCOUNT, 1)
    assert first != second and ONE_TIME_BASE <= first < MAKER_BASE
    assert pool.mint(ACCOUNT, 0) == first  # asking again gives the same address
    assert pool.owner(first) == pool.owner(second) == ACCOUNT
    assert pool.owner(ACCOUNT) == ACCOUNT  # an account is its own
    with pytest.raises(ValueError):
        pool.mint(ACCOUNT + 1, 0)  # an address belongs to one account
    with pytest.raises(ValueError):
        pool.mint(first, 5)  # an address cannot own an address
    # it fits the order's 32-bit trader field
    assert Order.decode(_buy(pool.mint(ACCOUNT, 2**31 - 2), 7).encode()).trader == 2**32 - 2


def test_a_trade_under_an_address_is_booked_to_the_account_and_names_the_address() -> None:
    exchange = _exchange()
    sent = _buy(exchange.pool.mint(ACCOUNT, 0), 0)
    result = exchange.execute(sent)
    assert isinstance(result, Fill) and result.order == sent
    assert exchange.ledger.position(ACCOUNT, 0, 1) == to_micro(5.0)
    assert exchange.ledger.position(sent.trader, 0, 1) == 0
    assert exchange.ledger.cash(sent.trader) == 0
    assert exchange.ledger.cash(ACCOUNT) == to_micro(100.0) - result.cash
    # the same trade from the account itself costs the same and moves the same state
    plain = _exchange()
    same = plain.execute(replace(sent, trader=ACCOUNT))
    assert isinstance(same, Fill) and same.cash == result.cash
    assert plain.ledger.position(ACCOUNT, 0, 1) == exchange.ledger.position(ACCOUNT, 0, 1)


def test_a_batch_spends_one_budget_across_an_accounts_addresses() -> None:
    # each buy alone fits the account's cash; both together do not. Budgets kept per address
    # would let both through, and the ledger would then refuse to pay
    exchange = _exchange(cash=4.0)
    pool = exchange.pool
    orders = [_buy(pool.mint(ACCOUNT, n), n, shares=5.0) for n in range(2)]
    result = exchange.execute_batch(orders)
    assert len(result.fills) == 1 and len(result.rejections) == 1
    [rejection] = result.rejections
    assert isinstance(rejection, Rejection) and rejection.order in orders
    assert rejection.reason == "funds"
    assert {f.order for f in result.fills} | {rejection.order} == set(orders)
    assert exchange.ledger.position(ACCOUNT, 0, 1) == to_micro(5.0)


def test_a_commitment_under_an_address_escrows_and_refunds_the_accounts_deposit() -> None:
    exchange = _exchange()
    exchange.reveal_deadline_s = 10.0
    sent = _buy(exchange.pool.mint(ACCOUNT, 0), 0)
    salt = bytes(range(16))
    commitment = commit(sent.encode(), salt)
    assert exchange.commit(sent.trader, commitment, to_micro(2.0), t=1.0)
    assert exchange.ledger.cash(ACCOUNT) == to_micro(98.0)
    assert exchange.ledger.cash(ESCROW) == to_micro(2.0)
    # a reveal naming the account instead of the committed address does not open it
    as_account = exchange.reveal(replace(sent, trader=ACCOUNT), salt, commitment, t=2.0)
    assert isinstance(as_account, Rejection) and as_account.reason == "invalid"
    result = exchange.reveal(sent, salt, commitment, t=3.0)
    assert isinstance(result, Fill) and result.order == sent
    assert exchange.ledger.cash(ESCROW) == 0
    assert exchange.ledger.position(ACCOUNT, 0, 1) == to_micro(5.0)
    assert exchange.ledger.cash(ACCOUNT) == to_micro(100.0) - result.cash


def test_every_copy_of_the_exchange_consults_the_same_pool() -> None:
    exchange = _exchange()
    replica = exchange.copy()
    sent = _buy(exchange.pool.mint(ACCOUNT, 0), 0)  # minted after the copy was made
    assert isinstance(replica.execute(sent), Fill)
    assert replica.ledger.position(ACCOUNT, 0, 1) == to_micro(5.0)
    assert replica.state_hash() != exchange.state_hash()
    exchange.execute(sent)
    assert replica.state_hash() == exchange.state_hash()

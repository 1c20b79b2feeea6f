"""The chain's commit-reveal rules: deadlines and forfeits are judged by the block's time."""

from __future__ import annotations

from market.accounts import ESCROW, TREASURY, maker_account
from market.crypto import commit
from market.exchange import Exchange, maker_funding
from market.execute import Rejection
from market.ledger import Ledger
from market.lmsr import make_market_maker
from market.types import MICRO, Fill, Order, to_micro

ORDER = Order(trader=1, nonce=0, market=0, outcome=1, shares=2 * MICRO, limit_price=MICRO)
SALT = bytes(range(16))
DEPOSIT = to_micro(5.0)


def _exchange(deadline: float | None = 10.0) -> tuple[Exchange, bytes]:
    maker = make_market_maker(mechanism="lmsr", outcomes=2, liquidity_b=20.0, alpha=0.05)
    ledger = Ledger()
    ledger.mint(1, to_micro(100.0))
    ledger.mint(maker_account(0), maker_funding(maker))
    exchange = Exchange([maker], ledger, fee_per_share=0)
    exchange.reveal_deadline_s = deadline
    commitment = commit(ORDER.encode(), SALT)
    assert exchange.commit(1, commitment, DEPOSIT, t=100.0)
    return exchange, commitment


def test_a_reveal_within_the_deadline_refunds_and_executes() -> None:
    exchange, commitment = _exchange()
    result = exchange.reveal(ORDER, SALT, commitment, t=110.0)  # at the deadline: in time
    assert isinstance(result, Fill)
    assert exchange.ledger.cash(ESCROW) == 0 and commitment not in exchange.commitments


def test_a_late_reveal_is_rejected_and_its_deposit_forfeited() -> None:
    exchange, commitment = _exchange()
    result = exchange.reveal(ORDER, SALT, commitment, t=110.5)
    assert result == Rejection(ORDER, "late")
    assert exchange.ledger.cash(TREASURY) == DEPOSIT and exchange.ledger.cash(ESCROW) == 0
    assert exchange.ledger.position(1, 0, 1) == 0
    assert commitment not in exchange.commitments


def test_a_forfeit_before_the_deadline_is_refused() -> None:
    exchange, commitment = _exchange()
    assert not exchange.forfeit(commitment, t=105.0)
    assert exchange.ledger.cash(ESCROW) == DEPOSIT
    assert exchange.forfeit(commitment, t=110.5)
    assert exchange.ledger.cash(TREASURY) == DEPOSIT


def test_an_invalid_reveal_leaves_the_deposit_to_be_forfeited() -> None:
    exchange, commitment = _exchange()
    assert exchange.reveal(ORDER, bytes(16), commitment, t=101.0) == Rejection(ORDER, "invalid")
    assert exchange.ledger.cash(ESCROW) == DEPOSIT
    assert exchange.forfeit(commitment, t=111.0)
    assert exchange.ledger.cash(TREASURY) == DEPOSIT


def test_without_a_deadline_nothing_is_ever_late_or_forfeited() -> None:
    exchange, commitment = _exchange(deadline=None)
    assert not exchange.forfeit(commitment, t=1e9)
    assert isinstance(exchange.reveal(ORDER, SALT, commitment, t=1e9), Fill)


def test_the_commitment_time_is_part_of_the_state() -> None:
    one, _ = _exchange()
    two, _ = _exchange()
    assert one.state_hash() == two.state_hash()
    other = Exchange(one.makers, one.ledger.copy(), fee_per_share=0)
    other.commitments = {c: (tr, d, t + 1.0) for c, (tr, d, t) in one.commitments.items()}
    assert other.state_hash() != one.state_hash()

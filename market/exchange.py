"""The replicated state machine: market makers plus a ledger, advanced one block at a time.

Every replica (and the sequencer, whose copy is the run's record) holds an :class:`Exchange` and
applies the same blocks in the same order, so equal inputs give equal state hashes; the runner
compares them to report replica divergence.

Accounts are plain integers: traders use their trader ids, :func:`maker_account` gives each
market's maker its own account, and :data:`TREASURY` collects priority fees (standing for the
sequencers), forfeited deposits and the treasury's share of bonds.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from market.execute import Rejection, execute_order
from market.ledger import Ledger
from market.lmsr import MarketMaker
from market.types import MICRO, Fill, Order

MAKER_BASE = 1 << 40
"""Maker accounts are ``MAKER_BASE + market``, far above any trader id."""

TREASURY = (1 << 41) - 1
"""The account that collects forfeited deposits and the treasury's share of bonds."""


def maker_account(market: int) -> int:
    """The ledger account of market ``market``'s market maker."""
    return MAKER_BASE + market


def maker_funding(maker: MarketMaker) -> int:
    """Micro-units a maker is funded with: its subsidy rounded up, so it can always pay out."""
    return math.ceil(maker.subsidy() * MICRO)


@dataclass(frozen=True, slots=True)
class Settlement:
    """A market's final outcome as agreed by the reporters.

    Attributes:
        market: the market settled.
        outcome: the winning outcome.
        voters: the reporters whose votes for ``outcome`` justify it (sorted, distinct).
    """

    market: int
    outcome: int
    voters: tuple[int, ...]


class Exchange:
    """Market makers and a ledger; the state every replica keeps.

    Args:
        makers: one market maker per market, in market order.
        ledger: balances, already minted (traders' budgets, makers' funding).
        fee_per_share: the market's fee in micro-units per share, paid to the maker.
    """

    __slots__ = ("closed", "fee_per_share", "ledger", "makers")

    def __init__(
        self, makers: Sequence[MarketMaker], ledger: Ledger, *, fee_per_share: int
    ) -> None:
        self.makers = list(makers)
        self.ledger = ledger
        self.fee_per_share = fee_per_share
        self.closed: set[int] = set()

    def copy(self) -> Exchange:
        """An independent replica of this state."""
        other = Exchange(self.makers, self.ledger.copy(), fee_per_share=self.fee_per_share)
        other.closed = set(self.closed)
        return other

    def execute(self, order: Order) -> Fill | Rejection:
        """Execute one order; a rejection changes nothing."""
        if not 0 <= order.market < len(self.makers):
            return Rejection(order, "invalid")
        if order.market in self.closed or self.ledger.is_settled(order.market):
            return Rejection(order, "closed")
        maker = self.makers[order.market]
        held = self.ledger.position(order.trader, order.market, order.outcome)
        new_maker, result = execute_order(
            maker,
            order,
            fee_per_share=self.fee_per_share,
            cash=self.ledger.cash(order.trader) - order.priority_fee,
            held=held,
        )
        if isinstance(result, Fill):
            self.ledger.apply_fill(result, maker=maker_account(order.market))
            if order.priority_fee:
                self.ledger.transfer(order.trader, TREASURY, order.priority_fee)
            self.makers[order.market] = new_maker
        return result

    def close(self, market: int) -> None:
        """Stop trading in ``market`` (its close time has passed)."""
        self.closed.add(market)

    def settle(self, settlement: Settlement) -> dict[int, int]:
        """Pay out ``settlement``'s winning shares; returns the payouts by account."""
        self.closed.add(settlement.market)
        return self.ledger.settle(
            settlement.market, settlement.outcome, maker=maker_account(settlement.market)
        )

    def prices(self, market: int) -> tuple[float, ...]:
        """Current prices of ``market``."""
        return self.makers[market].prices()

    def state_hash(self) -> bytes:
        """SHA-256 over the ledger's hash and every maker's outstanding shares."""
        digest = hashlib.sha256(self.ledger.state_hash())
        for maker in self.makers:
            digest.update(struct.pack(f">{len(maker.q)}d", *maker.q))
        digest.update(struct.pack(f">{len(self.closed)}I", *sorted(self.closed)))
        return digest.digest()

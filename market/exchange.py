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
from dataclasses import dataclass, replace

from market.batch import BatchResult, clear_batch
from market.crypto import open_commitment
from market.errors import CryptoError
from market.execute import Rejection, execute_order
from market.ledger import Ledger
from market.lmsr import MarketMaker
from market.types import MICRO, Fill, Order

MAKER_BASE = 1 << 40
"""Maker accounts are ``MAKER_BASE + market``, far above any trader id."""

TREASURY = (1 << 41) - 1
"""The account that collects priority fees, forfeited deposits and the treasury's bond shares."""

ESCROW = (1 << 41) - 2
"""The account that holds commit-reveal deposits until the order is revealed or forfeited."""


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

    def evidence_bytes(self) -> int:
        """Bytes of the evidence on the wire: two per voter id."""
        return 2 * len(self.voters)


class Exchange:
    """Market makers and a ledger; the state every replica keeps.

    Args:
        makers: one market maker per market, in market order.
        ledger: balances, already minted (traders' budgets, makers' funding).
        fee_per_share: the market's fee in micro-units per share, paid to the maker.
    """

    __slots__ = ("closed", "commitments", "fee_per_share", "ledger", "makers")

    def __init__(
        self, makers: Sequence[MarketMaker], ledger: Ledger, *, fee_per_share: int
    ) -> None:
        self.makers = list(makers)
        self.ledger = ledger
        self.fee_per_share = fee_per_share
        self.closed: set[int] = set()
        self.commitments: dict[bytes, tuple[int, int]] = {}

    def copy(self) -> Exchange:
        """An independent replica of this state."""
        other = Exchange(self.makers, self.ledger.copy(), fee_per_share=self.fee_per_share)
        other.closed = set(self.closed)
        other.commitments = dict(self.commitments)
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

    def execute_batch(self, orders: Sequence[Order]) -> BatchResult:
        """Clear a batch at one uniform price per outcome (order-independent, budgets kept).

        Orders for closed or settled markets are rejected as ``closed`` before clearing.
        """
        open_orders = [
            o
            for o in orders
            if o.market not in self.closed
            and 0 <= o.market < len(self.makers)
            and not self.ledger.is_settled(o.market)
        ]
        late = [Rejection(o, "closed") for o in orders if o not in open_orders]
        ledger = self.ledger
        traders = {o.trader for o in open_orders}
        cash = {t: ledger.cash(t) for t in traders}
        held = {
            (o.trader, o.market, o.outcome): ledger.position(o.trader, o.market, o.outcome)
            for o in open_orders
        }
        result = clear_batch(
            self.makers, open_orders, fee_per_share=self.fee_per_share, cash=cash, held=held
        )
        # fills that pay the maker first: a thinly funded maker pays sellers from them
        for fill in sorted(result.fills, key=lambda f: (f.cash < 0, f.order.key)):
            ledger.apply_fill(fill, maker=maker_account(fill.order.market))
        self.makers = list(result.makers)
        if not late:
            return result
        rejections = tuple(sorted([*result.rejections, *late], key=lambda r: r.order.key))
        return replace(result, rejections=rejections)

    def commit(self, trader: int, commitment: bytes, deposit: int) -> bool:
        """Record a commitment and escrow its deposit; False (nothing changes) if unpaid."""
        if commitment in self.commitments or self.ledger.cash(trader) < deposit:
            return False
        self.ledger.transfer(trader, ESCROW, deposit)
        self.commitments[commitment] = (trader, deposit)
        return True

    def reveal(self, order: Order, salt: bytes, commitment: bytes) -> Fill | Rejection:
        """Open a commitment: refund its deposit and execute the order it hides.

        A reveal that does not open its commitment, or comes from another trader, is
        rejected as ``invalid`` and the deposit stays in escrow (to be forfeited).
        """
        entry = self.commitments.get(commitment)
        if entry is None or entry[0] != order.trader:
            return Rejection(order, "invalid")
        try:
            open_commitment(commitment, order.encode(), salt)
        except CryptoError:
            return Rejection(order, "invalid")
        del self.commitments[commitment]
        self.ledger.transfer(ESCROW, order.trader, entry[1])
        return self.execute(order)

    def forfeit(self, commitment: bytes) -> bool:
        """Move an unrevealed commitment's deposit to the treasury."""
        entry = self.commitments.pop(commitment, None)
        if entry is None:
            return False
        self.ledger.transfer(ESCROW, TREASURY, entry[1])
        return True

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
        for commitment, (trader, deposit) in sorted(self.commitments.items()):
            digest.update(commitment + struct.pack(">qq", trader, deposit))
        return digest.digest()

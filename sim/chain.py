"""Blocks, replicas and catch-up by height: the protocol rules, apart from the clock.

A rotating sequencer closes a block every ``block_interval_s`` from the orders in its mempool
(ordered by priority fee, then arrival) and emits it only when it is not empty. Blocks diffuse
like any message. Every replica applies blocks strictly in height order; a replica that sees a
gap (a later block arrived, the earlier one did not) fetches the missing block from a peer by
height, so loss delays a replica but never makes it diverge.

Assumption, stated once: the rotating sequencers agree on the chain tip among themselves (their
own consensus is not simulated), so a proposer always builds on the latest height and never
includes an order or a settlement the chain already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from market.exchange import Exchange, Settlement
from market.execute import Rejection
from market.types import ORDER_WIRE_BYTES, Fill, Order

BLOCK_HEADER_BYTES = 96
"""Height, time, proposer, parent hash and state root, as a real header would carry."""

SETTLEMENT_BYTES = 8
"""Market, outcome and the voter bitmap's length; voters add 2 bytes each."""


@dataclass(frozen=True, slots=True)
class Block:
    """One block of the chain.

    Attributes:
        height: 0, 1, 2, ... without gaps (empty blocks are never emitted).
        t: simulated time the block was closed.
        proposer: the sequencer node that closed it.
        closes: markets whose trading stops before this block's orders.
        orders: orders in execution order.
        settlements: markets settled after the orders.
    """

    height: int
    t: float
    proposer: int
    closes: tuple[int, ...] = ()
    orders: tuple[Order, ...] = ()
    settlements: tuple[Settlement, ...] = ()

    def size(self) -> int:
        """Bytes on the wire."""
        voters = sum(len(s.voters) for s in self.settlements)
        return (
            BLOCK_HEADER_BYTES
            + 4 * len(self.closes)
            + ORDER_WIRE_BYTES * len(self.orders)
            + SETTLEMENT_BYTES * len(self.settlements)
            + 2 * voters
        )


def order_priority(order: Order, arrival: float) -> tuple[int, float, int, int]:
    """Sort key of the sequencer: highest priority fee first, then earliest arrival."""
    return (-order.priority_fee, arrival, order.trader, order.nonce)


def settlement_valid(settlement: Settlement, *, reporters: frozenset[int], quorum: int) -> bool:
    """A settlement counts only with ``quorum`` distinct reporters behind it."""
    voters = settlement.voters
    return len(set(voters)) == len(voters) >= quorum and set(voters) <= reporters


def apply_block(
    exchange: Exchange, block: Block, *, reporters: frozenset[int], quorum: int
) -> list[Fill | Rejection]:
    """Apply ``block`` to ``exchange``: closes, then orders, then valid settlements."""
    for market in block.closes:
        exchange.close(market)
    results = [exchange.execute(order) for order in block.orders]
    for settlement in block.settlements:
        if settlement_valid(settlement, reporters=reporters, quorum=quorum) and (
            not exchange.ledger.is_settled(settlement.market)
        ):
            exchange.settle(settlement)
    return results


@dataclass(slots=True)
class Replica:
    """A node's copy of the exchange, applying blocks strictly in height order.

    Attributes:
        node: the node holding this replica.
        exchange: its state.
        next_height: the height it needs next.
        pending: blocks received ahead of a gap.
    """

    node: int
    exchange: Exchange
    reporters: frozenset[int]
    quorum: int
    next_height: int = 0
    pending: dict[int, Block] = field(default_factory=dict)

    def receive(self, block: Block) -> int:
        """Take a block; apply it and any pending successors in order. Returns blocks applied."""
        if block.height < self.next_height:
            return 0
        self.pending[block.height] = block
        applied = 0
        while self.next_height in self.pending:
            ready = self.pending.pop(self.next_height)
            apply_block(self.exchange, ready, reporters=self.reporters, quorum=self.quorum)
            self.next_height += 1
            applied += 1
        return applied

    def missing(self, known_height: int) -> int | None:
        """The height to fetch when blocks up to ``known_height`` exist, or None."""
        if self.next_height <= known_height and self.next_height not in self.pending:
            return self.next_height
        return None


def build_block(
    *,
    height: int,
    t: float,
    proposer: int,
    mempool: dict[tuple[int, int], tuple[Order, float]],
    included: set[tuple[int, int]],
    closes: Sequence[int],
    settlements: Sequence[Settlement],
) -> Block | None:
    """The block a proposer closes from its mempool, or None when it would be empty."""
    fresh = [(order, arrival) for key, (order, arrival) in mempool.items() if key not in included]
    fresh.sort(key=lambda pair: order_priority(*pair))
    if not fresh and not closes and not settlements:
        return None
    return Block(height, t, proposer, tuple(closes), tuple(o for o, _ in fresh), tuple(settlements))

"""``transparent``: plaintext orders diffuse and wait in the sequencers' mempools.

Every node that relays an order reads it, so its first plaintext sighting by another node is
its first hop. The rotating sequencer orders its mempool by priority fee, then arrival.
"""

from __future__ import annotations

from collections.abc import Sequence

from market.execute import Rejection
from market.types import Fill, Order
from sim.chain.blocks import Block, OrderTx, Tx, TxResult, order_priority
from sim.chain.mempool import Mempools
from sim.host.component import OrderFlow
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.results.records import OrderRecord
from sim.scenario import Privacy


class Transparent(OrderFlow):
    """Plaintext gossip into every sequencer's mempool."""

    mode = "transparent"

    def __init__(self, sim: Host, *, privacy: Privacy, watchers: frozenset[int]) -> None:
        super().__init__(sim, privacy=privacy, watchers=watchers)
        self.mempools: Mempools[Order] = Mempools(sim.validators)

    def submit(self, record: OrderRecord) -> None:
        """Diffuse the order's 32 plaintext bytes from the trader's node."""
        record.flood = self.sim.spread(
            record.node,
            OrderTx(self.public_order(record)),
            to=self.receive,
            listeners=self.listeners(),
        )

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """A plaintext order reaches ``node``: whoever holds it reads it; sequencers pool it."""
        match msg:
            case OrderTx(order=order):
                record = self.sim.by_key[order.key]
                self.seen_plaintext(record, node)
                if node in self.watchers:
                    self.overheard(record, msg, read=order)
                self.mempools.add(node, order.key, order, self.sim.now)
            case _:
                unexpected(msg)

    def propose(self, proposer: int) -> list[Tx]:
        """The proposer's mempool, without what the chain holds, by priority fee then arrival."""
        fresh = self.mempools.take(proposer, order=order_priority)
        for order, arrival in fresh:
            self.sim.by_key[order.key].sequenced(arrival)
        return [OrderTx(order) for order, _ in fresh]

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Record each order's fill or rejection."""
        record_fills(self.sim.by_key, block, results)


def record_fills(
    by_key: dict[tuple[int, int], OrderRecord], block: Block, results: Sequence[TxResult]
) -> None:
    """Record the fill or rejection of every plaintext order executed in ``block``."""
    for tx, result in zip(block.txs, results, strict=True):
        if isinstance(tx, OrderTx) and isinstance(result, Fill | Rejection):
            by_key[tx.order.key].finish(result, height=block.height, t=block.t)

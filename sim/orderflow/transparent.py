"""``transparent``: plaintext orders diffuse and wait in the sequencers' mempools.

Every node that relays an order reads it, so its first plaintext sighting by another node is
its first hop. The rotating sequencer orders its mempool by priority fee, then arrival.
"""

from __future__ import annotations

from collections.abc import Sequence

from market.execute import Rejection
from market.types import ORDER_WIRE_BYTES, Fill, Order
from sim.chain.blocks import Block, OrderTx, Tx, TxResult, order_priority
from sim.chain.mempool import Mempools
from sim.host.component import OrderFlow
from sim.host.host import Host
from sim.results.records import OrderRecord


class Transparent(OrderFlow):
    """Plaintext gossip into every sequencer's mempool."""

    mode = "transparent"

    def __init__(self, sim: Host) -> None:
        super().__init__(sim)
        self.mempools: Mempools[Order] = Mempools(sim.validators)

    def submit(self, record: OrderRecord) -> None:
        """Diffuse the order's 32 plaintext bytes from the trader's node."""
        order = record.order

        def arrive(node: int, _sender: int) -> None:
            self.seen_plaintext(record, node)
            if node in self.watchers:
                self.observe(record, size=ORDER_WIRE_BYTES, readable=True)
            self.mempools.add(node, order.key, order, self.sim.now)

        record.flood = self.sim.propagate(
            record.node,
            kind="order",
            size=ORDER_WIRE_BYTES,
            on_arrival=arrive,
            listeners=self.listeners(),
        )

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

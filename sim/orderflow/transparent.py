"""``transparent``: plaintext orders diffuse and wait in the sequencers' mempools.

Every node that relays an order reads it, so its first plaintext sighting by another node is
its first hop. The rotating sequencer orders its mempool by priority fee, then arrival.
"""

from __future__ import annotations

from collections.abc import Sequence

from market.execute import Rejection
from market.types import ORDER_WIRE_BYTES, Fill, Order
from sim.chain import Block, OrderTx, Tx, TxResult, order_priority
from sim.components import OrderFlow, record_result
from sim.records import OrderRecord
from sim.simulation import Simulation

Mempool = dict[tuple[int, int], tuple[Order, float]]


class Transparent(OrderFlow):
    """Plaintext gossip into every sequencer's mempool."""

    mode = "transparent"

    def __init__(self, sim: Simulation) -> None:
        super().__init__(sim)
        self.mempools: dict[int, Mempool] = {node: {} for node in sim.validators}
        self.included: set[tuple[int, int]] = set()

    def submit(self, record: OrderRecord) -> None:
        """Diffuse the order's 32 plaintext bytes from the trader's node."""
        order = record.order

        def arrive(node: int, _sender: int) -> None:
            self.seen_plaintext(record, node)
            pool = self.mempools.get(node)
            if pool is not None:
                pool[order.key] = (order, self.sim.env.now)

        record.flood = self.sim.propagate(
            record.node, kind="order", size=ORDER_WIRE_BYTES, on_arrival=arrive
        )

    def propose(self, proposer: int) -> list[Tx]:
        """The proposer's mempool, without what the chain holds, by priority fee then arrival."""
        pool = self.mempools[proposer]
        for key in [k for k in pool if k in self.included]:
            del pool[key]
        fresh = sorted(pool.values(), key=lambda pair: order_priority(*pair))
        for order, arrival in fresh:
            self.included.add(order.key)
            self.sim.by_key[order.key].t_sequencer = arrival
        return [OrderTx(order) for order, _ in fresh]

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Record each order's fill or rejection."""
        for tx, result in zip(block.txs, results, strict=True):
            if isinstance(tx, OrderTx) and isinstance(result, Fill | Rejection):
                record_result(self.sim.by_key[tx.order.key], result, block)

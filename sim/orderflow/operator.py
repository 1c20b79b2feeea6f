"""``operator``: orders go, encrypted, to one trusted operator who sequences and executes them.

The Polymarket/CoW baseline. A trader encrypts its order to the operator's key (ECIES: ephemeral
ECDH on P-256, HKDF, AES-256-GCM, pycryptodome) and sends it hop by hop along the shortest path to
the operator. Nodes on the path see an envelope (sender, size), never the content. Only the
operator reads plaintext; it alone closes blocks, ordering by priority fee, then arrival. With
``adversary.operator_frontruns`` the operator is the adversary: it reads every order the moment
it decrypts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from market.crypto import ecies_decrypt, ecies_encrypt, keypair
from market.types import Order, decode_compact, encode_compact
from sim.chain.blocks import Block, OrderTx, Tx, TxResult, order_priority
from sim.chain.mempool import Mempools
from sim.host.component import OrderFlow
from sim.host.host import Host
from sim.orderflow.transparent import record_fills
from sim.results.records import OrderRecord


class Operator(OrderFlow):
    """Encrypted point-to-point submission to a single operator node."""

    mode = "operator"

    def __init__(self, sim: Host) -> None:
        super().__init__(sim)
        self.operator = sim.world.operator
        self.randbytes = sim.streams.randbytes("operator")
        self.secret, self.public = keypair(self.randbytes, meter=sim.meter)
        self.mempools: Mempools[Order] = Mempools([self.operator])
        if sim.scenario.adversary.operator_frontruns:
            self.watchers = self.watchers | {self.operator}

    def sequencers(self) -> tuple[int, ...]:
        """The operator alone closes blocks."""
        return (self.operator,)

    def submit(self, record: OrderRecord) -> None:
        """Encrypt to the operator and send along the shortest path, hop by hop."""
        if record.node == self.operator:
            self._deliver(record, record.order.encode(), encrypted=False)
            return
        blob = ecies_encrypt(
            self.public,
            encode_compact(record.order),
            randbytes=self.randbytes,
            pad_to=self.sim.scenario.privacy.pad_to_bytes,
            meter=self.sim.meter,
        )
        record.wire_bytes = len(blob)
        path = self.sim.net.route(record.node, self.operator)
        if not path:
            return  # no route to the operator now (a crash or partition): the order is lost
        self._hop(record, blob, path, 0)

    def _hop(self, record: OrderRecord, blob: bytes, path: Sequence[int], i: int) -> None:
        node = path[i]
        if node in self.watchers and node != self.operator:
            self.observe(record, size=len(blob), readable=False)
        if i == len(path) - 1:
            self._deliver(record, blob, encrypted=True)
            return
        self.sim.net.send(
            node,
            path[i + 1],
            kind="order",
            size=len(blob),
            on_arrival=lambda: self._hop(record, blob, path, i + 1),
        )

    def _deliver(self, record: OrderRecord, blob: bytes, *, encrypted: bool) -> None:
        """The operator decrypts (when needed), reads and queues the order."""
        if encrypted:
            order = decode_compact(ecies_decrypt(self.secret, blob, meter=self.sim.meter))
        else:
            order = Order.decode(blob)
        self.seen_plaintext(record, self.operator)
        if self.operator in self.watchers:
            self.observe(record, size=len(blob), readable=True)
        self.mempools.add(self.operator, order.key, order, self.sim.now)

    def propose(self, proposer: int) -> list[Tx]:
        """The operator's queue by priority fee, then arrival."""
        fresh = self.mempools.take(self.operator, order=order_priority)
        for order, arrival in fresh:
            self.sim.by_key[order.key].sequenced(arrival)
        return [OrderTx(order) for order, _ in fresh]

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Record each order's fill or rejection."""
        record_fills(self.sim.by_key, block, results)

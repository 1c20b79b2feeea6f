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
from dataclasses import dataclass
from typing import ClassVar

from market.crypto import ecies_decrypt, ecies_encrypt, keypair
from market.types import Order, decode_compact, encode_compact
from sim.chain.blocks import Block, OrderTx, Tx, TxResult, order_priority
from sim.chain.mempool import Mempools
from sim.host.component import OrderFlow
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.orderflow.transparent import record_fills
from sim.results.records import OrderRecord
from sim.scenario import Privacy


@dataclass(frozen=True, slots=True)
class ToOperator:
    """An order encrypted to the operator, on its way hop by hop.

    Attributes:
        ciphertext: the ECIES ciphertext (all a node on the path can see, with its size).
        route: the shortest path the sender chose to the operator (source routing; the route
            rides in the link layer's header and is not counted in ``size``).
    """

    kind: ClassVar[str] = "order"
    ciphertext: bytes
    route: tuple[int, ...]

    @property
    def size(self) -> int:
        """Bytes on the wire: the ciphertext."""
        return len(self.ciphertext)


class Operator(OrderFlow):
    """Encrypted point-to-point submission to a single operator node.

    ``operator`` is its node; when the operator is the adversary, it is among ``watchers``.
    """

    mode = "operator"

    def __init__(
        self, sim: Host, *, privacy: Privacy, watchers: frozenset[int], operator: int
    ) -> None:
        super().__init__(sim, privacy=privacy, watchers=watchers)
        self.operator = operator
        self.randbytes = sim.streams.randbytes("operator")
        self.secret, self.public = keypair(self.randbytes, meter=sim.meter)
        self.mempools: Mempools[Order] = Mempools([self.operator])
        self.owner: dict[bytes, OrderRecord] = {}

    def sequencers(self) -> tuple[int, ...]:
        """The operator alone closes blocks."""
        return (self.operator,)

    def submit(self, record: OrderRecord) -> None:
        """Encrypt to the operator and send along the shortest path, hop by hop."""
        if record.node == self.operator:
            # the trader is the operator: its order never leaves the node, in plaintext
            self._deliver(
                record,
                ToOperator(self.public_order(record).encode(), (record.node,)),
                encrypted=False,
            )
            return
        blob = ecies_encrypt(
            self.public,
            encode_compact(self.public_order(record)),
            randbytes=self.randbytes,
            pad_to=self.privacy.pad_to_bytes,
            meter=self.sim.meter,
        )
        record.wire_bytes = len(blob)
        path = self.sim.net.route(record.node, self.operator)
        if not path:
            return  # no route to the operator now (a crash or partition): the order is lost
        self.owner[blob] = record
        self.receive(record.node, -1, ToOperator(blob, tuple(path)))

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """The sealed order is at ``node`` of its route: seen by a watcher, sent on or opened."""
        match msg:
            case ToOperator(ciphertext=blob, route=route):
                if node in self.watchers and node != self.operator:
                    self.overheard(self.owner[blob], msg, read=None)
                if node == route[-1]:
                    self._deliver(self.owner[blob], msg, encrypted=True)
                else:
                    self.sim.net.send(node, route[route.index(node) + 1], msg, to=self.receive)
            case _:
                unexpected(msg)

    def _deliver(self, record: OrderRecord, msg: ToOperator, *, encrypted: bool) -> None:
        """The operator decrypts (when needed), reads and queues the order."""
        if encrypted:
            plain = ecies_decrypt(self.secret, msg.ciphertext, meter=self.sim.meter)
            order = decode_compact(plain)
        else:
            order = Order.decode(msg.ciphertext)
        self.seen_plaintext(record, self.operator)
        if self.operator in self.watchers:
            self.overheard(record, msg, read=order)
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

"""What a run remembers about each order, block and settlement while it runs.

Plain mutable records, one per order, filled in as the order travels; the runner turns them
into tables at the end. Kept apart from the simpy code so that metrics are pure functions of
records.

An order's lifecycle is owned by its :class:`OrderRecord`: it is *submitted* when the record is
made, *seen* when a node other than its sender first reads it (:meth:`OrderRecord.saw`),
*sequenced* when a proposer takes it for a block (:meth:`~OrderRecord.sequenced`), and ends
*executed* or *rejected* with a reason (:meth:`~OrderRecord.finish`,
:meth:`~OrderRecord.reject`). Order flows call these methods instead of writing fields, and a
transition out of a final state raises :class:`IllegalTransition`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from market.execute import Rejection
from market.types import MICRO, ORDER_WIRE_BYTES, Fill, Order
from sim.net.network import Flood

NAN = math.nan

DepositState = Literal["none", "escrowed", "refunded", "forfeited"]
"""Where an order's commit-reveal deposit is (see :attr:`OrderRecord.deposit_state`)."""

ADVERSARY_KIND = "frontrunner"
"""The ``kind`` of the front-runner's own orders."""

COPYCAT_KIND = "copycat"
"""The ``kind`` of the copycat's copies."""

ADVERSARY_KINDS = frozenset({ADVERSARY_KIND, COPYCAT_KIND})
"""The kinds of the adversary's own orders. User-facing metrics leave them out."""


class IllegalTransition(RuntimeError):
    """An order was moved on from a state it cannot leave (executed or rejected)."""


@dataclass(slots=True)
class OrderRecord:
    """One order's life: submission, first sighting by another node, execution."""

    order_id: int
    order: Order
    kind: str
    node: int
    t_submit: float
    wire_bytes: int
    status: str = "pending"
    reason: str | None = None
    t_first_seen: float = NAN
    first_seen_by: int = -1
    t_executed: float = NAN
    t_sequencer: float = NAN
    price: float = NAN
    cost: float = NAN
    block: int = -1
    batch_id: int = -1
    frontrun: bool = False
    flood: Flood | None = None
    """The first message that carried this order (plaintext, commitment or ciphertext)."""
    adv_seen_t: float = NAN
    """When the adversary (spies, front-runner, public chain) first saw a message of it."""
    adv_read_t: float = NAN
    """When the adversary could first read its content (NaN: never before it was public)."""
    adv_sender: int = -1
    """The sender id the adversary saw on its envelope (-1: it saw no envelope)."""
    adv_size: int = -1
    """The size in bytes of the message the adversary saw (-1: none)."""
    filled: int = 0
    """Micro-shares the chain traded for it (signed like the order's; 0 unless executed)."""
    paid: int = 0
    """Micro-units its trader paid the maker, fees included (negative: received; 0 unless
    executed)."""
    deposit: int = 0
    """Micro-units of commit-reveal deposit the chain escrowed for it (0: none)."""
    deposit_state: DepositState = "none"
    """Where that deposit ended: still ``escrowed``, ``refunded`` by a reveal in time, or
    ``forfeited`` to the treasury (a late reveal, or none by the deadline)."""
    public: Order = field(init=False)
    """The order as every public byte carries it: ``order`` itself, or under a one-time address
    (``privacy.unlinkable_senders``). Blocks, results and the adversary see this one."""

    def __post_init__(self) -> None:
        self.public = self.order

    @property
    def honest(self) -> bool:
        """A user's order (a trader's or the forecaster's), not the adversary's own."""
        return self.kind not in ADVERSARY_KINDS

    @property
    def final(self) -> bool:
        """Executed or rejected: nothing more can happen to it."""
        return self.status != "pending"

    def saw(self, node: int, t: float) -> None:
        """``node`` read the order's content at ``t`` (the first node but its sender counts)."""
        if self.first_seen_by < 0 and node != self.node:
            self.t_first_seen, self.first_seen_by = t, node

    def sequenced(self, t: float) -> None:
        """A proposer took the order (or its sealed form) for a block; its mempool arrival ``t``."""
        self._still_pending("sequenced")
        self.t_sequencer = t

    def finish(self, result: Fill | Rejection, *, height: int, t: float) -> None:
        """The chain executed or rejected the order in block ``height`` at time ``t``."""
        self._still_pending("finished")
        self.block, self.t_executed = height, t
        if isinstance(result, Fill):
            self.status = "executed"
            self.price = result.average_price
            self.cost = result.cash / MICRO
            self.filled, self.paid = result.shares, result.cash
        else:
            self.status, self.reason = "rejected", result.reason

    def forfeit(self, *, height: int, t: float) -> None:
        """Its commitment was never revealed: the chain forfeited its deposit in ``height``."""
        self._still_pending("forfeited")
        self.block, self.t_executed = height, t
        self.status, self.reason = "rejected", "forfeited"

    def reject(self, reason: str) -> None:
        """The order will never reach the chain's book (late, undecryptable, invalid)."""
        self._still_pending(f"rejected ({reason})")
        self.status, self.reason = "rejected", reason

    def _still_pending(self, step: str) -> None:
        if self.final:
            raise IllegalTransition(
                f"order {self.order_id} is already {self.status}"
                f"{f' ({self.reason})' if self.reason else ''}: it cannot be {step}"
            )


@dataclass(slots=True)
class SettlementRecord:
    """One market's settlement as the run saw it."""

    market: int
    true_outcome: int
    votes: list[int]
    outcome: int = -1
    t_final: float = NAN
    leader: int = -1
    certificate_size: int = 0
    messages: int = 0


@dataclass(slots=True)
class PricePoint:
    """Prices of one market after a block."""

    t: float
    block: int
    market: int
    prices: tuple[float, ...]


@dataclass(slots=True)
class RunRecords:
    """Everything recorded during a run."""

    orders: list[OrderRecord] = field(default_factory=list)
    prices: list[PricePoint] = field(default_factory=list)
    by_key: dict[tuple[int, int], OrderRecord] = field(default_factory=dict)
    """Each order's record by ``(trader, nonce)``."""

    def submitted(self, order: Order, *, kind: str, node: int, t: float) -> OrderRecord:
        """The record of an order its trader at ``node`` submits at ``t`` (its wire form: 32 B)."""
        record = OrderRecord(len(self.orders), order, kind, node, t, ORDER_WIRE_BYTES)
        self.orders.append(record)
        self.by_key[order.key] = record
        return record

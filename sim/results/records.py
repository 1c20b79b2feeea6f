"""What a run remembers about each order, block and settlement while it runs.

Plain mutable records, one per order, filled in as the order travels; the runner turns them
into tables at the end. Kept apart from the simpy code so that metrics are pure functions of
records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from market.types import Order
from sim.net.network import Flood

NAN = math.nan


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

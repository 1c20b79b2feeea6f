"""What plugs into a run: order flows, settlement protocols, adversaries, the forecaster.

A component registers its simpy processes in :meth:`Component.start`, offers transactions for
the next block in :meth:`Component.propose`, learns what the chain did with them in
:meth:`Component.committed`, and reports its metrics and tables at the end. The core
(:mod:`sim.simulation`) knows nothing of privacy modes or settlement protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from market.execute import Rejection
from market.types import MICRO, Fill
from sim.chain import Block, Tx, TxResult
from sim.records import OrderRecord

if TYPE_CHECKING:
    from sim.simulation import Simulation


class Component:
    """Base of everything that plugs into a run; every hook does nothing by default."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def start(self) -> None:
        """Register simpy processes (called once, at time 0)."""

    def propose(self, proposer: int) -> list[Tx]:
        """Transactions for the block ``proposer`` is closing now."""
        return []

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """The canonical chain executed ``block``; ``results`` align with its transactions."""

    def metrics(self) -> dict[str, float]:
        """This component's metrics (SPEC section 4 names)."""
        return {}

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """Extra tables this component contributes."""
        return {}


class OrderFlow(Component):
    """How an order travels from its trader to execution (one subclass per privacy mode)."""

    mode: str = "abstract"

    def proposer(self, slot: int) -> int:
        """The node that closes the block of ``slot``: the validators rotate by default."""
        validators = self.sim.validators
        return validators[slot % len(validators)]

    def submit(self, record: OrderRecord) -> None:
        """The trader at ``record.node`` sends ``record.order`` (at ``env.now``)."""
        raise NotImplementedError

    def seen_plaintext(self, record: OrderRecord, node: int) -> None:
        """Note that ``node`` (not the sender) now sees the order's content."""
        if record.first_seen_by < 0 and node != record.node:
            record.t_first_seen, record.first_seen_by = self.sim.env.now, node


def record_result(record: OrderRecord, result: Fill | Rejection, block: Block) -> None:
    """Write an executed or rejected order's outcome into its record."""
    record.block, record.t_executed = block.height, block.t
    if isinstance(result, Fill):
        record.status = "executed"
        record.price = result.average_price
        record.cost = result.cash / MICRO
    else:
        record.status, record.reason = "rejected", result.reason

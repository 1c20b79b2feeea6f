"""One sequencer slot, as every host runs it: what goes into a block, and executing it.

The simpy host (:mod:`sim.runs.simulation`) and the instant host (:mod:`sim.host.instant`)
differ in how time passes and messages travel, not in these rules, so both call them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from market.crypto import CryptoMeter
from market.exchange import Exchange
from market.oracle import Settlement
from sim.chain.blocks import BatchCheck, Block, CloseTx, Tx, TxResult, apply_block
from sim.host.component import Component


def block_txs(
    components: Sequence[Component],
    proposer: int,
    *,
    exchange: Exchange,
    markets: int,
    now: float,
    close_s: float,
) -> list[Tx]:
    """The transactions of ``proposer``'s block now: due market closes, then each proposal."""
    txs: list[Tx] = []
    if now >= close_s:
        txs += [CloseTx(m) for m in range(markets) if m not in exchange.closed]
    for component in components:
        txs.extend(component.propose(proposer))
    return txs


def execute_block(
    components: Sequence[Component],
    block: Block,
    *,
    exchange: Exchange,
    settlement_ok: Callable[[Settlement], bool],
    batch_ok: BatchCheck | None = None,
    meter: CryptoMeter | None = None,
) -> Sequence[TxResult]:
    """Execute ``block`` on the canonical ``exchange``, telling every component before and after."""
    for component in components:
        component.before_commit(block)
    results = apply_block(
        exchange, block, settlement_ok=settlement_ok, batch_ok=batch_ok, meter=meter
    )
    for component in components:
        component.committed(block, results)
    return results

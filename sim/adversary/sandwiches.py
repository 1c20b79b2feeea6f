"""How a sandwich is judged: where orders stand in a block, who got ahead, the replay without
the attacker. Pure functions of blocks and results, apart from the front-runner that acts.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from market.batch import BatchResult
from market.execute import Rejection
from market.types import Fill, Order
from sim.chain.blocks import BatchTx, Block, OrderTx, RevealTx, Tx, TxResult
from sim.results.records import OrderRecord


@dataclass(slots=True)
class Sandwich:
    """One attack: the order read, its victim, the front leg and (once placed) the back leg.

    ``target`` is the order as the adversary decoded it; ``victim`` is the simulator's record
    of the same order, for scoring only.
    """

    target: Order
    victim: OrderRecord
    front: OrderRecord
    back: OrderRecord | None = None
    ahead: bool = False
    """The front leg executed ahead of the victim (see :func:`ahead`)."""
    mark: float = math.nan
    """The outcome's price after the later of the victim's and the front leg's blocks."""


def positions(block: Block) -> dict[tuple[int, int], int]:
    """Each plaintext order's place in ``block``: the index of the transaction carrying it."""
    return {o.key: i for i, tx in enumerate(block.txs) for o in orders_of(tx)}


def ahead(
    front: OrderRecord, target: Order, block: Block, places: dict[tuple[int, int], int]
) -> bool:
    """Whether ``front`` executed ahead of ``target``, which ``block`` carries.

    Ahead: in an earlier block, earlier in this one, or in the same batch (cleared together at
    one price, the front leg's demand raising the victim's).
    """
    if front.block != block.height:
        return front.block < block.height
    mine, theirs = places.get(front.public.key), places.get(target.key)
    return mine is not None and theirs is not None and mine <= theirs


def orders_of(tx: Tx) -> tuple[Order, ...]:
    """The plaintext orders ``tx`` carries for execution (none in a sealed or settlement tx)."""
    match tx:
        case BatchTx(orders=orders):
            return orders
        case OrderTx(order=order) | RevealTx(order=order):
            return (order,)
    return ()


def without(tx: Tx, mine: Collection[int]) -> Tx:
    """``tx`` with the attacker's orders (nonces ``mine``) taken out.

    An order or reveal of its own becomes an empty batch.
    """
    if isinstance(tx, BatchTx):
        return BatchTx(tx.batch_id, tuple(o for o in tx.orders if o.nonce not in mine), tx.shares)
    if isinstance(tx, OrderTx | RevealTx) and tx.order.nonce in mine:
        return BatchTx(-1, ())
    return tx


def fills(results: Sequence[TxResult]) -> dict[tuple[int, int], Fill]:
    fills: dict[tuple[int, int], Fill] = {}
    for result in results:
        if isinstance(result, Fill):
            fills[result.order.key] = result
        elif isinstance(result, BatchResult):
            fills.update((f.order.key, f) for f in result.fills)
        elif isinstance(result, Rejection):
            continue
    return fills

"""The copycat: it copies sealed orders of senders it has linked to informed traders.

An encrypted mempool hides what an order says, not who sent it, and in a batch cleared at one
price a ciphertext executes for whoever submits it. So an adversary that cannot read a single
order can still mirror informed traders: it learns, from the batches once they are public,
which senders trade like the informed (every order of theirs in a market buys one outcome), and
from then on resends each sealed order of theirs under its own address, unread. The copy
executes with the victim's direction and size, for the copier.

It links a sealed order to a past sender by two features of the direction estimator: the
envelope's sender, and the node the first spy heard the order from (which still links a trader
whose every order comes from a fresh one-time address). A sender proof
(``privacy.sender_proofs``) binds each ciphertext to its sender, so every copy is refused on
chain, and the copycat is left with what it paid.

Measured: ``mev.copycat_pnl``, its account's value at the end (cash, and positions at the
final prices or payouts) minus its budget; ``mev.copied_orders``, the copies it sent.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from market.types import MICRO, to_micro
from sim.adversary.spies import first_spy
from sim.chain.blocks import BatchTx, Block, SealedTx
from sim.host.component import Component, Genesis
from sim.host.host import Host
from sim.net.network import Message
from sim.orderflow.threshold import Threshold
from sim.results.metrics import account_value
from sim.results.records import OrderRecord

Handle = tuple[str, int]
"""What links orders to one trader: ``("sender", address)`` or ``("origin", node)``."""

MIN_HISTORY = 2
"""Public orders a handle needs, all one-sided in each market, before the copycat trusts it."""


class Copycat(Component):
    """Resends the sealed orders of senders that trade like informed traders.

    Args:
        sim: the host.
        flow: the threshold order flow it watches and resends through.
        node: where it trades from (the adversary's node).
        account: its trading account.
        budget: its starting cash, a trader's budget.
        spies: the adversary's spies, whose first reports name an order's origin.
    """

    def __init__(
        self,
        sim: Host,
        flow: Threshold,
        *,
        node: int,
        account: int,
        budget: float,
        spies: frozenset[int],
    ) -> None:
        super().__init__(sim)
        self.flow, self.node, self.account, self.budget = flow, node, account, to_micro(budget)
        self.spies = np.array(sorted(spies), dtype=np.int64)
        self.history: defaultdict[Handle, list[tuple[int, int]]] = defaultdict(list)
        """Each handle's public orders: (market, outcome)."""
        self.origins: dict[tuple[int, int], int] = {}
        """The origin the first spy named for each sealed order seen: (epoch, sender) -> node."""
        self.copies: list[OrderRecord] = []
        self.mine: set[int] = set()
        """The senders of its own copies (its account, or its one-time addresses)."""
        flow.sightings.append(self._sighted)
        sim.on_block(node, self._block_here)

    def genesis(self) -> Genesis:
        """The copycat starts with a trader's budget."""
        return Genesis(mints=((self.account, self.budget),))

    def _handles(self, sender: int, origin: int | None) -> list[Handle]:
        return [("sender", sender)] + ([("origin", origin)] if origin is not None else [])

    def linked(self, handle: Handle) -> bool:
        """Whether ``handle``'s public orders look informed: enough, and one-sided per market."""
        orders = self.history.get(handle, [])
        sides: dict[int, set[int]] = defaultdict(set)
        for market, outcome in orders:
            sides[market].add(outcome)
        return len(orders) >= MIN_HISTORY and all(len(s) == 1 for s in sides.values())

    def _sighted(self, record: OrderRecord, msg: Message) -> None:
        """A sealed order reached the adversary: note its origin, and copy it if it is linked."""
        if not isinstance(msg, SealedTx) or msg.sender in self.mine:
            return
        origin = None
        if record.flood is not None and self.spies.size:
            _, node = first_spy(record.flood, self.spies, until=self.sim.now)
            origin = node if node >= 0 else None
        if origin is not None:
            self.origins[(msg.epoch, msg.sender)] = origin
        if any(self.linked(h) for h in self._handles(msg.sender, origin)):
            copy = self.flow.copy(msg, account=self.account, node=self.node)
            self.mine.add(copy.public.trader)
            self.copies.append(copy)

    def _block_here(self, block: Block) -> None:
        """A block reached its node: every batch in it is public, and extends the history."""
        for tx in block.txs:
            if isinstance(tx, BatchTx):
                for order in tx.orders:
                    if order.trader in self.mine:
                        continue
                    origin = self.origins.get((tx.batch_id, order.trader))
                    for handle in self._handles(order.trader, origin):
                        self.history[handle].append((order.market, order.outcome))

    def metrics(self) -> dict[str, float]:
        """``mev.copycat_pnl`` and ``mev.copied_orders``."""
        value = account_value(self.sim.exchange, self.account)
        return {
            "mev.copycat_pnl": value - self.budget / MICRO,
            "mev.copied_orders": float(len(self.copies)),
        }

"""The front-runner: a trading node allied with the spies that sandwiches what it can read.

When the adversary reads an order before it executes (a plaintext relayed past a spy, an order
its colluding keypers let it decrypt early, an order the operator itself decrypts), the
front-runner buys the same outcome ahead of it, paying ``adversary.priority_fee`` to be sequenced
first, and sells once the victim's block reaches its node. It submits through the active order
flow like any trader, and it respects its own budget.

Measured (SPEC section 4): ``mev.extracted``, its realised profit over its sandwiches (back-leg
proceeds minus front-leg cost, fees and priority fees; a position left over is valued at the
price after the back leg, never held to resolution), and ``mev.victim_loss``, what victims paid
above the same fills without the attacker's trades (the block replayed without them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from market.batch import BatchResult
from market.exchange import Exchange
from market.execute import Rejection
from market.types import MICRO, Fill, Order, to_micro
from sim.chain.blocks import BatchTx, Block, OrderTx, RevealTx, Tx, TxResult, apply_block
from sim.host.component import Component, Genesis, OrderFlow
from sim.host.host import Host
from sim.results.records import OrderRecord
from sim.world.agents import NOISE_LIMIT, affordable


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


class FrontRunner(Component):
    """Sandwiches every order the adversary reads in time, within its budget.

    Args:
        sim: the host.
        flow: the run's order flow (the front-runner reads through it and submits to it).
        node: where it trades from (the adversary's node, or a front-running operator's).
        account: its trading account.
        priority_fee: what it pays per front leg to be sequenced first.
        budget: its starting cash, a trader's budget.
    """

    def __init__(
        self,
        sim: Host,
        flow: OrderFlow,
        *,
        node: int,
        account: int,
        priority_fee: float,
        budget: float,
    ) -> None:
        super().__init__(sim)
        self.flow = flow
        self.account = account
        self.node = node
        self.fee = to_micro(priority_fee)
        self.budget = to_micro(budget)
        self.sandwiches: list[Sandwich] = []
        self.by_front: dict[tuple[int, int], Sandwich] = {}
        self.before: Exchange | None = None
        self.victim_loss = 0.0
        flow.readers.append(self._read)
        sim.on_block(self.node, self._block_here)

    def genesis(self) -> Genesis:
        """The front-runner starts with a trader's budget."""
        return Genesis(mints=((self.account, self.budget),))

    def _read(self, victim: OrderRecord, order: Order) -> None:
        """Sandwich ``order`` if it is a buy from someone else and a front leg can get ahead.

        ``order`` is what the adversary decoded from the message it holds; ``victim`` is the
        simulator's record of it, kept to score the attack, never to decide it.
        """
        if order.trader == self.account or not order.is_buy or not self.flow.can_front_run:
            return
        cash = self.sim.exchange.ledger.cash(self.account) - self.fee
        shares = affordable(order.shares / MICRO, NOISE_LIMIT, cash / MICRO)
        if round(shares * MICRO) <= 0:
            return
        front = Order(
            self.account,
            len(self.sim.records.orders),
            order.market,
            order.outcome,
            round(shares * MICRO),
            round(NOISE_LIMIT * MICRO),
            self.fee,
        )
        record = self._submit(front)
        victim.frontrun = True
        sandwich = Sandwich(order, victim, record)
        self.sandwiches.append(sandwich)
        self.by_front[front.key] = sandwich

    def _submit(self, order: Order) -> OrderRecord:
        return self.sim.submit(order, node=self.node, kind="frontrunner")

    def _block_here(self, block: Block) -> None:
        """Once a victim's block reaches the front-runner, it sells what its front leg bought.

        It recognises the block by the order it read, which the block carries; its own front
        leg's fate it knows as any trader knows its own fills.
        """
        carried = {o.key for tx in block.txs for o in orders_of(tx)}
        for sandwich in self.sandwiches:
            front = sandwich.front
            if (
                sandwich.back is None
                and front.status == "executed"
                and sandwich.target.key in carried
                and block.height >= front.block
            ):
                back = Order(
                    self.account,
                    len(self.sim.records.orders),
                    front.order.market,
                    front.order.outcome,
                    -front.order.shares,
                    0,
                    0,
                )
                sandwich.back = self._submit(back)

    def before_commit(self, block: Block) -> None:
        """Keep the state before a block that holds a front leg, to replay it without them."""
        self.before = (
            self.sim.exchange.copy() if any(self._front_of(tx) for tx in block.txs) else None
        )

    def _front_of(self, tx: Tx) -> bool:
        return any(o.key in self.by_front for o in orders_of(tx))

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Add what the block's victims lost against its replay without the attacker."""
        if self.before is not None:
            self.victim_loss += self._replayed_loss(block, results, self.before)
            self.before = None

    def _replayed_loss(self, block: Block, results: Sequence[TxResult], before: Exchange) -> float:
        """What victims in ``block`` paid above their fills with the attacker's trades removed."""
        clean = Block(
            block.height,
            block.t,
            block.proposer,
            tuple(_without(tx, self.account) for tx in block.txs),
        )
        replay = apply_block(before, clean, settlement_ok=self.sim.settlement_ok)
        actual, counterfactual = _fills(results), _fills(replay)
        victims = {s.victim.order.key for s in self.sandwiches if s.front.block == block.height}
        return sum(
            (actual[k].cash - counterfactual[k].cash) / MICRO
            for k in victims
            if k in actual and k in counterfactual
        )

    def metrics(self) -> dict[str, float]:
        """``mev.extracted`` and ``mev.victim_loss``."""
        extracted = 0.0
        for sandwich in self.sandwiches:
            front = sandwich.front
            if front.status != "executed":
                continue
            extracted -= front.cost + front.order.priority_fee / MICRO
            back = sandwich.back
            sold = back is not None and back.status == "executed"
            extracted -= back.cost if sold and back is not None else 0.0
            if not sold:
                price = self.sim.exchange.prices(front.order.market)[front.order.outcome]
                extracted += front.order.shares / MICRO * price
        return {"mev.extracted": extracted, "mev.victim_loss": self.victim_loss}


def orders_of(tx: Tx) -> tuple[Order, ...]:
    """The plaintext orders ``tx`` carries for execution (none in a sealed or settlement tx)."""
    match tx:
        case BatchTx(orders=orders):
            return orders
        case OrderTx(order=order) | RevealTx(order=order):
            return (order,)
    return ()


def _without(tx: Tx, account: int) -> Tx:
    """``tx`` with the attacker's orders taken out (an order tx of its own becomes empty)."""
    if isinstance(tx, BatchTx):
        return BatchTx(tx.batch_id, tuple(o for o in tx.orders if o.trader != account), tx.key)
    if isinstance(tx, OrderTx) and tx.order.trader == account:
        return BatchTx(-1, ())
    return tx


def _fills(results: Sequence[TxResult]) -> dict[tuple[int, int], Fill]:
    fills: dict[tuple[int, int], Fill] = {}
    for result in results:
        if isinstance(result, Fill):
            fills[result.order.key] = result
        elif isinstance(result, BatchResult):
            fills.update((f.order.key, f) for f in result.fills)
        elif isinstance(result, Rejection):
            continue
    return fills

"""The front-runner: a trading node allied with the spies that sandwiches what it can read.

When the adversary reads an order before it executes (a plaintext relayed past a spy, an order
its colluding keypers let it decrypt early, an order the operator itself decrypts), the
front-runner buys the same outcome ahead of it, paying ``adversary.priority_fee`` to be sequenced
first, and sells once the victim's block reaches its node. It submits through the active order
flow like any trader, and it respects its own budget.

Against commit-reveal, where reveals execute in commitment order, it cannot get ahead of what it
reads; it holds options instead: one speculative buy of each open market's each outcome,
committed and kept on chain (renewed before its deadline). Reading a victim's reveal, it reveals
the option committed before the victim's commitment (so it executes first) and commits the sell
that back-runs it. Options it never uses lapse and forfeit their deposits, which
``mev.extracted`` subtracts.

A sandwich *completes* when the front leg executed ahead of the victim (in an earlier block, or
earlier in the same block, or in the same uniform-price batch) and its back leg executed. Every
other front leg that executed is a *failed attempt*: it ran after its victim (a victim that
outbid the priority fee, or a front leg that missed the victim's block), or it never got its
back leg (placed too late, or rejected).

Measured:

- ``mev.extracted``: its realised profit over every front leg that executed: back-leg proceeds
  minus front-leg cost, fees and priority fees. A position left over (a failed attempt) is
  valued at the next traded price after both the victim and the front leg executed, the price
  it could have unwound at, never held to resolution or valued at the end of the run.
- ``mev.victim_loss``: what the targeted victims paid above the same fills without the attack:
  the blocks from the front leg's to the victim's replayed from the state before the front leg,
  with every order of the attacker taken out. A victim the front leg ran after counts 0 (the
  attack could not touch its fill).
- ``mev.sandwiches`` and ``mev.failed_attempts``: completed sandwiches and failed attempts.
- ``adversary.orders_executed`` and ``adversary.volume``: its own executed legs and the money
  they moved (the sum of |cash paid or received|). User-facing metrics leave these orders out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from market.exchange import Exchange
from market.types import MICRO, Order, to_micro
from sim.adversary.sandwiches import Sandwich, ahead, fills, orders_of, positions, without
from sim.chain.blocks import Block, Tx, TxResult, apply_block
from sim.host.component import Component, Genesis, OrderFlow
from sim.host.host import Host
from sim.orderflow.commit_reveal import CommitReveal
from sim.results.records import ADVERSARY_KIND, OrderRecord
from sim.world.agents import NOISE_LIMIT, affordable


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
        speculative_shares: float = 10.0,
    ) -> None:
        super().__init__(sim)
        self.flow = flow
        self.speculating = isinstance(flow, CommitReveal)
        """Against commit-reveal it holds speculative commitments (see :meth:`_speculate`)."""
        self.speculative_shares = speculative_shares
        self.options: dict[tuple[int, int], list[OrderRecord]] = {}
        """Its unrevealed speculative buys, by (market, outcome), oldest first."""
        self.account = account
        self.node = node
        self.fee = to_micro(priority_fee)
        self.budget = to_micro(budget)
        self.sandwiches: list[Sandwich] = []
        self.by_front: dict[tuple[int, int], Sandwich] = {}
        self.own: set[int] = set()
        """Its own orders' nonces, known before they are sent and the same under any address."""
        self.snapshots: dict[int, Exchange] = {}
        """The state before each block that held a front leg, kept for the victims' replays."""
        self.blocks: dict[int, Block] = {}
        """The blocks since the first snapshot, to replay up to a later victim's block."""
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
        if order.nonce in self.own or not order.is_buy:
            return
        if self.speculating:
            self._exercise(victim, order)
            return
        if not self.flow.can_front_run:
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
        self.by_front[record.public.key] = sandwich

    def _exercise(self, victim: OrderRecord, order: Order) -> None:
        """Commit-reveal: reveal a speculative buy committed before ``order``, and back-run it.

        Reveals execute in commitment order, so a buy of the same outcome committed ahead of the
        victim's commitment executes ahead of it; a sell committed now executes after it.
        """
        assert isinstance(self.flow, CommitReveal)
        flow, mine = self.flow, self.options.get((order.market, order.outcome), [])
        theirs = flow.position(order.key)
        earlier = [
            r
            for r in mine
            if (p := flow.position(r.public.key)) is not None and theirs is not None and p < theirs
        ]
        if not earlier or not flow.reveal_held(earlier[-1].public.key):
            return
        front = earlier[-1]
        mine.remove(front)
        back = Order(
            self.account,
            len(self.sim.records.orders),
            order.market,
            order.outcome,
            -front.order.shares,
            0,
            0,
        )
        victim.frontrun = True
        sandwich = Sandwich(order, victim, front, self._submit(back))
        self.sandwiches.append(sandwich)
        self.by_front[front.public.key] = sandwich

    def _speculate(self) -> None:
        """Keep one live speculative buy of every open market's every outcome.

        Each costs a deposit that is forfeited unless it is revealed: the price of the option.
        A new one is committed when the last was exercised or is about to lapse (its deadline
        within two blocks), and only while the deposit and a front leg's cost fit in its cash.
        """
        assert isinstance(self.flow, CommitReveal)
        flow = self.flow
        deposit = to_micro(flow.privacy.deposit)
        horizon = self.sim.now + 2 * self.sim.block_interval_s - flow.privacy.reveal_deadline_s
        exchange = self.sim.exchange
        for key, records in self.options.items():
            self.options[key] = [r for r in records if not r.final]  # lapsed or refused
        pending = sum(
            1 for rs in self.options.values() for r in rs if flow.committed_at(r.public.key) is None
        )
        for market, maker in enumerate(exchange.makers):
            if market in exchange.closed or exchange.ledger.is_settled(market):
                continue
            for outcome in range(len(maker.q)):
                live = [
                    r
                    for r in self.options.get((market, outcome), [])
                    if (t := flow.committed_at(r.public.key)) is None or t > horizon
                ]
                if live:
                    continue
                cash = exchange.ledger.cash(self.account) - deposit * (1 + pending)
                shares = affordable(self.speculative_shares, NOISE_LIMIT, cash / MICRO)
                if round(shares * MICRO) <= 0:
                    return
                option = Order(
                    self.account,
                    len(self.sim.records.orders),
                    market,
                    outcome,
                    round(shares * MICRO),
                    round(NOISE_LIMIT * MICRO),
                    0,
                )
                flow.hold(option)
                self.options.setdefault((market, outcome), []).append(self._submit(option))
                pending += 1

    def _submit(self, order: Order) -> OrderRecord:
        self.own.add(order.nonce)
        return self.sim.submit(order, node=self.node, kind=ADVERSARY_KIND)

    def _block_here(self, block: Block) -> None:
        """Once a victim's block reaches the front-runner, it sells what its front leg bought.

        It recognises the block by the order it read, which the block carries, and sells only
        if its front leg got ahead of that order; its own front leg's fate it knows as any
        trader knows its own fills.
        """
        if self.speculating:
            self._speculate()
        places = positions(block)
        for sandwich in self.sandwiches:
            front = sandwich.front
            if (
                sandwich.back is None
                and front.status == "executed"
                and sandwich.target.key in places
                and ahead(front, sandwich.target, block, places)
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
        if any(self._front_of(tx) for tx in block.txs):
            self.snapshots[block.height] = self.sim.exchange.copy()
        if self.snapshots:
            self.blocks[block.height] = block

    def _front_of(self, tx: Tx) -> bool:
        return any(o.key in self.by_front for o in orders_of(tx))

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Mark leftover positions at this block's prices; measure the victims it executed."""
        places = positions(block)
        for sandwich in self.sandwiches:
            front, victim = sandwich.front, sandwich.victim
            if front.status != "executed":
                continue
            if front.block == block.height or (
                victim.block == block.height and front.block <= block.height
            ):
                market, outcome = front.order.market, front.order.outcome
                sandwich.mark = self.sim.exchange.prices(market)[outcome]
            if victim.block == block.height:
                sandwich.ahead = ahead(front, sandwich.target, block, places)
                if sandwich.ahead and victim.status == "executed":
                    self.victim_loss += self._loss(sandwich, block, results)
        self._prune()

    def _prune(self) -> None:
        """Forget the snapshots and blocks no victim still waiting can need."""
        waiting = [
            s.front.block
            for s in self.sandwiches
            if s.front.status == "executed" and not s.victim.final
        ]
        oldest = min(waiting, default=math.inf)
        self.snapshots = {h: x for h, x in self.snapshots.items() if h >= oldest}
        self.blocks = {h: b for h, b in self.blocks.items() if h >= oldest}

    def _loss(self, sandwich: Sandwich, block: Block, results: Sequence[TxResult]) -> float:
        """What the victim paid above its fill with the attacker's orders taken out."""
        start = sandwich.front.block
        state = self.snapshots[start].copy()
        replay: Sequence[TxResult] = ()
        for height in range(start, block.height + 1):
            source = block if height == block.height else self.blocks[height]
            clean = Block(
                source.height,
                source.t,
                source.proposer,
                tuple(without(tx, self.own) for tx in source.txs),
            )
            replay = apply_block(state, clean, settlement_ok=self.sim.settlement_ok)
        key = sandwich.target.key
        actual, counterfactual = fills(results).get(key), fills(replay).get(key)
        if actual is None or counterfactual is None:
            return 0.0
        return (actual.cash - counterfactual.cash) / MICRO

    def metrics(self) -> dict[str, float]:
        """The ``mev.*`` metrics, and the adversary's own trading (``adversary.*``)."""
        extracted, completed, failed = 0.0, 0, 0
        for sandwich in self.sandwiches:
            front, back = sandwich.front, sandwich.back
            if front.status != "executed":
                continue
            extracted -= front.cost + front.order.priority_fee / MICRO
            if back is not None and back.status == "executed":
                extracted -= back.cost
            else:
                extracted += front.order.shares / MICRO * sandwich.mark
            sold = back is not None and back.status == "executed"
            if sandwich.ahead and sold and sandwich.victim.status == "executed":
                completed += 1
            else:
                failed += 1
        own = [
            leg
            for s in self.sandwiches
            for leg in (s.front, s.back)
            if leg is not None and leg.status == "executed"
        ]
        if self.speculating:
            # the options it let lapse: their deposits went to the treasury
            lapsed = sum(
                1
                for r in self.sim.records.orders
                if r.kind == ADVERSARY_KIND and r.reason in ("forfeited", "late")
            )
            assert isinstance(self.flow, CommitReveal)
            extracted -= lapsed * self.flow.privacy.deposit
        return {
            "mev.extracted": extracted,
            "mev.victim_loss": self.victim_loss,
            "mev.sandwiches": float(completed),
            "mev.failed_attempts": float(failed),
            "adversary.orders_executed": float(len(own)),
            "adversary.volume": math.fsum(abs(leg.cost) for leg in own),
        }

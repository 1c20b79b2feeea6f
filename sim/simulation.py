"""The simpy layer of a run: traders, the rotating sequencer, replicas and their catch-up.

Protocol rules live in :mod:`sim.chain` and :mod:`market`; this module only turns them into
events on the clock. One :class:`Simulation` is one run's environment.
"""

from __future__ import annotations

from functools import partial

from simpy import Environment

from market.exchange import Exchange, Settlement, maker_account, maker_funding
from market.execute import Rejection
from market.ledger import Ledger
from market.lmsr import make_market_maker
from market.types import MICRO, ORDER_WIRE_BYTES, Fill, Order, to_micro
from sim.agents import belief, informed_intent, noise_intent
from sim.chain import Block, Replica, apply_block, build_block
from sim.network import Flood, SimNetwork
from sim.records import OrderRecord, PricePoint, RunRecords, SettlementRecord
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world import PlannedOrder, World

SYNC_INTERVAL_S = 30.0
"""How often a replica asks a neighbour for the height it has seen (finds a lost last block)."""

FETCH_RETRY_S = 2.0
"""How long a replica waits for a fetched block before asking another peer."""

VOTE_BYTES = 16
"""A vote message's header; each market adds one byte."""


def genesis(scenario: Scenario, world: World) -> Exchange:
    """The exchange at time 0: makers funded, traders holding their budgets."""
    cfg = scenario.market
    makers = [
        make_market_maker(
            mechanism=cfg.mechanism,
            outcomes=cfg.outcomes,
            liquidity_b=cfg.liquidity_b,
            alpha=cfg.alpha,
        )
        for _ in range(cfg.count)
    ]
    ledger = Ledger()
    for spec in world.traders:
        ledger.mint(spec.trader, to_micro(scenario.traders.budget))
    for market, maker in enumerate(makers):
        ledger.mint(maker_account(market), maker_funding(maker))
    return Exchange(makers, ledger, fee_per_share=to_micro(cfg.fee))


class Simulation:
    """One run: the environment, the network, the chain and everything recorded."""

    def __init__(self, scenario: Scenario, world: World, *, seed: int) -> None:
        self.scenario = scenario
        self.world = world
        self.env = Environment()
        streams = Streams(seed)
        self.net = SimNetwork(
            self.env, world.topology, loss=scenario.network.loss, rng=streams.python("loss")
        )
        self.exchange = genesis(scenario, world)
        self.initial = self.exchange.copy()
        self.initial_prices = [self.exchange.prices(m) for m in range(scenario.market.count)]
        self.validators = world.reporters
        reporters = frozenset(world.reporters)
        self.quorum = len(reporters) // 2 + 1
        self.replicas = {
            node: Replica(node, self.exchange.copy(), reporters, self.quorum)
            for node in self.validators
        }
        self.heard = dict.fromkeys(self.validators, -1)
        self.fetching: set[int] = set()
        self.mempools: dict[int, dict[tuple[int, int], tuple[Order, float]]] = {
            node: {} for node in self.validators
        }
        self.vote_pools: dict[int, dict[int, tuple[int, ...]]] = {n: {} for n in self.validators}
        self.included: set[tuple[int, int]] = set()
        self.blocks: list[tuple[Block, Flood]] = []
        self.records = RunRecords()
        self.by_key: dict[tuple[int, int], OrderRecord] = {}
        self.records.settlements = [
            SettlementRecord(m, o, [0] * scenario.market.outcomes)
            for m, o in enumerate(world.outcomes)
        ]

    def run(self) -> None:
        """Start every process and run until the horizon."""
        self.env.process(self._traders())
        self.env.process(self._sequencer())
        self.env.process(self._votes())
        self.env.process(self._sync())
        self.env.run(until=self.scenario.duration_s)

    # -- traders -------------------------------------------------------------------------

    def _traders(self):  # type: ignore[no-untyped-def]
        for planned in self.world.plan:
            yield self.env.timeout(planned.t - self.env.now)
            order = self._decide(planned)
            if order is not None:
                self._submit(order, planned)

    def _decide(self, planned: PlannedOrder) -> Order | None:
        spec = self.world.traders[planned.trader]
        prices = self.exchange.prices(planned.market)
        cash = self.exchange.ledger.cash(spec.trader) / MICRO
        if spec.kind == "informed":
            beliefs = belief(
                spec.signals[planned.market], len(prices), self.scenario.traders.signal_accuracy
            )
            intent = informed_intent(prices, beliefs, shares=planned.shares, cash=cash)
        else:
            intent = noise_intent(len(prices), pick=planned.pick, shares=planned.shares, cash=cash)
        if intent is None or round(intent.shares * MICRO) <= 0:
            return None
        nonce = len(self.records.orders)
        return Order(
            spec.trader,
            nonce,
            planned.market,
            intent.outcome,
            round(intent.shares * MICRO),
            round(intent.limit * MICRO),
        )

    def _submit(self, order: Order, planned: PlannedOrder) -> None:
        spec = self.world.traders[planned.trader]
        record = OrderRecord(
            len(self.records.orders), order, spec.kind, spec.node, self.env.now, ORDER_WIRE_BYTES
        )
        self.records.orders.append(record)
        self.by_key[order.key] = record

        def arrive(node: int, sender: int) -> None:
            if sender >= 0 and record.first_seen_by < 0:
                record.t_first_seen, record.first_seen_by = self.env.now, node
            pool = self.mempools.get(node)
            if pool is not None:
                pool[order.key] = (order, self.env.now)

        self.net.flood(spec.node, kind="order", size=ORDER_WIRE_BYTES, on_arrival=arrive)

    # -- sequencer -----------------------------------------------------------------------

    def _sequencer(self):  # type: ignore[no-untyped-def]
        interval = self.scenario.network.block_interval_s
        slot = 0
        while True:
            yield self.env.timeout(interval)
            slot += 1
            proposer = self.validators[slot % len(self.validators)]
            mempool = self.mempools[proposer]
            for key in [k for k in mempool if k in self.included]:
                del mempool[key]
            block = build_block(
                height=len(self.blocks),
                t=self.env.now,
                proposer=proposer,
                mempool=mempool,
                included=self.included,
                closes=self._due_closes(),
                settlements=self._ready_settlements(proposer),
            )
            if block is not None:
                self._commit(block, mempool)

    def _due_closes(self) -> list[int]:
        if self.env.now < self.scenario.market.close_s:
            return []
        return [m for m in range(self.scenario.market.count) if m not in self.exchange.closed]

    def _ready_settlements(self, proposer: int) -> list[Settlement]:
        ready = []
        pool = self.vote_pools[proposer]
        for market in range(self.scenario.market.count):
            if self.exchange.ledger.is_settled(market):
                continue
            by_outcome: dict[int, list[int]] = {}
            for reporter, outcomes in sorted(pool.items()):
                by_outcome.setdefault(outcomes[market], []).append(reporter)
            for outcome, voters in sorted(by_outcome.items()):
                if len(voters) >= self.quorum:
                    ready.append(Settlement(market, outcome, tuple(voters)))
        return ready

    def _commit(self, block: Block, mempool: dict[tuple[int, int], tuple[Order, float]]) -> None:
        results = apply_block(
            self.exchange, block, reporters=frozenset(self.validators), quorum=self.quorum
        )
        for order, result in zip(block.orders, results, strict=True):
            self.included.add(order.key)
            self._record_result(self.by_key[order.key], result, block, mempool[order.key][1])
        for settlement in block.settlements:
            record = self.records.settlements[settlement.market]
            record.outcome, record.t_final = settlement.outcome, block.t
            record.leader, record.certificate_size = block.proposer, len(settlement.voters)
        for market in sorted({o.market for o in block.orders}):
            self.records.prices.append(
                PricePoint(block.t, block.height, market, self.exchange.prices(market))
            )
        flood = self.net.flood(
            block.proposer,
            kind="block",
            size=block.size(),
            on_arrival=lambda node, _sender: self._block_arrived(node, block),
        )
        self.blocks.append((block, flood))

    def _record_result(
        self, record: OrderRecord, result: Fill | Rejection, block: Block, arrival: float
    ) -> None:
        record.block, record.t_executed, record.t_sequencer = block.height, block.t, arrival
        if isinstance(result, Fill):
            record.status = "executed"
            record.price = result.average_price
            record.cost = result.cash / MICRO
        else:
            record.status, record.reason = "rejected", result.reason

    # -- replicas ------------------------------------------------------------------------

    def _block_arrived(self, node: int, block: Block) -> None:
        replica = self.replicas.get(node)
        if replica is None:
            return
        replica.receive(block)
        self._heard(node, block.height)

    def _heard(self, node: int, height: int) -> None:
        """A replica learned that ``height`` exists; fetch what it misses after a grace."""
        self.heard[node] = max(self.heard[node], height)
        if node not in self.fetching and self.replicas[node].missing(self.heard[node]) is not None:
            self.fetching.add(node)
            grace = self.env.timeout(self.scenario.network.block_interval_s)
            grace.callbacks.append(lambda _e: self._fetch(node, 0))

    def _fetch(self, node: int, attempt: int) -> None:
        """Ask the nearest node holding the missing block for it; retry until it arrives."""
        replica = self.replicas[node]
        height = replica.missing(self.heard[node])
        if height is None:
            self.fetching.discard(node)
            return
        block, flood = self.blocks[height]
        path = self.net.path_to(node, flood.has, skip=attempt)
        if path:
            self.records.fetches += 1
            self.net.relay(
                path,
                kind="fetch",
                size=16,
                on_arrival=lambda: self.net.relay(
                    path[::-1],
                    kind="fetch",
                    size=block.size(),
                    on_arrival=lambda: self._block_arrived(node, block),
                ),
            )
        retry = self.env.timeout(FETCH_RETRY_S)
        retry.callbacks.append(lambda _e: self._fetch(node, attempt + 1))

    def _sync(self):  # type: ignore[no-untyped-def]
        """Every replica periodically asks one neighbour for the latest height it has seen."""
        rounds = 0
        while True:
            yield self.env.timeout(SYNC_INTERVAL_S)
            rounds += 1
            for node in self.validators:
                links = self.world.topology.links[node]
                peer = links[rounds % len(links)][0]
                self.net.send(
                    node,
                    peer,
                    kind="sync",
                    size=16,
                    on_arrival=partial(self._status, node, peer),
                )

    def _status(self, node: int, peer: int) -> None:
        height = next((b.height for b, f in reversed(self.blocks) if f.has(peer)), -1)
        self.net.send(
            peer,
            node,
            kind="sync",
            size=16,
            on_arrival=lambda: self._heard(node, height) if height >= 0 else None,
        )

    # -- settlement (first version: a majority of reporters' votes) ----------------------

    def _votes(self):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.scenario.market.resolve_s)
        outcomes = self.world.outcomes
        size = VOTE_BYTES + len(outcomes)
        for reporter in self.validators:
            for market, outcome in enumerate(outcomes):
                self.records.settlements[market].votes[outcome] += 1

            def arrive(node: int, _sender: int, r: int = reporter) -> None:
                pool = self.vote_pools.get(node)
                if pool is not None:
                    pool[r] = outcomes

            self.net.flood(reporter, kind="vote", size=size, on_arrival=arrive)

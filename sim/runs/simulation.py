"""The simpy layer of a run: traders, the sequencer, replicas, and the plugged-in components.

Protocol rules live in :mod:`sim.chain.blocks`, :mod:`market` and the components; this module only
turns them into events on the clock. One :class:`Simulation` is one run's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from simpy.events import Event

from market.batch import BatchResult
from market.crypto import CryptoMeter
from market.oracle import Settlement
from market.types import MICRO, Fill, Order
from sim.chain.blocks import BatchCheck, Block, Replica, TxResult
from sim.chain.opening import opening_exchange
from sim.host.catchup import CatchUp
from sim.host.component import Component, OrderFlow, open_chain, refuse_settlements
from sim.host.sequencing import block_txs, execute_block
from sim.net.clock import CountingEnvironment
from sim.net.dandelion import Propagation
from sim.net.network import Flood, Message, Receive, SimNetwork, unexpected
from sim.results.records import OrderRecord, PricePoint, RunRecords
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world.agents import kelly_intent, noise_intent, price_pooled
from sim.world.build import PlannedOrder, World

Process = Generator[Event, Any, None]
"""A simpy process: a generator of the events it waits for."""


def traded_markets(results: Sequence[TxResult]) -> list[int]:
    """Markets in which a block's transactions filled at least one order, sorted."""
    markets: set[int] = set()
    for result in results:
        if isinstance(result, Fill):
            markets.add(result.order.market)
        elif isinstance(result, BatchResult):
            markets.update(fill.order.market for fill in result.fills)
    return sorted(markets)


class Simulation:
    """One run: the environment, the network, the chain, the components and the records.

    Args:
        scenario: the resolved scenario.
        world: what the world seed decided.
        seed: the run's own seed (protocol randomness, keys).

    Components declare what they add to the first state (:class:`~sim.host.component.Genesis`:
    mints, the settlement check, the oracle's terms, faulty replicas); :meth:`run` applies every
    component's genesis, in any plugging order, and only then copies the exchange to the
    replicas. This class implements :class:`~sim.host.host.Host` for them.
    """

    def __init__(self, scenario: Scenario, world: World, *, seed: int) -> None:
        self.scenario = scenario
        self.world = world
        self.seed = seed
        self.streams = Streams(seed)
        self.env = CountingEnvironment()
        self.net = SimNetwork(
            self.env, world.topology, loss=scenario.network.loss, rng=self.streams.python("loss")
        )
        self.exchange = opening_exchange(scenario, world)
        self.initial = self.exchange.copy()
        self.initial_prices = [self.exchange.prices(m) for m in range(scenario.market.count)]
        self.validators = world.reporters
        self.records = RunRecords()
        self.by_key = self.records.by_key
        self.blocks: list[tuple[Block, Flood]] = []
        self.components: list[Component] = []
        self.orderflow: OrderFlow | None = None
        self.settlement_ok: Callable[[Settlement], bool] = refuse_settlements
        self.batch_ok: BatchCheck | None = None
        self.start_state = self.exchange
        """The exchange the replicas start from: set when the run starts (for audits)."""
        self.replicas: dict[int, Replica] = {}
        self.faulty_replicas: set[int] = set()
        """Replicas that are Byzantine or crashed: left out of ``ledger.replica_divergence``."""
        self.catch_up = CatchUp(self)
        self.propagation: Propagation | None = None
        self.meter = CryptoMeter()
        """Every cryptographic operation the protocol performs (not the adversary's)."""
        self.block_listeners: dict[int, list[Callable[[Block], None]]] = {}
        """Callbacks run when a block reaches a given node."""

    def plug(self, component: Component) -> None:
        """Add a component; the first :class:`OrderFlow` added carries the orders."""
        self.components.append(component)
        if isinstance(component, OrderFlow) and self.orderflow is None:
            self.orderflow = component

    @property
    def sequencers(self) -> tuple[int, ...]:
        """The nodes that close blocks (the order flow decides; validators by default)."""
        return self.orderflow.sequencers() if self.orderflow else self.validators

    def run(self) -> None:
        """Apply the components' geneses, create the replicas, start everything, run."""
        opening = open_chain([c.genesis() for c in self.components], self.exchange)
        self.settlement_ok = opening.settlement_check
        self.batch_ok = opening.batch_check
        self.faulty_replicas |= opening.faulty_replicas
        self.net.faults_scheduled = self.net.faults_scheduled or opening.faults_scheduled
        self.start_state = self.exchange.copy()
        self.replicas = {
            node: Replica(node, self.exchange.copy(), self.settlement_ok, self.batch_ok, self.meter)
            for node in self.validators
        }
        self.env.process(self._traders())
        self.env.process(self._sequencer())
        self.catch_up.start()
        for component in self.components:
            component.start()
        self.env.run(until=self.scenario.duration_s)

    # -- traders -------------------------------------------------------------------------

    def _traders(self) -> Process:
        assert self.orderflow is not None, "a run needs an order flow"
        for planned in self.world.plan:
            yield self.env.timeout(planned.t - self.env.now)
            order = self._decide(planned)
            if order is not None:
                spec = self.world.traders[planned.trader]
                self.submit(order, node=spec.node, kind=spec.kind)

    def on_block(self, node: int, fire: Callable[[Block], None]) -> None:
        """Call ``fire(block)`` whenever a block reaches ``node`` by diffusion."""
        self.block_listeners.setdefault(node, []).append(fire)

    def submit(self, order: Order, *, node: int, kind: str) -> OrderRecord:
        """Record ``order`` and send it from ``node`` by the run's order flow (now).

        The one path by which any order enters a run: the traders', the forecaster's and the
        front-runner's. ``order.order_id`` must be the next record's index.
        """
        assert self.orderflow is not None, "a run needs an order flow"
        record = self.records.submitted(order, kind=kind, node=node, t=self.env.now)
        self.orderflow.submit(record)
        return record

    def _decide(self, planned: PlannedOrder) -> Order | None:
        """The order a trader places now, from the prices the chain shows."""
        spec = self.world.traders[planned.trader]
        market = planned.market
        prices = self.exchange.prices(market)
        ledger = self.exchange.ledger
        cash = ledger.cash(spec.trader) / MICRO
        if spec.kind == "informed":
            cfg = self.scenario.traders
            intent = kelly_intent(
                prices,
                price_pooled(spec.beliefs[market], prices, cfg.price_weight),
                cash=cash,
                held=[ledger.position(spec.trader, market, o) / MICRO for o in range(len(prices))],
                depth=self.exchange.makers[market].liquidity(),
                risk_aversion=cfg.risk_aversion,
            )
        else:
            intent = noise_intent(len(prices), pick=planned.pick, shares=planned.shares, cash=cash)
        if intent is None or round(intent.shares * MICRO) == 0:
            return None
        return Order(
            spec.trader,
            len(self.records.orders),
            planned.market,
            intent.outcome,
            round(intent.shares * MICRO),
            round(intent.limit * MICRO),
        )

    # -- sequencer -----------------------------------------------------------------------

    def _sequencer(self) -> Process:
        assert self.orderflow is not None
        interval = self.scenario.network.block_interval_s
        slot = 0
        while True:
            yield self.env.timeout(interval)
            slot += 1
            proposer = self.orderflow.proposer(slot)
            if not self.net.quorate(proposer, self.sequencers):
                continue  # crashed, or cut off from most sequencers: its slot passes empty
            txs = block_txs(
                self.components,
                proposer,
                exchange=self.exchange,
                markets=self.scenario.market.count,
                now=self.env.now,
                close_s=self.scenario.market.close_s,
            )
            if txs:
                self.commit(Block(len(self.blocks), self.env.now, proposer, tuple(txs)))

    def commit(self, block: Block) -> None:
        """Execute ``block`` on the canonical exchange, tell the components, diffuse it."""
        results = execute_block(
            self.components,
            block,
            exchange=self.exchange,
            settlement_ok=self.settlement_ok,
            batch_ok=self.batch_ok,
            meter=self.meter,
        )
        for market in traded_markets(results):
            self.records.prices.append(
                PricePoint(block.t, block.height, market, self.exchange.prices(market))
            )
        listeners = sorted(set(self.replicas) | set(self.block_listeners))
        flood = self.broadcast(block.proposer, block, to=self._block_at, listeners=listeners)
        self.blocks.append((block, flood))
        self.catch_up.closed(block)

    def _block_at(self, node: int, _sender: int, msg: Message) -> None:
        match msg:
            case Block():
                self.catch_up.arrived(node, msg)
                for listener in self.block_listeners.get(node, ()):
                    listener(msg)
            case _:
                unexpected(msg)

    def spread(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Spread a transaction from ``origin`` as ``network.propagation`` says.

        Every order-bearing message (plaintext order, commitment, reveal, ciphertext) goes
        through here, so the propagation mode (diffusion, or Dandelion's anonymity stems) applies
        to all of them alike. Blocks, votes and protocol messages always diffuse.

        ``to(node, sender, msg)`` runs at the origin at once, then at each node's first arrival.
        With loss-free links diffusion is computed rather than simulated (see
        :mod:`sim.net.fastflood`), and ``listeners`` names the nodes whose arrival the caller acts
        on: only they (with the first node to receive it, and Dandelion's stem nodes) are told,
        each at its exact arrival time, which is what makes 10,000-node runs affordable. The
        returned flood's ``arrivals`` and ``first_from`` cover every node either way.
        """
        return self._propagation().spread(origin, msg, to=to, listeners=listeners)

    def broadcast(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Diffuse a protocol message (a block, shares): like :meth:`spread`, no stems."""
        return self._propagation().diffuse(origin, msg, to=to, listeners=listeners)

    def _propagation(self) -> Propagation:
        if self.propagation is None:
            # built on first use, once every component (and its fault schedule) is plugged in
            self.propagation = Propagation(self.net, self.scenario.network, self.streams)
        return self.propagation

    @property
    def block_interval_s(self) -> float:
        """How often a sequencer closes a block (``network.block_interval_s``)."""
        return self.scenario.network.block_interval_s

    @property
    def now(self) -> float:
        """The simulated time, in seconds."""
        return self.env.now

    def after(self, delay: float, fire: Callable[[], object]) -> None:
        """Call ``fire()`` after ``delay`` simulated seconds."""

        def call(_event: Event) -> None:
            fire()

        self.env.timeout(delay).callbacks.append(call)

    def every(self, interval: float, fire: Callable[[], bool], *, at_once: bool = False) -> None:
        """Call ``fire()`` every ``interval`` seconds for as long as it returns True."""

        def loop() -> Process:
            if not at_once:
                yield self.env.timeout(interval)
            while fire():
                yield self.env.timeout(interval)

        self.env.process(loop())

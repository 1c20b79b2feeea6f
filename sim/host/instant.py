"""An instant in-memory host: the :class:`~sim.host.host.Host` protocol without simpy, for tests.

A protocol's rules (a deadline, a forfeit, a dispute, a forged vote) are tested against this
host with hand-written sequences, in milliseconds: its clock is a heap of ``(time, seq,
callback)`` run by :meth:`InstantHost.run`, and a message reaches exactly the nodes it is
addressed to after a latency the test chooses (:attr:`InstantHost.latency`, fixed, per
destination node, or a function of the message's kind, origin and destination). There is no
topology walk, no loss, no fast path and no Dandelion stem.

What it keeps of the simpy host (:mod:`sim.runs.simulation`): :meth:`~InstantHost.submit` makes
an :class:`~sim.results.records.OrderRecord` per order exactly as the simpy host does and hands
it to the plugged order flow; :meth:`~InstantHost.start` applies every component's
:class:`~sim.host.component.Genesis` and only then copies the exchange to the replicas;
:meth:`~InstantHost.close_block` is one turn of the sequencer (the components' proposals, the
block executed on the canonical exchange, ``committed`` hooks, then the block broadcast to the
replicas and block listeners). Blocks close only when a test calls it, or every
``network.block_interval_s`` with ``start(blocks=True)``. Catch-up (:mod:`sim.host.catchup`, the
simpy host's own) runs with ``start(catch_up=True)``: a replica that lost a block detects the gap
from a later block or a status poll and fetches it by height, message by message; without it,
a block lost on the way to a replica stays lost (a :class:`~sim.chain.blocks.Replica` orders
blocks that arrive out of turn by itself).

What it has to fake: components still make a few network calls below ``spread`` and
``broadcast``, typed as :class:`~sim.host.host.Links` (``host.net``). :class:`InstantNet`
implements that protocol (mypy checks it), and its members are the map of what remains to
narrow:

* ``flood(origin, msg, to=)``: BFT consensus bundles (proposals and votes)
  (:mod:`sim.settlement.rounds`), optimistic bond steps (:mod:`sim.settlement.optimistic`);
  here the same as :meth:`InstantHost.broadcast` to every node;
* ``route(src, dst)`` and ``send(src, dst, ...)``: the operator's hop-by-hop path
  (:mod:`sim.orderflow.operator`); here one direct hop;
* ``route`` and ``relay(path, ...)``: threshold key shares to the aggregator
  (:mod:`sim.orderflow.threshold`);
* ``stats`` (a real :class:`~sim.net.network.MessageStats`): the threshold DKG's message counts,
  settlement's ``settlement.messages``;
* ``down``, ``cuts``, ``blocked``, ``quorate``, ``crash``, ``restart``, ``cut``, ``heal``:
  settlement's ``up(node)`` and the fault injector (:mod:`sim.host.faults`).

``path_to`` is the simpy network's own breadth-first search
(:func:`~sim.net.network.nearest_path`). The floods this host returns are real ``Flood`` values
whose ``arrivals`` and ``first_from`` are filled for the nodes a message was delivered to (the
listeners), so for catch-up a block is held by the replicas and block listeners that received or
fetched it, never by a node that was not told (the simpy host computes every node's arrival).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import cast

from market.crypto import CryptoMeter
from market.exchange import Exchange
from market.oracle import Settlement
from market.types import Order
from sim.chain.blocks import BatchCheck, Block, Replica
from sim.chain.opening import opening_exchange
from sim.host.catchup import CatchUp
from sim.host.component import Component, OrderFlow, open_chain, refuse_settlements
from sim.host.host import Links
from sim.host.sequencing import block_txs, execute_block
from sim.net.network import (
    Flood,
    Message,
    MessageStats,
    Outages,
    Receive,
    SimNetwork,
    Topology,
    nearest_path,
    relay_along,
    unexpected,
)
from sim.results.records import OrderRecord, RunRecords
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world.build import TraderSpec, World

Delay = Callable[[str, int, int], float | None]
"""``delay(kind, src, dst)``: seconds until a message of ``kind`` reaches ``dst``; None: never."""


def complete_topology(nodes: int, latency_s: float = 0.01) -> Topology:
    """Every node linked to every other with one latency (the instant host ignores it)."""
    return Topology(
        tuple(tuple((v, latency_s) for v in range(nodes) if v != u) for u in range(nodes))
    )


def tiny_world(
    scenario: Scenario,
    *,
    reporters: Sequence[int] = (0, 1, 2, 3),
    spies: Iterable[int] = (),
    keypers: Sequence[int] = (),
    operator: int = 0,
    adversary_node: int | None = None,
    trader_nodes: Sequence[int] = (),
    outcomes: Sequence[int] | None = None,
) -> World:
    """A hand-made world of ``scenario.network.nodes`` fully linked nodes, with no order plan.

    Traders are noise traders numbered 0, 1, ... at ``trader_nodes`` (their ids are their ledger
    accounts); ``outcomes`` are the markets' true outcomes (0 for every market by default).
    """
    cfg = scenario.market
    spy_set = frozenset(spies)
    truth = tuple(outcomes) if outcomes is not None else (0,) * cfg.count
    flat = tuple(1.0 / cfg.outcomes for _ in range(cfg.outcomes))
    return World(
        topology=complete_topology(scenario.network.nodes),
        spies=spy_set,
        reporters=tuple(reporters),
        keypers=tuple(keypers),
        operator=operator,
        adversary_node=(
            adversary_node if adversary_node is not None else min(spy_set, default=operator)
        ),
        traders=tuple(
            TraderSpec(i, "noise", node, (-1,) * cfg.count) for i, node in enumerate(trader_nodes)
        ),
        true_probs=(flat,) * cfg.count,
        outcomes=truth,
        plan=(),
    )


class InstantClock:
    """A heap of ``(time, seq, callback)``: callbacks at one time run in the order scheduled."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events = 0
        self._queue: list[tuple[float, int, Callable[[], object]]] = []
        self._seq = 0

    def at(self, t: float, fire: Callable[[], object]) -> None:
        """Call ``fire()`` at time ``t`` (never before now)."""
        if math.isnan(t):
            raise ValueError("an event needs a time")
        heapq.heappush(self._queue, (max(t, self.now), self._seq, fire))
        self._seq += 1

    def run(self, until: float | None = None) -> None:
        """Run every callback due at or before ``until`` (all of them when None), then stop there.

        Unlike simpy's ``run(until=t)``, a callback due exactly at ``until`` runs.
        """
        queue = self._queue
        while queue and (until is None or queue[0][0] <= until):
            t, _, fire = heapq.heappop(queue)
            self.now = t
            self.events += 1
            fire()
        if until is not None:
            self.now = max(self.now, until)

    @property
    def pending(self) -> int:
        """Callbacks scheduled and not yet run."""
        return len(self._queue)


class InstantNet(Outages):
    """The few network calls components still make on ``host.net`` (see the module docstring).

    Every message is delivered directly from its source to its destination after the host's
    latency; a crashed node neither sends nor receives, and a cut link loses the message.
    """

    def __init__(self, host: InstantHost, topology: Topology) -> None:
        super().__init__()
        self.host = host
        self.topology = topology
        self.stats = MessageStats()
        self.faults_scheduled = False
        self.sent: list[tuple[float, str, int, int]] = []
        """Every point-to-point message sent: ``(time, kind, src, dst)``."""

    def quorate(self, node: int, peers: Sequence[int]) -> bool:
        """Whether ``node`` runs and is cut off from at most half of the running ``peers``."""
        if node in self.down:
            return False
        running = [p for p in peers if p not in self.down]
        return 2 * sum(1 for p in running if not self.blocked(node, p) or p == node) > len(running)

    def path_to(self, origin: int, holds: Callable[[int], bool], *, skip: int = 0) -> list[int]:
        """As the simpy network: a shortest path over the topology, around crashed nodes."""
        return nearest_path(self.topology, origin, holds, down=self.down, skip=skip)

    def route(self, src: int, dst: int) -> list[int]:
        """One direct hop (every node reaches every other here); [] when blocked now."""
        if src == dst:
            return [src]
        return [] if self.blocked(src, dst) else [src, dst]

    def send(self, src: int, dst: int, msg: Message, *, to: Receive) -> None:
        """Send ``msg`` ``src`` → ``dst``; ``to(dst, src, msg)`` runs at ``dst`` unless lost."""
        if src in self.down:
            return
        kind = msg.kind
        delay = self.host.delay_of(kind, src, dst)
        lost = delay is None or self.blocked(src, dst)
        self.stats.add(kind, sent=1, delivered=int(not lost), lost=int(lost), size=msg.size)
        self.sent.append((self.host.now, kind, src, dst))
        if delay is None or lost:
            return

        def arrive() -> None:
            if dst in self.down:
                self.stats.delivered[kind] -= 1
                self.stats.lost[kind] += 1
                return
            to(dst, src, msg)

        self.host.after(delay, arrive)

    def relay(self, path: Sequence[int], msg: Message, *, to: Receive) -> None:
        """Send ``msg`` hop by hop along ``path``; ``to`` runs at its end."""
        relay_along(self, path, msg, to=to)

    def flood(self, origin: int, msg: Message, *, to: Receive) -> Flood:
        """Diffuse to every node (a protocol message: consensus bundles, bond steps)."""
        return self.host.broadcast(origin, msg, to=to)


class InstantHost:
    """A :class:`~sim.host.host.Host` on a heap clock, delivering messages directly.

    Args:
        scenario: the scenario whose sections the components read.
        world: the world (see :func:`tiny_world`).
        seed: the run seed of the random streams (salts, keys).
        latency: how long a message takes from its source to a destination: seconds for every
            message, seconds per destination node, or ``delay(kind, src, dst)`` (None: lost).
            It may be changed between steps of a test.
        exchange: the canonical state at time 0 (by default
            :func:`~sim.chain.opening.opening_exchange`).

    Attributes:
        delivered: every delivery so far, ``(time, kind, origin, node)``, origins included.
    """

    def __init__(
        self,
        scenario: Scenario,
        world: World,
        *,
        seed: int = 1,
        latency: float | Mapping[int, float] | Delay = 0.0,
        exchange: Exchange | None = None,
    ) -> None:
        self.scenario = scenario
        self.world = world
        self.streams = Streams(seed)
        self.clock = InstantClock()
        self.latency = latency
        self._net = InstantNet(self, world.topology)
        self.net: Links = self._net
        self.exchange = exchange if exchange is not None else opening_exchange(scenario, world)
        self.validators = world.reporters
        self.meter = CryptoMeter()
        self.records = RunRecords()
        self.by_key = self.records.by_key
        self.replicas: dict[int, Replica] = {}
        self.blocks: list[tuple[Block, Flood]] = []
        self.block_listeners: dict[int, list[Callable[[Block], None]]] = {}
        self.settlement_ok: Callable[[Settlement], bool] = refuse_settlements
        self.batch_ok: BatchCheck | None = None
        self.faulty_replicas: set[int] = set()
        self.components: list[Component] = []
        self.orderflow: OrderFlow | None = None
        self.delivered: list[tuple[float, str, int, int]] = []
        self.slot = 0
        self.started = False
        self.catch_up: CatchUp | None = None

    # -- the Host protocol -----------------------------------------------------------------

    @property
    def block_interval_s(self) -> float:
        """How often a sequencer closes a block (``network.block_interval_s``)."""
        return self.scenario.network.block_interval_s

    @property
    def now(self) -> float:
        """The simulated time, in seconds."""
        return self.clock.now

    @property
    def sequencers(self) -> tuple[int, ...]:
        """The nodes that close blocks (the order flow decides; validators by default)."""
        return self.orderflow.sequencers() if self.orderflow else self.validators

    def after(self, delay: float, fire: Callable[[], object]) -> None:
        """Call ``fire()`` after ``delay`` simulated seconds."""
        self.clock.at(self.now + delay, fire)

    def every(self, interval: float, fire: Callable[[], bool], *, at_once: bool = False) -> None:
        """Call ``fire()`` every ``interval`` seconds for as long as it returns True."""

        def tick() -> None:
            if fire():
                self.after(interval, tick)

        self.after(0.0 if at_once else interval, tick)

    def on_block(self, node: int, fire: Callable[[Block], None]) -> None:
        """Call ``fire(block)`` whenever a block reaches ``node`` by diffusion."""
        self.block_listeners.setdefault(node, []).append(fire)

    def submit(self, order: Order, *, node: int, kind: str) -> OrderRecord:
        """Record ``order`` and hand it to the order flow, like the simpy host."""
        assert self.orderflow is not None, "plug an order flow first"
        record = self.records.submitted(order, kind=kind, node=node, t=self.now)
        self.orderflow.submit(record)
        return record

    def spread(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Deliver at ``origin`` now, then at each listener after its latency (no stems)."""
        return self._spread(origin, msg, to, listeners)

    def broadcast(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Like :meth:`spread` (this host has no stems to leave out)."""
        return self._spread(origin, msg, to, listeners)

    # -- delivery ----------------------------------------------------------------------------

    def delay_of(self, kind: str, src: int, dst: int) -> float | None:
        """Seconds until a message of ``kind`` from ``src`` reaches ``dst`` (None: never)."""
        latency = self.latency
        if isinstance(latency, int | float):
            return float(latency)
        if isinstance(latency, Mapping):
            return float(latency.get(dst, 0.0))
        return latency(kind, src, dst)

    def _spread(
        self, origin: int, msg: Message, to: Receive, listeners: Sequence[int] | None
    ) -> Flood:
        net, kind, size = self._net, msg.kind, msg.size
        flood = Flood(cast(SimNetwork, self._net), msg, to)  # it reads nodes only
        if origin in net.down:
            return flood
        targets = range(self.world.topology.nodes) if listeners is None else listeners
        self._arrive(flood, origin, -1)
        for node in sorted(set(targets) - {origin}):
            delay = self.delay_of(kind, origin, node)
            if delay is None or net.blocked(origin, node):
                net.stats.add(kind, sent=1, delivered=0, lost=1, size=size)
                continue
            self.after(delay, partial(self._arrive, flood, node, origin))
        return flood

    def _arrive(self, flood: Flood, node: int, sender: int) -> None:
        kind, size = flood.msg.kind, flood.msg.size
        if node in self._net.down:
            self._net.stats.add(kind, sent=1, delivered=0, lost=1, size=size)
            return
        if sender >= 0:
            self._net.stats.add(kind, sent=1, delivered=1, lost=0, size=size)
        flood.arrivals[node], flood.first_from[node] = self.now, sender
        self.delivered.append((self.now, kind, sender if sender >= 0 else node, node))
        flood.on_arrival(node, sender, flood.msg)

    # -- the chain and the run --------------------------------------------------------------

    def plug(self, component: Component) -> Component:
        """Add a component; the first :class:`OrderFlow` plugged carries the orders."""
        self.components.append(component)
        if isinstance(component, OrderFlow) and self.orderflow is None:
            self.orderflow = component
        return component

    def start(self, *, blocks: bool = False, catch_up: bool = False) -> None:
        """Apply every genesis, copy the exchange to the replicas, start the components.

        With ``blocks`` the sequencer closes a block every ``network.block_interval_s``; with
        ``catch_up`` replicas fetch the blocks they missed and poll for status every
        :data:`~sim.host.catchup.SYNC_INTERVAL_S` (so :meth:`run` needs an ``until``).
        """
        assert not self.started, "a host starts once"
        self.started = True
        opening = open_chain([c.genesis() for c in self.components], self.exchange)
        self.settlement_ok = opening.settlement_check
        self.batch_ok = opening.batch_check
        self.faulty_replicas |= opening.faulty_replicas
        self.replicas = {
            node: Replica(node, self.exchange.copy(), self.settlement_ok, self.batch_ok, self.meter)
            for node in self.validators
        }
        for component in self.components:
            component.start()
        if catch_up:
            self.catch_up = CatchUp(self)
            self.catch_up.start()
        if blocks:
            self.every(self.scenario.network.block_interval_s, self._turn)

    def _turn(self) -> bool:
        self.close_block()
        return True

    def run(self, until: float | None = None) -> None:
        """Run the clock to ``until`` (callbacks due then included), or until nothing is left."""
        self.clock.run(until)

    def close_block(self, proposer: int | None = None) -> Block | None:
        """One sequencer slot now: gather proposals, commit a non-empty block, broadcast it.

        ``proposer`` defaults to the slot's turn. Returns the block, or None when the slot
        passed empty (nothing proposed, or the proposer is down or cut off).
        """
        self.slot += 1
        if proposer is None:
            assert self.orderflow is not None or self.sequencers
            proposer = (
                self.orderflow.proposer(self.slot)
                if self.orderflow is not None
                else self.sequencers[self.slot % len(self.sequencers)]
            )
        if not self._net.quorate(proposer, self.sequencers):
            return None
        txs = block_txs(
            self.components,
            proposer,
            exchange=self.exchange,
            markets=self.scenario.market.count,
            now=self.now,
            close_s=self.scenario.market.close_s,
        )
        if not txs:
            return None
        block = Block(len(self.blocks), self.now, proposer, tuple(txs))
        self.commit(block)
        return block

    def commit(self, block: Block) -> None:
        """Execute ``block`` on the canonical exchange, tell the components, broadcast it."""
        execute_block(
            self.components,
            block,
            exchange=self.exchange,
            settlement_ok=self.settlement_ok,
            batch_ok=self.batch_ok,
            meter=self.meter,
        )
        listeners = sorted(set(self.replicas) | set(self.block_listeners))
        flood = self.broadcast(block.proposer, block, to=self._block_at, listeners=listeners)
        self.blocks.append((block, flood))
        if self.catch_up is not None:
            self.catch_up.closed(block)

    def _block_at(self, node: int, _sender: int, msg: Message) -> None:
        match msg:
            case Block():
                replica = self.replicas.get(node)
                if self.catch_up is not None:
                    self.catch_up.arrived(node, msg)
                elif replica is not None:
                    replica.receive(msg)
                for listener in self.block_listeners.get(node, ()):
                    listener(msg)
            case _:
                unexpected(msg)

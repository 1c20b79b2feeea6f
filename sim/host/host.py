"""What a component sees of the running world: the :class:`Host` protocol.

Order flows, settlement protocols, adversaries and the forecaster are written against this
protocol, never against the simpy simulation that implements it (:mod:`sim.runs.simulation`).
So they import nothing above :mod:`sim.host`, and none of them touches the simpy environment:
time reaches them as :attr:`Host.now`, :meth:`Host.after` and :meth:`Host.every`.

Messages are values (:class:`sim.net.network.Message`: one frozen dataclass per kind, with its
wire size); every send names the handler that receives ``(node, sender, msg)`` where it arrives,
and handlers dispatch on the message's class with ``match``. Components never see the scenario:
the composition root (:mod:`sim.runs.assembly`) hands each its own ``[section]``.

The surface is still wider than a protocol needs. The clock, the message paths (``spread``,
``broadcast``, ``net.send``/``relay``/``flood``) and block subscriptions (``on_block``)
are what the design keeps; the shared state (``world``, ``exchange``, ``replicas``,
``records``/``by_key``, ``settlement_ok``, ``faulty_replicas``) is what components still read or
write directly, and what later work moves behind narrower calls. Listing it here makes every
such reach visible and type-checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from market.crypto import CryptoMeter
from market.exchange import Exchange
from market.oracle import Settlement
from market.types import Order
from sim.chain.blocks import Block, Replica
from sim.net.network import Flood, Message, MessageStats, Receive
from sim.results.records import OrderRecord, RunRecords
from sim.rng import Streams
from sim.world.build import World


class Links(Protocol):
    """The network calls components still make directly, below ``spread`` and ``broadcast``.

    Point-to-point sends and relays (the operator's hop, keypers' shares, catch-up fetches),
    message-by-message floods (votes, bond steps), and the fault switches. The simpy network
    (:class:`sim.net.network.SimNetwork`) and the instant host's fake both provide them.
    """

    stats: MessageStats
    down: set[int]
    """Nodes crashed right now."""
    faults_scheduled: bool

    def route(self, src: int, dst: int) -> list[int]:
        """A shortest open path from ``src`` to ``dst`` (empty when there is none now)."""
        ...

    def send(self, src: int, dst: int, msg: Message, *, to: Receive) -> None:
        """``msg`` over the link ``src``–``dst``; ``to(dst, src, msg)`` runs unless it is lost."""
        ...

    def relay(self, path: Sequence[int], msg: Message, *, to: Receive) -> None:
        """``msg`` hop by hop along ``path``; ``to`` runs at its end."""
        ...

    def flood(self, origin: int, msg: Message, *, to: Receive) -> Flood:
        """Flood ``msg`` from ``origin``, simulated message by message."""
        ...

    def path_to(self, origin: int, holds: Callable[[int], bool], *, skip: int = 0) -> list[int]:
        """A shortest path from ``origin`` to a node for which ``holds`` is true."""
        ...

    def crash(self, node: int) -> None: ...
    def restart(self, node: int) -> None: ...
    def cut(self, nodes: frozenset[int]) -> None: ...
    def heal(self, nodes: frozenset[int]) -> None: ...


class Host(Protocol):
    """The running world as a component may use it (implemented by the simpy simulation)."""

    world: World
    streams: Streams
    """The run's named random streams (derived from its seed, so runs are reproducible)."""
    exchange: Exchange
    """The canonical chain's state."""
    validators: tuple[int, ...]
    meter: CryptoMeter
    """Every cryptographic operation the protocol performs (not the adversary's)."""
    records: RunRecords
    by_key: dict[tuple[int, int], OrderRecord]
    replicas: dict[int, Replica]
    blocks: list[tuple[Block, Flood]]
    settlement_ok: Callable[[Settlement], bool]
    faulty_replicas: set[int]

    @property
    def net(self) -> Links:
        """The network calls components still make below spread and broadcast."""
        ...

    @property
    def now(self) -> float:
        """The simulated time, in seconds."""
        ...

    @property
    def sequencers(self) -> tuple[int, ...]:
        """The nodes that close blocks."""
        ...

    @property
    def block_interval_s(self) -> float:
        """How often a sequencer closes a block (``network.block_interval_s``)."""
        ...

    def after(self, delay: float, fire: Callable[[], object]) -> None:
        """Call ``fire()`` after ``delay`` simulated seconds."""
        ...

    def every(self, interval: float, fire: Callable[[], bool], *, at_once: bool = False) -> None:
        """Call ``fire()`` every ``interval`` seconds for as long as it returns True.

        The first call comes after one interval, or at once with ``at_once``.
        """
        ...

    def on_block(self, node: int, fire: Callable[[Block], None]) -> None:
        """Call ``fire(block)`` whenever a block reaches ``node`` by diffusion."""
        ...

    def submit(self, order: Order, *, node: int, kind: str) -> OrderRecord:
        """Record ``order`` and send it from ``node`` by the run's order flow, now."""
        ...

    def spread(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Spread an order-bearing ``msg`` as ``network.propagation`` says (maybe by stems).

        ``to(node, sender, msg)`` runs at the origin at once and at each node's first arrival;
        with ``listeners``, a computed diffusion tells only those nodes (see the simpy host).
        """
        ...

    def broadcast(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Diffuse a protocol ``msg`` (a block, decryption shares): never by stems."""
        ...

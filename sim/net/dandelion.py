"""How order-bearing messages spread: diffusion, or Dandelion++'s anonymity stems first.

Dandelion++ (Fanti et al., SIGMETRICS 2018), as ``network.propagation = "dandelion"``:

- **Anonymity graph.** Every epoch (``network.dandelion_epoch_s``, the same boundaries for every
  node) each node picks two of its neighbours as outbound stem relays.
- **Per-inbound-edge routing.** Within an epoch a node sends every stem message that came from a
  given neighbour to the same one of its relays, the inbound edges shared out evenly between the
  two (never straight back to the sender when the other relay exists). Random per-message
  forwarding would let spies fingerprint a node from the spread of its messages.
- **Own messages** leave through one fixed relay per epoch.
- **Fluff.** Each node that receives a stem message diffuses it instead of relaying it with
  probability ``network.fluff_probability`` (a coin per message and hop, as the issue and
  BIP 156 specify; the paper flips one per node and epoch). From then on it spreads as diffusion.
- **Embargo.** Every node that sends a message along the stem starts a timer; if the diffused
  message has not reached it when the timer runs out, it diffuses the message itself. A relay that
  swallows stem messages (a *black hole*) or a lost stem hop therefore only delays a message.
- A stem that comes back to a node already holding the message goes on like any other: the
  stem is a walk on the anonymity graph, with no memory of where it has been.

All of it is protocol randomness, drawn from the run's streams (:class:`sim.rng.Streams`): the
routes of epoch ``e`` from the stream ``dandelion-routes-e``, the coins and the timers from their
own streams, so the same run seed gives the same stems.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from simpy.events import Timeout

from sim.net.fastflood import EventSpread, FastFlood, LatencyGraph, Spread, diffuse
from sim.net.network import Flood, Message, Receive, SimNetwork, Topology
from sim.rng import Streams
from sim.scenario import Network as NetworkConfig

STEM_RELAYS = 2
"""Outbound stem relays per node and epoch (a 4-regular anonymity graph, as the paper advises)."""

EMBARGO_TAIL = 0.01
"""Share of stems allowed to be longer than the embargo's fixed part expects."""


@dataclass(frozen=True, slots=True)
class EpochRoutes:
    """The stem routes of one epoch.

    Attributes:
        epoch: the epoch's index (time // ``dandelion_epoch_s``).
        relays: per node, its outbound stem relays (two, or one for a node with one neighbour);
            the first carries the node's own messages.
        forward: per node, the relay a stem message goes to, by the neighbour it came from.
    """

    epoch: int
    relays: tuple[tuple[int, ...], ...]
    forward: tuple[Mapping[int, int], ...]

    def own(self, node: int) -> int:
        """The relay of ``node``'s own messages."""
        return self.relays[node][0]

    def next_hop(self, node: int, sender: int) -> int:
        """Where ``node`` relays a stem message that came from its neighbour ``sender``."""
        return self.forward[node][sender]


def neighbour_lists(topology: Topology) -> tuple[tuple[int, ...], ...]:
    """Each node's neighbours, sorted."""
    return tuple(tuple(v for v, _ in nbrs) for nbrs in topology.links)


def build_routes(
    neighbours: Sequence[Sequence[int]], epoch: int, rng: random.Random
) -> EpochRoutes:
    """Draw one epoch's anonymity graph and every node's forwarding rule from ``rng``."""
    relays = tuple(
        tuple(rng.sample(list(nbrs), min(STEM_RELAYS, len(nbrs)))) for nbrs in neighbours
    )
    inbound: list[list[int]] = [[] for _ in neighbours]
    for node, outs in enumerate(relays):
        for relay in outs:
            inbound[relay].append(node)
    forward = tuple(
        forwarding(relays[node], inbound[node], neighbours[node], rng)
        for node in range(len(neighbours))
    )
    return EpochRoutes(epoch, relays, forward)


def forwarding(
    relays: Sequence[int], inbound: Sequence[int], neighbours: Sequence[int], rng: random.Random
) -> dict[int, int]:
    """One node's map from the neighbour a stem message came from to the relay it goes to.

    The inbound edges of the anonymity graph are dealt out in random order, in turn, to the
    relays (two inbound edges go to two different relays), starting from the relay that sends
    the fewest straight back where they came from; the other neighbours, which only send stem
    messages still in flight across a reshuffle, are dealt after them. A message goes back to its
    sender only when no other relay exists.
    """
    incoming = set(inbound)
    dealt = rng.sample(list(inbound), len(inbound))
    others = [n for n in neighbours if n not in incoming]
    dealt += rng.sample(others, len(others))
    k = len(relays)

    def back(offset: int, senders: Sequence[int]) -> int:
        return sum(relays[(i + offset) % k] == u for i, u in enumerate(senders))

    offset = min(range(k), key=lambda o: (back(o, dealt[: len(inbound)]), back(o, dealt)))
    mapping: dict[int, int] = {}
    for i, sender in enumerate(dealt):
        relay = relays[(i + offset) % k]
        if relay == sender:
            relay = relays[(i + offset + 1) % k]
        mapping[sender] = relay
    return mapping


def mean_hop_s(cfg: NetworkConfig) -> float:
    """Mean link latency in seconds (the mean of the lognormal)."""
    return cfg.latency_ms.median / 1000.0 * math.exp(cfg.latency_ms.sigma**2 / 2.0)


def long_stem_hops(fluff_probability: float, tail: float = EMBARGO_TAIL) -> int:
    """Hops that all but ``tail`` of stems stay within (stem lengths are geometric)."""
    if fluff_probability >= 1.0:
        return 1
    return max(1, math.ceil(math.log(tail) / math.log1p(-fluff_probability)))


def embargo_base_s(cfg: NetworkConfig) -> float:
    """The embargo's fixed part: a long stem out and the diffused message back, at mean latency.

    Long enough that in a loss-free network with no black hole a timer almost never fires
    before the diffused message returns (which would diffuse from nearer the origin). Coming
    back, each diffused hop also waits its mean forwarding delay.
    """
    hops = long_stem_hops(cfg.fluff_probability) + 1
    return 2.0 * hops * mean_hop_s(cfg) + hops * cfg.diffusion_delay_ms / 1000.0


def embargo_mean_s(cfg: NetworkConfig) -> float:
    """Mean of the embargo's exponential part: a mean stem's duration.

    The random part makes the node that diffuses a black-holed message any stem node, not
    always the first one to have forwarded it.
    """
    return mean_hop_s(cfg) / cfg.fluff_probability


@dataclass(frozen=True, slots=True)
class StemHop:
    """One stem hop: at ``t`` ``node`` sent ``message``, which came from ``sender`` (-1: its
    own), to ``relay``."""

    t: float
    message: Spread
    sender: int
    node: int
    relay: int


@dataclass(slots=True)
class StemStats:
    """What the stems did over a run (for tests and benchmarks)."""

    messages: int = 0
    hops: int = 0
    coin_fluffs: int = 0
    embargo_fluffs: int = 0
    revisits: int = 0


class Dandelion:
    """The Dandelion++ router of one run.

    Args:
        net: the run's network.
        cfg: ``[network]`` (fluff probability, epoch length, latency for the embargo).
        streams: the run's streams (routes, coins and timers are protocol randomness).
        graph: the topology for computed diffusion; None for message-by-message diffusion.
        black_holes: relays that swallow every stem message they receive (they still relay
            diffused messages): an adversary the embargo timers defend against.
        trace: keep every stem hop in :attr:`hops` (for tests and inspection).
    """

    def __init__(
        self,
        net: SimNetwork,
        cfg: NetworkConfig,
        streams: Streams,
        *,
        graph: LatencyGraph | None,
        black_holes: frozenset[int] = frozenset(),
        trace: bool = False,
    ) -> None:
        self.net = net
        self.cfg = cfg
        self.streams = streams
        self.graph = graph
        self.black_holes = black_holes
        self.neighbours = neighbour_lists(net.topology)
        self.coin = streams.python("dandelion-fluff").random
        self.timers = streams.python("dandelion-embargo")
        self.embargo_base = embargo_base_s(cfg)
        self.embargo_mean = embargo_mean_s(cfg)
        self.stats = StemStats()
        self.hops: list[StemHop] | None = [] if trace else None
        self._routes: EpochRoutes | None = None

    def routes(self, epoch: int) -> EpochRoutes:
        """The routes of ``epoch`` (drawn from its own stream; the latest one is kept)."""
        if self._routes is None or self._routes.epoch != epoch:
            rng = self.streams.python(f"dandelion-routes-{epoch}")
            self._routes = build_routes(self.neighbours, epoch, rng)
        return self._routes

    def current(self) -> EpochRoutes:
        """The routes of the epoch the clock is in."""
        return self.routes(int(self.net.env.now // self.cfg.dandelion_epoch_s))

    def send(
        self,
        origin: int,
        msg: Message,
        *,
        to: Receive,
        listeners: Sequence[int] | None = None,
        waits: Waits | None = None,
    ) -> Spread:
        """Send ``msg`` from ``origin`` along its stem now; returns its record.

        Stem hops are sent at once; ``waits`` (latency plus forwarding delay per directed
        link, see :class:`Propagation`) applies once the message diffuses.
        """
        spread: Spread
        if self.graph is None:
            spread = EventSpread(
                self.net,
                origin,
                msg,
                to=to,
                waits=None if waits is None else waits.listed(),
                slots=() if waits is None else waits.slots,
            )
        else:
            spread = FastFlood(
                self.net,
                self.graph,
                origin,
                msg,
                to=to,
                listeners=listeners,
                waits=None if waits is None else waits.array,
            )
        if origin in self.net.down:
            return spread  # a crashed node sends nothing
        self.stats.messages += 1
        spread.reach(origin, -1)
        self._forward(spread, -1, origin, self.current().own(origin))
        return spread

    def _forward(self, spread: Spread, sender: int, node: int, relay: int) -> None:
        """``node`` sends ``spread`` (from ``sender``) one stem hop to ``relay``; starts a timer."""
        self.stats.hops += 1
        if self.hops is not None:
            self.hops.append(StemHop(self.net.env.now, spread, sender, node, relay))
        self.net.send(node, relay, spread.msg, to=partial(self._hop, spread))
        delay = self.embargo_base + self.timers.expovariate(1.0 / self.embargo_mean)
        Timeout(self.net.env, delay).callbacks.append(partial(self._embargo, spread, node))

    def _hop(self, spread: Spread, node: int, sender: int, _msg: Message) -> None:
        """A stem message reaches ``node`` from ``sender``."""
        if spread.diffused(node):
            return  # it already spreads from here
        if not spread.reach(node, sender, stem=True):
            # the stem came back to a node holding the message: a walk on the anonymity graph
            # has no memory, so the node relays it like any other (the paper's model)
            self.stats.revisits += 1
        if node in self.black_holes:
            return
        if self.coin() < self.cfg.fluff_probability:
            self.stats.coin_fluffs += 1
            spread.fluff(node)
            return
        self._forward(spread, sender, node, self.current().next_hop(node, sender))

    def _embargo(self, spread: Spread, node: int, _event: Timeout) -> None:
        if not spread.diffused(node):
            self.stats.embargo_fluffs += 1
            spread.fluff(node)


@dataclass(frozen=True, slots=True)
class Waits:
    """One order-bearing message's wait on every directed link: latency plus forwarding delay.

    ``array`` for the computed diffusion, :meth:`listed` (the same floats) for message-by-message
    delivery, and ``slots`` where each node's links start; both paths add the same wait to the
    same arrival time, so they stay bitwise equal.
    """

    array: np.ndarray
    slots: list[int]

    def listed(self) -> list[float]:
        """The waits as Python floats (what simpy adds to its clock)."""
        return self.array.tolist()


class Propagation:
    """How one run spreads order-bearing messages (``network.propagation``).

    Diffusion is computed (:func:`sim.net.fastflood.diffuse`) when links lose nothing and no crash
    or partition is scheduled, and simulated message by message otherwise; Dandelion++ sends
    every message along its stem first.

    Diffusing an order-bearing message, a node waits before forwarding it to each neighbour: an
    exponential delay of mean ``network.diffusion_delay_ms``, drawn independently per message,
    forwarding node and neighbour (Bitcoin's trickling), from the run's ``diffusion-delays``
    stream when the message starts. Protocol messages (blocks, keys, votes) are relayed at once.

    Args:
        net: the run's network.
        cfg: ``[network]``.
        streams: the run's streams.
        black_holes: Dandelion relays that swallow stem messages (none in scenario runs).
    """

    def __init__(
        self,
        net: SimNetwork,
        cfg: NetworkConfig,
        streams: Streams,
        *,
        black_holes: frozenset[int] = frozenset(),
    ) -> None:
        self.net = net
        # crashes and partitions (sim.host.faults) are decided as messages travel: no computing them
        fast = net.loss == 0 and not net.faults_scheduled
        self.links = LatencyGraph(net.topology)
        self.graph = self.links if fast else None
        self.delay_s = cfg.diffusion_delay_ms / 1000.0
        self.delays = streams.numpy("diffusion-delays")
        self.slots = self.links.indptr.tolist()
        self.router: Dandelion | None = None
        if cfg.propagation == "dandelion":
            self.router = Dandelion(net, cfg, streams, graph=self.graph, black_holes=black_holes)

    def diffuse(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Diffuse a protocol message (block, key, vote): never a stem, computed when it can be."""
        if self.graph is not None:
            return diffuse(self.net, self.graph, origin, msg, to=to, listeners=listeners)
        return self.net.flood(origin, msg, to=to)

    def spread(
        self, origin: int, msg: Message, *, to: Receive, listeners: Sequence[int] | None = None
    ) -> Flood:
        """Spread ``msg`` from ``origin`` now; see ``Simulation.spread``."""
        waits = self.draw_waits()
        if self.router is not None:
            return self.router.send(origin, msg, to=to, listeners=listeners, waits=waits)
        if waits is None:
            return self.diffuse(origin, msg, to=to, listeners=listeners)
        if self.graph is not None:
            return diffuse(
                self.net, self.graph, origin, msg, to=to, listeners=listeners, waits=waits.array
            )
        spread = EventSpread(self.net, origin, msg, to=to, waits=waits.listed(), slots=waits.slots)
        if origin not in self.net.down:  # a crashed node sends nothing
            spread.reach(origin, -1)
            spread.fluff(origin)
        return spread

    def draw_waits(self) -> Waits | None:
        """This message's waits, or None when nodes forward at once."""
        if self.delay_s <= 0.0:
            return None
        array = self.links.waits(self.delays.exponential(self.delay_s, size=self.links.links))
        return Waits(array, self.slots)

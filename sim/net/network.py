"""The simulated network: topology, link latency and loss, and delivery as simpy events.

Messages are delivered as scheduled simpy events with a callback, never as one process per link:
measured on the reference machine, a timeout with a callback costs about 1.6 µs, a message
through a ``simpy.Store`` about 7 µs.

Diffusion (flooding): a node that receives a message for the first time forwards it to every
neighbour except the one it came from. A forward to a neighbour that has *already* seen the
message at sending time is counted as sent and delivered but not scheduled, because its arrival
could change nothing (having seen a message never becomes false). First-arrival times are
therefore exactly those of message-by-message flooding, at a fraction of the events.

Faults (:mod:`sim.host.faults` schedules them): a *crashed* node neither sends, receives nor relays
while it is down (a message reaching it then is lost, a message it would send is not sent), and
a *partition* cuts every link between a set of nodes and the rest. A message on a cut link is
lost, like a lost message; the sender learns nothing. Both are checked when a message is sent,
and a crash also when it arrives. A restarted node catches up by height like any replica.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, MutableSequence, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol, cast

import networkx as nx
import numpy as np
from simpy import Environment
from simpy.events import Timeout

from sim.errors import TopologyError
from sim.scenario import Network as NetworkConfig

MAX_REDRAWS = 50
"""Random graphs that come out disconnected are redrawn this many times, then an error."""


class Message(Protocol):
    """A value that travels over the network: one frozen dataclass per kind of message.

    Messages are the protocols' vocabulary (a sealed order, a vote bundle, a block, a fetch
    request). A handler receives the value itself and dispatches on its class with ``match``;
    an adversary at a node on the path sees exactly this value, never the simulator's records.
    """

    @property
    def kind(self) -> str:
        """The category the message is counted under in the run's message statistics."""
        ...

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        ...


def unexpected(msg: Message) -> NoReturn:
    """A handler got a message kind it does not handle: a wiring bug, never a network event."""
    raise TypeError(f"no handler for {type(msg).__name__} messages here")


Receive = Callable[[int, int, Message], None]
"""A handler, called as ``to(node, sender, msg)`` when ``msg`` reaches ``node`` from ``sender``
(-1 where no link was crossed: at a flood's origin, or a relay that starts at its destination).
For a flood it runs once per node, at the first arrival."""


@dataclass(frozen=True, slots=True)
class Topology:
    """An undirected connected graph with one latency (seconds) per link.

    Attributes:
        links: for each node, its ``(neighbour, latency_s)`` pairs sorted by neighbour.
    """

    links: tuple[tuple[tuple[int, float], ...], ...]

    @property
    def nodes(self) -> int:
        """Number of nodes."""
        return len(self.links)

    def degree(self, node: int) -> int:
        """Number of neighbours of ``node``."""
        return len(self.links[node])

    def edges(self) -> list[tuple[int, int, float]]:
        """Every link once, as ``(u, v, latency_s)`` with ``u < v``, sorted."""
        return [(u, v, lat) for u, nbrs in enumerate(self.links) for v, lat in nbrs if u < v]

    def latency(self, u: int, v: int) -> float:
        """Latency of the link between neighbours ``u`` and ``v``."""
        for nbr, lat in self.links[u]:
            if nbr == v:
                return lat
        raise KeyError((u, v))


def _draw_graph(cfg: NetworkConfig, seed: int) -> nx.Graph:
    n, d = cfg.nodes, cfg.degree
    match cfg.topology:
        case "random_regular":
            return nx.random_regular_graph(d, n, seed=seed)
        case "watts_strogatz":
            return nx.watts_strogatz_graph(n, d, 0.1, seed=seed)
        case "barabasi_albert":
            return nx.barabasi_albert_graph(n, d, seed=seed)
        case "erdos_renyi":
            return nx.gnp_random_graph(n, min(1.0, d / max(1, n - 1)), seed=seed)
        case "complete":
            return nx.complete_graph(n)
    raise AssertionError(cfg.topology)


def build_topology(cfg: NetworkConfig, rng: np.random.Generator) -> Topology:
    """Draw the graph of ``cfg`` and one lognormal latency per link, all from ``rng``.

    A graph that comes out disconnected is redrawn (up to :data:`MAX_REDRAWS` times).

    Raises:
        TopologyError: no connected graph was drawn.
    """
    for _ in range(MAX_REDRAWS):
        graph = _draw_graph(cfg, int(rng.integers(2**31)))
        if nx.is_connected(graph):
            break
    else:
        raise TopologyError(
            f"network.degree: a {cfg.topology} graph of {cfg.nodes} nodes and degree "
            f"{cfg.degree} came out disconnected {MAX_REDRAWS} times; raise the degree"
        )
    edges = sorted((min(u, v), max(u, v)) for u, v in graph.edges())
    median_s = cfg.latency_ms.median / 1000.0
    latencies = median_s * np.exp(cfg.latency_ms.sigma * rng.standard_normal(len(edges)))
    links: list[list[tuple[int, float]]] = [[] for _ in range(cfg.nodes)]
    for (u, v), lat in zip(edges, latencies.tolist(), strict=True):
        links[u].append((v, lat))
        links[v].append((u, lat))
    return Topology(tuple(tuple(sorted(nbrs)) for nbrs in links))


class MessageStats:
    """Counters of messages per kind: sent, delivered, lost and bytes sent."""

    __slots__ = ("bytes", "delivered", "lost", "sent")

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        self.bytes: dict[str, int] = {}

    def add(self, kind: str, *, sent: int, delivered: int, lost: int, size: int) -> None:
        """Add counts for ``kind``."""
        self.sent[kind] = self.sent.get(kind, 0) + sent
        self.delivered[kind] = self.delivered.get(kind, 0) + delivered
        self.lost[kind] = self.lost.get(kind, 0) + lost
        self.bytes[kind] = self.bytes.get(kind, 0) + sent * size

    def total_delivered(self) -> int:
        """Deliveries of every kind."""
        return sum(self.delivered.values())

    def kinds(self) -> list[str]:
        """Message kinds seen, sorted."""
        return sorted(self.sent)


class Flood:
    """One message diffusing through the network from its origin.

    Attributes:
        arrivals: first-arrival time per node (``nan`` where it never arrived).
        first_from: for each node, the neighbour it first received the message from (-1 at
            the origin and where it never arrived).
    """

    __slots__ = ("arrivals", "first_from", "msg", "net", "on_arrival", "sent")

    # Declared as mutable sequences, not lists: the computed floods of sim.net.fastflood keep them
    # in compact typed arrays (8 + 4 bytes a node), which is what lets 10,000 orders on
    # 10,000 nodes fit in memory.
    arrivals: MutableSequence[float]
    first_from: MutableSequence[int]

    def __init__(self, net: SimNetwork, msg: Message, on_arrival: Receive) -> None:
        self.net = net
        self.msg = msg
        self.on_arrival = on_arrival
        self.arrivals = [float("nan")] * net.topology.nodes
        self.first_from = [-1] * net.topology.nodes
        self.sent = [0, 0, 0]  # sent, delivered, lost: added to the stats when the run ends

    def has(self, node: int) -> bool:
        """True once the message has reached ``node``."""
        return self.arrivals[node] == self.arrivals[node]  # nan != nan

    def _arrive(self, node: int, sender: int) -> None:
        net = self.net
        self.arrivals[node] = net.env.now
        self.first_from[node] = sender
        self.on_arrival(node, sender, self.msg)
        arrivals, counts, loss, draw = self.arrivals, self.sent, net.loss, net.draw
        env, deliver = net.env, self._deliver
        faulty = bool(net.down or net.cuts)
        for nbr, lat in net.topology.links[node]:
            if nbr == sender:
                continue
            counts[0] += 1
            if loss and draw() < loss:
                counts[2] += 1
            elif faulty and net.blocked(node, nbr):
                counts[2] += 1  # a crashed neighbour or a cut link: lost like any message
            elif arrivals[nbr] == arrivals[nbr]:
                counts[1] += 1  # a duplicate: delivered, but it cannot change anything
            else:
                Timeout(env, lat, (nbr, node)).callbacks.append(deliver)

    def _deliver(self, event: Timeout) -> None:
        node, sender = cast(tuple[int, int], event.value)
        if node in self.net.down:  # it crashed while the message was on the way
            self.sent[2] += 1
            return
        self.sent[1] += 1
        if self.arrivals[node] != self.arrivals[node]:
            self._arrive(node, sender)


class Outages:
    """What faults hold now: nodes that are down and node sets cut off from the rest.

    The switches :mod:`sim.host.faults` flips, shared by the simpy network and the instant
    host's. A crashed node neither sends, receives nor relays; a partition cuts every link
    between its nodes and the rest.
    """

    __slots__ = ("cuts", "down")

    def __init__(self) -> None:
        self.down: set[int] = set()
        self.cuts: list[frozenset[int]] = []

    def blocked(self, src: int, dst: int) -> bool:
        """Whether a message from ``src`` to ``dst`` is stopped now (a crash or a partition)."""
        if src in self.down or dst in self.down:
            return True
        return any((src in cut) != (dst in cut) for cut in self.cuts)

    def crash(self, node: int) -> None:
        """``node`` stops: it neither sends, receives nor relays until :meth:`restart`."""
        self.down.add(node)

    def restart(self, node: int) -> None:
        """``node`` runs again (what it missed, it must fetch)."""
        self.down.discard(node)

    def cut(self, nodes: frozenset[int]) -> None:
        """Cut every link between ``nodes`` and the rest, until :meth:`heal` with the same set."""
        self.cuts.append(nodes)

    def heal(self, nodes: frozenset[int]) -> None:
        """End one partition started by :meth:`cut` with ``nodes``."""
        self.cuts.remove(nodes)


class SimNetwork(Outages):
    """Delivers messages over a :class:`Topology` as simpy events.

    Args:
        env: the run's simpy environment.
        topology: the graph and its link latencies.
        loss: probability that one message on one link is lost.
        rng: the stream that decides losses.

    Attributes:
        down: nodes crashed now (they neither send, receive nor relay).
        cuts: node sets cut off from the rest of the network now (one per active partition).
        faults_scheduled: the run schedules crashes or partitions; a computed (loss-free,
            Dijkstra) diffusion cannot foresee them and must not be used when this is set.
    """

    __slots__ = (
        "draw",
        "env",
        "faults_scheduled",
        "floods",
        "loss",
        "routes",
        "stats",
        "topology",
    )

    def __init__(
        self, env: Environment, topology: Topology, *, loss: float, rng: random.Random
    ) -> None:
        super().__init__()
        self.env = env
        self.topology = topology
        self.loss = loss
        self.draw = rng.random
        self.stats = MessageStats()
        self.floods: list[Flood] = []
        self.faults_scheduled = False
        self.routes: dict[tuple[int, int], list[int]] = {}

    def route(self, src: int, dst: int) -> list[int]:
        """A shortest hop path from ``src`` to ``dst`` ([] when unreachable now).

        Remembered per pair while no fault is scheduled (the graph never changes then).
        """
        if self.faults_scheduled:
            return self.path_to(src, dst.__eq__) if src != dst else [src]
        path = self.routes.get((src, dst))
        if path is None:
            path = self.routes[(src, dst)] = self.path_to(src, dst.__eq__) if src != dst else [src]
        return path

    def quorate(self, node: int, peers: Sequence[int]) -> bool:
        """Whether ``node`` runs and reaches most of the running ``peers`` over uncut links.

        Sequencers agree on the chain among themselves (their consensus is not simulated); one
        that is down, or cut off from most of its running peers, cannot get a block agreed.
        """
        if node in self.down:
            return False
        if not self.cuts:
            return True
        reached = self.reachable(node)
        running = [p for p in peers if p not in self.down]
        return 2 * sum(1 for p in running if p in reached) > len(running)

    def reachable(self, node: int) -> set[int]:
        """The nodes ``node`` can reach now, hop by hop, over links neither cut nor crashed."""
        seen, frontier = {node}, [node]
        while frontier:
            nxt = []
            for u in frontier:
                for v, _ in self.topology.links[u]:
                    if v not in seen and not self.blocked(u, v):
                        seen.add(v)
                        nxt.append(v)
            frontier = nxt
        return seen

    def flood(self, origin: int, msg: Message, *, to: Receive) -> Flood:
        """Start diffusing ``msg`` from ``origin``, message by message; returns its flood.

        ``to`` runs at the origin at once and at every other node on first arrival.
        """
        flood = Flood(self, msg, to)
        self.floods.append(flood)
        if origin not in self.down:  # a crashed node sends nothing
            flood._arrive(origin, -1)
        return flood

    def send(self, src: int, dst: int, msg: Message, *, to: Receive) -> None:
        """Send ``msg`` over the link ``src``–``dst``; ``to(dst, src, msg)`` runs unless lost.

        A crashed ``src`` sends nothing; a cut link or a crashed ``dst`` loses the message.
        """
        if src in self.down:
            return
        lost = bool(self.loss) and self.draw() < self.loss
        lost = lost or (bool(self.cuts or self.down) and self.blocked(src, dst))
        self.stats.add(msg.kind, sent=1, delivered=int(not lost), lost=int(lost), size=msg.size)
        if not lost:
            event = Timeout(self.env, self.topology.latency(src, dst))
            event.callbacks.append(lambda _event: self._received(src, dst, msg, to))

    def _received(self, src: int, dst: int, msg: Message, to: Receive) -> None:
        if dst in self.down:  # it crashed while the message was on the way
            self.stats.delivered[msg.kind] -= 1
            self.stats.lost[msg.kind] += 1
            return
        to(dst, src, msg)

    def relay(self, path: Sequence[int], msg: Message, *, to: Receive) -> None:
        """Send ``msg`` hop by hop along ``path``; ``to`` runs at its end, from the last hop.

        Each hop may be lost like any message; a lost hop ends the relay (callers retry). An
        empty path (no route now) sends nothing; a one-node path is already there.
        """
        relay_along(self, path, msg, to=to)

    def path_to(self, origin: int, holds: Callable[[int], bool], *, skip: int = 0) -> list[int]:
        """Shortest hop path from ``origin`` to a node for which ``holds`` is true.

        Breadth-first; ``skip`` rotates among the holders found at the nearest distance, so
        that retries ask another peer. Crashed nodes are neither asked nor routed through (a
        peer that stops answering is soon noticed); a partition is not known in advance.
        Returns [] when no node holds it.
        """
        return nearest_path(self.topology, origin, holds, down=self.down, skip=skip)

    def close(self) -> MessageStats:
        """Fold every flood's counts into the stats and return them."""
        for flood in self.floods:
            sent, delivered, lost = flood.sent
            self.stats.add(
                flood.msg.kind, sent=sent, delivered=delivered, lost=lost, size=flood.msg.size
            )
        self.floods.clear()
        return self.stats


def nearest_path(
    topology: Topology,
    origin: int,
    holds: Callable[[int], bool],
    *,
    down: Collection[int] = (),
    skip: int = 0,
) -> list[int]:
    """Breadth-first shortest hop path from ``origin`` to a node for which ``holds`` is true.

    ``skip`` rotates among the holders at the nearest distance; nodes in ``down`` are neither
    asked nor routed through. [] when no node holds it.
    """
    parent = {origin: origin}
    frontier = [origin]
    while frontier:
        holders = [n for n in frontier if n != origin and n not in down and holds(n)]
        if holders:
            node = holders[skip % len(holders)]
            path = [node]
            while node != origin:
                node = parent[node]
                path.append(node)
            return path[::-1]
        nxt = []
        for node in frontier:
            for nbr, _ in topology.links[node]:
                if nbr not in parent and nbr not in down:
                    parent[nbr] = node
                    nxt.append(nbr)
        frontier = nxt
    return []


class Sender(Protocol):
    """Whatever sends one message over one link (the simpy network, the instant host's)."""

    def send(self, src: int, dst: int, msg: Message, *, to: Receive) -> None: ...


def relay_along(net: Sender, path: Sequence[int], msg: Message, *, to: Receive) -> None:
    """Send ``msg`` hop by hop along ``path`` over ``net``; ``to`` runs at its end.

    An empty path sends nothing; at a one-node path ``to`` runs at once, from no link (-1).
    """
    if not path:
        return
    if len(path) == 1:
        to(path[0], -1, msg)
        return
    rest = path[1:]

    def hop(_node: int, sender: int, m: Message) -> None:
        if len(rest) == 1:
            to(rest[0], sender, m)
        else:
            relay_along(net, rest, m, to=to)

    net.send(path[0], path[1], msg, to=hop)

"""Loss-free diffusion computed rather than simulated message by message.

With no loss, a diffusion's first arrival at a node is the smallest, over its neighbours, of
their first arrival plus the link's latency: Dijkstra's recurrence. simpy schedules a delivery
at ``now + latency``, and Dijkstra (scipy) relaxes an edge as ``distance + weight``: the same
floating-point additions in the same order, so when the diffusion starts at time ``t`` (a virtual
source joined to the origin by an edge of weight ``t``) the computed times are bitwise those of
message-by-message flooding. One Dijkstra costs a few milliseconds at 10,000 nodes, against
nodes × degree Python steps and a simpy event per forward; only the arrivals that someone acts
on (the *listeners*) are then scheduled as simpy events.

:class:`Spread` is the record of one message that may travel outside diffusion first (its
origin, Dandelion's stem hops) and then diffuse from one or more nodes: :class:`FastFlood`
computes that diffusion when loss-free, :class:`EventSpread` simulates it message by message
(lossy links, crashes, partitions). Arrival times and senders are kept in typed arrays (8 + 4
bytes a node) so that 10,000 orders on 10,000 nodes fit in memory.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from functools import partial
from typing import cast

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from simpy.events import Timeout

from sim.net.network import Flood, Message, Receive, SimNetwork, Topology

NAN = math.nan


class LatencyGraph:
    """The topology as a sparse matrix of link latencies, with one extra row for the start.

    Row ``nodes`` is a virtual source with a single edge, re-pointed for each computation to the
    node that starts diffusing, weighted with the time it starts.
    """

    __slots__ = ("degrees", "indices", "indptr", "links", "nodes", "weights")

    def __init__(self, topology: Topology) -> None:
        n = topology.nodes
        self.nodes = n
        self.degrees = np.array([len(nbrs) for nbrs in topology.links], dtype=np.int64)
        nnz = int(self.degrees.sum())
        self.indptr = np.zeros(n + 2, dtype=np.int32)
        self.indptr[1 : n + 1] = np.cumsum(self.degrees)
        self.indptr[n + 1] = nnz + 1
        self.indices = np.empty(nnz + 1, dtype=np.int32)
        self.weights = np.empty(nnz + 1, dtype=np.float64)
        flat = [pair for nbrs in topology.links for pair in nbrs]
        self.indices[:nnz] = [v for v, _ in flat]
        self.weights[:nnz] = [lat for _, lat in flat]
        self.links = nnz
        """Directed links: link ``indptr[u] + j`` goes from ``u`` to its ``j``-th neighbour."""

    def waits(self, delays: np.ndarray) -> np.ndarray:
        """Each directed link's latency plus its forwarding delay (one message's waits)."""
        return self.weights[: self.links] + delays

    def arrivals(
        self, source: int, start: float, waits: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """First arrival at every node of a diffusion that ``source`` starts at ``start``.

        ``waits`` replaces the link latencies by one message's own (see :meth:`waits`).

        Returns:
            the arrival times (``source`` itself at ``start``; NaN where unreachable) and each
            node's predecessor on the way (-1 at ``source`` and where unreachable).
        """
        n = self.nodes
        weights = self.weights
        if waits is not None:
            weights = np.empty_like(self.weights)
            weights[: self.links] = waits
        self.indices[-1], weights[-1] = source, start
        matrix = csr_matrix((weights, self.indices, self.indptr), shape=(n + 1, n + 1))
        dist, pred = dijkstra(matrix, directed=True, indices=n, return_predecessors=True)
        times = dist[:n]
        times[np.isinf(times)] = NAN
        senders = pred[:n].astype(np.intc)
        senders[(senders < 0) | (senders == n)] = -1
        return times, senders


def landing(now: float, t: float) -> tuple[float, ...]:
    """Delays that, one after the other, bring a clock from ``now`` exactly to ``t >= now``.

    A computed arrival ``t`` is a sum of link latencies hop after hop, as message-by-message
    delivery adds them; the clock then stands at ``now``, the diffusion's start, and simpy
    computes an event's time as ``now + d``. Usually one delay does it: ``t - now``, or a
    neighbour of it one unit in the last place away. But not every float is ``now + d`` for
    some float ``d``: when ``t`` is more than twice ``now`` the sums can step over it. Then two:
    the largest delay that stays below ``t``, reaching some ``x``, and ``t - x``, which is
    exact because ``x`` lies in ``[t/2, t]`` (Sterbenz's lemma), so ``x + (t - x) == t``.
    """
    d = t - now
    for _ in range(64):
        total = now + d
        if total == t:
            return (d,)
        d = math.nextafter(d, math.inf if total < t else -math.inf)
    d = t - now
    for _ in range(64):
        if now + d < t:
            break
        d = math.nextafter(d, -math.inf)
    x = now + d
    rest = t - x
    if not (x < t and x + rest == t):
        raise ArithmeticError(f"no delays from {now!r} land exactly on {t!r}")
    return d, rest


class Spread(Flood):
    """One message: reached by some nodes outside diffusion, then diffused from some of them.

    ``arrivals[v]`` is the first time ``v`` holds the message, by any route, and
    ``first_from[v]`` the node it got it from (-1 at the origin). A computed diffusion fills in
    times still to come, so :meth:`has` compares with the clock. ``to`` runs once per
    node that is told: the origin, every node reached outside diffusion, and the nodes the
    diffusion tells (every node, or only the listeners of a :class:`FastFlood`).

    Attributes:
        stem_from: nodes that first received the message on a stem hop, and from whom.
        holders: nodes reached outside diffusion (the origin, stem nodes), each with the time
            the diffusion reaches it (``inf`` while unknown): a stem node's embargo timer asks.
    """

    __slots__ = ("holders", "origin", "senders", "stem_from", "times", "told")

    def __init__(self, net: SimNetwork, origin: int, msg: Message, *, to: Receive) -> None:
        super().__init__(net, msg, to)
        n = net.topology.nodes
        self.origin = origin
        times, senders = array("d", [NAN]) * n, array("i", [-1]) * n
        self.arrivals, self.first_from = times, senders
        # numpy views of the same memory, for whole-network updates
        self.times = np.frombuffer(times, dtype=np.float64)
        self.senders = np.frombuffer(senders, dtype=np.intc)
        self.told = bytearray(n)
        self.stem_from: dict[int, int] = {}
        self.holders: dict[int, float] = {}
        net.floods.append(self)

    def has(self, node: int) -> bool:
        """True once the message has reached ``node`` (by the simulation clock)."""
        return self.arrivals[node] <= self.net.env.now

    def reach(self, node: int, sender: int, *, stem: bool = False) -> bool:
        """The message reaches ``node`` now from ``sender`` outside diffusion (the origin: -1).

        Returns False, changing nothing, when ``node`` already has it.
        """
        if self.has(node):
            return False
        pending = self.arrivals[node]  # a computed diffusion's arrival still to come, or NaN
        self.holders[node] = math.inf if math.isnan(pending) else pending
        if stem:
            self.stem_from[node] = sender
        self._tell(node, sender, self.net.env.now)
        return True

    def _tell(self, node: int, sender: int, now: float) -> None:
        self.arrivals[node] = now
        self.first_from[node] = sender
        self.told[node] = 1
        self.on_arrival(node, sender, self.msg)

    def diffused(self, node: int) -> bool:
        """True once ``node`` has the message in diffusion (received it so, or started it)."""
        raise NotImplementedError

    def fluff(self, node: int) -> None:
        """``node``, which holds the message, starts diffusing it now (no-op if it already is)."""
        raise NotImplementedError


class EventSpread(Spread):
    """Diffusion message by message, each forward lost with the network's loss probability.

    The path for lossy links (and the reference the computed :class:`FastFlood` must equal when
    loss is 0). A node forwards the diffused message once, when it first receives it in
    diffusion, to every neighbour but the sender; a diffusion source forwards to all of them.
    """

    __slots__ = ("slots", "spreading", "waits")

    def __init__(
        self,
        net: SimNetwork,
        origin: int,
        msg: Message,
        *,
        to: Receive,
        waits: Sequence[float] | None = None,
        slots: Sequence[int] = (),
    ) -> None:
        super().__init__(net, origin, msg, to=to)
        self.spreading = bytearray(net.topology.nodes)
        self.waits = waits
        """Per directed link, latency plus this message's forwarding delay (None: latency)."""
        self.slots = slots
        """Where each node's links start in ``waits`` (a :class:`LatencyGraph`'s ``indptr``)."""

    def diffused(self, node: int) -> bool:
        """True once ``node`` has received the message in diffusion or started diffusing it."""
        return bool(self.spreading[node])

    def fluff(self, node: int) -> None:
        """``node`` diffuses the message to all its neighbours now (unless it has crashed)."""
        if self.spreading[node] or node in self.net.down:
            return
        self.spreading[node] = 1
        self.holders[node] = self.net.env.now
        self._forward(node, -1)

    def _forward(self, node: int, sender: int) -> None:
        net, counts, spreading, waits = self.net, self.sent, self.spreading, self.waits
        faulty = bool(net.down or net.cuts)
        first = self.slots[node] if waits is not None else 0
        for j, (nbr, latency) in enumerate(net.topology.links[node]):
            if nbr == sender:
                continue
            # with forwarding delays it waits its delay, then the link's latency
            wait = latency if waits is None else waits[first + j]
            counts[0] += 1
            if net.loss and net.draw() < net.loss:
                counts[2] += 1
            elif faulty and net.blocked(node, nbr):
                counts[2] += 1  # a crashed neighbour or a cut link: lost like any message
            elif spreading[nbr]:
                counts[1] += 1  # a duplicate: delivered, but it cannot change anything
            else:
                Timeout(net.env, wait).callbacks.append(partial(self._receive, nbr, node))

    def _receive(self, node: int, sender: int, _event: Timeout) -> None:
        if node in self.net.down:  # it crashed while the message was on the way
            self.sent[2] += 1
            return
        self.sent[1] += 1
        if self.spreading[node]:
            return
        self.spreading[node] = 1
        now = self.net.env.now
        if node in self.holders:
            self.holders[node] = now  # a stem node: its embargo timer is now moot
        else:
            self._tell(node, sender, now)
        self._forward(node, sender)


class FastFlood(Spread):
    """Loss-free diffusion: arrivals computed by Dijkstra, listeners told by simpy events.

    Args:
        net: the run's network (its loss must be 0).
        graph: the same topology as a :class:`LatencyGraph`.
        listeners: the nodes whose arrival the caller acts on, sorted; ``None`` for every node.
            The first node to receive the message from its origin is told as well (the first
            sighting), and so is every node reached outside diffusion.
    """

    __slots__ = ("graph", "listeners", "sources", "waits")

    def __init__(
        self,
        net: SimNetwork,
        graph: LatencyGraph,
        origin: int,
        msg: Message,
        *,
        to: Receive,
        listeners: Sequence[int] | None,
        waits: np.ndarray | None = None,
    ) -> None:
        super().__init__(net, origin, msg, to=to)
        self.graph = graph
        self.waits = waits
        """Per directed link, latency plus this message's forwarding delay (None: latency)."""
        self.listeners = None if listeners is None else np.unique(np.asarray(listeners, np.int64))
        self.sources = 0

    def diffused(self, node: int) -> bool:
        """True once the diffusion has reached ``node`` (or ``node`` started it)."""
        if node in self.holders:
            return self.holders[node] <= self.net.env.now
        return self.has(node)

    def fluff(self, node: int) -> None:
        """Start diffusing from ``node`` now: compute the arrivals it brings forward."""
        now = self.net.env.now
        if self.diffused(node):
            return
        dist, pred = self.graph.arrivals(node, now, self.waits)
        times, senders = self.times, self.senders
        # nodes that do not hold the message yet and that this diffusion reaches sooner
        sooner = ~(times <= now) & ~np.isnan(dist) & ~(times <= dist)
        times[sooner] = dist[sooner]
        senders[sooner] = pred[sooner]
        for holder, t in self.holders.items():
            self.holders[holder] = min(t, float(dist[holder]))
        self.sources += 1
        # every node forwards once to all neighbours but the one it heard from; sources to all
        sent = int(self.graph.degrees.sum()) - self.graph.nodes + self.sources
        self.sent[0] = self.sent[1] = sent
        self._schedule(self._targets(sooner), now)

    def _targets(self, sooner: np.ndarray) -> np.ndarray:
        """The nodes to tell of the arrivals just brought forward."""
        if self.listeners is None:
            return np.flatnonzero(sooner)
        targets = self.listeners[sooner[self.listeners]]
        if self.sources == 1 and not self.stem_from:
            # the first sighting: the origin's neighbour over its fastest link
            first = self._fastest_neighbour(self.origin)
            if sooner[first]:
                targets = np.union1d(targets, [first])
        return targets

    def _fastest_neighbour(self, node: int) -> int:
        """The neighbour a message from ``node`` reaches first (by this message's waits)."""
        links = self.net.topology.links[node]
        if self.waits is None:
            return min(links, key=lambda p: p[1])[0]
        start = int(self.graph.indptr[node])
        waits = self.waits[start : start + len(links)].tolist()
        return links[min(range(len(links)), key=waits.__getitem__)][0]

    def _schedule(self, targets: np.ndarray, now: float) -> None:
        env, told, tell = self.net.env, self.told, self._on_time
        for node, t in zip(targets.tolist(), self.times[targets].tolist(), strict=True):
            if not told[node]:
                d = t - now
                if now + d == t:
                    # the node rides as the event's value: a closure per event would cost more
                    Timeout(env, d, node).callbacks.append(tell)
                    continue
                steps = landing(now, t)  # rarely: an ulp off, or not reachable in one step
                if len(steps) == 1:
                    Timeout(env, steps[0], node).callbacks.append(tell)
                else:
                    Timeout(env, steps[0], (node, steps[1])).callbacks.append(self._closer)

    def _closer(self, event: Timeout) -> None:
        """The first of two steps to an arrival no single delay reaches: take the second."""
        node, rest = cast(tuple[int, float], event.value)
        Timeout(self.net.env, rest, node).callbacks.append(self._on_time)

    def _on_time(self, event: Timeout) -> None:
        node = cast(int, event.value)
        # an earlier arrival (a later source, a stem hop) may have told the node already
        if not self.told[node]:
            self._tell(node, self.first_from[node], self.net.env.now)


def diffuse(
    net: SimNetwork,
    graph: LatencyGraph,
    origin: int,
    msg: Message,
    *,
    to: Receive,
    listeners: Sequence[int] | None = None,
    waits: np.ndarray | None = None,
) -> FastFlood:
    """Diffuse ``msg`` from ``origin`` now, loss-free: the fast path of ``SimNetwork.flood``.

    ``to`` runs at the origin at once, then at the first node to receive it and at every
    listener (every node when ``listeners`` is None) at their first-arrival times.
    """
    flood = FastFlood(net, graph, origin, msg, to=to, listeners=listeners, waits=waits)
    flood.reach(origin, -1)
    flood.fluff(origin)
    return flood

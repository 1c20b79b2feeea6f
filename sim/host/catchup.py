"""Replicas catching up: a replica that misses a block fetches it by height.

A replica learns that a height exists when a later block arrives, when the chain's tip is
pushed to it, or when a peer answers its periodic status request; after a grace period it asks
the nearest node holding the missing block for it (hop by hop, each hop lossy like any message)
and retries with another holder until the block arrives. Loss and partitions therefore delay a
replica but never make it diverge.

The tip is pushed because the last block before a quiet spell (the one that settles a market,
once trading has closed) has no successor to reveal that it was missed, and a 30 s status poll
over lossy multi-hop paths took up to ~1,600 s to reveal it. So the proposer of a block that no
newer block follows sends a small :class:`TipNotice` with its height to every replica, along a
shortest path, one block interval after the block; each replica answers with a
:class:`TipAck`, and the proposer sends the notice again to those that have not answered after
a wait that doubles each time (2, 4, 8, 16 and 32 s after the block at a 2 s interval), as a
transport retransmits (retrying every 2 s caught up faster at 40 % loss but sent twice the
``tip`` messages). None while blocks keep coming: each block is its own notice. It is sent
replica by replica rather than diffused, so its cost grows with the replicas, not with the
network. The status poll stays, for what pushing cannot reach (a replica cut off or down for
the whole window).

Measured on the small world over five seeds (``tests/sim/settlement/test_catch_up.py``), the
worst catch-up at 20 % link loss is 4–18 s (8–54 s with polls alone; 6–48 s with the earlier
three unacknowledged pushes at 1, 4 and 16 intervals), and at 40 % 82–110 s (162–613 s; 74–150
s), for 8 % more messages in all (blocks, orders and votes included) than those pushes at 20 %
loss, 7 % at 40 % and 1 % fewer without loss. Every hop is lossy, so this is a distribution
with a tail, not a bound.

:attr:`CatchUp.caught_up` records, for every block a running replica did not apply as diffusion
delivered it, how long after the block closed the replica applied it (``ledger.catch_up_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.chain.blocks import Block
from sim.host.host import Host
from sim.net.network import Flood, Message, unexpected

SYNC_INTERVAL_S = 30.0
"""How often a replica asks a neighbour for the latest height it has seen."""

FETCH_RETRY_S = 2.0
"""How long a replica waits for a fetched block before asking another holder."""

STATUS_BYTES = 16
"""A status request or answer, or a fetch request: a height and a few header bytes."""

TIP_FIRST_PUSH = 1
"""Block intervals after a block at which its proposer first pushes it as tip, if none follows."""

TIP_PUSH_WINDOW = 16
"""Block intervals after a block during which its proposer re-sends unacknowledged notices."""


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A replica asks a peer for the latest height it holds.

    ``route`` is the path the request takes (source routing, in the link layer's header and
    not counted in ``size``); the answer goes back along it.
    """

    kind: ClassVar[str] = "sync"
    size: ClassVar[int] = STATUS_BYTES
    route: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A peer's latest height, sent back to the replica that asked."""

    kind: ClassVar[str] = "sync"
    size: ClassVar[int] = STATUS_BYTES
    height: int


@dataclass(frozen=True, slots=True)
class TipNotice:
    """A proposer's reminder to a replica, while the chain is quiet, that its block is tip.

    ``route`` is the path it takes (in the link layer's header, as for a status request); the
    replica's :class:`TipAck` goes back along it.
    """

    kind: ClassVar[str] = "tip"
    size: ClassVar[int] = STATUS_BYTES
    height: int
    route: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TipAck:
    """A replica tells the proposer that its notice arrived, so it is not sent again."""

    kind: ClassVar[str] = "tip"
    size: ClassVar[int] = STATUS_BYTES
    height: int
    replica: int


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """A replica asks the nearest holder for the block at ``height``, along ``route``."""

    kind: ClassVar[str] = "fetch"
    size: ClassVar[int] = STATUS_BYTES
    height: int
    route: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BlockReply:
    """A fetched block on its way back to the replica that asked."""

    kind: ClassVar[str] = "fetch"
    block: Block

    @property
    def size(self) -> int:
        """Bytes on the wire: the block."""
        return self.block.size


class CatchUp:
    """Block delivery to replicas, gap detection, fetch by height and periodic status."""

    def __init__(self, sim: Host) -> None:
        self.sim = sim
        self.heard: dict[int, int] = {}
        self.fetching: set[int] = set()
        self.rounds = 0
        """Status rounds so far: each replica asks the replica ``rounds`` places after it."""
        self.acked: dict[int, set[int]] = {}
        """By height: the replicas known to have the tip notice (the proposer among them)."""
        self.missed: dict[int, frozenset[int]] = {}
        """By height: the replicas that were running when the block closed (those it may be
        missed by; a replica down then is catching up on its outage, not on the network)."""
        self.caught_up: list[tuple[int, float]] = []
        """``(node, seconds)``: from a block's close to a running replica applying it, for every
        block that replica did not apply as diffusion delivered it (it fetched it, or it waited
        behind a missing one)."""

    def start(self) -> None:
        """Begin the periodic status requests."""
        self.heard = dict.fromkeys(self.sim.replicas, -1)
        self.sim.every(SYNC_INTERVAL_S, self._sync)

    def closed(self, block: Block) -> None:
        """A proposer closed ``block``: note who runs, and push the tip while nothing follows."""
        down = self.sim.net.down
        self.missed[block.height] = frozenset(n for n in self.sim.replicas if n not in down)
        self.acked[block.height] = {block.proposer}
        first = TIP_FIRST_PUSH * self.sim.block_interval_s
        self.sim.after(first, lambda: self._push(block, first))

    def _push(self, block: Block, wait: float) -> None:
        """Send the tip notice to every replica that has not acknowledged it; retry shortly."""
        sim = self.sim
        if len(sim.blocks) - 1 != block.height or block.proposer in sim.net.down:
            return  # a newer block carries the news (or the proposer is gone)
        if sim.now - block.t > TIP_PUSH_WINDOW * sim.block_interval_s:
            return  # the status polls cover whoever is still unreached (cut off, or down)
        acked = self.acked[block.height]
        for node in sorted(sim.replicas):
            path = sim.net.route(block.proposer, node) if node not in acked else []
            if path:
                sim.net.relay(path, TipNotice(block.height, tuple(path)), to=self.receive)
        if any(node not in acked for node in sim.replicas):
            sim.after(wait, lambda: self._push(block, 2 * wait))

    def arrived(self, node: int, block: Block) -> None:
        """``block`` reached ``node`` (by diffusion or by a fetch)."""
        replica = self.sim.replicas.get(node)
        if replica is None:
            return
        first = replica.next_height
        if replica.receive(block):
            self._applied(node, range(first, replica.next_height))
        self.heard_of(node, block.height)

    def _applied(self, node: int, heights: range) -> None:
        """Record how long ``node`` took over each block it applied now, not on its diffusion."""
        now, blocks = self.sim.now, self.sim.blocks
        for height in heights:
            if height >= len(blocks):
                continue  # the block is being diffused from its proposer right now
            block, flood = blocks[height]
            if node in self.missed.get(height, ()) and not _diffused(flood, node, now):
                self.caught_up.append((node, now - block.t))

    def heard_of(self, node: int, height: int) -> None:
        """The replica at ``node`` learned that ``height`` exists; fetch gaps after a grace."""
        self.heard[node] = max(self.heard[node], height)
        replica = self.sim.replicas[node]
        if node not in self.fetching and replica.missing(self.heard[node]) is not None:
            self.fetching.add(node)
            self.sim.after(self.sim.block_interval_s, lambda: self._fetch(node, 0))

    def _fetch(self, node: int, attempt: int) -> None:
        """Ask the nearest node holding the missing block for it; retry until it arrives."""
        sim = self.sim
        height = sim.replicas[node].missing(self.heard[node])
        if height is None:
            self.fetching.discard(node)
            return
        path = sim.net.path_to(node, lambda n: self.holds(n, height), skip=attempt)
        if path:
            sim.net.relay(path, BlockRequest(height, tuple(path)), to=self.receive)
        sim.after(FETCH_RETRY_S, lambda: self._fetch(node, attempt + 1))

    def holds(self, node: int, height: int) -> bool:
        """Whether ``node`` has block ``height``: it received it, or its replica applied it."""
        replica = self.sim.replicas.get(node)
        if replica is not None and replica.next_height > height:
            return True
        return self.sim.blocks[height][1].has(node)

    def latest(self, node: int) -> int:
        """The highest block height ``node`` holds (-1: none)."""
        replica = self.sim.replicas.get(node)
        applied = replica.next_height - 1 if replica is not None else -1
        newer = self.sim.blocks[applied + 1 :]
        received = next((b.height for b, f in reversed(newer) if f.has(node)), -1)
        return max(applied, received)

    def _sync(self) -> bool:
        """Every replica asks another replica (in turn) for its latest height; runs for ever.

        Asking replicas rather than raw neighbours matters after a partition heals: a block that
        reached one side only by fetching is held by replicas there, not by their neighbours.
        """
        sim = self.sim
        self.rounds += 1
        replicas = sorted(sim.replicas)
        for i, node in enumerate(replicas):
            peer = replicas[(i + self.rounds) % len(replicas)]
            if peer == node:
                continue
            path = sim.net.route(node, peer)
            if not path:
                continue  # cut off from that replica for now
            sim.net.relay(path, StatusRequest(tuple(path)), to=self.receive)
        return True

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """Status and fetch messages reach the end of their route at ``node``."""
        net = self.sim.net
        match msg:
            case StatusRequest(route=route):
                height = self.latest(node)
                if height >= 0:
                    net.relay(route[::-1], StatusReply(height), to=self.receive)
            case StatusReply(height=height):
                if node in self.sim.replicas:
                    self.heard_of(node, height)
            case TipNotice(height=height, route=route):
                self.heard_of(node, height)
                net.relay(route[::-1], TipAck(height, node), to=self.receive)
            case TipAck(height=height, replica=replica):
                self.acked[height].add(replica)
            case BlockRequest(height=height, route=route):
                block, _ = self.sim.blocks[height]
                net.relay(route[::-1], BlockReply(block), to=self.receive)
            case BlockReply(block=block):
                self.arrived(node, block)
            case _:
                unexpected(msg)


def _diffused(flood: Flood, node: int, now: float) -> bool:
    """Whether the block's diffusion delivered it to ``node`` just now (applied on arrival)."""
    return flood.has(node) and flood.arrivals[node] == now
